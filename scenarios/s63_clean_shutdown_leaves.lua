-- S63: a peer that shuts down cleanly is gone from the other side at once.
-- a serves cnc4 and b serves coh to the client. a is shut down gracefully,
-- which closes its connections with a CONNECTION_CLOSE; right after, b is
-- SIGKILLed (no close frame: the client can only notice it at the 4 s idle
-- timeout, 750 ms keep-alives, so not before ~3.2 s). Within 1 s the client
-- lists no a and no cnc4 row, while it still lists the killed b and its coh
-- row: the window is shorter than the idle timeout, so only the close frame
-- explains a's going. At the end b is dropped too (the kill was real).
-- (Seen red: with `killPeer` in place of `shutdownPeer` for a, i.e. a peer
-- that leaves without a close frame, `expectPeers` at line 27 saw a still
-- listed after 1 s; with that step removed, `expectGames` saw the cnc4 row.)
scenario
{
	name = "s63_clean_shutdown_leaves",
	timeout = "30s",

	makeGame { dir = "a", id = "cnc4", files = { ["cnc4.eti"] = { size = "1MiB" } } },
	makeGame { dir = "b", id = "coh", files = { ["coh.eti"] = { size = "1MiB" } } },
	peer { name = "a", games = "a" },
	peer { name = "b", games = "b" },
	peer { name = "client" },
	connect { from = "client", to = { "a", "b" } },
	expectGames { peer = "client", games = { cnc4 = { peerCount = 1 }, coh = { peerCount = 1 } } },

	shutdownPeer { name = "a" },
	killPeer { name = "b" },
	expectPeers { peer = "client", absent = { "a" }, peers = { b = { games = { coh = "20200907" } } }, count = 1, timeout = "1s" },
	expectGames { peer = "client", absent = { "cnc4" }, games = { coh = { peerCount = 1 } }, timeout = "1s" },
	expectPeers { peer = "client", count = 0, timeout = "10s" },
}
