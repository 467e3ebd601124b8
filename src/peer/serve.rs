//! Serving other peers: file lists and chunk bytes of ready, catalog-version
//! game roots, behind the serving gates.

use crate::peer::files::{Files, ServedFile};
use crate::peer::{Node, Operation};
use crate::protocol::control::Event;
use crate::protocol::layout::{self, SENTINEL};
use crate::protocol::wire::{self, Part, Request, Response};
use crate::sync::lock;
use anyhow::{Context, Result, bail};
use serde_json::json;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Bytes read from disk per write to the stream.
const SEND_BLOCK: usize = 256 << 10;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts request streams on one connection until it closes.
pub async fn accept_requests(node: Arc<Node>, conn: quinn::Connection) {
    loop {
        let (send, recv) = match conn.accept_bi().await {
            Ok(pair) => pair,
            Err(_) => return,
        };
        let node = node.clone();
        let remote = conn.remote_address();
        tokio::spawn(async move {
            if let Err(e) = handle(node, remote, send, recv).await {
                tracing::warn!(%remote, "request failed: {e:#}");
            }
        });
    }
}

/// Why a game root may not be served, or its path when it may.
#[derive(Debug, PartialEq, Eq)]
pub enum Gate {
    Servable(PathBuf),
    Denied(String),
}

/// The serving gates for a whole root: a valid ID that the catalog knows,
/// a present sentinel holding the catalog version, no active operation.
/// The root and its sentinel are looked up through the file layer.
pub fn root_gate(
    catalog_version: Option<&str>,
    files: &Files,
    game_id: &str,
    operation: Option<Operation>,
) -> Gate {
    if let Err(e) = layout::check_game_id(game_id) {
        return Gate::Denied(e.to_string());
    }
    let Some(want) = catalog_version else {
        return Gate::Denied(format!("{game_id} is not in this peer's catalog"));
    };
    let root = match files.root(game_id) {
        Ok(root) => root,
        Err(e) => return Gate::Denied(format!("{e:#}")),
    };
    match files.sentinel_version(game_id) {
        Some(v) if v == want => {}
        Some(v) => {
            return Gate::Denied(format!(
                "{game_id} is at version {v} here, not the catalog's {want}"
            ));
        }
        None => return Gate::Denied(format!("{game_id} is not ready here (no {SENTINEL})")),
    }
    if let Some(op) = operation {
        return Gate::Denied(format!("{game_id} has an active operation ({op:?})"));
    }
    Gate::Servable(root)
}

/// `--hold-uploads N`: a test aid that makes concurrent serving observable
/// without timing. Every chunk upload waits until chunk requests of N
/// distinct (requester, game) downloads have arrived, or until one upload
/// has waited `HOLD_LIMIT`; from then on the hold stays open. A source that
/// serves downloads side by side thus has N in flight at once; one that
/// serves them one after the other never does.
pub struct UploadHold {
    want: usize,
    seen: std::sync::Mutex<BTreeSet<(SocketAddr, String)>>,
    open: tokio::sync::watch::Sender<bool>,
}

/// How long a held upload waits at most; long enough for a busy machine to
/// start the second download, short enough that a broken peer fails fast.
// Under the receivers' `STALL_TIMEOUT` (5 s): a hold longer than that
// would read as a stalled source.
const HOLD_LIMIT: Duration = Duration::from_secs(4);

impl UploadHold {
    pub fn new(want: usize) -> Self {
        Self {
            want,
            seen: std::sync::Mutex::new(BTreeSet::new()),
            open: tokio::sync::watch::channel(want <= 1).0,
        }
    }

    async fn wait(&self, from: SocketAddr, game_id: &str) {
        let mut open = self.open.subscribe();
        {
            let mut seen = lock(&self.seen);
            seen.insert((from, game_id.to_string()));
            if seen.len() >= self.want {
                self.open.send_replace(true);
            }
        }
        if tokio::time::timeout(HOLD_LIMIT, open.wait_for(|o| *o))
            .await
            .is_err()
        {
            // Once given up on, the hold stays open: later uploads are not
            // held again.
            tracing::warn!(%from, game_id, "hold-uploads: released after {HOLD_LIMIT:?} alone");
            self.open.send_replace(true);
        }
    }
}

