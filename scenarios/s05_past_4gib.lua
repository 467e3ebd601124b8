-- S5: one file over 4 GiB, with offsets past 2^32.
-- A sparse 4 GiB + 4 MiB `.eti` carries marker bytes straddling 2^32 and
-- just before its end. Fetched in 512 MiB chunks, the copy has the exact
-- size and the markers where they were: an offset or length kept in 32
-- bits anywhere (plan, request, serve, write) would misplace or lose them.
scenario
{
	name = "s05_past_4gib",
	timeout = "120s",

	makeGame { dir = "s", id = "bf1942", files = { ["bf1942.eti"] = { size = "4100MiB", sparse = true } } },
	fsPatch { path = "s/bf1942/bf1942.eti", offset = 4294967294, hex = "a1b2c3d4" },
	fsPatch { path = "s/bf1942/bf1942.eti", offset = 4299161592, hex = "e5f60718" },
	peer { name = "s", games = "s" },
	peer { name = "c", chunkSize = "512MiB" },
	connect { from = "c", to = "s" },
	download { peer = "c", game = "bf1942", timeout = "100s" },
	expectChunks { peer = "c", game = "bf1942", onlyFrom = { "s" }, chunks = 10 },
	expectFile { peer = "c", path = "bf1942/bf1942.eti", size = "4100MiB", bytes = { offset = 4294967294, hex = "a1b2c3d4" } },
	expectFile { peer = "c", path = "bf1942/bf1942.eti", bytes = { offset = 4299161592, hex = "e5f60718" } },
	expectFile { peer = "c", path = "bf1942/bf1942.eti", bytes = { offset = 0, hex = "00000000" } },
}
