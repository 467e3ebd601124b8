//! The mesh: connections to other peers, the hello exchange, their advertised
//! libraries, and the catalog-filtered view of what can be downloaded.

use crate::peer::redial::Ending;
use crate::peer::{Node, serve};
use crate::protocol::control::CommandError;
use crate::protocol::control::ErrorCode;
use crate::protocol::control::Event;
use crate::protocol::wire::{self, Announce, GameAd, PROTOCOL_VERSION};
use crate::sync::lock;
use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// A connected peer as this peer knows it.
#[derive(Debug, Clone)]
pub struct RemotePeer {
    pub peer_id: String,
    /// The listener address it announced.
    pub addr: String,
    pub conn: quinn::Connection,
    /// Raw advertisement: every ready root with its sentinel version.
    pub games: Vec<GameAd>,
}

/// Known peers by peer ID: one entry per identity, updated in place.
#[derive(Debug, Default)]
pub struct Mesh {
    peers: BTreeMap<String, RemotePeer>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PeerInfo {
    pub peer_id: String,
    pub addr: String,
}

impl Mesh {
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Records a peer after its hello; a known ID gets its address,
    /// connection and library replaced, never a second entry.
    pub fn register(&mut self, peer: RemotePeer) {
        self.peers.insert(peer.peer_id.clone(), peer);
    }

    pub fn set_games(&mut self, peer_id: &str, conn_id: usize, games: Vec<GameAd>) {
        if let Some(p) = self.peers.get_mut(peer_id)
            && p.conn.stable_id() == conn_id
        {
            p.games = games;
        }
    }

    /// Forgets a peer when *this* connection ends (a newer one may have
    /// replaced it already).
    /// Returns whether it did.
    pub fn remove_connection(&mut self, peer_id: &str, conn_id: usize) -> bool {
        if self
            .peers
            .get(peer_id)
            .is_some_and(|p| p.conn.stable_id() == conn_id)
        {
            self.peers.remove(peer_id);
            return true;
        }
        false
    }

    pub fn contains(&self, peer_id: &str) -> bool {
        self.peers.contains_key(peer_id)
    }

    pub fn list(&self) -> Vec<Value> {
        self.peers
            .values()
            .map(|p| json!({ "peer_id": p.peer_id, "addr": p.addr, "games": p.games }))
            .collect()
    }

    /// Peers advertising `game_id` at exactly `version`, in listener
    /// address order (`address_order`).
    pub fn sources(&self, game_id: &str, version: &str) -> Vec<RemotePeer> {
        let mut out: Vec<RemotePeer> = self
            .peers
            .values()
            .filter(|p| {
                p.games
                    .iter()
                    .any(|g| g.game_id == game_id && g.version == version)
            })
            .cloned()
            .collect();
        out.sort_by(|a, b| address_order(&a.addr, &b.addr));
        out
    }

    /// Whether `peer_id` is connected and announced a listener on `port`
    /// (a restarted peer on a new port is not).
    pub fn listens_at(&self, peer_id: &str, port: u16) -> bool {
        self.peers
            .get(peer_id)
            .and_then(|p| p.addr.parse::<SocketAddr>().ok())
            .is_some_and(|a| a.port() == port)
    }

