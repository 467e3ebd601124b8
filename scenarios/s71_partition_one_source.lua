-- S71: one of two sources is partitioned away mid-download.
-- a and b both hold alienswarm (64 MiB, eight 8 MiB chunks), each its own
-- host on the LAN. The moment the client reports its first finished chunk, a is cut
-- off from everyone (a partition, not a kill: a keeps running, its
-- packets just stop arriving). The client's chunks from a stall until the
-- connection's idle timeout; they must be retried on b and the download
-- must finish from b with no download-failed.
scenario
{
	name = "s71_partition_one_source",
	network = "lan",
	tags = { "lan" },
	timeout = "60s",

	makeGame { dir = "a", id = "alienswarm", eti = { size = "64MiB" } },
	makeGame { dir = "b", id = "alienswarm", files = { ["alienswarm.eti"] = { size = "64MiB" } } },

	peer { name = "a", games = "a" },
	peer { name = "b", games = "b" },
	peer { name = "client", chunkSize = "8MiB" },
	connect { from = "client", to = { "a", "b" } },
	waitGame { peer = "client", game = "alienswarm", peerCount = 2 },

	partition { { "a" }, { "b", "client" }, on = { peer = "client", event = "download-chunk-finished", game = "alienswarm" } },
	download { peer = "client", game = "alienswarm", timeout = "30s", label = "dl" },
	-- a's chunks really were cut off and moved.
	expectEvent { peer = "client", event = "download-chunk-retry", from = "dl", match = { game_id = "alienswarm" } },
	expectNoEvent { peer = "client", event = "download-failed", match = { game_id = "alienswarm" } },
	expectChunks { peer = "client", game = "alienswarm", servedBy = { "b" } },
	expectSameFiles { game = "alienswarm", source = "b", target = "client" },
	expectStatus { peer = "client", activeOperations = {} },
}
