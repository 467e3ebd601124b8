-- S86 (issue #14 §4): hostile sources that lie about a chunk's length.
-- short-chunk: hs announces each chunk's full length, sends half of it and
-- ends the stream. long-chunk: hl announces the length and sends 64 KiB
-- more. Each is one of three sources beside the honest a and b, then the
-- only source of a second client.
-- Among honest sources the download must finish byte-exact, the liar named
-- in source-failed (never a or b) and its chunks moved; as the only source
-- the download must fail cleanly (no version.ini, nothing outside the
-- root, the operation cleared), and an honest download then works.
scenario
{
	name = "s86_hostile_lengths",
	timeout = "150s",

	makeGame { dir = "a", id = "alienswarm", files = { ["alienswarm.eti"] = { size = "12MiB", seed = 86 } } },
	makeGame { dir = "b", id = "alienswarm", files = { ["alienswarm.eti"] = { size = "12MiB", seed = 86 } } },
	makeGame { dir = "hs", id = "alienswarm", files = { ["alienswarm.eti"] = { size = "12MiB", seed = 86 } } },
	makeGame { dir = "hl", id = "alienswarm", files = { ["alienswarm.eti"] = { size = "12MiB", seed = 86 } } },

	peer { name = "a", games = "a", readonly = true },
	peer { name = "b", games = "b", readonly = true },
	hostilePeer { name = "hs", games = "hs", behaviour = "short-chunk" },
	hostilePeer { name = "hl", games = "hl", behaviour = "long-chunk" },

	-- short-chunk among honest sources.
	peer { name = "c1", chunkSize = "4MiB" },
	connect { from = "c1", to = { "a", "b", "hs" } },
	waitGame { peer = "c1", game = "alienswarm", peerCount = 3 },
	download { peer = "c1", game = "alienswarm", timeout = "60s", label = "short-among-honest" },
	expectEvent { peer = "c1", event = "source-failed", peerId = "hs", from = "short-among-honest",
		match = { game_id = "alienswarm" } },
	expectNoEvent { peer = "c1", event = "source-failed", peerId = "a" },
	expectNoEvent { peer = "c1", event = "source-failed", peerId = "b" },
	expectEvent { peer = "c1", event = "download-chunk-retry", match = { game_id = "alienswarm" } },
	expectNoEvent { peer = "c1", event = "download-failed" },
	expectChunks { peer = "c1", game = "alienswarm", neverFrom = { "hs" } },
	expectSameFiles { game = "alienswarm", source = "a", target = "c1" },
	expectEntries { peer = "c1", path = ".", only = { "alienswarm" } },
	expectEntries { peer = "c1", path = "alienswarm", only = { "alienswarm.eti", "version.ini" } },

	-- long-chunk among honest sources.
	peer { name = "c2", chunkSize = "4MiB" },
	connect { from = "c2", to = { "a", "b", "hl" } },
	waitGame { peer = "c2", game = "alienswarm", peerCount = 3 },
	download { peer = "c2", game = "alienswarm", timeout = "60s", label = "long-among-honest" },
	expectEvent { peer = "c2", event = "source-failed", peerId = "hl", from = "long-among-honest",
		match = { game_id = "alienswarm" } },
	expectNoEvent { peer = "c2", event = "source-failed", peerId = "a" },
	expectNoEvent { peer = "c2", event = "source-failed", peerId = "b" },
	expectEvent { peer = "c2", event = "download-chunk-retry", match = { game_id = "alienswarm" } },
	expectNoEvent { peer = "c2", event = "download-failed" },
	expectSameFiles { game = "alienswarm", source = "a", target = "c2" },
	expectEntries { peer = "c2", path = ".", only = { "alienswarm" } },
	expectEntries { peer = "c2", path = "alienswarm", only = { "alienswarm.eti", "version.ini" } },

	-- Each liar as the only source, then an honest download.
	peer { name = "solo", chunkSize = "4MiB" },
	connect { from = "solo", to = "hs" },
	waitGame { peer = "solo", game = "alienswarm", peerCount = 1 },
	download { peer = "solo", game = "alienswarm", expect = "failed", error = "stream ended after",
		timeout = "60s", label = "short-alone" },
	expectEvent { peer = "solo", event = "source-failed", peerId = "hs", from = "short-alone" },
	expectNoFile { peer = "solo", path = "alienswarm/version.ini" },
	expectEntries { peer = "solo", path = ".", only = { "alienswarm" } },
	expectStatus { peer = "solo", activeOperations = {} },
	expectGames { peer = "solo", games = { alienswarm = { downloaded = false, peerCount = 1 } } },
	shutdownPeer { name = "hs" },
	connect { from = "solo", to = "hl" },
	waitGame { peer = "solo", game = "alienswarm", peerCount = 1 },
	download { peer = "solo", game = "alienswarm", expect = "failed", error = "more than the",
		timeout = "60s", label = "long-alone" },
	expectEvent { peer = "solo", event = "source-failed", peerId = "hl", from = "long-alone" },
	expectNoFile { peer = "solo", path = "alienswarm/version.ini" },
	expectStatus { peer = "solo", activeOperations = {} },
	shutdownPeer { name = "hl" },
	connect { from = "solo", to = { "a", "b" } },
	waitGame { peer = "solo", game = "alienswarm", peerCount = 2 },
	download { peer = "solo", game = "alienswarm", timeout = "60s", label = "honest" },
	expectNoEvent { peer = "solo", event = "download-failed", from = "honest" },
	expectFile { peer = "solo", path = "alienswarm/version.ini", contents = "20190317" },
	expectSameFiles { game = "alienswarm", source = "a", target = "solo" },
	expectEntries { peer = "solo", path = ".", only = { "alienswarm" } },
	expectStatus { peer = "solo", activeOperations = {} },
}
