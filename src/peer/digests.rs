//! The source's block-digest cache: digests are computed once per file
//! version and kept in `<state-dir>/digests.sqlite`, keyed by (game, path,
//! size, mtime in nanoseconds), so a rescan or a restart does not read a
//! game again. Hashing is lazy: the first file-list request for a game
//! hashes the files the cache does not know (later requests wait for it and
//! find them cached); `ready` and library scans never hash. A downloaded
//! game's digests are stored right after its commit (they were verified on
//! arrival), so a receiver serves what it fetched without reading it again.
//!
//! A file changed in place with its size and mtime kept (bit rot, or a
//! deliberate `touch -r`) keeps its cached digests: the bytes it then
//! serves fail the receiver's verification (`source-bad-chunk`).

use crate::peer::files::{Files, Stamped};
use crate::protocol::digest;
use crate::protocol::wire::FileDesc;
use crate::sync::lock;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub use digest::CACHE_FILE as DB_FILE;

pub struct DigestCache {
    path: PathBuf,
    /// Opened on first use, so a peer's start stays as fast as before.
    db: Mutex<Option<rusqlite::Connection>>,
}

/// A file's identity for the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime_ns: i64,
}

fn stamp(path: &Path) -> Result<Stamp> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Stamp {
        size: meta.len(),
        mtime_ns: crate::peer::files::mtime_ns(&meta),
    })
}

impl DigestCache {
    pub fn new(state_dir: &Path) -> Self {
        Self {
            path: state_dir.join(DB_FILE),
            db: Mutex::new(None),
        }
    }

