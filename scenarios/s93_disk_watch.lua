-- S93: checker self-test of watchDisk/expectDiskPeak.
-- A plain download of a game whose .eti holds 32 MiB of real (seeded, not
-- sparse) bytes must show a disk peak of at least 32 MiB on the receiver, and
-- not much more; nothing is written and deleted again. The same download
-- bounded by atMost = "8MiB" must go red: tests/scenarios.rs runs that case.
scenario
{
	name = "s93_disk_watch",
	timeout = "60s",

	makeGame { dir = "s", id = "cnc4", eti = { size = "32MiB", seed = 93 } },
	peer { name = "s", games = "s", readonly = true },
	peer { name = "client", chunkSize = "4MiB" },
	connect { from = "client", to = "s" },
	waitGame { peer = "client", game = "cnc4", peerCount = 1 },

	watchDisk { peer = "client" },
	download { peer = "client", game = "cnc4" },
	expectDiskPeak { peer = "client", atLeast = "32MiB", atMost = "33MiB", overFinal = "64KiB" },
	expectSameFiles { game = "cnc4", source = "s", target = "client" },

	-- Nothing moves: the peak stays at the baseline.
	watchDisk { peer = "client", interval = "1ms" },
	sleep { duration = "200ms" },
	expectDiskPeak { peer = "client", atMost = "0" },
}
