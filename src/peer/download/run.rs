//! The download's async driver: asks the sources for their file lists,
//! prepares the targets, then runs the `Scheduler`, doing the fetches it
//! asks for and telling it how each ended, until it says the download is
//! finished or failed.

use super::batch::Batcher;
use super::fetch::{self, BufferPool, ChunkError, Dest, PartFetch};
use super::plan::{self, STREAM_CHUNK_MAX};
use super::schedule::{self, Order, Scheduler, Step};
use super::target_file;
use crate::peer::Node;
use crate::peer::mesh::RemotePeer;
use crate::protocol::control::Event;
use crate::protocol::wire::FileDesc;
use anyhow::{Context, Result, bail};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::task::JoinSet;

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

/// The `got-game-files` event's data, keys in alphabetical order like
/// every other event's.
#[derive(serde::Serialize)]
struct GotGameFiles<'a> {
    file_descriptions: Shown<'a>,
    game_id: &'a str,
    peers: &'a [&'a str],
    version: &'a str,
}

/// The `download-chunk-finished` event's data (one per chunk, so built
/// without a `Value` tree), keys in alphabetical order.
#[derive(serde::Serialize)]
struct ChunkFinished<'a> {
    bytes: u64,
    game_id: &'a str,
    offset: u64,
    path: &'a str,
    peer_addr: &'a str,
    peer_id: &'a str,
}

/// The agreed files as the event shows them: paths and sizes; the digests
/// stay on the wire.
struct Shown<'a>(&'a [FileDesc]);

impl serde::Serialize for Shown<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct Row<'a> {
            path: &'a str,
            size: u64,
        }
        s.collect_seq(self.0.iter().map(|f| Row {
            path: &f.path,
            size: f.size,
        }))
    }
}

/// One `download-chunk-retry` event per chunk that moved to another source.
fn report_retries(
    node: &Node,
    game_id: &str,
    chunks: &[plan::Chunk],
    live: &[RemotePeer],
    retries: &[schedule::Retry],
) {
    for retry in retries {
        let (Some(c), Some(from), Some(to)) = (
            chunks.get(retry.chunk),
            live.get(retry.from),
            live.get(retry.to),
        ) else {
            continue;
        };
        node.out.event(
            Event::DownloadChunkRetry,
            json!({
                "game_id": game_id, "path": c.path, "offset": c.offset, "bytes": c.len,
                "failed_peer_addr": from.addr, "retry_peer_addr": to.addr,
            }),
        );
    }
}

/// Commits a download whose every byte is written (`target_file::commit`)
/// and caches its digests, which verified on arrival, so this peer serves
/// the game without hashing it again. The files' rows are stored while the
/// file system syncs (a sync changes no size or mtime); the sentinel's once
/// it is renamed into place (before, it is under its scratch name). Both
/// before `download-finished`, so the first file list this peer answers is
/// warm. A failed cache store is only logged. Returns the milliseconds since
/// `began` when the commit was done.
fn commit_and_cache(
    files: &crate::peer::files::Files,
    digests: &crate::peer::digests::DigestCache,
    game_id: &str,
    targets: &target_file::Targets,
    fetched: &[FileDesc],
    began: &Instant,
) -> Result<u128> {
    use crate::protocol::layout::SENTINEL;
    let logged = |stored: Result<()>| {
        if let Err(e) = stored {
            tracing::warn!(%game_id, "caching the downloaded digests failed: {e:#}");
        }
    };
    let (committed, synced_ms) = std::thread::scope(|scope| {
        let body = scope.spawn(|| {
            digests.store(
                files,
                game_id,
                fetched.iter().filter(|f| f.path != SENTINEL),
            )
        });
        let committed = target_file::commit(files, game_id, targets)
            .and_then(|()| target_file::remove_marker(files, game_id));
        let synced_ms = began.elapsed().as_millis();
        logged(
            body.join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the storing thread panicked"))),
        );
        (committed, synced_ms)
    });
    committed?;
    logged(digests.store(
        files,
        game_id,
        fetched.iter().filter(|f| f.path == SENTINEL),
    ));
    Ok(synced_ms)
}

