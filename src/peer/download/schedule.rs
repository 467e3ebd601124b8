//! Which chunk is fetched from which source, and when: the download's policy
//! as a pure state machine, fed by the async driver (`run`) the way quinn
//! feeds quinn-proto. The driver reports what became of each fetch
//! (`chunk_done`, `chunk_failed`) and asks what to do next (`poll`). No I/O
//! and no clock: none of these rules depends on time.
//!
//! The rules: chunks are dealt round-robin over the sources, and each source
//! fetches its own share lowest index first (a stream needs them in order).
//! `STREAMS_IN_FLIGHT` requests run at once over all sources, but at least
//! `MIN_STREAMS_PER_SOURCE` per source. Given the chunks' sizes
//! (`with_sizes`), a source may have more, shorter requests in flight, up
//! to the bytes its full-size ones would hold and at most its part of
//! `MAX_SHORT_IN_FLIGHT`: a small file is one short request, and four
//! at a time left a game of 8,000 16 KiB files waiting on round trips. A
//! stream's pieces run at most
//! `STREAM_PIECES_PER_SOURCE` per source ahead of the first one still
//! missing. A chunk that fails at its source marks that source lost: the
//! chunk and the rest of the source's share are dealt round-robin to the
//! survivors, which also take over its requests in flight; with no survivor
//! the download fails.
//!
//! Sources may be barred from single files (`with_rules`): a source in the
//! minority of a file's digest vote is never dealt its chunks, and one that
//! sent a chunk that did not verify (`chunk_bad`) is barred from that file
//! from then on, the chunk and the rest of its share of that file going to
//! the sources still allowed; with none left the download fails. Chunks a
//! resume found verified on disk are done from the start.
//!
//! Cancelling is no happening here: a cancelled download's driver is
//! dropped (the select on the claim in `start` and in stream-install, which
//! also covers the file lists and set-up), and its fetches abort with it.

use std::collections::{BTreeSet, HashSet};
use std::ops::Range;

/// Chunk requests in flight at once, over all sources...
pub const STREAMS_IN_FLIGHT: usize = 4;
/// ...but at least this many per source, so each source has its next
/// request queued when one finishes. More streams than this at once only
/// spread the receiver's buffers and writes: with two sources, two each
/// instead of four each ran at 1446 / 1490 / 1613 against 1300 / 1556 /
/// 1466 MiB/s (2 GiB benches) with 37 instead of 58 MiB peak RSS.
const MIN_STREAMS_PER_SOURCE: usize = 2;
/// Most chunks in flight over all sources however short they are (each
/// source its part, but never fewer than its full-size requests). The
/// driver sends short ones in batches (`batch`), so this is three full
/// batches, well under the 256 streams a connection accepts (`transport`);
/// each chunk in flight holds one open target file, so with the targets
/// kept open (`target_file::OPEN_TARGETS`) a download holds at most 256.
const MAX_SHORT_IN_FLIGHT: usize = 192;
/// How far a stream-install's pieces may run ahead of the extractor, per
/// source: they wait in memory.
const STREAM_PIECES_PER_SOURCE: usize = 4;

/// Chunk requests each of `sources` live sources may have in flight.
fn streams_per_source(sources: usize) -> usize {
    (STREAMS_IN_FLIGHT / sources.max(1)).max(MIN_STREAMS_PER_SOURCE)
}

/// How the fetched chunks are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Each is written at its offset on arrival, in any order.
    Any,
    /// They feed a stream in chunk order, so the ones that arrive early wait
    /// in memory: only a window of them may be fetched ahead.
    Stream,
}

/// Fetch `chunk` (its index in the plan) from `source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fetch {
    pub source: usize,
    pub chunk: usize,
    /// How many fetches this source was given before this one: the driver
    /// alternates a source's connections by it.
    pub turn: usize,
}

/// `chunk`, lost with `from`, now belongs to `to`'s share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub chunk: usize,
    pub from: usize,
    pub to: usize,
}

/// What a failed chunk changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rescheduled {
    /// This failure lost its source (its first failure).
    pub source_lost: bool,
    /// Where the failed chunk and the lost source's share went, in chunk
    /// order; empty when no source survives (`poll` then answers `Failed`).
    pub retries: Vec<Retry>,
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Fetch(Fetch),
    /// Nothing to start: wait for a fetch in flight to end.
    Wait,
    /// Every chunk arrived.
    Finished,
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Running,
    Failed(String),
}