    pub fn all(&self) -> impl Iterator<Item = &RemotePeer> {
        self.peers.values()
    }
}

/// The order of sources (docs/PROTOCOL.md, "How a download works"): by
/// listener address as a number (IPv4 before IPv6, then the IP, then the
/// port; so 198.18.0.9 before 198.18.0.10), an address that does not parse
/// last, by its text. Chunk `i` of a download goes to source `i mod n`, so
/// among tied sources the lowest address serves the first chunk.
pub fn address_order(a: &str, b: &str) -> std::cmp::Ordering {
    let key = |s: &str| match s.parse::<SocketAddr>() {
        Ok(addr) => (
            0,
            Some(SocketAddr::new(addr.ip().to_canonical(), addr.port())),
            String::new(),
        ),
        Err(_) => (1, None, s.to_string()),
    };
    key(a).cmp(&key(b))
}

/// What to do with a received hello.
#[derive(Debug, PartialEq, Eq)]
pub enum HelloVerdict {
    Accept,
    /// Our own hello came back (we dialled ourselves): ignore it.
    FromSelf,
    WrongProtocol(u32),
    /// The hello claims an ID its connection's certificate does not prove
    /// (`proven` is `None` when the remote presented no certificate).
    Unproven {
        claimed: String,
        proven: Option<String>,
    },
}

/// The protocol-level guards on a hello, kept pure for unit tests. `proven`
/// is the ID the connection's TLS handshake proved.
pub fn classify_hello(own_id: &str, proven: Option<&str>, hello: &Announce) -> HelloVerdict {
    match hello {
        Announce::Hello { protocol, .. } if *protocol != PROTOCOL_VERSION => {
            HelloVerdict::WrongProtocol(*protocol)
        }
        Announce::Hello { peer_id, .. } if Some(peer_id.as_str()) != proven => {
            HelloVerdict::Unproven {
                claimed: peer_id.clone(),
                proven: proven.map(str::to_string),
            }
        }
        Announce::Hello { peer_id, .. } if peer_id == own_id => HelloVerdict::FromSelf,
        _ => HelloVerdict::Accept,
    }
}

/// The peer ID a hello claims.
fn claimed_id(hello: &Announce) -> Option<&str> {
    match hello {
        Announce::Hello { peer_id, .. } => Some(peer_id),
        Announce::Library { .. } => None,
    }
}

/// Rows of `list-games`: one per catalog game that is ready or installed
/// locally, or offered by at least one catalog-version peer.
pub fn list_games(node: &Node) -> Vec<Value> {
    let local = node.library();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for peer in lock(&node.mesh).all() {
        for g in &peer.games {
            if node.catalog.version(&g.game_id) == Some(g.version.as_str()) {
                *counts.entry(g.game_id.clone()).or_default() += 1;
            }
        }
    }
    let mut ids: Vec<&String> = counts.keys().collect();
    ids.extend(local.keys().filter(|id| node.catalog.get(id).is_some()));
    ids.sort();
    ids.dedup();
    ids.into_iter()
        .filter_map(|id| {
            let cat = node.catalog.get(id)?;
            let mine = local.get(id);
            let local_version = mine.and_then(|g| g.version.clone());
            let downloaded = local_version.as_deref() == Some(cat.version.as_str());
            let peer_count = counts.get(id).copied().unwrap_or(0);
            let installed = mine.is_some_and(|g| g.installed);
            let availability = match (downloaded, installed) {
                (true, _) => "Downloaded",
                (false, true) => "LocalOnly",
                (false, false) if peer_count > 0 => "Remote",
                (false, false) => return None,
            };
            Some(json!({
                "game_id": id,
                "name": cat.name,
                "eti_game_version": cat.version,
                "peer_count": peer_count,
                "downloaded": downloaded,
                "installed": installed,
                "availability": availability,
                "local_version": local_version,
                "operation": node.operation(id),
            }))
        })
        .collect()
}

/// Dials `addr` and waits for the remote's hello.
pub async fn connect(node: &Arc<Node>, addr: &str) -> Result<PeerInfo, CommandError> {
    let target: SocketAddr = addr
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            CommandError::new(
                ErrorCode::BadRequest,
                format!("cannot resolve address {addr:?}"),
            )
        })?;
    if is_self(node.addr, target) {
        return Err(CommandError::new(
            ErrorCode::SelfConnect,
            format!("{addr} is this peer's own listener"),
        ));
    }
    let connecting = node
        .endpoint
        .connect(target, crate::protocol::transport::SERVER_NAME)
        .map_err(|e| {
            CommandError::new(
                ErrorCode::ConnectFailed,
                format!("connecting to {addr}: {e}"),
            )
        })?;
    let conn = tokio::time::timeout(HELLO_TIMEOUT, connecting)
        .await
        .map_err(|_| {
            CommandError::new(
                ErrorCode::ConnectFailed,
                format!("no QUIC answer from {addr}"),
            )
        })?
        .map_err(|e| {
            CommandError::new(
                ErrorCode::ConnectFailed,
                format!("connecting to {addr}: {e}"),
            )
        })?;
    let (tx, rx) = oneshot::channel();
    tokio::spawn(run_connection(node.clone(), conn, Some(tx)));
    match tokio::time::timeout(HELLO_TIMEOUT, rx).await {
        Ok(Ok(Ok(info))) => Ok(info),
        Ok(Ok(Err(e))) => Err(CommandError::new(
            ErrorCode::ConnectFailed,
            format!("{addr}: {e:#}"),
        )),
        _ => Err(CommandError::new(
            ErrorCode::ConnectFailed,
            format!("{addr} sent no hello"),
        )),
    }
}

