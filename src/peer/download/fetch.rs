//! The I/O of fetching: file lists from the sources, the connections chunks
//! travel on, one chunk request and its answer, and the write buffers.

use super::plan::Chunk;
use super::schedule::STREAMS_IN_FLIGHT;
use super::target_file::{AlignedBlock, TargetFile};
use crate::peer::mesh::RemotePeer;
use crate::protocol::digest;
use crate::protocol::transport::Identity;
use crate::protocol::wire::{self, FileDesc, Request, Response};
use crate::sync::lock;
use anyhow::{Context, Result, anyhow, bail};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// Bytes collected per chunk stream before one positioned write, writing
/// around the page cache: each write is one disk request (a virtio kick and
/// a wake-up of the writing task), so fewer, larger ones cost the receiver
/// less CPU (back-to-back 2 GiB benches: 1.87 / 1.57 s against 2.77 / 2.20 s
/// with 256 KiB). With at most `STREAMS_IN_FLIGHT` streams at once, the
/// blocks in use stay at 4 MiB per download.
///
/// It is also the digest block (`digest::BLOCK`): a block-aligned chunk is
/// verified one write buffer at a time, before the buffer is written.
const DIRECT_WRITE_BLOCK: usize = digest::BLOCK as usize;
/// The same through the page cache (`--buffered-writes`). Before block
/// digests this was 256 KiB, as 1 MiB blocks cost more CPU there (1 GiB
/// benches: 2.08 / 2.28 s against 1.67 / 1.56 s); a buffer now holds a
/// whole digest block, so that it is verified before any of it is written.
const BUFFERED_WRITE_BLOCK: usize = digest::BLOCK as usize;
/// How long one source may take to send its whole file list. A source with
/// a cold digest cache hashes the game before it answers: S5's 4 GiB took
/// over 10 s (the old bound) with two scenarios at once on 2 cores. Hung
/// sources among others are cut short by the grace (`LIST_GRACE_MIN`) anyway;
/// this bound only decides how long a sole one is waited for.
const FILE_LIST_TIMEOUT: Duration = Duration::from_secs(60);

/// How long, at least, the file lists wait for the other sources once the
/// first list is in. A source that has not answered by then is silent (a
/// SIGKILLed peer is only noticed at the 4 s idle timeout) and is left out.
const LIST_GRACE_MIN: Duration = Duration::from_millis(500);

/// How long a chunk request may go without a byte (its answer's header, a
/// piece of its bytes, or the end of its stream) while the connection is
/// alive: a source that stops mid-chunk but keeps the connection open (its
/// keep-alives go on, so the 4 s idle timeout never comes) is then
/// `source-stalled`, and the schedule moves the chunk (`chunk_stalled`).
/// Longer than any wait an honest source makes on a loaded machine (a cold
/// block read, a full send window), short enough that a stalled chunk
/// moves within seconds.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What the file-list round found.
pub struct FileLists {
    /// The sources that sent a list at the version, in address order (a
    /// deterministic source order keeps the chunk split reproducible).
    pub live: Vec<RemotePeer>,
    /// Their lists, in the same order.
    pub lists: Vec<(String, Vec<FileDesc>)>,
    /// Sources still silent when the grace ran out, with how long each was
    /// waited for.
    pub silent: Vec<(RemotePeer, Duration)>,
    /// Sources left out for their answer, with why: a refusal, another
    /// version, a failed or malformed answer, or a list that breaks the
    /// rules on its own (`plan::check_list`: paths leaving the root, sizes
    /// its digests do not cover).
    pub failed: Vec<(RemotePeer, String)>,
}

