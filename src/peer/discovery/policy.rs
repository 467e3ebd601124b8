//! What discovery does with what it hears: a pure state machine (no sockets,
//! no clock of its own) fed by the driver in `discovery/mod.rs`.
//!
//! Rules, each with a unit test below:
//! - our own beacon (our peer ID) is ignored;
//! - a peer ID heard for the first time, or at a new address (a restart on
//!   a new port), is *discovered*: the driver prints `peer-discovered` and
//!   answers with a beacon of its own at once, so the newcomer learns us
//!   without waiting for our next periodic one (answers are `REPLY_GAP`
//!   apart; one asked for sooner goes out at the first `tick` after it);
//! - a discovered peer the mesh is not connected to is dialled. Of two peers
//!   that hear each other, the one with the smaller ID dials at once and the
//!   other waits `DEFER` first, so a pair normally ends up with one
//!   connection, not two dialled at the same moment; the wait still lets
//!   the larger one connect when the smaller cannot;
//! - a peer already connected, or being dialled, is not dialled again; a
//!   failed dial is retried after `RETRY` while its beacons keep coming;
//! - dials are bounded (`MAX_DIALS_PER_SEC` started per second,
//!   `MAX_IN_FLIGHT` at once) and so is the table (`MAX_KNOWN`), so a flood
//!   of made-up peer IDs costs a few dials a second and bounded memory;
//! - a peer not heard for `EXPIRY` is forgotten (found again by its next
//!   beacon).

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long the larger ID of a pair waits for the smaller one to dial.
pub const DEFER: Duration = Duration::from_millis(1500);
/// Least time between two dials of one peer at one address.
pub const RETRY: Duration = Duration::from_secs(2);
/// A peer silent this long is forgotten: ten missed beacons.
pub const EXPIRY: Duration = Duration::from_secs(10);
pub const MAX_DIALS_PER_SEC: usize = 8;
pub const MAX_IN_FLIGHT: usize = 8;
pub const MAX_KNOWN: usize = 256;
/// Least time between two answering beacons.
pub const REPLY_GAP: Duration = Duration::from_millis(100);

#[derive(Debug)]
struct Entry {
    addr: SocketAddr,
    /// When this peer was first heard at `addr`.
    since: Instant,
    last_heard: Instant,
    dialling: bool,
    failed_at: Option<Instant>,
}

/// What to do about one beacon.
#[derive(Debug, PartialEq, Eq)]
pub enum Heard {
    /// Our own beacon came back.
    Own,
    /// A new peer ID while the table is full: dropped.
    TableFull,
    Peer {
        /// New ID or new address: print `peer-discovered`.
        discovered: bool,
        /// Dial it now (already counted as in flight: report the outcome
        /// with `dial_done`).
        dial: bool,
        /// Send our beacon now.
        announce: bool,
    },
}

#[derive(Debug)]
pub struct Policy {
    own_id: String,
    peers: BTreeMap<String, Entry>,
    /// Start times of the dials of the last second.
    recent_dials: VecDeque<Instant>,
    in_flight: usize,
    last_reply: Option<Instant>,
    reply_pending: bool,
}

/// What a `tick` asks for.
#[derive(Debug, PartialEq, Eq, Default)]
pub struct Due {
    pub dials: Vec<(String, SocketAddr)>,
    /// Send our beacon now (an answer held back by `REPLY_GAP`).
    pub announce: bool,
}

impl Policy {
    pub fn new(own_id: &str) -> Self {
        Self {
            own_id: own_id.to_string(),
            peers: BTreeMap::new(),
            recent_dials: VecDeque::new(),
            in_flight: 0,
            last_reply: None,
            reply_pending: false,
        }
    }

    pub fn known(&self) -> usize {
        self.peers.len()
    }

    /// A beacon of `peer_id` whose listener is `addr`; `connected` says
    /// whether the mesh already holds that peer at that listener.
    pub fn heard(
        &mut self,
        now: Instant,
        peer_id: &str,
        addr: SocketAddr,
        connected: bool,
    ) -> Heard {
        if peer_id == self.own_id {
            return Heard::Own;
        }
        let full = self.peers.len() >= MAX_KNOWN;
        let discovered = match self.peers.get_mut(peer_id) {
            Some(e) if e.addr == addr => false,
            Some(e) => {
                // Restarted (or moved): a fresh start for its dial rules.
                e.addr = addr;
                e.since = now;
                e.failed_at = None;
                true
            }
            None if full => return Heard::TableFull,
            None => {
                self.peers.insert(
                    peer_id.to_string(),
                    Entry {
                        addr,
                        since: now,
                        last_heard: now,
                        dialling: false,
                        failed_at: None,
                    },
                );
                true
            }
        };
        if let Some(e) = self.peers.get_mut(peer_id) {
            e.last_heard = now;
        }
        let dial = !connected && self.try_dial(now, peer_id);
        let announce = discovered && self.may_reply(now);
        Heard::Peer {
            discovered,
            dial,
            announce,
        }
    }

