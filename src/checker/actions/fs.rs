//! File-system actions on the run workspace: `makeGame`.

use crate::checker::lab::Lab;
use crate::checker::outcome::{Failure, StepResult};
use crate::checker::steps::{
    FileSpec, FsAppendStep, FsCopyStep, FsCreateFileStep, FsMoveStep, FsPatchStep, FsPathStep,
    MakeGameStep,
};
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

/// Resolves a path written relative to the scenario file. It may reach the
/// scenario folder's parent (the project, with `fixtures/` and `redirects/`)
/// but nothing above it.
pub fn scenario_path(lab: &Lab, rel: &str) -> Result<PathBuf, Failure> {
    let dir = lab
        .scenario_dir
        .canonicalize()
        .unwrap_or_else(|_| lab.scenario_dir.clone());
    let (project, folder) = match (dir.parent(), dir.file_name()) {
        (Some(p), Some(f)) => (p.to_path_buf(), PathBuf::from(f)),
        _ => (dir.clone(), PathBuf::new()),
    };
    let joined = folder.join(rel);
    inside(&project, &joined.to_string_lossy()).map_err(|_| {
        Failure::invalid(format!(
            "{rel:?} leaves the project folder {}",
            project.display()
        ))
    })
}

/// The base folder of an fs path: the named peer's games dir, or the workspace.
pub fn base(lab: &mut Lab, peer: &Option<String>) -> Result<PathBuf, Failure> {
    match peer {
        Some(name) => Ok(crate::checker::actions::peer(lab, name)?.games_dir.clone()),
        None => Ok(lab.workspace.clone()),
    }
}

/// Resolves a scenario path against `base`. A path leaving it was refused
/// when the file loaded (`steps::check_inside`); the join still says so.
pub fn resolve(lab: &mut Lab, peer: &Option<String>, rel: &str) -> Result<PathBuf, Failure> {
    let base = base(lab, peer)?;
    inside(&base, rel).map_err(|e| Failure::invalid(format!("{e:#}")))
}

/// Whether an fs action works on files or folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Folder,
}

fn check_kind(path: &Path, kind: Kind, shown: &str) -> Result<(), Failure> {
    let meta = std::fs::symlink_metadata(path)
        .map_err(|_| Failure::expect(format!("{shown} exists"), "no such file or folder", &[]))?;
    match (kind, meta.is_dir()) {
        (Kind::File, true) => Err(Failure::invalid(format!(
            "{shown} is a folder; use the folder action"
        ))),
        (Kind::Folder, false) => Err(Failure::invalid(format!(
            "{shown} is a file; use the file action"
        ))),
        _ => Ok(()),
    }
}

fn io(e: impl Into<anyhow::Error>, what: String) -> Failure {
    Failure::harness(e.into().context(what), &[])
}

fn ensure_parent(path: &Path) -> Result<(), Failure> {
    match path.parent() {
        Some(parent) => std::fs::create_dir_all(parent)
            .map_err(|e| io(e, format!("creating {}", parent.display()))),
        None => Ok(()),
    }
}

pub fn create_file(lab: &mut Lab, s: &FsCreateFileStep) -> StepResult {
    let path = resolve(lab, &s.peer, &s.path)?;
    ensure_parent(&path)?;
    // `contents` with `size` was refused at load time.
    let result = match (&s.contents, s.size) {
        (_, Some(size)) => std::fs::File::create(&path).and_then(|f| f.set_len(size.0)),
        (contents, None) => std::fs::write(&path, contents.as_deref().unwrap_or("")),
    };
    result.map_err(|e| io(e, format!("creating {}", path.display())))
}

pub fn copy_file(lab: &mut Lab, s: &FsCopyStep) -> StepResult {
    let from = if s.from_scenario {
        scenario_path(lab, &s.from)?
    } else {
        resolve(lab, &s.peer, &s.from)?
    };
    check_kind(&from, Kind::File, &s.from)?;
    let to = resolve(lab, &s.peer, &s.to)?;
    ensure_parent(&to)?;
    std::fs::copy(&from, &to)
        .map(|_| ())
        .map_err(|e| io(e, format!("copying {} to {}", from.display(), to.display())))
}

