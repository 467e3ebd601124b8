//! The disk watcher behind `watchDisk`/`expectDiskPeak`: a background thread
//! that samples the bytes allocated under one folder (a peer's games folder),
//! keeping the baseline, the peak and the last reading. The lab holds one per
//! watched peer until its `expectDiskPeak` (or the run's end) stops it.

use crate::units::human_bytes;
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Bytes allocated on disk (`st_blocks` × 512) by everything under `root`,
/// the root included, each inode counted once. Entries that vanish during the
/// walk are skipped (the folder is live); `keep_going` returning false ends
/// the walk early with what was counted so far.
pub fn allocated_bytes(root: &Path, keep_going: &dyn Fn() -> bool) -> std::io::Result<u64> {
    // The root itself must exist: a wrong folder would read as "no use".
    std::fs::symlink_metadata(root)?;
    let mut seen = HashSet::new();
    let mut total = 0u64;
    for entry in walkdir::WalkDir::new(root).follow_links(false) {
        if !keep_going() {
            break;
        }
        let Ok(entry) = entry else { continue };
        let Ok(meta) = entry.metadata() else { continue };
        // A file renamed mid-walk may be met twice (old and new folder).
        if seen.insert((meta.dev(), meta.ino())) {
            total += meta.blocks() * 512;
        }
    }
    Ok(total)
}

/// What a watcher saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readings {
    pub baseline: u64,
    pub peak: u64,
    pub last: u64,
    pub samples: u64,
}

impl Readings {
    pub fn show(&self) -> String {
        let rise = self.peak.saturating_sub(self.baseline);
        format!(
            "baseline {} ({} B), peak {} ({} B, +{} = {} B), final {} ({} B), {} samples",
            human_bytes(self.baseline),
            self.baseline,
            human_bytes(self.peak),
            self.peak,
            human_bytes(rise),
            rise,
            human_bytes(self.last),
            self.last,
            self.samples
        )
    }
}

/// A background sampler of one folder's allocated bytes.
pub struct Watcher {
    root: PathBuf,
    baseline: u64,
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    samples: Arc<AtomicU64>,
    done: mpsc::Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

/// How long stopping waits for the sampler before leaving it behind.
const STOP_WAIT: Duration = Duration::from_secs(2);

impl Watcher {
    pub fn start(root: &Path, interval: Duration) -> std::io::Result<Self> {
        let baseline = allocated_bytes(root, &|| true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(baseline));
        let samples = Arc::new(AtomicU64::new(1));
        let (tx, done) = mpsc::channel();
        let thread = {
            let (root, stop, peak, samples) = (
                root.to_path_buf(),
                stop.clone(),
                peak.clone(),
                samples.clone(),
            );
            std::thread::Builder::new()
                .name("disk-watch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let keep_going = || !stop.load(Ordering::Relaxed);
                        // An unreadable root (removed by the scenario) just skips a sample.
                        if let Ok(bytes) = allocated_bytes(&root, &keep_going)
                            && keep_going()
                        {
                            peak.fetch_max(bytes, Ordering::Relaxed);
                            samples.fetch_add(1, Ordering::Relaxed);
                        }
                        std::thread::sleep(interval);
                    }
                    let _ = tx.send(());
                })?
        };
        Ok(Self {
            root: root.to_path_buf(),
            baseline,
            stop,
            peak,
            samples,
            done,
            thread: Some(thread),
        })
    }

    /// Stops sampling and takes one last reading. Never blocks for longer
    /// than `STOP_WAIT`: a sampler stuck in the file system is left behind.
    pub fn finish(mut self) -> std::io::Result<Readings> {
        self.halt();
        let last = allocated_bytes(&self.root, &|| true)?;
        let peak = self.peak.load(Ordering::Relaxed).max(last);
        Ok(Readings {
            baseline: self.baseline,
            peak,
            last,
            samples: self.samples.load(Ordering::Relaxed) + 1,
        })
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take()
            && self.done.recv_timeout(STOP_WAIT).is_ok()
        {
            let _ = t.join();
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.halt();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(path: &Path, len: usize) -> std::io::Result<()> {
        let mut f = std::fs::File::create(path)?;
        // Random-ish bytes, so no file system can store them compressed.
        let block: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let mut left = len;
        while left > 0 {
            let n = left.min(block.len());
            f.write_all(&block[..n])?;
            left -= n;
        }
        f.sync_all()
    }

    #[test]
    fn counts_allocated_bytes_not_apparent_sizes() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let empty = allocated_bytes(dir.path(), &|| true)?;
        std::fs::create_dir_all(dir.path().join("g/local/bin"))?;
        write(&dir.path().join("g/local/bin/a.bin"), 1 << 20)?;
        write(&dir.path().join("g/b.bin"), 100)?;
        // A sparse file of 64 MiB holds (almost) nothing.
        std::fs::File::create(dir.path().join("g/sparse.eti"))?.set_len(64 << 20)?;
        let used = allocated_bytes(dir.path(), &|| true)?;
        let grown = used - empty;
        assert!(grown >= (1 << 20) + 100, "{grown}");
        assert!(grown < (1 << 20) + (1 << 20), "{grown}");
        // A hard link is the same inode: counted once.
        std::fs::hard_link(
            dir.path().join("g/local/bin/a.bin"),
            dir.path().join("g/link"),
        )?;
        assert_eq!(allocated_bytes(dir.path(), &|| true)?, used);
        // Told to stop at once, it stops.
        assert!(allocated_bytes(dir.path(), &|| false)? < used);
        assert!(allocated_bytes(&dir.path().join("missing"), &|| true).is_err());
        Ok(())
    }

    #[test]
    fn the_watcher_sees_a_transient_peak() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        write(&dir.path().join("old.bin"), 64 << 10)?;
        let w = Watcher::start(dir.path(), Duration::from_millis(2))?;
        write(&dir.path().join("big.bin"), 4 << 20)?;
        std::thread::sleep(Duration::from_millis(100));
        std::fs::remove_file(dir.path().join("big.bin"))?;
        let r = w.finish()?;
        assert!(r.samples > 3, "{r:?}");
        assert!(r.peak - r.baseline >= 4 << 20, "{r:?}");
        assert_eq!(r.last, r.baseline, "{r:?}");
        Ok(())
    }

    #[test]
    fn dropping_a_watcher_stops_it_even_when_the_root_is_gone() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("games");
        std::fs::create_dir(&root)?;
        let w = Watcher::start(&root, Duration::from_millis(1))?;
        std::fs::remove_dir(&root)?;
        let started = std::time::Instant::now();
        drop(w);
        assert!(started.elapsed() < STOP_WAIT, "{:?}", started.elapsed());
        Ok(())
    }
}
