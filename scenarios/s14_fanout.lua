-- S14: fan-out over two sources.
-- b and c hold the same cnc4: a cnc4.eti of exactly four chunks (4 x 2 MiB)
-- and an 8-byte readme, the same size as version.ini. The client deals the
-- six chunks round-robin, so each source must serve exactly two chunks of
-- the .eti and one 8-byte file: 2 x 2 MiB + 8 bytes each.
scenario
{
	name = "s14_fanout",
	timeout = "60s",

	makeGame { dir = "b", id = "cnc4", files = { ["cnc4.eti"] = { size = "8MiB", seed = 14 }, ["readme.txt"] = "8 bytes!" } },
	makeGame { dir = "c", id = "cnc4", files = { ["cnc4.eti"] = { size = "8MiB", seed = 14 }, ["readme.txt"] = "8 bytes!" } },

	peer { name = "b", games = "b", readonly = true },
	peer { name = "c", games = "c", readonly = true },
	peer { name = "client", chunkSize = "2MiB" },
	connect { from = "client", to = { "b", "c" } },
	waitGame { peer = "client", game = "cnc4", peerCount = 2 },

	download { peer = "client", game = "cnc4" },
	expectChunks { peer = "client", game = "cnc4", chunks = 6,
		totals = { b = 2 * 2097152 + 8, c = 2 * 2097152 + 8 },
		-- Two .eti chunks and one 8-byte file each: version.ini is a chunk.
		perSource = { b = 3, c = 3 } },
	expectNoEvent { peer = "client", event = "download-chunk-retry" },
	expectSameFiles { game = "cnc4", source = "b", target = "client" },
}
