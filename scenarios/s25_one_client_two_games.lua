-- S25: one client downloads two games at once from one source.
-- Operations are single-flight per game, not per peer: both downloads must
-- run side by side and both games must end up exact.
scenario
{
	name = "s25_one_client_two_games",
	timeout = "60s",

	makeGame { dir = "s", id = "cnc4", files = { ["cnc4.eti"] = { size = "12MiB", seed = 25 } } },
	makeGame { dir = "s", id = "ggoo", files = { ["ggoo.eti"] = { size = "12MiB", seed = 26 } } },

	peer { name = "s", games = "s", readonly = true },
	peer { name = "client", chunkSize = "1MiB" },
	connect { from = "client", to = "s" },
	waitGame { peer = "client", game = "cnc4", peerCount = 1 },
	waitGame { peer = "client", game = "ggoo", peerCount = 1 },

	download { peer = "client", game = "cnc4", wait = false },
	download { peer = "client", game = "ggoo", timeout = "30s" },
	expectEvent { peer = "client", event = "download-finished", match = { game_id = "cnc4" }, timeout = "30s" },
	expectNoEvent { peer = "client", event = "download-failed" },
	expectChunks { peer = "client", game = "cnc4", onlyFrom = { "s" }, chunks = 13 },
	expectChunks { peer = "client", game = "ggoo", onlyFrom = { "s" }, chunks = 13 },
	expectSameFiles { game = "cnc4", source = "s", target = "client" },
	expectSameFiles { game = "ggoo", source = "s", target = "client" },
	expectGames { peer = "client", games = { cnc4 = { downloaded = true }, ggoo = { downloaded = true } } },
	expectStatus { peer = "client", activeOperations = {} },
}
