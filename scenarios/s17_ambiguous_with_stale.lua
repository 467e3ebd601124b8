-- S17: ambiguous metadata with a stale peer present.
-- a and b hold cnc4 at the catalog version with different cnc4.eti sizes;
-- s holds a stale cnc4 (20150101, its own old catalog, so it offers it) of
-- the same size as a. The stale peer is no tie-breaker: the client must not
-- ask it, the download must fail and commit nothing.
scenario
{
	name = "s17_ambiguous_with_stale",
	timeout = "60s",

	makeGame { dir = "a", id = "cnc4", files = { ["cnc4.eti"] = { size = "2MiB", seed = 17 } } },
	makeGame { dir = "b", id = "cnc4", files = { ["cnc4.eti"] = { size = "2MiB", seed = 17 } } },
	fsAppend { path = "b/cnc4/cnc4.eti", contents = "conflict" },
	makeGame { dir = "s", id = "cnc4", version = "20150101",
		files = { ["cnc4.eti"] = { size = "2MiB", seed = 17 } } },

	peer { name = "a", games = "a", readonly = true },
	peer { name = "b", games = "b", readonly = true },
	peer { name = "s", games = "s", readonly = true, catalog = "../redirects/catalogs/cnc4-20150101.json" },
	peer { name = "client", chunkSize = "1MiB" },
	connect { from = "client", to = { "a", "b", "s" } },
	expectPeers { peer = "client", count = 3, peers = { s = { games = { cnc4 = "20150101" } } } },
	waitGame { peer = "client", game = "cnc4", peerCount = 2 },

	download { peer = "client", game = "cnc4", expect = "failed", timeout = "20s" },
	expectNoEvent { peer = "client", event = "download-begin" },
	expectNoFile { peer = "client", path = "cnc4/version.ini" },
	expectStatus { peer = "client", activeOperations = {} },
	-- The stale peer was never a source, so it served nothing.
	expectStatus { peer = "s", activeOutboundTransfers = {} },
	expectNoEvent { peer = "client", event = "got-game-files" },
}
