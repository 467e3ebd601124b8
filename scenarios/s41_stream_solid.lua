-- S41: a solid archive streams correctly.
-- coh's .eti is a RAR5 archive with the solid flag (every entry after the
-- first continues the solid stream), entries of odd sizes so that headers
-- and data straddle the client's 64 KiB chunks. The stream-install must
-- finish and local/ must equal an ordinary install of the same archive.
local archive = { solid = true, rar = {
	["bin/coh.exe"] = { size = "1000003", seed = 41 },
	["bin/tiny.dll"] = "x",
	["data/a/one.sga"] = { size = "65535", seed = 42 },
	["data/a/two.sga"] = { size = "65537", seed = 43 },
	["data/b/three.sga"] = { size = "777777", seed = 44 },
	["data/readme.txt"] = "solid\n",
} }

scenario
{
	name = "s41_stream_solid",
	timeout = "90s",

	makeGame { dir = "s", id = "coh", eti = archive },
	-- The same archive for the reference install (makeGame is deterministic).
	makeGame { dir = "ref", id = "coh", eti = archive },
	-- The archive really has the solid flag: the main header (after the
	-- signature and its CRC32) is size 3, type 1, flags 0, archive flags 0x04.
	expectFile { path = "s/coh/coh.eti", bytes = { offset = 12, hex = "03010004" } },

	peer { name = "s", games = "s", readonly = true },
	peer { name = "ref", games = "ref" },
	peer { name = "client", chunkSize = "64KiB" },
	connect { from = "client", to = "s" },
	waitGame { peer = "client", game = "coh", peerCount = 1 },

	streamInstall { peer = "client", game = "coh" },
	expectEvent { peer = "client", event = "install-finished", match = { game_id = "coh", files = 6, stream = true } },
	expectChunks { peer = "client", game = "coh", onlyFrom = { "s" } },
	expectEntries { peer = "client", path = "coh", only = { "local" } },
	install { peer = "ref", game = "coh" },
	expectSameFiles { game = "coh", source = "ref", target = "client", installed = true },
	expectGames { peer = "client", games = { coh = { installed = true, downloaded = false, availability = "LocalOnly" } } },
	expectStatus { peer = "client", activeOperations = {} },
}