/// Asks every source for its file list at once. The download need not wait
/// for the slowest: once all sources answered, or once a grace of
/// `max(LIST_GRACE_MIN, time to the first list)` passed after the first list
/// at `version`, the round ends and the sources yet to answer are silent,
/// treated like failed ones. A list that breaks the rules on its own
/// (`plan::check_list`) leaves its source out, like a refusal; `live` is
/// empty when no source sent a good list.
pub async fn file_lists(sources: &[RemotePeer], game_id: &str, version: &str) -> Result<FileLists> {
    let started = tokio::time::Instant::now();
    let mut asks = JoinSet::new();
    let mut pending: Vec<RemotePeer> = sources.to_vec();
    for s in sources.iter().cloned() {
        let game_id = game_id.to_string();
        asks.spawn(async move {
            let r = tokio::time::timeout(FILE_LIST_TIMEOUT, request_files(&s, &game_id)).await;
            (
                s,
                r.unwrap_or_else(|_| Err(anyhow!("no file list within {FILE_LIST_TIMEOUT:?}"))),
            )
        });
    }
    let mut lists = Vec::new();
    let mut live = Vec::new();
    let mut failed = Vec::new();
    let mut grace_end = None;
    loop {
        let joined = match grace_end {
            None => asks.join_next().await,
            Some(end) => match tokio::time::timeout_at(end, asks.join_next()).await {
                Ok(joined) => joined,
                Err(_) => break,
            },
        };
        let Some(joined) = joined else { break };
        let (source, result) = joined.context("file-list task failed")?;
        pending.retain(|p| p.addr != source.addr);
        // Checked on arrival, source by source: a hostile list is that
        // source's failure, not a conflict that fails the download.
        let result = result.and_then(|(v, files)| {
            super::plan::check_list(&files)?;
            Ok((v, files))
        });
        match result {
            Ok((v, files)) if v == version => {
                lists.push((source.addr.clone(), files));
                live.push(source);
                if grace_end.is_none() {
                    grace_end =
                        Some(tokio::time::Instant::now() + LIST_GRACE_MIN.max(started.elapsed()));
                }
            }
            Ok((v, _)) => failed.push((source, format!("now at version {v}"))),
            Err(e) => failed.push((source, format!("{e:#}"))),
        }
    }
    // Dropping `asks` aborts the silent sources' requests.
    let waited = started.elapsed();
    let silent: Vec<(RemotePeer, Duration)> = pending.into_iter().map(|p| (p, waited)).collect();
    lists.sort_by(|a, b| a.0.cmp(&b.0));
    // The order chunks are dealt in (docs/PROTOCOL.md): by listener
    // address as a number, not by which file list came first.
    live.sort_by(|a, b| crate::peer::mesh::address_order(&a.addr, &b.addr));
    Ok(FileLists {
        live,
        lists,
        silent,
        failed,
    })
}

async fn request_files(source: &RemotePeer, game_id: &str) -> Result<(String, Vec<FileDesc>)> {
    let (mut send, mut recv) = source.conn.open_bi().await?;
    wire::write_frame(
        &mut send,
        &Request::GameFiles {
            game_id: game_id.to_string(),
        },
    )
    .await?;
    send.finish()?;
    // Pages until `more` is false, within the list bounds, so a hostile
    // source cannot make this buffer without limit.
    let mut files = Vec::new();
    let mut list_version: Option<String> = None;
    let mut bytes = 0usize;
    loop {
        let page = wire::read_response(&mut recv).await?.context("no answer")?;
        let (version, page, more) = match page {
            Response::GameFiles {
                game_id: g,
                version,
                files,
                more,
            } if g == game_id => (version, files, more),
            Response::Denied { reason } => bail!("refused: {reason}"),
            other => bail!("unexpected answer {other:?}"),
        };
        match &list_version {
            Some(v) if *v != version => {
                bail!("file list changed version from {v} to {version} between pages")
            }
            Some(_) => {}
            None => list_version = Some(version),
        }
        // Each page counts too, so endless empty pages end as well.
        bytes += 64
            + page
                .iter()
                .map(|f| f.path.len() + 32 + f.blocks.len() * (2 * digest::DIGEST_BYTES + 3))
                .sum::<usize>();
        files.extend(page);
        if files.len() > wire::MAX_LIST_FILES || bytes > wire::MAX_LIST_BYTES {
            bail!(
                "file list longer than {} files or {} MiB",
                wire::MAX_LIST_FILES,
                wire::MAX_LIST_BYTES >> 20
            );
        }
        if !more {
            break;
        }
    }
    Ok((list_version.unwrap_or_default(), files))
}

