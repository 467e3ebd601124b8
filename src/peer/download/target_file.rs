//! Where a download's bytes land: positioned writes that skip the page cache
//! (`O_DIRECT`) for whole, aligned blocks, and ordinary buffered writes for
//! everything else (a file's tail, odd chunk sizes, file systems without
//! direct I/O).
//!
//! Why: a game is written once and read back rarely, and copying tens of GiB
//! through the page cache costs the receiver most of its CPU (≈70 % of its
//! profile samples were the kernel's copy into the cache) and then a long
//! writeback at the final sync. Direct writes hand the block to the disk as
//! it is. See README.md, "Benchmarks", for what it changed.
//!
//! Also where a download's files are set up (`prepare_files`) and committed
//! (`commit`): the sentinel waits under a scratch name until every other
//! byte is on disk.

use super::plan::ResumeMarker;
use crate::peer::files::Files;
use crate::protocol::digest;
use crate::protocol::layout::SENTINEL;
use crate::protocol::wire::FileDesc;
use crate::sync::lock;
use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// Alignment of direct writes: offset, length and memory address. 4 KiB
/// covers every common logical block size (512 B and 4 KiB sectors).
pub const ALIGN: usize = 4096;
/// Where the incoming sentinel waits until every other byte is on disk.
const SENTINEL_PART: &str = ".lanspread-version.ini.part";

/// One download target, opened twice: buffered for anything, direct for
/// aligned blocks while the file system accepts them.
pub struct TargetFile {
    buffered: File,
    /// The direct handle; dropped on the first direct write the file system
    /// refuses as invalid, so every later write goes through the page cache.
    ///
    /// Its lock also makes one write at a time to this file. ext4 serialises
    /// writes to one inode anyway, and writers queued there spin in the
    /// kernel (~8 % of a 2 GiB download's CPU in a profile); waiting here,
    /// they sleep and leave the CPU to the network. Writes to other files
    /// (another game, another file of the game) do not wait.
    direct: Mutex<Option<File>>,
}

