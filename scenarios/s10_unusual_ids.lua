-- S10: a catalog with unusual IDs.
-- Both peers run a catalog whose IDs are one letter, digits only, 128
-- characters (the longest allowed), and two that differ only in case
-- (two games, since IDs are case-sensitive folder names). Every one is
-- listed once, downloads intact, and the two case twins stay apart.
scenario
{
	name = "s10_unusual_ids",
	timeout = "60s",

	makeGame { dir = "s", id = "a", version = "20200101", files = { ["a.eti"] = "one letter" } },
	makeGame { dir = "s", id = "UPPER.case-Mix_9", version = "20200102", files = { ["x.eti"] = "upper" } },
	makeGame { dir = "s", id = "upper.case-mix_9", version = "20200103", files = { ["x.eti"] = "lower!" } },
	makeGame { dir = "s", id = "007", version = "20200104", files = { ["007.eti"] = { size = "300KiB", seed = 7 } } },
	makeGame { dir = "s", id = "Looooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooong", version = "20200105", files = { ["long.eti"] = "long" } },
	peer { name = "s", games = "s", catalog = "../redirects/catalogs/unusual-ids.json" },
	peer { name = "c", catalog = "../redirects/catalogs/unusual-ids.json", chunkSize = "64KiB" },
	connect { from = "c", to = "s" },
	expectGames { peer = "c", only = true, games = {
		a = { peerCount = 1 }, ["UPPER.case-Mix_9"] = { peerCount = 1, version = "20200102" },
		["upper.case-mix_9"] = { peerCount = 1, version = "20200103" }, ["007"] = { peerCount = 1 },
		["Looooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooong"] = { peerCount = 1 },
	} },
	download { peer = "c", game = "a" },
	download { peer = "c", game = "UPPER.case-Mix_9" },
	download { peer = "c", game = "upper.case-mix_9" },
	download { peer = "c", game = "007" },
	download { peer = "c", game = "Looooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooong" },
	expectSameFiles { game = "a", source = "s", target = "c" },
	expectFile { peer = "c", path = "UPPER.case-Mix_9/x.eti", contents = "upper" },
	expectFile { peer = "c", path = "upper.case-mix_9/x.eti", contents = "lower!" },
	expectSameFiles { game = "007", source = "s", target = "c" },
	expectSameFiles { game = "Looooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooong", source = "s", target = "c" },
	expectGames { peer = "c", only = true, games = {
		a = { downloaded = true }, ["UPPER.case-Mix_9"] = { downloaded = true },
		["upper.case-mix_9"] = { downloaded = true }, ["007"] = { downloaded = true }, ["Looooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooong"] = { downloaded = true },
	} },
}
