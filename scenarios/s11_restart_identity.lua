-- S11: a restarted peer keeps its identity.
-- Peer a is SIGKILLed, so b's connection to a's old address is left to time
-- out, and restarted on the same state dir: it comes back on a new port with
-- the same peer id (restartPeer itself fails otherwise). b reconnects to the
-- new address before the old connection times out; b must list a exactly
-- once, with its library attached, also after the stale connection died.
scenario
{
	name = "s11_restart_identity",
	timeout = "60s",

	makeGame { dir = "a", id = "coh", files = { ["coh.eti"] = "coh bytes" } },
	peer { name = "a", games = "a" },
	peer { name = "b" },
	connect { from = "b", to = "a" },
	expectPeers { peer = "b", count = 1, peers = { a = { games = { coh = "20200907" } } } },

	killPeer { name = "a" },
	restartPeer { name = "a" },
	connect { from = "b", to = "a" },
	expectPeers { peer = "b", count = 1, peers = { a = { games = { coh = "20200907" } } } },
	-- Past the idle timeout (4 s) of the connection to a's old address.
	sleep { duration = "5s" },
	expectPeers { peer = "b", count = 1, peers = { a = { games = { coh = "20200907" } } } },
	download { peer = "b", game = "coh" },
	expectSameFiles { game = "coh", source = "a", target = "b" },
}
