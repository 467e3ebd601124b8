-- S74: two sources, each capped at 100 Mbit/s out, share one download.
-- a and b hold the same 96 MiB alienswarm, each its own host on the LAN
-- with its sending side throttled to 100 Mbit/s (the switch's rate queue).
-- The client (4 MiB chunks, 25 in all with version.ini) must use both, and
-- each must serve at least 40 % of the bytes: the download is spread over
-- the sources, not left to whichever answered first. Proportions only; no
-- speed is asserted.
scenario
{
	name = "s74_two_capped_sources",
	network = "lan",
	tags = { "lan" },
	timeout = "60s",

	makeGame { dir = "a", id = "alienswarm", eti = { size = "96MiB", sparse = true } },
	makeGame { dir = "b", id = "alienswarm", eti = { size = "96MiB", sparse = true } },
	peer { name = "a", games = "a", readonly = true },
	peer { name = "b", games = "b", readonly = true },
	peer { name = "client", chunkSize = "4MiB" },
	impair { peer = "a", rate = "100Mbit", direction = "out" },
	impair { peer = "b", rate = "100Mbit", direction = "out" },
	connect { from = "client", to = { "a", "b" } },
	waitGame { peer = "client", game = "alienswarm", peerCount = 2 },
	download { peer = "client", game = "alienswarm", timeout = "40s" },
	expectChunks { peer = "client", game = "alienswarm", onlyFrom = { "a", "b" }, servedBy = { "a", "b" }, minShare = "40%", chunks = 25 },
	expectSameFiles { game = "alienswarm", source = "a", target = "client" },
}
