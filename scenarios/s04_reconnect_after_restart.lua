-- S4: reconnect after a peer restarts.
-- a serves coh to b. a shuts down gracefully, so b must drop it at once:
-- no peer listed and no coh row. a comes back on the same state dir (a new
-- port) and dials b itself this time; b lists a once again with its
-- library, the row returns with peer_count = 1 and the download works.
scenario
{
	name = "s04_reconnect_after_restart",
	timeout = "40s",

	makeGame { dir = "a", id = "coh", files = { ["coh.eti"] = { size = "512KiB", seed = 4 } } },
	peer { name = "a", games = "a" },
	peer { name = "b" },
	connect { from = "b", to = "a" },
	expectGames { peer = "b", only = true, games = { coh = { peerCount = 1 } } },

	restartPeer { name = "a" },
	-- Well inside the 4 s idle timeout: only a closed connection explains it.
	expectPeers { peer = "b", count = 0, timeout = "2s" },
	expectGames { peer = "b", only = true, timeout = "2s" },
	connect { from = "a", to = "b" },
	expectPeers { peer = "b", count = 1, peers = { a = { games = { coh = "20200907" } } } },
	expectGames { peer = "b", only = true, games = { coh = { peerCount = 1, downloaded = false } } },
	download { peer = "b", game = "coh" },
	expectSameFiles { game = "coh", source = "a", target = "b" },
}
