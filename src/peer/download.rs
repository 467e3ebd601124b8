//! The download engine: file lists from catalog-version peers only, a
//! file-size agreement check, chunks fetched in parallel from every eligible
//! source (balanced round-robin, failed chunks retried on survivors), bytes
//! written at their offsets as they arrive, and `version.ini` committed last.

use crate::peer::files::Files;
use crate::peer::mesh::RemotePeer;
use crate::peer::target_file::{AlignedBlock, TargetFile};
use crate::peer::{Node, Operation};
use crate::protocol::control::CommandError;
use crate::protocol::control::{ErrorCode, Event};
use crate::protocol::layout::{self, SENTINEL};
use crate::protocol::wire::{self, FileDesc, Request, Response};
use crate::sync::lock;
use anyhow::{Context, Result, anyhow, bail};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Chunk requests in flight at once, over all sources...
const STREAMS_IN_FLIGHT: usize = 4;
/// ...but at least this many per source, so each source has its next
/// request queued when one finishes. More streams than this at once only
/// spread the receiver's buffers and writes: with two sources, two each
/// instead of four each ran at 1446 / 1490 / 1613 against 1300 / 1556 /
/// 1466 MiB/s (2 GiB benches) with 37 instead of 58 MiB peak RSS.
const MIN_STREAMS_PER_SOURCE: usize = 2;
/// How far a stream-install's pieces may run ahead of the extractor, per
/// source: they wait in memory.
const STREAM_PIECES_PER_SOURCE: usize = 4;

/// Chunk requests each of `sources` live sources may have in flight.
fn streams_per_source(sources: usize) -> usize {
    (STREAMS_IN_FLIGHT / sources.max(1)).max(MIN_STREAMS_PER_SOURCE)
}
/// Bytes collected per chunk stream before one positioned write, writing
/// around the page cache: each write is one disk request (a virtio kick and
/// a wake-up of the writing task), so fewer, larger ones cost the receiver
/// less CPU (back-to-back 2 GiB benches: 1.87 / 1.57 s against 2.77 / 2.20 s
/// with 256 KiB). With at most `STREAMS_IN_FLIGHT` streams at once, the
/// blocks in use stay at 4 MiB per download.
const DIRECT_WRITE_BLOCK: usize = 1 << 20;
/// The same through the page cache (`--buffered-writes`), where 1 MiB blocks
/// cost more CPU (1 GiB benches: 2.08 / 2.28 s against 1.67 / 1.56 s), most
/// likely because a smaller block is still in the CPU cache when the kernel
/// copies it into the page cache.
const BUFFERED_WRITE_BLOCK: usize = 256 << 10;
const FILE_LIST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest piece a streamed download asks for: streamed pieces wait in memory
/// until every earlier byte has arrived, so they must stay small.
const STREAM_CHUNK_MAX: u64 = 4 << 20;
/// The archive extension of a game root.
pub const ARCHIVE_EXT: &str = ".eti";
/// Where the incoming sentinel waits until every other byte is on disk.
const SENTINEL_PART: &str = ".lanspread-version.ini.part";

/// Validates a download request and starts it in the background; with `install`, a finished download is installed
/// right away (the game stays claimed in between).
pub fn start(node: &Arc<Node>, game_id: &str, install: bool) -> Result<(), CommandError> {
    let version = catalog_version(node, game_id)?;
    let local = node.library();
    if local.get(game_id).and_then(|g| g.version.as_deref()) == Some(version.as_str()) {
        return Err(CommandError::new(
            ErrorCode::AlreadyDownloaded,
            format!("{game_id} is already downloaded at catalog version {version}"),
        ));
    }
    let sources = catalog_sources(node, game_id, &version)?;
    let claim = node.begin_operation(game_id, Operation::Downloading)?;
    let node = node.clone();
    let game_id = game_id.to_string();
    tokio::spawn(async move {
        // Dropping `run` on cancel drops its chunk tasks (a JoinSet aborts
        // them), which resets their streams; the sentinel is renamed only at
        // the very end of `run`, so a cancelled download commits nothing.
        let outcome = tokio::select! {
            biased;
            r = run(&node, &game_id, &version, sources, None) => Some(r),
            () = claim.cancelled() => None,
        };
        let then_install = install && matches!(outcome, Some(Ok(_)));
        // The install keeps the claim (no gap); otherwise the game is free
        // before the rescan advertises it again.
        let claim = if then_install {
            claim.switch(Operation::Installing);
            Some(claim)
        } else {
            drop(claim);
            None
        };
        if let Err(e) = node.refresh_library() {
            tracing::warn!("library rescan after download failed: {e:#}");
        }
        match outcome {
            None => {
                tracing::info!(%game_id, "download cancelled");
                node.out
                    .event(Event::DownloadCancelled, json!({ "game_id": game_id }));
            }
            Some(Ok(stats)) => {
                tracing::info!(%game_id, bytes = stats.bytes, ms = stats.duration_ms, "download finished");
                node.out.event(
                    Event::DownloadFinished,
                    json!({ "game_id": game_id, "version": version, "throughput": stats.to_json() }),
                );
                if let Some(claim) = claim {
                    crate::peer::install::run_claimed(&node, claim).await;
                }
            }
            Some(Err(e)) => {
                tracing::warn!(%game_id, "download failed: {e:#}");
                node.out.event(
                    Event::DownloadFailed,
                    json!({ "game_id": game_id, "error": format!("{e:#}") }),
                );
            }
        }
    });
    Ok(())
}

