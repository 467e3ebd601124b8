//! `peer --hostile LIE`: a test aid that makes this peer speak the wire
//! protocol but lie in one chosen way (`protocol::hostile::Lie`), so
//! scenarios can check what a receiver does against each lie
//! (`hostilePeer{}`; docs/PROTOCOL.md, "Hostile sources"). Every lie lives
//! here; `serve` and `mesh::announce` only ask this module at three hooks:
//! the hello's peer ID, the announce stream after the hello, and the
//! answers to file-list and chunk requests. An honest peer has no
//! `Hostile` and never reaches this code.

use crate::peer::files::ServedFile;
use crate::protocol::hostile::Lie;
use crate::protocol::wire::{self, FileDesc, Response};
use anyhow::{Context, Result, bail};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes `long-chunk` sends past what it announced.
pub const LONG_EXTRA: u64 = 64 << 10;
/// Size `huge-sizes` gives its files: near 2^63, each a little less.
pub const HUGE_SIZE: u64 = (1 << 63) - 1;
/// Descriptors per page of `huge-sizes`' overlong list.
const PAD_PAGE: usize = 20_000;
/// How long `impersonate` holds its hello back (see `before_hello`).
const IMPERSONATE_DELAY: std::time::Duration = std::time::Duration::from_millis(250);
/// Bytes read per step when a chunk is sent.
const READ_BLOCK: usize = 256 << 10;

/// A hostile peer's one lie and what it needs to tell it.
pub struct Hostile {
    pub lie: Lie,
    /// With `Lie::Impersonate`: the peer ID its hellos claim.
    impersonate: Option<String>,
    /// Where `escape-paths`' absolute path points: beside its games dir.
    beside_games: PathBuf,
    /// File lists answered so far (`huge-sizes` changes its lie after one).
    lists: AtomicU64,
    /// Answers garbled so far (`garbage` cycles through kinds).
    garbled: AtomicU64,
    /// `garbage`: set at the first garbled answer; each announce stream
    /// then gets a malformed frame too.
    garbled_once: tokio::sync::watch::Sender<bool>,
}

