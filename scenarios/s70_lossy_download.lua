-- S70: a download over a lossy, slow LAN link.
-- Each peer is its own host on the lab's LAN; the client's link drops 1 %
-- of packets and adds 10 ms each way. QUIC must recover every loss: the
-- download completes and the client's copy equals the source's byte for
-- byte, and the switch must really have dropped packets on the way. The
-- summary records the topology and the impairment.
scenario
{
	name = "s70_lossy_download",
	network = "lan",
	tags = { "lan" },
	timeout = "60s",

	makeGame { dir = "a", id = "alienswarm", eti = { size = "64MiB" } },
	peer { name = "a", games = "a" },
	peer { name = "client", chunkSize = "4MiB" },
	impair { peer = "client", loss = "1%", delay = "10ms" },
	connect { from = "client", to = "a" },
	waitGame { peer = "client", game = "alienswarm", peerCount = 1 },
	download { peer = "client", game = "alienswarm", timeout = "40s" },
	expectChunks { peer = "client", game = "alienswarm", servedBy = { "a" } },
	expectSameFiles { game = "alienswarm", source = "a", target = "client" },
	-- The loss was real: the switch's loss rule dropped packets of this
	-- download, which QUIC resent. The peers send datagrams of up to 64 KiB
	-- here, so 64 MiB is some 1,000 data packets plus their acks: about 15
	-- drops (seen 8 of 641 packets for 24 MiB); none at all has a chance
	-- below 1 in 10^6.
	expectDrops { cause = "loss", atLeast = 1 },
}
