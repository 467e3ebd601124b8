-- S92 (issue #5): cancelling a running download.
-- The client starts a 512 MiB bf1942 download (8 MiB chunks) from s without
-- waiting, and cancels it while status shows it running. The download must
-- stop with download-cancelled (not finished, not failed), commit no
-- version.ini, clear the operation on the client and the transfers on s.
-- Then the same client downloads the game again, in full.
scenario
{
	name = "s92_cancel_download",
	timeout = "90s",

	makeGame { dir = "s", id = "bf1942", files = { ["bf1942.eti"] = { size = "512MiB", sparse = true } } },

	peer { name = "s", games = "s" },
	peer { name = "client", chunkSize = "8MiB" },
	connect { from = "client", to = "s" },
	waitGame { peer = "client", game = "bf1942", peerCount = 1 },

	download { peer = "client", game = "bf1942", wait = false },
	expectStatus { peer = "client", activeOperations = { bf1942 = "Downloading" } },
	cancelDownload { peer = "client", game = "bf1942" },
	expectEvent { peer = "client", event = "download-cancelled", match = { game_id = "bf1942" } },
	expectNoEvent { peer = "client", event = "download-finished", window = "1s" },
	expectNoEvent { peer = "client", event = "download-failed" },
	expectNoFile { peer = "client", path = "bf1942/version.ini" },
	expectStatus { peer = "client", activeOperations = {} },
	expectStatus { peer = "s", activeOutboundTransfers = {} },
	expectGames { peer = "client", games = { bf1942 = { downloaded = false, peerCount = 1, availability = "Remote" } } },
	-- Nothing left to cancel.
	send { peer = "client", cmd = { cmd = "cancel-download", game_id = "bf1942" },
		expect = "error", match = { code = "not-downloading" } },

	download { peer = "client", game = "bf1942", timeout = "60s" },
	expectChunks { peer = "client", game = "bf1942", onlyFrom = { "s" }, chunks = 65 },
	expectSameFiles { game = "bf1942", source = "s", target = "client" },
}
