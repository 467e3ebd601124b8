//! The scratch folder of an install: extraction goes to
//! `<root>/.lanspread-<kind>` beside `local/`, which becomes `local/` in one
//! rename once every byte is on disk, so a failed or interrupted install
//! never leaves a half-written `local/`, and a finished one survives a crash
//! right after `install-finished`.

use crate::peer::files::SCRATCH_PREFIX;
use anyhow::{Context, Result};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Where an install of kind `kind` (`install`, `stream-install`) extracts
/// before it becomes `local`.
pub fn path_for(local: &Path, kind: &str) -> Result<PathBuf> {
    let root = local
        .parent()
        .with_context(|| format!("{} has no parent folder", local.display()))?;
    Ok(root.join(format!("{SCRATCH_PREFIX}-{kind}")))
}

/// Makes a fresh, empty scratch folder at `dir`. A leftover of a peer killed
/// mid-install is never a valid install, so it goes first.
pub fn create(dir: &Path) -> Result<()> {
    remove_if_present(dir)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// Syncs everything below `scratch` to disk, renames it to `local` and syncs
/// the folder holding both, so the rename itself is durable too.
pub fn commit(scratch: &Path, local: &Path) -> Result<()> {
    sync_tree(scratch)?;
    std::fs::rename(scratch, local)
        .with_context(|| format!("moving {} to {}", scratch.display(), local.display()))?;
    if let Some(root) = local.parent() {
        sync_path(root)?;
    }
    Ok(())
}

pub fn remove_if_present(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", dir.display())),
    }
}

/// fsyncs every file and folder below `dir` (and `dir`), files first so a
/// folder's entries are durable before the folder is.
fn sync_tree(dir: &Path) -> Result<()> {
    for entry in walkdir::WalkDir::new(dir).contents_first(true) {
        let entry = entry.with_context(|| format!("walking {}", dir.display()))?;
        if entry.file_type().is_symlink() {
            continue;
        }
        sync_path(entry.path())?;
    }
    Ok(())
}

/// fsyncs one file or folder (opened read-only: enough for fsync on Linux).
fn sync_path(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_committed_scratch_folder_becomes_local_with_every_file() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let local = dir.path().join("game/local");
        std::fs::create_dir_all(dir.path().join("game"))?;
        let scratch = path_for(&local, "install")?;
        assert_eq!(scratch, dir.path().join("game/.lanspread-install"));
        // A leftover is replaced by an empty folder.
        std::fs::create_dir_all(scratch.join("old"))?;
        create(&scratch)?;
        assert_eq!(std::fs::read_dir(&scratch)?.count(), 0);
        std::fs::create_dir_all(scratch.join("bin/data"))?;
        std::fs::write(scratch.join("bin/data/a.pak"), "payload")?;
        std::fs::write(scratch.join("readme.txt"), "")?;
        commit(&scratch, &local)?;
        assert!(!scratch.exists());
        assert_eq!(
            std::fs::read_to_string(local.join("bin/data/a.pak"))?,
            "payload"
        );
        assert!(local.join("readme.txt").is_file());
        Ok(())
    }

    #[test]
    fn commit_refuses_an_existing_local_and_keeps_it() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let local = dir.path().join("local");
        std::fs::create_dir_all(local.join("keep"))?;
        std::fs::write(local.join("keep/x"), "mine")?;
        let scratch = path_for(&local, "install")?;
        create(&scratch)?;
        std::fs::write(scratch.join("y"), "new")?;
        assert!(commit(&scratch, &local).is_err());
        assert_eq!(std::fs::read_to_string(local.join("keep/x"))?, "mine");
        Ok(())
    }
}
