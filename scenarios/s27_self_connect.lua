-- S27: a peer dialling its own listener is refused cleanly.
-- The command fails with `self-connect`, no self entry appears in list-peers
-- or list-games, and the peer stays responsive and useful afterwards.
scenario
{
	name = "s27_self_connect",
	timeout = "30s",

	makeGame { dir = "s", id = "ggoo", files = { ["ggoo.eti"] = "g" } },
	peer { name = "s", games = "s" },
	peer { name = "a" },
	connect { from = "a", to = "a", expect = "error", code = "self-connect" },
	expectPeers { peer = "a", count = 0 },
	expectGames { peer = "a", only = true },
	send { peer = "a", cmd = { cmd = "status" }, match = { peers = 0 } },
	connect { from = "a", to = "s" },
	expectPeers { peer = "a", count = 1, peers = { s = {} }, absent = { "a" } },
	download { peer = "a", game = "ggoo" },
}
