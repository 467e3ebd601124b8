-- S46: the receiver's disk "fills up" during a stream-install.
-- The client may write no file over 2 MiB (--max-file-size sets
-- RLIMIT_FSIZE), and cnctw's archive holds a 3 MiB file after a small one:
-- extraction is well under way when a write fails. The stream-install must
-- fail naming the write error, leave nothing behind (no local/, no scratch
-- folder, no root files) and clear the operation; the peer stays healthy: it
-- then stream-installs and downloads other games whose files fit.
scenario
{
	name = "s46_stream_disk_limit",
	timeout = "60s",

	makeGame { dir = "s", id = "cnctw", eti = { rar = {
		["bin/a-small.dll"] = { size = "1MiB", seed = 46 },
		["bin/b-big.exe"] = { size = "3MiB", seed = 47 },
		["data/c-after.big"] = { size = "512KiB", seed = 48 },
	} } },
	makeGame { dir = "s", id = "coh", eti = { rar = {
		["bin/coh.exe"] = { size = "1500KiB", seed = 49 },
		["data/coh.sga"] = { size = "1MiB", seed = 50 },
	} } },
	makeGame { dir = "s", id = "ggoo", eti = { size = "1MiB", seed = 51 } },

	peer { name = "s", games = "s", readonly = true },
	peer { name = "client", chunkSize = "256KiB", args = { "--max-file-size", "2MiB" } },
	connect { from = "client", to = "s" },
	waitGame { peer = "client", game = "cnctw", peerCount = 1 },

	streamInstall { peer = "client", game = "cnctw", expect = "failed", error = "File too large", timeout = "30s" },
	expectEvent { peer = "client", event = "download-chunk-finished", match = { game_id = "cnctw" }, count = 4 },
	expectEntries { peer = "client", path = "cnctw", only = {} },
	expectStatus { peer = "client", activeOperations = {} },
	expectGames { peer = "client", games = { cnctw = { installed = false, downloaded = false, availability = "Remote" } } },

	streamInstall { peer = "client", game = "coh" },
	expectEntries { peer = "client", path = "coh", only = { "local" } },
	expectFile { peer = "client", path = "coh/local/bin/coh.exe", size = "1500KiB" },
	download { peer = "client", game = "ggoo" },
	expectSameFiles { game = "ggoo", source = "s", target = "client" },
	expectStatus { peer = "client", activeOperations = {} },
}
