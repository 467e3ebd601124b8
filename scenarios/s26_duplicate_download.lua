-- S26: a duplicate download of the same game is rejected, not queued.
-- While the client downloads a 256 MiB bf1942 (status shows Downloading), a
-- second `download` of bf1942 must be answered with operation-in-progress.
-- The first download must go on undisturbed and finish once, with every
-- chunk fetched once.
scenario
{
	name = "s26_duplicate_download",
	timeout = "90s",

	makeGame { dir = "s", id = "bf1942", files = { ["bf1942.eti"] = { size = "256MiB", sparse = true } } },

	peer { name = "s", games = "s", readonly = true },
	peer { name = "client", chunkSize = "8MiB" },
	connect { from = "client", to = "s" },
	waitGame { peer = "client", game = "bf1942", peerCount = 1 },

	download { peer = "client", game = "bf1942", wait = false },
	send { peer = "client", cmd = { cmd = "download", game_id = "bf1942" },
		expect = "error", match = { code = "operation-in-progress" } },
	expectStatus { peer = "client", activeOperations = { bf1942 = "Downloading" } },
	send { peer = "client", cmd = { cmd = "download", game_id = "bf1942" },
		expect = "error", match = { code = "operation-in-progress" } },

	expectEvent { peer = "client", event = "download-finished", match = { game_id = "bf1942" }, timeout = "60s" },
	expectEvent { peer = "client", event = "download-begin", match = { game_id = "bf1942" } },
	expectNoEvent { peer = "client", event = "download-failed" },
	expectChunks { peer = "client", game = "bf1942", onlyFrom = { "s" }, chunks = 33 },
	expectSameFiles { game = "bf1942", source = "s", target = "client" },
	expectStatus { peer = "client", activeOperations = {} },
}
