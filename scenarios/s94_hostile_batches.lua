-- S94 (issues #13, #14): lies inside batched requests. 200 files of 4 KiB
-- on the honest a and on two liars: hs (short-chunk) sends half of each
-- answer and ends the stream, hw (wrong-bytes) sends the announced length
-- with every byte altered. Their short chunks reach them as `chunks`
-- requests of many parts, and each lie covers the whole answer. The client
-- must name hs in source-failed and drop it, keeping only the parts that
-- arrived whole and verified (hs's first answer of 64 parts sends 32);
-- refuse each of hw's parts on its own (source-bad-chunk naming hw, the
-- rest of the batch still read in step) and take none of them; and end
-- byte-exact, the rest from a.
local files = {}
for i = 0, 199 do
	files[string.format("data/f%03d.bin", i)] = { size = "4KiB", seed = i % 7 }
end
scenario
{
	name = "s94_hostile_batches",
	timeout = "90s",

	makeGame { dir = "a", id = "css", files = files },
	makeGame { dir = "hs", id = "css", files = files },
	makeGame { dir = "hw", id = "css", files = files },
	peer { name = "a", games = "a", readonly = true },
	hostilePeer { name = "hs", games = "hs", behaviour = "short-chunk" },
	hostilePeer { name = "hw", games = "hw", behaviour = "wrong-bytes" },
	peer { name = "client" },
	connect { from = "client", to = { "a", "hs", "hw" } },
	waitGame { peer = "client", game = "css", peerCount = 3 },

	download { peer = "client", game = "css", label = "among-liars" },
	expectEvent { peer = "hs", event = "upload-begin", match = { game_id = "css", parts = 64 },
		label = "the liars get batches" },
	expectEvent { peer = "hw", event = "upload-begin", match = { game_id = "css", parts = 64 } },
	expectEvent { peer = "client", event = "source-failed", peerId = "hs", from = "among-liars" },
	expectEvent { peer = "client", event = "source-bad-chunk", peerId = "hw", from = "among-liars",
		count = 2 },
	expectNoEvent { peer = "client", event = "source-failed", peerId = "a" },
	expectNoEvent { peer = "client", event = "source-bad-chunk", peerId = "a" },
	expectChunks { peer = "client", game = "css", chunks = 201, neverFrom = { "hw" },
		perSource = { hs = { atMost = 32 } } },
	expectSameFiles { game = "css", source = "a", target = "client" },
	expectStatus { peer = "client", activeOperations = {} },
}
