-- S29 and S31: an empty-library peer takes part and becomes a source in the
-- same session.
-- e starts with no games and connects to a: a lists e with zero games. e
-- downloads ggoo from a, then a is shut down; a fresh f, connected only to e,
-- downloads ggoo from e and gets a's bytes — so a downloaded root is served
-- without a restart. a (while it ran) saw e's new game arrive live.
scenario
{
	name = "s29_empty_peer_becomes_source",
	timeout = "60s",

	makeGame { dir = "a", id = "ggoo", files = { ["ggoo.eti"] = { size = "3MiB", seed = 4 }, ["data/x.txt"] = "x" } },
	peer { name = "a", games = "a", readonly = true },
	peer { name = "e", chunkSize = "1MiB" },
	connect { from = "e", to = "a" },
	expectPeers { peer = "a", count = 1, peers = { e = { games = {} } } },

	download { peer = "e", game = "ggoo" },
	expectPeers { peer = "a", timeout = "2s", peers = { e = { games = { ggoo = "20200721" } } } },
	shutdownPeer { name = "a" },

	peer { name = "f", chunkSize = "1MiB" },
	connect { from = "f", to = "e" },
	expectGames { peer = "f", games = { ggoo = { peerCount = 1 } } },
	download { peer = "f", game = "ggoo" },
	expectChunks { peer = "f", game = "ggoo", onlyFrom = { "e" } },
	expectSameFiles { game = "ggoo", source = "a", target = "f" },
}