/// One source's part of the schedule.
#[derive(Debug, Default)]
struct SourceState {
    /// Chunks this source has yet to fetch.
    share: BTreeSet<usize>,
    alive: bool,
    in_flight: usize,
    /// Bytes of the requests in flight (counted with `with_sizes` only).
    in_flight_bytes: u64,
    /// Fetches given to it so far.
    turns: usize,
}

/// The schedule of one download: `chunks` chunks over `sources` sources.
#[derive(Debug)]
pub struct Scheduler {
    sources: Vec<SourceState>,
    /// How far past the first missing chunk fetches may reach.
    ahead: Option<usize>,
    arrived: Vec<bool>,
    /// The first chunk that has not arrived.
    next: usize,
    phase: Phase,
    /// Why each lost source was lost, in the order they were.
    failures: Vec<String>,
    /// Each chunk's length, when known (`with_sizes`), and the longest.
    sizes: Vec<u64>,
    full: u64,
    /// The file of each chunk.
    file_of: Vec<usize>,
    /// (file, source) pairs: that source is not asked for that file.
    barred: HashSet<(usize, usize)>,
}

impl Scheduler {
    #[cfg(test)]
    pub fn new(chunks: usize, sources: usize, order: Order) -> Self {
        Self::with_rules(vec![0; chunks], sources, order, &[], &[])
    }

    /// A schedule of `file_of.len()` chunks (chunk → its file) where the
    /// `barred` (file, source) pairs are never dealt, and the chunks marked
    /// in `done` (a resume's verified ones) need no fetch.
    pub fn with_rules(
        file_of: Vec<usize>,
        sources: usize,
        order: Order,
        barred: &[(usize, usize)],
        done: &[bool],
    ) -> Self {
        let chunks = file_of.len();
        let mut states: Vec<SourceState> = (0..sources)
            .map(|_| SourceState {
                alive: true,
                ..SourceState::default()
            })
            .collect();
        let barred: HashSet<(usize, usize)> = barred.iter().copied().collect();
        let mut arrived = vec![false; chunks];
        let mut phase = if sources == 0 && chunks > 0 {
            Phase::Failed("no source to fetch from".into())
        } else {
            Phase::Running
        };
        // Round-robin over the chunks still to fetch, each to the next
        // source allowed its file.
        let mut turn = 0;
        for chunk in 0..chunks {
            if done.get(chunk) == Some(&true) {
                arrived[chunk] = true;
                continue;
            }
            let file = file_of[chunk];
            let pick = (0..sources)
                .map(|j| (turn + j) % sources)
                .find(|&s| !barred.contains(&(file, s)));
            turn += 1;
            match pick {
                Some(s) => {
                    states[s].share.insert(chunk);
                }
                None if phase == Phase::Running => {
                    phase = Phase::Failed(format!("no source may serve chunk {chunk}"));
                }
                None => {}
            }
        }
        let mut next = 0;
        while arrived.get(next) == Some(&true) {
            next += 1;
        }
        Self {
            sources: states,
            // The window is set by the sources at the start: one lost later
            // leaves it as it was.
            ahead: (order == Order::Stream).then(|| STREAM_PIECES_PER_SOURCE * sources),
            arrived,
            next,
            phase,
            failures: Vec::new(),
            sizes: Vec::new(),
            full: 0,
            file_of,
            barred,
        }
    }

    /// Lets short chunks run more requests in flight per source: as many as
    /// fit the bytes of its requests of the full chunk size `full`, up to
    /// its part of `MAX_SHORT_IN_FLIGHT`. `sizes` holds each chunk's length in plan
    /// order; without it every chunk counts as full.
    pub fn with_sizes(mut self, sizes: Vec<u64>, full: u64) -> Self {
        self.full = full;
        self.sizes = sizes;
        self
    }

    fn size(&self, chunk: usize) -> u64 {
        self.sizes.get(chunk).copied().unwrap_or(self.full)
    }

