//! The local library: which game roots under the games dir are ready, and the
//! path rules that keep every file access inside a game root.

use crate::peer::wire::{FileDesc, GameAd};
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// The sentinel: a root is ready only when it exists, and it is written last.
pub const SENTINEL: &str = "version.ini";
/// Where installed files live inside a game root; never served.
pub const LOCAL_DIR: &str = "local";

/// One game root on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalGame {
    /// The sentinel's version, `None` while the root is not ready.
    pub version: Option<String>,
    pub installed: bool,
}

/// Scans `games_dir` (one folder per game ID). Cheap: reads directory entries
/// and the small sentinel files only, never game content.
pub fn scan(games_dir: &Path) -> Result<BTreeMap<String, LocalGame>> {
    let mut out = BTreeMap::new();
    let entries = match std::fs::read_dir(games_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("listing {}", games_dir.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", games_dir.display()))?;
        let Some(id) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        // Dot-folders are the peer's own scratch space, never games.
        if id.starts_with('.') || !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let root = entry.path();
        let version = match std::fs::read_to_string(root.join(SENTINEL)) {
            Ok(text) => Some(text.trim().to_string()),
            Err(_) => None,
        };
        let installed = root.join(LOCAL_DIR).is_dir();
        out.insert(id, LocalGame { version, installed });
    }
    Ok(out)
}

/// The advertisement for a scanned library: every ready root with its raw
/// sentinel version (receivers filter by their own catalog).
pub fn adverts(games: &BTreeMap<String, LocalGame>) -> Vec<GameAd> {
    games
        .iter()
        .filter_map(|(id, g)| {
            g.version.as_ref().map(|v| GameAd {
                game_id: id.clone(),
                version: v.clone(),
            })
        })
        .collect()
}

/// Checks a game ID names one folder directly under the games dir.
pub fn check_game_id(id: &str) -> Result<()> {
    if id.is_empty()
        || id.len() > 128
        || id.starts_with('.')
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        bail!("invalid game id {id:?}");
    }
    Ok(())
}

/// Turns a `/`-separated relative path from the wire into a path below a game
/// root. Refuses absolute paths, `..`, empty components and anything under
/// `local/`, so neither a request nor a descriptor can reach outside the root.
pub fn checked_rel_path(rel: &str) -> Result<PathBuf> {
    if rel.is_empty() || rel.len() > 4096 || rel.contains('\0') || rel.contains('\\') {
        bail!("invalid path {rel:?}");
    }
    let path = Path::new(rel);
    let mut out = PathBuf::new();
    for (i, comp) in path.components().enumerate() {
        match comp {
            Component::Normal(c) => {
                if i == 0 && c == LOCAL_DIR {
                    bail!("path {rel:?} is under local/, which is never served");
                }
                out.push(c);
            }
            _ => bail!("path {rel:?} escapes the game root"),
        }
    }
    if out.as_os_str().is_empty() || rel.split('/').any(str::is_empty) {
        bail!("invalid path {rel:?}");
    }
    Ok(out)
}

/// Resolves a relative path inside `root`, following symlinks, and refuses it
/// unless the real file is a regular file inside the real root.
pub fn resolve_inside(root: &Path, rel: &str) -> Result<PathBuf> {
    let rel_path = checked_rel_path(rel)?;
    let real_root = root
        .canonicalize()
        .with_context(|| format!("game root {} is missing", root.display()))?;
    let real = root
        .join(&rel_path)
        .canonicalize()
        .with_context(|| format!("{rel} does not exist"))?;
    if !real.starts_with(&real_root) {
        bail!("path {rel:?} resolves outside the game root");
    }
    if real.starts_with(real_root.join(LOCAL_DIR)) {
        bail!("path {rel:?} resolves under local/");
    }
    if !real.is_file() {
        bail!("path {rel:?} is not a regular file");
    }
    Ok(real)
}

/// Lists the regular files of a game root (not `local/`, not symlinks, not
/// dot-files the peer uses as scratch), sorted by path.
pub fn list_files(root: &Path) -> Result<Vec<FileDesc>> {
    let mut files = Vec::new();
    let walker = walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| !(e.depth() == 1 && e.file_name() == LOCAL_DIR));
    for entry in walker {
        let entry = entry.with_context(|| format!("walking {}", root.display()))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(root)
            .context("walked outside the root")?;
        let Some(rel) = rel.to_str() else { continue };
        if rel.split('/').any(|c| c.starts_with(".lanspread")) {
            continue;
        }
        let size = entry.metadata().context("reading file size")?.len();
        files.push(FileDesc {
            path: rel.to_string(),
            size,
        });
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn scan_marks_only_sentinel_roots_ready() -> Result<()> {
        let dir = tempfile::tempdir()?;
        fs::create_dir_all(dir.path().join("cnc4/local"))?;
        fs::write(dir.path().join("cnc4/version.ini"), "20170204\n")?;
        fs::create_dir_all(dir.path().join("ggoo"))?;
        fs::create_dir_all(dir.path().join(".scratch"))?;
        fs::write(dir.path().join("stray-file"), "")?;
        let games = scan(dir.path())?;
        assert_eq!(games.len(), 2);
        assert_eq!(games["cnc4"].version.as_deref(), Some("20170204"));
        assert!(games["cnc4"].installed);
        assert_eq!(games["ggoo"].version, None);
        let ads = adverts(&games);
        assert_eq!(ads.len(), 1);
        assert_eq!(ads[0].game_id, "cnc4");
        Ok(())
    }

    #[test]
    fn relative_paths_cannot_escape_or_reach_local() {
        assert!(checked_rel_path("data/a.bin").is_ok());
        for bad in [
            "../x",
            "a/../../x",
            "/etc/passwd",
            "local/x",
            "",
            "a//b",
            "./a",
            "a\\b",
        ] {
            assert!(checked_rel_path(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn symlinks_out_of_the_root_are_refused() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("game");
        fs::create_dir_all(root.join("local"))?;
        fs::write(dir.path().join("secret"), "s")?;
        fs::write(root.join("ok.bin"), "ok")?;
        fs::write(root.join("local/installed"), "i")?;
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("leak"))?;
        std::os::unix::fs::symlink(root.join("local/installed"), root.join("inner"))?;
        assert!(resolve_inside(&root, "ok.bin").is_ok());
        assert!(resolve_inside(&root, "leak").is_err());
        assert!(resolve_inside(&root, "inner").is_err());
        assert!(resolve_inside(&root, "missing").is_err());
        let listed: Vec<_> = list_files(&root)?.into_iter().map(|f| f.path).collect();
        assert_eq!(listed, vec!["ok.bin"]);
        Ok(())
    }

    #[test]
    fn game_ids_are_single_folder_names() {
        assert!(check_game_id("cnc4").is_ok());
        for bad in ["", "..", "a/b", ".hidden", "x\0"] {
            assert!(check_game_id(bad).is_err(), "{bad:?} accepted");
        }
    }
}
