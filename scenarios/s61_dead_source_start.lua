-- S61: a dead source does not stall the start. Two sources hold cnc4; b is
-- SIGKILLed after connect, so it never answers and its connection is only
-- declared dead at the 4 s idle timeout. The client asks both for their
-- file lists at once, goes on a short grace after a's list, names b in
-- source-silent, and downloads from a alone.
--
-- Not a wall-clock check: right after download{} returns, the client
-- still lists b — the whole download fit before the client could notice b
-- was gone. A client that waited for b's list (as before) began only after
-- the idle timeout had dropped b, and fails that step. The last step shows
-- b really did go.
scenario
{
	name = "s61_dead_source_start",
	timeout = "60s",

	makeGame { dir = "a", id = "cnc4", files = { ["cnc4.eti"] = { size = "4MiB" } } },
	makeGame { dir = "b", id = "cnc4", files = { ["cnc4.eti"] = { size = "4MiB" } } },
	peer { name = "a", games = "a" },
	peer { name = "b", games = "b" },
	peer { name = "client" },
	connect { from = "client", to = { "a", "b" } },
	waitGame { peer = "client", game = "cnc4", peerCount = 2 },

	killPeer { name = "b" },
	download { peer = "client", game = "cnc4", timeout = "30s" },
	expectPeers { peer = "client", peers = { b = {} }, timeout = "1s" },
	expectSequence { peer = "client", match = { game_id = "cnc4" }, sequence = {
		"source-silent", "got-game-files", "download-begin", "download-chunk-finished*",
		"download-finished" } },
	expectChunks { peer = "client", game = "cnc4", servedBy = { "a" } },
	expectSameFiles { game = "cnc4", source = "a", target = "client" },
	expectPeers { peer = "client", absent = { "b" }, timeout = "10s" },
}