pub fn rename(lab: &mut Lab, s: &FsMoveStep, kind: Kind) -> StepResult {
    let from = resolve(lab, &s.peer, &s.from)?;
    check_kind(&from, kind, &s.from)?;
    let to = resolve(lab, &s.peer, &s.to)?;
    if to.exists() {
        return Err(Failure::invalid(format!("{} already exists", s.to)));
    }
    ensure_parent(&to)?;
    std::fs::rename(&from, &to).map_err(|e| {
        io(
            e,
            format!("renaming {} to {}", from.display(), to.display()),
        )
    })
}

pub fn delete(lab: &mut Lab, s: &FsPathStep, kind: Kind) -> StepResult {
    let path = resolve(lab, &s.peer, &s.path)?;
    check_kind(&path, kind, &s.path)?;
    let result = match kind {
        Kind::File => std::fs::remove_file(&path),
        Kind::Folder => std::fs::remove_dir_all(&path),
    };
    result.map_err(|e| io(e, format!("deleting {}", path.display())))
}

pub fn create_folder(lab: &mut Lab, s: &FsPathStep) -> StepResult {
    let path = resolve(lab, &s.peer, &s.path)?;
    std::fs::create_dir_all(&path).map_err(|e| io(e, format!("creating {}", path.display())))
}

pub fn append(lab: &mut Lab, s: &FsAppendStep) -> StepResult {
    let path = resolve(lab, &s.peer, &s.path)?;
    check_kind(&path, Kind::File, &s.path)?;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(s.contents.as_bytes()))
        .map_err(|e| io(e, format!("appending to {}", path.display())))
}

pub fn patch(lab: &mut Lab, s: &FsPatchStep) -> StepResult {
    use std::os::unix::fs::FileExt;
    let path = resolve(lab, &s.peer, &s.path)?;
    check_kind(&path, Kind::File, &s.path)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| io(e, format!("opening {}", path.display())))?;
    let len = file
        .metadata()
        .map_err(|e| io(e, format!("reading {}", path.display())))?
        .len();
    // A patch never grows the file: it stands for damage in place.
    if s.offset.0.saturating_add(s.hex.bytes.len() as u64) > len {
        return Err(Failure::invalid(format!(
            "fsPatch: {} bytes at offset {} do not fit {} ({len} bytes)",
            s.hex.bytes.len(),
            s.offset.0,
            s.path
        )));
    }
    let mut new = s.hex.bytes.clone();
    if s.xor {
        let mut old = vec![0u8; new.len()];
        file.read_exact_at(&mut old, s.offset.0)
            .map_err(|e| io(e, format!("reading {}", path.display())))?;
        new.iter_mut().zip(&old).for_each(|(n, o)| *n ^= o);
    }
    file.write_all_at(&new, s.offset.0)
        .map_err(|e| io(e, format!("patching {}", path.display())))
}

