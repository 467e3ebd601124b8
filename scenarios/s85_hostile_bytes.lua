-- S85 (issue #14 §4): hostile sources that lie about bytes or digests.
-- wrong-bytes: h lists the right sizes and digests but every byte it sends
-- is altered. wrong-digests: g sends good bytes but digests that match
-- none of them. Each is one of three sources beside the honest a and b,
-- then the only source of a second client.
-- Among honest sources the download must finish byte-exact, the liar
-- named (source-bad-chunk for h, source-disagrees for g) and never an
-- honest source; as the only source the download must fail cleanly (no
-- version.ini, nothing outside the root, the operation cleared), and an
-- honest download must then work on the same peer.
scenario
{
	name = "s85_hostile_bytes",
	timeout = "150s",

	makeGame { dir = "a", id = "alienswarm", files = { ["alienswarm.eti"] = { size = "12MiB", seed = 85 } } },
	makeGame { dir = "b", id = "alienswarm", files = { ["alienswarm.eti"] = { size = "12MiB", seed = 85 } } },
	makeGame { dir = "h", id = "alienswarm", files = { ["alienswarm.eti"] = { size = "12MiB", seed = 85 } } },
	makeGame { dir = "g", id = "alienswarm", files = { ["alienswarm.eti"] = { size = "12MiB", seed = 85 } } },

	peer { name = "a", games = "a", readonly = true },
	peer { name = "b", games = "b", readonly = true },
	hostilePeer { name = "h", games = "h", behaviour = "wrong-bytes" },
	hostilePeer { name = "g", games = "g", behaviour = "wrong-digests" },

	-- wrong-bytes among honest sources.
	peer { name = "c1", chunkSize = "4MiB" },
	connect { from = "c1", to = { "a", "b", "h" } },
	waitGame { peer = "c1", game = "alienswarm", peerCount = 3 },
	download { peer = "c1", game = "alienswarm", timeout = "60s", label = "bytes-among-honest" },
	expectEvent { peer = "c1", event = "source-bad-chunk", peerId = "h", from = "bytes-among-honest",
		match = { game_id = "alienswarm" } },
	expectNoEvent { peer = "c1", event = "source-bad-chunk", peerId = "a" },
	expectNoEvent { peer = "c1", event = "source-bad-chunk", peerId = "b" },
	expectEvent { peer = "c1", event = "download-chunk-retry", match = { game_id = "alienswarm" } },
	expectNoEvent { peer = "c1", event = "download-failed" },
	expectChunks { peer = "c1", game = "alienswarm", neverFrom = { "h" } },
	expectSameFiles { game = "alienswarm", source = "a", target = "c1" },
	expectEntries { peer = "c1", path = ".", only = { "alienswarm" } },
	expectEntries { peer = "c1", path = "alienswarm", only = { "alienswarm.eti", "version.ini" } },

	-- wrong-digests among honest sources: out-voted before any byte moves.
	peer { name = "c2", chunkSize = "4MiB" },
	connect { from = "c2", to = { "a", "b", "g" } },
	waitGame { peer = "c2", game = "alienswarm", peerCount = 3 },
	download { peer = "c2", game = "alienswarm", timeout = "60s", label = "digests-among-honest" },
	expectEvent { peer = "c2", event = "source-disagrees", peerId = "g", from = "digests-among-honest",
		match = { game_id = "alienswarm", path = "alienswarm.eti" } },
	expectNoEvent { peer = "c2", event = "source-disagrees", peerId = "a" },
	expectNoEvent { peer = "c2", event = "source-disagrees", peerId = "b" },
	expectNoEvent { peer = "c2", event = "download-failed" },
	expectSameFiles { game = "alienswarm", source = "a", target = "c2" },
	expectEntries { peer = "c2", path = ".", only = { "alienswarm" } },

	-- Each liar as the only source: a clean failure, then an honest download.
	peer { name = "solo", chunkSize = "4MiB" },
	connect { from = "solo", to = "h" },
	waitGame { peer = "solo", game = "alienswarm", peerCount = 1 },
	download { peer = "solo", game = "alienswarm", expect = "failed", timeout = "60s", label = "bytes-alone" },
	expectEvent { peer = "solo", event = "source-bad-chunk", peerId = "h", from = "bytes-alone" },
	expectNoFile { peer = "solo", path = "alienswarm/version.ini" },
	expectEntries { peer = "solo", path = ".", only = { "alienswarm" } },
	expectStatus { peer = "solo", activeOperations = {} },
	expectGames { peer = "solo", games = { alienswarm = { downloaded = false, peerCount = 1 } } },
	shutdownPeer { name = "h" },
	connect { from = "solo", to = "g" },
	waitGame { peer = "solo", game = "alienswarm", peerCount = 1 },
	download { peer = "solo", game = "alienswarm", expect = "failed", timeout = "60s", label = "digests-alone" },
	-- A sole source is its own majority: its digests fail its own bytes.
	expectEvent { peer = "solo", event = "source-bad-chunk", peerId = "g", from = "digests-alone" },
	expectNoFile { peer = "solo", path = "alienswarm/version.ini" },
	expectStatus { peer = "solo", activeOperations = {} },
	connect { from = "solo", to = { "a", "b" } },
	waitGame { peer = "solo", game = "alienswarm", peerCount = 3 },
	download { peer = "solo", game = "alienswarm", timeout = "60s", label = "honest" },
	expectNoEvent { peer = "solo", event = "download-failed", from = "honest" },
	expectFile { peer = "solo", path = "alienswarm/version.ini", contents = "20190317" },
	expectSameFiles { game = "alienswarm", source = "a", target = "solo" },
	expectEntries { peer = "solo", path = ".", only = { "alienswarm" } },
	expectStatus { peer = "solo", activeOperations = {} },
}
