//! The peer's identity: a key pair and self-signed certificate created once
//! and kept in the state dir. The peer ID is the certificate's hash
//! (`protocol::transport::peer_id_of`), so a restarted peer is recognised
//! as the same peer and no other process can claim its ID.

use crate::protocol::transport::Identity;
use anyhow::{Context, Result, bail};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

const CERT_FILE: &str = "peer_cert.der";
const KEY_FILE: &str = "peer_key.der";

/// Reads the identity from `state_dir`, creating it on first start.
pub fn load_or_create(state_dir: &Path) -> Result<Identity> {
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("creating state dir {}", state_dir.display()))?;
    let cert_path = state_dir.join(CERT_FILE);
    let key_path = state_dir.join(KEY_FILE);
    // The certificate is renamed into place last, so a crash during creation
    // leaves no certificate: nothing was ever proven with it, start over.
    let cert = match std::fs::read(&cert_path) {
        Ok(cert) => cert,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return create(state_dir),
        Err(e) => return Err(e).with_context(|| format!("reading {}", cert_path.display())),
    };
    let key = match std::fs::read(&key_path) {
        Ok(key) => key,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "{} exists but {} does not: the peer cannot prove its ID; remove both to \
             create a new identity",
            cert_path.display(),
            key_path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("reading {}", key_path.display())),
    };
    Identity::from_der(cert, key).with_context(|| {
        format!(
            "{} and {} do not hold a peer identity",
            cert_path.display(),
            key_path.display()
        )
    })
}

fn create(state_dir: &Path) -> Result<Identity> {
    let identity = Identity::generate()?;
    write_new(state_dir, KEY_FILE, identity.key_der())?;
    write_new(state_dir, CERT_FILE, identity.cert_der())?;
    Ok(identity)
}

/// Write-then-rename, readable by the owner only (the key is a secret).
fn write_new(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_survives_restart() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let first = load_or_create(dir.path())?;
        let second = load_or_create(dir.path())?;
        assert_eq!(first.id, second.id);
        assert_eq!(first.id.len(), 32);
        let other = tempfile::tempdir()?;
        assert_ne!(first.id, load_or_create(other.path())?.id);
        Ok(())
    }

    #[test]
    fn garbage_identity_files_are_an_error() -> Result<()> {
        let dir = tempfile::tempdir()?;
        load_or_create(dir.path())?;
        std::fs::write(dir.path().join(KEY_FILE), "not a key")?;
        assert!(load_or_create(dir.path()).is_err());
        std::fs::remove_file(dir.path().join(KEY_FILE))?;
        let e = load_or_create(dir.path()).err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("cannot prove")));
        Ok(())
    }

    #[test]
    fn a_half_created_identity_starts_over() -> Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join(KEY_FILE), "left by a crash")?;
        let id = load_or_create(dir.path())?;
        assert_eq!(load_or_create(dir.path())?.id, id.id);
        Ok(())
    }
}
