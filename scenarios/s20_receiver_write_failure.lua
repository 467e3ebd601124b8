-- S20: the receiver cannot write a file of the game.
-- The client's games dir already holds cnc4/cnc4.eti as a *folder* (with a
-- file in it), so the client cannot create the file cnc4.eti: a local
-- failure no source can fix, the same for root and everyone else. The
-- download must fail without a retry at another source, commit nothing and
-- clear the operation; the peer must stay healthy, and once the obstacle is
-- gone the same download must succeed.
-- Second half: a peer whose disk "fills up" mid-transfer (it may write no
-- file over 6 MiB, via --max-file-size) downloads an 8 MiB archive in 1 MiB
-- chunks: the first chunks land, a later write fails, the download fails
-- without committing, and the same peer then downloads another game fine.
scenario
{
	name = "s20_receiver_write_failure",
	timeout = "60s",

	makeGame { dir = "a", id = "cnc4", files = { ["cnc4.eti"] = { size = "2MiB", seed = 20 }, ["readme.txt"] = "readme" } },
	makeGame { dir = "b", id = "cnc4", files = { ["cnc4.eti"] = { size = "2MiB", seed = 20 }, ["readme.txt"] = "readme" } },
	fsCreateFile { path = "client/cnc4/cnc4.eti/obstacle.txt", contents = "a folder where a file must go" },

	peer { name = "a", games = "a", readonly = true },
	peer { name = "b", games = "b", readonly = true },
	peer { name = "client", games = "client", chunkSize = "1MiB" },
	connect { from = "client", to = { "a", "b" } },
	waitGame { peer = "client", game = "cnc4", peerCount = 2 },

	download { peer = "client", game = "cnc4", expect = "failed", timeout = "20s" },
	expectNoEvent { peer = "client", event = "download-chunk-retry" },
	expectNoEvent { peer = "client", event = "download-chunk-finished" },
	expectNoFile { peer = "client", path = "cnc4/version.ini" },
	expectNoFile { peer = "client", path = "cnc4/.lanspread-version.ini.part" },
	expectStatus { peer = "client", activeOperations = {} },
	expectGames { peer = "client", games = { cnc4 = { downloaded = false, peerCount = 2 } } },

	fsDeleteFolder { path = "client/cnc4/cnc4.eti" },
	download { peer = "client", game = "cnc4" },
	expectChunks { peer = "client", game = "cnc4", servedBy = { "a", "b" } },
	expectSameFiles { game = "cnc4", source = "a", target = "client" },

	makeGame { dir = "c", id = "bf1942", eti = { size = "8MiB", seed = 21 } },
	makeGame { dir = "c", id = "ggoo", eti = { size = "1MiB", seed = 22 } },
	peer { name = "c", games = "c", readonly = true },
	peer { name = "capped", chunkSize = "1MiB", args = { "--max-file-size", "6MiB" } },
	connect { from = "capped", to = "c" },
	waitGame { peer = "capped", game = "bf1942", peerCount = 1 },
	download { peer = "capped", game = "bf1942", expect = "failed", error = "File too large", timeout = "20s" },
	-- Four requests run at once, so the chunk at 6 MiB (the first that
	-- fails) is only asked for after three chunks finished: three is what
	-- is certain before the failure (a fourth may or may not beat it).
	expectEvent { peer = "capped", event = "download-chunk-finished", match = { game_id = "bf1942" }, count = 3 },
	expectNoEvent { peer = "capped", event = "download-chunk-retry" },
	expectNoFile { peer = "capped", path = "bf1942/version.ini" },
	expectStatus { peer = "capped", activeOperations = {} },
	download { peer = "capped", game = "ggoo" },
	expectSameFiles { game = "ggoo", source = "c", target = "capped" },
}
