//! `stream-install`: installs a game straight from its sources. The root's
//! `.eti` archives are downloaded in order and extracted as their bytes
//! arrive (`rar::stream`), so the archive is never stored: the game ends up
//! installed (`local/`) without a ready root, and this peer never offers it.
//! Extraction goes to a scratch folder renamed to `local/` at the very end;
//! any failure or cancel removes it, so nothing half-made is left behind.

use crate::peer::download::{self, StreamSink};
use crate::peer::install::Extracted;
use crate::peer::scratch;
use crate::peer::{Node, Operation};
use crate::protocol::control::CommandError;
use crate::protocol::control::{ErrorCode, Event};
use crate::rar::stream::StreamExtractor;
use anyhow::{Context, Result};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Checks the request, claims the game and streams it in the background.
pub fn start(node: &Arc<Node>, game_id: &str) -> Result<Value, CommandError> {
    let version = download::catalog_version(node, game_id)?;
    if node.files.installed(game_id) {
        return Err(CommandError::new(
            ErrorCode::AlreadyInstalled,
            format!("{game_id} is already installed (local/ exists)"),
        ));
    }
    match node.files.sentinel_version(game_id) {
        Some(v) if v == version => {
            return Err(CommandError::new(
                ErrorCode::AlreadyDownloaded,
                format!("{game_id} has a ready root here; use install"),
            ));
        }
        Some(v) => {
            return Err(CommandError::new(
                ErrorCode::StaleRoot,
                format!(
                    "{game_id} has a root at version {v} here (catalog: {version}); download updates it"
                ),
            ));
        }
        None => {}
    }
    let sources = download::catalog_sources(node, game_id, &version)?;
    let claim = node.begin_operation(game_id, Operation::StreamInstalling)?;
    let node = node.clone();
    let id = game_id.to_string();
    tokio::spawn(async move {
        node.out.event(
            Event::InstallBegin,
            json!({ "game_id": id, "stream": true }),
        );
        let outcome = tokio::select! {
            biased;
            r = stream(&node, &id, &version, sources) => Some(r),
            () = claim.cancelled() => None,
        };
        // The scratch folder is gone before anyone can claim the game again.
        let outcome = match outcome {
            Some(Ok(done)) => Ok(done),
            Some(Err(e)) => Err(Some(e)),
            None => Err(None),
        };
        if outcome.is_err()
            && let Err(e) = clean_up(&node, &id)
        {
            tracing::warn!(game_id = %id, "cleaning up after a failed stream-install: {e:#}");
        }
        drop(claim);
        if let Err(e) = node.refresh_library() {
            tracing::warn!("library rescan after stream-install failed: {e:#}");
        }
        match outcome {
            Ok(()) => {}
            Err(None) => {
                tracing::info!(game_id = %id, "stream-install cancelled");
                node.out
                    .event(Event::DownloadCancelled, json!({ "game_id": id }));
                node.out.event(
                    Event::InstallFailed,
                    json!({ "game_id": id, "error": "cancelled", "stream": true }),
                );
            }
            Err(Some(e)) => {
                let (transfer, e) = match e {
                    Failed::Transfer(e) => (true, e),
                    Failed::Install(e) => (false, e),
                };
                let error = format!("{e:#}");
                tracing::warn!(game_id = %id, "stream-install failed: {error}");
                if transfer {
                    node.out.event(
                        Event::DownloadFailed,
                        json!({ "game_id": id, "error": error }),
                    );
                }
                node.out.event(
                    Event::InstallFailed,
                    json!({ "game_id": id, "error": error, "stream": true }),
                );
            }
        }
    });
    Ok(json!({ "game_id": game_id, "stream": true }))
}

/// Why a stream-install failed: while the bytes flowed (the transfer, which
/// also gets `download-failed`; extraction errors stop it too), or around it.
enum Failed {
    Transfer(anyhow::Error),
    Install(anyhow::Error),
}

/// Streams and extracts into the scratch folder, then moves it to `local/`;
/// emits `download-finished` and `install-finished` on the way.
async fn stream(
    node: &Arc<Node>,
    game_id: &str,
    version: &str,
    sources: Vec<crate::peer::mesh::RemotePeer>,
) -> Result<(), Failed> {
    let scratch = scratch_dir(node, game_id).map_err(Failed::Install)?;
    tokio::task::block_in_place(|| scratch::create(&scratch)).map_err(Failed::Install)?;
    let mut sink = Extraction::new(scratch.clone());
    let stats = download::run(node, game_id, version, sources, Some(&mut sink))
        .await
        .map_err(Failed::Transfer)?;
    node.out.event(
        Event::DownloadFinished,
        json!({ "game_id": game_id, "version": version, "throughput": stats.to_json(), "stream": true }),
    );
    tokio::task::block_in_place(|| scratch::commit(&scratch, &node.files.local_dir(game_id)?))
        .map_err(Failed::Install)?;
    let x = sink.total;
    tracing::info!(%game_id, files = x.files, bytes = x.bytes, "stream-install finished");
    node.out.event(
        Event::InstallFinished,
        json!({
            "game_id": game_id, "archives": x.archives, "files": x.files,
            "bytes": x.bytes, "stream": true,
        }),
    );
    Ok(())
}

/// Where a stream-install extracts before the rename to `local/`.
fn scratch_dir(node: &Node, game_id: &str) -> Result<PathBuf> {
    scratch::path_for(&node.files.local_dir(game_id)?, "stream-install")
}

/// Removes the scratch folder, and the game root too when that is left
/// empty (it was made for this stream-install).
fn clean_up(node: &Node, game_id: &str) -> Result<()> {
    let scratch = scratch_dir(node, game_id)?;
    scratch::remove_if_present(&scratch)?;
    if let Some(root) = scratch.parent() {
        remove_if_empty(root);
    }
    Ok(())
}

fn remove_if_empty(dir: &Path) {
    let empty = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none());
    if empty && let Err(e) = std::fs::remove_dir(dir) {
        tracing::warn!("removing empty {}: {e}", dir.display());
    }
}

/// The stream's sink: one extractor per archive, all into one folder.
struct Extraction {
    dest: PathBuf,
    current: Option<StreamExtractor>,
    total: Extracted,
}

impl Extraction {
    fn new(dest: PathBuf) -> Self {
        Self {
            dest,
            current: None,
            total: Extracted::default(),
        }
    }
}

impl StreamSink for Extraction {
    fn begin(&mut self, _path: &str) -> Result<()> {
        self.current = Some(StreamExtractor::new(&self.dest));
        Ok(())
    }

    fn feed(&mut self, data: &[u8]) -> Result<()> {
        self.current
            .as_mut()
            .context("archive bytes before the archive began")?
            .feed(data)
    }

    fn end(&mut self) -> Result<()> {
        let x = self
            .current
            .take()
            .context("archive ended before it began")?
            .finish()?;
        self.total.archives += 1;
        self.total.files += x.files;
        self.total.bytes += x.bytes;
        Ok(())
    }
}
