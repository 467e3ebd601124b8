-- S49: wire-protocol fuzzing.
-- The checker itself opens QUIC connections to a peer serving a small cnc4
-- and sends it malformed and hostile frames: garbage, oversized and cut-off
-- frames, wrong shapes, unknown fields, bad hellos, ../ and absolute paths,
-- local/ and symlinked paths, out-of-range chunks, bad game ids, abandoned
-- streams, then 200 seeded random mutations of valid frames. Every request
-- must be denied or closed (never served), every hostile announce stream
-- must close the connection, the peer must stay up and change nothing
-- outside its games dir, and a fresh probe peer must still download cnc4.
scenario
{
	name = "s49_fuzz_wire",
	timeout = "60s",

	makeGame { dir = "s", id = "cnc4",
		files = { ["cnc4.eti"] = { size = "256KiB", seed = 5 }, ["data/readme.txt"] = "fuzz me" } },
	peer { name = "s", games = "s" },

	fuzzWire { target = "s", cases = 200, seed = 49 },
}
