-- S62: a game of 100,000 files in nested folders (0–4 KiB each) plus one
-- 16 MiB archive. Its file list (~4.8 MB) does not fit one 4 MiB frame, so
-- it crosses in pages; every file is its own chunk, so holding each target
-- open would need 200,000 descriptors. Both peers' open files are sampled
-- during the download and stay bounded, and each peer's peak RSS stays
-- within issue 13's 64 MiB; the files end byte-exact.
--
-- Then two more receivers download the game from s, one after the other
-- (s's digests are cached by then). A source that kept what each list
-- cost grew with every receiver (61.0 MiB after the first, 71.4 MiB after
-- three); the last steps read each peer's lifetime peak (VmHWM) and hold s
-- to 52 MiB over all three (seen 42.3 MiB since the fix).
--
-- Out of the default suite (tests/scenarios.rs runs scenarios/*.lua only):
-- building and comparing 100,000 files three times takes a minute or more
-- on a busy 2-core machine. Run it with
--   target/release/lanspread-checker -s scenarios/scale/s62_hundred_thousand_files.lua
local files = { ["css.eti"] = { size = "16MiB", seed = 1 } }
for i = 0, 99999 do
	files[string.format("d%02d/e%02d/f%06d.dat", i % 50, (i // 50) % 40, i)] = { size = (i * 37) % 4097, seed = i % 5 }
end

local steps = {
	name = "s62_hundred_thousand_files",
	timeout = "300s",

	makeGame { dir = "s", id = "css", files = files },
	peer { name = "s", games = "s", readonly = true },
	peer { name = "client" },
	connect { from = "client", to = "s" },
	waitGame { peer = "client", game = "css", peerCount = 1 },

	download { peer = "client", game = "css", wait = false },
	expectResources { peer = "client", also = { "s" }, untilEvent = "download-finished", timeout = "150s",
		interval = "20ms", openFiles = { atMost = 256 }, rss = { atMost = "64MiB" } },
	expectEvent { peer = "client", event = "download-begin", match = { game_id = "css", files = 100002 } },
	expectEvent { peer = "client", event = "download-finished", match = { game_id = "css" } },
	expectSameFiles { game = "css", source = "s", target = "client" },
}
for _, name in ipairs({ "client2", "client3" }) do
	table.insert(steps, peer { name = name })
	table.insert(steps, connect { from = name, to = "s" })
	table.insert(steps, waitGame { peer = name, game = "css", peerCount = 1 })
	table.insert(steps, download { peer = name, game = "css", timeout = "150s" })
	table.insert(steps, expectSameFiles { game = "css", source = "s", target = name })
end
table.insert(steps, expectResources { peer = "s", rss = { atMost = "52MiB" },
	label = "s's peak over three receivers" })
table.insert(steps, expectResources { peer = "client", also = { "client2", "client3" },
	rss = { atMost = "64MiB" }, label = "every receiver's peak" })
scenario(steps)
