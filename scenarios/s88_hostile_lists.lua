-- S88 (issue #14 §4): hostile file lists and malformed frames.
-- escape-paths: e lists its real files plus ../, data/../../, absolute and
-- local/ paths. huge-sizes: z's first list gives every file a size near
-- 2^63, every later one has 1,000,001 descriptors (more than a receiver
-- takes). garbage: x answers every request with a malformed frame (not
-- JSON, a length past 4 MiB, an unknown type, an unknown field), and once
-- it has, sends one on its announce stream after the hello too.
-- Each list is checked on arrival: the liar is named in source-list-failed
-- (z's overlong list, slower than the others' grace among honest sources,
-- may instead be source-silent) and left out, and with honest a and b beside it the download finishes
-- byte-exact; as the only source the download fails cleanly. Nothing
-- lands outside the receiver's game root (not in its games dir, not in the
-- workspace where e's absolute path points, not under local/), and an
-- honest download then works. x's announce garbage drops its connection
-- (peer-dropped names it), and x is not listed afterwards.
scenario
{
	name = "s88_hostile_lists",
	timeout = "180s",

	makeGame { dir = "a", id = "alienswarm", files = { ["alienswarm.eti"] = { size = "6MiB", seed = 88 },
		["data/readme.txt"] = "read me" } },
	makeGame { dir = "b", id = "alienswarm", files = { ["alienswarm.eti"] = { size = "6MiB", seed = 88 },
		["data/readme.txt"] = "read me" } },
	makeGame { dir = "e", id = "alienswarm", files = { ["alienswarm.eti"] = { size = "6MiB", seed = 88 },
		["data/readme.txt"] = "read me" } },
	makeGame { dir = "z", id = "alienswarm", files = { ["alienswarm.eti"] = { size = "6MiB", seed = 88 },
		["data/readme.txt"] = "read me" } },
	makeGame { dir = "x", id = "alienswarm", files = { ["alienswarm.eti"] = { size = "6MiB", seed = 88 },
		["data/readme.txt"] = "read me" } },

	peer { name = "a", games = "a", readonly = true },
	peer { name = "b", games = "b", readonly = true },
	hostilePeer { name = "e", games = "e", behaviour = "escape-paths" },
	hostilePeer { name = "z", games = "z", behaviour = "huge-sizes" },
	hostilePeer { name = "x", games = "x", behaviour = "garbage" },

	-- escape-paths among honest sources, then alone.
	peer { name = "c1", chunkSize = "2MiB" },
	connect { from = "c1", to = { "a", "b", "e" } },
	waitGame { peer = "c1", game = "alienswarm", peerCount = 3 },
	download { peer = "c1", game = "alienswarm", timeout = "60s", label = "escape-among-honest" },
	expectEvent { peer = "c1", event = "source-list-failed", peerId = "e", from = "escape-among-honest",
		match = { game_id = "alienswarm" } },
	expectNoEvent { peer = "c1", event = "source-list-failed", peerId = "a" },
	expectNoEvent { peer = "c1", event = "source-list-failed", peerId = "b" },
	expectChunks { peer = "c1", game = "alienswarm", neverFrom = { "e" } },
	expectSameFiles { game = "alienswarm", source = "a", target = "c1" },
	expectEntries { peer = "c1", path = ".", only = { "alienswarm" } },
	expectEntries { peer = "c1", path = "alienswarm", only = { "alienswarm.eti", "version.ini", "data" } },
	expectEntries { peer = "c1", path = "alienswarm/data", only = { "readme.txt" } },
	expectNoFile { path = "escape-absolute.bin" },

	peer { name = "solo1", chunkSize = "2MiB" },
	connect { from = "solo1", to = "e" },
	waitGame { peer = "solo1", game = "alienswarm", peerCount = 1 },
	download { peer = "solo1", game = "alienswarm", expect = "failed", error = "escapes the game root",
		timeout = "30s", label = "escape-alone" },
	expectEvent { peer = "solo1", event = "source-list-failed", peerId = "e", from = "escape-alone" },
	expectEntries { peer = "solo1", path = ".", only = {} },
	expectNoFile { path = "escape-absolute.bin" },
	expectStatus { peer = "solo1", activeOperations = {} },
	shutdownPeer { name = "e" },
	connect { from = "solo1", to = { "a", "b" } },
	waitGame { peer = "solo1", game = "alienswarm", peerCount = 2 },
	download { peer = "solo1", game = "alienswarm", timeout = "60s" },
	expectSameFiles { game = "alienswarm", source = "a", target = "solo1" },
	expectEntries { peer = "solo1", path = ".", only = { "alienswarm" } },

	-- huge-sizes: sizes near 2^63 (its first answer), then too many
	-- descriptors (every later one), among honest sources and alone.
	peer { name = "c2", chunkSize = "2MiB" },
	connect { from = "c2", to = { "a", "b", "z" } },
	waitGame { peer = "c2", game = "alienswarm", peerCount = 3 },
	download { peer = "c2", game = "alienswarm", timeout = "60s", label = "sizes-among-honest" },
	expectEvent { peer = "c2", event = "source-list-failed", peerId = "z", from = "sizes-among-honest",
		match = { game_id = "alienswarm", error = "alienswarm.eti: 6 digests for 9223372036854775807 bytes (8796093022208 blocks)" } },
	expectSameFiles { game = "alienswarm", source = "a", target = "c2" },
	expectEntries { peer = "c2", path = ".", only = { "alienswarm" } },
	fsDeleteFolder { peer = "c2", path = "alienswarm" },
	expectGames { peer = "c2", games = { alienswarm = { downloaded = false, peerCount = 3 } } },
	-- The overlong list takes z longer than the others' grace, so z is left
	-- out as source-silent or source-list-failed, whichever comes first.
	download { peer = "c2", game = "alienswarm", timeout = "60s", label = "count-among-honest" },
	expectChunks { peer = "c2", game = "alienswarm", neverFrom = { "z" } },
	expectSameFiles { game = "alienswarm", source = "a", target = "c2" },
	expectEntries { peer = "c2", path = ".", only = { "alienswarm" } },

	peer { name = "solo2", chunkSize = "2MiB" },
	connect { from = "solo2", to = "z" },
	waitGame { peer = "solo2", game = "alienswarm", peerCount = 1 },
	download { peer = "solo2", game = "alienswarm", expect = "failed", error = "file list longer than",
		timeout = "60s", label = "count-alone" },
	expectEvent { peer = "solo2", event = "source-list-failed", peerId = "z", from = "count-alone",
		match = { game_id = "alienswarm", error = "file list longer than 1000000 files or 128 MiB" } },
	expectEntries { peer = "solo2", path = ".", only = {} },
	expectStatus { peer = "solo2", activeOperations = {} },
	shutdownPeer { name = "z" },
	connect { from = "solo2", to = { "a", "b" } },
	waitGame { peer = "solo2", game = "alienswarm", peerCount = 2 },
	download { peer = "solo2", game = "alienswarm", timeout = "60s" },
	expectSameFiles { game = "alienswarm", source = "a", target = "solo2" },

	-- garbage: alone first (its garbled answers), then its announce
	-- stream's garbage drops every connection right after the hello.
	peer { name = "solo3", chunkSize = "2MiB" },
	connect { from = "solo3", to = "x" },
	waitGame { peer = "solo3", game = "alienswarm", peerCount = 1 },
	download { peer = "solo3", game = "alienswarm", expect = "failed", error = "no source sent a file list",
		timeout = "30s", label = "garbage-alone" },
	expectEvent { peer = "solo3", event = "source-list-failed", peerId = "x", from = "garbage-alone" },
	expectEvent { peer = "solo3", event = "peer-dropped", peerId = "x", from = "garbage-alone" },
	expectPeers { peer = "solo3", count = 0 },
	expectEntries { peer = "solo3", path = ".", only = {} },
	expectStatus { peer = "solo3", activeOperations = {} },

	peer { name = "c3", chunkSize = "2MiB" },
	connect { from = "c3", to = { "a", "b", "x" }, label = "garbage-among-honest" },
	expectEvent { peer = "c3", event = "peer-dropped", peerId = "x", from = "garbage-among-honest" },
	expectPeers { peer = "c3", count = 2 },
	waitGame { peer = "c3", game = "alienswarm", peerCount = 2 },
	download { peer = "c3", game = "alienswarm", timeout = "60s" },
	expectChunks { peer = "c3", game = "alienswarm", neverFrom = { "x" } },
	expectSameFiles { game = "alienswarm", source = "a", target = "c3" },
	expectEntries { peer = "c3", path = ".", only = { "alienswarm" } },
	connect { from = "solo3", to = { "a", "b" } },
	waitGame { peer = "solo3", game = "alienswarm", peerCount = 2 },
	download { peer = "solo3", game = "alienswarm", timeout = "60s" },
	expectSameFiles { game = "alienswarm", source = "a", target = "solo3" },
}
