-- S18: mid-download source drop with redundancy.
-- Two sources hold the same catalog-version alienswarm whose .eti is four
-- chunks long (4 x 32 MiB with a 32 MiB chunk size). Source a is SIGKILLed
-- the moment the client reports download-begin, so its share of the chunks
-- fails in flight. The client must retry them on b and finish: no
-- download-failed, every byte delivered exactly once, files equal to b's.
scenario
{
	name = "s18_source_drop",
	timeout = "120s",

	makeGame { dir = "a", id = "alienswarm", eti = { size = "128MiB" } },
	makeGame { dir = "b", id = "alienswarm", files = { ["alienswarm.eti"] = { size = "128MiB" } } },

	peer { name = "a", games = "a" },
	peer { name = "b", games = "b" },
	peer { name = "client", chunkSize = "32MiB" },
	connect { from = "client", to = { "a", "b" } },
	waitGame { peer = "client", game = "alienswarm", peerCount = 2 },

	killPeer { name = "a", on = { peer = "client", event = "download-begin", game = "alienswarm" } },
	download { peer = "client", game = "alienswarm", timeout = "60s" },

	expectChunks { peer = "client", game = "alienswarm", servedBy = { "b" } },
	expectSameFiles { game = "alienswarm", source = "b", target = "client" },
}