impl TargetFile {
    /// Opens (creating) `path` for writing without truncating it; with
    /// `direct` false every write goes through the page cache.
    pub fn open(path: &Path, direct: bool) -> io::Result<Self> {
        let buffered = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(path)?;
        // tmpfs before Linux 6.6, FUSE and some network file systems refuse
        // O_DIRECT at open: such files are written through the cache.
        let direct = if direct {
            OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_DIRECT)
                .open(path)
                .inspect_err(|e| tracing::debug!(path = %path.display(), "no direct writes: {e}"))
                .ok()
        } else {
            None
        };
        Ok(Self {
            buffered,
            direct: Mutex::new(direct),
        })
    }

    /// `open`, for file `name` of the folder open as `dir` (no path walk).
    fn open_at(dir: &OwnedFd, name: &str, direct: bool) -> io::Result<Self> {
        use rustix::fs::{Mode, OFlags};
        let mode = Mode::from_raw_mode(0o666);
        let buffered = rustix::fs::openat(
            dir,
            name,
            OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC,
            mode,
        )?;
        let direct = if direct {
            rustix::fs::openat(
                dir,
                name,
                OFlags::WRONLY | OFlags::DIRECT | OFlags::CLOEXEC,
                mode,
            )
            .inspect_err(|e| tracing::debug!(name, "no direct writes: {e}"))
            .ok()
            .map(File::from)
        } else {
            None
        };
        Ok(Self {
            buffered: File::from(buffered),
            direct: Mutex::new(direct),
        })
    }

    /// The buffered handle, for sizing, syncing and metadata.
    pub fn file(&self) -> &File {
        &self.buffered
    }

    /// Whether writes may still go around the page cache (for tests and logs).
    pub fn writes_direct(&self) -> bool {
        lock(&self.direct).is_some()
    }

    /// Writes all of `buf` at `offset`: the aligned front part directly when
    /// `buf` and `offset` allow it, the rest through the page cache.
    pub fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut direct = lock(&self.direct);
        let mut done = 0usize;
        if let Some(handle) = direct.as_ref() {
            while done < buf.len() {
                let rest = &buf[done..];
                let at = offset + done as u64;
                let len = rest.len() / ALIGN * ALIGN;
                if len == 0
                    || !at.is_multiple_of(ALIGN as u64)
                    || !(rest.as_ptr() as usize).is_multiple_of(ALIGN)
                {
                    break;
                }
                match handle.write_at(&rest[..len], at) {
                    Ok(0) => break,
                    Ok(n) => done += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    // The device wants a larger alignment, or the file system
                    // took the open but not the write: use the cache from now.
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                        tracing::info!(
                            "direct write refused ({e}); writing through the page cache"
                        );
                        *direct = None;
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        if done < buf.len() {
            self.buffered
                .write_all_at(&buf[done..], offset + done as u64)?;
        }
        Ok(())
    }
}

/// A write buffer whose bytes start on an `ALIGN` boundary, so a full block
/// can be written directly. Safe code only: it over-allocates by `ALIGN` and
/// uses the aligned window inside.
pub struct AlignedBlock {
    mem: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBlock {
    /// An empty block that holds `cap` bytes.
    pub fn new(cap: usize) -> Self {
        let mem = vec![0u8; cap + ALIGN];
        // align_offset may decline (usize::MAX); the block then just is not
        // aligned and its writes go through the cache.
        let start = match mem.as_ptr().align_offset(ALIGN) {
            n if n < ALIGN => n,
            _ => 0,
        };
        Self { mem, start, len: 0 }
    }

    pub fn capacity(&self) -> usize {
        self.mem.len() - ALIGN
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Room left before the block is full.
    pub fn spare(&self) -> usize {
        self.capacity() - self.len
    }

    /// Appends `data`; panics past the capacity, which callers size for.
    pub fn extend_from_slice(&mut self, data: &[u8]) {
        let at = self.start + self.len;
        self.mem[at..at + data.len()].copy_from_slice(data);
        self.len += data.len();
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.mem[self.start..self.start + self.len]
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }
}

/// Files shorter than this are written through the page cache even when
/// direct writes are on: a direct write waits for the disk, so a game of
/// many small files paid one disk round trip per file, while cached writes
/// of small files cost little CPU and reach the disk together at the
/// `syncfs` of `commit`.
pub const DIRECT_MIN_FILE: u64 = 1 << 20;

/// Open targets kept at once. Each holds two descriptors (buffered and
/// direct), and chunks still writing to an evicted one keep it open until
/// they end (at most `STREAMS_IN_FLIGHT` per source), so a download holds
/// about `2 × OPEN_TARGETS` descriptors whatever its file count.
pub const OPEN_TARGETS: usize = 64;

/// A download's target files: where each lands, opened when a chunk needs it
/// and closed again when `OPEN_TARGETS` others were used since. Holding every
/// target open failed games of 10,000 files with EMFILE.
pub struct Targets {
    /// Where the files land: each file's path is mapped when it is opened,
    /// not kept (a 100,000-file game held ~11 MiB of paths).
    layer: Files,
    game_id: String,
    /// The folders that hold targets, for the commit's syncs.
    dirs: BTreeSet<PathBuf>,
    /// Per file: written around the page cache (see `DIRECT_MIN_FILE`).
    direct: Vec<bool>,
    open: Mutex<OpenSet<Arc<TargetFile>>>,
    /// Held while targets are created, so one thread creates at a time.
    /// Creating a file takes its folder's lock in the kernel exclusively,
    /// and batches open files of the same folder side by side: a second
    /// creator spun on that lock for the whole create (`rwsem_spin_on_owner`,
    /// 12 % of the receiver's CPU in a 100,000-file download). Waiting here,
    /// it sleeps and leaves the CPU to the network.
    creating: Mutex<()>,
    /// When no redirect reaches inside the root, every target (but the
    /// sentinel) is `root/<rel>`: it is opened by name in its folder,
    /// whose descriptor is kept, instead of by a walk of its whole path.
    plain: Option<PlainRoot>,
}

/// The folders of a root without redirects inside it (see `Targets::plain`).
struct PlainRoot {
    root: PathBuf,
    /// Each file's folder, as an index into `folders`.
    folder_of: Vec<u32>,
    /// Folders relative to the root ("" for the root itself).
    folders: Vec<String>,
    open: Mutex<OpenSet<Arc<OwnedFd>>>,
}

/// Folder descriptors kept at once: files come folder after folder.
const OPEN_FOLDERS: usize = 8;

impl PlainRoot {
    fn new(root: PathBuf, files: &[FileDesc]) -> Option<Self> {
        let mut folders: Vec<String> = Vec::new();
        let mut folder_of = Vec::with_capacity(files.len());
        for f in files {
            let folder = f.path.rsplit_once('/').map_or("", |(d, _)| d);
            if folders.last().map(String::as_str) != Some(folder) {
                folders.push(folder.to_string());
            }
            folder_of.push(u32::try_from(folders.len() - 1).ok()?);
        }
        Some(Self {
            root,
            folder_of,
            folders,
            open: Mutex::new(OpenSet::new(OPEN_FOLDERS)),
        })
    }

    /// Opens (creating) file `index`, at `rel`, by name in its folder.
    fn open(&self, index: usize, rel: &str, direct: bool) -> Result<TargetFile> {
        use rustix::fs::{Mode, OFlags};
        let folder = *self
            .folder_of
            .get(index)
            .context("chunk for an unplanned file")? as usize;
        // Looked up apart from the insert below: the lock guard of a match
        // scrutinee lives through the whole match.
        let cached = lock(&self.open).touch(folder);
        let dir = match cached {
            Some(dir) => dir,
            None => {
                let rel_dir = self
                    .folders
                    .get(folder)
                    .context("a file without a folder")?;
                let path = self.root.join(rel_dir);
                let fd = rustix::fs::open(
                    &path,
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .with_context(|| format!("opening {}", path.display()))?;
                lock(&self.open).insert(folder, Arc::new(fd))
            }
        };
        let name = rel.rsplit_once('/').map_or(rel, |(_, n)| n);
        TargetFile::open_at(&dir, name, direct)
            .with_context(|| format!("opening {}", self.root.join(rel).display()))
    }
}

/// The least-recently-used set of open targets, by file index: at most
/// `cap` entries, the one used longest ago evicted first. Uses are queued
/// in order and stale queue entries skipped when evicting, so a use and an
/// eviction cost O(1) amortised (a scan of every entry per new file was 3 %
/// of a 100,000-file download's CPU).
struct OpenSet<T> {
    files: std::collections::HashMap<usize, (T, u64)>,
    /// (index, clock at that use), oldest first; an entry is stale when its
    /// file was used again since (or evicted).
    uses: std::collections::VecDeque<(usize, u64)>,
    clock: u64,
    cap: usize,
}

impl<T: Clone> OpenSet<T> {
    fn new(cap: usize) -> Self {
        Self {
            files: std::collections::HashMap::new(),
            uses: std::collections::VecDeque::new(),
            clock: 0,
            cap: cap.max(1),
        }
    }

    /// The entry of `index`, marked as just used.
    fn touch(&mut self, index: usize) -> Option<T> {
        self.clock += 1;
        let now = self.clock;
        let (value, used) = self.files.get_mut(&index)?;
        *used = now;
        let value = value.clone();
        self.uses.push_back((index, now));
        self.compact();
        Some(value)
    }

    /// Adds `value` for `index` (evicting the least recently used entry
    /// when full) and returns it; if `index` is in the set already, that
    /// entry is kept and returned instead.
    fn insert(&mut self, index: usize, value: T) -> T {
        if let Some(existing) = self.touch(index) {
            return existing;
        }
        while self.files.len() >= self.cap {
            let Some((old, at)) = self.uses.pop_front() else {
                break;
            };
            if self.files.get(&old).is_some_and(|(_, used)| *used == at) {
                self.files.remove(&old);
            }
        }
        self.clock += 1;
        self.files.insert(index, (value.clone(), self.clock));
        self.uses.push_back((index, self.clock));
        value
    }

    /// Drops stale uses once they outnumber the entries several times over,
    /// so a file touched chunk after chunk does not grow the queue.
    fn compact(&mut self) {
        if self.uses.len() > 8 * self.cap {
            let files = &self.files;
            self.uses
                .retain(|(i, at)| files.get(i).is_some_and(|(_, used)| used == at));
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.files.len()
    }
}

impl Targets {
    /// The target of file `index` of the plan, at relative path `rel`,
    /// opened if it is not already.
    pub fn get(&self, index: usize, rel: &str) -> Result<Arc<TargetFile>> {
        self.get_holding(index, rel, &mut None)
    }

    /// The targets of `files` (index and relative path each), opened as
    /// `get` does; the creates of the whole batch hold the creating lock
    /// once, not once per file.
    pub fn get_all<'a>(
        &self,
        files: impl IntoIterator<Item = (usize, &'a str)>,
    ) -> Result<Vec<Arc<TargetFile>>> {
        let mut creating = None;
        files
            .into_iter()
            .map(|(index, rel)| self.get_holding(index, rel, &mut creating))
            .collect()
    }

    /// `get`, taking the creating lock into `creating` (unless it holds it
    /// already) before a target has to be opened.
    fn get_holding<'s>(
        &'s self,
        index: usize,
        rel: &str,
        creating: &mut Option<MutexGuard<'s, ()>>,
    ) -> Result<Arc<TargetFile>> {
        let direct = *self
            .direct
            .get(index)
            .context("chunk for an unplanned file")?;
        if let Some(file) = lock(&self.open).touch(index) {
            return Ok(file);
        }
        // Opened (maybe created) outside the open set's lock: a slow create
        // does not hold up callers whose targets are open already. If
        // another task opened it meanwhile, that one is used and ours closes.
        if creating.is_none() {
            *creating = Some(lock(&self.creating));
            // Another batch may have created it while this one waited.
            if let Some(file) = lock(&self.open).touch(index) {
                return Ok(file);
            }
        }
        let file = match &self.plain {
            Some(plain) if rel != SENTINEL => plain.open(index, rel, direct)?,
            _ => {
                let path = target_path(&self.layer, &self.game_id, rel)?;
                TargetFile::open(&path, direct)
                    .with_context(|| format!("opening {}", path.display()))?
            }
        };
        Ok(lock(&self.open).insert(index, Arc::new(file)))
    }

    /// How many targets are open now (for tests).
    #[cfg(test)]
    fn open_count(&self) -> usize {
        lock(&self.open).len()
    }
}

/// Maps every target file to where the file layer puts it and makes its
/// folders; `Targets` creates each file when its first chunk comes (every
/// file has one, an empty file an empty one), so a game of 8,000 small
/// files does not create them all before the first byte moves (1.8 s of
/// set-up on a loaded machine). The sentinel goes to a scratch name next to
/// its real place and is renamed into place last (`commit`).
pub fn prepare_files(
    layer: &Files,
    game_id: &str,
    files: &[FileDesc],
    direct: bool,
) -> Result<Targets> {
    let root = layer.root(game_id)?;
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    // A stale root being replaced stops being ready at once.
    match std::fs::remove_file(layer.sentinel(game_id)?) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).context("removing the old sentinel"),
    }
    // Files of an older version that the new one does not have would make the
    // root differ from its sources.
    // A leftover longer than the new file is cut to its size here (a resume
    // may never open it again); the chunks' positioned writes grow the
    // others, so a full disk shows up as a failed chunk write.
    let wanted: std::collections::HashMap<&str, u64> =
        files.iter().map(|f| (f.path.as_str(), f.size)).collect();
    for old in layer.list_files(game_id)? {
        match wanted.get(old.path.as_str()) {
            None => std::fs::remove_file(layer.game_file(game_id, &old.path)?)
                .with_context(|| format!("removing stale {}", old.path))?,
            Some(&size) if old.size > size => {
                let path = layer.game_file(game_id, &old.path)?;
                OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_len(size))
                    .with_context(|| format!("cutting {} to {size} bytes", path.display()))?;
            }
            Some(_) => {}
        }
    }
    let mut direct_files = Vec::with_capacity(files.len());
    let mut made_dirs: BTreeSet<PathBuf> = BTreeSet::new();
    // Files come sorted, so most share the folder of the one before: a
    // byte comparison, not a set lookup by path components each.
    let mut last_dir = PathBuf::new();
    for f in files {
        let target = target_path(layer, game_id, &f.path)?;
        if let Some(parent) = target.parent()
            && parent.as_os_str() != last_dir.as_os_str()
        {
            if !made_dirs.contains(parent) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
                made_dirs.insert(parent.to_path_buf());
            }
            last_dir = parent.to_path_buf();
        }
        direct_files.push(direct && f.size >= DIRECT_MIN_FILE);
    }
    let plain = if layer.redirected_inside(game_id) {
        None
    } else {
        PlainRoot::new(root, files)
    };
    Ok(Targets {
        layer: layer.clone(),
        game_id: game_id.to_string(),
        dirs: made_dirs,
        direct: direct_files,
        open: Mutex::new(OpenSet::new(OPEN_TARGETS)),
        creating: Mutex::new(()),
        plain,
    })
}

