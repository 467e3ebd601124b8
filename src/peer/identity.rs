//! The peer's identity: a random ID created once and kept in the state dir,
//! so a restarted peer is recognised as the same peer.

use anyhow::{Context, Result, bail};
use rand::Rng;
use std::path::Path;

const ID_FILE: &str = "peer_id";

/// Reads the peer ID from `state_dir`, creating it on first start.
pub fn load_or_create(state_dir: &Path) -> Result<String> {
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("creating state dir {}", state_dir.display()))?;
    let path = state_dir.join(ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim().to_string();
            if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!("{} does not hold a peer id (32 hex digits)", path.display());
            }
            Ok(id)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let bytes: [u8; 16] = rand::rng().random();
            let id = hex::encode(bytes);
            // Write-then-rename so a crash never leaves a half-written identity.
            let tmp = state_dir.join(format!("{ID_FILE}.tmp"));
            std::fs::write(&tmp, &id).with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
            Ok(id)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_survives_restart() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let first = load_or_create(dir.path())?;
        let second = load_or_create(dir.path())?;
        assert_eq!(first, second);
        assert_eq!(first.len(), 32);
        let other = tempfile::tempdir()?;
        assert_ne!(first, load_or_create(other.path())?);
        Ok(())
    }

    #[test]
    fn garbage_id_file_is_an_error() -> Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join(ID_FILE), "not an id")?;
        assert!(load_or_create(dir.path()).is_err());
        Ok(())
    }
}
