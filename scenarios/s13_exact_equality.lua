-- S13: exact equality of small and large files.
-- The source holds a one-byte file, an empty file, a short text, a file
-- exactly one chunk long and a large file that is not a whole number of
-- chunks (so its last chunk is short). Two identical sources split the
-- chunks. Every file on the client must equal the source's, byte for byte.
-- A second client uses chunks of 1000003 bytes, so almost no chunk starts
-- on a 4 KiB boundary: its writes mix the direct (O_DIRECT) path and the
-- buffered one inside one file, and must still give the exact bytes.
scenario
{
	name = "s13_exact_equality",
	timeout = "60s",

	makeGame { dir = "a", id = "coh", files = {
		["coh.eti"] = { size = 9 * 1048576 + 4099, seed = 13 },
		["data/one-chunk.bin"] = { size = "1MiB", seed = 14 },
		["data/byte.bin"] = "x",
		["data/empty.bin"] = "",
		["readme.txt"] = "small and large\n",
	} },
	makeGame { dir = "b", id = "coh", files = {
		["coh.eti"] = { size = 9 * 1048576 + 4099, seed = 13 },
		["data/one-chunk.bin"] = { size = "1MiB", seed = 14 },
		["data/byte.bin"] = "x",
		["data/empty.bin"] = "",
		["readme.txt"] = "small and large\n",
	} },

	peer { name = "a", games = "a", readonly = true },
	peer { name = "b", games = "b", readonly = true },
	peer { name = "client", chunkSize = "1MiB" },
	connect { from = "client", to = { "a", "b" } },
	waitGame { peer = "client", game = "coh", peerCount = 2 },

	download { peer = "client", game = "coh" },
	-- 10 chunks of coh.eti, 1 + 1 + 1 + 1 small ones and version.ini.
	expectChunks { peer = "client", game = "coh", servedBy = { "a", "b" }, chunks = 15 },
	expectSameFiles { game = "coh", source = "a", target = "client" },
	expectFile { peer = "client", path = "coh/data/empty.bin", size = 0 },
	expectFile { peer = "client", path = "coh/data/byte.bin", contents = "x" },
	expectFile { peer = "client", path = "coh/coh.eti", size = 9 * 1048576 + 4099 },

	peer { name = "odd", chunkSize = "1000003" },
	connect { from = "odd", to = { "a", "b" } },
	waitGame { peer = "odd", game = "coh", peerCount = 2 },
	download { peer = "odd", game = "coh" },
	-- coh.eti: 9 chunks of 1000003 bytes and a short tenth; one-chunk.bin:
	-- 2 (1 MiB > 1000003 bytes); three small files and version.ini.
	expectChunks { peer = "odd", game = "coh", servedBy = { "a", "b" }, chunks = 16 },
	expectSameFiles { game = "coh", source = "a", target = "odd" },
}
