-- S91: a bad archive fails the install cleanly.
-- a's cnc4 root holds first a file that is no RAR archive, then a valid
-- archive cut in half. Each install must fail with install-failed, leave no
-- local/ (nor the scratch folder) and clear the operation, so that a retry
-- with the good archive succeeds.
scenario
{
	name = "s91_bad_archive",
	timeout = "60s",

	makeGame { dir = "a", id = "cnc4", files = { ["cnc4.eti"] = "this is not a rar archive" } },
	makeGame { dir = "a", id = "coh", sentinel = false, files = { ["coh.eti"] = "not ready" } },
	peer { name = "a", games = "a" },

	install { peer = "a", game = "cnc4", expect = "failed" },
	expectEvent { peer = "a", event = "install-failed", match = { game_id = "cnc4" } },
	expectNoFile { peer = "a", path = "cnc4/local" },
	expectNoFile { peer = "a", path = "cnc4/.lanspread-install" },
	expectStatus { peer = "a", activeOperations = {} },
	expectGames { peer = "a", games = { cnc4 = { downloaded = true, installed = false } } },

	fsCopyFile { peer = "a", from = "../fixtures/archives/truncated.eti", fromScenario = true, to = "cnc4/cnc4.eti" },
	install { peer = "a", game = "cnc4", expect = "failed" },
	expectEvent { peer = "a", event = "install-failed", match = { game_id = "cnc4" }, count = 2 },
	expectNoFile { peer = "a", path = "cnc4/local" },
	expectNoFile { peer = "a", path = "cnc4/.lanspread-install" },
	expectStatus { peer = "a", activeOperations = {} },

	-- Not downloaded: refused, nothing created.
	send { peer = "a", cmd = { cmd = "install", game_id = "coh" }, expect = "error", match = { code = "not-downloaded" } },
	expectNoFile { peer = "a", path = "coh/local" },

	-- The retry with the good archive installs.
	fsCopyFile { peer = "a", from = "../fixtures/fixture-bravo/cnc4/cnc4.eti", fromScenario = true, to = "cnc4/cnc4.eti" },
	install { peer = "a", game = "cnc4" },
	expectFile { peer = "a", path = "cnc4/local/bin/cnc4-payload.bin", size = 49152 },
	expectGames { peer = "a", games = { cnc4 = { downloaded = true, installed = true } } },
	expectStatus { peer = "a", activeOperations = {} },
}
