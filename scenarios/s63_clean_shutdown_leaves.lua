-- S63: a peer that shuts down cleanly is gone from the other side at once.
-- a serves cnc4 to the client; a is shut down gracefully, which closes its
-- connections with a CONNECTION_CLOSE, so the client drops it without the
-- 4 s idle timeout a killed peer needs: within 1 s the client lists no a
-- and no cnc4 row. (Broken by not closing connections on shutdown, the
-- client kept a until the idle timeout and both checks failed.)
scenario
{
	name = "s63_clean_shutdown_leaves",
	timeout = "30s",

	makeGame { dir = "a", id = "cnc4", files = { ["cnc4.eti"] = { size = "1MiB" } } },
	peer { name = "a", games = "a" },
	peer { name = "client" },
	connect { from = "client", to = "a" },
	waitGame { peer = "client", game = "cnc4", peerCount = 1 },

	shutdownPeer { name = "a" },
	expectPeers { peer = "client", absent = { "a" }, count = 0, timeout = "1s" },
	expectGames { peer = "client", absent = { "cnc4" }, timeout = "1s" },
}
