//! The game-folder layout both halves rely on: a game root is
//! `<games-dir>/<game_id>/`, ready only when its `version.ini` sentinel
//! exists, with installed files under `local/` (never served). Also the
//! rules that keep a game ID one folder name and a wire path inside its root.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Component, Path, PathBuf};

/// The sentinel: a root is ready only when it exists, and it is written last.
pub const SENTINEL: &str = "version.ini";
/// Where installed files live inside a game root; never served.
pub const LOCAL_DIR: &str = "local";
/// The catalog's name in the peer's virtual layout (`--redirects` keys).
pub const CATALOG: &str = "game.db";

/// The first-play marker, in `<state-dir>/games/<id>/`: `play` applied the
/// launch settings once. The one side effect of `play` outside the games
/// folder (a fuzzer may allow it: `fuzzCommand{ allow = … }`).
pub const FIRST_PLAY_MARKER: &str = "launch_settings_applied";

/// Where the first-play marker of `game_id` lives under a state dir.
pub fn first_play_marker(state_dir: &Path, game_id: &str) -> PathBuf {
    state_dir
        .join("games")
        .join(game_id)
        .join(FIRST_PLAY_MARKER)
}

/// A game ID that names exactly one folder directly under the games dir.
/// Checked once, where it enters (a control command, a wire frame, a
/// catalog row), so code holding one never checks it again.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GameId(String);

impl GameId {
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        check_game_id(&id)?;
        Ok(Self(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for GameId {
    type Error = String;
    fn try_from(id: String) -> Result<Self, String> {
        GameId::new(id).map_err(|e| e.to_string())
    }
}

impl From<GameId> for String {
    fn from(id: GameId) -> String {
        id.0
    }
}

impl AsRef<str> for GameId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<Path> for GameId {
    fn as_ref(&self) -> &Path {
        Path::new(&self.0)
    }
}

impl std::ops::Deref for GameId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GameId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
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

    #[test]
    fn a_game_id_is_checked_where_it_is_made() {
        assert_eq!(
            GameId::new("cnc4").map(|g| g.to_string()).ok(),
            Some("cnc4".into())
        );
        assert!(GameId::new("../x").is_err());
        let parsed: Result<GameId, _> = serde_json::from_str("\"a/b\"");
        assert!(parsed.is_err());
        let parsed: Result<GameId, _> = serde_json::from_str("\"ggoo\"");
        assert_eq!(parsed.ok().as_deref(), Some("ggoo"));
    }
}
