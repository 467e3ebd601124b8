-- S50: file redirection honoured by the peer's own file layer.
-- A redirect table applies to every peer started after the redirect step,
-- so the two clients start first and each source right after its redirect.
--  * s1 holds cnc4 at the catalog version, but its version.ini is redirected
--    to a stale sentinel (20150101): the client must not take it as a source.
--  * s2 holds ggoo with a generated 1 MiB ggoo.eti, redirected to a small
--    checked-in file: the client must download the redirected bytes.
--  * s3 holds cnc4 at 20150101 and its game.db is redirected to a catalog
--    source that says 20150101: only then does s3 serve it, so a client
--    running that same old catalog can download it from s3 alone. s3 also
--    inherits the version.ini redirect, so the sentinel it serves is the
--    stale file (with a newline), not the one makeGame wrote.
scenario
{
	name = "s50_redirect_sentinel",
	timeout = "60s",

	makeGame { dir = "s1", id = "cnc4", files = { ["cnc4.eti"] = { size = "1MiB", seed = 1 } } },
	makeGame { dir = "s2", id = "ggoo", files = { ["ggoo.eti"] = { size = "1MiB", seed = 2 } } },
	makeGame { dir = "s3", id = "cnc4", version = "20150101",
		files = { ["cnc4.eti"] = { size = "2MiB", seed = 3 } } },

	-- Started before any redirect: they see the real layout only.
	peer { name = "client" },
	peer { name = "oldclient", catalog = "../redirects/catalogs/cnc4-20150101.json" },

	redirect { ["games/ggoo/ggoo.eti"] = "../redirects/eti/ggoo.eti" },
	peer { name = "s2", games = "s2" },
	redirect { ["games/cnc4/version.ini"] = "../redirects/stale/version.ini" },
	peer { name = "s1", games = "s1" },
	redirect { ["game.db"] = "../redirects/catalogs/cnc4-20150101.json" },
	peer { name = "s3", games = "s3" },

	connect { from = "client", to = { "s1", "s2" } },
	waitGame { peer = "client", game = "ggoo", peerCount = 1 },
	download { peer = "client", game = "ggoo" },
	expectFile { peer = "client", path = "ggoo/ggoo.eti", sameAs = "../redirects/eti/ggoo.eti" },
	-- s1 advertises the stale sentinel's version, so nobody offers cnc4.
	download { peer = "client", game = "cnc4", expect = "failed", timeout = "10s" },

	connect { from = "oldclient", to = { "s1", "s3" } },
	waitGame { peer = "oldclient", game = "cnc4", version = "20150101" },
	download { peer = "oldclient", game = "cnc4" },
	expectChunks { peer = "oldclient", game = "cnc4", onlyFrom = { "s3" } },
	-- s3's version.ini is redirected too (s3 started after that redirect):
	-- the client got the stale file's bytes, not the 8-byte one makeGame wrote.
	expectFile { peer = "oldclient", path = "cnc4/version.ini", sameAs = "../redirects/stale/version.ini" },
}