impl Hostile {
    /// The hostile part of a peer started with `--hostile lie` (and
    /// `--impersonate id`, which `impersonate` needs and no other lie takes).
    pub fn new(lie: Lie, impersonate: Option<String>, games_dir: &Path) -> Result<Self> {
        match (lie, &impersonate) {
            (Lie::Impersonate, None) => bail!("--hostile impersonate needs --impersonate PEER_ID"),
            (Lie::Impersonate, Some(_)) | (_, None) => {}
            (other, Some(_)) => bail!("--impersonate goes with --hostile impersonate, not {other}"),
        }
        let beside_games = games_dir
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| games_dir.to_path_buf());
        tracing::warn!(%lie, "HOSTILE test peer: it lies to every peer it talks to");
        Ok(Self {
            lie,
            impersonate,
            beside_games,
            lists: AtomicU64::new(0),
            garbled: AtomicU64::new(0),
            garbled_once: tokio::sync::watch::channel(false).0,
        })
    }

    /// The peer ID this peer's hellos claim: another's with `impersonate`.
    pub fn hello_id<'a>(&'a self, own: &'a str) -> &'a str {
        self.impersonate.as_deref().unwrap_or(own)
    }

    /// Before the hello: `impersonate` waits `IMPERSONATE_DELAY`, so when
    /// it dials, the remote's hello has reached it before the remote reads
    /// the false one and closes the connection (its `connect` then succeeds
    /// every time, which a scenario can rely on).
    pub async fn before_hello(&self) {
        if self.lie == Lie::Impersonate {
            tokio::time::sleep(IMPERSONATE_DELAY).await;
        }
    }

    /// After the hello on an announce stream: `garbage` sends a malformed
    /// frame once it has garbled an answer (so a download that asked it
    /// sees the garbled answer first). Other lies do nothing here.
    pub async fn after_hello(
        &self,
        send: &mut quinn::SendStream,
        conn: &quinn::Connection,
    ) -> Result<()> {
        if self.lie != Lie::Garbage {
            return Ok(());
        }
        let mut garbled = self.garbled_once.subscribe();
        tokio::select! {
            r = garbled.wait_for(|g| *g) => { r?; }
            _ = conn.closed() => return Ok(()),
        }
        tracing::warn!("hostile: malformed frame on the announce stream");
        send.write_all(&garbage_frame(0)).await?;
        Ok(())
    }

    /// Whether this lie answers file lists itself.
    pub fn answers_lists(&self) -> bool {
        matches!(
            self.lie,
            Lie::WrongDigests | Lie::EscapePaths | Lie::HugeSizes | Lie::Garbage
        )
    }

    /// Whether this lie answers chunk requests itself.
    pub fn answers_chunks(&self) -> bool {
        chunk_lie(self.lie, 1).is_some()
    }

    /// Answers a file-list request with this lie's list (`files` is the
    /// honest one, digests filled in).
    pub async fn answer_file_list(
        &self,
        send: &mut quinn::SendStream,
        game_id: &str,
        version: &str,
        files: Vec<FileDesc>,
    ) -> Result<()> {
        let answer = self.lists.fetch_add(1, Ordering::Relaxed);
        let page = |files: Vec<FileDesc>, more: bool| Response::GameFiles {
            game_id: game_id.to_string(),
            version: version.to_string(),
            files,
            more,
        };
        match self.lie {
            Lie::Garbage => {
                self.garble(send).await?;
            }
            Lie::HugeSizes if answer > 0 => {
                // More descriptors than a receiver takes, a page at a time.
                let total = wire::MAX_LIST_FILES + 1;
                tracing::warn!(total, "hostile: an overlong file list");
                let mut sent = 0;
                while sent < total {
                    let n = PAD_PAGE.min(total - sent);
                    let pad = (sent..sent + n)
                        .map(|i| FileDesc::new(format!("pad/{i:07}"), 0))
                        .collect();
                    sent += n;
                    wire::write_frame(send, &page(pad, sent < total)).await?;
                }
            }
            lie => {
                let files = lie_about_list(lie, files, &self.beside_games);
                tracing::warn!(%lie, files = files.len(), "hostile: a lying file list");
                let pages = wire::file_list_pages(&files, wire::FILE_LIST_PAGE);
                let last = pages.len().saturating_sub(1);
                for (i, p) in pages.into_iter().enumerate() {
                    wire::write_frame(send, &page(p.to_vec(), i < last)).await?;
                }
            }
        }
        send.finish()?;
        let _ = send.stopped().await;
        Ok(())
    }

    /// Answers a chunk or chunks request with this lie. `parts` are the
    /// checked ranges (served file, offset, length) in request order; the lie
    /// treats their bytes as one run, as the receiver reads them.
    pub async fn answer_parts(
        &self,
        parts: &[(&ServedFile, u64, u64)],
        send: &mut quinn::SendStream,
    ) -> Result<()> {
        let len: u64 = parts.iter().map(|p| p.2).sum();
        let Some(lie) = chunk_lie(self.lie, len) else {
            bail!("{} does not answer chunks", self.lie);
        };
        if lie.garbage {
            self.garble(send).await?;
            send.finish()?;
            let _ = send.stopped().await;
            return Ok(());
        }
        tracing::warn!(lie = %self.lie, parts = parts.len(), len, "hostile: a lying chunk");
        wire::write_frame(send, &Response::Chunk { len }).await?;
        let mut done = 0;
        'parts: for &(real, offset, part_len) in parts {
            let file = real.open()?;
            let mut at = 0;
            while at < part_len {
                if done >= lie.send {
                    break 'parts;
                }
                let want = ((lie.send - done).min(part_len - at) as usize).min(READ_BLOCK);
                let mut buf = vec![0u8; want];
                let n = tokio::task::block_in_place(|| file.read_at(&mut buf, offset + at))
                    .with_context(|| format!("reading at {}", offset + at))?;
                if n == 0 {
                    bail!("file shrank while it was being served");
                }
                buf.truncate(n);
                if lie.flip {
                    buf.iter_mut().for_each(|b| *b ^= 0xa5);
                }
                send.write_all(&buf).await?;
                done += n as u64;
                at += n as u64;
            }
        }
        if lie.extra > 0 {
            send.write_all(&vec![0x4c; lie.extra as usize]).await?;
        }
        if lie.stall {
            // Nothing more, the stream and the connection kept open, until
            // the receiver gives up on the stream.
            tracing::warn!(sent = done, of = len, "hostile: stalling mid-chunk");
            let _ = send.stopped().await;
            return Ok(());
        }
        send.finish()?;
        let _ = send.stopped().await;
        Ok(())
    }

    /// Writes the next kind of malformed frame.
    async fn garble(&self, send: &mut quinn::SendStream) -> Result<()> {
        let n = self.garbled.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(kind = n % GARBAGE_KINDS, "hostile: a malformed answer");
        send.write_all(&garbage_frame(n)).await?;
        self.garbled_once.send_replace(true);
        Ok(())
    }
}

