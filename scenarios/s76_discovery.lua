-- S76: LAN discovery with no connect step.
-- Six peers with discover = true, each its own host on the LAN, must each
-- list the other five within 3 s. A partition {p1,p2,p3} | {p4,p5,p6}
-- hides the peers across it (their connections end at the 4 s idle
-- timeout and no beacon crosses); heal{} brings them back by discovery
-- alone. A restarted peer is found again.
scenario
{
	name = "s76_discovery",
	network = "lan",
	tags = { "lan" },
	timeout = "60s",

	peer { name = "p1", discover = true },
	peer { name = "p2", discover = true },
	peer { name = "p3", discover = true },
	peer { name = "p4", discover = true },
	peer { name = "p5", discover = true },
	peer { name = "p6", discover = true },
	expectPeers { peer = "p1", count = 5, peers = { p2 = {}, p3 = {}, p4 = {}, p5 = {}, p6 = {} }, timeout = "3s" },
	expectPeers { peer = "p2", count = 5, timeout = "3s" },
	expectPeers { peer = "p3", count = 5, timeout = "3s" },
	expectPeers { peer = "p4", count = 5, timeout = "3s" },
	expectPeers { peer = "p5", count = 5, timeout = "3s" },
	expectPeers { peer = "p6", count = 5, peers = { p1 = {}, p2 = {}, p3 = {}, p4 = {}, p5 = {} }, timeout = "3s" },

	partition { { "p1", "p2", "p3" }, { "p4", "p5", "p6" } },
	expectPeers { peer = "p1", count = 2, peers = { p2 = {}, p3 = {} }, absent = { "p4", "p5", "p6" }, timeout = "12s" },
	expectPeers { peer = "p6", count = 2, peers = { p4 = {}, p5 = {} }, absent = { "p1", "p2", "p3" }, timeout = "12s" },

	heal {},
	expectPeers { peer = "p1", count = 5, timeout = "10s" },
	expectPeers { peer = "p6", count = 5, timeout = "10s" },

	restartPeer { name = "p3" },
	expectPeers { peer = "p3", count = 5, timeout = "10s" },
	expectPeers { peer = "p4", count = 5, peers = { p3 = {} }, timeout = "10s" },
}