/// The connections each source's chunks alternate between: its mesh
/// connection and one bulk connection (see `transport::ALPN_BULK`); without one,
/// the mesh connection carries them all.
pub async fn connections(
    endpoint: &quinn::Endpoint,
    identity: &Identity,
    live: &[RemotePeer],
) -> Result<Vec<Vec<quinn::Connection>>> {
    let mut bulk: Vec<Option<quinn::Connection>> = vec![None; live.len()];
    match crate::protocol::transport::client_config(crate::protocol::transport::ALPN_BULK, identity)
    {
        Ok(config) => {
            // Opened side by side: each may wait up to 3 s for a slow source.
            let mut opening = JoinSet::new();
            for (i, s) in live.iter().enumerate() {
                let open = open_bulk(endpoint.clone(), config.clone(), s.addr.clone());
                opening.spawn(async move { (i, open.await) });
            }
            while let Some(joined) = opening.join_next().await {
                let (i, conn) = joined.context("bulk connection task failed")?;
                bulk[i] = conn;
            }
        }
        Err(e) => tracing::info!("no bulk connections, using the mesh connections only: {e:#}"),
    }
    Ok(live
        .iter()
        .zip(bulk)
        .map(|(source, bulk)| std::iter::once(source.conn.clone()).chain(bulk).collect())
        .collect())
}

/// Opens a chunk-requests-only connection to a source; `None` (and the
/// mesh connection alone) when that does not work.
async fn open_bulk(
    endpoint: quinn::Endpoint,
    config: quinn::ClientConfig,
    addr: String,
) -> Option<quinn::Connection> {
    let target: std::net::SocketAddr = addr.parse().ok()?;
    let connecting = endpoint
        .connect_with(config, target, crate::protocol::transport::SERVER_NAME)
        .ok()?;
    match tokio::time::timeout(Duration::from_secs(3), connecting).await {
        Ok(Ok(conn)) => Some(conn),
        other => {
            tracing::info!(%addr, "no bulk connection, using the mesh connection only: {other:?}");
            None
        }
    }
}

/// Where a chunk failed: at the source (retry elsewhere), in its bytes
/// (they did not verify: bar the source from the file, retry elsewhere), or
/// here (give up).
pub enum ChunkError {
    Source(anyhow::Error),
    Bad(anyhow::Error),
    /// No byte for `STALL_TIMEOUT` on a live connection.
    Stalled(anyhow::Error),
    Local(anyhow::Error),
}

impl ChunkError {
    /// The same failure for another part of the same request (a request
    /// that fails as a whole fails each of its parts).
    fn again(&self) -> Self {
        match self {
            Self::Source(e) => Self::Source(anyhow!("{e:#}")),
            Self::Bad(e) => Self::Bad(anyhow!("{e:#}")),
            Self::Stalled(e) => Self::Stalled(anyhow!("{e:#}")),
            Self::Local(e) => Self::Local(anyhow!("{e:#}")),
        }
    }
}

/// How far past `STALL_TIMEOUT` a stall may be declared (see `StallClock`).
const STALL_SLACK: Duration = Duration::from_millis(250);

/// The stall timer of one chunk request: a wait for its header, its bytes
/// or its end fails with `ChunkError::Stalled` once nothing came for
/// `STALL_TIMEOUT`. One timer per request, moved on at most once per
/// `STALL_SLACK` of progress: arming a timer anew for every piece (a
/// datagram's worth on a LAN) would add a timer-wheel update per packet.
/// So a stall is declared between `STALL_TIMEOUT` and `STALL_TIMEOUT +
/// STALL_SLACK` after the last byte.
struct StallClock {
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    armed: tokio::time::Instant,
}

impl StallClock {
    fn new() -> Self {
        let now = tokio::time::Instant::now();
        Self {
            deadline: Box::pin(tokio::time::sleep_until(now + STALL_TIMEOUT + STALL_SLACK)),
            armed: now,
        }
    }

