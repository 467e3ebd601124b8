-- S37: throughput of one large download.
-- s serves bf1942 as one 2 GiB sparse .eti; the client downloads it with the
-- default 128 MiB chunks. download-finished must report positive,
-- self-consistent figures (mib_per_s from bytes and duration_ms, mbit_per_s
-- / mib_per_s = 8.388608) for the bytes and chunks announced at the start.
-- No speed is asserted: the figure depends on the machine.
scenario
{
	name = "s37_throughput",
	timeout = "180s",

	makeGame { dir = "s", id = "bf1942", files = { ["bf1942.eti"] = { size = "2GiB", sparse = true } } },

	peer { name = "s", games = "s" },
	peer { name = "client" },
	connect { from = "client", to = "s" },
	waitGame { peer = "client", game = "bf1942", peerCount = 1 },

	download { peer = "client", game = "bf1942", timeout = "150s" },
	expectThroughput { peer = "client", game = "bf1942" },
	expectChunks { peer = "client", game = "bf1942", onlyFrom = { "s" }, chunks = 17 },
	expectFile { peer = "client", path = "bf1942/bf1942.eti", size = "2GiB" },
}
