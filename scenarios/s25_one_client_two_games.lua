-- S25: one client downloads two games at once from one source.
-- Operations are single-flight per game, not per peer: both downloads must
-- run side by side and both games must end up exact.
-- `--hold-uploads 2` makes the source hold every upload until requests for
-- both games are in (at most 10 s): a client that fetches both at once
-- surely has both in flight at the source, whatever the load; one that
-- runs the downloads one after the other never does (expectOverlap).
scenario
{
	name = "s25_one_client_two_games",
	timeout = "60s",

	makeGame { dir = "s", id = "cnc4", files = { ["cnc4.eti"] = { size = "12MiB", seed = 25 } } },
	makeGame { dir = "s", id = "ggoo", files = { ["ggoo.eti"] = { size = "12MiB", seed = 26 } } },

	peer { name = "s", games = "s", readonly = true, args = { "--hold-uploads", "2" } },
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
	expectOverlap { peer = "s", uploads = { { game = "cnc4" }, { game = "ggoo" } } },
	expectGames { peer = "client", games = { cnc4 = { downloaded = true }, ggoo = { downloaded = true } } },
	expectStatus { peer = "client", activeOperations = {} },
}
