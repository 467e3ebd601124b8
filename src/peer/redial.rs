//! Redialling known peers whose connection died (docs/PROTOCOL.md,
//! "Reconnecting"). `Redial` is the pure policy (no sockets, no clock of its
//! own); `run` is the thin driver that dials through `mesh::connect`.
//!
//! Rules, each with a unit test below:
//! - only a connection this peer dialled is redialled (the dialling side
//!   knows a listener that answered), and only when it died without a close
//!   frame: an idle timeout (a partition, a pulled cable, a killed process)
//!   or a stateless reset. A peer that shut down or closed the connection
//!   on purpose is not redialled;
//! - the first redial is due `FIRST` after the loss; each failed one doubles
//!   the wait, capped at `MAX_GAP`, so a peer that is gone costs one dial
//!   every few seconds;
//! - a peer is given up `GIVE_UP` after its loss (a later `connect`, an
//!   inbound connection or discovery still find it);
//! - a peer the mesh holds again (by any path) is forgotten at once, and a
//!   peer being dialled is not dialled a second time;
//! - at most `MAX_KNOWN` lost peers are remembered (the oldest loss goes).

use crate::peer::{Node, mesh};
use crate::sync::lock;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const FIRST: Duration = Duration::from_millis(250);
pub const MAX_GAP: Duration = Duration::from_secs(4);
pub const GIVE_UP: Duration = Duration::from_secs(300);
pub const MAX_KNOWN: usize = 256;
/// How often the driver looks for due redials.
const TICK: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Lost {
    addr: String,
    lost_at: Instant,
    next_at: Instant,
    gap: Duration,
    dialling: bool,
}

/// Lost peers by peer ID, with when each is next dialled.
#[derive(Debug, Default)]
pub struct Redial {
    lost: BTreeMap<String, Lost>,
}

/// How a connection ended, as far as redialling cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// No close frame: idle timeout or stateless reset.
    Silent,
    /// Closed on purpose, by either side.
    Closed,
}

impl Ending {
    pub fn of(reason: Option<&quinn::ConnectionError>) -> Ending {
        match reason {
            Some(quinn::ConnectionError::TimedOut | quinn::ConnectionError::Reset) => {
                Ending::Silent
            }
            _ => Ending::Closed,
        }
    }
}

impl Redial {
    /// A connection to `peer_id` (listening at `addr`) ended. `dialled`:
    /// this peer opened it.
    pub fn lost(&mut self, now: Instant, peer_id: &str, addr: &str, dialled: bool, ending: Ending) {
        if !dialled || ending != Ending::Silent {
            return;
        }
        if !self.lost.contains_key(peer_id) && self.lost.len() >= MAX_KNOWN {
            let oldest = self
                .lost
                .iter()
                .min_by_key(|(_, l)| l.lost_at)
                .map(|(id, _)| id.clone());
            if let Some(id) = oldest {
                self.lost.remove(&id);
            }
        }
        self.lost.insert(
            peer_id.to_string(),
            Lost {
                addr: addr.to_string(),
                lost_at: now,
                next_at: now + FIRST,
                gap: FIRST,
                dialling: false,
            },
        );
    }

    /// The mesh holds `peer_id` again: nothing to redial.
    pub fn connected(&mut self, peer_id: &str) {
        self.lost.remove(peer_id);
    }

    /// Redials due now, each marked as being dialled (report the outcome
    /// with `connected` or `failed`). Peers past `GIVE_UP` are dropped.
    pub fn due(&mut self, now: Instant) -> Vec<(String, String)> {
        self.lost
            .retain(|_, l| now.saturating_duration_since(l.lost_at) < GIVE_UP);
        self.lost
            .iter_mut()
            .filter(|(_, l)| !l.dialling && l.next_at <= now)
            .map(|(id, l)| {
                l.dialling = true;
                (id.clone(), l.addr.clone())
            })
            .collect()
    }

    /// A redial of `peer_id` failed: the next one waits twice as long.
    pub fn failed(&mut self, now: Instant, peer_id: &str) {
        if let Some(l) = self.lost.get_mut(peer_id) {
            l.gap = (l.gap * 2).min(MAX_GAP);
            l.next_at = now + l.gap;
            l.dialling = false;
        }
    }

    pub fn pending(&self) -> usize {
        self.lost.len()
    }
}

