//! `install` and `uninstall`: a ready root's `.eti` archives (RAR) are
//! extracted into `local/`. Extraction goes to a scratch folder next to
//! `local/` that is renamed into place only when every archive extracted,
//! so a failed install never leaves a half-written `local/`.

use crate::peer::files::Files;
use crate::peer::scratch;
use crate::peer::{Node, Operation, OperationClaim};
use crate::protocol::control::CommandError;
use crate::protocol::control::{ErrorCode, Event};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::peer::download::ARCHIVE_EXT;

/// What an install (or a stream-install) extracted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Extracted {
    pub archives: usize,
    pub files: u64,
    pub bytes: u64,
}

/// Checks that `game_id` can be installed: a ready root, not installed, with
/// at least one archive. Returns the archives' real paths.
fn preflight(node: &Node, game_id: &str) -> Result<Vec<PathBuf>, CommandError> {
    crate::protocol::layout::check_game_id(game_id)
        .map_err(|e| CommandError::new(ErrorCode::BadRequest, e.to_string()))?;
    if node.files.sentinel_version(game_id).is_none() {
        return Err(CommandError::new(
            ErrorCode::NotDownloaded,
            format!("{game_id} has no ready root here (no version.ini)"),
        ));
    }
    if node.files.installed(game_id) {
        return Err(CommandError::new(
            ErrorCode::AlreadyInstalled,
            format!("{game_id} is already installed (local/ exists)"),
        ));
    }
    let archives = archives(&node.files, game_id)
        .map_err(|e| CommandError::new(ErrorCode::NoArchive, format!("{e:#}")))?;
    if archives.is_empty() {
        return Err(CommandError::new(
            ErrorCode::NoArchive,
            format!("{game_id} has no {ARCHIVE_EXT} archive in its root"),
        ));
    }
    Ok(archives)
}

/// The root's top-level archives, in path order, through the file layer.
fn archives(files: &Files, game_id: &str) -> Result<Vec<PathBuf>> {
    crate::peer::download::root_archives(&files.list_files(game_id)?)
        .into_iter()
        .map(|f| files.game_file(game_id, &f.path))
        .collect()
}

/// The `install` command: claims the game and extracts in the background.
pub fn start(node: &Arc<Node>, game_id: &str) -> Result<(), CommandError> {
    preflight(node, game_id)?;
    let claim = node.begin_operation(game_id, Operation::Installing)?;
    let node = node.clone();
    tokio::spawn(async move { run_claimed(&node, claim).await });
    Ok(())
}

/// Installs the game of `claim` (held as `Installing`), emits the events
/// and drops the claim.
pub async fn run_claimed(node: &Arc<Node>, claim: OperationClaim) {
    let game_id = claim.game_id().to_string();
    let game_id = game_id.as_str();
    node.out
        .event(Event::InstallBegin, json!({ "game_id": game_id }));
    let outcome = match preflight(node, game_id) {
        Err(e) => Err(anyhow::anyhow!(e.message)),
        Ok(archives) => {
            let files = node.files.clone();
            let id = game_id.to_string();
            tokio::task::spawn_blocking(move || extract_into_local(&files, &id, &archives))
                .await
                .unwrap_or_else(|e| Err(anyhow::anyhow!("extraction task failed: {e}")))
        }
    };
    drop(claim);
    if let Err(e) = node.refresh_library() {
        tracing::warn!("library rescan after install failed: {e:#}");
    }
    match outcome {
        Ok(x) => {
            tracing::info!(%game_id, files = x.files, bytes = x.bytes, "install finished");
            node.out.event(
                Event::InstallFinished,
                json!({ "game_id": game_id, "archives": x.archives, "files": x.files, "bytes": x.bytes }),
            );
        }
        Err(e) => {
            tracing::warn!(%game_id, "install failed: {e:#}");
            node.out.event(
                Event::InstallFailed,
                json!({ "game_id": game_id, "error": format!("{e:#}") }),
            );
        }
    }
}

/// Extracts `archives` into a scratch folder beside `local/`, then syncs
/// it and renames it into place (`scratch::commit`). On any error the
/// scratch folder is removed.
pub fn extract_into_local(files: &Files, game_id: &str, archives: &[PathBuf]) -> Result<Extracted> {
    let local = files.local_dir(game_id)?;
    if local.exists() {
        bail!("{} already exists", local.display());
    }
    let scratch = scratch::path_for(&local, "install")?;
    scratch::create(&scratch)?;
    let extracted = archives
        .iter()
        .try_fold(
            Extracted {
                archives: 0,
                files: 0,
                bytes: 0,
            },
            |acc, archive| {
                let (files, bytes) = extract(archive, &scratch)
                    .with_context(|| format!("extracting {}", archive.display()))?;
                Ok(Extracted {
                    archives: acc.archives + 1,
                    files: acc.files + files,
                    bytes: acc.bytes + bytes,
                })
            },
        )
        .and_then(|x| scratch::commit(&scratch, &local).map(|()| x));
    if extracted.is_err()
        && let Err(e) = scratch::remove_if_present(&scratch)
    {
        tracing::warn!("cleaning up after a failed install: {e:#}");
    }
    extracted
}