/// Removes the scratch sentinel a failed or cancelled download may have
/// begun: batches open their targets side by side, so the sentinel's can be
/// created before another target's failure ends the download.
pub fn discard_sentinel_part(layer: &Files, game_id: &str) -> Result<()> {
    let part = layer.sentinel(game_id)?.with_file_name(SENTINEL_PART);
    match std::fs::remove_file(&part) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", part.display())),
    }
}

/// The resume marker's name in a root being downloaded (see
/// `plan::ResumeMarker`); a scratch name, so never listed or served.
pub const RESUME_MARKER: &str = ".lanspread-download";

fn marker_path(layer: &Files, game_id: &str) -> Result<PathBuf> {
    Ok(layer.root(game_id)?.join(RESUME_MARKER))
}

/// The marker an interrupted download left in the root, if any (one that
/// does not parse is as good as none: nothing is reused).
pub fn read_marker(layer: &Files, game_id: &str) -> Option<ResumeMarker> {
    let text = std::fs::read(marker_path(layer, game_id).ok()?).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Records what this download's bytes are for, before any is written.
pub fn write_marker(layer: &Files, game_id: &str, marker: &ResumeMarker) -> Result<()> {
    let path = marker_path(layer, game_id)?;
    std::fs::write(&path, serde_json::to_vec(marker)?)
        .with_context(|| format!("writing {}", path.display()))
}

/// Removes the marker once the download is committed.
pub fn remove_marker(layer: &Files, game_id: &str) -> Result<()> {
    match std::fs::remove_file(marker_path(layer, game_id)?) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).context("removing the resume marker"),
    }
}

