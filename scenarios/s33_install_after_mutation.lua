-- S33: install uses the root's current bytes.
-- b downloads cnc4 from a (the bravo fixture); before installing, the
-- downloaded archive is replaced by another valid archive. The install must
-- extract the replacement, not anything remembered from the download.
scenario
{
	name = "s33_install_after_mutation",
	timeout = "60s",

	peer { name = "a", games = "../fixtures/fixture-bravo", readonly = true },
	peer { name = "b" },
	connect { from = "b", to = "a" },
	download { peer = "b", game = "cnc4" },
	fsCopyFile { peer = "b", from = "../fixtures/archives/fixture-payload.eti", fromScenario = true, to = "cnc4/cnc4.eti" },

	install { peer = "b", game = "cnc4" },
	expectFile { peer = "b", path = "cnc4/local/fixture-payload.txt",
	             contents = "mutated archive: installed from the current root bytes\n" },
	expectNoFile { peer = "b", path = "cnc4/local/bin" },
	expectNoFile { peer = "b", path = "cnc4/local/data" },
	expectGames { peer = "b", games = { cnc4 = { downloaded = true, installed = true } } },
}
