-- S48: control-protocol fuzzing.
-- A peer serves a small cnc4. Every control command it lists (but shutdown)
-- is sent every combination of up to two field values drawn from hostile
-- choices: a real game id, a path, numbers of the wrong sign, a boolean, an
-- empty and a long string. Each input must get exactly one well-formed
-- answer, the peer must stay up, nothing outside its games dir may change,
-- and afterwards a fresh probe peer must still download cnc4 from it intact.
-- Then `play` is fuzzed on an installed css: its one documented side effect
-- outside the games folder, the first-play marker in the state dir, is
-- allowed (`allow = { "first-play-marker" }`) and nothing else is.
scenario
{
	name = "s48_fuzz_control",
	timeout = "90s",

	makeGame { dir = "s", id = "cnc4",
		files = { ["cnc4.eti"] = { size = "256KiB", seed = 4 }, ["data/readme.txt"] = "fuzz me" } },
	peer { name = "s", games = "s" },

	fuzzAllCommands { peer = "s", maxLen = 2,
		choices = { "cnc4", "../x", 0, -1, true, "", string.rep("x", 4096) } },

	-- Fields the peer does not list, and values of every JSON type.
	fuzzCommand { peer = "s", cmd = "download", fields = { "game_id", "install", "bogus" },
		choices = { "cnc4", "../cnc4", false, 1.5, { nested = "table" } }, minLen = 1, maxLen = 3 },

	peer { name = "p", games = "../fixtures/fixture-persona" },
	install { peer = "p", game = "css" },
	fuzzCommand { peer = "p", cmd = "play", allow = { "first-play-marker" },
		choices = { "css", "alice", "german", "", "../x", 7 }, minLen = 1, maxLen = 3 },
	-- The fuzzing really played css once (so the marker was allowed, not absent).
	play { peer = "p", game = "css", username = "bob", language = "french",
		expect = { already_applied = true } },
}
