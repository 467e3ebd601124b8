//! The run folder: where one scenario run keeps everything it makes, laid
//! out as
//!
//! ```text
//! <run>/
//!   workspace/              files the scenario makes (games, catalogs, fixtures)
//!   game.db                 the default catalog (the built-in one)
//!   peers/<name>/state/     the peer's state dir (its identity, resume data)
//!   peers/<name>/stderr.log the peer's log, every incarnation appended
//!   peers/<name>/events.jsonl  its stdout lines, as they arrived
//!   peers/<name>/redirects.json  its `--redirects`, when it has any
//!   summary.json            the run's record (written at the end)
//! ```
//!
//! and whether the folder outlives the run.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The shared paths of a created run folder.
pub struct RunFolder {
    pub workspace: PathBuf,
    pub catalog_db: PathBuf,
}

/// Creates the run folder's shared layout and writes the default catalog.
pub fn create(run_dir: &Path) -> Result<RunFolder> {
    let workspace = run_dir.join("workspace");
    std::fs::create_dir_all(&workspace)
        .with_context(|| format!("creating {}", workspace.display()))?;
    let catalog_db = run_dir.join("game.db");
    crate::catalog::write_db(crate::catalog::BUILTIN_SOURCE, &catalog_db)
        .with_context(|| format!("writing the default catalog {}", catalog_db.display()))?;
    Ok(RunFolder {
        workspace,
        catalog_db,
    })
}

/// One peer's part of the run folder, `peers/<name>/`.
pub struct PeerFolder {
    pub state_dir: PathBuf,
    pub stderr_log: PathBuf,
    pub events_log: PathBuf,
    pub redirects: PathBuf,
}

impl PeerFolder {
    /// Creates `peers/<name>/state/` and names the peer's files there.
    pub fn create(run_dir: &Path, name: &str) -> Result<Self> {
        let dir = run_dir.join("peers").join(name);
        let state_dir = dir.join("state");
        std::fs::create_dir_all(&state_dir)
            .with_context(|| format!("creating {}", state_dir.display()))?;
        Ok(Self {
            state_dir,
            stderr_log: dir.join("stderr.log"),
            events_log: dir.join("events.jsonl"),
            redirects: dir.join("redirects.json"),
        })
    }
}

/// A fresh run folder under the temp dir, unique per scenario, time and
/// process.
pub fn default_location(scenario: &str) -> PathBuf {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    std::env::temp_dir()
        .join("lanspread-checker")
        .join(format!("{scenario}-{stamp}-{}", std::process::id()))
}

/// Whether the run folder outlives the run: a failed run's folder is its
/// evidence, a folder the user named (`--out`) is theirs, and `--keep`
/// keeps any.
pub fn outlives_run(passed: bool, named_by_user: bool, keep: bool) -> bool {
    !passed || named_by_user || keep
}

/// Removes the run folder unless it outlives the run (`outlives_run`).
pub fn tidy(run_dir: &Path, passed: bool, named_by_user: bool, keep: bool) {
    if !outlives_run(passed, named_by_user, keep) {
        // A folder left in the temp dir is no reason to fail a passed run.
        let _ = std::fs::remove_dir_all(run_dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_passed_run_in_a_folder_of_its_own_is_removed() -> Result<()> {
        assert!(!outlives_run(true, false, false));
        assert!(outlives_run(false, false, false));
        assert!(outlives_run(true, true, false));
        assert!(outlives_run(true, false, true));
        let dir = tempfile::tempdir()?;
        let run = dir.path().join("run");
        create(&run)?;
        PeerFolder::create(&run, "a")?;
        assert!(run.join("game.db").is_file() && run.join("peers/a/state").is_dir());
        tidy(&run, false, false, false);
        assert!(run.exists(), "a failed run's folder was removed");
        tidy(&run, true, false, false);
        assert!(!run.exists(), "a passed run's folder was kept");
        Ok(())
    }
}
