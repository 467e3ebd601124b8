//! The local library: which game roots are ready (scanned through the file
//! layer, `peer::files`), and the path rules that keep every request inside
//! its virtual game root.

use crate::peer::files::Files;
use crate::peer::wire::GameAd;
use anyhow::{Result, bail};
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

/// Scans the games dir through the file layer (one folder per game ID, plus
/// roots that redirects bring in). Cheap: reads directory entries and the
/// small sentinel files only, never game content.
pub fn scan(files: &Files) -> Result<BTreeMap<String, LocalGame>> {
    let mut out = BTreeMap::new();
    for id in files.game_ids()? {
        let version = files.sentinel_version(&id);
        let installed = files.installed(&id);
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
        let games = scan(&Files::plain(dir.path()))?;
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
    fn game_ids_are_single_folder_names() {
        assert!(check_game_id("cnc4").is_ok());
        for bad in ["", "..", "a/b", ".hidden", "x\0"] {
            assert!(check_game_id(bad).is_err(), "{bad:?} accepted");
        }
    }
}