    /// A fetch of `chunk` by `source` ended: it no longer counts in flight.
    /// False for a source the schedule does not have.
    fn release(&mut self, source: usize, chunk: usize) -> bool {
        let size = self.size(chunk);
        let Some(s) = self.sources.get_mut(source) else {
            return false;
        };
        s.in_flight = s.in_flight.saturating_sub(1);
        s.in_flight_bytes = s.in_flight_bytes.saturating_sub(size);
        true
    }

    /// Whether a source with these requests in flight may start `next`.
    fn has_room(&self, s: &SourceState, alive: usize, next: usize) -> bool {
        let per_source = streams_per_source(alive);
        if s.in_flight < per_source {
            return true;
        }
        if self.sizes.is_empty() {
            return false;
        }
        let alive = alive.max(1);
        let cap = (MAX_SHORT_IN_FLIGHT / alive).max(per_source);
        let budget = self.full.saturating_mul(per_source as u64);
        s.in_flight < cap && s.in_flight_bytes.saturating_add(self.size(next)) <= budget
    }

    /// Whether `source` may be dealt `chunk`.
    fn allowed(&self, source: usize, chunk: usize) -> bool {
        let file = self.file_of.get(chunk).copied().unwrap_or(0);
        self.sources.get(source).is_some_and(|s| s.alive) && !self.barred.contains(&(file, source))
    }

    /// Deals `orphans` from `from` to the sources allowed each, round-robin
    /// from the first on; fails the schedule when a chunk has none.
    fn redeal(&mut self, orphans: BTreeSet<usize>, from: usize) -> Vec<Retry> {
        let n = self.sources.len();
        let mut cursor = 0;
        let mut out = Vec::new();
        for chunk in orphans {
            let Some(to) = (0..n)
                .map(|j| (cursor + j) % n)
                .find(|&to| self.allowed(to, chunk))
            else {
                self.phase = Phase::Failed(format!(
                    "every source failed or was barred ({})",
                    self.failures.join("; ")
                ));
                return Vec::new();
            };
            cursor = to + 1;
            self.sources[to].share.insert(chunk);
            out.push(Retry { chunk, from, to });
        }
        out
    }

    /// `chunk` from `source` did not verify (`reason`): `source` is barred
    /// from the chunk's file, and the chunk and the rest of the source's
    /// share of that file go to the sources still allowed it. The source
    /// keeps its other files.
    pub fn chunk_bad(&mut self, source: usize, chunk: usize, reason: String) -> Rescheduled {
        let mut out = Rescheduled {
            source_lost: false,
            retries: Vec::new(),
        };
        if !self.release(source, chunk) || self.phase != Phase::Running {
            return out;
        }
        let s = &mut self.sources[source];
        let file = self.file_of.get(chunk).copied().unwrap_or(0);
        self.barred.insert((file, source));
        self.failures.push(reason);
        let file_of = &self.file_of;
        let mut orphans: BTreeSet<usize> = s
            .share
            .iter()
            .copied()
            .filter(|c| file_of.get(*c) == Some(&file))
            .collect();
        s.share.retain(|c| !orphans.contains(c));
        orphans.insert(chunk);
        out.retries = self.redeal(orphans, source);
        out
    }

    /// `chunk` stalled at `source`: no byte came for the stall timeout while
    /// the connection lived (the driver's clock decides that; see
    /// `fetch::STALL_TIMEOUT`). The source is excluded from that chunk and,
    /// since a source that stops mid-chunk with its connection alive is
    /// broken or lying and each of its chunks would cost another timeout,
    /// from the rest of the download too: like a lost source, its chunk and
    /// its share move to the survivors (the stalled chunk first, to the
    /// first survivor). With none left the download fails. Its other
    /// requests in flight end on their own (each stalls too, or finishes).
    pub fn chunk_stalled(&mut self, source: usize, chunk: usize, reason: String) -> Rescheduled {
        self.chunk_failed(source, chunk, format!("stalled: {reason}"))
    }