/// The catalog version of a valid game ID (`bad-request`, `unknown-game`).
pub fn catalog_version(node: &Node, game_id: &str) -> Result<String, CommandError> {
    layout::check_game_id(game_id)
        .map_err(|e| CommandError::new(ErrorCode::BadRequest, e.to_string()))?;
    node.catalog
        .version(game_id)
        .map(str::to_string)
        .ok_or_else(|| {
            CommandError::new(
                ErrorCode::UnknownGame,
                format!("{game_id} is not in this peer's catalog"),
            )
        })
}

/// The connected peers that offer `game_id` at the catalog `version`
/// (`no-source` when none does).
pub fn catalog_sources(
    node: &Node,
    game_id: &str,
    version: &str,
) -> Result<Vec<RemotePeer>, CommandError> {
    let sources = lock(&node.mesh).sources(game_id, version);
    if sources.is_empty() {
        return Err(CommandError::new(
            ErrorCode::NoSource,
            format!("no connected peer offers {game_id} at catalog version {version}"),
        ));
    }
    Ok(sources)
}

/// Stops a running download or stream-install of `game_id` (see `start`).
pub fn cancel(node: &Node, game_id: &str) -> Result<(), CommandError> {
    layout::check_game_id(game_id)
        .map_err(|e| CommandError::new(ErrorCode::BadRequest, e.to_string()))?;
    if node.cancel_operation(game_id, Operation::Downloading)
        || node.cancel_operation(game_id, Operation::StreamInstalling)
    {
        return Ok(());
    }
    Err(CommandError::new(
        ErrorCode::NotDownloading,
        format!("no download of {game_id} is running"),
    ))
}

/// Throughput figures reported with `download-finished`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throughput {
    pub bytes: u64,
    pub duration_ms: u64,
    pub chunks: usize,
}

impl Throughput {
    /// Rates derive from the reported integers, so a reader can recompute
    /// them exactly: mib_per_s = bytes / 2^20 / (duration_ms / 1000).
    pub fn to_json(self) -> serde_json::Value {
        let secs = self.duration_ms.max(1) as f64 / 1000.0;
        let mib_per_s = self.bytes as f64 / (1u64 << 20) as f64 / secs;
        let mbit_per_s = self.bytes as f64 * 8.0 / 1e6 / secs;
        json!({
            "bytes": self.bytes,
            "duration_ms": self.duration_ms,
            "mib_per_s": mib_per_s,
            "mbit_per_s": mbit_per_s,
            "chunks": self.chunks,
        })
    }
}

/// One piece of one file, fetched from one source in one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The file's position in the list the chunks were planned from.
    pub file: usize,
    pub path: String,
    pub offset: u64,
    pub len: u64,
}

impl Chunk {
    /// Whether this chunk ends its file.
    pub fn is_last(&self, files: &[FileDesc]) -> bool {
        files
            .get(self.file)
            .is_some_and(|f| self.offset + self.len == f.size)
    }
}

