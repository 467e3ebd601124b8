//! The peer's file layer. Every file the peer reads or writes is named by its
//! path in the *virtual layout* (`games/<id>/…` under the games dir,
//! `game.db` for the catalog) and mapped to a real path here, through the
//! `--redirects` table (see `crate::redirect`). The serving gates live here
//! too, because "inside the game root" means inside the root the scenario
//! redirected to, not inside the games dir.

use crate::protocol::layout::{LOCAL_DIR, SENTINEL, check_game_id, checked_rel_path};
use crate::protocol::wire::FileDesc;
use crate::redirect::{Redirects, collapse};
use anyhow::{Context, Result, bail};
use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Virtual name of the games dir.
const GAMES: &str = "games";
/// Virtual name of the catalog.
use crate::protocol::layout::CATALOG;
/// Prefix of the peer's own scratch files; never listed or served.
pub const SCRATCH_PREFIX: &str = ".lanspread";

#[derive(Debug, Clone)]
pub struct Files {
    games_dir: PathBuf,
    /// `--catalog`; `None` means the compiled-in catalog (unless redirected).
    catalog: Option<PathBuf>,
    redirects: Redirects,
}

impl Files {
    pub fn new(games_dir: PathBuf, catalog: Option<PathBuf>, redirects: Redirects) -> Self {
        Self {
            games_dir,
            catalog,
            redirects,
        }
    }

    /// A layer without redirects or catalog file.
    pub fn plain(games_dir: &Path) -> Self {
        Self::new(games_dir.to_path_buf(), None, Redirects::new())
    }

