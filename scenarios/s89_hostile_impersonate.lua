-- S89 (issue #14 §4, §5): a hostile peer that claims another peer's ID.
-- i presents its own certificate but its hellos claim a's peer ID (which
-- the checker read from a's ready line); it holds coh, a holds alienswarm.
-- The client knows a. When the client dials i, and when i dials the
-- client, the client must refuse the hello (peer-refused, naming i by the
-- ID its certificate proves), and a's entry must not be taken over: the
-- client still lists exactly one peer, a, with a's library (coh never
-- appears), and a download of alienswarm still comes from a, byte-exact.
scenario
{
	name = "s89_hostile_impersonate",
	timeout = "60s",

	makeGame { dir = "a", id = "alienswarm", files = { ["alienswarm.eti"] = { size = "4MiB", seed = 89 } } },
	makeGame { dir = "i", id = "coh", files = { ["coh.eti"] = { size = "1MiB", seed = 90 } } },

	peer { name = "a", games = "a", readonly = true },
	hostilePeer { name = "i", games = "i", impersonate = "a" },
	peer { name = "client", chunkSize = "1MiB" },
	connect { from = "client", to = "a" },
	expectPeers { peer = "client", count = 1, peers = { a = { games = { alienswarm = "20190317" } } } },

	-- The client dials the impostor.
	connect { from = "client", to = "i", expect = "error", code = "connect-failed", label = "dial-impostor" },
	expectEvent { peer = "client", event = "peer-refused", peerId = "i", from = "dial-impostor" },
	expectPeers { peer = "client", count = 1, peers = { a = { games = { alienswarm = "20190317" } } } },
	expectGames { peer = "client", games = { alienswarm = { peerCount = 1 } }, absent = { "coh" } },

	-- The impostor dials the client (i hears the client's hello before the
	-- client's refusal closes the connection, so i's connect succeeds).
	connect { from = "i", to = "client", label = "impostor-dials" },
	expectEvent { peer = "client", event = "peer-refused", peerId = "i", from = "impostor-dials" },
	expectPeers { peer = "client", count = 1, peers = { a = { games = { alienswarm = "20190317" } } } },
	expectGames { peer = "client", games = { alienswarm = { peerCount = 1 } }, absent = { "coh" } },

	download { peer = "client", game = "alienswarm", timeout = "30s" },
	expectChunks { peer = "client", game = "alienswarm", onlyFrom = { "a" } },
	expectSameFiles { game = "alienswarm", source = "a", target = "client" },
	expectEntries { peer = "client", path = ".", only = { "alienswarm" } },
}
