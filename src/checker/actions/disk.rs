//! Disk-use watching: `watchDisk` samples the bytes allocated under a peer's
//! games folder in a background thread; `expectDiskPeak` stops it and checks
//! how far the peak rose above the baseline. Made for "a stream-install never
//! stores more than one chunk beyond what it installs".

use crate::checker::actions::peer;
use crate::checker::lab::Lab;
use crate::checker::outcome::{Failure, StepResult};
use crate::checker::registry::{StepCtx, StepParams};
use crate::units::{Size, Span, human_bytes};
use serde::Deserialize;
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// `watchDisk{}`: start sampling a peer's games folder.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchDiskStep {
    pub peer: String,
    /// Time between samples (default 5 ms).
    pub interval: Option<Span>,
}

impl StepParams for WatchDiskStep {}

/// `expectDiskPeak{}`: stop the peer's watcher and bound peak − baseline.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawExpectDiskPeak")]
pub struct ExpectDiskPeakStep {
    pub peer: String,
    pub at_most: Option<Size>,
    pub at_least: Option<Size>,
    /// Bound on peak − final: how far use ever rose above where it ended.
    pub over_final: Option<Size>,
}

impl StepParams for ExpectDiskPeakStep {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawExpectDiskPeak {
    peer: String,
    at_most: Option<Size>,
    at_least: Option<Size>,
    over_final: Option<Size>,
}

impl TryFrom<RawExpectDiskPeak> for ExpectDiskPeakStep {
    type Error = String;
    fn try_from(r: RawExpectDiskPeak) -> Result<Self, String> {
        // A step with no bound could never fail.
        if r.at_most.is_none() && r.at_least.is_none() && r.over_final.is_none() {
            return Err("give at least one of `atMost`, `atLeast`, `overFinal`".into());
        }
        if let (Some(lo), Some(hi)) = (r.at_least, r.at_most)
            && lo.0 > hi.0
        {
            return Err(format!("`atLeast` ({}) is above `atMost` ({})", lo.0, hi.0));
        }
        Ok(Self {
            peer: r.peer,
            at_most: r.at_most,
            at_least: r.at_least,
            over_final: r.over_final,
        })
    }
}

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
    fn show(&self) -> String {
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

pub fn watch_disk(lab: &mut Lab, s: &WatchDiskStep, _cx: &StepCtx) -> StepResult {
    if lab.disk_watchers.contains_key(&s.peer) {
        return Err(Failure::invalid(format!(
            "{} is already watched: expectDiskPeak{{ peer = {:?} }} first",
            s.peer, s.peer
        )));
    }
    let root = peer(lab, &s.peer)?.games_dir.clone();
    let interval = s.interval.map(|i| i.0).unwrap_or(Duration::from_millis(5));
    let w = Watcher::start(&root, interval).map_err(|e| {
        Failure::harness(
            anyhow::Error::new(e).context(format!("watching {}", root.display())),
            &[&s.peer],
        )
    })?;
    lab.disk_watchers.insert(s.peer.clone(), w);
    Ok(())
}

/// The first bound `r` breaks, as (expected, seen).
fn broken_bound(s: &ExpectDiskPeakStep, r: &Readings) -> Option<(String, String)> {
    let rise = r.peak.saturating_sub(r.baseline);
    let over = r.peak.saturating_sub(r.last);
    let fmt = |n: u64| format!("{} ({n} B)", human_bytes(n));
    if let Some(hi) = s.at_most
        && rise > hi.0
    {
        return Some((
            format!("peak − baseline at most {}", fmt(hi.0)),
            format!("+{}", fmt(rise)),
        ));
    }
    if let Some(lo) = s.at_least
        && rise < lo.0
    {
        return Some((
            format!("peak − baseline at least {}", fmt(lo.0)),
            format!("+{}", fmt(rise)),
        ));
    }
    if let Some(hi) = s.over_final
        && over > hi.0
    {
        return Some((
            format!("peak − final at most {}", fmt(hi.0)),
            format!("+{}", fmt(over)),
        ));
    }
    None
}

pub fn expect_disk_peak(lab: &mut Lab, s: &ExpectDiskPeakStep, _cx: &StepCtx) -> StepResult {
    let Some(w) = lab.disk_watchers.remove(&s.peer) else {
        return Err(Failure::invalid(format!(
            "expectDiskPeak needs an earlier watchDisk{{ peer = {:?} }}",
            s.peer
        )));
    };
    let readings = w
        .finish()
        .map_err(|e| Failure::harness(anyhow::Error::new(e), &[&s.peer]))?;
    println!("      … disk use of {}: {}", s.peer, readings.show());
    match broken_bound(s, &readings) {
        None => Ok(()),
        Some((expected, seen)) => Err(Failure::expect(
            format!("on {}: {expected}", s.peer),
            format!("{seen}; {}", readings.show()),
            &[&s.peer],
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::registry::Action;
    use crate::checker::script::load_str;
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
        let step = |at_most: Option<u64>, at_least: Option<u64>, over_final: Option<u64>| {
            ExpectDiskPeakStep {
                peer: "p".into(),
                at_most: at_most.map(Size),
                at_least: at_least.map(Size),
                over_final: over_final.map(Size),
            }
        };
        assert!(broken_bound(&step(None, Some(4 << 20), None), &r).is_none());
        assert!(broken_bound(&step(Some(5 << 20), None, None), &r).is_none());
        let (want, seen) = broken_bound(&step(Some(1 << 20), None, None), &r)
            .ok_or_else(|| anyhow::anyhow!("atMost 1 MiB passed: {r:?}"))?;
        assert!(want.contains("at most 1 MiB"), "{want}");
        assert!(seen.starts_with('+'), "{seen}");
        assert!(broken_bound(&step(None, Some(8 << 20), None), &r).is_some());
        assert!(broken_bound(&step(None, None, Some(1 << 20)), &r).is_some());
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

    fn parse(src: &str) -> Result<Vec<Action>, String> {
        load_str("t.lua", src, Path::new("t.lua"), 0)
            .map(|s| s.steps.into_iter().map(|s| s.action).collect())
            .map_err(|e| e.0)
    }

    #[test]
    fn steps_parse_sizes_and_refuse_mistakes() -> Result<(), String> {
        let steps = parse(
            "scenario { watchDisk { peer = \"c\", interval = \"2ms\" },\n\
             expectDiskPeak { peer = \"c\", atMost = \"65MiB\", atLeast = 1024, overFinal = \"1MiB\" } }",
        )?;
        match &steps[..] {
            [Action::WatchDisk(w), Action::ExpectDiskPeak(e)] => {
                assert_eq!(w.interval, Some(Span(Duration::from_millis(2))));
                assert_eq!(e.at_most, Some(Size(65 << 20)));
                assert_eq!(e.at_least, Some(Size(1024)));
                assert_eq!(e.over_final, Some(Size(1 << 20)));
            }
            other => return Err(format!("{other:?}")),
        }
        let e = parse("scenario { expectDiskPeak { peer = \"c\" } }").err();
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("t.lua:1") && e.contains("at least one")),
            "{e:?}"
        );
        let e = parse("scenario {\n expectDiskPeak { peer = \"c\", atmost = \"1MiB\" } }").err();
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("t.lua:2") && e.contains("unknown field `atmost`")),
            "{e:?}"
        );
        let e = parse(
            "scenario { expectDiskPeak { peer = \"c\", atMost = \"1MiB\", atLeast = \"2MiB\" } }",
        )
        .err();
        assert!(e.as_deref().is_some_and(|e| e.contains("above")), "{e:?}");
        let e = parse("scenario { expectDiskPeak { peer = \"c\", atMost = \"lots\" } }").err();
        assert!(
            e.as_deref().is_some_and(|e| e.contains("not a size")),
            "{e:?}"
        );
        let e = parse("scenario { watchDisk { peer = \"c\", every = \"1ms\" } }").err();
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("unknown field `every`")),
            "{e:?}"
        );
        Ok(())
    }
}