fn is_self(own: SocketAddr, target: SocketAddr) -> bool {
    own.port() == target.port()
        && (own.ip() == target.ip()
            || own.ip().is_unspecified()
                && (target.ip().is_loopback() || target.ip().is_unspecified()))
}

/// Accepts inbound connections for the life of the peer.
pub async fn accept_loop(node: Arc<Node>) {
    while let Some(incoming) = node.endpoint.accept().await {
        let node = node.clone();
        tokio::spawn(async move {
            match incoming.await {
                Ok(conn) if is_bulk(&conn) => serve::accept_requests(node, conn).await,
                Ok(conn) => run_connection(node, conn, None).await,
                Err(e) => tracing::warn!("inbound connection failed: {e}"),
            }
        });
    }
}

/// Whether the remote opened a chunk-requests-only connection (see
/// `tls::ALPN_BULK`); those get the same serving gates and nothing else.
fn is_bulk(conn: &quinn::Connection) -> bool {
    conn.handshake_data()
        .and_then(|h| h.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|h| h.protocol)
        .is_some_and(|p| p == crate::protocol::transport::ALPN_BULK)
}

/// Drives one connection: announce our library, serve requests, and track
/// the remote's hello and library updates until the connection ends.
async fn run_connection(
    node: Arc<Node>,
    conn: quinn::Connection,
    hello_tx: Option<oneshot::Sender<Result<PeerInfo>>>,
) {
    let remote = conn.remote_address();
    let dialled = hello_tx.is_some();
    tokio::spawn(announce(node.clone(), conn.clone()));
    tokio::spawn(serve::accept_requests(node.clone(), conn.clone()));
    let outcome = track_remote(&node, &conn, hello_tx).await;
    match outcome {
        Ok(Some((peer_id, addr))) => {
            let removed = lock(&node.mesh).remove_connection(&peer_id, conn.stable_id());
            let ending = Ending::of(conn.close_reason().as_ref());
            tracing::info!(%peer_id, %remote, ?ending, "peer disconnected");
            if removed {
                lock(&node.redial).lost(Instant::now(), &peer_id, &addr, dialled, ending);
            }
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(%remote, "dropping connection: {e:#}");
            conn.close(1u32.into(), b"protocol error");
            // Named by the ID its certificate proves (what it claimed may
            // be a lie).
            node.out.event(
                Event::PeerDropped,
                json!({
                    "peer_addr": remote.to_string(),
                    "peer_id": crate::protocol::transport::peer_id_of_connection(&conn),
                    "error": format!("{e:#}"),
                }),
            );
        }
    }
}

