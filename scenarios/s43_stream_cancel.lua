-- S43: cancelling a stream-install mid-stream.
-- cod5's .eti holds 96 MiB of stored entries; the client stream-installs it
-- in 1 MiB chunks and sends cancel-download the moment its first chunk has
-- landed (and been extracted from). The stream must stop with
-- download-cancelled then install-failed, and leave nothing: no local/, no
-- scratch folder, no root files, no operation, no transfer on s. A retry
-- then finishes and equals an ordinary install of the same archive.
scenario
{
	name = "s43_stream_cancel",
	timeout = "120s",

	makeGame { dir = "s", id = "cod5", eti = { rar = {
		["bin/cod5.exe"] = { size = "32MiB", seed = 43 },
		["data/main.ff"] = { size = "64MiB", seed = 44 },
		["data/readme.txt"] = "cod5\n",
	} } },
	peer { name = "s", games = "s" },
	peer { name = "client", chunkSize = "1MiB" },
	connect { from = "client", to = "s" },
	waitGame { peer = "client", game = "cod5", peerCount = 1 },

	-- The stream-install that is cancelled.
	streamInstall { peer = "client", game = "cod5", wait = false, label = "cancelled" },
	expectStatus { peer = "client", activeOperations = { cod5 = "StreamInstalling" } },
	cancelDownload { peer = "client", game = "cod5", after = "download-chunk-finished" },
	expectEvent { peer = "client", event = "install-failed", match = { game_id = "cod5" }, from = "cancelled", timeout = "20s" },
	expectSequence { peer = "client", from = "cancelled", match = { game_id = "cod5" }, sequence = {
		"install-begin", "got-game-files", "download-begin", "download-chunk-finished*",
		"download-cancelled", "install-failed" } },
	expectNoEvent { peer = "client", event = "install-finished", window = "1s" },
	expectEntries { peer = "client", path = "cod5", only = {} },
	expectStatus { peer = "client", activeOperations = {} },
	expectStatus { peer = "s", activeOutboundTransfers = {} },
	expectGames { peer = "client", games = { cod5 = { installed = false, downloaded = false, availability = "Remote", peerCount = 1 } } },
	send { peer = "client", cmd = { cmd = "cancel-download", game_id = "cod5" },
		expect = "error", match = { code = "not-downloading" } },

	-- The retry starts from scratch and finishes.
	streamInstall { peer = "client", game = "cod5", timeout = "90s" },
	expectEntries { peer = "client", path = "cod5", only = { "local" } },
	expectFile { peer = "client", path = "cod5/local/data/readme.txt", contents = "cod5\n" },
	expectGames { peer = "client", games = { cod5 = { installed = true, downloaded = false, availability = "LocalOnly" } } },
	-- s installs its own copy with the unrar library: the same files.
	install { peer = "s", game = "cod5" },
	expectSameFiles { game = "cod5", source = "s", target = "client", installed = true },
}
