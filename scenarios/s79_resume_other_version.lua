-- S79 (issue #14 §3, last rule): a different catalog version reuses nothing.
-- old serves cnc4 at 20150101 (its own old catalog), new at the default
-- catalog's 20170204; both .eti files are the same 512 MiB (sparse zeros).
-- c1, whose catalog is the old one, downloads from old into the workspace
-- folder cw and is SIGKILLed at its 20th finished chunk (8 MiB chunks), so
-- cw/cnc4 holds a partial download and its resume marker for 20150101.
-- Then c2, with the default catalog, downloads cnc4 into the same cw from
-- new: the marker is for another version (and so for another version.ini
-- digest), so even though the .eti blocks on disk would verify against the
-- new digests, nothing may be reused: reused = 0, all 65 chunks fetched,
-- version.ini = 20170204 and the files equal new's.
scenario
{
	name = "s79_resume_other_version",
	timeout = "180s",

	makeGame { dir = "old", id = "cnc4", version = "20150101", files = { ["cnc4.eti"] = { size = "512MiB", sparse = true } } },
	makeGame { dir = "new", id = "cnc4", files = { ["cnc4.eti"] = { size = "512MiB", sparse = true } } },
	fsCreateFolder { path = "cw" },
	peer { name = "old", games = "old", readonly = true, catalog = "../redirects/catalogs/cnc4-20150101.json" },
	peer { name = "new", games = "new", readonly = true },

	peer { name = "c1", games = "cw", chunkSize = "8MiB", catalog = "../redirects/catalogs/cnc4-20150101.json" },
	connect { from = "c1", to = "old" },
	waitGame { peer = "c1", game = "cnc4", peerCount = 1 },
	killPeer { name = "c1", on = { peer = "c1", event = "download-chunk-finished", game = "cnc4", count = 20 } },
	download { peer = "c1", game = "cnc4", wait = false },
	expectEvent { peer = "c1", event = "download-chunk-finished", match = { game_id = "cnc4" }, count = 20, timeout = "60s" },
	expectNoFile { path = "cw/cnc4/version.ini" },

	peer { name = "c2", games = "cw", chunkSize = "8MiB" },
	connect { from = "c2", to = "new" },
	waitGame { peer = "c2", game = "cnc4", peerCount = 1 },
	download { peer = "c2", game = "cnc4", timeout = "90s" },
	expectChunks { peer = "c2", game = "cnc4", onlyFrom = { "new" }, reused = 0, chunks = 65 },
	expectFile { peer = "c2", path = "cnc4/version.ini", contents = "20170204" },
	expectSameFiles { game = "cnc4", source = "new", target = "c2" },
}
