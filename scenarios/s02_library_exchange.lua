-- S2: library exchange is bidirectional.
-- alpha holds three games, bravo four; only alpha dials. Both must learn the
-- other's whole library over the one connection, and both list-games views
-- must show the other side's games as downloadable.
scenario
{
	name = "s02_library_exchange",
	timeout = "60s",

	makeGame { dir = "alpha", id = "ggoo", files = { ["ggoo.eti"] = "g" } },
	makeGame { dir = "alpha", id = "cnc4", files = { ["cnc4.eti"] = "c" } },
	makeGame { dir = "alpha", id = "coh", files = { ["coh.eti"] = "h" } },
	makeGame { dir = "bravo", id = "bf1942", files = { ["bf1942.eti"] = "b" } },
	makeGame { dir = "bravo", id = "bfbc2", files = { ["bfbc2.eti"] = "b2" } },
	makeGame { dir = "bravo", id = "cod5", files = { ["cod5.eti"] = "5" } },
	makeGame { dir = "bravo", id = "cod6", files = { ["cod6.eti"] = "6" } },

	peer { name = "alpha", games = "alpha" },
	peer { name = "bravo", games = "bravo" },
	connect { from = "alpha", to = "bravo" },

	expectPeers { peer = "alpha", count = 1, peers = { bravo = { games = {
		bf1942 = "20160130", bfbc2 = "20210416", cod5 = "20160920", cod6 = "20200315" } } } },
	expectPeers { peer = "bravo", count = 1, peers = { alpha = { games = {
		ggoo = "20200721", cnc4 = "20170204", coh = "20200907" } } } },
	expectGames { peer = "bravo", only = true, games = {
		ggoo = { peerCount = 1, downloaded = false }, cnc4 = { peerCount = 1 }, coh = { peerCount = 1 },
		bf1942 = { peerCount = 0, downloaded = true }, bfbc2 = { peerCount = 0, downloaded = true },
		cod5 = { peerCount = 0, downloaded = true }, cod6 = { peerCount = 0, downloaded = true } } },
	expectGames { peer = "alpha", only = true, games = {
		bf1942 = { peerCount = 1 }, bfbc2 = { peerCount = 1 }, cod5 = { peerCount = 1 }, cod6 = { peerCount = 1 },
		ggoo = { peerCount = 0, downloaded = true }, cnc4 = { peerCount = 0, downloaded = true },
		coh = { peerCount = 0, downloaded = true } } },
}