/// Where each chunk of a batch goes: its target file, opened (maybe
/// created) now or still open from a recent chunk, so the open files stay
/// bounded whatever the file count; or memory, for a stream. Done in the
/// batch's own task, not the driver: creating 100,000 small files one after
/// the other in the driver held up every other request behind it.
fn open_parts(
    targets: Option<&target_file::Targets>,
    chunks: &[plan::Chunk],
) -> Result<Vec<PartFetch>> {
    let Some(targets) = targets else {
        return Ok(chunks
            .iter()
            .map(|chunk| PartFetch {
                chunk: chunk.clone(),
                dest: Dest::Memory,
            })
            .collect());
    };
    let opened = tokio::task::block_in_place(|| {
        targets.get_all(chunks.iter().map(|c| (c.file, c.path.as_str())))
    })?;
    Ok(chunks
        .iter()
        .zip(opened)
        .map(|(chunk, target)| PartFetch {
            chunk: chunk.clone(),
            dest: Dest::File(target),
        })
        .collect())
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

/// Downloads `game_id` from `sources`. Without a `stream`, every file lands
/// in the game root and the sentinel is committed last. With one, only the
/// root's archives are fetched and their bytes go to the sink in order;
/// nothing is written to the root. Pieces run ahead of the sink by at most
/// a window, so memory stays bounded whatever the archive size.
///
/// A cancelled download is dropped: its fetch tasks abort with the
/// `JoinSet`, which resets their streams, and nothing is committed.
pub async fn run(
    node: &Arc<Node>,
    game_id: &str,
    version: &str,
    sources: Vec<RemotePeer>,
    mut stream: Option<&mut dyn StreamSink>,
) -> Result<Throughput> {
    let asked = Instant::now();
    // 1. File lists from every catalog-version source.
    let fetch::FileLists {
        live,
        lists,
        silent,
        failed,
    } = fetch::file_lists(&sources, game_id, version).await?;
    for (source, error) in &failed {
        tracing::warn!(source = %source.addr, "file list refused: {error}; left out");
        node.out.event(
            Event::SourceListFailed,
            json!({
                "game_id": game_id, "peer_addr": source.addr, "peer_id": source.peer_id,
                "error": error,
            }),
        );
    }
    for (source, waited) in &silent {
        tracing::warn!(source = %source.addr, "no file list after {waited:?}; left out");
        node.out.event(
            Event::SourceSilent,
            json!({
                "game_id": game_id, "peer_addr": source.addr, "peer_id": source.peer_id,
                "waited_ms": waited.as_millis() as u64,
            }),
        );
    }
    if live.is_empty() {
        let why: Vec<String> = failed
            .iter()
            .map(|(s, e)| format!("{}: {e}", s.addr))
            .chain(silent.iter().map(|(s, _)| format!("{}: silent", s.addr)))
            .collect();
        bail!("no source sent a file list ({})", why.join("; "));
    }
    let listed_ms = asked.elapsed().as_millis();
    plan::agree(&lists)?;
    // The digests, by strict majority; a source in the minority for a file
    // is not asked for its bytes. Each list is as long as the game: the
    // first becomes the agreed one, the others are dropped.
    let agreed = plan::majority(lists)?;
    for &(file, source) in &agreed.minority {
        let (Some(f), Some(s)) = (agreed.files.get(file), live.get(source)) else {
            continue;
        };
        tracing::warn!(source = %s.addr, path = %f.path, "source disagrees with the majority's digests; not asked for this file");
        node.out.event(
            Event::SourceDisagrees,
            json!({ "game_id": game_id, "path": f.path, "peer_addr": s.addr, "peer_id": s.peer_id }),
        );
    }
    let files = agreed.files;
    let addrs: Vec<&str> = live.iter().map(|s| s.addr.as_str()).collect();
    node.out.event_from(
        Event::GotGameFiles,
        &GotGameFiles {
            file_descriptions: Shown(&files),
            game_id,
            peers: &addrs,
            version,
        },
    );

    let agreed_ms = asked.elapsed().as_millis();
    // 2. Targets on disk (or the archives to stream), then the chunk plan,
    // then what an interrupted download of the same version and digests
    // left verified on disk (a resume).
    let streaming = stream.is_some();
    let (targets, fetched, piece) = if streaming {
        let piece = node.chunk_size.min(STREAM_CHUNK_MAX);
        (None, plan::stream_files(&files)?, piece)
    } else {
        let targets = tokio::task::block_in_place(|| {
            target_file::prepare_files(&node.files, game_id, &files, node.direct_writes)
        })?;
        (Some(Arc::new(targets)), files, node.chunk_size)
    };
    let targets_ms = asked.elapsed().as_millis();
    // Shared with every chunk task (each verifies against its file's digests).
    let fetched = Arc::new(fetched);
    let chunks = plan::plan_chunks(&fetched, piece);
    let reused = match &targets {
        None => vec![false; chunks.len()],
        Some(targets) => tokio::task::block_in_place(|| -> Result<Vec<bool>> {
            let want = plan::ResumeMarker::new(version, &fetched);
            let left = target_file::read_marker(&node.files, game_id);
            let verified = if left.as_ref() == Some(&want) {
                target_file::verified_blocks(targets, &fetched)?
            } else {
                Vec::new()
            };
            let reused = plan::resume_plan(left.as_ref(), &want, &fetched, &chunks, &verified);
            target_file::write_marker(&node.files, game_id, &want)?;
            Ok(reused)
        })?,
    };
    let reused_chunks = reused.iter().filter(|r| **r).count();
    let reused_bytes: u64 = chunks
        .iter()
        .zip(&reused)
        .filter(|(_, r)| **r)
        .map(|(c, _)| c.len)
        .sum();
    let total: u64 = fetched.iter().map(|f| f.size).sum();
    tracing::debug!(%game_id, listed_ms, agreed_ms, targets_ms, prepared_ms = asked.elapsed().as_millis(), "download planned");
    node.out.event(
        Event::DownloadBegin,
        json!({
            "game_id": game_id, "version": version, "bytes": total,
            "files": fetched.len(), "chunks": chunks.len(), "peers": addrs,
            "stream": streaming, "reused_chunks": reused_chunks, "reused_bytes": reused_bytes,
        }),
    );
    let began = Instant::now();

    // 3. The fetches, as the schedule deals them.
    let order = if streaming { Order::Stream } else { Order::Any };
    let file_of: Vec<usize> = chunks.iter().map(|c| c.file).collect();
    let mut schedule = Scheduler::with_rules(file_of, live.len(), order, &agreed.minority, &reused)
        .with_sizes(chunks.iter().map(|c| c.len).collect(), piece);
    // Fetched pieces of a stream waiting for the ones before them.
    let mut held: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
    let pool = Arc::new(BufferPool::for_writes(node.direct_writes));
    let conns = fetch::connections(&node.endpoint, &node.identity, &live).await?;
    let mut tasks = JoinSet::new();
    let mut batcher = Batcher::default();
    loop {
        let step = schedule.poll();
        let starts = match step {
            // A stream's pieces are long and wait in memory: never batched.
            Step::Fetch(f) if streaming => vec![vec![f]],
            Step::Fetch(f) => {
                // What the request asks for: the chunk widened to whole
                // digest blocks (a 32 KiB chunk of a large file is a 1 MiB
                // request, too long to batch).
                let len = chunks.get(f.chunk).map_or(0, |c| {
                    let size = fetched.get(c.file).map_or(0, |d| d.size);
                    let (start, end) = c.request_range(size);
                    end - start
                });
                batcher.add(f, len).into_iter().collect()
            }
            // Nothing more to deal until a fetch ends: send what is filling.
            Step::Wait => batcher.flush(),
            Step::Finished => break,
            Step::Failed(reason) => bail!("{reason}"),
        };
        for batch in starts {
            let batch_chunks = batch
                .iter()
                .map(|f| {
                    chunks
                        .get(f.chunk)
                        .cloned()
                        .context("scheduled a chunk outside the plan")
                })
                .collect::<Result<Vec<_>>>()?;
            let Some(first) = batch.first() else {
                continue;
            };
            let lanes = conns
                .get(first.source)
                .context("scheduled a source that is not live")?;
            let conn = lanes[first.turn % lanes.len()].clone();
            let game_id = game_id.to_string();
            let pool = pool.clone();
            let fetched = fetched.clone();
            let targets = targets.clone();
            tasks.spawn(async move {
                let results = match open_parts(targets.as_deref(), &batch_chunks) {
                    Ok(parts) => fetch::fetch_parts(&conn, &game_id, &fetched, &parts, &pool).await,
                    Err(e) => fetch::all_failed(batch_chunks.len(), ChunkError::Local(e)),
                };
                (batch, batch_chunks, results)
            });
        }
        if matches!(step, Step::Fetch(_)) {
            continue;
        }
        let Some(joined) = tasks.join_next().await else {
            bail!("the schedule waits for a fetch, but none is in flight");
        };
        let (batch, batch_chunks, results) = joined.context("chunk task failed")?;
        for ((f, chunk), result) in batch.into_iter().zip(batch_chunks).zip(results) {
            let source = &live[f.source];
            let stalled = matches!(result, Err(ChunkError::Stalled(_)));
            match result {
                Ok(data) => {
                    node.out.event_from(
                        Event::DownloadChunkFinished,
                        &ChunkFinished {
                            bytes: chunk.len,
                            game_id,
                            offset: chunk.offset,
                            path: &chunk.path,
                            peer_addr: &source.addr,
                            peer_id: &source.peer_id,
                        },
                    );
                    let ready = schedule.chunk_done(f.source, f.chunk);
                    if let (Some(sink), Some(data)) = (stream.as_deref_mut(), data) {
                        held.insert(f.chunk, data);
                        for next in ready {
                            let (Some(c), Some(data)) = (chunks.get(next), held.remove(&next))
                            else {
                                bail!("piece {next} is ready but not held");
                            };
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
                        }
                    }
                }
                Err(ChunkError::Local(e)) => return Err(e.context("cannot write the download")),
                Err(ChunkError::Bad(e)) => {
                    tracing::warn!(source = %source.addr, "chunk did not verify: {e:#}");
                    node.out.event(
                        Event::SourceBadChunk,
                        json!({
                            "game_id": game_id, "peer_addr": source.addr, "peer_id": source.peer_id,
                            "path": chunk.path, "offset": chunk.offset, "bytes": chunk.len,
                            "error": format!("{e:#}"),
                        }),
                    );
                    let reason = format!("{}: {e:#}", source.addr);
                    let r = schedule.chunk_bad(f.source, f.chunk, reason);
                    report_retries(node, game_id, &chunks, &live, &r.retries);
                }
                Err(ChunkError::Stalled(e) | ChunkError::Source(e)) => {
                    let reason = format!("{}: {e:#}", source.addr);
                    let (r, event) = if stalled {
                        (
                            schedule.chunk_stalled(f.source, f.chunk, reason),
                            Event::SourceStalled,
                        )
                    } else {
                        (
                            schedule.chunk_failed(f.source, f.chunk, reason),
                            Event::SourceFailed,
                        )
                    };
                    // Once per source: every part of a broken batch fails.
                    if r.source_lost {
                        tracing::warn!(source = %source.addr, %event, "source lost: {e:#}");
                        node.out.event(
                            event,
                            json!({
                                "game_id": game_id, "peer_addr": source.addr,
                                "peer_id": source.peer_id, "path": chunk.path,
                                "offset": chunk.offset, "bytes": chunk.len,
                                "error": format!("{e:#}"),
                            }),
                        );
                    }
                    report_retries(node, game_id, &chunks, &live, &r.retries);
                }
            }
        }
    }

    // 4. Commit: every byte is on disk; the sentinel goes last. A stream
    // has nothing to commit here: its sink saw every byte.
    if let Some(targets) = &targets {
        tokio::task::block_in_place(|| -> Result<()> {
            let fetched_ms = began.elapsed().as_millis();
            let synced_ms = commit_and_cache(
                &node.files,
                &node.digests,
                game_id,
                targets,
                &fetched,
                &began,
            )?;
            tracing::debug!(%game_id, fetched_ms, synced_ms, cached_ms = began.elapsed().as_millis(), "download committed");
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

    /// After the commit every file has its cache row, the sentinel too
    /// (it was under its scratch name while the rest were stored).
    #[test]
    fn a_committed_download_caches_every_files_digests() -> Result<()> {
        use crate::peer::digests::DigestCache;
        use crate::peer::files::Files;
        use crate::protocol::digest;
        use crate::protocol::layout::SENTINEL;
        let dir = tempfile::tempdir()?;
        let files = Files::plain(&dir.path().join("games"));
        // The sentinel first, and enough bytes that the sync takes a while:
        // a store that looked for the sentinel during the sync would find
        // it missing every time, not only when the sync happens to be slow.
        let big = vec![7u8; 16 << 20];
        let data: Vec<(&str, &[u8])> = vec![(SENTINEL, b"20240101"), ("a/b.bin", &big)];
        let descs: Vec<FileDesc> = data
            .iter()
            .map(|(path, bytes)| FileDesc {
                blocks: bytes
                    .chunks(digest::BLOCK as usize)
                    .map(digest::block_digest)
                    .collect(),
                ..FileDesc::new(*path, bytes.len() as u64)
            })
            .collect();
        let targets = target_file::prepare_files(&files, "g", &descs, false)?;
        for (i, (path, bytes)) in data.iter().enumerate() {
            targets.get(i, path)?.write_all_at(bytes, 0)?;
        }
        let cache = DigestCache::new(dir.path());
        // Opened now, so the store starts at once.
        assert!(cache.cached_paths("g")?.is_empty());
        commit_and_cache(&files, &cache, "g", &targets, &descs, &Instant::now())?;
        assert_eq!(files.sentinel_version("g").as_deref(), Some("20240101"));
        assert_eq!(
            cache.cached_paths("g")?,
            vec!["a/b.bin".to_string(), SENTINEL.to_string()]
        );
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
