-- S22 (issue 15): triggers that fire on the Nth matching event.
-- a is the client's only source of a 64 MiB alienswarm (1 MiB chunks, four
-- requests at a time). a is SIGKILLed on the client's 10th finished chunk
-- of alienswarm.eti (`count` and `match`, not the first event): at least
-- ten chunks landed before the kill, and the download still fails (64 was
-- far off). Then b, a new source, appears and a download is cancelled on
-- its 20th finished chunk of the .eti: at least 20 landed, and it ends
-- with download-cancelled.
scenario
{
	name = "s22_kill_after_nth_chunk",
	timeout = "90s",

	makeGame { dir = "a", id = "alienswarm", files = { ["alienswarm.eti"] = { size = "64MiB", sparse = true } } },
	makeGame { dir = "b", id = "alienswarm", files = { ["alienswarm.eti"] = { size = "512MiB", sparse = true } } },

	peer { name = "a", games = "a" },
	peer { name = "client", chunkSize = "1MiB" },
	connect { from = "client", to = "a" },
	waitGame { peer = "client", game = "alienswarm", peerCount = 1 },

	killPeer { name = "a", on = { peer = "client", event = "download-chunk-finished", game = "alienswarm",
		match = { path = "alienswarm.eti" }, count = 10 } },
	download { peer = "client", game = "alienswarm", expect = "failed", timeout = "30s", label = "cut" },
	-- The 10th, not the 1st: with four requests in flight at most five
	-- would have landed after a kill on the first.
	expectEvent { peer = "client", event = "download-chunk-finished", from = "cut",
		match = { game_id = "alienswarm", path = "alienswarm.eti" }, count = 10 },
	expectNoFile { peer = "client", path = "alienswarm/version.ini" },
	expectStatus { peer = "client", activeOperations = {} },

	peer { name = "b", games = "b", readonly = true },
	connect { from = "client", to = "b" },
	waitGame { peer = "client", game = "alienswarm", peerCount = 1 },
	download { peer = "client", game = "alienswarm", wait = false, label = "again" },
	cancelDownload { peer = "client", game = "alienswarm",
		after = { event = "download-chunk-finished", match = { path = "alienswarm.eti" }, count = 20 } },
	expectEvent { peer = "client", event = "download-cancelled", from = "again", match = { game_id = "alienswarm" } },
	expectEvent { peer = "client", event = "download-chunk-finished", from = "again",
		match = { game_id = "alienswarm", path = "alienswarm.eti" }, count = 20 },
	expectNoEvent { peer = "client", event = "download-finished", from = "again" },
	expectNoFile { peer = "client", path = "alienswarm/version.ini" },
	expectStatus { peer = "client", activeOperations = {} },
}
