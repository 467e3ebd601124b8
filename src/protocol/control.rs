//! The control protocol's messages: the commands a controller sends on a
//! peer's stdin (one JSON object a line), their introspection table, and
//! the error answer. docs/PROTOCOL.md describes them for people.

use crate::protocol::layout::GameId;
use serde::Deserialize;
use serde_json::Value;

/// Longest control line accepted; longer input is answered with an error.
pub const MAX_LINE: usize = 1 << 20;

/// Defines a closed set of protocol names: an enum whose variants print as
/// their kebab-case text (serde and `as_str` agree), plus `ALL` for the
/// docs test that checks each one is documented.
macro_rules! protocol_names {
    ($(#[$meta:meta])* pub enum $name:ident { $($variant:ident => $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant,)*
        }

        impl $name {
            pub const ALL: &[$name] = &[$($name::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

protocol_names! {
    /// The stable `code` of an `error` answer (docs/PROTOCOL.md).
    pub enum ErrorCode {
        BadRequest => "bad-request",
        ConnectFailed => "connect-failed",
        SelfConnect => "self-connect",
        Timeout => "timeout",
        UnknownGame => "unknown-game",
        StaleRoot => "stale-root",
        NoSource => "no-source",
        AlreadyDownloaded => "already-downloaded",
        AlreadyInstalled => "already-installed",
        NotDownloaded => "not-downloaded",
        NotDownloading => "not-downloading",
        NotInstalled => "not-installed",
        OperationInProgress => "operation-in-progress",
        NoArchive => "no-archive",
        InstallFailed => "install-failed",
        UninstallFailed => "uninstall-failed",
        PlayFailed => "play-failed",
    }
}

protocol_names! {
    /// The name of an `event` line (docs/PROTOCOL.md).
    pub enum Event {
        Ready => "ready",
        GotGameFiles => "got-game-files",
        SourceSilent => "source-silent",
        SourceDisagrees => "source-disagrees",
        SourceBadChunk => "source-bad-chunk",
        SourceListFailed => "source-list-failed",
        SourceFailed => "source-failed",
        SourceStalled => "source-stalled",
        PeerRefused => "peer-refused",
        PeerDropped => "peer-dropped",
        DownloadBegin => "download-begin",
        DownloadChunkFinished => "download-chunk-finished",
        DownloadChunkRetry => "download-chunk-retry",
        DownloadFinished => "download-finished",
        DownloadFailed => "download-failed",
        DownloadCancelled => "download-cancelled",
        UploadBegin => "upload-begin",
        UploadEnd => "upload-end",
        InstallBegin => "install-begin",
        InstallFinished => "install-finished",
        InstallFailed => "install-failed",
        PeerDiscovered => "peer-discovered",
    }
}

/// Every control command. Unknown commands and fields are errors.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Command {
    Status {},
    Connect {
        addr: String,
    },
    ListPeers {},
    ListGames {},
    WaitPeers {
        count: usize,
        #[serde(default)]
        timeout_ms: Option<u64>,
    },
    Download {
        game_id: GameId,
        #[serde(default)]
        install: bool,
    },
    Install {
        game_id: GameId,
    },
    StreamInstall {
        game_id: GameId,
    },
    Uninstall {
        game_id: GameId,
    },
    Play {
        game_id: GameId,
        username: String,
        language: String,
    },
    CancelDownload {
        game_id: GameId,
    },
    Shutdown {},
    Commands {},
}

/// One field of a control command, as listed by `commands`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct FieldSpec {
    pub name: &'static str,
    /// `string`, `bool` or `integer` (a JSON number ≥ 0).
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub required: bool,
}

/// One control command, as listed by `commands`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CommandSpec {
    pub name: &'static str,
    pub fields: &'static [FieldSpec],
}

const fn field(name: &'static str, kind: &'static str, required: bool) -> FieldSpec {
    FieldSpec {
        name,
        kind,
        required,
    }
}

/// Every `Command` variant and its fields, for the `commands` introspection
/// command (and the checker's fuzzers). Kept next to the enum; the tests
/// check both against serde's own idea of the enum, so they cannot drift.
pub const COMMAND_SPECS: &[CommandSpec] = &[
    CommandSpec {
        name: "status",
        fields: &[],
    },
    CommandSpec {
        name: "connect",
        fields: &[field("addr", "string", true)],
    },
    CommandSpec {
        name: "list-peers",
        fields: &[],
    },
    CommandSpec {
        name: "list-games",
        fields: &[],
    },
    CommandSpec {
        name: "wait-peers",
        fields: &[
            field("count", "integer", true),
            field("timeout_ms", "integer", false),
        ],
    },
    CommandSpec {
        name: "download",
        fields: &[
            field("game_id", "string", true),
            field("install", "bool", false),
        ],
    },
    CommandSpec {
        name: "install",
        fields: &[field("game_id", "string", true)],
    },
    CommandSpec {
        name: "stream-install",
        fields: &[field("game_id", "string", true)],
    },
    CommandSpec {
        name: "uninstall",
        fields: &[field("game_id", "string", true)],
    },
    CommandSpec {
        name: "play",
        fields: &[
            field("game_id", "string", true),
            field("username", "string", true),
            field("language", "string", true),
        ],
    },
    CommandSpec {
        name: "cancel-download",
        fields: &[field("game_id", "string", true)],
    },
    CommandSpec {
        name: "shutdown",
        fields: &[],
    },
    CommandSpec {
        name: "commands",
        fields: &[],
    },
];

/// An error answer: a stable `code` for scripts and a message for people.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandError {
    pub code: ErrorCode,
    pub message: String,
}

impl CommandError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Parses one control line into its echoed `id` and the command.
pub fn parse_line(line: &str) -> (Value, Result<Command, CommandError>) {
    let bad = |m: String| CommandError::new(ErrorCode::BadRequest, m);
    let mut value: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return (Value::Null, Err(bad(format!("not a JSON object: {e}")))),
    };
    let Some(obj) = value.as_object_mut() else {
        return (
            Value::Null,
            Err(bad("a command must be a JSON object".into())),
        );
    };
    let id = obj.remove("id").unwrap_or(Value::Null);
    if !(id.is_null() || id.is_string() || id.is_number()) {
        return (
            Value::Null,
            Err(bad("`id` must be a string or a number".into())),
        );
    }
    // The reference protocol accepts `command` as well as `cmd`.
    if let Some(c) = obj.remove("command") {
        if obj.contains_key("cmd") {
            return (id, Err(bad("give `cmd` or `command`, not both".into())));
        }
        obj.insert("cmd".into(), c);
    }
    if !obj.contains_key("cmd") {
        return (id, Err(bad("missing `cmd`".into())));
    }
    match serde_json::from_value::<Command>(value) {
        Ok(cmd) => (id, Ok(cmd)),
        Err(e) => (id, Err(bad(e.to_string()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn well_formed_lines_parse_with_their_id() -> Result<(), String> {
        let (id, cmd) = parse_line(r#"{"id":"x","cmd":"status"}"#);
        assert_eq!(id, json!("x"));
        assert_eq!(cmd, Ok(Command::Status {}));
        let (id, cmd) = parse_line(r#"{"id":7,"command":"download","game_id":"cnc4"}"#);
        assert_eq!(id, json!(7));
        assert_eq!(
            cmd,
            Ok(Command::Download {
                game_id: GameId::new("cnc4").map_err(|e| e.to_string())?,
                install: false
            })
        );
        Ok(())
    }

    /// The names serde lists after "expected" in an error message.
    fn expected_names(message: &str) -> Vec<String> {
        let Some((_, list)) = message.split_once("expected") else {
            return Vec::new();
        };
        list.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    }

    fn sample(kind: &str) -> Value {
        match kind {
            "string" => json!("x"),
            "bool" => json!(false),
            "integer" => json!(0),
            other => panic!("unknown field type {other}"),
        }
    }

    #[test]
    fn every_command_variant_is_listed() {
        // serde names every variant when the tag is unknown.
        let (_, got) = parse_line(r#"{"cmd":"no-such-command"}"#);
        let message = got.expect_err("an unknown command parsed").message;
        let mut variants = expected_names(&message);
        let mut listed: Vec<String> = COMMAND_SPECS.iter().map(|c| c.name.to_string()).collect();
        assert!(variants.len() > 3, "{message}");
        variants.sort();
        listed.sort();
        assert_eq!(variants, listed, "COMMAND_SPECS and Command differ");
    }

    #[test]
    fn listed_fields_are_exactly_the_command_fields() {
        for spec in COMMAND_SPECS {
            let mut line = json!({ "cmd": spec.name });
            for f in spec.fields.iter().filter(|f| f.required) {
                line[f.name] = sample(f.kind);
            }
            // The required fields alone make a valid command.
            let (_, parsed) = parse_line(&line.to_string());
            assert!(parsed.is_ok(), "{line}: {parsed:?}");
            // Every optional field is accepted with a value of its type.
            for f in spec.fields.iter().filter(|f| !f.required) {
                let mut with = line.clone();
                with[f.name] = sample(f.kind);
                let (_, parsed) = parse_line(&with.to_string());
                assert!(parsed.is_ok(), "{with}: {parsed:?}");
            }
            // serde's list of known fields equals the listed ones.
            line["zz_not_a_field"] = json!(1);
            let (_, parsed) = parse_line(&line.to_string());
            let message = parsed.expect_err("an unknown field parsed").message;
            let mut known = expected_names(&message);
            let mut listed: Vec<String> = spec.fields.iter().map(|f| f.name.to_string()).collect();
            known.sort();
            listed.sort();
            assert_eq!(known, listed, "{}: {message}", spec.name);
        }
    }

    #[test]
    fn malformed_lines_are_named_errors() {
        let cases = [
            ("not json", "not a JSON object"),
            ("[1,2]", "must be a JSON object"),
            (r#"{"id":"a"}"#, "missing `cmd`"),
            (r#"{"cmd":"fly"}"#, "unknown variant `fly`"),
            (r#"{"cmd":"status","extra":1}"#, "unknown field `extra`"),
            (r#"{"cmd":"connect"}"#, "missing field `addr`"),
            (r#"{"cmd":"connect","addr":5}"#, "invalid type"),
            (r#"{"cmd":"status","id":{}}"#, "`id` must be"),
            // A game ID is checked where it enters, once.
            (r#"{"cmd":"install","game_id":"../x"}"#, "invalid game id"),
        ];
        for (line, want) in cases {
            let (_, got) = parse_line(line);
            let err = got.expect_err(line);
            assert_eq!(err.code, ErrorCode::BadRequest);
            assert!(err.message.contains(want), "{line}: {}", err.message);
        }
    }
}
