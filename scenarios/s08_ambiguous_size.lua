-- S8: ambiguous metadata.
-- a and b both hold cnc4 at the catalog version, but b's cnc4.eti is 8
-- bytes longer. The client cannot know which is right, so the download must
-- fail, commit no version.ini and leave no operation behind.
scenario
{
	name = "s08_ambiguous_size",
	timeout = "60s",

	makeGame { dir = "a", id = "cnc4", files = { ["cnc4.eti"] = { size = "2MiB", seed = 8 } } },
	makeGame { dir = "b", id = "cnc4", files = { ["cnc4.eti"] = { size = "2MiB", seed = 8 } } },
	fsAppend { path = "b/cnc4/cnc4.eti", contents = "conflict" },

	peer { name = "a", games = "a", readonly = true },
	peer { name = "b", games = "b", readonly = true },
	peer { name = "client", chunkSize = "1MiB" },
	connect { from = "client", to = { "a", "b" } },
	waitGame { peer = "client", game = "cnc4", peerCount = 2 },

	download { peer = "client", game = "cnc4", expect = "failed", error = { "size conflict", "cnc4.eti" }, timeout = "20s" },
	-- It failed on the size check, before any byte moved.
	expectNoEvent { peer = "client", event = "download-begin" },
	expectNoEvent { peer = "client", event = "download-chunk-finished" },
	expectNoFile { peer = "client", path = "cnc4/version.ini" },
	expectStatus { peer = "client", activeOperations = {} },
	expectGames { peer = "client", games = { cnc4 = { peerCount = 2, downloaded = false } } },
}