/// How a chunk answer lies: it always announces the asked length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLie {
    /// Bytes of the file sent after the header.
    pub send: u64,
    /// Every byte sent is altered.
    pub flip: bool,
    /// Bytes sent past the file's range.
    pub extra: u64,
    /// After `send` bytes, nothing more and the stream kept open.
    pub stall: bool,
    /// A malformed frame instead of a header.
    pub garbage: bool,
}

/// How `lie` answers a chunk request of `len` bytes; `None`: honestly.
pub fn chunk_lie(lie: Lie, len: u64) -> Option<ChunkLie> {
    let honest = ChunkLie {
        send: len,
        flip: false,
        extra: 0,
        stall: false,
        garbage: false,
    };
    match lie {
        Lie::WrongBytes => Some(ChunkLie {
            flip: true,
            ..honest
        }),
        Lie::ShortChunk => Some(ChunkLie {
            send: len / 2,
            ..honest
        }),
        Lie::LongChunk => Some(ChunkLie {
            extra: LONG_EXTRA,
            ..honest
        }),
        Lie::Stall => Some(ChunkLie {
            send: len / 2,
            stall: true,
            ..honest
        }),
        Lie::Garbage => Some(ChunkLie {
            send: 0,
            garbage: true,
            ..honest
        }),
        Lie::WrongDigests | Lie::EscapePaths | Lie::HugeSizes | Lie::Impersonate => None,
    }
}

/// The file list `lie` sends instead of the honest `files` (sizes near
/// 2^63 for `huge-sizes`' first answer). `beside_games` is the folder
/// holding this peer's games dir (where the absolute path points).
pub fn lie_about_list(lie: Lie, mut files: Vec<FileDesc>, beside_games: &Path) -> Vec<FileDesc> {
    match lie {
        Lie::WrongDigests => {
            for f in &mut files {
                for d in &mut f.blocks {
                    d.0[0] ^= 0x5a;
                }
            }
        }
        Lie::EscapePaths => {
            let abs = beside_games.join("escape-absolute.bin");
            for path in [
                // Each lands where a scenario can look (the receiver's
                // games dir, the run's workspace, the root's local/).
                "../escape-parent.bin".to_string(),
                "data/../../escape-inner.bin".to_string(),
                abs.to_string_lossy().into_owned(),
                "local/escape-local.bin".to_string(),
            ] {
                files.push(FileDesc {
                    path,
                    size: 16,
                    blocks: vec![crate::protocol::digest::block_digest(&[0x45; 16])],
                });
            }
        }
        Lie::HugeSizes => {
            for (i, f) in files.iter_mut().enumerate() {
                f.size = HUGE_SIZE - i as u64;
            }
        }
        _ => {}
    }
    files
}

/// How many kinds of malformed frame `garbage_frame` cycles through.
const GARBAGE_KINDS: u64 = 4;

