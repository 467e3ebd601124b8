-- S16: fan-out with a stale peer present.
-- As S14, plus a: a stale cnc4 (20150101, run with its own old catalog so
-- it advertises and serves it) with the same file names and sizes. The
-- client must split the work between b and c exactly as in S14; a must
-- contribute nothing, not even a file list.
scenario
{
	name = "s16_fanout_with_stale",
	timeout = "60s",

	makeGame { dir = "a", id = "cnc4", version = "20150101",
		files = { ["cnc4.eti"] = { size = "8MiB", seed = 99 }, ["readme.txt"] = "stale..." } },
	makeGame { dir = "b", id = "cnc4", files = { ["cnc4.eti"] = { size = "8MiB", seed = 16 }, ["readme.txt"] = "8 bytes!" } },
	makeGame { dir = "c", id = "cnc4", files = { ["cnc4.eti"] = { size = "8MiB", seed = 16 }, ["readme.txt"] = "8 bytes!" } },

	peer { name = "a", games = "a", readonly = true, catalog = "../redirects/catalogs/cnc4-20150101.json" },
	peer { name = "b", games = "b", readonly = true },
	peer { name = "c", games = "c", readonly = true },
	peer { name = "client", chunkSize = "2MiB" },
	connect { from = "client", to = { "a", "b", "c" } },
	expectPeers { peer = "client", count = 3, peers = { a = { games = { cnc4 = "20150101" } } } },
	waitGame { peer = "client", game = "cnc4", peerCount = 2 },

	download { peer = "client", game = "cnc4" },
	expectChunks { peer = "client", game = "cnc4", chunks = 6, neverFrom = { "a" },
		totals = { b = 2 * 2097152 + 8, c = 2 * 2097152 + 8 } },
	expectEvent { peer = "client", event = "download-begin", match = { game_id = "cnc4", chunks = 6 } },
	expectSameFiles { game = "cnc4", source = "b", target = "client" },
	expectStatus { peer = "a", activeOutboundTransfers = {} },
}