/// Splits files into chunks of at most `chunk_size`; an empty file is one
/// empty chunk, so every file is announced by at least one chunk event.
pub fn plan_chunks(files: &[FileDesc], chunk_size: u64) -> Vec<Chunk> {
    let mut out = Vec::new();
    for (file, f) in files.iter().enumerate() {
        if f.size == 0 {
            out.push(Chunk {
                file,
                path: f.path.clone(),
                offset: 0,
                len: 0,
            });
            continue;
        }
        let mut offset = 0;
        while offset < f.size {
            let len = chunk_size.min(f.size - offset);
            out.push(Chunk {
                file,
                path: f.path.clone(),
                offset,
                len,
            });
            offset += len;
        }
    }
    out
}

/// Checks that every source sent the same file list; names the first
/// conflict otherwise.
pub fn agree(lists: &[(String, Vec<FileDesc>)]) -> Result<Vec<FileDesc>> {
    let Some((first_addr, first)) = lists.first() else {
        bail!("no source sent a file list");
    };
    for (addr, list) in &lists[1..] {
        for f in first {
            match list.iter().find(|g| g.path == f.path) {
                Some(g) if g.size != f.size => bail!(
                    "file size conflict on {}: {} bytes at {first_addr}, {} bytes at {addr}",
                    f.path,
                    f.size,
                    g.size
                ),
                Some(_) => {}
                None => bail!(
                    "file set conflict: {} is at {first_addr} but not at {addr}",
                    f.path
                ),
            }
        }
        if let Some(g) = list
            .iter()
            .find(|g| !first.iter().any(|f| f.path == g.path))
        {
            bail!(
                "file set conflict: {} is at {addr} but not at {first_addr}",
                g.path
            );
        }
    }
    let mut seen = BTreeSet::new();
    for f in first {
        layout::checked_rel_path(&f.path)?;
        if f.path.split('/').any(|c| c.starts_with(".lanspread")) {
            bail!("source offered a reserved path {:?}", f.path);
        }
        if !seen.insert(&f.path) {
            bail!("source listed {} twice", f.path);
        }
    }
    if !first.iter().any(|f| f.path == SENTINEL) {
        bail!("source file list has no {SENTINEL}");
    }
    Ok(first.clone())
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
    match wire::read_frame::<Response>(&mut recv)
        .await?
        .context("no answer")?
    {
        Response::GameFiles {
            game_id: g,
            version,
            files,
        } if g == game_id => Ok((version, files)),
        Response::Denied { reason } => bail!("refused: {reason}"),
        other => bail!("unexpected answer {other:?}"),
    }
}

/// Where a chunk failed: at the source (retry elsewhere) or here (give up).
enum ChunkError {
    Source(anyhow::Error),
    Local(anyhow::Error),
}

/// Write buffers reused across the chunks of one download, so a long
/// download allocates a handful of blocks instead of one per chunk.
struct BufferPool {
    block: usize,
    free: std::sync::Mutex<Vec<AlignedBlock>>,
}

