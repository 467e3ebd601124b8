-- S65 (issue 13): 2 GiB over 20,000 files. s holds `alienswarm`: 19,995
-- small files of 0–8 KiB (seeded bytes, ≈ 82 MB) in 40 × 25 folders, a
-- 1 MiB seeded `.eti` and four sparse archives of 512 MiB each (2 GiB), marked with patched bytes at
-- their start, across chunk boundaries and in their last bytes, so a chunk
-- written at the wrong offset shows. The client downloads it while
-- expectResources samples both peers' open files until `download-finished`;
-- the files must end byte-exact.
--
-- Out of the default suite (tests/scenarios.rs runs scenarios/*.lua only):
-- the client writes 2 GiB of real zeros, and building and hashing 20,000
-- files on both sides takes a while on a busy 2-core machine. Run it with
--   lanspread-checker -s scenarios/scale/s65_two_gib_many_files.lua
local files = { ["alienswarm.eti"] = { size = "1MiB", seed = 65 } }
for i = 0, 19994 do
	files[string.format("data/d%02d/e%02d/f%05d.bin", i % 40, (i // 40) % 25, i)] = { size = (i * 37) % 8193, seed = i % 7 }
end
for k = 1, 4 do
	files[string.format("paks/pak%d.pak", k)] = { size = "512MiB", sparse = true }
end
local steps = {
	name = "s65_two_gib_many_files",
	timeout = "600s",
	tags = { "slow" },

	makeGame { dir = "s", id = "alienswarm", files = files },
}
for k = 1, 4 do
	for _, at in ipairs({ "0", "16MiB", tostring(128 * 1048576 - 2), "536870904" }) do
		steps[#steps + 1] = fsPatch { path = string.format("s/alienswarm/paks/pak%d.pak", k), offset = at,
			hex = string.format("65%02x%02x", k, #steps % 256), label = string.format("mark pak%d at %s", k, at) }
	end
end
for _, step in ipairs({
	peer { name = "s", games = "s", readonly = true },
	peer { name = "client" },
	connect { from = "client", to = "s" },
	waitGame { peer = "client", game = "alienswarm", peerCount = 1 },

	download { peer = "client", game = "alienswarm", wait = false },
	expectResources { peer = "client", also = { "s" }, untilEvent = "download-finished", timeout = "500s",
		interval = "20ms", openFiles = { atMost = 256 }, rss = { atMost = "64MiB" } },
	expectEvent { peer = "client", event = "download-begin", match = { game_id = "alienswarm", files = 20001 } },
	expectEvent { peer = "client", event = "download-finished", match = { game_id = "alienswarm" } },
	expectFile { peer = "client", path = "alienswarm/paks/pak3.pak", size = "512MiB" },
	expectSameFiles { game = "alienswarm", source = "s", target = "client" },
}) do
	steps[#steps + 1] = step
end
scenario(steps)
