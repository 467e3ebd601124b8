-- S60: a download over a lossy, slow LAN link.
-- Each peer is its own host on the lab's LAN; the client's link drops 1 %
-- of packets and adds 10 ms each way. QUIC must recover every loss: the
-- download completes and the client's copy equals the source's byte for
-- byte. The summary records the topology and the impairment.
scenario
{
	name = "s70_lossy_download",
	network = "lan",
	timeout = "60s",

	makeGame { dir = "a", id = "alienswarm", eti = { size = "24MiB" } },
	peer { name = "a", games = "a" },
	peer { name = "client", chunkSize = "4MiB" },
	impair { peer = "client", loss = "1%", delay = "10ms" },
	connect { from = "client", to = "a" },
	waitGame { peer = "client", game = "alienswarm", peerCount = 1 },
	download { peer = "client", game = "alienswarm", timeout = "40s" },
	expectChunks { peer = "client", game = "alienswarm", servedBy = { "a" } },
	expectSameFiles { game = "alienswarm", source = "a", target = "client" },
}