/// Reads the remote's announce stream. Returns its peer ID and listener
/// once the stream ends, `None` for a hello from ourselves.
async fn track_remote(
    node: &Arc<Node>,
    conn: &quinn::Connection,
    mut hello_tx: Option<oneshot::Sender<Result<PeerInfo>>>,
) -> Result<Option<(String, String)>> {
    let first = async {
        let mut recv = conn
            .accept_uni()
            .await
            .context("waiting for the announce stream")?;
        let hello: Announce = wire::read_frame(&mut recv)
            .await?
            .context("announce stream ended before the hello")?;
        anyhow::Ok((recv, hello))
    };
    let (mut recv, hello) = match tokio::time::timeout(HELLO_TIMEOUT, first).await {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => {
            if let Some(tx) = hello_tx.take() {
                let _ = tx.send(Err(anyhow::anyhow!("{e:#}")));
            }
            return Err(e);
        }
        Err(_) => bail!("no hello within {HELLO_TIMEOUT:?}"),
    };
    let proven = crate::protocol::transport::peer_id_of_connection(conn);
    match classify_hello(&node.id, proven.as_deref(), &hello) {
        HelloVerdict::Accept => {}
        HelloVerdict::Unproven { claimed, proven } => {
            let msg = format!(
                "refused a hello from {}: it claims peer ID {claimed}, its certificate proves {}",
                conn.remote_address(),
                proven.as_deref().unwrap_or("none")
            );
            tracing::warn!("{msg}");
            conn.close(4u32.into(), b"peer id not proven");
            node.out.event(
                Event::PeerRefused,
                json!({
                    "peer_addr": conn.remote_address().to_string(),
                    "peer_id": proven,
                    "claimed_peer_id": claimed,
                    "error": msg,
                }),
            );
            if let Some(tx) = hello_tx.take() {
                let _ = tx.send(Err(anyhow::anyhow!(msg)));
            }
            return Ok(None);
        }
        HelloVerdict::FromSelf => {
            tracing::info!("ignoring a hello from ourselves");
            conn.close(2u32.into(), b"self");
            if let Some(tx) = hello_tx.take() {
                let _ = tx.send(Err(anyhow::anyhow!("the remote is this peer itself")));
            }
            return Ok(None);
        }
        HelloVerdict::WrongProtocol(v) => {
            let msg = format!("peer speaks wire protocol {v}, this peer speaks {PROTOCOL_VERSION}");
            tracing::warn!("{msg}");
            node.out.event(
                Event::PeerRefused,
                json!({
                    "peer_addr": conn.remote_address().to_string(),
                    "peer_id": proven,
                    "claimed_peer_id": claimed_id(&hello),
                    "error": msg,
                }),
            );
            conn.close(3u32.into(), b"protocol version");
            if let Some(tx) = hello_tx.take() {
                let _ = tx.send(Err(anyhow::anyhow!(msg)));
            }
            return Ok(None);
        }
    }
    let Announce::Hello {
        peer_id,
        addr,
        games,
        ..
    } = hello
    else {
        bail!("first announce frame was not a hello");
    };
    let Ok(announced) = addr.parse::<SocketAddr>() else {
        bail!("hello carries an invalid address {addr:?}");
    };
    let addr = listener_addr(announced, conn.remote_address()).to_string();
    tracing::info!(%peer_id, %addr, games = games.len(), "peer connected");
    lock(&node.mesh).register(RemotePeer {
        peer_id: peer_id.clone(),
        addr: addr.clone(),
        conn: conn.clone(),
        games,
    });
    if let Some(tx) = hello_tx.take() {
        let _ = tx.send(Ok(PeerInfo {
            peer_id: peer_id.clone(),
            addr: addr.clone(),
        }));
    }
    loop {
        match wire::read_frame::<Announce>(&mut recv).await {
            Ok(Some(Announce::Library { games })) => {
                tracing::info!(%peer_id, games = games.len(), "library update");
                lock(&node.mesh).set_games(&peer_id, conn.stable_id(), games);
            }
            Ok(Some(Announce::Hello { .. })) => {
                lock(&node.mesh).remove_connection(&peer_id, conn.stable_id());
                bail!("second hello on the announce stream");
            }
            Ok(None) => return Ok(Some((peer_id, addr))),
            Err(e) => {
                // A lost connection is normal; a malformed frame is not.
                if conn.close_reason().is_none() {
                    lock(&node.mesh).remove_connection(&peer_id, conn.stable_id());
                    return Err(e.context(format!("announce stream of {peer_id}")));
                }
                return Ok(Some((peer_id, addr)));
            }
        }
    }
}

/// Where a remote's listener is reached: a peer listening on 0.0.0.0 (or
/// `::`) announces that, not an address anyone can dial, so its IP is taken
/// from the connection (bulk connections and `list-peers` use it).
fn listener_addr(announced: SocketAddr, remote: SocketAddr) -> SocketAddr {
    if announced.ip().is_unspecified() {
        SocketAddr::new(remote.ip().to_canonical(), announced.port())
    } else {
        announced
    }
}

