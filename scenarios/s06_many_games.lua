-- S6: many games on one peer.
-- One source holds every game of the built-in catalog at its catalog
-- version. A client sees each of them once with peer_count = 1, downloads
-- three of them at once and gets identical files; the rest stay remote.
scenario
{
	name = "s06_many_games",
	timeout = "60s",

	makeGame { dir = "s", id = "cnc4", files = { ["cnc4.eti"] = { size = "1MiB", seed = 1 } } },
	makeGame { dir = "s", id = "ggoo", files = { ["ggoo.eti"] = { size = "1MiB", seed = 2 } } },
	makeGame { dir = "s", id = "coh", files = { ["coh.eti"] = { size = "1MiB", seed = 3 } } },
	makeGame { dir = "s", id = "bf1942", files = { ["bf1942.eti"] = { size = "1MiB", seed = 4 } } },
	makeGame { dir = "s", id = "alienswarm", files = { ["alienswarm.eti"] = { size = "1MiB", seed = 5 } } },
	makeGame { dir = "s", id = "cod6", files = { ["cod6.eti"] = { size = "1MiB", seed = 6 } } },
	peer { name = "s", games = "s" },
	peer { name = "c", chunkSize = "256KiB" },
	connect { from = "c", to = "s" },
	expectGames { peer = "c", games = {
		cnc4 = { peerCount = 1, downloaded = false }, ggoo = { peerCount = 1, downloaded = false },
		coh = { peerCount = 1, downloaded = false }, bf1942 = { peerCount = 1, downloaded = false },
		alienswarm = { peerCount = 1, downloaded = false }, cod6 = { peerCount = 1, downloaded = false },
	} },
	download { peer = "c", game = "cnc4", wait = false },
	download { peer = "c", game = "coh", wait = false },
	download { peer = "c", game = "cod6" },
	expectEvent { peer = "c", event = "download-finished", count = 3, timeout = "30s" },
	expectSameFiles { game = "cnc4", source = "s", target = "c" },
	expectSameFiles { game = "coh", source = "s", target = "c" },
	expectSameFiles { game = "cod6", source = "s", target = "c" },
	expectGames { peer = "c", games = {
		cnc4 = { downloaded = true }, coh = { downloaded = true }, cod6 = { downloaded = true },
		ggoo = { downloaded = false }, bf1942 = { downloaded = false }, alienswarm = { downloaded = false },
	} },
	expectStatus { peer = "c", activeOperations = {} },
}