/// Numbers uploads so `upload-begin` and `upload-end` pair up.
static UPLOADS: AtomicU64 = AtomicU64::new(0);

async fn handle(
    node: Arc<Node>,
    remote: SocketAddr,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) -> Result<()> {
    let request: Request = tokio::time::timeout(REQUEST_TIMEOUT, wire::read_frame(&mut recv))
        .await
        .context("no request within the timeout")??
        .context("request stream ended before a request")?;
    let game_id = match &request {
        Request::GameFiles { game_id }
        | Request::Chunk { game_id, .. }
        | Request::Chunks { game_id, .. } => game_id.clone(),
    };
    match root_gate(
        node.catalog.version(&game_id),
        &node.files,
        &game_id,
        node.operation(&game_id),
    ) {
        Gate::Servable(_) => {}
        Gate::Denied(reason) => return deny(&mut send, reason).await,
    }
    match request {
        Request::GameFiles { game_id } => {
            let served = serve_file_list(&node, &game_id, &mut send).await;
            // The list and its pages are dropped by now (what quinn still
            // buffers is its own): a large one's freed memory goes back to
            // the system, not to an arena the next request may never reuse.
            if served.as_ref().is_ok_and(|&files| files >= LARGE_LIST) {
                tokio::task::block_in_place(crate::peer::heap::release_freed);
            }
            served?;
        }
        Request::Chunk {
            game_id,
            path,
            offset,
            len,
        } => {
            let parts = vec![Part { path, offset, len }];
            serve_parts(&node, remote, &game_id, &parts, &mut send).await?;
        }
        Request::Chunks { game_id, parts } => {
            if parts.is_empty() || parts.len() > wire::MAX_BATCH_PARTS {
                return deny(
                    &mut send,
                    format!(
                        "a chunks request of {} parts (1 to {} are served)",
                        parts.len(),
                        wire::MAX_BATCH_PARTS
                    ),
                )
                .await;
            }
            let total = parts.iter().try_fold(0u64, |sum, p| sum.checked_add(p.len));
            if total.is_none_or(|t| t > wire::MAX_BATCH_BYTES) {
                return deny(
                    &mut send,
                    format!(
                        "a chunks request for more than {} bytes",
                        wire::MAX_BATCH_BYTES
                    ),
                )
                .await;
            }
            serve_parts(&node, remote, &game_id, &parts, &mut send).await?;
        }
    }
    Ok(())
}

/// Lists of at least this many files hand their freed memory back once
/// served (`heap::release_freed`): a 100,000-file list is tens of MiB.
const LARGE_LIST: usize = 10_000;

/// Answers a file-list request: the game's files with their digests (from
/// the cache, or hashed now on a first request), in pages. Says how many
/// files it listed.
async fn serve_file_list(
    node: &Node,
    game_id: &str,
    send: &mut quinn::SendStream,
) -> Result<usize> {
    // Digests from the cache, or hashed now on a first request.
    let files = tokio::task::block_in_place(|| {
        let began = std::time::Instant::now();
        let listed = node.files.list_stamped(game_id)?;
        let listed_ms = began.elapsed().as_millis();
        let files = node.digests.fill(&node.files, game_id, listed)?;
        tracing::debug!(%game_id, files = files.len(), listed_ms, digested_ms = began.elapsed().as_millis(), "file list ready");
        anyhow::Ok(files)
    })?;
    let version = node
        .files
        .sentinel_version(game_id)
        .with_context(|| format!("{game_id}: {SENTINEL} vanished"))?;
    if let Some(h) = node.hostile.as_ref().filter(|h| h.answers_lists()) {
        let listed = files.len();
        h.answer_file_list(send, game_id, &version, files).await?;
        return Ok(listed);
    }
    // Paged, so a list of any size fits the receiver's frame bound.
    let pages = wire::file_list_pages(&files, wire::FILE_LIST_PAGE);
    let last = pages.len().saturating_sub(1);
    for (i, page) in pages.into_iter().enumerate() {
        let frame = Response::GameFiles {
            game_id: game_id.to_string(),
            version: version.clone(),
            files: page.to_vec(),
            more: i < last,
        };
        wire::write_frame(send, &frame).await?;
    }
    send.finish()?;
    Ok(files.len())
}

