-- S48: control-protocol fuzzing.
-- A peer serves a small cnc4. Every control command it lists (but shutdown)
-- is sent every combination of up to two field values drawn from hostile
-- choices: a real game id, a path, numbers of the wrong sign, a boolean, an
-- empty and a long string. Each input must get exactly one well-formed
-- answer, the peer must stay up, nothing outside its games dir may change,
-- and afterwards a fresh probe peer must still download cnc4 from it intact.
scenario
{
	name = "s48_fuzz_control",
	timeout = "60s",

	makeGame { dir = "s", id = "cnc4",
		files = { ["cnc4.eti"] = { size = "256KiB", seed = 4 }, ["data/readme.txt"] = "fuzz me" } },
	peer { name = "s", games = "s" },

	fuzzAllCommands { peer = "s", maxLen = 2,
		choices = { "cnc4", "../x", 0, -1, true, "", string.rep("x", 4096) } },

	-- Fields the peer does not list, and values of every JSON type.
	fuzzCommand { peer = "s", cmd = "download", fields = { "game_id", "install", "bogus" },
		choices = { "cnc4", "../cnc4", false, 1.5, { nested = "table" } }, minLen = 1, maxLen = 3 },
}
