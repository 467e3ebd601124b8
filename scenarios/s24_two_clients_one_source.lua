-- S24: two clients download the same game from one source at once.
-- The source must serve both concurrently; each client gets every chunk
-- from it exactly once and ends with the source's exact files.
-- `--hold-uploads 2` makes the source hold every upload until both clients'
-- requests are in (at most 10 s), so a source that serves both at once
-- surely has both in flight, whatever the machine's load; one that serves
-- one client after the other never does, and expectOverlap fails.
scenario
{
	name = "s24_two_clients_one_source",
	timeout = "60s",

	makeGame { dir = "s", id = "coh", files = { ["coh.eti"] = { size = "16MiB", seed = 24 }, ["readme.txt"] = "shared" } },

	peer { name = "s", games = "s", readonly = true, args = { "--hold-uploads", "2" } },
	peer { name = "c1", chunkSize = "1MiB" },
	peer { name = "c2", chunkSize = "1MiB" },
	connect { from = "c1", to = "s" },
	connect { from = "c2", to = "s" },
	waitGame { peer = "c1", game = "coh", peerCount = 1 },
	waitGame { peer = "c2", game = "coh", peerCount = 1 },

	download { peer = "c1", game = "coh", wait = false },
	download { peer = "c2", game = "coh", timeout = "30s" },
	expectEvent { peer = "c1", event = "download-finished", match = { game_id = "coh" }, timeout = "30s" },
	expectNoEvent { peer = "c1", event = "download-failed" },
	expectChunks { peer = "c1", game = "coh", onlyFrom = { "s" }, chunks = 18 },
	expectChunks { peer = "c2", game = "coh", onlyFrom = { "s" }, chunks = 18 },
	expectSameFiles { game = "coh", source = "s", target = "c1" },
	expectSameFiles { game = "coh", source = "s", target = "c2" },
	expectOverlap { peer = "s", uploads = { { to = "c1" }, { to = "c2" } } },
	expectStatus { peer = "s", activeOutboundTransfers = {} },
}
