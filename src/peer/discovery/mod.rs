//! LAN discovery (`peer --discover`): peers on one LAN find each other by a
//! UDP multicast beacon, as Syncthing's local discovery does, and connect
//! through the mesh's ordinary `connect` path. Group, port, format and
//! timings are documented in docs/PROTOCOL.md ("LAN discovery").
//!
//! A beacon rather than mDNS (`mdns-sd`): the beacon is one datagram we
//! parse ourselves, its timing is ours (an mDNS browser's queries back off
//! to ever longer gaps), it needs no daemon thread and no port shared with
//! the host's own mDNS responder, and it adds no dependency.
//!
//! This file is the I/O: the sockets, the timers and the dials. What to do
//! with a beacon is `policy`; what a beacon says is `beacon`.

pub mod beacon;
pub mod policy;

use crate::peer::{Node, lock, mesh};
use anyhow::{Context, Result, bail};
use beacon::Beacon;
use policy::{Heard, Policy};
use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, Type};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// An organisation-local group (RFC 2365), so routers of a site may carry
/// it but it never leaves the site; TTL 1 keeps it on the link anyway.
pub const GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 76, 83);
pub const PORT: u16 = 47683;
/// Periodic beacon; a newcomer is answered at once besides.
pub const ANNOUNCE_EVERY: Duration = Duration::from_secs(1);
/// How often deferred dials, held-back answers, retries and expiry are
/// looked at.
const POLICY_TICK: Duration = Duration::from_millis(100);
/// Interfaces come and go (a cable, a DHCP lease): looked up this often.
const INTERFACES_EVERY: Duration = Duration::from_secs(5);
/// At most this many dropped-datagram warnings per `LOG_WINDOW`.
const LOG_BURST: u32 = 5;
const LOG_WINDOW: Duration = Duration::from_secs(10);

/// Discovery's sockets, bound before the peer reports `ready` so that a
/// LAN without multicast fails the start instead of finding nobody.
pub struct Discovery {
    node: Arc<Node>,
    /// Bound to the group address: only its datagrams arrive, no unicast.
    recv: UdpSocket,
    send: UdpSocket,
    joined: BTreeSet<Ipv4Addr>,
}