    /// Reads a `--redirects` file.
    pub fn load_redirects(path: &Path) -> Result<Redirects> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading redirect file {}", path.display()))?;
        Redirects::from_json(&text).with_context(|| format!("redirect file {}", path.display()))
    }

    pub fn redirects(&self) -> &Redirects {
        &self.redirects
    }

    /// The real path of a virtual path.
    pub fn real(&self, virt: &str) -> Result<PathBuf> {
        let Some(comps) = collapse(virt) else {
            bail!("{virt:?} leaves the peer's file layout");
        };
        if let Some(hit) = self.redirects.lookup(virt) {
            return Ok(hit.path);
        }
        match comps.as_slice() {
            [GAMES, rest @ ..] => Ok(rest.iter().fold(self.games_dir.clone(), |p, c| p.join(c))),
            [CATALOG] => self
                .catalog
                .clone()
                .context("this peer has no catalog file (it uses the compiled-in one)"),
            _ => bail!("{virt:?} is not in the peer's file layout"),
        }
    }

    /// The catalog file to open, `None` for the compiled-in catalog.
    pub fn catalog(&self) -> Option<PathBuf> {
        self.real(CATALOG).ok()
    }

    /// The real games dir.
    pub fn games_dir(&self) -> Result<PathBuf> {
        self.real(GAMES)
    }

    /// The real folder of a game root.
    pub fn root(&self, game_id: &str) -> Result<PathBuf> {
        check_game_id(game_id)?;
        self.real(&format!("{GAMES}/{game_id}"))
    }

    /// The real path of a file of a game root. `rel` must be a clean wire
    /// path (no `..`, not under `local/`): the *virtual* root is never left.
    pub fn game_file(&self, game_id: &str, rel: &str) -> Result<PathBuf> {
        check_game_id(game_id)?;
        checked_rel_path(rel)?;
        self.real(&format!("{GAMES}/{game_id}/{rel}"))
    }

    /// The sentinel's real path.
    pub fn sentinel(&self, game_id: &str) -> Result<PathBuf> {
        self.game_file(game_id, SENTINEL)
    }

    /// Reads a root's sentinel version; `None` when it is missing.
    pub fn sentinel_version(&self, game_id: &str) -> Option<String> {
        let path = self.sentinel(game_id).ok()?;
        std::fs::read_to_string(path)
            .ok()
            .map(|t| t.trim().to_string())
    }

    /// Whether a redirect reaches inside `game_id`'s root (a key below
    /// `games/<id>`): without one, every file of the root is the real root
    /// joined with its relative path.
    pub fn redirected_inside(&self, game_id: &str) -> bool {
        let prefix = format!("{GAMES}/{game_id}/");
        self.redirects
            .entries()
            .any(|(k, _)| k.starts_with(&prefix))
    }

    /// The real path of a root's installed copy (`local/`).
    pub fn local_dir(&self, game_id: &str) -> Result<PathBuf> {
        check_game_id(game_id)?;
        self.real(&format!("{GAMES}/{game_id}/{LOCAL_DIR}"))
    }

    /// Whether the root has an installed copy (`local/`).
    pub fn installed(&self, game_id: &str) -> bool {
        self.local_dir(game_id).is_ok_and(|p| p.is_dir())
    }

    /// Game IDs present: folders in the (real) games dir, plus roots that a
    /// redirect brings in (a redirected root folder, or a redirected sentinel).
    pub fn game_ids(&self) -> Result<BTreeSet<String>> {
        let mut ids = BTreeSet::new();
        let dir = self.games_dir()?;
        match std::fs::read_dir(&dir) {
            Ok(entries) => {
                for entry in entries {
                    let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
                    let Some(id) = entry.file_name().to_str().map(str::to_string) else {
                        continue;
                    };
                    // Dot-folders are the peer's own scratch space, never games.
                    if id.starts_with('.') || !entry.file_type().is_ok_and(|t| t.is_dir()) {
                        continue;
                    }
                    ids.insert(id);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
        }
        for (key, _) in self.redirects.entries() {
            let mut comps = key.split('/');
            let (Some(GAMES), Some(id)) = (comps.next(), comps.next()) else {
                continue;
            };
            if ids.contains(id) || check_game_id(id).is_err() {
                continue;
            }
            let root_is_dir = self.root(id).is_ok_and(|r| r.is_dir());
            let has_sentinel = self.sentinel(id).is_ok_and(|s| s.is_file());
            if root_is_dir || has_sentinel {
                ids.insert(id.to_string());
            }
        }
        Ok(ids)
    }

    /// The regular files of a game root as other peers see it, sorted by
    /// path: the real root's files, except those a longer redirect shadows,
    /// plus the files redirects put into it. Never `local/`, symlinks found
    /// while walking, or the peer's scratch files.
    pub fn list_files(&self, game_id: &str) -> Result<Vec<FileDesc>> {
        Ok(self.list_stamped(game_id)?.files)
    }

    /// `list_files`, with each file's modification time as the walk found
    /// it (the digest cache's stamp, so it need not `stat` every file again).
    pub fn list_stamped(&self, game_id: &str) -> Result<Stamped> {
        check_game_id(game_id)?;
        let root_virt = format!("{GAMES}/{game_id}");
        let mut found = BTreeMap::new();
        self.collect(&root_virt, &mut found)?;
        let prefix = format!("{root_virt}/");
        let mut out = Stamped {
            files: Vec::with_capacity(found.len()),
            mtimes_ns: Vec::with_capacity(found.len()),
        };
        for (virt, (size, mtime_ns)) in found {
            let Some(rel) = virt.strip_prefix(&prefix) else {
                continue;
            };
            let hidden = rel.split('/').next() == Some(LOCAL_DIR)
                || rel.split('/').any(|c| c.starts_with(SCRATCH_PREFIX));
            if !hidden {
                out.files.push(FileDesc::new(rel, size));
                out.mtimes_ns.push(mtime_ns);
            }
        }
        Ok(out)
    }

    /// Adds the files below the virtual folder `dir` (virtual path → size
    /// and mtime, as `lstat` said).
    fn collect(&self, dir: &str, out: &mut BTreeMap<String, (u64, i64)>) -> Result<()> {
        let real_dir = self.real(dir)?;
        let keys: Vec<&str> = self.redirects.entries().map(|(k, _)| k).collect();
        let below = |k: &str, d: &str| k.len() > d.len() + 1 && k.starts_with(&format!("{d}/"));
        // Without a redirect below `dir`, every walked path is its own
        // real path: no lookup per file.
        let shadows = keys.iter().any(|k| below(k, dir));
        if real_dir.is_dir() {
            // The folder's own entries here, and each folder in it walked on
            // rayon's threads: a 100,000-file root took 0.36 s to walk on
            // one, before the first file list could go out.
            let mut tops = Vec::new();
            let entries = std::fs::read_dir(&real_dir)
                .with_context(|| format!("walking {}", real_dir.display()))?;
            for entry in entries {
                let entry = entry.with_context(|| format!("walking {}", real_dir.display()))?;
                let kind = entry.file_type().context("reading a file type")?;
                if kind.is_dir() && !is_local_of_root(dir, &entry.file_name()) {
                    tops.push(entry.path());
                } else if kind.is_file() {
                    let meta = entry.metadata().context("reading file size")?;
                    out.extend(self.walked(dir, &real_dir, &entry.path(), &meta, shadows)?);
                }
            }
            use rayon::prelude::*;
            let below: Vec<Result<Vec<Listing>>> = tops
                .par_iter()
                .map(|top| {
                    let mut found = Vec::new();
                    // Not followed if it became a symlink since read_dir.
                    for entry in walkdir::WalkDir::new(top).follow_root_links(false) {
                        let entry = entry.with_context(|| format!("walking {}", top.display()))?;
                        if entry.file_type().is_file() {
                            let meta = entry.metadata().context("reading file size")?;
                            found.extend(self.walked(
                                dir,
                                &real_dir,
                                entry.path(),
                                &meta,
                                shadows,
                            )?);
                        }
                    }
                    Ok(found)
                })
                .collect();
            for found in below {
                out.extend(found?);
            }
        }
        // Redirects directly below `dir` (none between) add their targets.
        for key in keys.iter().copied().filter(|k| below(k, dir)) {
            if keys.iter().any(|mid| below(mid, dir) && below(key, mid)) {
                continue;
            }
            let target = self.real(key)?;
            match std::fs::symlink_metadata(&target) {
                Ok(m) if m.is_file() => {
                    out.insert(key.to_string(), (m.len(), mtime_ns(&m)));
                }
                Ok(m) if m.is_dir() => self.collect(key, out)?,
                // A missing target is a missing file; a symlink target is
                // treated like a symlink in a root: not listed.
                _ => {}
            }
        }
        Ok(())
    }

    /// `path`, a regular file found walking `real_dir` (the real folder of
    /// virtual `dir`), as a listing entry; `None` when a longer redirect
    /// shadows it (or its name is not UTF-8).
    fn walked(
        &self,
        dir: &str,
        real_dir: &Path,
        path: &Path,
        meta: &std::fs::Metadata,
        shadows: bool,
    ) -> Result<Option<Listing>> {
        let rel = path
            .strip_prefix(real_dir)
            .context("walked outside the folder")?;
        let Some(rel) = rel.to_str() else {
            return Ok(None);
        };
        let virt = format!("{dir}/{rel}");
        // A longer redirect decides what this path really is.
        if shadows && self.real(&virt)? != path {
            return Ok(None);
        }
        Ok(Some((virt, (meta.len(), mtime_ns(meta)))))
    }

    /// Checks a requested file of a game root for serving. Refused unless
    /// `rel` stays inside the virtual root and is not under `local/`, and the
    /// real file (after symlinks) is a regular file inside the folder that
    /// provides it: the real root, or the target of the redirect that matched.
    pub fn resolve_served(&self, game_id: &str, rel: &str) -> Result<ServedFile> {
        self.served_root(game_id)?.resolve(rel)
    }

    /// `game_id`'s root with its real folders looked up once, for resolving
    /// many served paths (`ServedRoot::resolve`): a request for a batch of
    /// small files spent 18 `readlink`s a file canonicalizing the same
    /// folders again.
    pub fn served_root<'a>(&'a self, game_id: &'a str) -> Result<ServedRoot<'a>> {
        let root = self.root(game_id)?;
        let root_real = root
            .canonicalize()
            .with_context(|| format!("game root {} is missing", root.display()))?;
        // No local/ folder: nothing can resolve under it.
        let local = self.real(&format!("{GAMES}/{game_id}/{LOCAL_DIR}"))?;
        let local_real = local.exists().then(|| local.canonicalize()).transpose()?;
        // Without a descriptor (no openat2 here, or O_PATH refused) every
        // path takes the slow, portable way. So does every path of a root
        // whose local/ is not a plain folder right in it (a symlink, or a
        // redirect): a lookup without symlinks could reach it by another
        // name, so each path's real place is checked against it.
        let plain_local = local_real
            .as_ref()
            .is_none_or(|l| *l == root_real.join(LOCAL_DIR));
        let root_fd = plain_local
            .then(|| {
                rustix::fs::open(
                    &root_real,
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .ok()
            })
            .flatten()
            .map(Arc::new);
        Ok(ServedRoot {
            files: self,
            game_id,
            root_real,
            local_real,
            root_fd,
        })
    }
}

/// A file found by a walk: its virtual path, size and mtime in ns.
type Listing = (String, (u64, i64));

/// A game's files in path order and, side by side, their modification
/// times (`Files::list_stamped`). Two vectors, not one of pairs, so the
/// digest cache fills `files` in place and sends it on: for 100,000 files
/// a second list was ~6 MiB more of a source's peak.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamped {
    pub files: Vec<FileDesc>,
    pub mtimes_ns: Vec<i64>,
}

/// A modification time in nanoseconds since the epoch.
pub fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec())
}

