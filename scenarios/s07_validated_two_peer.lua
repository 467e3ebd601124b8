-- S7: a validated two-peer download.
-- a and b hold identical catalog-version cnc4 roots; c holds a cnc4 folder
-- without version.ini (not ready, so not a source). The client (1 MiB
-- chunks) must fetch every chunk from a or b, use both, never fetch a chunk
-- twice, and commit version.ini once, holding the catalog version.
scenario
{
	name = "s07_validated_two_peer",
	timeout = "60s",

	makeGame { dir = "a", id = "cnc4",
		files = { ["cnc4.eti"] = { size = "6MiB", seed = 7 }, ["data/readme.txt"] = "two sources" } },
	makeGame { dir = "b", id = "cnc4",
		files = { ["cnc4.eti"] = { size = "6MiB", seed = 7 }, ["data/readme.txt"] = "two sources" } },
	makeGame { dir = "c", id = "cnc4", sentinel = false,
		files = { ["cnc4.eti"] = { size = "6MiB", seed = 7 }, ["data/readme.txt"] = "two sources" } },

	peer { name = "a", games = "a", readonly = true },
	peer { name = "b", games = "b", readonly = true },
	peer { name = "c", games = "c", readonly = true },
	peer { name = "client", chunkSize = "1MiB" },
	connect { from = "client", to = { "a", "b", "c" } },
	waitGame { peer = "client", game = "cnc4", peerCount = 2 },

	download { peer = "client", game = "cnc4" },
	expectChunks { peer = "client", game = "cnc4", onlyFrom = { "a", "b" }, servedBy = { "a", "b" },
		neverFrom = { "c" }, balanced = true, chunks = 8 },
	expectEvent { peer = "client", event = "download-finished", match = { game_id = "cnc4", version = "20170204" } },
	expectNoEvent { peer = "client", event = "download-failed" },
	expectNoEvent { peer = "client", event = "download-chunk-retry" },
	expectFile { peer = "client", path = "cnc4/version.ini", contents = "20170204" },
	expectNoFile { peer = "client", path = "cnc4/.lanspread-version.ini.part" },
	expectSameFiles { game = "cnc4", source = "a", target = "client" },
	expectGames { peer = "client", games = { cnc4 = { downloaded = true } } },
	expectStatus { peer = "client", activeOperations = {} },
}
