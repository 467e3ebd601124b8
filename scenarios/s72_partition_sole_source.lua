-- S72: the only source is partitioned away mid-download, then the LAN heals.
-- a is the client's only source of alienswarm (64 MiB, eight 8 MiB
-- chunks). The moment the client reports its first finished chunk, a is cut off.
-- With no survivor the download must fail cleanly within the transport's
-- idle timeout (4 s, docs/PROTOCOL.md) plus retry time: download-failed
-- within 15 s, no version.ini, the operation cleared. After heal{} the
-- client dials a again and a retry completes byte-exact.
scenario
{
	name = "s72_partition_sole_source",
	network = "lan",
	tags = { "lan" },
	timeout = "60s",

	makeGame { dir = "a", id = "alienswarm", eti = { size = "64MiB" } },

	peer { name = "a", games = "a", readonly = true },
	peer { name = "client", chunkSize = "8MiB" },
	connect { from = "client", to = "a" },
	waitGame { peer = "client", game = "alienswarm", peerCount = 1 },

	partition { { "a" }, { "client" }, on = { peer = "client", event = "download-chunk-finished", game = "alienswarm" } },
	download { peer = "client", game = "alienswarm", expect = "failed", timeout = "15s", label = "cut" },
	expectSequence { peer = "client", from = "cut", match = { game_id = "alienswarm" }, sequence = {
		"got-game-files", "download-begin", "download-chunk-finished*", "source-failed",
		"download-failed" } },
	expectNoFile { peer = "client", path = "alienswarm/version.ini" },
	expectStatus { peer = "client", activeOperations = {} },

	heal {},
	connect { from = "client", to = "a" },
	waitGame { peer = "client", game = "alienswarm", peerCount = 1 },
	download { peer = "client", game = "alienswarm", timeout = "30s" },
	expectFile { peer = "client", path = "alienswarm/version.ini" },
	expectSameFiles { game = "alienswarm", source = "a", target = "client" },
	expectStatus { peer = "client", activeOperations = {} },
}
