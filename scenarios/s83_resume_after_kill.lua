-- S83 (issue #14): a receiver SIGKILLed mid-download resumes.
-- s serves alienswarm (a 512 MiB .eti, 8 MiB chunks: 65 chunks with the
-- sentinel). The client is SIGKILLed the moment it prints its 20th
-- download-chunk-finished, then restarted on the same games and state
-- dirs. Its second download must verify what is on disk against the
-- agreed digests and reuse it: reused_chunks at least the 20 that finished
-- before the kill, reused and fetched chunks adding up to all 65, no byte
-- fetched twice, and the files byte-exact.
scenario
{
	name = "s83_resume_after_kill",
	timeout = "180s",

	makeGame { dir = "s", id = "alienswarm", files = { ["alienswarm.eti"] = { size = "512MiB", sparse = true } } },
	fsPatch { path = "s/alienswarm/alienswarm.eti", offset = "100MiB", hex = "0102030405", xor = true },
	peer { name = "s", games = "s", readonly = true },
	peer { name = "client", chunkSize = "8MiB" },
	connect { from = "client", to = "s" },
	waitGame { peer = "client", game = "alienswarm", peerCount = 1 },

	killPeer { name = "client", on = { peer = "client", event = "download-chunk-finished", game = "alienswarm", count = 20 } },
	download { peer = "client", game = "alienswarm", wait = false },
	expectEvent { peer = "client", event = "download-chunk-finished", match = { game_id = "alienswarm" }, count = 20, timeout = "60s" },
	restartPeer { name = "client" },
	expectNoFile { peer = "client", path = "alienswarm/version.ini" },
	connect { from = "client", to = "s" },
	waitGame { peer = "client", game = "alienswarm", peerCount = 1 },

	download { peer = "client", game = "alienswarm", timeout = "90s" },
	expectChunks { peer = "client", game = "alienswarm", onlyFrom = { "s" }, reusedAtLeast = 20 },
	expectSameFiles { game = "alienswarm", source = "s", target = "client" },
}