impl Discovery {
    pub fn bind(node: Arc<Node>) -> Result<Discovery> {
        let recv = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
            .context("creating the discovery socket")?;
        // Every peer on a host binds the same port; each gets every beacon.
        recv.set_reuse_address(true)
            .context("SO_REUSEADDR on the discovery socket")?;
        recv.bind(&SockAddr::from(SocketAddrV4::new(GROUP, PORT)))
            .with_context(|| format!("binding the discovery socket to {GROUP}:{PORT}"))?;
        recv.set_nonblocking(true)?;
        let send = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
            .context("creating the beacon socket")?;
        send.set_multicast_ttl_v4(1)?;
        // Peers on this same host hear us too.
        send.set_multicast_loop_v4(true)?;
        send.bind(&SockAddr::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)))
            .context("binding the beacon socket")?;
        send.set_nonblocking(true)?;
        let mut d = Discovery {
            node,
            recv: UdpSocket::from_std(recv.into()).context("registering the discovery socket")?,
            send: UdpSocket::from_std(send.into()).context("registering the beacon socket")?,
            joined: BTreeSet::new(),
        };
        d.join_interfaces();
        if d.joined.is_empty() {
            bail!(
                "--discover: no interface could join multicast group {GROUP} \
                 (no multicast-capable IPv4 interface is up, or no route covers 224.0.0.0/4)"
            );
        }
        Ok(d)
    }

    /// Joins the group on every multicast interface not joined yet and
    /// forgets interfaces that went away (the kernel dropped those).
    fn join_interfaces(&mut self) {
        let mut now = multicast_interfaces();
        if now.is_empty() {
            // Let the kernel pick by route (e.g. one for 224.0.0.0/4).
            now.insert(Ipv4Addr::UNSPECIFIED);
        }
        self.joined.retain(|a| now.contains(a));
        for iface in now {
            if self.joined.contains(&iface) {
                continue;
            }
            match SockRef::from(&self.recv).join_multicast_v4(&GROUP, &iface) {
                Ok(()) => {
                    tracing::info!(interface = %iface, "discovery listening on {GROUP}:{PORT}");
                    self.joined.insert(iface);
                }
                Err(e) => tracing::warn!(interface = %iface, "cannot join {GROUP}: {e}"),
            }
        }
    }

    /// Sends our beacon out of every joined interface.
    async fn announce(&self) {
        let beacon = Beacon {
            peer_id: self.node.id.clone(),
            port: self.node.addr.port(),
        }
        .encode();
        let to = SocketAddr::from((GROUP, PORT));
        for iface in &self.joined {
            let sent = match SockRef::from(&self.send).set_multicast_if_v4(iface) {
                Ok(()) => self.send.send_to(&beacon, to).await.map(|_| ()),
                Err(e) => Err(e),
            };
            if let Err(e) = sent {
                tracing::debug!(interface = %iface, "sending the discovery beacon: {e}");
            }
        }
    }

    /// Runs for the life of the peer.
    pub async fn run(mut self) {
        let mut policy = Policy::new(&self.node.id);
        // Apart, so that garbage cannot hide a full table from the log.
        let mut drops = DropLog::default();
        let mut full = DropLog::default();
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(String, bool)>();
        let mut announce = tokio::time::interval(ANNOUNCE_EVERY);
        let mut tick = tokio::time::interval(POLICY_TICK);
        let mut interfaces = tokio::time::interval(INTERFACES_EVERY);
        for t in [&mut announce, &mut tick, &mut interfaces] {
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        // One more byte than a beacon may have, to see an oversized datagram.
        let mut buf = vec![0u8; beacon::MAX_LEN + 1];
        loop {
            tokio::select! {
                got = self.recv.recv_from(&mut buf) => match got {
                    Ok((n, src)) => {
                        if self.heard(&mut policy, [&mut drops, &mut full], &buf[..n], src, &done_tx) {
                            self.announce().await;
                        }
                    }
                    Err(e) => {
                        tracing::warn!("discovery socket: {e}");
                        // Never spin on a socket that keeps failing.
                        tokio::time::sleep(POLICY_TICK).await;
                    }
                },
                _ = announce.tick() => self.announce().await,
                _ = tick.tick() => {
                    let due = {
                        let mesh = lock(&self.node.mesh);
                        policy.tick(Instant::now(), |id, addr| mesh.listens_at(id, addr.port()))
                    };
                    for (id, addr) in due.dials {
                        self.dial(id, addr, &done_tx);
                    }
                    if due.announce {
                        self.announce().await;
                    }
                    drops.flush(Instant::now());
                    full.flush(Instant::now());
                }
                _ = interfaces.tick() => self.join_interfaces(),
                Some((id, ok)) = done_rx.recv() => policy.dial_done(Instant::now(), &id, ok),
            }
        }
    }

    /// Handles one datagram; true when our beacon should answer it.
    fn heard(
        &self,
        policy: &mut Policy,
        [drops, full]: [&mut DropLog; 2],
        datagram: &[u8],
        src: SocketAddr,
        done_tx: &mpsc::UnboundedSender<(String, bool)>,
    ) -> bool {
        let now = Instant::now();
        let beacon = match Beacon::parse(datagram) {
            Ok(b) => b,
            Err(e) => {
                drops.drop(now, src, &e.to_string());
                return false;
            }
        };
        if !usable_source(src.ip()) {
            drops.drop(now, src, "the source address cannot be dialled");
            return false;
        }
        let addr = SocketAddr::new(src.ip(), beacon.port);
        let connected = lock(&self.node.mesh).listens_at(&beacon.peer_id, beacon.port);
        match policy.heard(now, &beacon.peer_id, addr, connected) {
            Heard::Own => false,
            Heard::TableFull => {
                full.drop(now, src, "too many peers known; ignoring a new one");
                false
            }
            Heard::Peer {
                discovered,
                dial,
                announce,
            } => {
                if discovered {
                    tracing::info!(peer_id = %beacon.peer_id, %addr, "peer discovered");
                    self.node.out.event(
                        crate::protocol::control::Event::PeerDiscovered,
                        serde_json::json!({ "peer_id": beacon.peer_id, "addr": addr.to_string() }),
                    );
                }
                if dial {
                    self.dial(beacon.peer_id, addr, done_tx);
                }
                announce
            }
        }
    }

    /// Connects to a discovered peer through the mesh, as `connect` does,
    /// and reports the outcome to the policy.
    fn dial(
        &self,
        peer_id: String,
        addr: SocketAddr,
        done: &mpsc::UnboundedSender<(String, bool)>,
    ) {
        let node = self.node.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let ok = match mesh::connect(&node, &addr.to_string()).await {
                Ok(info) if info.peer_id != peer_id => {
                    tracing::warn!(%addr, "discovered as {peer_id}, answered as {}", info.peer_id);
                    true
                }
                Ok(_) => true,
                Err(e) => {
                    tracing::warn!(%peer_id, %addr, "dialling a discovered peer: {}", e.message);
                    false
                }
            };
            let _ = done.send((peer_id, ok));
        });
    }
}

