-- S81 (issue #14): a source whose disk rots after hashing sends bad bytes.
-- a, b and c hold the same alienswarm. The client downloads it once, which
-- has every source hash its files (their digests are cached by path, size
-- and mtime). The client's copy is deleted; then c's .eti rots: one byte
-- flipped in each of its three 4 MiB chunks, with size and mtime kept,
-- so c still sends the right digests but wrong bytes. Consecutive chunks
-- go to distinct sources, so c is dealt one of them. The second download
-- must verify c's chunk, refuse it (source-bad-chunk naming c),
-- refetch it from a or b and end byte-exact with an honest source.
scenario
{
	name = "s81_bad_chunk_bit_rot",
	timeout = "120s",

	makeGame { dir = "a", id = "alienswarm", files = { ["alienswarm.eti"] = { size = "12MiB", seed = 81 } } },
	makeGame { dir = "b", id = "alienswarm", files = { ["alienswarm.eti"] = { size = "12MiB", seed = 81 } } },
	makeGame { dir = "c", id = "alienswarm", files = { ["alienswarm.eti"] = { size = "12MiB", seed = 81 } } },

	peer { name = "a", games = "a", readonly = true },
	peer { name = "b", games = "b", readonly = true },
	peer { name = "c", games = "c" },
	peer { name = "client", chunkSize = "4MiB" },
	connect { from = "client", to = { "a", "b", "c" } },
	waitGame { peer = "client", game = "alienswarm", peerCount = 3 },
	download { peer = "client", game = "alienswarm", timeout = "60s" },
	expectNoEvent { peer = "client", event = "source-bad-chunk" },

	fsDeleteFolder { peer = "client", path = "alienswarm" },
	expectGames { peer = "client", games = { alienswarm = { downloaded = false, peerCount = 3 } } },
	fsPatch { path = "c/alienswarm/alienswarm.eti", offset = "1MiB", hex = "01", xor = true, keepMtime = true },
	fsPatch { path = "c/alienswarm/alienswarm.eti", offset = "5MiB", hex = "01", xor = true, keepMtime = true },
	fsPatch { path = "c/alienswarm/alienswarm.eti", offset = "9MiB", hex = "01", xor = true, keepMtime = true },

	download { peer = "client", game = "alienswarm", timeout = "60s" },
	expectEvent { peer = "client", event = "source-bad-chunk", peerId = "c",
		match = { game_id = "alienswarm", path = "alienswarm.eti" } },
	expectNoEvent { peer = "client", event = "source-bad-chunk", peerId = "a" },
	expectNoEvent { peer = "client", event = "source-bad-chunk", peerId = "b" },
	expectEvent { peer = "client", event = "download-chunk-retry", match = { game_id = "alienswarm" } },
	expectNoEvent { peer = "client", event = "download-failed" },
	expectSameFiles { game = "alienswarm", source = "a", target = "client" },
}
