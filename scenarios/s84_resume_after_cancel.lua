-- S84 (issue #14): a cancelled download resumes; changed digests reuse nothing.
-- s serves alienswarm and bf1942 (1 GiB and 512 MiB .eti, 8 MiB chunks).
-- 1. The client cancels its alienswarm download after 10 finished chunks;
--    the next download reuses at least those 10 and ends byte-exact.
-- 2. The client cancels its bf1942 download after 5 finished chunks; then
--    s's bf1942.eti changes (one byte, so its digests change). The next
--    download must reuse nothing (reused = 0), fetch every chunk, and end
--    byte-exact with the changed file.
scenario
{
	name = "s84_resume_after_cancel",
	timeout = "240s",

	makeGame { dir = "s", id = "alienswarm", files = { ["alienswarm.eti"] = { size = "1GiB", sparse = true } } },
	makeGame { dir = "s", id = "bf1942", files = { ["bf1942.eti"] = { size = "512MiB", sparse = true } } },
	peer { name = "s", games = "s" },
	peer { name = "client", chunkSize = "8MiB" },
	connect { from = "client", to = "s" },
	waitGame { peer = "client", game = "bf1942", peerCount = 1 },

	download { peer = "client", game = "alienswarm", wait = false },
	expectEvent { peer = "client", event = "download-chunk-finished", match = { game_id = "alienswarm" }, count = 10, timeout = "60s" },
	cancelDownload { peer = "client", game = "alienswarm" },
	expectEvent { peer = "client", event = "download-cancelled", match = { game_id = "alienswarm" } },
	expectNoFile { peer = "client", path = "alienswarm/version.ini" },
	download { peer = "client", game = "alienswarm", timeout = "90s" },
	expectChunks { peer = "client", game = "alienswarm", onlyFrom = { "s" }, reusedAtLeast = 10 },
	expectSameFiles { game = "alienswarm", source = "s", target = "client" },

	download { peer = "client", game = "bf1942", wait = false },
	expectEvent { peer = "client", event = "download-chunk-finished", match = { game_id = "bf1942" }, count = 5, timeout = "60s" },
	cancelDownload { peer = "client", game = "bf1942" },
	expectEvent { peer = "client", event = "download-cancelled", match = { game_id = "bf1942" } },
	fsPatch { path = "s/bf1942/bf1942.eti", offset = 0, hex = "01", xor = true },
	download { peer = "client", game = "bf1942", timeout = "90s" },
	expectChunks { peer = "client", game = "bf1942", onlyFrom = { "s" }, reused = 0, chunks = 65 },
	expectSameFiles { game = "bf1942", source = "s", target = "client" },
}
