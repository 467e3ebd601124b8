//! SHA-256 manifests of a game folder, used by the checker to prove that two
//! game roots hold the same bytes.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// One regular file of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub size: u64,
    pub sha256: String,
}

/// Relative path (always `/`-separated) → entry.
pub type Manifest = BTreeMap<String, Entry>;

/// Hashes every regular file below `root`. Top-level folders named in
/// `skip_top` (e.g. `local`, the installed copy) are left out.
pub fn build(root: &Path, skip_top: &[&str]) -> Result<Manifest> {
    let mut out = Manifest::new();
    let walker = walkdir::WalkDir::new(root).sort_by_file_name().into_iter();
    let walker = walker.filter_entry(|e| {
        !(e.depth() == 1 && e.file_type().is_dir() && skip_top.iter().any(|s| e.file_name() == *s))
    });
    for entry in walker {
        let entry = entry.with_context(|| format!("walking {}", root.display()))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(root)
            .context("walked outside the root")?
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let (size, sha256) = hash_file(entry.path())?;
        out.insert(rel, Entry { size, sha256 });
    }
    Ok(out)
}

/// Size and hex SHA-256 of one file, streamed (never the whole file in memory).
pub fn hash_file(path: &Path) -> Result<(u64, String)> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// How two manifests differ; empty when they are equal.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// In the expected manifest only.
    pub missing: Vec<String>,
    /// In the actual manifest only.
    pub extra: Vec<String>,
    /// In both, with different size or content.
    pub differing: Vec<String>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty() && self.differing.is_empty()
    }
}

impl std::fmt::Display for Diff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        for (label, list) in [
            ("missing", &self.missing),
            ("extra", &self.extra),
            ("differing", &self.differing),
        ] {
            if !list.is_empty() {
                parts.push(format!("{label}: {}", list.join(", ")));
            }
        }
        f.write_str(&parts.join("; "))
    }
}

/// Compares `actual` against `expected`.
pub fn diff(expected: &Manifest, actual: &Manifest) -> Diff {
    let mut d = Diff::default();
    for (path, want) in expected {
        match actual.get(path) {
            None => d.missing.push(path.clone()),
            Some(got) if got != want => d.differing.push(path.clone()),
            Some(_) => {}
        }
    }
    d.extra = actual
        .keys()
        .filter(|p| !expected.contains_key(*p))
        .cloned()
        .collect();
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn manifest_reports_missing_extra_and_differing_separately() -> Result<()> {
        let a = tempfile::tempdir()?;
        let b = tempfile::tempdir()?;
        fs::create_dir_all(a.path().join("sub"))?;
        fs::create_dir_all(b.path().join("sub"))?;
        fs::create_dir_all(a.path().join("local"))?;
        fs::write(a.path().join("same.txt"), "x")?;
        fs::write(b.path().join("same.txt"), "x")?;
        fs::write(a.path().join("sub/changed.bin"), "one")?;
        fs::write(b.path().join("sub/changed.bin"), "two")?;
        fs::write(a.path().join("only-a"), "")?;
        fs::write(b.path().join("only-b"), "")?;
        fs::write(a.path().join("local/installed.txt"), "ignored")?;
        let ma = build(a.path(), &["local"])?;
        let mb = build(b.path(), &["local"])?;
        let d = diff(&ma, &mb);
        assert_eq!(d.missing, vec!["only-a"]);
        assert_eq!(d.extra, vec!["only-b"]);
        assert_eq!(d.differing, vec!["sub/changed.bin"]);
        assert!(!ma.contains_key("local/installed.txt"));
        assert!(diff(&ma, &ma).is_empty());
        Ok(())
    }
}