/// Sends the ranges `parts` of `game_id`'s files in one answer. Every part
/// is checked before any byte goes out: one the root may not serve refuses
/// the whole request. One `upload-begin`/`upload-end` pair covers it.
async fn serve_parts(
    node: &Arc<Node>,
    remote: SocketAddr,
    game_id: &str,
    parts: &[Part],
    send: &mut quinn::SendStream,
) -> Result<()> {
    // Checked, not opened: each file is opened only while its bytes go
    // out, so a batch holds one descriptor however many parts it has.
    let checked = tokio::task::block_in_place(|| -> Result<Vec<ServedFile>, String> {
        let root = node
            .files
            .served_root(game_id)
            .map_err(|e| format!("{e:#}"))?;
        let mut reals = Vec::with_capacity(parts.len());
        for Part { path, offset, len } in parts {
            let real = root.resolve(path).map_err(|e| format!("{e:#}"))?;
            let size = real.size;
            if offset.checked_add(*len).is_none_or(|end| end > size) {
                return Err(format!(
                    "{path}: range {offset}+{len} is past its {size} bytes"
                ));
            }
            reals.push(real);
        }
        Ok(reals)
    });
    let reals = match checked {
        Ok(reals) => reals,
        Err(reason) => return deny(send, reason).await,
    };
    let _guard = node.outbound_guard(game_id);
    let (Some(first), total) = (parts.first(), parts.iter().map(|p| p.len).sum::<u64>()) else {
        return deny(send, "a request for no bytes".into()).await;
    };
    let upload = UPLOADS.fetch_add(1, Ordering::Relaxed);
    let peer_addr = remote.to_string();
    node.out.event(
        Event::UploadBegin,
        json!({ "upload": upload, "game_id": game_id, "peer_addr": peer_addr,
                "path": first.path, "offset": first.offset, "bytes": total,
                "parts": parts.len() }),
    );
    let sent = async {
        if let Some(hold) = &node.upload_hold {
            hold.wait(remote, game_id).await;
        }
        if let Some(h) = node.hostile.as_ref().filter(|h| h.answers_chunks()) {
            let ranges: Vec<_> = parts
                .iter()
                .zip(&reals)
                .map(|(p, real)| (real, p.offset, p.len))
                .collect();
            return h.answer_parts(&ranges, send).await;
        }
        wire::write_frame(send, &Response::Chunk { len: total }).await?;
        let mut out = Outgoing::new(total);
        for (part, real) in parts.iter().zip(&reals) {
            let sent = match real.open() {
                Ok(file) => out.send_range(&file, part.offset, part.len, send).await,
                Err(e) => Err(e),
            };
            if let Err(e) = sent {
                // The parts read before this one still go out: the
                // receiver keeps every part that arrived whole.
                let _ = out.flush(send).await;
                return Err(e.context(format!("sending {}", part.path)));
            }
        }
        out.flush(send).await?;
        send.finish()?;
        // Wait until the receiver has everything, so the outbound
        // count and `upload-end` cover the whole transfer.
        let _ = send.stopped().await;
        anyhow::Ok(())
    }
    .await;
    node.out.event(
        Event::UploadEnd,
        json!({ "upload": upload, "game_id": game_id, "peer_addr": peer_addr,
                "ok": sent.is_ok() }),
    );
    sent
}

async fn deny(send: &mut quinn::SendStream, reason: String) -> Result<()> {
    tracing::info!("denied request: {reason}");
    wire::write_frame(send, &Response::Denied { reason }).await?;
    send.finish()?;
    Ok(())
}

/// An answer's bytes on their way to the stream, read from disk into
/// blocks of up to `SEND_BLOCK`. The parts of a batch share blocks: 64
/// files of 4 KiB are one allocation and one `write_chunk`, not 64 of each.
/// (With a block per part, malloc and free were a fifth of a source's CPU
/// while it served 100,000 files of 4 KiB; sharing saved it ~5 %.)
struct Outgoing {
    /// Read, not yet handed to quinn; its capacity is the room left.
    block: Vec<u8>,
    /// Bytes of the answer not yet read into a block.
    unread: u64,
}

