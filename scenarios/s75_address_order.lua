-- S75 (the reference's "S42 IP-order precondition", which relied on the IP
-- order Docker assigned): address order decides which of two tied sources
-- serves the first chunk.
-- The rule (docs/PROTOCOL.md, "How a download works"): sources are ordered
-- by listener address as a number and chunk i goes to source i mod n. hi
-- (198.18.0.10) starts before lo (198.18.0.9) and the client dials hi
-- first, so neither start order, dial order nor text order (".10" < ".9")
-- gives lo the first place; only the numeric rule does. Both listen on a
-- fixed port (peer{ port }). cnc4 is 2 MiB in 1 MiB chunks plus the 8-byte
-- version.ini, three chunks: the first source gets chunks 0 and 2
-- (1 MiB + 8 B), the second chunk 1 (1 MiB), whichever file comes first.
-- The same holds after lo restarts on its fixed port.
scenario
{
	name = "s75_address_order",
	network = "lan",
	tags = { "lan" },
	timeout = "60s",

	makeGame { dir = "hi", id = "cnc4", eti = { size = "2MiB" } },
	makeGame { dir = "lo", id = "cnc4", eti = { size = "2MiB" } },
	peer { name = "hi", games = "hi", address = "198.18.0.10", port = 47000, readonly = true },
	peer { name = "lo", games = "lo", address = "198.18.0.9", port = 47000, readonly = true },
	peer { name = "client", chunkSize = "1MiB" },
	connect { from = "client", to = { "hi", "lo" } },
	waitGame { peer = "client", game = "cnc4", peerCount = 2 },
	download { peer = "client", game = "cnc4" },
	expectChunks { peer = "client", game = "cnc4", chunks = 3, totals = { lo = 1048584, hi = 1048576 } },
	expectSameFiles { game = "cnc4", source = "lo", target = "client" },

	-- lo restarts gracefully on the same address and port (the fixed port
	-- is kept); the client dials that same listener again, and the order
	-- is the same.
	fsDeleteFolder { peer = "client", path = "cnc4" },
	restartPeer { name = "lo" },
	connect { from = "client", to = "lo" },
	expectGames { peer = "client", games = { cnc4 = { peerCount = 2, downloaded = false } } },
	download { peer = "client", game = "cnc4" },
	expectChunks { peer = "client", game = "cnc4", chunks = 3, totals = { lo = 1048584, hi = 1048576 } },
}
