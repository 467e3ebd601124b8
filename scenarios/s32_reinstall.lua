-- S32: reinstall after uninstall needs no transfer.
-- b downloads ggoo from a (the alpha fixture) and installs it, uninstalls
-- it, then installs it again: the second install extracts the preserved
-- root's archive, so no download or chunk event may appear from then on.
-- c then downloads ggoo with install = true and ends installed.
scenario
{
	name = "s32_reinstall",
	timeout = "90s",

	peer { name = "a", games = "../fixtures/fixture-alpha", readonly = true },
	peer { name = "b" },
	connect { from = "b", to = "a" },
	expectGames { peer = "b", games = { ggoo = { downloaded = false, installed = false, availability = "Remote" } } },
	download { peer = "b", game = "ggoo" },
	expectGames { peer = "b", games = { ggoo = { downloaded = true, installed = false, availability = "Downloaded" } } },
	expectNoFile { peer = "b", path = "ggoo/local" },

	install { peer = "b", game = "ggoo" },
	expectGames { peer = "b", games = { ggoo = { downloaded = true, installed = true, availability = "Downloaded" } } },
	expectFile { peer = "b", path = "ggoo/local/bin/ggoo-payload.bin", size = 49152, sha256 = "b2e736fdc69d804a80f5b2f8ef9c095844792928787ec77795b8464fe87e5dbe" },

	uninstall { peer = "b", game = "ggoo" },
	expectNoFile { peer = "b", path = "ggoo/local" },
	expectFile { peer = "b", path = "ggoo/ggoo.eti", sameAs = "../fixtures/fixture-alpha/ggoo/ggoo.eti" },
	expectFile { peer = "b", path = "ggoo/version.ini", contents = "20200721\n" },
	expectGames { peer = "b", games = { ggoo = { downloaded = true, installed = false, availability = "Downloaded" } } },

	-- The reinstall; no transfer event may follow it.
	install { peer = "b", game = "ggoo", label = "reinstall" },
	expectGames { peer = "b", games = { ggoo = { downloaded = true, installed = true, availability = "Downloaded" } } },
	expectFile { peer = "b", path = "ggoo/local/bin/ggoo-payload.bin", size = 49152, sha256 = "b2e736fdc69d804a80f5b2f8ef9c095844792928787ec77795b8464fe87e5dbe" },
	expectFile { peer = "b", path = "ggoo/local/data/ggoo-assets.dat", size = 960 },
	expectNoEvent { peer = "b", event = "got-game-files", from = "reinstall" },
	expectNoEvent { peer = "b", event = "download-begin", from = "reinstall" },
	expectNoEvent { peer = "b", event = "download-chunk-finished", from = "reinstall" },
	expectEvent { peer = "b", event = "install-finished", match = { game_id = "ggoo", files = 2 }, from = "reinstall" },
	expectStatus { peer = "b", activeOperations = {} },

	-- download with install = true ends installed, from the same archive.
	peer { name = "c" },
	connect { from = "c", to = "a" },
	download { peer = "c", game = "ggoo", install = true },
	expectEvent { peer = "c", event = "install-finished", match = { game_id = "ggoo", files = 2 } },
	expectGames { peer = "c", games = { ggoo = { downloaded = true, installed = true, availability = "Downloaded" } } },
	expectFile { peer = "c", path = "ggoo/local/bin/ggoo-payload.bin", size = 49152, sha256 = "b2e736fdc69d804a80f5b2f8ef9c095844792928787ec77795b8464fe87e5dbe" },
	expectStatus { peer = "c", activeOperations = {} },
}
