-- S77 (issue 15, part 5): a peer started through OpenSSH serves a download.
-- far's host runs an sshd of its own (a throwaway host key and client key
-- in far's run folder); the checker starts far as `ssh user@<far's host>
-- -- lanspread-checker peer …` from the LAN's ssh-control host, so far's
-- control lines cross a real SSH session over the lab's switch. Every
-- address used comes from far's `ready` line (connect dials it). The
-- client downloads cnc4 from far. Exits 3 with a message naming what is
-- missing when OpenSSH is not installed.
scenario
{
	name = "s77_peer_over_ssh",
	network = "lan",
	tags = { "lan" },
	timeout = "60s",

	makeGame { dir = "far", id = "cnc4", eti = { size = "8MiB" } },
	peer { name = "far", games = "far", ssh = true, readonly = true },
	peer { name = "client", chunkSize = "1MiB" },
	connect { from = "client", to = "far" },
	waitGame { peer = "client", game = "cnc4", peerCount = 1 },
	download { peer = "client", game = "cnc4" },
	expectChunks { peer = "client", game = "cnc4", onlyFrom = { "far" }, chunks = 9 },
	expectSameFiles { game = "cnc4", source = "far", target = "client" },
	-- far's commands and answers go through ssh too.
	send { peer = "far", cmd = { cmd = "status" }, expect = "result" },
	shutdownPeer { name = "far" },
}