impl Outgoing {
    fn new(total: u64) -> Self {
        Self {
            block: block_for(total),
            unread: total,
        }
    }

    /// Reads `len` bytes of `file` from `offset` into blocks, handing each
    /// full one to quinn as it is: quinn keeps it until the receiver
    /// acknowledges it, so no byte is copied into quinn's send buffer.
    async fn send_range(
        &mut self,
        file: &std::fs::File,
        offset: u64,
        len: u64,
        send: &mut quinn::SendStream,
    ) -> Result<()> {
        let mut done = 0u64;
        while done < len {
            if self.block.len() == self.block.capacity() {
                self.flush(send).await?;
            }
            let room = self.block.capacity() - self.block.len();
            let want = usize::try_from(len - done).map_or(room, |n| n.min(room));
            let at = offset + done;
            // Data already in the page cache is read right here: handing
            // the worker thread over (block_in_place) for a ~30 µs copy
            // costs more than the copy. Only a read that would wait for the
            // disk is moved. (2 GiB benches, five pairs: the source's CPU
            // 1.50 s against 1.71 s.)
            let n = match read_into(file, at, want, true, &mut self.block) {
                Ok(n) if n > 0 => n,
                // EAGAIN (not cached), or a file system without RWF_NOWAIT.
                _ => tokio::task::block_in_place(|| {
                    read_into(file, at, want, false, &mut self.block)
                })
                .with_context(|| format!("reading at {at}"))?,
            };
            if n == 0 {
                bail!("file shrank while it was being served");
            }
            done += n as u64;
            self.unread = self.unread.saturating_sub(n as u64);
        }
        Ok(())
    }

    /// Hands the bytes read so far to quinn.
    async fn flush(&mut self, send: &mut quinn::SendStream) -> Result<()> {
        if !self.block.is_empty() {
            let full = std::mem::replace(&mut self.block, block_for(self.unread));
            send.write_chunk(bytes::Bytes::from(full)).await?;
        }
        Ok(())
    }
}

/// An empty send block for `unread` bytes still to come, at most
/// `SEND_BLOCK`: one 4 KiB chunk does not take 256 KiB.
fn block_for(unread: u64) -> Vec<u8> {
    Vec::with_capacity(usize::try_from(unread).map_or(SEND_BLOCK, |n| n.min(SEND_BLOCK)))
}

