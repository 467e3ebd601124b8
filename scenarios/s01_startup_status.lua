-- S1: start-up and `status` smoke.
-- A peer with an empty games folder and one with a game start, answer
-- `status` with their own settings and nothing in flight, and a peer given
-- `chunkSize` reports it; after one connect each counts one peer, and a
-- graceful shutdown ends both processes (shutdownPeer fails otherwise).
scenario
{
	name = "s01_startup_status",
	timeout = "30s",

	makeGame { dir = "a", id = "ggoo", files = { ["ggoo.eti"] = "ggoo bytes" } },
	peer { name = "a", games = "a", chunkSize = "1MiB" },
	peer { name = "b" },
	send { peer = "a", cmd = { cmd = "status" }, match = { chunk_size = 1048576, peers = 0, active_operations = {}, active_outbound_transfers = {} } },
	send { peer = "b", cmd = { cmd = "status" }, match = { chunk_size = 134217728, peers = 0, active_operations = {} } },
	expectStatus { peer = "b", activeOperations = {}, activeOutboundTransfers = {} },
	expectGames { peer = "a", only = true, games = { ggoo = { downloaded = true, peerCount = 0 } } },
	expectGames { peer = "b", only = true },
	connect { from = "b", to = "a" },
	-- The dialled side registers b a moment after b's connect answers.
	expectPeers { peer = "a", count = 1, peers = { b = { games = {} } } },
	send { peer = "a", cmd = { cmd = "status" }, match = { peers = 1 } },
	send { peer = "b", cmd = { cmd = "status" }, match = { peers = 1 } },
	shutdownPeer { name = "b" },
	shutdownPeer { name = "a" },
}
