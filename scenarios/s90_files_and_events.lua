-- S90 (checker self-test): the file-system actions, file expectations, raw
-- control commands and event/status expectations all do what docs/SCENARIOS.md
-- says, against a real peer. A peer serves a game whose files the scenario
-- reshapes with fs* actions; a client downloads it and every change must have
-- crossed the wire.
scenario
{
	name = "s90_files_and_events",
	timeout = "60s",

	makeGame { dir = "src", id = "ggoo", files = { ["ggoo.eti"] = { size = "2MiB", seed = 9 } } },
	fsCreateFolder { path = "src/ggoo/data/maps" },
	fsCreateFile { path = "src/ggoo/data/maps/one.map", contents = "first" },
	fsAppend { path = "src/ggoo/data/maps/one.map", contents = "+more" },
	fsCopyFile { from = "../redirects/files/payload.txt", fromScenario = true, to = "src/ggoo/data/payload.txt" },
	fsCopyFile { from = "src/ggoo/data/maps/one.map", to = "src/ggoo/data/maps/two.map" },
	fsRenameFile { from = "src/ggoo/data/maps/two.map", to = "src/ggoo/data/three.map" },
	fsCreateFolder { path = "src/ggoo/junk/deep" },
	fsCreateFile { path = "src/ggoo/junk/deep/x.tmp", size = "1MiB" },
	fsRenameFolder { from = "src/ggoo/junk", to = "src/ggoo/junk2" },
	fsDeleteFolder { path = "src/ggoo/junk2" },
	fsCreateFile { path = "src/ggoo/remove-me" },
	fsDeleteFile { path = "src/ggoo/remove-me" },
	expectFile { path = "src/ggoo/data/maps/one.map", contents = "first+more", size = 10 },
	expectNoFile { path = "src/ggoo/junk2" },
	expectNoFile { path = "src/ggoo/remove-me" },
	-- A real RAR .eti built from a table, installed by the peer.
	makeGame { dir = "src", id = "coh", eti = { solid = true, rar = {
		["bin/coh.bin"] = { size = "100KiB", seed = 1 }, ["readme.txt"] = "hello from rar" } } },

	peer { name = "src", games = "src" },
	peer { name = "client" },
	send { peer = "client", raw = "this is not json", expect = "error", match = { code = "bad-request" } },
	send { peer = "client", cmd = { cmd = "fly" }, expect = "error", match = { code = "bad-request" } },
	send { peer = "client", cmd = { cmd = "status" }, match = { peers = 0, active_operations = {} } },
	connect { from = "client", to = "src" },
	expectPeers { peer = "client", count = 1, peers = { src = { games = { ggoo = "20200721", coh = "20200907" } } } },
	expectGames { peer = "client", games = { ggoo = { peerCount = 1, downloaded = false }, coh = { peerCount = 1 } }, only = true },
	log { message = "downloading the reshaped game" },
	download { peer = "client", game = "ggoo", label = "reshaped" },
	expectEvent { peer = "client", event = "download-finished", match = { game_id = "ggoo", throughput = { chunks = 5 } } },
	expectEvent { peer = "client", event = "download-chunk-finished", match = { path = "data/three.map" }, from = "reshaped" },
	expectNoEvent { peer = "client", event = "download-failed" },
	expectNoEvent { peer = "client", event = "download-chunk-retry", window = "200ms" },
	expectStatus { peer = "client", activeOperations = {}, activeOutboundTransfers = {} },
	expectStatus { peer = "src", activeOutboundTransfers = {} },
	expectGames { peer = "client", games = { ggoo = { peerCount = 1, downloaded = true } } },
	expectFile { peer = "client", path = "ggoo/data/payload.txt", sameAs = "../redirects/files/payload.txt" },
	expectFile { peer = "client", path = "ggoo/data/three.map", contents = "first+more" },
	expectFile { peer = "client", path = "ggoo/version.ini", contents = "20200721", bytes = { offset = 0, hex = "3230" } },
	expectNoFile { peer = "client", path = "ggoo/junk2" },
	expectSameFiles { game = "ggoo", source = "src", target = "client" },
	install { peer = "src", game = "coh" },
	expectFile { peer = "src", path = "coh/local/readme.txt", contents = "hello from rar" },
	expectFile { peer = "src", path = "coh/local/bin/coh.bin", size = "100KiB" },
	sleep { duration = "10ms" },
	shutdownPeer { name = "client" },
}
