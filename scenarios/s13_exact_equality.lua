-- S13: exact equality of small and large files.
-- The source holds a one-byte file, an empty file, a short text, a file
-- exactly one chunk long and a large file that is not a whole number of
-- chunks (so its last chunk is short). Two identical sources split the
-- chunks. Every file on the client must equal the source's, byte for byte.
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
}
