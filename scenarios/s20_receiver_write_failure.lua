-- S20: the receiver cannot write a file of the game.
-- The client's games dir already holds cnc4/cnc4.eti as a *folder* (with a
-- file in it), so the client cannot create the file cnc4.eti: a local
-- failure no source can fix, the same for root and everyone else. The
-- download must fail without a retry at another source, commit nothing and
-- clear the operation; the peer must stay healthy, and once the obstacle is
-- gone the same download must succeed.
scenario
{
	name = "s20_receiver_write_failure",
	timeout = "60s",

	makeGame { dir = "a", id = "cnc4", files = { ["cnc4.eti"] = { size = "2MiB", seed = 20 }, ["readme.txt"] = "readme" } },
	makeGame { dir = "b", id = "cnc4", files = { ["cnc4.eti"] = { size = "2MiB", seed = 20 }, ["readme.txt"] = "readme" } },
	fsCreateFile { path = "client/cnc4/cnc4.eti/obstacle.txt", contents = "a folder where a file must go" },

	peer { name = "a", games = "a", readonly = true },
	peer { name = "b", games = "b", readonly = true },
	peer { name = "client", games = "client", chunkSize = "1MiB" },
	connect { from = "client", to = { "a", "b" } },
	waitGame { peer = "client", game = "cnc4", peerCount = 2 },

	download { peer = "client", game = "cnc4", expect = "failed", timeout = "20s" },
	expectNoEvent { peer = "client", event = "download-chunk-retry" },
	expectNoEvent { peer = "client", event = "download-chunk-finished" },
	expectNoFile { peer = "client", path = "cnc4/version.ini" },
	expectNoFile { peer = "client", path = "cnc4/.lanspread-version.ini.part" },
	expectStatus { peer = "client", activeOperations = {} },
	expectGames { peer = "client", games = { cnc4 = { downloaded = false, peerCount = 2 } } },

	fsDeleteFolder { path = "client/cnc4/cnc4.eti" },
	download { peer = "client", game = "cnc4" },
	expectChunks { peer = "client", game = "cnc4", servedBy = { "a", "b" } },
	expectSameFiles { game = "cnc4", source = "a", target = "client" },
}
