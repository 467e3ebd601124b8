-- S19: the only source drops mid-download.
-- a is the client's only source of alienswarm (a 64 MiB .eti, four 16 MiB
-- chunks). a is SIGKILLed the moment the client prints download-begin.
-- With no survivor the download must fail, commit no version.ini and clear
-- the operation. Then b, a new source of the same game, appears: a second
-- download must succeed from b alone.
scenario
{
	name = "s19_sole_source_drop",
	timeout = "90s",

	makeGame { dir = "a", id = "alienswarm", files = { ["alienswarm.eti"] = { size = "64MiB", sparse = true } } },
	makeGame { dir = "b", id = "alienswarm", files = { ["alienswarm.eti"] = { size = "64MiB", sparse = true } } },

	peer { name = "a", games = "a" },
	peer { name = "client", chunkSize = "16MiB" },
	connect { from = "client", to = "a" },
	waitGame { peer = "client", game = "alienswarm", peerCount = 1 },

	killPeer { name = "a", on = { peer = "client", event = "download-begin", game = "alienswarm" } },
	download { peer = "client", game = "alienswarm", expect = "failed", timeout = "30s" },
	expectNoFile { peer = "client", path = "alienswarm/version.ini" },
	expectStatus { peer = "client", activeOperations = {} },
	-- The partial root is not a downloaded game, and nobody offers one now.
	expectGames { peer = "client", absent = { "alienswarm" } },

	peer { name = "b", games = "b", readonly = true },
	connect { from = "client", to = "b" },
	download { peer = "client", game = "alienswarm", timeout = "30s" },
	expectChunks { peer = "client", game = "alienswarm", onlyFrom = { "b" }, chunks = 5, perSource = { b = 5, a = 0 } },
	expectFile { peer = "client", path = "alienswarm/version.ini", contents = "20190317" },
	expectSameFiles { game = "alienswarm", source = "b", target = "client" },
	expectStatus { peer = "client", activeOperations = {} },
}