/// A beacon's source must be a unicast address we could dial back.
fn usable_source(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()),
        IpAddr::V6(_) => false,
    }
}

/// IPv4 addresses of the interfaces that are up, multicast-capable and not
/// loopback.
fn multicast_interfaces() -> BTreeSet<Ipv4Addr> {
    let mut found = BTreeSet::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs allocates a list that is only read below and freed
    // once with freeifaddrs; every pointer is checked for null first.
    unsafe {
        if libc::getifaddrs(&mut head) != 0 {
            tracing::warn!("getifaddrs: {}", std::io::Error::last_os_error());
            return found;
        }
        let mut cur = head;
        while let Some(ifa) = cur.as_ref() {
            let flags = ifa.ifa_flags as libc::c_int;
            let wanted = flags & libc::IFF_UP != 0
                && flags & libc::IFF_MULTICAST != 0
                && flags & libc::IFF_LOOPBACK == 0;
            if wanted
                && let Some(sa) = ifa.ifa_addr.as_ref()
                && libc::c_int::from(sa.sa_family) == libc::AF_INET
            {
                let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                found.insert(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)));
            }
            cur = ifa.ifa_next;
        }
        libc::freeifaddrs(head);
    }
    found
}

/// Logs dropped datagrams to stderr without letting a flood flood the log:
/// the first `LOG_BURST` of a window, then one count of the rest.
#[derive(Default)]
struct DropLog {
    window_start: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

impl DropLog {
    fn drop(&mut self, now: Instant, src: SocketAddr, why: &str) {
        self.flush(now);
        self.window_start.get_or_insert(now);
        if self.logged < LOG_BURST {
            self.logged += 1;
            tracing::warn!(%src, "dropping a discovery datagram: {why}");
        } else {
            self.suppressed += 1;
        }
    }

    /// Ends a window that is over, reporting what it kept quiet about.
    fn flush(&mut self, now: Instant) {
        if self.window_start.is_some_and(|t| now >= t + LOG_WINDOW) {
            if self.suppressed > 0 {
                tracing::warn!(
                    "dropped {} more discovery datagrams in {LOG_WINDOW:?}",
                    self.suppressed
                );
            }
            *self = DropLog::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        match s.parse() {
            Ok(ip) => ip,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn only_unicast_ipv4_sources_are_dialled_back() {
        assert!(usable_source(ip("198.18.0.2")));
        for bad in ["0.0.0.0", "239.255.76.83", "255.255.255.255", "::1"] {
            assert!(!usable_source(ip(bad)), "{bad}");
        }
    }

    #[test]
    fn a_flood_of_drops_logs_a_burst_then_starts_over() {
        let mut log = DropLog::default();
        let t = Instant::now();
        let src = SocketAddr::from(([198, 18, 0, 9], 1));
        for _ in 0..100 {
            log.drop(t, src, "garbage");
        }
        assert_eq!(
            (log.logged, log.suppressed),
            (LOG_BURST, 100 - u64::from(LOG_BURST))
        );
        log.flush(t + LOG_WINDOW);
        assert_eq!((log.logged, log.suppressed), (0, 0));
    }
}