impl BufferPool {
    /// A pool of `block`-byte buffers.
    fn new(block: usize) -> Self {
        Self {
            block,
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

/// Where a fetched chunk goes: written at its offset, or kept in memory for
/// a stream (`StreamSink`).
enum Dest {
    File(Arc<TargetFile>),
    Memory,
}

/// Fetches one chunk; returns its bytes when `dest` is `Memory`.
async fn fetch_chunk(
    conn: &quinn::Connection,
    game_id: &str,
    chunk: &Chunk,
    dest: &Dest,
    pool: &BufferPool,
) -> Result<Option<Vec<u8>>, ChunkError> {
    let src = ChunkError::Source;
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| src(e.into()))?;
    let req = Request::Chunk {
        game_id: game_id.to_string(),
        path: chunk.path.clone(),
        offset: chunk.offset,
        len: chunk.len,
    };
    wire::write_frame(&mut send, &req).await.map_err(src)?;
    send.finish().map_err(|e| src(e.into()))?;
    match wire::read_frame::<Response>(&mut recv).await.map_err(src)? {
        Some(Response::Chunk { len }) if len == chunk.len => {}
        Some(Response::Denied { reason }) => return Err(src(anyhow!("refused: {reason}"))),
        other => return Err(src(anyhow!("unexpected answer {other:?}"))),
    }
    let file = match dest {
        Dest::File(file) => file,
        Dest::Memory => return read_all(&mut recv, chunk.len).await.map(Some),
    };
    // QUIC hands data over a packet at a time; collecting it into a block
    // turns ~1 KiB writes into one positioned write per block.
    let mut buf = pool.take(usize::try_from(chunk.len).unwrap_or(usize::MAX));
    let mut written = 0u64;
    let mut got = 0u64;
    while got < chunk.len {
        let want = ((chunk.len - got) as usize).min(buf.spare());
        let data = read_piece(&mut recv, want, got, chunk.len).await?;
        buf.extend_from_slice(&data);
        got += data.len() as u64;
        if buf.spare() == 0 || got == chunk.len {
            let at = chunk.offset + written;
            tokio::task::block_in_place(|| file.write_all_at(buf.as_slice(), at))
                .with_context(|| format!("writing {} at {at}", chunk.path))
                .map_err(ChunkError::Local)?;
            written += buf.len() as u64;
            buf.clear();
        }
    }
    pool.give(buf);
    Ok(None)
}

/// Reads exactly `len` bytes of a chunk answer into memory.
async fn read_all(recv: &mut quinn::RecvStream, len: u64) -> Result<Vec<u8>, ChunkError> {
    let mut data = Vec::with_capacity(len as usize);
    while (data.len() as u64) < len {
        let want = (len - data.len() as u64) as usize;
        data.extend_from_slice(&read_piece(recv, want, data.len() as u64, len).await?);
    }
    Ok(data)
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

/// Opens (creating and sizing) every target file, each where the file layer
/// maps it; the sentinel goes to a scratch name next to its real place and is
/// renamed into place last.
fn prepare_files(
    layer: &Files,
    game_id: &str,
    files: &[FileDesc],
    direct: bool,
) -> Result<Vec<(String, Arc<TargetFile>)>> {
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
    let wanted: BTreeSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
    for old in layer.list_files(game_id)? {
        if !wanted.contains(old.path.as_str()) {
            std::fs::remove_file(layer.game_file(game_id, &old.path)?)
                .with_context(|| format!("removing stale {}", old.path))?;
        }
    }
    let mut out = Vec::new();
    for f in files {
        let target = target_path(layer, game_id, &f.path)?;
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let target_file = TargetFile::open(&target, direct)
            .with_context(|| format!("opening {}", target.display()))?;
        let file = target_file.file();
        // Only shrink a longer leftover; the chunks' positioned writes grow
        // the file, so a full disk shows up as a failed chunk write.
        if file.metadata().map(|m| m.len() > f.size).unwrap_or(true) {
            file.set_len(f.size)
                .with_context(|| format!("sizing {} to {} bytes", target.display(), f.size))?;
        }
        out.push((f.path.clone(), Arc::new(target_file)));
    }
    Ok(out)
}

fn target_path(layer: &Files, game_id: &str, rel: &str) -> Result<PathBuf> {
    if rel == SENTINEL {
        return Ok(layer.sentinel(game_id)?.with_file_name(SENTINEL_PART));
    }
    layer.game_file(game_id, rel)
}

/// Takes a streamed download's bytes in order (see `run`): each fetched
/// file from its first byte to its last, one file after the other.
pub trait StreamSink: Send {
    /// The bytes of `path` follow, from offset 0.
    fn begin(&mut self, path: &str) -> Result<()>;
    fn feed(&mut self, data: &[u8]) -> Result<()>;
    /// Every byte of the current file was fed.
    fn end(&mut self) -> Result<()>;
}

/// A root's top-level archives, in path order: what install extracts.
pub fn root_archives(files: &[FileDesc]) -> Vec<FileDesc> {
    let mut out: Vec<FileDesc> = files
        .iter()
        .filter(|f| !f.path.contains('/') && f.path.ends_with(ARCHIVE_EXT))
        .cloned()
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// The files a stream fetches: the sources' root archives.
pub fn stream_files(files: &[FileDesc]) -> Result<Vec<FileDesc>> {
    let out = root_archives(files);
    if out.is_empty() {
        bail!("the sources' root has no {ARCHIVE_EXT} archive to stream");
    }
    Ok(out)
}

/// Downloads `game_id` from `sources`. Without a `stream`, every file lands
/// in the game root and the sentinel is committed last. With one, only the
/// root's archives are fetched and their bytes go to the sink in order;
/// nothing is written to the root. Pieces run ahead of the sink by at most
/// a window, so memory stays bounded whatever the archive size.
pub async fn run(
    node: &Arc<Node>,
    game_id: &str,
    version: &str,
    sources: Vec<RemotePeer>,
    mut stream: Option<&mut dyn StreamSink>,
) -> Result<Throughput> {
    // 1. File lists from every catalog-version source.
    let mut asks = JoinSet::new();
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
    let mut refusals = Vec::new();
    while let Some(joined) = asks.join_next().await {
        let (source, result) = joined.context("file-list task failed")?;
        match result {
            Ok((v, files)) if v == version => {
                lists.push((source.addr.clone(), files));
                live.push(source);
            }
            Ok((v, _)) => refusals.push(format!("{}: now at version {v}", source.addr)),
            Err(e) => refusals.push(format!("{}: {e:#}", source.addr)),
        }
    }
    if live.is_empty() {
        bail!("no source sent a file list ({})", refusals.join("; "));
    }
    // Deterministic source order keeps the chunk split reproducible.
    lists.sort_by(|a, b| a.0.cmp(&b.0));
    live.sort_by(|a, b| a.addr.cmp(&b.addr));
    let files = agree(&lists)?;
    let addrs: Vec<&str> = live.iter().map(|s| s.addr.as_str()).collect();
    node.out.event(
        Event::GotGameFiles,
        json!({ "game_id": game_id, "version": version, "file_descriptions": files, "peers": addrs }),
    );

    // 2. Targets on disk (or the archives to stream), then the chunk plan.
    let streaming = stream.is_some();
    let (handles, fetched, piece) = if streaming {
        let piece = node.chunk_size.min(STREAM_CHUNK_MAX);
        (Vec::new(), stream_files(&files)?, piece)
    } else {
        let handles = tokio::task::block_in_place(|| {
            prepare_files(&node.files, game_id, &files, node.direct_writes)
        })?;
        (handles, files.clone(), node.chunk_size)
    };
    let chunks = plan_chunks(&fetched, piece);
    let total: u64 = fetched.iter().map(|f| f.size).sum();
    node.out.event(
        Event::DownloadBegin,
        json!({
            "game_id": game_id, "version": version, "bytes": total,
            "files": fetched.len(), "chunks": chunks.len(), "peers": addrs,
            "stream": streaming,
        }),
    );
    let began = Instant::now();

    // 3. Round-robin assignment; each source works its own queue, lowest
    // chunk index first (a stream needs them in order).
    let mut queues: Vec<BTreeMap<usize, Chunk>> = vec![BTreeMap::new(); live.len()];
    for (i, c) in chunks.iter().enumerate() {
        queues[i % live.len()].insert(i, c.clone());
    }
    let window = if streaming {
        STREAM_PIECES_PER_SOURCE * live.len()
    } else {
        usize::MAX
    };
    // The next chunk the stream needs, and fetched ones waiting for it.
    let mut next = 0usize;
    let mut held: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
    let pool = Arc::new(BufferPool::new(if node.direct_writes {
        DIRECT_WRITE_BLOCK
    } else {
        BUFFERED_WRITE_BLOCK
    }));
    // Each source's chunks alternate between its mesh connection and one
    // bulk connection (see `tls::ALPN_BULK`); without one, the mesh
    // connection carries them all.
    // Opened side by side: each may wait up to 3 s for a slow source.
    let mut bulk: Vec<Option<quinn::Connection>> = vec![None; live.len()];
    match crate::protocol::transport::client_config(
        crate::protocol::transport::ALPN_BULK,
        &node.identity,
    ) {
        Ok(config) => {
            let mut opening = JoinSet::new();
            for (i, s) in live.iter().enumerate() {
                let open = open_bulk(node.endpoint.clone(), config.clone(), s.addr.clone());
                opening.spawn(async move { (i, open.await) });
            }
            while let Some(joined) = opening.join_next().await {
                let (i, conn) = joined.context("bulk connection task failed")?;
                bulk[i] = conn;
            }
        }
        Err(e) => tracing::info!("no bulk connections, using the mesh connections only: {e:#}"),
    }
    let conns: Vec<Vec<quinn::Connection>> = live
        .iter()
        .zip(bulk)
        .map(|(source, bulk)| std::iter::once(source.conn.clone()).chain(bulk).collect())
        .collect();
    let mut turn = vec![0usize; live.len()];
    let mut alive = vec![true; live.len()];
    let mut in_flight = vec![0usize; live.len()];
    let mut tasks = JoinSet::new();
    let mut failures = Vec::new();
    loop {
        // Survivors of a failed source take over its share.
        let per_source = streams_per_source(alive.iter().filter(|a| **a).count());
        for i in 0..live.len() {
            while alive[i] && in_flight[i] < per_source {
                let Some(entry) = queues[i].first_entry() else {
                    break;
                };
                if *entry.key() >= next.saturating_add(window) {
                    break;
                }
                let (index, chunk) = entry.remove_entry();
                let dest = if streaming {
                    Dest::Memory
                } else {
                    // prepare_files opened one target per file, in order.
                    handles
                        .get(chunk.file)
                        .map(|(_, f)| Dest::File(f.clone()))
                        .context("chunk for an unplanned file")?
                };
                let conn = conns[i][turn[i] % conns[i].len()].clone();
                turn[i] += 1;
                let game_id = game_id.to_string();
                let pool = pool.clone();
                in_flight[i] += 1;
                tasks.spawn(async move {
                    let r = fetch_chunk(&conn, &game_id, &chunk, &dest, &pool).await;
                    (i, index, chunk, r)
                });
            }
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        let (i, index, chunk, result) = joined.context("chunk task failed")?;
        in_flight[i] -= 1;
        match result {
            Ok(data) => {
                node.out.event(
                    Event::DownloadChunkFinished,
                    json!({
                        "game_id": game_id, "peer_addr": live[i].addr, "peer_id": live[i].peer_id,
                        "path": chunk.path, "offset": chunk.offset, "bytes": chunk.len,
                    }),
                );
                if let (Some(sink), Some(data)) = (stream.as_deref_mut(), data) {
                    held.insert(index, data);
                    while let Some(data) = held.remove(&next) {
                        let c = &chunks[next];
                        tokio::task::block_in_place(|| -> Result<()> {
                            if c.offset == 0 {
                                sink.begin(&c.path)?;
                            }
                            sink.feed(&data)?;
                            if c.is_last(&fetched) {
                                sink.end()?;
                            }
                            Ok(())
                        })
                        .with_context(|| format!("extracting {}", c.path))?;
                        next += 1;
                    }
                }
            }
            Err(ChunkError::Local(e)) => return Err(e.context("cannot write the download")),
            Err(ChunkError::Source(e)) => {
                if alive[i] {
                    tracing::warn!(source = %live[i].addr, "source failed: {e:#}");
                    failures.push(format!("{}: {e:#}", live[i].addr));
                    alive[i] = false;
                }
                let survivors: Vec<usize> = (0..live.len()).filter(|&j| alive[j]).collect();
                if survivors.is_empty() {
                    bail!("every source failed ({})", failures.join("; "));
                }
                let mut orphans = std::mem::take(&mut queues[i]);
                orphans.insert(index, chunk);
                for (k, (index, c)) in orphans.into_iter().enumerate() {
                    let to = survivors[k % survivors.len()];
                    node.out.event(
                        Event::DownloadChunkRetry,
                        json!({
                            "game_id": game_id, "path": c.path, "offset": c.offset, "bytes": c.len,
                            "failed_peer_addr": live[i].addr, "retry_peer_addr": live[to].addr,
                        }),
                    );
                    queues[to].insert(index, c);
                }
            }
        }
    }

    // 4. Commit: every byte is on disk; the sentinel goes last. A stream
    // has nothing to commit here: its sink saw every byte.
    if streaming {
        if next != chunks.len() {
            bail!("stream stopped at piece {next} of {}", chunks.len());
        }
    } else {
        tokio::task::block_in_place(|| -> Result<()> {
            for (path, file) in &handles {
                file.file()
                    .sync_all()
                    .with_context(|| format!("syncing {path}"))?;
            }
            let sentinel = node.files.sentinel(game_id)?;
            std::fs::rename(sentinel.with_file_name(SENTINEL_PART), &sentinel)
                .with_context(|| format!("committing {}", sentinel.display()))?;
            Ok(())
        })?;
    }
    Ok(Throughput {
        bytes: total,
        duration_ms: began.elapsed().as_millis() as u64,
        chunks: chunks.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(path: &str, size: u64) -> FileDesc {
        FileDesc {
            path: path.into(),
            size,
        }
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
    fn chunks_cover_every_byte_once() {
        let files = [f("a.eti", 10), f("empty", 0), f("version.ini", 8)];
        let plan = plan_chunks(&files, 4);
        let spans: Vec<(&str, u64, u64)> = plan
            .iter()
            .map(|c| (c.path.as_str(), c.offset, c.len))
            .collect();
        assert_eq!(
            spans,
            vec![
                ("a.eti", 0, 4),
                ("a.eti", 4, 4),
                ("a.eti", 8, 2),
                ("empty", 0, 0),
                ("version.ini", 0, 4),
                ("version.ini", 4, 4)
            ]
        );
        // Each chunk knows its file, and which chunk ends it.
        assert!(plan.iter().all(|c| files[c.file].path == c.path));
        let last: Vec<bool> = plan.iter().map(|c| c.is_last(&files)).collect();
        assert_eq!(last, [false, false, true, true, false, true]);
    }

    #[test]
    fn a_stream_fetches_only_top_level_archives_in_path_order() -> Result<()> {
        let files = [
            f("version.ini", 8),
            f("z.eti", 3),
            f("docs/inner.eti", 5),
            f("a.eti", 4),
            f("readme.txt", 2),
        ];
        let picked: Vec<String> = stream_files(&files)?.into_iter().map(|f| f.path).collect();
        assert_eq!(picked, vec!["a.eti", "z.eti"]);
        let err = stream_files(&[f("version.ini", 8), f("data/x.eti", 1)])
            .expect_err("no top-level archive");
        assert!(err.to_string().contains("no .eti archive"), "{err}");
        Ok(())
    }

    #[test]
    fn size_conflicts_and_set_conflicts_are_named() {
        let a = ("A".to_string(), vec![f("x.eti", 10), f("version.ini", 8)]);
        let b = ("B".to_string(), vec![f("x.eti", 18), f("version.ini", 8)]);
        let c = ("C".to_string(), vec![f("version.ini", 8)]);
        let err = agree(&[a.clone(), b]).expect_err("conflict");
        assert!(
            err.to_string()
                .contains("file size conflict on x.eti: 10 bytes at A, 18 bytes at B")
        );
        let err = agree(&[a.clone(), c]).expect_err("set conflict");
        assert!(err.to_string().contains("x.eti is at A but not at C"));
        assert_eq!(agree(&[a.clone(), a.clone()]).ok(), Some(a.1));
    }

    #[test]
    fn hostile_file_lists_are_refused() {
        for bad in ["../escape", "local/x", ".lanspread-version.ini.part"] {
            let list = ("A".to_string(), vec![f(bad, 1), f("version.ini", 8)]);
            assert!(agree(&[list]).is_err(), "{bad} accepted");
        }
        let dup = (
            "A".to_string(),
            vec![f("a", 1), f("a", 1), f("version.ini", 8)],
        );
        assert!(agree(&[dup]).is_err());
        let no_sentinel = ("A".to_string(), vec![f("a", 1)]);
        assert!(agree(&[no_sentinel]).is_err());
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
        assert_eq!(handles.len(), 3);
        // The old (redirected) sentinel is gone at once; the new one waits
        // next to it under the scratch name.
        assert!(!alt.join("old.ini").exists());
        assert!(alt.join(SENTINEL_PART).is_file());
        // New files are created empty and grow with the chunk writes.
        assert_eq!(std::fs::metadata(alt.join("big"))?.len(), 0);
        assert_eq!(std::fs::metadata(games.join("g/a/b.txt"))?.len(), 2);
        assert!(!games.join("g/gone.txt").exists());
        assert!(!games.join("g/big.eti").exists());
        Ok(())
    }

    #[test]
    fn throughput_rates_are_self_consistent() {
        let t = Throughput {
            bytes: 2 << 30,
            duration_ms: 4000,
            chunks: 16,
        }
        .to_json();
        let mib = t["mib_per_s"].as_f64().unwrap_or_default();
        let mbit = t["mbit_per_s"].as_f64().unwrap_or_default();
        assert!((mib - 512.0).abs() < 1e-9);
        assert!((mbit / mib - 8.388608).abs() < 1e-9);
    }
}