    /// Periodic work: forgets silent peers and returns the dials now due
    /// (deferred ones, retries, ones the rate limit held back) and whether
    /// a held-back answer is due.
    pub fn tick(&mut self, now: Instant, connected: impl Fn(&str, SocketAddr) -> bool) -> Due {
        let announce = self.reply_pending && self.may_reply(now);
        self.peers.retain(|_, e| now < e.last_heard + EXPIRY);
        let candidates: Vec<(String, SocketAddr)> = self
            .peers
            .iter()
            .filter(|(id, e)| !e.dialling && !connected(id, e.addr))
            .map(|(id, e)| (id.clone(), e.addr))
            .collect();
        let dials = candidates
            .into_iter()
            .filter(|(id, _)| self.try_dial(now, id))
            .collect();
        Due { dials, announce }
    }

    /// Whether an answering beacon may go out now; one that may not is
    /// remembered for a later `tick`.
    fn may_reply(&mut self, now: Instant) -> bool {
        if self.last_reply.is_some_and(|t| now < t + REPLY_GAP) {
            self.reply_pending = true;
            return false;
        }
        self.last_reply = Some(now);
        self.reply_pending = false;
        true
    }

    /// The outcome of a dial `heard` or `tick` asked for (once per dial,
    /// also when the peer was forgotten meanwhile).
    pub fn dial_done(&mut self, now: Instant, peer_id: &str, ok: bool) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if let Some(e) = self.peers.get_mut(peer_id)
            && e.dialling
        {
            e.dialling = false;
            e.failed_at = (!ok).then_some(now);
        }
    }

    /// Starts a dial of `peer_id` if every rule allows it.
    fn try_dial(&mut self, now: Instant, peer_id: &str) -> bool {
        while self
            .recent_dials
            .front()
            .is_some_and(|t| now >= *t + Duration::from_secs(1))
        {
            self.recent_dials.pop_front();
        }
        if self.recent_dials.len() >= MAX_DIALS_PER_SEC || self.in_flight >= MAX_IN_FLIGHT {
            return false;
        }
        let smaller = self.own_id.as_str() < peer_id;
        let Some(e) = self.peers.get_mut(peer_id) else {
            return false;
        };
        let retry_ok = e.failed_at.is_none_or(|t| now >= t + RETRY);
        let turn = smaller || now >= e.since + DEFER;
        if e.dialling || !retry_ok || !turn {
            return false;
        }
        e.dialling = true;
        self.in_flight += 1;
        self.recent_dials.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // "m" sorts between "a…" (smaller) and "z…" (larger).
    const ME: &str = "m";

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([198, 18, 0, 2], port))
    }

    fn peer(discovered: bool, dial: bool, announce: bool) -> Heard {
        Heard::Peer {
            discovered,
            dial,
            announce,
        }
    }

    #[test]
    fn own_beacon_is_ignored() {
        let mut p = Policy::new(ME);
        let t = Instant::now();
        assert_eq!(p.heard(t, ME, addr(1), false), Heard::Own);
        assert_eq!(p.known(), 0);
        assert_eq!(p.tick(t + DEFER, |_, _| false), Due::default());
    }

    #[test]
    fn larger_id_is_dialled_at_once_and_announced_to() {
        let mut p = Policy::new(ME);
        let t = Instant::now();
        assert_eq!(p.heard(t, "z1", addr(1), false), peer(true, true, true));
        // Its next beacon while the dial runs: nothing new.
        let t1 = t + Duration::from_secs(1);
        assert_eq!(p.heard(t1, "z1", addr(1), false), peer(false, false, false));
        assert!(p.tick(t1, |_, _| false).dials.is_empty(), "dial in flight");
    }

    #[test]
    fn smaller_id_gets_time_to_dial_us_first() {
        let mut p = Policy::new(ME);
        let t = Instant::now();
        assert_eq!(p.heard(t, "a1", addr(1), false), peer(true, false, true));
        assert!(p.tick(t + DEFER / 2, |_, _| false).dials.is_empty());
        // It did not connect to us in time: we dial.
        assert_eq!(
            p.tick(t + DEFER, |_, _| false).dials,
            vec![("a1".into(), addr(1))]
        );
    }

    #[test]
    fn smaller_id_that_connected_is_not_dialled() {
        let mut p = Policy::new(ME);
        let t = Instant::now();
        p.heard(t, "a1", addr(1), false);
        assert!(
            p.tick(t + DEFER, |id, a| id == "a1" && a == addr(1))
                .dials
                .is_empty()
        );
        assert_eq!(
            p.heard(t + DEFER, "a1", addr(1), true),
            peer(false, false, false)
        );
    }

    #[test]
    fn connected_peer_is_not_dialled_again() {
        let mut p = Policy::new(ME);
        let t = Instant::now();
        assert_eq!(p.heard(t, "z1", addr(1), true), peer(true, false, true));
        assert!(p.tick(t + EXPIRY / 2, |_, _| true).dials.is_empty());
    }

    #[test]
    fn failed_dial_is_retried_after_a_pause() {
        let mut p = Policy::new(ME);
        let t = Instant::now();
        assert_eq!(p.heard(t, "z1", addr(1), false), peer(true, true, true));
        let failed = t + Duration::from_millis(100);
        p.dial_done(failed, "z1", false);
        assert_eq!(
            p.heard(failed, "z1", addr(1), false),
            peer(false, false, false)
        );
        assert!(p.tick(failed + RETRY / 2, |_, _| false).dials.is_empty());
        assert_eq!(
            p.tick(failed + RETRY, |_, _| false).dials,
            vec![("z1".into(), addr(1))]
        );
    }

    #[test]
    fn restarted_peer_on_a_new_port_is_discovered_and_dialled_again() {
        let mut p = Policy::new(ME);
        let t = Instant::now();
        p.heard(t, "z1", addr(1), false);
        p.dial_done(t, "z1", true);
        let later = t + Duration::from_secs(3);
        // The mesh still holds the old connection at port 1, not port 2.
        assert_eq!(p.heard(later, "z1", addr(2), false), peer(true, true, true));
    }

    #[test]
    fn restarted_peer_after_a_failed_dial_needs_no_retry_pause() {
        let mut p = Policy::new(ME);
        let t = Instant::now();
        p.heard(t, "z1", addr(1), false);
        let failed = t + Duration::from_millis(100);
        p.dial_done(failed, "z1", false);
        let back = failed + RETRY / 4;
        assert_eq!(p.heard(back, "z1", addr(2), false), peer(true, true, true));
    }

    #[test]
    fn silent_peer_is_forgotten_and_found_again() {
        let mut p = Policy::new(ME);
        let t = Instant::now();
        p.heard(t, "z1", addr(1), true);
        assert!(
            p.tick(t + EXPIRY - Duration::from_millis(1), |_, _| true)
                .dials
                .is_empty()
        );
        assert_eq!(p.known(), 1);
        p.tick(t + EXPIRY, |_, _| true);
        assert_eq!(p.known(), 0);
        let back = t + EXPIRY + Duration::from_secs(1);
        assert_eq!(p.heard(back, "z1", addr(1), false), peer(true, true, true));
    }

    #[test]
    fn dials_are_rate_limited_and_resume() {
        let mut p = Policy::new(ME);
        let t = Instant::now();
        let mut dialled = Vec::new();
        for i in 0..50u16 {
            let id = format!("z{i:02}");
            if let Heard::Peer { dial: true, .. } = p.heard(t, &id, addr(i + 1), false) {
                dialled.push(id);
            }
        }
        let batch = MAX_DIALS_PER_SEC.min(MAX_IN_FLIGHT);
        assert_eq!(dialled.len(), batch);
        assert!(
            p.tick(t + Duration::from_millis(500), |_, _| false)
                .dials
                .is_empty()
        );
        // The dials fail, a second passes: the next batch goes out, and not
        // one of it is a peer whose dial just failed.
        for id in &dialled {
            p.dial_done(t, id, false);
        }
        let next = p.tick(t + Duration::from_secs(1), |_, _| false).dials;
        assert_eq!(next.len(), batch);
        assert!(next.iter().all(|(id, _)| !dialled.contains(id)), "{next:?}");
    }

    #[test]
    fn answering_beacons_are_spaced() {
        let mut p = Policy::new(ME);
        let t = Instant::now();
        assert_eq!(p.heard(t, "z1", addr(1), true), peer(true, false, true));
        assert_eq!(p.heard(t, "z2", addr(2), true), peer(true, false, false));
        assert_eq!(
            p.heard(t + REPLY_GAP, "z3", addr(3), true),
            peer(true, false, true)
        );
    }

    #[test]
    fn table_is_bounded_but_known_peers_still_count() {
        let mut p = Policy::new(ME);
        let t = Instant::now();
        for i in 0..MAX_KNOWN {
            p.heard(t, &format!("z{i:04}"), addr(1), true);
        }
        assert_eq!(p.heard(t, "zextra", addr(1), false), Heard::TableFull);
        assert_eq!(p.known(), MAX_KNOWN);
        assert_eq!(
            p.heard(t, "z0000", addr(1), true),
            peer(false, false, false)
        );
    }
}