    /// The next thing to do. Call it until it answers `Wait`, then report
    /// a fetch's end and call it again.
    pub fn poll(&mut self) -> Step {
        match &self.phase {
            Phase::Running => {}
            Phase::Failed(reason) => return Step::Failed(reason.clone()),
        }
        // Survivors of a lost source take over its share of the requests.
        let alive = self.sources.iter().filter(|s| s.alive).count();
        let limit = self
            .ahead
            .map_or(usize::MAX, |ahead| self.next.saturating_add(ahead));
        for source in 0..self.sources.len() {
            let s = &self.sources[source];
            if !s.alive {
                continue;
            }
            match s.share.first() {
                Some(&chunk) if chunk < limit && self.has_room(s, alive, chunk) => {
                    let size = self.size(chunk);
                    let s = &mut self.sources[source];
                    s.share.remove(&chunk);
                    s.in_flight += 1;
                    s.in_flight_bytes += size;
                    s.turns += 1;
                    return Step::Fetch(Fetch {
                        source,
                        chunk,
                        turn: s.turns - 1,
                    });
                }
                _ => {}
            }
        }
        if self.sources.iter().any(|s| s.in_flight > 0) {
            return Step::Wait;
        }
        let total = self.arrived.len();
        match (self.next == total, self.ahead) {
            (true, _) => Step::Finished,
            // Unreachable while the rules above hold; a stall must fail the
            // download, never commit it with a chunk missing.
            (false, Some(_)) => {
                Step::Failed(format!("stream stopped at piece {} of {total}", self.next))
            }
            (false, None) => Step::Failed(format!(
                "download stopped with {} of {total} chunks fetched",
                self.arrived.iter().filter(|a| **a).count()
            )),
        }
    }

    /// `chunk` arrived from `source`. Returns the chunks that now follow,
    /// in order, everything before them (what a stream feeds on).
    pub fn chunk_done(&mut self, source: usize, chunk: usize) -> Range<usize> {
        self.release(source, chunk);
        if let Some(a) = self.arrived.get_mut(chunk) {
            *a = true;
        }
        let from = self.next;
        while self.arrived.get(self.next) == Some(&true) {
            self.next += 1;
        }
        from..self.next
    }