pub fn make_game(lab: &mut Lab, s: &MakeGameStep) -> StepResult {
    let catalog =
        crate::catalog::Catalog::open(&lab.catalog_db).map_err(|e| Failure::harness(e, &[]))?;
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
    // `eti` and `files` never both name `<id>.eti` (refused at load time).
    let eti = s
        .eti
        .as_ref()
        .map(|spec| (format!("{}.eti", s.id), spec.clone()));
    for (rel, spec) in s
        .files
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .chain(eti)
    {
        let rel = rel.as_str();
        let spec = &spec;
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
    if let Some(members) = &spec.rar {
        let archive = crate::rar::build(
            &rar_entries(members),
            &crate::rar::Options {
                solid: spec.solid,
                claimed_method: spec.method.unwrap_or(0),
                ..Default::default()
            },
        )?;
        return Ok(std::fs::write(path, archive)?);
    }
    if let Some(text) = &spec.contents {
        return Ok(std::fs::write(path, text)?);
    }
    let size = spec.size.map(|s| s.0).unwrap_or(0);
    let file = std::fs::File::create(path)?;
    if spec.sparse {
        return Ok(file.set_len(size)?);
    }
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut rng = generator(rel, spec.seed);
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

/// Deterministic bytes: the same path and seed give the same file, so two
/// sources made from one spec agree and a different seed differs.
fn generator(rel: &str, seed: Option<u64>) -> rand::rngs::StdRng {
    let mut key = Sha256::new();
    key.update(rel.as_bytes());
    key.update(seed.unwrap_or(0).to_le_bytes());
    rand::rngs::StdRng::from_seed(key.finalize().into())
}

/// The entries of a `rar = {…}` spec: parent folders first, then each file.
/// Members were checked when the file loaded (`check_rar_member`): plain
/// `contents` or at most `MAX_RAR_MEMBER` generated bytes.
fn rar_entries(members: &std::collections::BTreeMap<String, FileSpec>) -> Vec<crate::rar::Entry> {
    let mut dirs = std::collections::BTreeSet::new();
    let mut files = Vec::new();
    for (rel, spec) in members {
        let mut parent = Path::new(rel).parent();
        while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            dirs.insert(p.to_string_lossy().into_owned());
            parent = p.parent();
        }
        let data = match (&spec.contents, spec.size) {
            (Some(text), _) => text.clone().into_bytes(),
            (None, Some(size)) => {
                let mut data = vec![0u8; size.0 as usize];
                generator(rel, spec.seed).fill_bytes(&mut data);
                data
            }
            (None, None) => Vec::new(),
        };
        files.push(crate::rar::Entry::file(rel, data));
    }
    dirs.iter()
        .map(|d| crate::rar::Entry::dir(d))
        .chain(files)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rar_specs_build_archives_unrar_can_read() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let mut members = std::collections::BTreeMap::new();
        members.insert(
            "bin/a.bin".to_string(),
            FileSpec {
                size: Some(crate::units::Size(5000)),
                seed: Some(3),
                ..FileSpec::default()
            },
        );
        members.insert(
            "readme.txt".to_string(),
            FileSpec {
                contents: Some("hi".into()),
                ..FileSpec::default()
            },
        );
        let spec = FileSpec {
            rar: Some(members),
            solid: true,
            ..FileSpec::default()
        };
        let path = dir.path().join("g.eti");
        write_file(&path, "g.eti", &spec)?;
        let names: Vec<String> = unrar::Archive::new(&path)
            .open_for_listing()?
            .filter_map(|e| e.ok().map(|e| e.filename.to_string_lossy().into_owned()))
            .collect();
        assert!(names.contains(&"bin/a.bin".to_string()), "{names:?}");
        assert!(names.contains(&"readme.txt".to_string()), "{names:?}");

        // `method`: the same entries, listed by unrar (header CRCs hold) as
        // compressed with that method (its DLL reports 0x30 + method).
        let marked = dir.path().join("m.eti");
        write_file(
            &marked,
            "g.eti",
            &FileSpec {
                method: Some(3),
                ..spec.clone()
            },
        )?;
        let methods: Vec<(String, u32)> = unrar::Archive::new(&marked)
            .open_for_listing()?
            .map(|e| e.map(|e| (e.filename.to_string_lossy().into_owned(), e.method)))
            .collect::<Result<_, _>>()?;
        let want = [("bin", 0x30), ("bin/a.bin", 0x33), ("readme.txt", 0x33)];
        let want: Vec<(String, u32)> = want.iter().map(|(n, m)| (n.to_string(), *m)).collect();
        assert_eq!(methods, want);
        assert!(
            write_file(
                &marked,
                "g.eti",
                &FileSpec {
                    method: Some(9),
                    ..spec
                }
            )
            .is_err()
        );
        Ok(())
    }

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
