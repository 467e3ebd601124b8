-- S38: first play stamps the launch settings once.
-- a installs css from the persona fixture, whose archive buries a CRLF
-- SmartSteamEmu.ini and ships stub profile files. The first play writes the
-- username and language; a later play (also after a restart) writes nothing,
-- even though the files were reset in between.
scenario
{
	name = "s38_first_play",
	timeout = "60s",

	peer { name = "a", games = "../fixtures/fixture-persona" },
	-- Not installed yet: play is refused and leaves no operation behind.
	send { peer = "a", cmd = { cmd = "play", game_id = "css", username = "alice", language = "german" },
		expect = "error", match = { code = "not-installed" } },
	expectStatus { peer = "a", activeOperations = {} },
	install { peer = "a", game = "css" },
	expectFile { peer = "a", path = "css/local/profiles/local/account_name.txt", contents = "stubplayer" },
	expectFile { peer = "a", path = "css/local/profiles/local/language.txt", contents = "english" },
	expectFile { peer = "a", path = "css/local/engine/bin/win64/steam_settings/SmartSteamEmu.ini",
	             contents = "[Settings]\r\nAppId = 240\r\nPersonaName = stubplayer\r\nLanguage = english\r\n" },

	play { peer = "a", game = "css", username = "alice", language = "german",
	       expect = { already_applied = false, account_name_written = true,
	                  language_written = true, persona_name_written = true } },
	expectFile { peer = "a", path = "css/local/profiles/local/account_name.txt", contents = "alice" },
	expectFile { peer = "a", path = "css/local/profiles/local/language.txt", contents = "german" },
	expectFile { peer = "a", path = "css/local/engine/bin/win64/steam_settings/SmartSteamEmu.ini",
	             contents = "[Settings]\r\nAppId = 240\r\nPersonaName = alice\r\nLanguage = english\r\n" },

	-- Reset the files; a second play must leave them as they are.
	fsCreateFile { peer = "a", path = "css/local/profiles/local/account_name.txt", contents = "stubplayer" },
	fsCreateFile { peer = "a", path = "css/local/profiles/local/language.txt", contents = "english" },
	fsCreateFile { peer = "a", path = "css/local/engine/bin/win64/steam_settings/SmartSteamEmu.ini",
	               contents = "[Settings]\r\nAppId = 240\r\nPersonaName = stubplayer\r\nLanguage = english\r\n" },
	play { peer = "a", game = "css", username = "bob", language = "french",
	       expect = { already_applied = true, account_name_written = false,
	                  language_written = false, persona_name_written = false } },
	restartPeer { name = "a" },
	play { peer = "a", game = "css", username = "carol", language = "italian",
	       expect = { already_applied = true, account_name_written = false,
	                  language_written = false, persona_name_written = false } },
	expectFile { peer = "a", path = "css/local/profiles/local/account_name.txt", contents = "stubplayer" },
	expectFile { peer = "a", path = "css/local/profiles/local/language.txt", contents = "english" },
	expectFile { peer = "a", path = "css/local/engine/bin/win64/steam_settings/SmartSteamEmu.ini",
	             contents = "[Settings]\r\nAppId = 240\r\nPersonaName = stubplayer\r\nLanguage = english\r\n" },
}
