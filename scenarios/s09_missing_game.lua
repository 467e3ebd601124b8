-- S9 and S35: a game no peer offers, and a game ID the catalog does not know.
-- The source advertises `mystery-game` (not in any catalog) next to ggoo.
-- The client sees the raw advertisement but never lists the unknown ID;
-- downloading it, or a catalog game nobody has, is refused with a clear
-- error code, and no files appear.
scenario
{
	name = "s09_missing_game",
	timeout = "30s",

	makeGame { dir = "s", id = "ggoo", files = { ["ggoo.eti"] = "g" } },
	makeGame { dir = "s", id = "mystery-game", version = "20240101", files = { ["m.eti"] = "m" } },
	peer { name = "s", games = "s" },
	peer { name = "client" },
	connect { from = "client", to = "s" },

	-- Advertised (so "absent" below means filtered, not never sent)…
	expectPeers { peer = "client", peers = { s = { games = { ggoo = "20200721", ["mystery-game"] = "20240101" } } } },
	-- …but not listed.
	expectGames { peer = "client", only = true, games = { ggoo = { peerCount = 1 } }, absent = { "mystery-game" } },

	download { peer = "client", game = "mystery-game", expect = "failed", code = "unknown-game" },
	download { peer = "client", game = "coh", expect = "failed", code = "no-source" },
	expectNoFile { peer = "client", path = "mystery-game" },
	expectNoFile { peer = "client", path = "coh" },
	expectStatus { peer = "client", activeOperations = {} },
	-- The client is still healthy: a real download works.
	download { peer = "client", game = "ggoo" },
}
