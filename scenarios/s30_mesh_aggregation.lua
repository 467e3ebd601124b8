-- S30 (and S3): aggregation over a five-peer mesh.
-- Five peers advertise partly overlapping catalog games; a sixth connects to
-- all five. list-games must hold one row per game ID with the number of
-- catalog-version peers offering it, the catalog version, no duplicates and
-- no row or peer entry for the client itself.
scenario
{
	name = "s30_mesh_aggregation",
	timeout = "60s",

	makeGame { dir = "a", id = "ggoo", files = { x = "1" } },
	makeGame { dir = "a", id = "bf1942", files = { x = "1" } },
	makeGame { dir = "b", id = "ggoo", files = { x = "1" } },
	makeGame { dir = "b", id = "cnc4", files = { x = "1" } },
	makeGame { dir = "c", id = "cnc4", files = { x = "1" } },
	makeGame { dir = "c", id = "cod5", files = { x = "1" } },
	makeGame { dir = "d", id = "cnctw", files = { x = "1" } },
	makeGame { dir = "d", id = "coh", files = { x = "1" } },
	makeGame { dir = "e", id = "cnctw", files = { x = "1" } },
	makeGame { dir = "e", id = "bf1942", files = { x = "1" } },
	-- A stale root in the mix counts for nothing.
	makeGame { dir = "e", id = "cod6", version = "20100101", files = { x = "1" } },

	peer { name = "a", games = "a" },
	peer { name = "b", games = "b" },
	peer { name = "c", games = "c" },
	peer { name = "d", games = "d" },
	peer { name = "e", games = "e" },
	peer { name = "client" },
	connect { from = "client", to = { "a", "b", "c", "d", "e" } },

	expectPeers { peer = "client", count = 5, peers = { a = {}, b = {}, c = {}, d = {}, e = {} } },
	expectGames { peer = "client", only = true, absent = { "cod6" }, games = {
		ggoo = { peerCount = 2, version = "20200721" },
		bf1942 = { peerCount = 2, version = "20160130" },
		cnc4 = { peerCount = 2, version = "20170204" },
		cod5 = { peerCount = 1, version = "20160920" },
		cnctw = { peerCount = 2, version = "20160128" },
		coh = { peerCount = 1, version = "20200907" },
	} },
}
