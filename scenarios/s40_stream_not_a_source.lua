-- S40: a stream-installed receiver is not a source.
-- The client stream-installs ggoo from s. It keeps no archive and no
-- version.ini, so it must advertise nothing for ggoo: t, a third peer that
-- knows only the client, sees the client with no games, lists no ggoo row,
-- and its download and stream-install of ggoo are refused with no-source.
-- Once s is gone, the client still lists its installed copy, with no peer.
scenario
{
	name = "s40_stream_not_a_source",
	timeout = "60s",

	makeGame { dir = "s", id = "ggoo", eti = { rar = {
		["bin/ggoo.exe"] = { size = "2MiB", seed = 40 },
		["data/ggoo.dat"] = { size = "300KiB", seed = 41 },
	} } },
	peer { name = "s", games = "s", readonly = true },
	peer { name = "client", chunkSize = "1MiB" },
	connect { from = "client", to = "s" },
	waitGame { peer = "client", game = "ggoo", peerCount = 1 },
	streamInstall { peer = "client", game = "ggoo" },
	expectGames { peer = "client", games = { ggoo = { installed = true, downloaded = false, availability = "LocalOnly" } } },

	peer { name = "t" },
	connect { from = "t", to = "client" },
	expectPeers { peer = "t", count = 1, peers = { client = { games = {} } } },
	expectGames { peer = "t", absent = { "ggoo" }, only = true },
	download { peer = "t", game = "ggoo", expect = "failed" },
	send { peer = "t", cmd = { cmd = "download", game_id = "ggoo" }, expect = "error", match = { code = "no-source" } },
	send { peer = "t", cmd = { cmd = "stream-install", game_id = "ggoo" }, expect = "error", match = { code = "no-source" } },
	expectNoFile { peer = "t", path = "ggoo" },
	expectStatus { peer = "t", activeOperations = {} },
	-- With s gone the client still lists its installed copy, offered by nobody.
	shutdownPeer { name = "s" },
	expectGames { peer = "client", games = { ggoo = { installed = true, downloaded = false, availability = "LocalOnly", peerCount = 0 } } },
}
