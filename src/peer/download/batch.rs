//! Which fetches travel together: short chunks (small files, mostly) that
//! the schedule deals to one source go out as one `chunks` request instead
//! of a request each, so a game of 100,000 small files does not pay a
//! stream, a request frame and an answer head per file. A pure policy like
//! the schedule: the driver adds the fetches `Scheduler::poll` gives it and
//! starts the batches this hands back.

use super::schedule::Fetch;
use std::collections::BTreeMap;

/// Chunks up to this long are batched; longer ones go alone, as a batch
/// would only delay their first byte.
pub const BATCH_CHUNK_MAX: u64 = 256 << 10;
/// A batch is sent once it holds this many chunks...
pub const BATCH_PARTS: usize = 64;
/// ...or this many bytes.
pub const BATCH_BYTES: u64 = 1 << 20;

const _: () = assert!(BATCH_PARTS <= crate::protocol::wire::MAX_BATCH_PARTS);

/// The batches being filled, one per source.
#[derive(Debug, Default)]
pub struct Batcher {
    open: BTreeMap<usize, (Vec<Fetch>, u64)>,
}

impl Batcher {
    /// Takes `fetch` of a chunk of `len` bytes; returns the requests to start
    /// now: the fetch alone when it is long, its source's batch when that is
    /// full, or nothing while the batch fills.
    pub fn add(&mut self, fetch: Fetch, len: u64) -> Option<Vec<Fetch>> {
        if len > BATCH_CHUNK_MAX {
            return Some(vec![fetch]);
        }
        let (fetches, bytes) = self.open.entry(fetch.source).or_default();
        fetches.push(fetch);
        *bytes += len;
        if fetches.len() >= BATCH_PARTS || *bytes >= BATCH_BYTES {
            return self.open.remove(&fetch.source).map(|(f, _)| f);
        }
        None
    }

    /// Every batch still filling, in source order: the schedule has nothing
    /// more to deal until a fetch ends.
    pub fn flush(&mut self) -> Vec<Vec<Fetch>> {
        std::mem::take(&mut self.open)
            .into_values()
            .map(|(f, _)| f)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetch(source: usize, chunk: usize) -> Fetch {
        Fetch {
            source,
            chunk,
            turn: chunk,
        }
    }

    #[test]
    fn long_chunks_go_alone_and_short_ones_wait_for_a_full_batch() {
        let mut b = Batcher::default();
        assert_eq!(
            b.add(fetch(0, 0), BATCH_CHUNK_MAX + 1),
            Some(vec![fetch(0, 0)])
        );
        for c in 1..BATCH_PARTS {
            assert_eq!(b.add(fetch(0, c), 4096), None, "chunk {c}");
        }
        let full = b.add(fetch(0, BATCH_PARTS), 4096);
        let chunks: Vec<usize> = full.unwrap_or_default().iter().map(|f| f.chunk).collect();
        assert_eq!(chunks, (1..=BATCH_PARTS).collect::<Vec<_>>());
        assert!(b.flush().is_empty(), "a sent batch is not sent again");
    }

    #[test]
    fn a_batch_is_sent_at_its_byte_bound_and_sources_fill_their_own() {
        let mut b = Batcher::default();
        assert_eq!(b.add(fetch(0, 0), BATCH_CHUNK_MAX), None);
        assert_eq!(b.add(fetch(1, 1), 10), None);
        assert_eq!(b.add(fetch(0, 2), BATCH_CHUNK_MAX), None);
        assert_eq!(b.add(fetch(0, 3), BATCH_CHUNK_MAX), None);
        let sent = b.add(fetch(0, 4), BATCH_CHUNK_MAX).unwrap_or_default();
        assert_eq!(sent.len(), 4, "{} bytes fill a batch", BATCH_BYTES);
        assert_eq!(b.add(fetch(0, 5), 0), None);
        // What is left goes out at the flush, one request per source.
        let rest = b.flush();
        assert_eq!(rest, vec![vec![fetch(0, 5)], vec![fetch(1, 1)]]);
        assert!(b.flush().is_empty());
    }
}
