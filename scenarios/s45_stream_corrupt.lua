-- S45: a corrupt archive fails the stream-install cleanly.
-- s's cnc4.eti is a valid RAR whose bin/cnc4.exe (2 MiB) has one byte
-- flipped in the middle of its data: the version, names and sizes are
-- unchanged, only the entry's CRC32 no longer matches. The stream-install
-- must end in install-failed naming the CRC mismatch and the entry, leave
-- nothing behind and clear the operation. Then ggoo, whose .eti is not a
-- RAR archive at all (random bytes), and bf1942, whose entries claim
-- compression (stream-install handles stored entries only), must fail with
-- errors that say so.
-- Finally a good archive still streams on the same peer.
scenario
{
	name = "s45_stream_corrupt",
	timeout = "90s",

	makeGame { dir = "s", id = "cnc4", eti = { rar = {
		["bin/cnc4.exe"] = { size = "2MiB", seed = 45 },
		["data/cnc4.big"] = { size = "1MiB", seed = 46 },
	} } },
	-- The entry's data starts within the first 200 bytes; 1 MiB in is inside it.
	fsPatch { path = "s/cnc4/cnc4.eti", offset = "1MiB", hex = "01", xor = true },
	makeGame { dir = "s", id = "ggoo", eti = { size = "3MiB", seed = 47 } },
	-- A valid RAR whose entries claim compression method 3 (data stored).
	makeGame { dir = "s", id = "bf1942", eti = { method = 3, rar = { ["bin/bf1942.exe"] = { size = "600KiB", seed = 49 } } } },
	makeGame { dir = "s", id = "coh", eti = { rar = { ["bin/coh.exe"] = { size = "1MiB", seed = 48 } } } },

	peer { name = "s", games = "s", readonly = true },
	peer { name = "client", chunkSize = "256KiB" },
	connect { from = "client", to = "s" },
	waitGame { peer = "client", game = "coh", peerCount = 1 },

	-- The corrupt entry.
	streamInstall { peer = "client", game = "cnc4", expect = "failed", error = { "crc", "bin/cnc4.exe" }, timeout = "30s", label = "corrupt" },
	expectSequence { peer = "client", from = "corrupt", match = { game_id = "cnc4" }, sequence = {
		"install-begin", "got-game-files", "download-begin", "download-chunk-finished*",
		"download-failed", "install-failed" } },
	expectEntries { peer = "client", path = "cnc4", only = {} },
	expectStatus { peer = "client", activeOperations = {} },
	expectGames { peer = "client", games = { cnc4 = { installed = false, availability = "Remote" } } },

	-- Not an archive at all.
	streamInstall { peer = "client", game = "ggoo", expect = "failed", error = "rar", timeout = "30s" },
	expectEntries { peer = "client", path = "ggoo", only = {} },
	expectStatus { peer = "client", activeOperations = {} },

	streamInstall { peer = "client", game = "bf1942", expect = "failed", error = { "compressed", "bin/bf1942.exe" }, timeout = "30s" },
	expectEntries { peer = "client", path = "bf1942", only = {} },
	expectStatus { peer = "client", activeOperations = {} },

	streamInstall { peer = "client", game = "coh" },
	expectEntries { peer = "client", path = "coh", only = { "local" } },
	expectFile { peer = "client", path = "coh/local/bin/coh.exe", size = "1MiB" },
}
