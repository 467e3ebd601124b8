-- S47: duplicate requests while a stream-install runs, and refusals.
-- The client stream-installs cod6 (96 MiB of stored entries, 1 MiB chunks)
-- without waiting; while status shows StreamInstalling, a second
-- stream-install and a download of cod6 are both refused with
-- operation-in-progress. The first stream-install still finishes, exactly
-- once, with files equal to an ordinary install. Then a stream-install of
-- the now installed game is refused (already-installed), and one on the
-- source, which holds a ready root, is refused (already-downloaded), and
-- one on a peer holding a root of another version is refused (stale-root).
scenario
{
	name = "s47_stream_duplicate",
	timeout = "120s",

	makeGame { dir = "s", id = "cod6", eti = { rar = {
		["bin/iw4.exe"] = { size = "32MiB", seed = 47 },
		["data/main.iwd"] = { size = "64MiB", seed = 48 },
	} } },
	peer { name = "s", games = "s" },
	peer { name = "client", chunkSize = "1MiB" },
	connect { from = "client", to = "s" },
	waitGame { peer = "client", game = "cod6", peerCount = 1 },

	-- The stream-install that must survive the duplicates.
	streamInstall { peer = "client", game = "cod6", wait = false, label = "first" },
	send { peer = "client", cmd = { cmd = "stream-install", game_id = "cod6" },
		expect = "error", match = { code = "operation-in-progress" } },
	send { peer = "client", cmd = { cmd = "download", game_id = "cod6" },
		expect = "error", match = { code = "operation-in-progress" } },
	expectStatus { peer = "client", activeOperations = { cod6 = "StreamInstalling" } },
	send { peer = "client", cmd = { cmd = "install", game_id = "cod6" }, expect = "error" },
	expectEvent { peer = "client", event = "install-finished", match = { game_id = "cod6", stream = true }, from = "first", timeout = "90s" },
	expectChunks { peer = "client", game = "cod6", onlyFrom = { "s" } },
	expectEntries { peer = "client", path = "cod6", only = { "local" } },
	expectStatus { peer = "client", activeOperations = {} },
	-- Exactly one of each, also a second later.
	sleep { duration = "1s" },
	expectSequence { peer = "client", from = "first", match = { game_id = "cod6" }, sequence = {
		"install-begin", "got-game-files", "download-begin", "download-chunk-finished*",
		"download-finished", "install-finished" } },

	streamInstall { peer = "client", game = "cod6", expect = "failed", code = "already-installed" },
	streamInstall { peer = "s", game = "cod6", expect = "failed", code = "already-downloaded" },
	install { peer = "s", game = "cod6" },
	expectSameFiles { game = "cod6", source = "s", target = "client", installed = true },

	makeGame { dir = "old", id = "cod6", version = "20090101", files = { ["cod6.eti"] = "old" } },
	peer { name = "old", games = "old" },
	connect { from = "old", to = "s" },
	streamInstall { peer = "old", game = "cod6", expect = "failed", code = "stale-root" },
	expectEntries { peer = "old", path = "cod6", only = { "cod6.eti", "version.ini" } },
}