    fn with_db<T>(&self, f: impl FnOnce(&mut rusqlite::Connection) -> Result<T>) -> Result<T> {
        let mut guard = lock(&self.db);
        if guard.is_none() {
            let db = rusqlite::Connection::open(&self.path)
                .with_context(|| format!("opening {}", self.path.display()))?;
            db.execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
                 CREATE TABLE IF NOT EXISTS digests (
                    game TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL,
                    mtime_ns INTEGER NOT NULL, blocks TEXT NOT NULL,
                    PRIMARY KEY (game, path));",
            )
            .with_context(|| format!("preparing {}", self.path.display()))?;
            *guard = Some(db);
        }
        match guard.as_mut() {
            Some(db) => f(db),
            None => anyhow::bail!("digest cache not open"),
        }
    }

    /// The files of `game_id` as the file layer listed them
    /// (`Files::list_stamped`), with their digests: from the cache where
    /// size and mtime still match, hashed from disk (and stored) where not.
    /// Blocking; one caller at a time (the cache lock is held throughout),
    /// so concurrent requests do not hash the same file twice.
    pub fn fill(&self, files: &Files, game_id: &str, list: Stamped) -> Result<Vec<FileDesc>> {
        let Stamped {
            files: mut out,
            mtimes_ns,
        } = list;
        anyhow::ensure!(
            out.len() == mtimes_ns.len(),
            "a listing of {} files with {} mtimes",
            out.len(),
            mtimes_ns.len()
        );
        self.with_db(|db| {
            // One transaction for the lookups and the stores: a lookup of
            // its own took and dropped the database's locks each time.
            let tx = db.transaction()?;
            let mut misses = Vec::new();
            {
                // The game's rows in path order, walked beside the list
                // (sorted by path too): one scan instead of a query per
                // file, and nothing held in memory. A list out of order
                // only misses rows, and a miss is hashed: never a wrong hit.
                let mut rows = tx.prepare_cached(
                    "SELECT path, size, mtime_ns, blocks FROM digests WHERE game = ?1 ORDER BY path",
                )?;
                let mut rows = rows.query_map([game_id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })?;
                let mut row = rows.next().transpose()?;
                for (i, (file, &mtime_ns)) in out.iter_mut().zip(&mtimes_ns).enumerate() {
                    while row.as_ref().is_some_and(|r| r.0 < file.path) {
                        row = rows.next().transpose()?;
                    }
                    let now = Stamp {
                        size: file.size,
                        mtime_ns,
                    };
                    match &row {
                        // A cache row that does not parse is hashed again.
                        Some((path, size, mtime, blocks))
                            if *path == file.path
                                && *size as u64 == now.size
                                && *mtime == now.mtime_ns =>
                        {
                            match split(blocks) {
                                Some(digests) => file.blocks = digests,
                                None => misses.push((i, now)),
                            }
                        }
                        _ => misses.push((i, now)),
                    }
                }
            }
            if misses.is_empty() {
                return Ok(out);
            }
            let began = std::time::Instant::now();
            // Each miss's real path is made on the hashing thread and
            // dropped there: 100,000 of them held at once were ~12 MiB of
            // a source's peak.
            let hashed = digest_all(&misses, |(i, now)| {
                let path = &out.get(*i).context("a miss outside the list")?.path;
                digest::digest_file(&files.game_file(game_id, path)?, now.size)
            });
            let hashed_ms = began.elapsed().as_millis();
            {
                let mut put = tx.prepare_cached(PUT)?;
                for ((i, now), blocks) in misses.iter().zip(hashed) {
                    let Some(f) = out.get_mut(*i) else { continue };
                    f.blocks = blocks?;
                    put_row(&mut put, game_id, f, now)?;
                }
            }
            tx.commit()?;
            tracing::info!(%game_id, files = misses.len(), hashed_ms, stored_ms = began.elapsed().as_millis() - hashed_ms, "block digests computed and cached");
            Ok(out)
        })
    }

    /// Stores the verified digests of a game just downloaded, stamped with
    /// its files as they are now on disk.
    pub fn store<'a>(
        &self,
        files: &Files,
        game_id: &str,
        list: impl IntoIterator<Item = &'a FileDesc>,
    ) -> Result<()> {
        self.with_db(|db| {
            let tx = db.transaction()?;
            {
                let mut put = tx.prepare_cached(PUT)?;
                for f in list {
                    let now = stamp(&files.game_file(game_id, &f.path)?)?;
                    put_row(&mut put, game_id, f, &now)?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }
}

#[cfg(test)]
impl DigestCache {
    /// The paths of `game_id` that have a cache row (for tests).
    pub fn cached_paths(&self, game_id: &str) -> Result<Vec<String>> {
        self.with_db(|db| {
            let mut q = db.prepare("SELECT path FROM digests WHERE game = ?1 ORDER BY path")?;
            let rows = q.query_map([game_id], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }
}

/// `hash` of each of `items`, in order, run side by side on rayon's
/// threads (one per core): a cold list of 100,000 small files waited 1.7 s
/// for one thread while the receiver sat idle.
fn digest_all<T: Sync>(
    items: &[T],
    hash: impl Fn(&T) -> Result<Vec<digest::Digest>> + Sync + Send,
) -> Vec<Result<Vec<digest::Digest>>> {
    use rayon::prelude::*;
    items.par_iter().map(hash).collect()
}

/// Caches one file's digests, stamped with its size and mtime.
const PUT: &str = "INSERT OR REPLACE INTO digests (game, path, size, mtime_ns, blocks)
                   VALUES (?1, ?2, ?3, ?4, ?5)";

fn put_row(
    put: &mut rusqlite::CachedStatement<'_>,
    game_id: &str,
    f: &FileDesc,
    now: &Stamp,
) -> rusqlite::Result<usize> {
    put.execute(rusqlite::params![
        game_id,
        f.path,
        now.size as i64,
        now.mtime_ns,
        join(&f.blocks)
    ])
}

/// A cached digest list: hex digests joined by commas.
fn join(blocks: &[digest::Digest]) -> String {
    blocks
        .iter()
        .map(digest::Digest::to_hex)
        .collect::<Vec<_>>()
        .join(",")
}

/// The digests of a cached list; `None` when a digest does not parse.
fn split(blocks: &str) -> Option<Vec<digest::Digest>> {
    if blocks.is_empty() {
        return Some(Vec::new());
    }
    // Sized up front: collecting grew each list to four digests, most
    // files have one, and a source holds 100,000 of them.
    let mut out = Vec::with_capacity(blocks.bytes().filter(|&b| b == b',').count() + 1);
    for b in blocks.split(',') {
        out.push(digest::Digest::from_hex(b).ok()?);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Side-by-side hashing keeps each file's result at its place, errors
    /// included.
    #[test]
    fn files_hashed_on_several_threads_come_back_in_order() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let mut paths = Vec::new();
        let mut sizes = Vec::new();
        for i in 0..40usize {
            let path = dir.path().join(format!("f{i}"));
            let len = (i * 7919) % 3000 + if i == 3 { 2 << 20 } else { 0 };
            if i != 17 {
                std::fs::write(&path, vec![i as u8; len])?;
            }
            paths.push(path);
            sizes.push(len as u64);
        }
        let files: Vec<(&PathBuf, u64)> = paths.iter().zip(sizes.iter().copied()).collect();
        let got = digest_all(&files, |(path, size)| digest::digest_file(path, *size));
        assert_eq!(got.len(), 40);
        for (i, r) in got.iter().enumerate() {
            match r {
                Ok(blocks) => assert_eq!(
                    *blocks,
                    digest::digest_file(&paths[i], sizes[i])?,
                    "file {i}"
                ),
                Err(e) => assert_eq!(i, 17, "file {i}: {e:#}"),
            }
        }
        assert!(got[17].is_err());
        let none: &[(&PathBuf, u64)] = &[];
        assert!(digest_all(none, |_| Ok(Vec::new())).is_empty());
        Ok(())
    }

    #[test]
    fn digests_are_hashed_once_and_rehashed_when_a_file_changes() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let games = dir.path().join("games");
        std::fs::create_dir_all(games.join("g"))?;
        std::fs::write(games.join("g/a.bin"), vec![7u8; 3 << 20])?;
        std::fs::write(games.join("g/empty"), b"")?;
        std::fs::write(games.join("g/z.bin"), b"zzzzz")?;
        let files = Files::plain(&games);
        let cache = DigestCache::new(dir.path());
        let list = cache.fill(&files, "g", files.list_stamped("g")?)?;
        assert_eq!(list[0].blocks.len(), 3);
        assert!(list[1].blocks.is_empty());
        let want = list.clone();
        // Same size and mtime: the cache answers, even for changed bytes
        // (what bit rot looks like), for the first file and the last.
        let rot = |rel: &str| -> Result<()> {
            let path = games.join("g").join(rel);
            let mtime = std::fs::metadata(&path)?.modified()?;
            let mut data = std::fs::read(&path)?;
            data[1] ^= 1;
            std::fs::write(&path, &data)?;
            std::fs::File::options()
                .write(true)
                .open(&path)?
                .set_modified(mtime)?;
            Ok(())
        };
        rot("a.bin")?;
        rot("z.bin")?;
        let again = DigestCache::new(dir.path()).fill(&files, "g", files.list_stamped("g")?)?;
        assert_eq!(again, want, "a restart hashed again");
        // A list out of path order finds fewer rows, but what it misses is
        // hashed: right digests either way.
        let mut reversed = files.list_stamped("g")?;
        reversed.files.reverse();
        reversed.mtimes_ns.reverse();
        let reversed = DigestCache::new(dir.path()).fill(&files, "g", reversed)?;
        assert_eq!(reversed[0], want[2], "z.bin from the cache");
        assert_eq!(
            reversed[2].blocks,
            digest::digest_file(&games.join("g/a.bin"), 3 << 20)?,
            "a.bin missed and hashed as it is now"
        );
        let path = games.join("g/a.bin");
        let mtime = std::fs::metadata(&path)?.modified()?;
        // A new mtime: hashed again.
        std::fs::File::options()
            .write(true)
            .open(&path)?
            .set_modified(mtime + std::time::Duration::from_secs(1))?;
        let changed = cache.fill(&files, "g", files.list_stamped("g")?)?;
        assert_ne!(changed[0].blocks[0], want[0].blocks[0]);
        assert_eq!(changed[0].blocks[1], want[0].blocks[1]);
        Ok(())
    }
}