    /// `wait`, unless it stalls; `what` says what was awaited.
    async fn wait<T>(
        &mut self,
        what: impl FnOnce() -> String,
        wait: impl std::future::Future<Output = Result<T, ChunkError>>,
    ) -> Result<T, ChunkError> {
        let now = tokio::time::Instant::now();
        if now - self.armed >= STALL_SLACK {
            self.deadline
                .as_mut()
                .reset(now + STALL_TIMEOUT + STALL_SLACK);
            self.armed = now;
        }
        tokio::select! {
            biased;
            r = wait => r,
            () = &mut self.deadline => Err(ChunkError::Stalled(anyhow!(
                "no byte for {STALL_TIMEOUT:?} {}",
                what()
            ))),
        }
    }
}

/// Write buffers reused across the chunks of one download, so a long
/// download allocates a handful of blocks instead of one per chunk.
pub struct BufferPool {
    block: usize,
    free: std::sync::Mutex<Vec<AlignedBlock>>,
}

impl BufferPool {
    /// A pool of blocks sized for direct writes or for writes through the
    /// page cache.
    pub fn for_writes(direct: bool) -> Self {
        Self {
            block: if direct {
                DIRECT_WRITE_BLOCK
            } else {
                BUFFERED_WRITE_BLOCK
            },
            free: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// An empty buffer of `len` bytes, or of one block if `len` is longer.
    fn take(&self, len: usize) -> AlignedBlock {
        if len < self.block {
            // Short chunks (small files, a file's tail) need no full block.
            return AlignedBlock::new(len);
        }
        lock(&self.free)
            .pop()
            .unwrap_or_else(|| AlignedBlock::new(self.block))
    }

    fn give(&self, mut buf: AlignedBlock) {
        let mut free = lock(&self.free);
        if buf.capacity() == self.block && free.len() < 2 * STREAMS_IN_FLIGHT {
            buf.clear();
            free.push(buf);
        }
    }
}

/// Where a fetched chunk goes: written at its offset, or kept in memory for
/// a stream (`StreamSink`).
pub enum Dest {
    File(Arc<TargetFile>),
    Memory,
}

/// One chunk of a request (`fetch_parts`) and where its bytes go.
pub struct PartFetch {
    pub chunk: Chunk,
    pub dest: Dest,
}

/// The outcome of a request none of whose `n` parts could be fetched:
/// `first` for the first part, and a reference to it for the others.
pub fn all_failed(n: usize, first: ChunkError) -> Vec<Result<Option<Vec<u8>>, ChunkError>> {
    let rest = first.again();
    std::iter::once(first)
        .chain(std::iter::repeat_with(|| rest.again()))
        .take(n)
        .map(Err)
        .collect()
}

/// Fetches `parts` in one request from `conn` (a `chunk` request for one,
/// `chunks` for more) and verifies each against its file's agreed
/// descriptor in `files` (digests included); returns, per part in order, its
/// bytes when its `dest` is `Memory`. Each part covers its chunk widened to
/// whole digest blocks (`Chunk::request_range`); each block is checked
/// against its digest as soon as it is in, and only then is the chunk's
/// part of it written (or kept). So a block that does not verify is never
/// written, and a chunk counts as done only when every byte of it verified.
/// A part that does not verify leaves the others of its request to verify
/// on their own; a stream that breaks fails the parts not yet in.
pub async fn fetch_parts(
    conn: &quinn::Connection,
    game_id: &str,
    files: &[FileDesc],
    parts: &[PartFetch],
    pool: &BufferPool,
) -> Vec<Result<Option<Vec<u8>>, ChunkError>> {
    let Some(descs) = parts
        .iter()
        .map(|p| files.get(p.chunk.file))
        .collect::<Option<Vec<&FileDesc>>>()
    else {
        return parts
            .iter()
            .map(|_| Err(ChunkError::Local(anyhow!("a chunk of an unplanned file"))))
            .collect();
    };
    let ranges: Vec<(u64, u64)> = parts
        .iter()
        .zip(&descs)
        .map(|(p, f)| p.chunk.request_range(f.size))
        .collect();
    let mut out = Vec::with_capacity(parts.len());
    let mut clock = StallClock::new();
    let mut recv = match ask(conn, game_id, parts, &ranges, &mut clock).await {
        Ok(recv) => recv,
        Err(e) => {
            out.resize_with(parts.len(), || Err(e.again()));
            return out;
        }
    };
    for (i, ((p, file), &(start, end))) in parts.iter().zip(&descs).zip(&ranges).enumerate() {
        let more = i + 1 < parts.len();
        let r = receive_part(&mut recv, &mut clock, p, file, (start, end), more, pool).await;
        let broken = match &r {
            Err(ChunkError::Local(_)) => Some(ChunkError::Source(anyhow!(
                "an earlier part failed: the download failed here"
            ))),
            Err(e @ (ChunkError::Source(_) | ChunkError::Stalled(_))) => Some(e.again()),
            _ => None,
        };
        out.push(r);
        if let Some(rest) = broken {
            // The stream is out of step: the parts after this one are lost.
            out.resize_with(parts.len(), || Err(rest.again()));
            return out;
        }
    }
    // A bad last part was not read to its end (nothing after it needs its
    // place in the stream), so only a good one can be checked for excess.
    if matches!(out.last(), Some(Err(ChunkError::Bad(_)))) {
        return out;
    }
    let total: u64 = ranges.iter().map(|(s, e)| e - s).sum();
    if let Err(e) = expect_end(&mut recv, &mut clock, total).await {
        // A lie about the whole answer: none of its parts counts.
        out.clear();
        out.resize_with(parts.len(), || Err(e.again()));
    }
    out
}

/// The stream must end where its header said: a source that sends more
/// than it announced is lying about something.
async fn expect_end(
    recv: &mut quinn::RecvStream,
    clock: &mut StallClock,
    len: u64,
) -> Result<(), ChunkError> {
    let after = clock
        .wait(
            || format!("after all {len} bytes, before the stream's end"),
            async {
                match recv.read_chunk(1, true).await {
                    Ok(piece) => Ok(piece.map(|p| p.bytes.len())),
                    Err(e) => Err(ChunkError::Source(e.into())),
                }
            },
        )
        .await;
    match after {
        Ok(None) => Ok(()),
        Ok(Some(_)) => Err(ChunkError::Source(anyhow!(
            "sent more than the {len} bytes it announced"
        ))),
        // Every byte is in and verified; a connection lost after them
        // costs nothing.
        Err(ChunkError::Source(e)) => {
            tracing::debug!("chunk stream ended badly: {e:#}");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Sends the request for `parts` (at `ranges`) and reads the answer's head:
/// the stream its bytes follow on.
async fn ask(
    conn: &quinn::Connection,
    game_id: &str,
    parts: &[PartFetch],
    ranges: &[(u64, u64)],
    clock: &mut StallClock,
) -> Result<quinn::RecvStream, ChunkError> {
    let (mut send, mut recv) = clock
        .wait(|| "opening the request's stream".into(), async {
            conn.open_bi()
                .await
                .map_err(|e| ChunkError::Source(e.into()))
        })
        .await?;
    let part = |p: &PartFetch, &(start, end): &(u64, u64)| wire::Part {
        path: p.chunk.path.clone(),
        offset: start,
        len: end - start,
    };
    let req = match (parts, ranges) {
        ([p], [r]) => {
            let wire::Part { path, offset, len } = part(p, r);
            Request::Chunk {
                game_id: game_id.to_string(),
                path,
                offset,
                len,
            }
        }
        _ => Request::Chunks {
            game_id: game_id.to_string(),
            parts: parts.iter().zip(ranges).map(|(p, r)| part(p, r)).collect(),
        },
    };
    let src = ChunkError::Source;
    // A source that grants no stream or flow-control credit stalls too.
    clock
        .wait(|| "sending the request".into(), async {
            wire::write_frame(&mut send, &req).await.map_err(src)?;
            send.finish().map_err(|e| src(e.into()))
        })
        .await?;
    let total: u64 = ranges.iter().map(|(s, e)| e - s).sum();
    let header = clock
        .wait(|| "before the answer's header".into(), async {
            wire::read_response(&mut recv).await.map_err(src)
        })
        .await?;
    match header {
        Some(Response::Chunk { len }) if len == total => Ok(recv),
        Some(Response::Denied { reason }) => Err(src(anyhow!("refused: {reason}"))),
        other => Err(src(anyhow!("unexpected answer {other:?}"))),
    }
}

/// Reads and verifies bytes `start..end` of one part of `file` (see `fetch_parts`).
/// With `more` parts after it, a part that does not verify is read to its
/// end first, so the next part starts where it should.
async fn receive_part(
    recv: &mut quinn::RecvStream,
    clock: &mut StallClock,
    part: &PartFetch,
    file: &FileDesc,
    (start, end): (u64, u64),
    more: bool,
    pool: &BufferPool,
) -> Result<Option<Vec<u8>>, ChunkError> {
    let PartFetch { chunk, dest } = part;
    let mut kept = match dest {
        Dest::Memory => Some(Vec::with_capacity(chunk.len as usize)),
        Dest::File(_) => None,
    };
    // QUIC hands data over a packet at a time; collecting it into a block
    // turns ~1 KiB writes into one positioned write per block.
    let mut buf = pool.take(usize::try_from(end - start).unwrap_or(usize::MAX));
    let (lo, hi) = (chunk.offset, chunk.offset + chunk.len);
    let mut at = start;
    while at < end {
        let (_, block_end) = digest::block_range(at / digest::BLOCK, file.size);
        let block_len = (block_end - at) as usize;
        while buf.len() < block_len {
            let got = at - start + buf.len() as u64;
            let data = clock
                .wait(
                    || format!("after {got} of {} bytes", end - start),
                    read_piece(recv, block_len - buf.len(), got, end - start),
                )
                .await?;
            buf.extend_from_slice(&data);
        }
        let index = (at / digest::BLOCK) as usize;
        let got = digest::block_digest(buf.as_slice());
        match file.blocks.get(index) {
            Some(want) if *want == got => {}
            want => {
                let want = want.map_or_else(|| "none".to_string(), |w| w.to_hex());
                if more {
                    skip(recv, clock, end - block_end, end - start).await?;
                }
                return Err(ChunkError::Bad(anyhow!(
                    "{} bytes {at}..{block_end} do not match their digest ({got}, agreed {want})",
                    chunk.path
                )));
            }
        }
        // The chunk's own part of the block.
        let (from, to) = (at.max(lo), block_end.min(hi));
        let part = &buf.as_slice()[(from - at) as usize..(to - at) as usize];
        match (dest, kept.as_mut()) {
            (_, Some(kept)) => kept.extend_from_slice(part),
            (Dest::File(target), None) => {
                // A write through the page cache is a copy: handing the
                // worker thread over for it cost more than the copy.
                let written = if target.writes_direct() {
                    tokio::task::block_in_place(|| target.write_all_at(part, from))
                } else {
                    target.write_all_at(part, from)
                };
                written
                    .with_context(|| format!("writing {} at {from}", chunk.path))
                    .map_err(ChunkError::Local)?
            }
            (Dest::Memory, None) => {}
        }
        buf.clear();
        at = block_end;
    }
    pool.give(buf);
    Ok(kept)
}

/// Reads and drops `n` bytes of an answer of `len` bytes.
async fn skip(
    recv: &mut quinn::RecvStream,
    clock: &mut StallClock,
    mut n: u64,
    len: u64,
) -> Result<(), ChunkError> {
    while n > 0 {
        let want = usize::try_from(n).unwrap_or(usize::MAX);
        let piece = clock
            .wait(
                || format!("skipping a bad part, after {} of {len} bytes", len - n),
                read_piece(recv, want, len - n, len),
            )
            .await?;
        n -= piece.len() as u64;
    }
    Ok(())
}

/// The next at most `want` bytes of a chunk answer of `len` bytes, of which
/// `got` arrived already; an early end is the source's failure.
async fn read_piece(
    recv: &mut quinn::RecvStream,
    want: usize,
    got: u64,
    len: u64,
) -> Result<bytes::Bytes, ChunkError> {
    match recv.read_chunk(want, true).await {
        Ok(Some(piece)) => Ok(piece.bytes),
        Ok(None) => Err(ChunkError::Source(anyhow!(
            "stream ended after {got} of {len} bytes"
        ))),
        Err(e) => Err(ChunkError::Source(e.into())),
    }
}
