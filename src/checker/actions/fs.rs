//! File-system actions on the run workspace: `makeGame`.

use crate::checker::lab::Lab;
use crate::checker::outcome::{Failure, StepResult};
use crate::checker::steps::{FileSpec, MakeGameStep};
use anyhow::{Context, Result, bail};
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Component, Path, PathBuf};

/// Joins a scenario-supplied relative path to `base`, refusing anything that
/// would leave it (absolute paths, `..` above the base).
pub fn inside(base: &Path, rel: &str) -> Result<PathBuf> {
    let mut out = base.to_path_buf();
    let mut depth = 0usize;
    for comp in Path::new(rel).components() {
        match comp {
            Component::Normal(c) => {
                out.push(c);
                depth += 1;
            }
            Component::CurDir => {}
            Component::ParentDir if depth > 0 => {
                out.pop();
                depth -= 1;
            }
            _ => bail!("path {rel:?} leaves {}", base.display()),
        }
    }
    Ok(out)
}

pub fn make_game(lab: &mut Lab, s: &MakeGameStep) -> StepResult {
    let catalog = crate::peer::catalog::Catalog::open(&lab.catalog_db)
        .map_err(|e| Failure::harness(e, &[]))?;
    let version = match (&s.version, catalog.version(&s.id)) {
        (Some(v), _) => v.clone(),
        (None, Some(v)) => v.to_string(),
        (None, None) => {
            return Err(Failure::invalid(format!(
                "game {} is not in the catalog; give `version`",
                s.id
            )));
        }
    };
    let root = inside(&lab.workspace, &s.dir)
        .and_then(|d| inside(&d, &s.id))
        .map_err(|e| Failure::invalid(format!("{e:#}")))?;
    build_root(&root, s, &version).map_err(|e| Failure::harness(e, &[]))
}

fn build_root(root: &Path, s: &MakeGameStep, version: &str) -> Result<()> {
    std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    for (rel, spec) in &s.files {
        let path = inside(root, rel)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        write_file(&path, rel, spec).with_context(|| format!("writing {}", path.display()))?;
    }
    if s.sentinel {
        std::fs::write(root.join("version.ini"), version)?;
    }
    Ok(())
}

fn write_file(path: &Path, rel: &str, spec: &FileSpec) -> Result<()> {
    if let Some(text) = &spec.contents {
        return Ok(std::fs::write(path, text)?);
    }
    let size = spec.size.map(|s| s.0).unwrap_or(0);
    let file = std::fs::File::create(path)?;
    if spec.sparse {
        return Ok(file.set_len(size)?);
    }
    // Deterministic bytes: the same path and seed give the same file, so
    // two sources made from one spec agree and a different seed differs.
    let mut key = Sha256::new();
    key.update(rel.as_bytes());
    key.update(spec.seed.unwrap_or(0).to_le_bytes());
    let mut rng = rand::rngs::StdRng::from_seed(key.finalize().into());
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill_bytes(&mut buf[..n]);
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_their_base() -> Result<()> {
        let base = Path::new("/run/ws");
        assert_eq!(inside(base, "a/b")?, PathBuf::from("/run/ws/a/b"));
        assert_eq!(inside(base, "a/../b")?, PathBuf::from("/run/ws/b"));
        assert!(inside(base, "../x").is_err());
        assert!(inside(base, "a/../../x").is_err());
        assert!(inside(base, "/etc").is_err());
        Ok(())
    }

    #[test]
    fn generated_files_are_deterministic_per_path_and_seed() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let spec = |seed| FileSpec {
            size: Some(crate::units::Size(3000)),
            seed,
            ..FileSpec::default()
        };
        write_file(&dir.path().join("a"), "x.bin", &spec(None))?;
        write_file(&dir.path().join("b"), "x.bin", &spec(None))?;
        write_file(&dir.path().join("c"), "x.bin", &spec(Some(1)))?;
        let read = |n| std::fs::read(dir.path().join(n));
        assert_eq!(read("a")?, read("b")?);
        assert_ne!(read("a")?, read("c")?);
        assert_eq!(read("a")?.len(), 3000);
        Ok(())
    }
}
