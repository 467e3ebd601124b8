-- S42: a stream-install never stores the archive.
-- bf1942's .eti holds 48 MiB of stored entries (three 16 MiB files and a
-- small one). The client stream-installs it in 1 MiB chunks while a disk
-- watcher samples its games folder every few ms: the peak rise must stay
-- within the installed size plus one chunk (48 MiB + 1 MiB, plus 64 KiB for
-- folder blocks and rounding), and never more than one chunk above where it
-- ends. Contrast, same file: plain, a second receiver, downloads and then
-- installs the same game, which holds archive and extracted files at once:
-- its peak is at least twice the payload, well past that bound.
local payload = 3 * 16 * 1048576 + 12345
local chunk = 1048576

scenario
{
	name = "s42_stream_disk_peak",
	timeout = "120s",

	makeGame { dir = "s", id = "bf1942", eti = { rar = {
		["bin/bf1942.exe"] = { size = "16MiB", seed = 42 },
		["data/maps.rfa"] = { size = "16MiB", seed = 43 },
		["data/sound.rfa"] = { size = "16MiB", seed = 44 },
		["data/readme.txt"] = { size = 12345, seed = 45 },
	} } },
	peer { name = "s", games = "s", readonly = true },
	peer { name = "client", chunkSize = "1MiB" },
	peer { name = "plain", chunkSize = "1MiB" },
	connect { from = "client", to = "s" },
	connect { from = "plain", to = "s" },
	waitGame { peer = "client", game = "bf1942", peerCount = 1 },
	waitGame { peer = "plain", game = "bf1942", peerCount = 1 },

	watchDisk { peer = "client" },
	streamInstall { peer = "client", game = "bf1942" },
	expectDiskPeak { peer = "client", atLeast = payload, atMost = payload + chunk + 65536, overFinal = chunk },
	expectEvent { peer = "client", event = "install-finished", match = { game_id = "bf1942", bytes = payload, stream = true } },
	expectEntries { peer = "client", path = "bf1942", only = { "local" } },

	watchDisk { peer = "plain" },
	download { peer = "plain", game = "bf1942", install = true },
	expectDiskPeak { peer = "plain", atLeast = 2 * payload },
	expectSameFiles { game = "bf1942", source = "plain", target = "client", installed = true },
}