/// Dials due peers for the life of the peer.
pub async fn run(node: Arc<Node>) {
    let mut tick = tokio::time::interval(TICK);
    loop {
        tick.tick().await;
        let now = Instant::now();
        let due = {
            let mut redial = lock(&node.redial);
            let mesh = lock(&node.mesh);
            let back: Vec<String> = redial
                .lost
                .keys()
                .filter(|id| mesh.contains(id))
                .cloned()
                .collect();
            for id in back {
                redial.connected(&id);
            }
            redial.due(now)
        };
        for (peer_id, addr) in due {
            let node = node.clone();
            tokio::spawn(async move {
                match mesh::connect(&node, &addr).await {
                    Ok(info) => {
                        tracing::info!(%peer_id, %addr, reached = %info.peer_id, "redialled");
                        lock(&node.redial).connected(&peer_id);
                    }
                    Err(e) => {
                        tracing::info!(%peer_id, %addr, "redial failed: {}", e.message);
                        lock(&node.redial).failed(Instant::now(), &peer_id);
                    }
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn only_a_silently_lost_dialled_connection_is_redialled() {
        let t = Instant::now();
        let mut r = Redial::default();
        r.lost(t, "in", "198.18.0.1:1", false, Ending::Silent);
        r.lost(t, "closed", "198.18.0.2:1", true, Ending::Closed);
        assert_eq!(r.pending(), 0);
        r.lost(t, "a", "198.18.0.3:1", true, Ending::Silent);
        assert_eq!(r.due(t + ms(249)), vec![]);
        assert_eq!(r.due(t + FIRST), vec![("a".into(), "198.18.0.3:1".into())]);
    }

    #[test]
    fn failed_redials_back_off_to_the_cap_and_never_overlap() {
        let t = Instant::now();
        let mut r = Redial::default();
        r.lost(t, "a", "x:1", true, Ending::Silent);
        let mut now = t + FIRST;
        assert_eq!(r.due(now).len(), 1);
        // Being dialled: not due again, however late.
        assert_eq!(r.due(now + ms(60_000)), vec![]);
        let mut gaps = Vec::new();
        for _ in 0..6 {
            r.failed(now, "a");
            let before = now;
            loop {
                now += ms(50);
                if !r.due(now).is_empty() {
                    break;
                }
            }
            gaps.push(now - before);
        }
        assert_eq!(
            gaps,
            [ms(500), ms(1000), ms(2000), ms(4000), ms(4000), ms(4000)]
        );
    }

    #[test]
    fn a_peer_back_in_the_mesh_or_past_give_up_is_forgotten() {
        let t = Instant::now();
        let mut r = Redial::default();
        r.lost(t, "a", "x:1", true, Ending::Silent);
        r.lost(t, "b", "x:2", true, Ending::Silent);
        r.connected("a");
        assert_eq!(r.due(t + FIRST), vec![("b".into(), "x:2".into())]);
        r.failed(t + FIRST, "b");
        assert_eq!(r.due(t + GIVE_UP), vec![]);
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn a_new_loss_restarts_the_backoff_and_the_table_is_bounded() {
        let t = Instant::now();
        let mut r = Redial::default();
        r.lost(t, "a", "x:1", true, Ending::Silent);
        let _ = r.due(t + FIRST);
        r.failed(t + FIRST, "a");
        r.failed(t + FIRST, "a");
        // Reconnected, then lost again at another address.
        r.lost(t + ms(5000), "a", "x:9", true, Ending::Silent);
        assert_eq!(r.due(t + ms(5250)), vec![("a".into(), "x:9".into())]);
        let mut r = Redial::default();
        for i in 0..MAX_KNOWN + 10 {
            r.lost(
                t + ms(i as u64),
                &format!("p{i}"),
                "x:1",
                true,
                Ending::Silent,
            );
        }
        assert_eq!(r.pending(), MAX_KNOWN);
        assert!(!r.lost.contains_key("p0"));
        assert!(r.lost.contains_key(&format!("p{}", MAX_KNOWN + 9)));
    }

    #[test]
    fn quic_endings_are_classified() {
        use quinn::ConnectionError as E;
        assert_eq!(Ending::of(Some(&E::TimedOut)), Ending::Silent);
        assert_eq!(Ending::of(Some(&E::Reset)), Ending::Silent);
        assert_eq!(Ending::of(Some(&E::LocallyClosed)), Ending::Closed);
        assert_eq!(Ending::of(None), Ending::Closed);
    }
}