/// Sends our hello, then the library each time it changes.
async fn announce(node: Arc<Node>, conn: quinn::Connection) {
    let result = async {
        let mut send = conn.open_uni().await?;
        let mut adverts = node.adverts();
        let games = adverts.borrow_and_update().clone();
        let peer_id = match &node.hostile {
            Some(h) => {
                h.before_hello().await;
                h.hello_id(&node.id).to_string()
            }
            None => node.id.clone(),
        };
        let hello = Announce::Hello {
            protocol: PROTOCOL_VERSION,
            peer_id,
            addr: node.addr.to_string(),
            games,
        };
        wire::write_frame(&mut send, &hello).await?;
        if let Some(h) = &node.hostile {
            h.after_hello(&mut send, &conn).await?;
        }
        // Ends with the connection, not only at the next library change: a
        // task waiting on an unchanging library held a dead connection
        // (and its buffers) for good, ~1.3 MiB per SIGKILLed receiver in
        // the soak (S64).
        loop {
            tokio::select! {
                changed = adverts.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                _ = conn.closed() => break,
            }
            let games = adverts.borrow_and_update().clone();
            wire::write_frame(&mut send, &Announce::Library { games }).await?;
        }
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = result {
        tracing::debug!("announce stream ended: {e:#}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(peer_id: &str, protocol: u32) -> Announce {
        Announce::Hello {
            protocol,
            peer_id: peer_id.into(),
            addr: "127.0.0.1:9".into(),
            games: vec![],
        }
    }

    #[test]
    fn inbound_hello_from_self_is_ignored() {
        assert_eq!(
            classify_hello("me", Some("me"), &hello("me", PROTOCOL_VERSION)),
            HelloVerdict::FromSelf
        );
        assert_eq!(
            classify_hello("me", Some("you"), &hello("you", PROTOCOL_VERSION)),
            HelloVerdict::Accept
        );
    }

    #[test]
    fn hello_must_carry_the_proven_id() {
        let unproven = |claimed: &str, proven: Option<&str>| HelloVerdict::Unproven {
            claimed: claimed.into(),
            proven: proven.map(str::to_string),
        };
        assert_eq!(
            classify_hello("me", Some("mallory"), &hello("you", PROTOCOL_VERSION)),
            unproven("you", Some("mallory"))
        );
        assert_eq!(
            classify_hello("me", None, &hello("you", PROTOCOL_VERSION)),
            unproven("you", None)
        );
        // Claiming our own ID with another key is an impersonation, not a
        // self-connect.
        assert_eq!(
            classify_hello("me", Some("mallory"), &hello("me", PROTOCOL_VERSION)),
            unproven("me", Some("mallory"))
        );
    }

    #[test]
    fn hello_of_unknown_protocol_is_refused() {
        assert_eq!(
            classify_hello("me", Some("you"), &hello("you", PROTOCOL_VERSION + 1)),
            HelloVerdict::WrongProtocol(PROTOCOL_VERSION + 1)
        );
    }

    #[test]
    fn unspecified_listener_ip_is_taken_from_the_connection() -> Result<()> {
        let remote: SocketAddr = "198.18.0.7:51000".parse()?;
        assert_eq!(
            listener_addr("0.0.0.0:4000".parse()?, remote),
            "198.18.0.7:4000".parse::<SocketAddr>()?
        );
        assert_eq!(
            listener_addr("127.0.0.1:4000".parse()?, remote),
            "127.0.0.1:4000".parse::<SocketAddr>()?
        );
        Ok(())
    }

    #[test]
    fn sources_are_ordered_by_address_as_a_number() {
        let mut addrs = vec![
            "garbage",
            "[::1]:5",
            "198.18.0.10:4000",
            "198.18.0.9:4001",
            "198.18.0.9:4000",
            "127.0.0.1:9",
        ];
        addrs.sort_by(|a, b| address_order(a, b));
        assert_eq!(
            addrs,
            [
                "127.0.0.1:9",
                "198.18.0.9:4000",
                "198.18.0.9:4001",
                "198.18.0.10:4000",
                "[::1]:5",
                "garbage"
            ]
        );
    }

    #[test]
    fn own_listener_is_recognised_as_self() -> Result<()> {
        let own: SocketAddr = "127.0.0.1:4000".parse()?;
        assert!(is_self(own, "127.0.0.1:4000".parse()?));
        assert!(!is_self(own, "127.0.0.1:4001".parse()?));
        let any: SocketAddr = "0.0.0.0:4000".parse()?;
        assert!(is_self(any, "127.0.0.1:4000".parse()?));
        Ok(())
    }
}
