//! A raw QUIC client of the peer wire protocol, used by `fuzzWire` to send
//! bytes no well-behaved peer would send and to observe what comes back.
//! Everything is bounded by timeouts so a hostile or hung target can never
//! hang the checker.

use crate::protocol::wire::{self, Announce, MAX_FRAME, Response};
use anyhow::{Context, Result, anyhow, bail};
use std::net::SocketAddr;
use std::time::Duration;

/// How long a reply to one request stream may take.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest chunk body the client reads back (fuzz games are small).
const MAX_CHUNK_READ: u64 = 64 << 20;

/// What the target did with one request stream.
#[derive(Debug)]
pub enum Reply {
    /// A `denied` frame.
    Denied(String),
    /// The stream or connection ended without a response frame.
    Closed(String),
    /// A response that serves something; `bytes` follow a `chunk` answer.
    Served { response: Response, bytes: Vec<u8> },
    /// Bytes that are not a well-formed response.
    Malformed(String),
    /// Nothing within `REPLY_TIMEOUT` and the stream stayed open.
    NoAnswer,
}

/// A client endpoint and the runtime that drives it.
pub struct WireClient {
    rt: tokio::runtime::Runtime,
    endpoint: quinn::Endpoint,
    target: SocketAddr,
    /// The ID this client's certificate proves: a hello claiming any other
    /// ID is refused by the target.
    pub peer_id: String,
}

impl WireClient {
    pub fn new(target: &str) -> Result<Self> {
        let target: SocketAddr = target
            .parse()
            .with_context(|| format!("target address {target:?}"))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the wire client runtime")?;
        let listen: SocketAddr = ([127, 0, 0, 1], 0).into();
        let identity = crate::protocol::transport::Identity::generate()?;
        let endpoint =
            rt.block_on(async { crate::protocol::transport::endpoint(listen, &identity) })?;
        Ok(Self {
            rt,
            endpoint,
            target,
            peer_id: identity.id,
        })
    }

    /// Runs a future of this client's connections on its runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Opens a fresh QUIC connection to the target.
    pub async fn connect(&self) -> Result<quinn::Connection> {
        let connecting = self
            .endpoint
            .connect(self.target, crate::protocol::transport::SERVER_NAME)
            .context("starting a QUIC connection")?;
        tokio::time::timeout(REPLY_TIMEOUT, connecting)
            .await
            .map_err(|_| anyhow!("no QUIC handshake with {} in time", self.target))?
            .with_context(|| format!("connecting to {}", self.target))
    }

    /// Closes every connection and waits briefly for the close to go out.
    pub fn close(&self) {
        self.endpoint.close(0u32.into(), b"fuzz done");
        let _ = self.rt.block_on(async {
            tokio::time::timeout(Duration::from_millis(500), self.endpoint.wait_idle()).await
        });
    }
}

/// The target's own hello, from the announce stream it opens to us.
pub async fn read_hello(conn: &quinn::Connection) -> Result<Announce> {
    let read = async {
        let mut recv = conn.accept_uni().await.context("no announce stream")?;
        wire::read_frame::<Announce>(&mut recv)
            .await?
            .context("announce stream ended before the hello")
    };
    tokio::time::timeout(REPLY_TIMEOUT, read)
        .await
        .map_err(|_| anyhow!("the target sent no hello in time"))?
}

/// Sends `bytes` on a new request stream, finishes it, and reads the reply.
pub async fn request(conn: &quinn::Connection, bytes: &[u8]) -> Result<Reply> {
    let (mut send, mut recv) = tokio::time::timeout(REPLY_TIMEOUT, conn.open_bi())
        .await
        .map_err(|_| anyhow!("could not open a request stream in time"))?
        .context("opening a request stream")?;
    // The target may close the stream before reading everything: fine.
    match tokio::time::timeout(REPLY_TIMEOUT, send.write_all(bytes)).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => return Ok(Reply::Closed("the target stopped the stream".into())),
        Err(_) => return Ok(Reply::NoAnswer),
    }
    let _ = send.finish();
    match tokio::time::timeout(REPLY_TIMEOUT, read_reply(&mut recv)).await {
        Ok(reply) => Ok(reply),
        Err(_) => Ok(Reply::NoAnswer),
    }
}

async fn read_reply(recv: &mut quinn::RecvStream) -> Reply {
    let mut len = [0u8; 4];
    match recv.read_exact(&mut len).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => {
            return Reply::Closed("stream finished without a response".into());
        }
        Err(quinn::ReadExactError::FinishedEarly(n)) => {
            return Reply::Malformed(format!("a response frame cut off after {n} bytes"));
        }
        Err(quinn::ReadExactError::ReadError(e)) => return Reply::Closed(e.to_string()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Reply::Malformed(format!("a response frame of {len} bytes"));
    }
    let mut body = vec![0u8; len];
    if let Err(e) = recv.read_exact(&mut body).await {
        return Reply::Malformed(format!("a response frame body cut off: {e}"));
    }
    let response: Response = match wire::decode(&body) {
        Ok(r) => r,
        Err(e) => {
            return Reply::Malformed(format!(
                "{e:#}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ));
        }
    };
    match response {
        Response::Denied { reason } => Reply::Denied(reason),
        Response::Chunk { len } if len > MAX_CHUNK_READ => Reply::Served {
            response: Response::Chunk { len },
            bytes: Vec::new(),
        },
        Response::Chunk { len } => {
            let mut bytes = vec![0u8; len as usize];
            if let Err(e) = recv.read_exact(&mut bytes).await {
                return Reply::Malformed(format!("chunk of {len} bytes cut off: {e}"));
            }
            Reply::Served {
                response: Response::Chunk { len },
                bytes,
            }
        }
        other => Reply::Served {
            response: other,
            bytes: Vec::new(),
        },
    }
}

/// Sends `bytes` on a new announce (unidirectional) stream and finishes it.
pub async fn announce(conn: &quinn::Connection, bytes: &[u8]) -> Result<()> {
    let mut send = tokio::time::timeout(REPLY_TIMEOUT, conn.open_uni())
        .await
        .map_err(|_| anyhow!("could not open an announce stream in time"))?
        .context("opening an announce stream")?;
    // A target that stops reading must not stall the checker.
    if let Ok(Ok(())) = tokio::time::timeout(REPLY_TIMEOUT, send.write_all(bytes)).await {
        let _ = send.finish();
    }
    Ok(())
}

/// Whether the target closes `conn` within `within`.
pub async fn closes_within(conn: &quinn::Connection, within: Duration) -> bool {
    tokio::time::timeout(within, conn.closed()).await.is_ok()
}

/// Opens `n` request streams, sends half a length prefix on each and leaves
/// them hanging; the caller then drops the connection.
pub async fn abandon_streams(conn: &quinn::Connection, n: usize) -> Result<usize> {
    let mut streams = Vec::new();
    for _ in 0..n {
        let Ok(Ok((mut send, recv))) =
            tokio::time::timeout(Duration::from_millis(500), conn.open_bi()).await
        else {
            break;
        };
        if send.write_all(&[0, 0]).await.is_err() {
            break;
        }
        streams.push((send, recv));
    }
    if streams.is_empty() {
        bail!("could not open a single request stream");
    }
    // Give the target a moment to start a handler per stream.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let opened = streams.len();
    conn.close(7u32.into(), b"abandoned");
    drop(streams);
    Ok(opened)
}
