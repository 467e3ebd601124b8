-- S82 (issue #14): the only source sends bytes that do not verify.
-- s is the client's only source of alienswarm. A first download has s hash
-- its files; the client's copy is deleted, and s's .eti rots (one byte
-- flipped, size and mtime kept, so the cached digests still say what the
-- bytes should be). The second download must fail cleanly: the bad chunk
-- named in source-bad-chunk, download-failed, no version.ini, the
-- operation cleared, the game not advertised. Once s's byte is fixed
-- (flipped back), a retry succeeds, byte-exact.
scenario
{
	name = "s82_sole_source_bit_rot",
	timeout = "120s",

	makeGame { dir = "s", id = "alienswarm", files = { ["alienswarm.eti"] = { size = "16MiB", seed = 82 } } },
	peer { name = "s", games = "s" },
	peer { name = "client", chunkSize = "4MiB" },
	connect { from = "client", to = "s" },
	waitGame { peer = "client", game = "alienswarm", peerCount = 1 },
	download { peer = "client", game = "alienswarm", timeout = "60s" },
	fsDeleteFolder { peer = "client", path = "alienswarm" },
	expectGames { peer = "client", games = { alienswarm = { downloaded = false, peerCount = 1 } } },

	fsPatch { path = "s/alienswarm/alienswarm.eti", offset = "10MiB", hex = "01", xor = true, keepMtime = true },
	download { peer = "client", game = "alienswarm", expect = "failed", timeout = "60s" },
	expectEvent { peer = "client", event = "source-bad-chunk", peerId = "s",
		match = { game_id = "alienswarm", path = "alienswarm.eti", offset = 8388608 } },
	expectNoFile { peer = "client", path = "alienswarm/version.ini" },
	expectStatus { peer = "client", activeOperations = {} },
	expectGames { peer = "client", games = { alienswarm = { downloaded = false, peerCount = 1 } } },

	fsPatch { path = "s/alienswarm/alienswarm.eti", offset = "10MiB", hex = "01", xor = true, keepMtime = true },
	download { peer = "client", game = "alienswarm", timeout = "60s" },
	expectFile { peer = "client", path = "alienswarm/version.ini", contents = "20190317" },
	expectSameFiles { game = "alienswarm", source = "s", target = "client" },
	expectStatus { peer = "client", activeOperations = {} },
}