    /// `chunk` failed at `source` for `reason`: the source is lost, and the
    /// chunk goes to a survivor together with the rest of the source's share.
    /// Once the schedule has stopped, a failure changes nothing.
    pub fn chunk_failed(&mut self, source: usize, chunk: usize, reason: String) -> Rescheduled {
        let mut out = Rescheduled {
            source_lost: false,
            retries: Vec::new(),
        };
        if !self.release(source, chunk) || self.phase != Phase::Running {
            return out;
        }
        let s = &mut self.sources[source];
        if s.alive {
            s.alive = false;
            out.source_lost = true;
            self.failures.push(reason);
        }
        let mut orphans = std::mem::take(&mut s.share);
        orphans.insert(chunk);
        if !self.sources.iter().any(|s| s.alive) {
            self.phase = Phase::Failed(format!(
                "every source failed ({})",
                self.failures.join("; ")
            ));
            return out;
        }
        // Dealt from the first survivor on, for each failure anew.
        out.retries = self.redeal(orphans, source);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetch(source: usize, chunk: usize, turn: usize) -> Step {
        Step::Fetch(Fetch {
            source,
            chunk,
            turn,
        })
    }

    /// Polls until the schedule waits (or ends), collecting what it said.
    fn drain(s: &mut Scheduler) -> Vec<Step> {
        let mut out = Vec::new();
        loop {
            let step = s.poll();
            let more = matches!(step, Step::Fetch(_));
            out.push(step);
            if !more {
                return out;
            }
        }
    }

    fn retry(chunk: usize, from: usize, to: usize) -> Retry {
        Retry { chunk, from, to }
    }

    #[test]
    fn requests_in_flight_are_shared_by_the_sources() {
        assert_eq!(streams_per_source(1), 4);
        assert_eq!(streams_per_source(2), 2);
        assert_eq!(streams_per_source(3), 2);
        assert_eq!(streams_per_source(8), 2);
        assert_eq!(streams_per_source(0), 4);
    }

    #[test]
    fn chunks_are_dealt_round_robin_and_fetched_lowest_first() {
        let mut s = Scheduler::new(7, 2, Order::Any);
        // Two sources: two requests each; source 0 has 0, 2, 4, 6.
        assert_eq!(
            drain(&mut s),
            [
                fetch(0, 0, 0),
                fetch(0, 2, 1),
                fetch(1, 1, 0),
                fetch(1, 3, 1),
                Step::Wait
            ]
        );
        assert_eq!(s.chunk_done(1, 3), 0..0, "chunk 0 is still missing");
        assert_eq!(drain(&mut s), [fetch(1, 5, 2), Step::Wait]);
        assert_eq!(s.chunk_done(0, 0), 0..1);
        assert_eq!(drain(&mut s), [fetch(0, 4, 2), Step::Wait]);
        for (source, chunk) in [(0, 2), (1, 1), (0, 4), (1, 5)] {
            s.chunk_done(source, chunk);
        }
        assert_eq!(drain(&mut s), [fetch(0, 6, 3), Step::Wait]);
        assert_eq!(s.chunk_done(0, 6), 6..7);
        assert_eq!(s.poll(), Step::Finished);
    }

    #[test]
    fn one_source_has_four_requests_in_flight() {
        let mut s = Scheduler::new(6, 1, Order::Any);
        assert_eq!(
            drain(&mut s),
            [
                fetch(0, 0, 0),
                fetch(0, 1, 1),
                fetch(0, 2, 2),
                fetch(0, 3, 3),
                Step::Wait
            ]
        );
    }

    #[test]
    fn short_chunks_run_more_requests_within_the_bytes_of_full_ones() {
        // One source, full chunks of 100 bytes: four full ones in flight
        // hold 400 bytes, so 10-byte chunks may run up to 40 at once...
        let mut sizes = vec![100];
        sizes.extend(std::iter::repeat_n(10, 99));
        let mut s = Scheduler::new(100, 1, Order::Any).with_sizes(sizes, 100);
        let first = drain(&mut s);
        // 100 + 30 × 10 = 400: chunk 0 and 30 short ones, then the budget.
        assert_eq!(first.len(), 31 + 1, "{first:?}");
        assert_eq!(first[0], fetch(0, 0, 0));
        assert_eq!(first[30], fetch(0, 30, 30));
        assert_eq!(first[31], Step::Wait);
        // ...and an ending one frees its bytes for the next.
        s.chunk_done(0, 0);
        let next = drain(&mut s);
        assert_eq!(next.len(), 10 + 1, "100 freed bytes, ten 10-byte chunks");
        // A failure frees its bytes too (the only source: the download fails).
        s.chunk_failed(0, 31, "gone".into());
        assert!(matches!(s.poll(), Step::Failed(_)));

        // However short the chunks, at most MAX_SHORT_IN_FLIGHT at once...
        let mut s = Scheduler::new(500, 1, Order::Any).with_sizes(vec![1; 500], 1_000_000);
        assert_eq!(drain(&mut s).len(), MAX_SHORT_IN_FLIGHT + 1);
        // ...shared by the sources: four get 48 each.
        let mut s = Scheduler::new(500, 4, Order::Any).with_sizes(vec![1; 500], 1_000_000);
        assert_eq!(drain(&mut s).len(), MAX_SHORT_IN_FLIGHT + 1);

        // Chunks all of full size keep the plain count.
        let mut s = Scheduler::new(10, 1, Order::Any).with_sizes(vec![100; 10], 100);
        assert_eq!(drain(&mut s).len(), 4 + 1);
        // Two sources: two full requests each, so 20 short ones each (under
        // their 96 of MAX_SHORT_IN_FLIGHT).
        let mut s = Scheduler::new(100, 2, Order::Any).with_sizes(vec![10; 100], 100);
        assert_eq!(drain(&mut s).len(), 2 * 20 + 1);
    }

    #[test]
    fn a_failed_chunk_is_retried_on_a_survivor() {
        let mut s = Scheduler::new(6, 2, Order::Any);
        drain(&mut s); // 0: 0, 2 in flight; 1: 1, 3 in flight, 5 queued
        let r = s.chunk_failed(1, 3, "B: reset".into());
        assert_eq!(
            r,
            Rescheduled {
                source_lost: true,
                retries: vec![retry(3, 1, 0), retry(5, 1, 0)]
            }
        );
        // The survivor alone may now have four in flight: 3 and 4 join.
        assert_eq!(drain(&mut s), [fetch(0, 3, 2), fetch(0, 4, 3), Step::Wait]);
        // The lost source's other request fails too: only that chunk moves,
        // and the source is not lost twice.
        let r = s.chunk_failed(1, 1, "B: reset again".into());
        assert_eq!(
            r,
            Rescheduled {
                source_lost: false,
                retries: vec![retry(1, 1, 0)]
            }
        );
        for c in [0, 2, 3, 4] {
            s.chunk_done(0, c);
        }
        assert_eq!(drain(&mut s), [fetch(0, 1, 4), fetch(0, 5, 5), Step::Wait]);
        assert_eq!(s.chunk_done(0, 5), 1..1, "chunk 1 is still missing");
        assert_eq!(s.chunk_done(0, 1), 1..6);
        assert_eq!(s.poll(), Step::Finished);
    }

    #[test]
    fn survivors_share_a_lost_source_round_robin() {
        let mut s = Scheduler::new(9, 3, Order::Any);
        // Shares: 0: 0 3 6, 1: 1 4 7, 2: 2 5 8; two requests each.
        assert_eq!(
            drain(&mut s),
            [
                fetch(0, 0, 0),
                fetch(0, 3, 1),
                fetch(1, 1, 0),
                fetch(1, 4, 1),
                fetch(2, 2, 0),
                fetch(2, 5, 1),
                Step::Wait
            ]
        );
        let r = s.chunk_failed(1, 4, "B: gone".into());
        assert_eq!(r.retries, [retry(4, 1, 0), retry(7, 1, 2)]);
        // Two survivors: still two requests each, so nothing starts yet.
        assert_eq!(s.poll(), Step::Wait);
        // A chunk the lost source still delivers counts.
        assert_eq!(s.chunk_done(1, 1), 0..0);
        assert_eq!(s.chunk_done(0, 0), 0..2);
        assert_eq!(drain(&mut s), [fetch(0, 4, 2), Step::Wait]);
        s.chunk_done(2, 2);
        assert_eq!(drain(&mut s), [fetch(2, 7, 2), Step::Wait]);
    }

    #[test]
    fn losing_every_source_fails_the_download() {
        let mut s = Scheduler::new(4, 2, Order::Any);
        drain(&mut s);
        assert!(s.chunk_failed(0, 0, "A: refused".into()).source_lost);
        let r = s.chunk_failed(1, 1, "B: reset".into());
        assert_eq!(
            r,
            Rescheduled {
                source_lost: true,
                retries: vec![]
            }
        );
        let failed = Step::Failed("every source failed (A: refused; B: reset)".into());
        assert_eq!(s.poll(), failed);
        // Late answers change nothing.
        s.chunk_done(0, 2);
        s.chunk_failed(1, 3, "B: later".into());
        assert_eq!(s.poll(), failed);
    }

    #[test]
    fn a_stream_fetches_at_most_its_window_ahead() {
        // One source: a window of four pieces past the first missing one.
        let mut s = Scheduler::new(10, 1, Order::Stream);
        assert_eq!(
            drain(&mut s),
            [
                fetch(0, 0, 0),
                fetch(0, 1, 1),
                fetch(0, 2, 2),
                fetch(0, 3, 3),
                Step::Wait
            ]
        );
        assert_eq!(s.chunk_done(0, 1), 0..0);
        assert_eq!(s.poll(), Step::Wait, "piece 0 is missing, 4 is too far");
        assert_eq!(s.chunk_done(0, 0), 0..2);
        assert_eq!(drain(&mut s), [fetch(0, 4, 4), fetch(0, 5, 5), Step::Wait]);
        // Without a stream nothing holds a source back but its requests.
        let mut s = Scheduler::new(10, 1, Order::Any);
        drain(&mut s);
        s.chunk_done(0, 1);
        assert_eq!(drain(&mut s), [fetch(0, 4, 4), Step::Wait]);
    }

    #[test]
    fn barred_sources_are_never_dealt_their_files() {
        // Chunks 0-3 of file 0, 4-5 of file 1; source 1 is barred from file 0.
        let mut s = Scheduler::with_rules(vec![0, 0, 0, 0, 1, 1], 2, Order::Any, &[(0, 1)], &[]);
        let mut dealt = Vec::new();
        loop {
            match s.poll() {
                Step::Fetch(f) => {
                    dealt.push((f.source, f.chunk));
                    s.chunk_done(f.source, f.chunk);
                }
                Step::Finished => break,
                other => panic!("{other:?}"),
            }
        }
        assert!(
            dealt.iter().all(|&(src, c)| src == 0 || c >= 4),
            "{dealt:?}"
        );
        assert!(dealt.contains(&(1, 5)), "{dealt:?}");
        // Barred from a file with no other source: fails at once.
        let mut s = Scheduler::with_rules(vec![0, 1], 1, Order::Any, &[(1, 0)], &[]);
        assert_eq!(s.poll(), Step::Failed("no source may serve chunk 1".into()));
    }

    #[test]
    fn a_bad_chunk_bars_its_source_from_that_file_only() {
        // Two sources; chunks 0-3 of file 0, 4-5 of file 1.
        let mut s = Scheduler::with_rules(vec![0, 0, 0, 0, 1, 1], 2, Order::Any, &[], &[]);
        // 0: 0, 2 in flight (4 queued); 1: 1, 3 in flight (5 queued).
        drain(&mut s);
        let r = s.chunk_bad(1, 1, "B: bad bytes".into());
        // Chunk 1 and B's queued share of file 0 (3 is in flight) go to A.
        assert_eq!(r.retries, [retry(1, 1, 0)]);
        assert!(!r.source_lost);
        // B still fetches file 1 (chunk 5).
        assert_eq!(drain(&mut s), [fetch(1, 5, 2), Step::Wait]);
        // B's other in-flight chunk of file 0 fails too: to A again.
        assert_eq!(s.chunk_bad(1, 3, "B: bad".into()).retries, [retry(3, 1, 0)]);
        // A also sends a bad chunk of file 0: nobody is left for it.
        let r = s.chunk_bad(0, 0, "A: bad bytes".into());
        assert!(r.retries.is_empty());
        match s.poll() {
            Step::Failed(reason) => assert!(reason.contains("A: bad bytes"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_stalled_chunk_moves_with_its_source_share() {
        // Three sources, shares 0: 0 3 6, 1: 1 4 7, 2: 2 5 8.
        let mut s = Scheduler::new(9, 3, Order::Any);
        drain(&mut s);
        // Source 1 stalls on chunk 4: 4 and its queued 7 move, and it is
        // given nothing more.
        let r = s.chunk_stalled(1, 4, "no byte for 5s".into());
        assert!(r.source_lost);
        assert_eq!(r.retries, [retry(4, 1, 0), retry(7, 1, 2)]);
        // Its other request in flight stalls too: to the first survivor.
        let r = s.chunk_stalled(1, 1, "no byte for 5s".into());
        assert!(!r.source_lost);
        assert_eq!(r.retries, [retry(1, 1, 0)]);
        let mut dealt = Vec::new();
        for c in [0, 3, 2, 5] {
            s.chunk_done(if c % 3 == 2 { 2 } else { 0 }, c);
        }
        loop {
            match s.poll() {
                Step::Fetch(f) => {
                    dealt.push((f.source, f.chunk));
                    s.chunk_done(f.source, f.chunk);
                }
                Step::Finished => break,
                other => panic!("{other:?} after {dealt:?}"),
            }
        }
        assert!(dealt.iter().all(|&(src, _)| src != 1), "{dealt:?}");
        let mut got: Vec<usize> = dealt.iter().map(|&(_, c)| c).collect();
        got.sort();
        assert_eq!(got, [1, 4, 6, 7, 8]);
    }

    #[test]
    fn a_sole_source_that_stalls_fails_the_download() {
        let mut s = Scheduler::new(3, 1, Order::Any);
        drain(&mut s);
        let r = s.chunk_stalled(0, 1, "no byte for 5s after 4 of 8 bytes".into());
        assert!(r.source_lost && r.retries.is_empty());
        match s.poll() {
            Step::Failed(reason) => assert!(
                reason.contains("stalled: no byte for 5s after 4 of 8 bytes"),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn resumed_chunks_are_done_from_the_start() {
        let done = [true, false, true, true];
        let mut s = Scheduler::with_rules(vec![0; 4], 2, Order::Any, &[], &done);
        assert_eq!(drain(&mut s), [fetch(0, 1, 0), Step::Wait]);
        assert_eq!(s.chunk_done(0, 1), 1..4);
        assert_eq!(s.poll(), Step::Finished);
        // Everything reused: finished without a fetch.
        let mut s = Scheduler::with_rules(vec![0; 2], 1, Order::Any, &[], &[true, true]);
        assert_eq!(s.poll(), Step::Finished);
    }
}