/// Reads up to `len` bytes at `offset` onto the end of `block`, straight
/// into its spare capacity (no zero-filling first), and says how many.
/// With `cached_only`, only what the page cache holds (`RWF_NOWAIT`:
/// `EAGAIN` instead of waiting for the disk).
fn read_into(
    file: &std::fs::File,
    offset: u64,
    len: usize,
    cached_only: bool,
    block: &mut Vec<u8>,
) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    block.reserve(len);
    let spare = block.spare_capacity_mut();
    // SAFETY: pread writes at most `len` bytes into the vector's spare
    // capacity, which `reserve` made at least `len` bytes long, and
    // `set_len` below covers only the bytes it reported as written.
    let n = unsafe {
        let iov = libc::iovec {
            iov_base: spare.as_mut_ptr().cast(),
            iov_len: len,
        };
        let flags = if cached_only { libc::RWF_NOWAIT } else { 0 };
        libc::preadv2(file.as_raw_fd(), &iov, 1, offset as libc::off_t, flags)
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let n = n as usize;
    // SAFETY: the `n` bytes after the old length were initialised by pread
    // (n <= len <= spare capacity).
    unsafe { block.set_len(block.len() + n) };
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::layout::LOCAL_DIR;
    use std::fs;

    /// Up to `len` bytes at `offset` in a new buffer (`read_into`).
    fn read_block(
        file: &std::fs::File,
        offset: u64,
        len: usize,
        cached_only: bool,
    ) -> std::io::Result<Vec<u8>> {
        let mut block = Vec::new();
        read_into(file, offset, len, cached_only, &mut block)?;
        Ok(block)
    }

    /// A cached-only read of pages the cache no longer holds says so
    /// instead of waiting, and the waiting read then gets the bytes: the
    /// path `send_range` takes for a cold file.
    #[test]
    fn cached_only_reads_refuse_to_wait_for_the_disk() -> Result<()> {
        use std::os::fd::AsRawFd;
        // Under the crate folder (a real disk; tmpfs pages are never cold).
        let dir = tempfile::tempdir_in(".")?;
        let path = dir.path().join("cold.eti");
        let data: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
        fs::write(&path, &data)?;
        let file = fs::File::open(&path)?;
        // The kernel may keep pages it was advised to drop (with other
        // tests' I/O beside it, 2 runs of the lib tests in 5 failed), so the
        // advice is retried a few times; one refused read is the proof.
        let mut cold = Ok(Vec::new());
        for _ in 0..20 {
            file.sync_all()?;
            // SAFETY: advice on a file we hold open; it only drops clean pages.
            let rc =
                unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
            assert_eq!(rc, 0);
            cold = read_block(&file, 4096, 65536, true);
            if cold.is_err() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(
            cold.as_ref().map_err(|e| e.kind()).err(),
            Some(std::io::ErrorKind::WouldBlock),
            "a cold read did not refuse: {:?}",
            cold.map(|b| b.len())
        );
        let read = read_block(&file, 4096, 65536, false)?;
        assert_eq!(read, data[4096..4096 + 65536]);
        // Now cached: the cached-only read gets the bytes too.
        assert_eq!(read_block(&file, 4096, 65536, true)?, read);
        Ok(())
    }

    #[test]
    fn gates_refuse_what_must_not_be_served() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let games = dir.path();
        fs::create_dir_all(games.join("cnc4"))?;
        fs::write(games.join("cnc4/version.ini"), "20170204")?;
        fs::create_dir_all(games.join("ggoo"))?;
        fs::create_dir_all(games.join("coh"))?;
        fs::write(games.join("coh/version.ini"), "20150101")?;

        let plain = Files::plain(games);
        let files = &plain;
        let ok = root_gate(Some("20170204"), files, "cnc4", None);
        assert_eq!(ok, Gate::Servable(games.join("cnc4")));
        let cases = [
            (
                root_gate(None, files, "cnc4", None),
                "not in this peer's catalog",
            ),
            (
                root_gate(Some("20200721"), files, "ggoo", None),
                "not ready",
            ),
            (
                root_gate(Some("20200907"), files, "coh", None),
                "not the catalog's",
            ),
            (
                root_gate(
                    Some("20170204"),
                    files,
                    "cnc4",
                    Some(Operation::Downloading),
                ),
                "active operation",
            ),
            (
                root_gate(Some("1"), files, "../cnc4", None),
                "invalid game id",
            ),
        ];
        for (gate, want) in cases {
            match gate {
                Gate::Denied(reason) => assert!(reason.contains(want), "{reason} !~ {want}"),
                Gate::Servable(p) => panic!("served {} (wanted {want})", p.display()),
            }
        }
        assert_eq!(LOCAL_DIR, "local");
        Ok(())
    }

    #[test]
    fn gates_read_the_redirected_sentinel_and_root() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let games = dir.path().join("games");
        fs::create_dir_all(games.join("cnc4"))?;
        fs::write(games.join("cnc4/version.ini"), "20170204")?;
        let alt = dir.path().join("alt");
        fs::create_dir_all(alt.join("ggoo"))?;
        fs::write(alt.join("stale.ini"), "20150101")?;
        fs::write(alt.join("ggoo/version.ini"), "20200721")?;
        let mut r = crate::redirect::Redirects::new();
        r.insert("games/cnc4/version.ini", alt.join("stale.ini"))?;
        r.insert("games/ggoo/", alt.join("ggoo"))?;
        let files = Files::new(games, None, r);
        match root_gate(Some("20170204"), &files, "cnc4", None) {
            Gate::Denied(reason) => assert!(reason.contains("at version 20150101"), "{reason}"),
            Gate::Servable(p) => panic!("served {} despite the stale sentinel", p.display()),
        }
        assert_eq!(
            root_gate(Some("20200721"), &files, "ggoo", None),
            Gate::Servable(alt.join("ggoo"))
        );
        Ok(())
    }
}
