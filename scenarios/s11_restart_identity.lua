-- S11: a restarted peer keeps its identity.
-- Peer a is restarted on the same state dir; it comes back on a new port with
-- the same peer id (restartPeer itself fails otherwise). When b reconnects to
-- the new address, b still lists a exactly once, with its library attached,
-- and the stale connection to the old address does not remove the fresh entry
-- when it times out.
scenario
{
	name = "s11_restart_identity",
	timeout = "60s",

	makeGame { dir = "a", id = "coh", files = { ["coh.eti"] = "coh bytes" } },
	peer { name = "a", games = "a" },
	peer { name = "b" },
	connect { from = "b", to = "a" },
	expectPeers { peer = "b", count = 1, peers = { a = { games = { coh = "20200907" } } } },

	restartPeer { name = "a" },
	connect { from = "b", to = "a" },
	expectPeers { peer = "b", count = 1, peers = { a = { games = { coh = "20200907" } } } },
	-- Past the idle timeout (4 s) of the connection to a's old address.
	sleep { duration = "5s" },
	expectPeers { peer = "b", count = 1, peers = { a = { games = { coh = "20200907" } } } },
	download { peer = "b", game = "coh" },
	expectSameFiles { game = "coh", source = "a", target = "b" },
}
