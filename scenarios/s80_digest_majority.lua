-- S80 (issue #14): three sources, one with a single flipped byte.
-- a, b and c hold the same alienswarm, except that c's .eti has one byte
-- flipped on disk (same size) before any peer starts, so c's block digests
-- for that file differ from a's and b's. The digests are decided by strict
-- majority: the download must succeed from a and b, name c in a
-- source-disagrees event for alienswarm.eti, and end byte-exact with an
-- honest source. No chunk fails verification (c is never asked for the file).
scenario
{
	name = "s80_digest_majority",
	timeout = "90s",

	makeGame { dir = "a", id = "alienswarm", files = { ["alienswarm.eti"] = { size = "12MiB", seed = 80 }, ["data/readme.txt"] = "same everywhere" } },
	makeGame { dir = "b", id = "alienswarm", files = { ["alienswarm.eti"] = { size = "12MiB", seed = 80 }, ["data/readme.txt"] = "same everywhere" } },
	makeGame { dir = "c", id = "alienswarm", files = { ["alienswarm.eti"] = { size = "12MiB", seed = 80 }, ["data/readme.txt"] = "same everywhere" } },
	fsPatch { path = "c/alienswarm/alienswarm.eti", offset = "5MiB", hex = "01", xor = true },

	peer { name = "a", games = "a", readonly = true },
	peer { name = "b", games = "b", readonly = true },
	peer { name = "c", games = "c", readonly = true },
	peer { name = "client", chunkSize = "1MiB" },
	connect { from = "client", to = { "a", "b", "c" } },
	waitGame { peer = "client", game = "alienswarm", peerCount = 3 },

	download { peer = "client", game = "alienswarm", timeout = "60s" },
	expectEvent { peer = "client", event = "source-disagrees", peerId = "c",
		match = { game_id = "alienswarm", path = "alienswarm.eti" } },
	expectNoEvent { peer = "client", event = "source-disagrees", peerId = "a" },
	expectNoEvent { peer = "client", event = "source-disagrees", peerId = "b" },
	expectNoEvent { peer = "client", event = "source-bad-chunk" },
	expectChunks { peer = "client", game = "alienswarm", servedBy = { "a", "b" } },
	expectSameFiles { game = "alienswarm", source = "a", target = "client" },
}
