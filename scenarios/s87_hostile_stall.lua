-- S87 (issue #14 §4): a hostile source that stalls mid-chunk.
-- h answers every chunk with its header and half of its bytes, then sends
-- nothing more and keeps the stream and the connection open (its
-- keep-alives go on, so the 4 s idle timeout never ends it). Without a
-- per-chunk timeout the download would wait forever.
-- Among the honest a and b, the client must name h in source-stalled after
-- STALL_TIMEOUT (5 s) without a byte, move the chunk (download-chunk-retry)
-- and finish byte-exact well within the step's 30 s. As the only source of
-- a second client, the download must fail cleanly within 30 s (no
-- version.ini, the operation cleared), and an honest download then works.
scenario
{
	name = "s87_hostile_stall",
	timeout = "120s",

	makeGame { dir = "a", id = "alienswarm", files = { ["alienswarm.eti"] = { size = "12MiB", seed = 87 } } },
	makeGame { dir = "b", id = "alienswarm", files = { ["alienswarm.eti"] = { size = "12MiB", seed = 87 } } },
	makeGame { dir = "h", id = "alienswarm", files = { ["alienswarm.eti"] = { size = "12MiB", seed = 87 } } },

	peer { name = "a", games = "a", readonly = true },
	peer { name = "b", games = "b", readonly = true },
	hostilePeer { name = "h", games = "h", behaviour = "stall" },

	peer { name = "c1", chunkSize = "4MiB" },
	connect { from = "c1", to = { "a", "b", "h" } },
	waitGame { peer = "c1", game = "alienswarm", peerCount = 3 },
	download { peer = "c1", game = "alienswarm", timeout = "30s", label = "stall-among-honest" },
	expectEvent { peer = "c1", event = "source-stalled", peerId = "h", from = "stall-among-honest",
		match = { game_id = "alienswarm" } },
	expectNoEvent { peer = "c1", event = "source-stalled", peerId = "a" },
	expectNoEvent { peer = "c1", event = "source-stalled", peerId = "b" },
	-- h may have stalled on one or two chunks (its share depends on the
	-- address order), each moved to a or b.
	expectEvent { peer = "c1", event = "download-chunk-retry", from = "stall-among-honest",
		match = { game_id = "alienswarm" } },
	expectNoEvent { peer = "c1", event = "download-failed" },
	expectChunks { peer = "c1", game = "alienswarm", neverFrom = { "h" } },
	expectSameFiles { game = "alienswarm", source = "a", target = "c1" },
	expectEntries { peer = "c1", path = ".", only = { "alienswarm" } },
	expectEntries { peer = "c1", path = "alienswarm", only = { "alienswarm.eti", "version.ini" } },
	-- The stalled uploads end once the client gave up on them.
	expectStatus { peer = "h", activeOutboundTransfers = {} },

	peer { name = "solo", chunkSize = "4MiB" },
	connect { from = "solo", to = "h" },
	waitGame { peer = "solo", game = "alienswarm", peerCount = 1 },
	download { peer = "solo", game = "alienswarm", expect = "failed", error = "stalled",
		timeout = "30s", label = "stall-alone" },
	expectEvent { peer = "solo", event = "source-stalled", peerId = "h", from = "stall-alone" },
	expectNoFile { peer = "solo", path = "alienswarm/version.ini" },
	expectEntries { peer = "solo", path = ".", only = { "alienswarm" } },
	expectStatus { peer = "solo", activeOperations = {} },
	expectGames { peer = "solo", games = { alienswarm = { downloaded = false, peerCount = 1 } } },
	shutdownPeer { name = "h" },
	connect { from = "solo", to = { "a", "b" } },
	waitGame { peer = "solo", game = "alienswarm", peerCount = 2 },
	download { peer = "solo", game = "alienswarm", timeout = "60s", label = "honest" },
	expectFile { peer = "solo", path = "alienswarm/version.ini", contents = "20190317" },
	expectSameFiles { game = "alienswarm", source = "a", target = "solo" },
	expectStatus { peer = "solo", activeOperations = {} },
}
