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

use crate::peer::files::Files;
use crate::protocol::digest;
use crate::protocol::wire::FileDesc;
use crate::sync::lock;
use anyhow::{Context, Result};
use std::os::unix::fs::MetadataExt;
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
        mtime_ns: meta.mtime().saturating_mul(1_000_000_000) + meta.mtime_nsec(),
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

    /// Fills in the digests of `list` (files of `game_id` as listed by the
    /// file layer): from the cache where size and mtime still match,
    /// hashed from disk (and stored) where not. Blocking; one caller at a
    /// time (the cache lock is held throughout), so concurrent requests do
    /// not hash the same file twice.
    pub fn fill(&self, files: &Files, game_id: &str, list: &mut [FileDesc]) -> Result<()> {
        self.with_db(|db| {
            // One transaction for the lookups and the stores: a lookup of
            // its own took and dropped the database's locks each time.
            let tx = db.transaction()?;
            let mut misses = Vec::new();
            {
                let mut get = tx.prepare_cached(
                    "SELECT size, mtime_ns, blocks FROM digests WHERE game = ?1 AND path = ?2",
                )?;
                for (i, f) in list.iter_mut().enumerate() {
                    let real = files.game_file(game_id, &f.path)?;
                    let now = stamp(&real)?;
                    let cached: Option<(i64, i64, String)> = get
                        .query_row(rusqlite::params![game_id, f.path], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                        })
                        .ok();
                    match cached {
                        // A cache row that does not parse is hashed again.
                        Some((size, mtime, blocks))
                            if size as u64 == now.size && mtime == now.mtime_ns =>
                        {
                            match split(&blocks) {
                                Some(digests) => f.blocks = digests,
                                None => misses.push((i, real, now)),
                            }
                        }
                        _ => misses.push((i, real, now)),
                    }
                }
            }
            if misses.is_empty() {
                return Ok(());
            }
            {
                let mut put = tx.prepare_cached(PUT)?;
                for (i, real, now) in misses {
                    let Some(f) = list.get_mut(i) else { continue };
                    f.blocks = digest::digest_file(&real, f.size)?;
                    put_row(&mut put, game_id, f, &now)?;
                }
            }
            tx.commit()?;
            tracing::info!(%game_id, "block digests computed and cached");
            Ok(())
        })
    }

    /// Stores the verified digests of a game just downloaded, stamped with
    /// its files as they are now on disk.
    pub fn store(&self, files: &Files, game_id: &str, list: &[FileDesc]) -> Result<()> {
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
    blocks
        .split(',')
        .map(|b| digest::Digest::from_hex(b).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_hashed_once_and_rehashed_when_a_file_changes() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let games = dir.path().join("games");
        std::fs::create_dir_all(games.join("g"))?;
        std::fs::write(games.join("g/a.bin"), vec![7u8; 3 << 20])?;
        std::fs::write(games.join("g/empty"), b"")?;
        let files = Files::plain(&games);
        let cache = DigestCache::new(dir.path());
        let mut list = files.list_files("g")?;
        cache.fill(&files, "g", &mut list)?;
        assert_eq!(list[0].blocks.len(), 3);
        assert!(list[1].blocks.is_empty());
        let want = list.clone();
        // Same size and mtime: the cache answers, even for changed bytes
        // (what bit rot looks like).
        let path = games.join("g/a.bin");
        let mtime = std::fs::metadata(&path)?.modified()?;
        let mut data = std::fs::read(&path)?;
        data[5] ^= 1;
        std::fs::write(&path, &data)?;
        std::fs::File::options()
            .write(true)
            .open(&path)?
            .set_modified(mtime)?;
        let mut again = files.list_files("g")?;
        DigestCache::new(dir.path()).fill(&files, "g", &mut again)?;
        assert_eq!(again, want, "a restart hashed again");
        // A new mtime: hashed again.
        std::fs::File::options()
            .write(true)
            .open(&path)?
            .set_modified(mtime + std::time::Duration::from_secs(1))?;
        let mut changed = files.list_files("g")?;
        cache.fill(&files, "g", &mut changed)?;
        assert_ne!(changed[0].blocks[0], want[0].blocks[0]);
        assert_eq!(changed[0].blocks[1], want[0].blocks[1]);
        Ok(())
    }
}
