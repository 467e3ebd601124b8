-- S39: a stream-install leaves the game installed here and nothing else.
-- s offers ggoo: a real RAR .eti (stored entries under bin/ and data/, one
-- of them empty, one with CRLF text) plus a loose docs/manual.txt. The
-- client stream-installs it in 1 MiB chunks. Only the .eti is fetched; the
-- events come in the documented order, exactly once; the root ends with
-- local/ alone (no version.ini, no .eti, no scratch folder, no manual); the
-- game is listed installed, not downloaded, LocalOnly; and local/ holds the
-- same bytes as an ordinary install (the unrar library) of the same archive
-- on ref.
local archive = { rar = {
	["bin/ggoo.exe"] = { size = "3MiB", seed = 39 },
	["bin/engine.dll"] = { size = "700001", seed = 40 },
	["data/maps/map01.dat"] = { size = "1500KiB", seed = 41 },
	["data/readme.txt"] = "GGOO, streamed\r\nsecond line\r\n",
	["data/empty.cfg"] = "",
} }

scenario
{
	name = "s39_stream_install",
	timeout = "90s",

	makeGame { dir = "s", id = "ggoo", files = { ["docs/manual.txt"] = "not in the archive: never fetched" },
		eti = archive },
	-- The same archive for the reference install (makeGame is deterministic).
	makeGame { dir = "ref", id = "ggoo", eti = archive },

	peer { name = "s", games = "s", readonly = true },
	peer { name = "ref", games = "ref" },
	peer { name = "client", chunkSize = "1MiB" },
	connect { from = "client", to = "s" },
	waitGame { peer = "client", game = "ggoo", peerCount = 1 },
	expectGames { peer = "client", games = { ggoo = { downloaded = false, installed = false, availability = "Remote" } } },

	streamInstall { peer = "client", game = "ggoo", label = "stream" },
	expectSequence { peer = "client", from = "stream", match = { game_id = "ggoo" }, sequence = {
		"install-begin", "got-game-files", "download-begin", "download-chunk-finished*",
		"download-finished", "install-finished" } },
	expectEvent { peer = "client", event = "install-begin", match = { game_id = "ggoo", stream = true } },
	expectEvent { peer = "client", event = "download-begin", match = { game_id = "ggoo", stream = true } },
	expectEvent { peer = "client", event = "install-finished",
		match = { game_id = "ggoo", archives = 1, files = 5, bytes = 3145728 + 700001 + 1536000 + 29, stream = true } },
	-- Only the archive travelled: every planned byte, all from s, none of them the manual's.
	expectChunks { peer = "client", game = "ggoo", onlyFrom = { "s" } },
	expectNoEvent { peer = "client", event = "download-chunk-finished", match = { path = "docs/manual.txt" } },
	expectNoEvent { peer = "client", event = "download-chunk-finished", match = { path = "version.ini" } },

	expectEntries { peer = "client", path = "ggoo", only = { "local" } },
	expectEntries { peer = "client", path = "ggoo/local", only = { "bin", "data" } },
	expectFile { peer = "client", path = "ggoo/local/data/readme.txt", contents = "GGOO, streamed\r\nsecond line\r\n" },
	expectFile { peer = "client", path = "ggoo/local/data/empty.cfg", size = 0 },
	expectGames { peer = "client", games = { ggoo = { downloaded = false, installed = true, availability = "LocalOnly", peerCount = 1 } } },
	expectStatus { peer = "client", activeOperations = {} },

	install { peer = "ref", game = "ggoo" },
	expectSameFiles { game = "ggoo", source = "ref", target = "client", installed = true },
}
