-- S36: one catalog-version peer beats a stale majority.
-- Four peers hold cnc4 at 20160101 and run an older catalog that calls that
-- version current, so they offer and would serve it; one peer holds the
-- catalog's 20170204. The client lists peer_count = 1 and takes every
-- descriptor and chunk from the singleton.
scenario
{
	name = "s36_catalog_singleton",
	timeout = "60s",

	makeGame { dir = "good", id = "cnc4", files = { ["cnc4.eti"] = { size = "2MiB", seed = 1 } } },
	makeGame { dir = "stale", id = "cnc4", version = "20160101", files = { ["cnc4.eti"] = { size = "2MiB", seed = 2 } } },
	peer { name = "good", games = "good" },
	peer { name = "s1", games = "stale", catalog = "../redirects/catalogs/cnc4-20160101.json" },
	peer { name = "s2", games = "stale", catalog = "../redirects/catalogs/cnc4-20160101.json" },
	peer { name = "s3", games = "stale", catalog = "../redirects/catalogs/cnc4-20160101.json" },
	peer { name = "s4", games = "stale", catalog = "../redirects/catalogs/cnc4-20160101.json" },
	peer { name = "client", chunkSize = "512KiB" },
	connect { from = "client", to = { "good", "s1", "s2", "s3", "s4" } },

	expectPeers { peer = "client", count = 5, peers = { s1 = { games = { cnc4 = "20160101" } }, good = { games = { cnc4 = "20170204" } } } },
	expectGames { peer = "client", only = true, games = { cnc4 = { peerCount = 1, version = "20170204" } } },
	download { peer = "client", game = "cnc4" },
	expectChunks { peer = "client", game = "cnc4", onlyFrom = { "good" }, neverFrom = { "s1", "s2", "s3", "s4" } },
	expectSameFiles { game = "cnc4", source = "good", target = "client" },
}
