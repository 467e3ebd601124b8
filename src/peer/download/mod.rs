//! The download engine: file lists from catalog-version peers only, a
//! file-size agreement check, chunks fetched in parallel from every eligible
//! source (balanced round-robin, failed chunks retried on survivors), bytes
//! written at their offsets as they arrive, and `version.ini` committed last.
//!
//! - `mod.rs` (here): the `download` and `cancel-download` commands and the
//!   checks other commands share (`catalog_version`, `catalog_sources`);
//! - `plan`: the size agreement among sources and the chunk plan;
//! - `schedule`: which chunk comes from which source, when — a pure state
//!   machine with the policy's unit tests;
//! - `run`: the async driver that does what the schedule asks;
//! - `fetch`: the I/O of one chunk, file lists, connections, write buffers;
//! - `target_file`: where the bytes land, and the commit.

use crate::protocol::control::{ErrorCode, Event};
mod batch;
mod fetch;
mod plan;
mod run;
mod schedule;
pub mod target_file;

pub use plan::{ARCHIVE_EXT, root_archives};
pub use run::{StreamSink, Throughput, run};

use crate::peer::mesh::RemotePeer;
use crate::peer::{Node, Operation, OperationClaim, lock};
use crate::protocol::control::CommandError;
use crate::protocol::layout;
use serde_json::json;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// An operation that follows a successful download on the download's claim,
/// so no other request can claim the game in between (download → install).
pub struct FollowUp {
    /// What the claim is switched to before the library rescan, so the game
    /// stays busy (not advertised) until the follow-up is done.
    pub operation: Operation,
    /// Runs once `download-finished` is out; it owns the claim from then on.
    pub run: Box<dyn FnOnce(Arc<Node>, OperationClaim) -> BoxedTask + Send>,
}

pub type BoxedTask = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Validates a download request and starts it in the background; a
/// `then` runs after a successful download (see `FollowUp`).
pub fn start(node: &Arc<Node>, game_id: &str, then: Option<FollowUp>) -> Result<(), CommandError> {
    let version = catalog_version(node, game_id)?;
    let local = node.library();
    if local.get(game_id).and_then(|g| g.version.as_deref()) == Some(version.as_str()) {
        return Err(CommandError::new(
            ErrorCode::AlreadyDownloaded,
            format!("{game_id} is already downloaded at catalog version {version}"),
        ));
    }
    let sources = catalog_sources(node, game_id, &version)?;
    let claim = node.begin_operation(game_id, Operation::Downloading)?;
    let node = node.clone();
    let game_id = game_id.to_string();
    tokio::spawn(async move {
        // Dropping `run` on cancel drops its chunk tasks (a JoinSet aborts
        // them), which resets their streams; the sentinel is renamed only at
        // the very end of `run`, so a cancelled download commits nothing.
        let outcome = tokio::select! {
            biased;
            r = run(&node, &game_id, &version, sources, None) => Some(r),
            () = claim.cancelled() => None,
        };
        if !matches!(outcome, Some(Ok(_)))
            && let Err(e) = target_file::discard_sentinel_part(&node.files, &game_id)
        {
            tracing::warn!(%game_id, "{e:#}");
        }
        // A follow-up keeps the claim (no gap); otherwise the game is free
        // before the rescan advertises it again.
        let follow_up = match then {
            Some(then) if matches!(outcome, Some(Ok(_))) => {
                claim.switch(then.operation);
                Some((claim, then.run))
            }
            _ => {
                drop(claim);
                None
            }
        };
        if let Err(e) = node.refresh_library() {
            tracing::warn!("library rescan after download failed: {e:#}");
        }
        match outcome {
            None => {
                tracing::info!(%game_id, "download cancelled");
                node.out
                    .event(Event::DownloadCancelled, json!({ "game_id": game_id }));
            }
            Some(Ok(stats)) => {
                tracing::info!(%game_id, bytes = stats.bytes, ms = stats.duration_ms, "download finished");
                node.out.event(
                    Event::DownloadFinished,
                    json!({ "game_id": game_id, "version": version, "throughput": stats.to_json() }),
                );
                if let Some((claim, follow_up)) = follow_up {
                    follow_up(node.clone(), claim).await;
                }
            }
            Some(Err(e)) => {
                tracing::warn!(%game_id, "download failed: {e:#}");
                node.out.event(
                    Event::DownloadFailed,
                    json!({ "game_id": game_id, "error": format!("{e:#}") }),
                );
            }
        }
    });
    Ok(())
}

/// The catalog version of a valid game ID (`bad-request`, `unknown-game`).
pub fn catalog_version(node: &Node, game_id: &str) -> Result<String, CommandError> {
    layout::check_game_id(game_id)
        .map_err(|e| CommandError::new(ErrorCode::BadRequest, e.to_string()))?;
    node.catalog
        .version(game_id)
        .map(str::to_string)
        .ok_or_else(|| {
            CommandError::new(
                ErrorCode::UnknownGame,
                format!("{game_id} is not in this peer's catalog"),
            )
        })
}

/// The connected peers that offer `game_id` at the catalog `version`
/// (`no-source` when none does).
pub fn catalog_sources(
    node: &Node,
    game_id: &str,
    version: &str,
) -> Result<Vec<RemotePeer>, CommandError> {
    let sources = lock(&node.mesh).sources(game_id, version);
    if sources.is_empty() {
        return Err(CommandError::new(
            ErrorCode::NoSource,
            format!("no connected peer offers {game_id} at catalog version {version}"),
        ));
    }
    Ok(sources)
}

/// Stops a running download or stream-install of `game_id` (see `start`).
pub fn cancel(node: &Node, game_id: &str) -> Result<(), CommandError> {
    layout::check_game_id(game_id)
        .map_err(|e| CommandError::new(ErrorCode::BadRequest, e.to_string()))?;
    if node.cancel_operation(game_id, Operation::Downloading)
        || node.cancel_operation(game_id, Operation::StreamInstalling)
    {
        return Ok(());
    }
    Err(CommandError::new(
        ErrorCode::NotDownloading,
        format!("no download of {game_id} is running"),
    ))
}
