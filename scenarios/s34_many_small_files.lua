-- S34: a game of many small files.
-- The source holds 20 small files in nested folders plus version.ini. Each
-- file is one chunk, so the client must report exactly 21 chunk events,
-- every one distinct, and end with the source's exact files.
local files = {}
for i = 1, 20 do
	files[string.format("data/part%02d/file%02d.txt", i % 4, i)] = string.rep("file " .. i .. "\n", i)
end
scenario
{
	name = "s34_many_small_files",
	timeout = "60s",

	makeGame { dir = "s", id = "css", files = files },
	peer { name = "s", games = "s", readonly = true },
	peer { name = "client", chunkSize = "1MiB" },
	connect { from = "client", to = "s" },
	waitGame { peer = "client", game = "css", peerCount = 1 },

	download { peer = "client", game = "css" },
	expectChunks { peer = "client", game = "css", onlyFrom = { "s" }, chunks = 21 },
	expectEvent { peer = "client", event = "download-begin", match = { game_id = "css", files = 21, chunks = 21 } },
	expectSameFiles { game = "css", source = "s", target = "client" },
}
