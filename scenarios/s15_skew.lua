-- S15: catalog-version skew.
-- Three peers advertise cnc4: a and b with stale version.ini values, c with
-- the catalog's version (20170204). Each version has different bytes, and
-- the stale peers run older catalogs of their own, so they do offer and
-- serve their stale roots: only the client's catalog can keep them out. The
-- empty client must list one row with peer_count = 1, download only from c,
-- and end up with exactly c's files.
scenario
{
	name = "s15_skew",
	timeout = "90s",

	makeGame { dir = "a", id = "cnc4", version = "20150101",
		files = { ["cnc4.eti"] = { size = "3MiB", seed = 1 }, ["data/readme.txt"] = "stale A" } },
	makeGame { dir = "b", id = "cnc4", version = "20160101",
		files = { ["cnc4.eti"] = { size = "5MiB", seed = 2 }, ["data/readme.txt"] = "stale B" } },
	makeGame { dir = "c", id = "cnc4",
		files = { ["cnc4.eti"] = { size = "4MiB", seed = 3 }, ["data/readme.txt"] = "catalog C" } },

	peer { name = "a", games = "a", catalog = "../redirects/catalogs/cnc4-20150101.json" },
	peer { name = "b", games = "b", catalog = "../redirects/catalogs/cnc4-20160101.json" },
	peer { name = "c", games = "c", readonly = true },
	peer { name = "client", chunkSize = "1MiB" },
	connect { from = "client", to = { "a", "b", "c" } },

	-- The stale roots really are advertised (raw versions in list-peers)…
	expectPeers { peer = "client", count = 3, peers = {
		a = { games = { cnc4 = "20150101" } },
		b = { games = { cnc4 = "20160101" } },
		c = { games = { cnc4 = "20170204" } },
	} },
	-- …and filtered by the client's catalog.
	waitGame { peer = "client", game = "cnc4", peerCount = 1, version = "20170204" },
	download { peer = "client", game = "cnc4" },

	expectChunks { peer = "client", game = "cnc4", onlyFrom = { "c" }, neverFrom = { "a", "b" } },
	expectSameFiles { game = "cnc4", source = "c", target = "client" },
}
