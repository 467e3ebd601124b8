-- S73: library changes converge over a lossy LAN and across a healed
-- partition, with no reconnect command.
-- a and b are hosts on the lab LAN; b's link drops 5 % of packets both
-- ways. b dials a once. On a's disk a root is added, a stale root is bumped
-- to the catalog version and a root is removed: b's list-games follows
-- each change over that one connection. Then a is partitioned away until
-- b has dropped it (the 4 s idle timeout), a game is added on a while the
-- partition holds, and the LAN heals: b must redial a by itself (no
-- connect step) and list the game added during the partition.
scenario
{
	name = "s73_library_converge",
	network = "lan",
	tags = { "lan" },
	timeout = "60s",

	makeGame { dir = "a", id = "ggoo", files = { ["ggoo.eti"] = "g" } },
	makeGame { dir = "a", id = "cnc4", version = "20160101", files = { ["cnc4.eti"] = "stale" } },
	peer { name = "a", games = "a" },
	peer { name = "b" },
	impair { peer = "b", loss = "5%" },
	connect { from = "b", to = "a" },
	expectGames { peer = "b", only = true, games = { ggoo = { peerCount = 1 } }, absent = { "cnc4", "coh" } },

	-- Under 5 % loss: add, version bump, remove.
	makeGame { dir = "a", id = "coh", files = { ["coh.eti"] = "dropped in" } },
	expectGames { peer = "b", timeout = "5s", games = { ggoo = { peerCount = 1 }, coh = { peerCount = 1 } } },
	fsCreateFile { path = "a/cnc4/version.ini", contents = "20170204" },
	expectGames { peer = "b", timeout = "5s", games = { cnc4 = { peerCount = 1, version = "20170204" } } },
	fsDeleteFolder { path = "a/ggoo" },
	expectGames { peer = "b", timeout = "5s", only = true, games = { coh = { peerCount = 1 }, cnc4 = { peerCount = 1 } }, absent = { "ggoo" } },
	expectPeers { peer = "b", count = 1, peers = { a = { games = { coh = "20200907", cnc4 = "20170204" } } } },

	-- A partition long enough to end the connection, a change during it.
	partition { { "a" }, { "b" } },
	expectPeers { peer = "b", count = 0, timeout = "10s" },
	expectGames { peer = "b", only = true, games = {}, timeout = "2s" },
	makeGame { dir = "a", id = "bf1942", files = { ["bf1942.eti"] = "added while cut off" } },
	sleep { duration = "1s" },
	heal {},
	-- No connect step: b redials a, and a's hello carries the new library.
	expectGames { peer = "b", timeout = "10s", only = true,
		games = { coh = { peerCount = 1 }, cnc4 = { peerCount = 1 }, bf1942 = { peerCount = 1 } } },
	expectPeers { peer = "b", count = 1, peers = { a = { games = { coh = "20200907", cnc4 = "20170204", bf1942 = "20160130" } } } },
	download { peer = "b", game = "bf1942", timeout = "20s" },
	expectSameFiles { game = "bf1942", source = "a", target = "b" },
}