/// Which digest blocks of each target already hold their agreed bytes:
/// every block wholly inside the file as it is on disk is read and checked.
pub fn verified_blocks(targets: &Targets, files: &[FileDesc]) -> Result<Vec<Vec<bool>>> {
    use std::io::Read;
    let mut out = Vec::with_capacity(files.len());
    let mut buf = vec![0u8; digest::BLOCK as usize];
    for f in files {
        let mut ok = vec![false; f.blocks.len()];
        let path = target_path(&targets.layer, &targets.game_id, &f.path)?;
        let Ok(mut file) = File::open(&path) else {
            out.push(ok);
            continue;
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        for (i, want) in f.blocks.iter().enumerate() {
            let (start, end) = digest::block_range(i as u64, f.size);
            if end > len {
                break;
            }
            let part = &mut buf[..(end - start) as usize];
            if file.read_exact(part).is_err() {
                break;
            }
            ok[i] = digest::block_digest(part) == *want;
        }
        out.push(ok);
    }
    Ok(out)
}

fn target_path(layer: &Files, game_id: &str, rel: &str) -> Result<PathBuf> {
    if rel == SENTINEL {
        return Ok(layer.sentinel(game_id)?.with_file_name(SENTINEL_PART));
    }
    layer.game_file(game_id, rel)
}

/// Makes a download whose every byte was written durable, then ready: each
/// file system that holds a target is synced (`syncfs`), and the sentinel is
/// renamed into place last.
///
/// One `syncfs` per file system instead of one `fsync` per file: the same
/// durability (every dirty page and inode of the file system reaches the
/// disk, with one cache flush), but a game of 8,000 small files paid 8,000
/// flushes. Redirects may put targets on several file systems; each is
/// synced once.
pub fn commit(layer: &Files, game_id: &str, targets: &Targets) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mut synced = BTreeSet::new();
    for dir in &targets.dirs {
        let meta = std::fs::metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
        if !synced.insert(meta.dev()) {
            continue;
        }
        crate::syncfs::sync_file_system(dir)?;
    }
    let sentinel = layer.sentinel(game_id)?;
    std::fs::rename(sentinel.with_file_name(SENTINEL_PART), &sentinel)
        .with_context(|| format!("committing {}", sentinel.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(path: &str, size: u64) -> FileDesc {
        FileDesc::new(path, size)
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    /// The least recently used entry goes first, a use counts as recent,
    /// and a file touched many times neither grows the queue without bound
    /// nor is evicted before files used less recently.
    #[test]
    fn the_open_set_evicts_the_least_recently_used() {
        let mut set = OpenSet::new(3);
        for i in 0..3 {
            assert_eq!(set.insert(i, i * 10), i * 10);
        }
        assert_eq!(set.touch(0), Some(0));
        // Already there: the entry in the set wins.
        assert_eq!(set.insert(1, 99), 10);
        assert_eq!(set.insert(3, 30), 30);
        assert_eq!(set.touch(2), None, "2 was used longest ago");
        assert_eq!(set.len(), 3);
        for _ in 0..1000 {
            assert_eq!(set.touch(0), Some(0));
        }
        assert!(
            set.uses.len() <= 8 * 3 + 1,
            "{} queued uses",
            set.uses.len()
        );
        assert_eq!(set.insert(4, 40), 40);
        assert_eq!(set.touch(1), None, "1 goes before the much-used 0");
        assert_eq!(set.touch(0), Some(0));
        assert_eq!(set.touch(3), Some(30));
        assert_eq!(set.len(), 3);
    }

    #[test]
    fn blocks_are_aligned_and_hold_what_was_put_in() {
        for cap in [1, 4095, 4096, 256 << 10] {
            let mut b = AlignedBlock::new(cap);
            assert_eq!(b.as_slice().as_ptr() as usize % ALIGN, 0, "cap {cap}");
            let data = pattern(cap, 7);
            b.extend_from_slice(&data[..cap / 2]);
            b.extend_from_slice(&data[cap / 2..]);
            assert_eq!(b.as_slice(), &data[..]);
            assert_eq!(b.spare(), 0);
            b.clear();
            assert!(b.is_empty());
        }
    }

    /// Aligned blocks, a tail, an unaligned offset and out-of-order writes
    /// all land where they belong, whichever path each one takes.
    #[test]
    fn mixed_direct_and_buffered_writes_make_the_exact_file() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("game.eti");
        let size = 3 * (256 << 10) + 1234;
        let want = pattern(size, 3);
        let target = TargetFile::open(&path, true)?;
        // Chunks of 256 KiB + a tail, written back to front through aligned
        // blocks, then one unaligned rewrite in the middle.
        let mut offsets: Vec<usize> = (0..size).step_by(256 << 10).collect();
        offsets.reverse();
        for at in offsets {
            let end = (at + (256 << 10)).min(size);
            let mut block = AlignedBlock::new(256 << 10);
            block.extend_from_slice(&want[at..end]);
            target.write_all_at(block.as_slice(), at as u64)?;
        }
        target.write_all_at(&want[5000..9000], 5000)?;
        target.file().sync_all()?;
        assert_eq!(std::fs::read(&path)?, want);
        Ok(())
    }

    /// Aligned blocks really go direct: the page cache does not hold them
    /// afterwards (mincore), while the same block written by a
    /// `--buffered-writes` target does stay there, so the check can tell the
    /// two apart. The files sit under the crate folder (tests run there),
    /// which is on a real disk, unlike a tmpfs /tmp.
    #[test]
    fn aligned_blocks_skip_the_page_cache_unless_buffered() -> Result<()> {
        let dir = tempfile::tempdir_in(".")?;
        let mut block = AlignedBlock::new(1 << 20);
        block.extend_from_slice(&pattern(1 << 20, 9));
        for (name, direct, cached) in [("direct.eti", true, 0), ("buffered.eti", false, 256)] {
            let path = dir.path().join(name);
            let target = TargetFile::open(&path, direct)?;
            target.write_all_at(block.as_slice(), 0)?;
            assert_eq!(
                target.writes_direct(),
                direct,
                "{}: O_DIRECT refused",
                dir.path().display()
            );
            assert_eq!(cached_pages(&path)?, cached, "{name}: pages in the cache");
        }
        Ok(())
    }

    /// How many of `path`'s pages are in the page cache.
    fn cached_pages(path: &Path) -> Result<usize> {
        use std::os::fd::AsRawFd;
        let file = File::open(path)?;
        let len = file.metadata()?.len() as usize;
        let pages = len.div_ceil(ALIGN);
        // SAFETY: a shared read-only mapping of a file we hold open, only
        // passed to mincore and unmapped before returning.
        unsafe {
            let addr = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            );
            anyhow::ensure!(addr != libc::MAP_FAILED, "mmap failed");
            let mut vec = vec![0u8; pages];
            let rc = libc::mincore(addr, len, vec.as_mut_ptr());
            libc::munmap(addr, len);
            anyhow::ensure!(rc == 0, "mincore failed");
            Ok(vec.iter().filter(|b| **b & 1 == 1).count())
        }
    }

    /// Many more files than `OPEN_TARGETS`: at most that many stay open, and
    /// a target closed in between is reopened without losing its bytes.
    #[test]
    fn open_targets_stay_bounded_whatever_the_file_count() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let games = dir.path().join("games");
        let layer = Files::plain(&games);
        let mut files: Vec<FileDesc> = (0..3 * OPEN_TARGETS)
            .map(|i| f(&format!("d{}/f{i}.bin", i % 7), 8))
            .collect();
        files.push(f("version.ini", 8));
        let targets = prepare_files(&layer, "g", &files, false)?;
        for round in 0..2u64 {
            for (i, file) in files.iter().enumerate() {
                let t = targets.get(i, &file.path)?;
                t.write_all_at(&[b'a' + (i % 26) as u8; 4], round * 4)?;
                assert!(targets.open_count() <= OPEN_TARGETS);
            }
        }
        assert_eq!(targets.open_count(), OPEN_TARGETS);
        assert!(
            targets.get(files.len(), "x").is_err(),
            "a file outside the plan"
        );
        commit(&layer, "g", &targets)?;
        let c = b'a' + 5;
        assert_eq!(std::fs::read(games.join("g/d5/f5.bin"))?, vec![c; 8]);
        assert!(games.join("g/version.ini").is_file());
        Ok(())
    }

    #[test]
    fn a_batch_opens_every_target_and_shares_the_open_ones() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let games = dir.path().join("games");
        let layer = Files::plain(&games);
        let files: Vec<FileDesc> = (0..5).map(|i| f(&format!("d/f{i}.bin"), 4)).collect();
        let targets = prepare_files(&layer, "g", &files, false)?;
        let first = targets.get(1, &files[1].path)?;
        let batch = targets.get_all(files.iter().enumerate().map(|(i, f)| (i, f.path.as_str())))?;
        assert_eq!(batch.len(), files.len());
        assert!(Arc::ptr_eq(&batch[1], &first), "an open target is reused");
        for (i, t) in batch.iter().enumerate() {
            t.write_all_at(&[b'0' + i as u8; 4], 0)?;
        }
        assert_eq!(std::fs::read(games.join("g/d/f3.bin"))?, b"3333");
        assert!(
            targets
                .get_all([(0, "d/f0.bin"), (files.len(), "x")])
                .is_err(),
            "a batch with a file outside the plan fails"
        );
        assert!(
            targets.creating.try_lock().is_ok(),
            "the creating lock is free once a batch is open"
        );
        Ok(())
    }

    #[test]
    fn downloads_are_written_where_the_file_layer_maps_them() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let games = dir.path().join("games");
        let alt = dir.path().join("alt");
        std::fs::create_dir_all(games.join("g"))?;
        std::fs::create_dir_all(&alt)?;
        std::fs::write(alt.join("old.ini"), "1")?;
        // A file the new version does not have is removed; a longer
        // leftover of an older version is cut to the new size.
        std::fs::write(games.join("g/gone.txt"), "")?;
        std::fs::create_dir_all(games.join("g/a"))?;
        std::fs::write(games.join("g/a/b.txt"), "leftover")?;
        let mut r = crate::redirect::Redirects::new();
        r.insert("games/g/version.ini", alt.join("old.ini"))?;
        r.insert("games/g/big.eti", alt.join("big"))?;
        let layer = Files::new(games.clone(), None, r);
        let handles = prepare_files(
            &layer,
            "g",
            &[f("big.eti", 5), f("a/b.txt", 2), f("version.ini", 1)],
            true,
        )?;
        assert_eq!(handles.direct.len(), 3);
        assert_eq!(handles.open_count(), 0, "prepare_files keeps files open");
        // Files under DIRECT_MIN_FILE go through the page cache.
        assert_eq!(handles.direct, [false, false, false]);
        // The old (redirected) sentinel is gone at once; the new one waits
        // next to it under the scratch name.
        assert!(!alt.join("old.ini").exists());
        // A longer leftover is cut to the new size at once; a new file is
        // created (empty) when its first chunk needs it.
        assert_eq!(std::fs::metadata(games.join("g/a/b.txt"))?.len(), 2);
        assert!(!alt.join("big").exists());
        assert!(!alt.join(SENTINEL_PART).exists());
        for (i, rel) in ["big.eti", "a/b.txt", "version.ini"].iter().enumerate() {
            handles.get(i, rel)?;
        }
        assert!(alt.join(SENTINEL_PART).is_file());
        assert_eq!(std::fs::metadata(alt.join("big"))?.len(), 0);
        assert_eq!(std::fs::metadata(games.join("g/a/b.txt"))?.len(), 2);
        assert!(!games.join("g/gone.txt").exists());
        assert!(!games.join("g/big.eti").exists());
        // The commit puts the sentinel in its (redirected) place.
        commit(&layer, "g", &handles)?;
        assert!(alt.join("old.ini").is_file());
        assert!(!alt.join(SENTINEL_PART).exists());
        // From DIRECT_MIN_FILE on, a file is written around the cache.
        let big = prepare_files(&layer, "g", &[f("big.eti", DIRECT_MIN_FILE)], true)?;
        assert_eq!(big.direct, [true]);
        Ok(())
    }
}