/// A served root whose real folders are known (`Files::served_root`).
pub struct ServedRoot<'a> {
    files: &'a Files,
    game_id: &'a str,
    root_real: PathBuf,
    local_real: Option<PathBuf>,
    /// The real root, opened once: a served file is looked up beneath it
    /// (`openat2` with `RESOLVE_BENEATH`), a walk of its own few components,
    /// where a `realpath` of the whole path cost a `readlink` per component
    /// and was the largest part of a small-file source's CPU.
    root_fd: Option<Arc<OwnedFd>>,
}

/// A file that a root may serve, checked but not open (so a batch of many
/// parts holds no descriptors until each is sent): where it is and which
/// file it was, so `open` serves that file or none.
#[derive(Debug)]
pub struct ServedFile {
    place: Place,
    dev: u64,
    ino: u64,
    /// Its size when it was checked.
    pub size: u64,
}

#[derive(Debug)]
enum Place {
    /// A path without symlinks, beneath the root's descriptor.
    Beneath(Arc<OwnedFd>, String),
    /// A canonical real path (symlinks resolved, redirects followed).
    Real(PathBuf),
}

/// What the fast lookup accepts: no step outside the root, and no symlink
/// at all, so the file cannot be under `local/` by a detour either (a path
/// with a symlink takes the slow way, which checks where it really lands).
const BENEATH: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

