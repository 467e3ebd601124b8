//! The control loop: reads one JSON command per stdin line (the messages are
//! `protocol::control`), runs it, and answers through `peer::output`.

use crate::peer::{Node, Operation, download, install, mesh, play, stream_install};
use crate::protocol::control::ErrorCode;
use crate::protocol::control::{COMMAND_SPECS, Command, CommandError, MAX_LINE, parse_line};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

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
                ErrorCode::BadRequest,
                "control line longer than 1 MiB",
            );
            // Skip the rest of the over-long line.
            let mut sink = Vec::new();
            let _ = reader.read_until(b'\n', &mut sink).await;
            continue;
        }
        let Ok(text) = std::str::from_utf8(&buf) else {
            node.out.error(
                &Value::Null,
                ErrorCode::BadRequest,
                "control line is not UTF-8",
            );
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
            "peers": crate::sync::lock(&node.mesh).len(),
            "active_operations": node.operations(),
            "active_outbound_transfers": node.outbound_transfers(),
        })),
        Command::Connect { addr } => {
            let info = mesh::connect(node, &addr).await?;
            Ok(json!({ "peer_id": info.peer_id, "addr": info.addr }))
        }
        Command::ListPeers {} => Ok(json!({ "peers": crate::sync::lock(&node.mesh).list() })),
        Command::ListGames {} => Ok(json!({ "games": mesh::list_games(node) })),
        Command::WaitPeers { count, timeout_ms } => {
            let deadline = Duration::from_millis(timeout_ms.unwrap_or(10_000));
            let wait = async {
                loop {
                    let n = crate::sync::lock(&node.mesh).len();
                    if n >= count {
                        return n;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            };
            match tokio::time::timeout(deadline, wait).await {
                Ok(n) => Ok(json!({ "peers": n })),
                Err(_) => Err(CommandError::new(
                    ErrorCode::Timeout,
                    format!(
                        "{} of {count} peers after {} ms",
                        crate::sync::lock(&node.mesh).len(),
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
