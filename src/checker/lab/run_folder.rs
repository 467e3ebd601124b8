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
//!   .lanspread-run          the marker saying the checker made this folder
//! ```
//!
//! and whether the folder outlives the run. A reused run folder (`--out`)
//! is emptied of what an earlier run left, so a rerun sees what a first
//! run sees (no games, no peer identities, no event logs); a non-empty
//! folder without the marker is the user's and is refused, not emptied.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The shared paths of a created run folder.
pub struct RunFolder {
    pub workspace: PathBuf,
    pub catalog_db: PathBuf,
}

/// The file that marks a folder as a run folder the checker may empty.
pub const MARKER: &str = ".lanspread-run";

/// What a run folder holds, and so what reusing one removes.
const OWNED: &[&str] = &["workspace", "game.db", "peers", "summary.json"];

/// Creates the run folder's shared layout and writes the default catalog,
/// after emptying what an earlier run left there (see the module doc).
pub fn create(run_dir: &Path) -> Result<RunFolder> {
    clear_earlier_run(run_dir)?;
    std::fs::create_dir_all(run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    std::fs::write(
        run_dir.join(MARKER),
        "made by lanspread-checker; emptied by its next run here\n",
    )
    .with_context(|| format!("marking {} as a run folder", run_dir.display()))?;
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

/// Removes an earlier run's entries from `run_dir`; refuses a non-empty
/// folder the checker did not mark, and leaves entries it does not own.
fn clear_earlier_run(run_dir: &Path) -> Result<()> {
    let mut entries = match std::fs::read_dir(run_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", run_dir.display())),
    };
    if !run_dir.join(MARKER).is_file() {
        if entries.next().is_some() {
            anyhow::bail!(
                "{} is not empty and is not a run folder (no {MARKER}); \
                 name an empty or new folder, or an earlier run's",
                run_dir.display()
            );
        }
        return Ok(());
    }
    for name in OWNED {
        let path = run_dir.join(name);
        let gone = if path.is_dir() && !path.is_symlink() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match gone {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("removing the earlier run's {}", path.display()));
            }
        }
    }
    Ok(())
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

    #[test]
    fn a_reused_run_folder_starts_empty() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let run = dir.path().join("run");
        create(&run)?;
        let peer = PeerFolder::create(&run, "a")?;
        std::fs::write(&peer.events_log, "{}\n")?;
        std::fs::write(peer.state_dir.join("identity"), "key")?;
        std::fs::create_dir_all(run.join("workspace/g/cnc4"))?;
        std::fs::write(run.join("notes.txt"), "mine")?;
        create(&run)?;
        assert!(
            !run.join("peers").exists(),
            "an earlier peer's state carried over"
        );
        assert!(
            !run.join("workspace/g").exists(),
            "an earlier game carried over"
        );
        assert!(run.join("game.db").is_file() && run.join(MARKER).is_file());
        assert!(
            run.join("notes.txt").is_file(),
            "a file the checker does not own was removed"
        );
        Ok(())
    }

    #[test]
    fn a_folder_that_is_no_run_folder_is_refused_and_kept() -> Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("thesis.tex"), "years of work")?;
        let e = match create(dir.path()) {
            Ok(_) => anyhow::bail!("a user's folder was taken as a run folder"),
            Err(e) => format!("{e:#}"),
        };
        assert!(e.contains("not a run folder"), "{e}");
        assert!(dir.path().join("thesis.tex").is_file());
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty)?;
        create(&empty)?;
        assert!(empty.join(MARKER).is_file());
        Ok(())
    }
}