fn open_beneath(root: &OwnedFd, rel: &str, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat2(
        root,
        rel,
        flags | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
        BENEATH,
    )
}

impl ServedFile {
    /// Opens the checked file for reading; an error if what is there now is
    /// not the file that was checked (replaced in between).
    pub fn open(&self) -> Result<File> {
        let file = match &self.place {
            Place::Beneath(root, rel) => File::from(
                open_beneath(root, rel, OFlags::RDONLY)
                    .with_context(|| format!("opening {rel}"))?,
            ),
            Place::Real(path) => {
                File::open(path).with_context(|| format!("opening {}", path.display()))?
            }
        };
        let meta = file
            .metadata()
            .context("reading a served file's metadata")?;
        if (meta.dev(), meta.ino()) != (self.dev, self.ino) {
            bail!("the file was replaced after it was checked");
        }
        Ok(file)
    }
}

impl ServedRoot<'_> {
    /// The real file behind relative path `rel`, if it may be served (see
    /// `Files::resolve_served`).
    pub fn resolve(&self, rel: &str) -> Result<ServedFile> {
        let game_id = self.game_id;
        let path = self.files.game_file(game_id, rel)?;
        let virt = format!("{GAMES}/{game_id}/{rel}");
        // A redirect of something inside the root is the root the scenario
        // chose for it; a redirect of the root itself, or of the whole
        // games dir, is the root already.
        let deeper;
        let base = match self.files.redirects.lookup(&virt) {
            Some(hit) if hit.key.len() > 2 => {
                deeper = hit.target.canonicalize().with_context(|| {
                    format!("redirect target {} is missing", hit.target.display())
                })?;
                &deeper
            }
            _ => {
                if let Some(found) = self.resolve_beneath(rel) {
                    return Ok(found);
                }
                &self.root_real
            }
        };
        let real = path
            .canonicalize()
            .with_context(|| format!("{rel} does not exist"))?;
        if !real.starts_with(base) {
            bail!("path {rel:?} resolves outside the game root");
        }
        if let Some(local) = &self.local_real
            && real.starts_with(local)
        {
            bail!("path {rel:?} resolves under local/");
        }
        let meta = std::fs::metadata(&real).with_context(|| format!("{rel} does not exist"))?;
        if !meta.is_file() {
            bail!("path {rel:?} is not a regular file");
        }
        Ok(ServedFile {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            place: Place::Real(real),
        })
    }

    /// The fast way for a path without symlinks, right in the real root;
    /// `None` sends the caller the slow way (which also words the refusals).
    fn resolve_beneath(&self, rel: &str) -> Option<ServedFile> {
        let root = self.root_fd.as_ref()?;
        let fd = open_beneath(root, rel, OFlags::PATH).ok()?;
        let st = rustix::fs::fstat(&fd).ok()?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return None;
        }
        Some(ServedFile {
            place: Place::Beneath(root.clone(), rel.to_string()),
            dev: st.st_dev,
            ino: st.st_ino,
            size: u64::try_from(st.st_size).ok()?,
        })
    }
}

