-- S66 (issue #13): small files travel in batches, and one bad file in a
-- batch costs only itself. 300 files of 4 KiB on a and b: each is a chunk,
-- and a source sends a client's short chunks 64 to a request (`chunks`).
-- A first download has both sources hash and cache their digests; then
-- b's copies of two neighbouring files rot with size and mtime kept, so b
-- still sends the right digests with wrong bytes. Chunks are dealt to the
-- sources in turn, so b is dealt one of the two. The second download must
-- refuse that one part (one source-bad-chunk naming b), read the rest of
-- b's batch as it is and verify it, fetch the bad file from a, and end
-- byte-exact: b still serves all its other chunks.
local files = {}
for i = 0, 299 do
	files[string.format("data/f%03d.bin", i)] = { size = "4KiB", seed = i % 5 }
end
scenario
{
	name = "s66_batched_small_files",
	timeout = "60s",

	makeGame { dir = "a", id = "css", files = files },
	makeGame { dir = "b", id = "css", files = files },
	peer { name = "a", games = "a", readonly = true },
	peer { name = "b", games = "b" },
	peer { name = "client" },
	connect { from = "client", to = { "a", "b" } },
	waitGame { peer = "client", game = "css", peerCount = 2 },

	download { peer = "client", game = "css" },
	expectEvent { peer = "b", event = "upload-begin", match = { game_id = "css", parts = 64 },
		label = "short chunks go 64 to a request" },
	expectChunks { peer = "client", game = "css", chunks = 301 },

	fsDeleteFolder { peer = "client", path = "css" },
	expectGames { peer = "client", games = { css = { downloaded = false, peerCount = 2 } } },
	fsPatch { path = "b/css/data/f100.bin", offset = 7, hex = "01", xor = true, keepMtime = true },
	fsPatch { path = "b/css/data/f101.bin", offset = 7, hex = "01", xor = true, keepMtime = true },

	download { peer = "client", game = "css" },
	expectEvent { peer = "client", event = "source-bad-chunk", peerId = "b", match = { game_id = "css" } },
	expectNoEvent { peer = "client", event = "source-bad-chunk", peerId = "a" },
	-- b was dealt 150 or 151 of the 301 chunks and loses only the bad one:
	-- a batch whose bad part broke the stream would lose the parts after it.
	expectChunks { peer = "client", game = "css", chunks = 301, perSource = { b = { atLeast = 149 } } },
	expectSameFiles { game = "css", source = "a", target = "client" },
}