/// The `n`-th malformed frame: a body that is not JSON, a length past the
/// frame bound (and no body), JSON of an unknown type, a known answer with
/// an unknown field.
pub fn garbage_frame(n: u64) -> Vec<u8> {
    let framed = |body: &[u8]| {
        let mut out = (body.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(body);
        out
    };
    match n % GARBAGE_KINDS {
        0 => framed(b"\xff\xfenot a frame {"),
        1 => u32::MAX.to_be_bytes().to_vec(),
        2 => framed(br#"{"type":"chunk-of-lies","len":1}"#),
        _ => framed(br#"{"type":"chunk","len":1,"evil":true}"#),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::digest::Digest;

    fn list() -> Vec<FileDesc> {
        vec![
            FileDesc {
                path: "a.eti".into(),
                size: 3 << 20,
                blocks: vec![Digest([1; 16]), Digest([2; 16]), Digest([3; 16])],
            },
            FileDesc {
                path: "version.ini".into(),
                size: 8,
                blocks: vec![Digest([4; 16])],
            },
        ]
    }

    #[test]
    fn every_lie_is_told_somewhere() {
        for lie in Lie::ALL {
            let lists = matches!(
                lie,
                Lie::WrongDigests | Lie::EscapePaths | Lie::HugeSizes | Lie::Garbage
            );
            let chunks = chunk_lie(*lie, 10).is_some();
            assert!(
                lists || chunks || *lie == Lie::Impersonate,
                "{lie} lies nowhere"
            );
        }
    }

    #[test]
    fn chunk_lies_announce_the_asked_length_and_send_otherwise() {
        assert_eq!(chunk_lie(Lie::Impersonate, 10), None);
        assert_eq!(chunk_lie(Lie::WrongDigests, 10), None);
        let bytes = chunk_lie(Lie::WrongBytes, 10).map(|l| (l.send, l.flip));
        assert_eq!(bytes, Some((10, true)));
        assert_eq!(chunk_lie(Lie::ShortChunk, 10).map(|l| l.send), Some(5));
        let long = chunk_lie(Lie::LongChunk, 10).map(|l| (l.send, l.extra));
        assert_eq!(long, Some((10, LONG_EXTRA)));
        let stall = chunk_lie(Lie::Stall, 10).map(|l| (l.send, l.stall));
        assert_eq!(stall, Some((5, true)));
        assert!(chunk_lie(Lie::Garbage, 10).is_some_and(|l| l.garbage));
    }

    #[test]
    fn list_lies_change_what_they_claim() {
        let honest = list();
        let beside = Path::new("/run/x");
        let wrong = lie_about_list(Lie::WrongDigests, honest.clone(), beside);
        assert_eq!(wrong.len(), 2);
        assert!(wrong.iter().zip(&honest).all(|(w, h)| w.path == h.path
            && w.size == h.size
            && w.blocks.iter().zip(&h.blocks).all(|(a, b)| a != b)));
        let escape = lie_about_list(Lie::EscapePaths, honest.clone(), beside);
        let paths: Vec<&str> = escape.iter().map(|f| f.path.as_str()).collect();
        assert!(paths.contains(&"../escape-parent.bin"), "{paths:?}");
        assert!(paths.contains(&"/run/x/escape-absolute.bin"), "{paths:?}");
        assert!(paths.contains(&"local/escape-local.bin"), "{paths:?}");
        for f in &escape {
            assert!(
                f.path == "a.eti"
                    || f.path == "version.ini"
                    || crate::protocol::layout::checked_rel_path(&f.path).is_err(),
                "{} would pass the path rules",
                f.path
            );
        }
        let huge = lie_about_list(Lie::HugeSizes, honest, beside);
        assert!(huge.iter().all(|f| f.size > 1 << 62), "{huge:?}");
    }

    #[test]
    fn garbage_frames_never_decode() {
        for n in 0..2 * GARBAGE_KINDS {
            let frame = garbage_frame(n);
            let len = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
            if len > wire::MAX_FRAME {
                continue;
            }
            assert!(
                wire::decode::<Response>(&frame[4..]).is_err(),
                "kind {n} decodes"
            );
            assert!(wire::decode::<wire::Announce>(&frame[4..]).is_err());
        }
    }

    #[test]
    fn impersonation_needs_an_id_and_only_it_takes_one() -> Result<()> {
        let dir = Path::new("/run/x/games");
        assert!(Hostile::new(Lie::Impersonate, None, dir).is_err());
        assert!(Hostile::new(Lie::Stall, Some("ab".into()), dir).is_err());
        let h = Hostile::new(Lie::Impersonate, Some("ab".into()), dir)?;
        assert_eq!(h.hello_id("me"), "ab");
        let h = Hostile::new(Lie::Stall, None, dir)?;
        assert_eq!(h.hello_id("me"), "me");
        Ok(())
    }
}