/// Whether `name`, directly inside virtual folder `dir`, is a root's `local/`.
fn is_local_of_root(dir: &str, name: &std::ffi::OsStr) -> bool {
    name == LOCAL_DIR && dir.split('/').count() == 2 && dir.starts_with("games/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn read_served(files: &Files, id: &str, rel: &str) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut files.resolve_served(id, rel)?.open()?, &mut out)?;
        Ok(out)
    }

    fn paths(files: &Files, id: &str) -> Result<Vec<(String, u64)>> {
        Ok(files
            .list_files(id)?
            .into_iter()
            .map(|f| (f.path, f.size))
            .collect())
    }

    #[test]
    fn symlinks_out_of_the_root_are_refused() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let games = dir.path().join("games");
        let root = games.join("game");
        fs::create_dir_all(root.join("local"))?;
        fs::write(dir.path().join("secret"), "s")?;
        fs::write(root.join("ok.bin"), "ok")?;
        fs::write(root.join("local/installed"), "i")?;
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("leak"))?;
        std::os::unix::fs::symlink(root.join("local/installed"), root.join("inner"))?;
        let files = Files::plain(&games);
        assert!(files.resolve_served("game", "ok.bin").is_ok());
        assert!(files.resolve_served("game", "leak").is_err());
        assert!(files.resolve_served("game", "inner").is_err());
        assert!(files.resolve_served("game", "missing").is_err());
        assert!(files.resolve_served("game", "../game/ok.bin").is_err());
        assert!(files.resolve_served("game", "local/installed").is_err());
        assert_eq!(paths(&files, "game")?, vec![("ok.bin".to_string(), 2)]);
        Ok(())
    }

    /// A plain path is looked up beneath the root's descriptor; one through
    /// a symlink takes the slow way and lands where the symlink points; a
    /// file swapped after its check is not served.
    #[test]
    fn served_files_are_checked_once_and_opened_as_checked() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let games = dir.path().join("games");
        let root = games.join("game");
        fs::create_dir_all(root.join("sub"))?;
        fs::write(root.join("sub/a.bin"), "aaa")?;
        std::os::unix::fs::symlink("sub/a.bin", root.join("alias"))?;
        fs::create_dir_all(root.join("local"))?;
        fs::write(root.join("local/x"), "installed")?;
        std::os::unix::fs::symlink("local", root.join("to-local"))?;
        let files = Files::plain(&games);
        // Inside the root, but under local/ through a relative symlink.
        assert!(files.resolve_served("game", "to-local/x").is_err());
        // local/ itself a symlink to a folder of the root: that folder's
        // files are the installed copy, by another name.
        let other = games.join("other");
        fs::create_dir_all(other.join("data"))?;
        fs::write(other.join("data/x"), "installed")?;
        std::os::unix::fs::symlink("data", other.join("local"))?;
        assert!(files.resolve_served("other", "data/x").is_err());
        let plain = files.resolve_served("game", "sub/a.bin")?;
        assert!(matches!(plain.place, Place::Beneath(..)), "{plain:?}");
        assert_eq!(plain.size, 3);
        let alias = files.resolve_served("game", "alias")?;
        assert!(matches!(alias.place, Place::Real(_)), "{alias:?}");
        assert_eq!(read_served(&files, "game", "alias")?, b"aaa");
        assert!(files.resolve_served("game", "sub").is_err());
        // Made before the old one goes, so it cannot reuse its inode number.
        fs::write(root.join("sub/b.tmp"), "bbbb")?;
        fs::rename(root.join("sub/b.tmp"), root.join("sub/a.bin"))?;
        assert!(plain.open().is_err());
        assert!(alias.open().is_err());
        assert_eq!(read_served(&files, "game", "sub/a.bin")?, b"bbbb");
        Ok(())
    }

    #[test]
    fn redirected_files_and_roots_are_listed_and_served_from_their_targets() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let games = dir.path().join("games");
        fs::create_dir_all(games.join("cnc4/data"))?;
        fs::write(games.join("cnc4/version.ini"), "20170204")?;
        fs::write(games.join("cnc4/cnc4.eti"), "real eti")?;
        fs::write(games.join("cnc4/data/a"), "real a")?;
        let alt = dir.path().join("alt");
        fs::create_dir_all(alt.join("ggoo"))?;
        fs::create_dir_all(alt.join("data"))?;
        fs::write(alt.join("stale.ini"), "20150101")?;
        fs::write(alt.join("eti"), "redirected")?;
        fs::write(alt.join("data/b"), "bb")?;
        fs::write(alt.join("ggoo/version.ini"), "20200721")?;
        fs::write(alt.join("ggoo/ggoo.eti"), "g")?;
        let mut r = Redirects::new();
        r.insert("games/cnc4/version.ini", alt.join("stale.ini"))?;
        r.insert("games/cnc4/cnc4.eti", alt.join("eti"))?;
        r.insert("games/cnc4/data/", alt.join("data"))?;
        r.insert("games/cnc4/extra.txt", alt.join("missing"))?;
        r.insert("games/ggoo/", alt.join("ggoo"))?;
        let files = Files::new(games.clone(), None, r);

        assert_eq!(
            files.game_ids()?,
            BTreeSet::from(["cnc4".to_string(), "ggoo".to_string()])
        );
        assert_eq!(files.sentinel_version("cnc4").as_deref(), Some("20150101"));
        assert_eq!(files.sentinel_version("ggoo").as_deref(), Some("20200721"));
        assert_eq!(
            paths(&files, "cnc4")?,
            vec![
                ("cnc4.eti".to_string(), 10),
                ("data/b".to_string(), 2),
                ("version.ini".to_string(), 8)
            ]
        );
        assert_eq!(
            paths(&files, "ggoo")?,
            vec![("ggoo.eti".to_string(), 1), ("version.ini".to_string(), 8)]
        );
        assert_eq!(read_served(&files, "cnc4", "cnc4.eti")?, b"redirected");
        assert_eq!(read_served(&files, "ggoo", "ggoo.eti")?, b"g");
        // Shadowed by the data/ redirect, and escaping the virtual root.
        assert!(files.resolve_served("cnc4", "data/a").is_err());
        assert!(
            files
                .resolve_served("cnc4", "data/../../ggoo/ggoo.eti")
                .is_err()
        );
        assert!(files.resolve_served("cnc4", "extra.txt").is_err());
        Ok(())
    }

    #[test]
    fn nested_redirects_list_each_file_once_from_the_longest_key() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let games = dir.path().join("games");
        let (x, y) = (dir.path().join("x"), dir.path().join("y"));
        fs::create_dir_all(x.join("sub"))?;
        fs::create_dir_all(&y)?;
        fs::write(x.join("a"), "xa")?;
        fs::write(x.join("sub/b"), "shadowed")?;
        fs::write(x.join("sub/d"), "shadowed, and not in y")?;
        fs::write(y.join("b"), "yb!")?;
        fs::write(y.join("c"), "c")?;
        let mut r = Redirects::new();
        r.insert("games/g", x.clone())?;
        r.insert("games/g/sub/", y.clone())?;
        let files = Files::new(games, None, r);
        assert_eq!(
            paths(&files, "g")?,
            vec![
                ("a".to_string(), 2),
                ("sub/b".to_string(), 3),
                ("sub/c".to_string(), 1)
            ]
        );
        assert_eq!(read_served(&files, "g", "sub/b")?, b"yb!");
        assert!(files.resolve_served("g", "sub/d").is_err());
        Ok(())
    }

    #[test]
    fn a_symlink_out_of_a_redirect_target_is_refused() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let games = dir.path().join("games");
        fs::create_dir_all(&games)?;
        let alt = dir.path().join("alt");
        fs::create_dir_all(&alt)?;
        fs::write(dir.path().join("secret"), "s")?;
        fs::write(alt.join("version.ini"), "1")?;
        std::os::unix::fs::symlink(dir.path().join("secret"), alt.join("leak"))?;
        let mut r = Redirects::new();
        r.insert("games/g", alt.clone())?;
        let files = Files::new(games, None, r);
        assert!(files.resolve_served("g", "version.ini").is_ok());
        assert!(files.resolve_served("g", "leak").is_err());
        assert_eq!(paths(&files, "g")?, vec![("version.ini".to_string(), 1)]);
        Ok(())
    }

    #[test]
    fn the_catalog_and_the_games_dir_can_be_redirected() -> Result<()> {
        let plain = Files::new(
            PathBuf::from("/g"),
            Some(PathBuf::from("/c.db")),
            Redirects::new(),
        );
        assert_eq!(plain.catalog(), Some(PathBuf::from("/c.db")));
        assert_eq!(Files::plain(Path::new("/g")).catalog(), None);
        let mut r = Redirects::new();
        r.insert("game.db", PathBuf::from("/alt.db"))?;
        r.insert("games", PathBuf::from("/other"))?;
        let files = Files::new(PathBuf::from("/g"), None, r);
        assert_eq!(files.catalog(), Some(PathBuf::from("/alt.db")));
        assert_eq!(files.root("x")?, PathBuf::from("/other/x"));
        assert!(files.real("etc/passwd").is_err());
        assert!(files.real("games/../../x").is_err());
        Ok(())
    }
}
