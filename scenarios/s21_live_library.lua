-- S21, S22, S23: library changes reach connected peers without a reconnect,
-- each within 2 s.
-- a and b are connected once. Then, on a's disk: a game root is dropped in
-- (add), a stale root turns into the catalog version (version bump), and a
-- root is deleted (remove). b's list-games follows every change while the
-- connection stays the same (b keeps exactly one peer entry throughout).
scenario
{
	name = "s21_live_library",
	timeout = "60s",

	makeGame { dir = "a", id = "ggoo", files = { ["ggoo.eti"] = "g" } },
	makeGame { dir = "a", id = "cnc4", version = "20160101", files = { ["cnc4.eti"] = "stale" } },
	peer { name = "a", games = "a" },
	peer { name = "b" },
	connect { from = "b", to = "a" },
	expectGames { peer = "b", only = true, games = { ggoo = { peerCount = 1 } }, absent = { "cnc4", "coh" } },

	-- S21: an external drop of a new root (the sentinel is written last).
	makeGame { dir = "a", id = "coh", files = { ["coh.eti"] = "dropped in" } },
	expectGames { peer = "b", timeout = "2s", games = { ggoo = { peerCount = 1 }, coh = { peerCount = 1 } } },

	-- S23: the stale root becomes catalog-version and downloadable.
	fsCreateFile { path = "a/cnc4/version.ini", contents = "20170204" },
	expectGames { peer = "b", timeout = "2s", games = { cnc4 = { peerCount = 1, version = "20170204" } } },

	-- S22: a root disappears.
	fsDeleteFolder { path = "a/ggoo" },
	expectGames { peer = "b", timeout = "2s", only = true, games = { coh = { peerCount = 1 }, cnc4 = { peerCount = 1 } }, absent = { "ggoo" } },

	-- All over the first connection: b never lost a or saw it twice.
	expectPeers { peer = "b", count = 1, peers = { a = { games = { coh = "20200907", cnc4 = "20170204" } } } },
	download { peer = "b", game = "cnc4" },
	expectSameFiles { game = "cnc4", source = "a", target = "b" },
}
