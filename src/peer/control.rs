//! The control protocol: one JSON command per stdin line, one JSON line per
//! result, error or event on stdout (docs/PROTOCOL.md).

use crate::peer::{Node, Operation, download, install, mesh, play, stream_install};
use serde::Deserialize;
use serde_json::{Value, json};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

/// Longest control line accepted; longer input is answered with an error.
const MAX_LINE: usize = 1 << 20;

/// Serialises every stdout line through one writer so lines never interleave.
#[derive(Clone)]
pub struct Output {
    tx: mpsc::UnboundedSender<Option<String>>,
}

impl Output {
    pub fn new() -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<Option<String>>();
        let writer = tokio::task::spawn_blocking(move || {
            let stdout = std::io::stdout();
            while let Some(Some(line)) = rx.blocking_recv() {
                let mut lock = stdout.lock();
                // A closed stdout means our controller is gone; nothing to tell.
                if writeln!(lock, "{line}").and_then(|_| lock.flush()).is_err() {
                    break;
                }
            }
        });
        (Self { tx }, writer)
    }

    fn line(&self, value: Value) {
        let _ = self.tx.send(Some(value.to_string()));
    }

    pub fn event(&self, name: &str, data: Value) {
        self.line(json!({ "type": "event", "event": name, "data": data }));
    }

    pub fn result(&self, id: &Value, data: Value) {
        self.line(json!({ "type": "result", "id": id, "data": data }));
    }

    pub fn error(&self, id: &Value, code: &str, message: &str) {
        self.line(json!({ "type": "error", "id": id, "code": code, "error": message }));
    }

    /// Flushes what is queued and stops the writer.
    pub fn close(&self) {
        let _ = self.tx.send(None);
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
        game_id: String,
        #[serde(default)]
        install: bool,
    },
    Install {
        game_id: String,
    },
    StreamInstall {
        game_id: String,
    },
    Uninstall {
        game_id: String,
    },
    Play {
        game_id: String,
        username: String,
        language: String,
    },
    CancelDownload {
        game_id: String,
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
    pub code: &'static str,
    pub message: String,
}

impl CommandError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Parses one control line into its echoed `id` and the command.
pub fn parse_line(line: &str) -> (Value, Result<Command, CommandError>) {
    let bad = |m: String| CommandError::new("bad-request", m);
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

/// Reads commands until `shutdown` or the end of stdin.
pub async fn run(node: Arc<Node>) {
    let stdin = tokio::io::stdin();
    let mut reader = tokio::io::BufReader::new(stdin);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let read = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .await;
        match read {
            Ok(0) => {
                tracing::info!("stdin closed; shutting down");
                return;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!("reading stdin failed: {e}; shutting down");
                return;
            }
        }
        if buf.len() > MAX_LINE && !buf.ends_with(b"\n") {
            node.out.error(
                &Value::Null,
                "bad-request",
                "control line longer than 1 MiB",
            );
            // Skip the rest of the over-long line.
            let mut sink = Vec::new();
            let _ = reader.read_until(b'\n', &mut sink).await;
            continue;
        }
        let Ok(text) = std::str::from_utf8(&buf) else {
            node.out
                .error(&Value::Null, "bad-request", "control line is not UTF-8");
            continue;
        };
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let (id, parsed) = parse_line(text);
        let cmd = match parsed {
            Ok(cmd) => cmd,
            Err(e) => {
                tracing::warn!("rejected control line: {}", e.message);
                node.out.error(&id, e.code, &e.message);
                continue;
            }
        };
        if cmd == (Command::Shutdown {}) {
            node.out.result(&id, json!({ "shutting_down": true }));
            return;
        }
        let node = node.clone();
        // Commands run concurrently; answers carry the echoed id.
        tokio::spawn(async move {
            match execute(&node, cmd).await {
                Ok(data) => node.out.result(&id, data),
                Err(e) => node.out.error(&id, e.code, &e.message),
            }
        });
    }
}

use tokio::io::AsyncReadExt;

async fn execute(node: &Arc<Node>, cmd: Command) -> Result<Value, CommandError> {
    match cmd {
        Command::Status {} => Ok(json!({
            "peer_id": node.id,
            "addr": node.addr.to_string(),
            "games_dir": node.games_dir.display().to_string(),
            "chunk_size": node.chunk_size,
            "peers": crate::peer::lock(&node.mesh).len(),
            "active_operations": node.operations(),
            "active_outbound_transfers": node.outbound_transfers(),
        })),
        Command::Connect { addr } => {
            let info = mesh::connect(node, &addr).await?;
            Ok(json!({ "peer_id": info.peer_id, "addr": info.addr }))
        }
        Command::ListPeers {} => Ok(json!({ "peers": crate::peer::lock(&node.mesh).list() })),
        Command::ListGames {} => Ok(json!({ "games": mesh::list_games(node) })),
        Command::WaitPeers { count, timeout_ms } => {
            let deadline = Duration::from_millis(timeout_ms.unwrap_or(10_000));
            let wait = async {
                loop {
                    let n = crate::peer::lock(&node.mesh).len();
                    if n >= count {
                        return n;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            };
            match tokio::time::timeout(deadline, wait).await {
                Ok(n) => Ok(json!({ "peers": n })),
                Err(_) => Err(CommandError::new(
                    "timeout",
                    format!(
                        "{} of {count} peers after {} ms",
                        crate::peer::lock(&node.mesh).len(),
                        deadline.as_millis()
                    ),
                )),
            }
        }
        Command::Download { game_id, install } => {
            download::start(node, &game_id, install.then(install_after_download))?;
            Ok(json!({ "game_id": game_id, "started": true, "install": install }))
        }
        Command::Install { game_id } => {
            install::start(node, &game_id)?;
            Ok(json!({ "game_id": game_id, "started": true }))
        }
        Command::StreamInstall { game_id } => stream_install::start(node, &game_id),
        Command::Uninstall { game_id } => install::uninstall(node, &game_id),
        Command::Play {
            game_id,
            username,
            language,
        } => play::play(node, &game_id, &username, &language),
        Command::CancelDownload { game_id } => {
            download::cancel(node, &game_id)?;
            Ok(json!({ "game_id": game_id, "cancelling": true }))
        }
        Command::Shutdown {} => Ok(json!({ "shutting_down": true })),
        Command::Commands {} => Ok(json!({ "commands": COMMAND_SPECS })),
    }
}

/// `download { install = true }`: the install runs on the download's claim
/// once the download has finished.
fn install_after_download() -> download::FollowUp {
    download::FollowUp {
        operation: Operation::Installing,
        run: Box::new(|node, claim| {
            Box::pin(async move { install::run_claimed(&node, claim).await })
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_lines_parse_with_their_id() {
        let (id, cmd) = parse_line(r#"{"id":"x","cmd":"status"}"#);
        assert_eq!(id, json!("x"));
        assert_eq!(cmd, Ok(Command::Status {}));
        let (id, cmd) = parse_line(r#"{"id":7,"command":"download","game_id":"cnc4"}"#);
        assert_eq!(id, json!(7));
        assert_eq!(
            cmd,
            Ok(Command::Download {
                game_id: "cnc4".into(),
                install: false
            })
        );
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
        ];
        for (line, want) in cases {
            let (_, got) = parse_line(line);
            let err = got.expect_err(line);
            assert_eq!(err.code, "bad-request");
            assert!(err.message.contains(want), "{line}: {}", err.message);
        }
    }
}
