-- S60: 10,000 files of 16 KiB. Each is its own chunk, so a receiver that
-- held every target open needed 20,000 descriptors and failed with EMFILE.
-- The client's open files are sampled while it downloads and must stay
-- bounded (targets are opened per chunk, at most 64 at once); the source
-- opens one file per chunk request. Both end byte-exact.
local files = {}
for i = 0, 9999 do
	files[string.format("data/d%03d/f%05d.bin", i % 100, i)] = { size = "16KiB", seed = i % 7 }
end
scenario
{
	name = "s60_ten_thousand_files",
	timeout = "120s",

	makeGame { dir = "s", id = "css", files = files },
	peer { name = "s", games = "s", readonly = true },
	peer { name = "client" },
	connect { from = "client", to = "s" },
	waitGame { peer = "client", game = "css", peerCount = 1 },

	download { peer = "client", game = "css", wait = false },
	expectResources { peer = "client", also = { "s" }, untilEvent = "download-finished", timeout = "90s",
		openFiles = { atMost = 256 }, rss = { atMost = "64MiB" } },
	expectEvent { peer = "client", event = "download-finished", match = { game_id = "css" } },
	expectSameFiles { game = "css", source = "s", target = "client" },
}
