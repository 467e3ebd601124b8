//! The local library: which game roots are ready (scanned through the file
//! layer, `peer::files`). The path rules live in `protocol::layout`.

use crate::peer::files::Files;
use crate::protocol::wire::GameAd;
use anyhow::Result;
use std::collections::BTreeMap;

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
}
