-- S44: the source of a stream-install dies mid-stream.
-- a is the client's only source of alienswarm (96 MiB of stored entries);
-- a is SIGKILLed the moment the client reports its first chunk. With no
-- survivor the stream must end with download-failed then install-failed and
-- leave nothing behind, with the operation cleared. Then b, holding the same
-- archive, appears and the retry from b finishes. Second half: c and d both
-- offer cnc4; c is killed on the client's first cnc4 chunk, and d finishes
-- the stream alone.
scenario
{
	name = "s44_stream_source_killed",
	timeout = "150s",

	makeGame { dir = "a", id = "alienswarm", eti = { rar = {
		["bin/swarm.exe"] = { size = "32MiB", seed = 44 },
		["data/swarm.vpk"] = { size = "64MiB", seed = 45 },
	} } },
	makeGame { dir = "b", id = "alienswarm", eti = { rar = {
		["bin/swarm.exe"] = { size = "32MiB", seed = 44 },
		["data/swarm.vpk"] = { size = "64MiB", seed = 45 },
	} } },

	peer { name = "a", games = "a" },
	peer { name = "client", chunkSize = "1MiB" },
	connect { from = "client", to = "a" },
	waitGame { peer = "client", game = "alienswarm", peerCount = 1 },

	killPeer { name = "a", on = { peer = "client", event = "download-chunk-finished", game = "alienswarm" } },
	-- The stream-install that loses its source.
	streamInstall { peer = "client", game = "alienswarm", expect = "failed", timeout = "30s", label = "lost" },
	expectSequence { peer = "client", from = "lost", match = { game_id = "alienswarm" }, sequence = {
		"install-begin", "got-game-files", "download-begin", "download-chunk-finished*",
		"source-failed", "download-failed", "install-failed" } },
	expectEntries { peer = "client", path = "alienswarm", only = {} },
	expectStatus { peer = "client", activeOperations = {} },
	expectGames { peer = "client", absent = { "alienswarm" } },

	peer { name = "b", games = "b" },
	connect { from = "client", to = "b" },
	waitGame { peer = "client", game = "alienswarm", peerCount = 1 },
	streamInstall { peer = "client", game = "alienswarm", timeout = "90s" },
	expectChunks { peer = "client", game = "alienswarm", onlyFrom = { "b" } },
	expectEntries { peer = "client", path = "alienswarm", only = { "local" } },
	install { peer = "b", game = "alienswarm" },
	expectSameFiles { game = "alienswarm", source = "b", target = "client", installed = true },

	-- Two sources, one dies: the survivor carries the stream.
	makeGame { dir = "c", id = "cnc4", eti = { rar = {
		["bin/cnc4.exe"] = { size = "24MiB", seed = 46 },
		["data/cnc4.big"] = { size = "24MiB", seed = 47 },
	} } },
	makeGame { dir = "d", id = "cnc4", eti = { rar = {
		["bin/cnc4.exe"] = { size = "24MiB", seed = 46 },
		["data/cnc4.big"] = { size = "24MiB", seed = 47 },
	} } },
	peer { name = "c", games = "c" },
	peer { name = "d", games = "d" },
	connect { from = "client", to = { "c", "d" } },
	waitGame { peer = "client", game = "cnc4", peerCount = 2 },
	killPeer { name = "c", on = { peer = "client", event = "download-chunk-finished", game = "cnc4" } },
	streamInstall { peer = "client", game = "cnc4", timeout = "60s" },
	expectChunks { peer = "client", game = "cnc4", servedBy = { "d" } },
	expectNoEvent { peer = "client", event = "download-failed", match = { game_id = "cnc4" } },
	expectEntries { peer = "client", path = "cnc4", only = { "local" } },
	install { peer = "d", game = "cnc4" },
	expectSameFiles { game = "cnc4", source = "d", target = "client", installed = true },
	expectStatus { peer = "client", activeOperations = {} },
}