/// Extracts one RAR archive below `dest`; returns (files, bytes).
fn extract(archive: &Path, dest: &Path) -> Result<(u64, u64)> {
    let mut open = unrar::Archive::new(archive)
        .open_for_processing()
        .context("opening the archive")?;
    let (mut files, mut bytes) = (0, 0);
    while let Some(entry) = open.read_header().context("reading an entry header")? {
        let header = entry.entry();
        let name = header.filename.display().to_string();
        if header.is_file() {
            files += 1;
            bytes += header.unpacked_size;
        }
        open = entry
            .extract_with_base(dest)
            .with_context(|| format!("extracting {name}"))?;
    }
    Ok((files, bytes))
}

/// The game's `local/` folder, or `not-installed` when there is none.
pub fn installed_local_dir(node: &Node, game_id: &str) -> Result<std::path::PathBuf, CommandError> {
    let local = node
        .files
        .local_dir(game_id)
        .map_err(|e| CommandError::new(ErrorCode::BadRequest, format!("{e:#}")))?;
    if !local.is_dir() {
        return Err(CommandError::new(
            ErrorCode::NotInstalled,
            format!("{game_id} is not installed (no local/)"),
        ));
    }
    Ok(local)
}

/// The `uninstall` command: removes `local/` and nothing else.
pub fn uninstall(node: &Arc<Node>, game_id: &str) -> Result<Value, CommandError> {
    crate::protocol::layout::check_game_id(game_id)
        .map_err(|e| CommandError::new(ErrorCode::BadRequest, e.to_string()))?;
    let claim = node.begin_operation(game_id, Operation::Uninstalling)?;
    // A whole installed game can take a while to remove: off the async workers.
    let result = tokio::task::block_in_place(|| {
        let local = installed_local_dir(node, game_id)?;
        std::fs::remove_dir_all(&local).map_err(|e| {
            CommandError::new(
                ErrorCode::UninstallFailed,
                format!("removing {}: {e}", local.display()),
            )
        })
    });
    drop(claim);
    if let Err(e) = node.refresh_library() {
        tracing::warn!("library rescan after uninstall failed: {e:#}");
    }
    result.map(|()| json!({ "game_id": game_id, "uninstalled": true }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rar::{Entry, Options, build};

    fn root_with(archive: &[u8]) -> Result<(tempfile::TempDir, Files, PathBuf)> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("g1"))?;
        std::fs::write(dir.path().join("g1/version.ini"), "20200101\n")?;
        let arc = dir.path().join("g1/g1.eti");
        std::fs::write(&arc, archive)?;
        let files = Files::plain(dir.path());
        Ok((dir, files, arc))
    }

    #[test]
    fn extracts_into_local_and_counts() -> Result<()> {
        let bytes = build(
            &[
                Entry::dir("bin"),
                Entry::file("bin/a.bin", vec![1u8; 300]),
                Entry::file("b.txt", "b"),
            ],
            &Options::default(),
        )?;
        let (dir, files, arc) = root_with(&bytes)?;
        assert_eq!(archives(&files, "g1")?, vec![arc.clone()]);
        let x = extract_into_local(&files, "g1", &[arc])?;
        assert_eq!((x.archives, x.files, x.bytes), (1, 2, 301));
        assert_eq!(
            std::fs::read(dir.path().join("g1/local/bin/a.bin"))?,
            vec![1u8; 300]
        );
        assert!(!dir.path().join("g1/.lanspread-install").exists());
        Ok(())
    }

    #[test]
    fn a_truncated_archive_leaves_no_local() -> Result<()> {
        let whole = build(
            &[Entry::file("a.bin", vec![9u8; 4000])],
            &Options::default(),
        )?;
        let (dir, files, arc) = root_with(&whole[..whole.len() / 2])?;
        assert!(extract_into_local(&files, "g1", &[arc]).is_err());
        assert!(!dir.path().join("g1/local").exists());
        assert!(!dir.path().join("g1/.lanspread-install").exists());
        Ok(())
    }
}
