//! The link-rule engine: pure policy that decides, for one packet from one
//! host to another, whether it is dropped, when each copy is delivered, and
//! whether a partition stops it. No I/O and no clock: time is a `Duration`
//! since the LAN started, and randomness comes from one RNG per stage,
//! seeded from the run's seed and the stage's place, so the same packet
//! sequence meets the same drop decisions on a replay.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::time::Duration;

/// A host's index on its LAN (the order it was added).
pub type HostId = usize;

/// What a stage does to the packets through it. The default does nothing.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Impairment {
    /// Added to every packet.
    pub delay: Duration,
    /// Each packet's delay varies uniformly by up to ± this (never below
    /// zero). As with netem, jitter can reorder packets.
    pub jitter: Duration,
    /// Fraction (0..=1) of packets dropped.
    pub loss: f64,
    /// Serialisation rate in bits per second; packets queue behind each
    /// other, and a packet that would wait `QUEUE_LIMIT` or longer is
    /// dropped (tail drop, as tbf's `latency`).
    pub rate_bps: Option<u64>,
    /// Fraction of packets delivered twice.
    pub duplicate: f64,
    /// Fraction of packets held back an extra `max(delay, 1ms)`, so later
    /// packets overtake them.
    pub reorder: f64,
}

/// The longest a packet may wait behind a rate cap before it is dropped.
pub const QUEUE_LIMIT: Duration = Duration::from_millis(100);

/// Which traffic of a target an impairment applies to. For a host, `Out`
/// is what it sends and `In` what it receives; for a pair `(a, b)`, `Out`
/// is a → b and `In` is b → a.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
    Both,
}

/// What an impairment is set on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// All traffic of one host.
    Host(HostId),
    /// Traffic between two hosts.
    Pair(HostId, HostId),
}

/// A stage's place on a packet's path: the sender's `Out`, the directed
/// link between the two, then the receiver's `In`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum StageKey {
    Out(HostId),
    Link(HostId, HostId),
    In(HostId),
}

impl StageKey {
    fn of(target: Target, direction: Direction) -> Vec<StageKey> {
        let (out, inn) = match target {
            Target::Host(h) => (StageKey::Out(h), StageKey::In(h)),
            Target::Pair(a, b) => (StageKey::Link(a, b), StageKey::Link(b, a)),
        };
        match direction {
            Direction::Out => vec![out],
            Direction::In => vec![inn],
            Direction::Both => vec![out, inn],
        }
    }

    /// A stable number for seeding this stage's RNG.
    fn salt(self) -> u64 {
        let (kind, a, b) = match self {
            StageKey::Out(h) => (1u64, h as u64, 0u64),
            StageKey::Link(a, b) => (2, a as u64, b as u64),
            StageKey::In(h) => (3, h as u64, 0),
        };
        kind << 56 ^ a << 28 ^ b
    }
}

/// splitmix64: spreads a seed and a salt into an independent stream seed.
fn mix(seed: u64, salt: u64) -> u64 {
    let mut z = seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

struct Stage {
    imp: Impairment,
    rng: StdRng,
    /// When the rate cap's last queued packet finishes serialising.
    busy_until: Duration,
}

/// Why a stage dropped a packet (for the switch's counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropCause {
    Partition,
    Loss,
    Queue,
}

impl Stage {
    /// Passes one copy arriving at `at`: `Err` if dropped, otherwise when
    /// it leaves and whether it is duplicated.
    fn pass(&mut self, at: Duration, len: usize) -> Result<(Duration, bool), DropCause> {
        let imp = self.imp;
        if imp.loss > 0.0 && self.rng.random_bool(imp.loss.min(1.0)) {
            return Err(DropCause::Loss);
        }
        let mut t = at;
        if let Some(rate) = imp.rate_bps {
            let start = self.busy_until.max(at);
            if start - at >= QUEUE_LIMIT {
                return Err(DropCause::Queue);
            }
            // Whole nanoseconds, so back-to-back packets add up exactly.
            let tx_ns = (len as u128 * 8 * 1_000_000_000) / u128::from(rate.max(1));
            let tx = Duration::from_nanos(u64::try_from(tx_ns).unwrap_or(u64::MAX));
            self.busy_until = start + tx;
            t = self.busy_until;
        }
        // Jitter never makes a packet leave before it was serialised.
        let sent = t;
        t += imp.delay;
        if !imp.jitter.is_zero() {
            let j = imp.jitter.as_secs_f64();
            let offset = self.rng.random_range(-j..=j);
            t = Duration::from_secs_f64((t.as_secs_f64() + offset).max(sent.as_secs_f64()));
        }
        if imp.reorder > 0.0 && self.rng.random_bool(imp.reorder.min(1.0)) {
            t += imp.delay.max(Duration::from_millis(1));
        }
        let dup = imp.duplicate > 0.0 && self.rng.random_bool(imp.duplicate.min(1.0));
        Ok((t, dup))
    }
}

/// What becomes of one packet.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// No rule touches its path: deliver it now, in order.
    Now,
    /// Deliver a copy at each time (none: dropped, for `cause`).
    At(Vec<Duration>, Option<DropCause>),
}

/// Every rule of one LAN: impaired stages and partitions.
pub struct Rules {
    seed: u64,
    stages: BTreeMap<StageKey, Stage>,
    /// Each partition maps a host to its group; hosts it does not name
    /// share one more group (a failed lookup).
    partitions: Vec<BTreeMap<HostId, usize>>,
}

impl Rules {
    pub fn new(seed: u64) -> Self {
        Rules {
            seed,
            stages: BTreeMap::new(),
            partitions: Vec::new(),
        }
    }

    /// Sets `imp` on the target's stages in `direction`, replacing what was
    /// there (a replaced stage starts with an empty queue and a fresh RNG).
    pub fn impair(&mut self, target: Target, direction: Direction, imp: Impairment) {
        for key in StageKey::of(target, direction) {
            let stage = Stage {
                imp,
                rng: StdRng::seed_from_u64(mix(self.seed, key.salt())),
                busy_until: Duration::ZERO,
            };
            self.stages.insert(key, stage);
        }
    }

    /// Removes the target's impairments in `direction`.
    pub fn clear(&mut self, target: Target, direction: Direction) {
        for key in StageKey::of(target, direction) {
            self.stages.remove(&key);
        }
    }

    /// Adds a partition: no packet crosses between `groups`. Hosts named in
    /// none of them form one more group together. Partitions add up.
    pub fn partition(&mut self, groups: &[Vec<HostId>]) -> Result<(), String> {
        let mut map = BTreeMap::new();
        for (g, hosts) in groups.iter().enumerate() {
            for &h in hosts {
                if map.insert(h, g).is_some_and(|prev| prev != g) {
                    return Err(format!("host #{h} is in two groups of one partition"));
                }
            }
        }
        self.partitions.push(map);
        Ok(())
    }

    /// Removes every partition (impairments stay).
    pub fn heal(&mut self) {
        self.partitions.clear();
    }

    /// True when a partition separates `a` from `b`.
    pub fn separated(&self, a: HostId, b: HostId) -> bool {
        self.partitions.iter().any(|p| p.get(&a) != p.get(&b))
    }

    /// Decides the fate of a `len`-byte packet from `src` to `dst` that
    /// the switch read at `now`.
    pub fn route(&mut self, now: Duration, src: HostId, dst: HostId, len: usize) -> Verdict {
        if self.separated(src, dst) {
            return Verdict::At(Vec::new(), Some(DropCause::Partition));
        }
        let path = [
            StageKey::Out(src),
            StageKey::Link(src, dst),
            StageKey::In(dst),
        ];
        if path.iter().all(|k| !self.stages.contains_key(k)) {
            return Verdict::Now;
        }
        let mut copies = vec![now];
        let mut cause = None;
        for key in path {
            let Some(stage) = self.stages.get_mut(&key) else {
                continue;
            };
            let mut next = Vec::with_capacity(copies.len());
            for at in copies {
                match stage.pass(at, len) {
                    Ok((t, dup)) => {
                        next.push(t);
                        if dup {
                            next.push(t);
                        }
                    }
                    Err(c) => cause = Some(c),
                }
            }
            copies = next;
        }
        let cause = if copies.is_empty() { cause } else { None };
        Verdict::At(copies, cause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn times(v: Verdict) -> Vec<Duration> {
        match v {
            Verdict::At(t, _) => t,
            Verdict::Now => panic!("expected the packet to be impaired"),
        }
    }

    #[test]
    fn an_unimpaired_path_delivers_now() {
        let mut r = Rules::new(1);
        assert_eq!(r.route(MS, 0, 1, 100), Verdict::Now);
        r.impair(
            Target::Host(2),
            Direction::Both,
            Impairment {
                delay: MS,
                ..Default::default()
            },
        );
        assert_eq!(
            r.route(MS, 0, 1, 100),
            Verdict::Now,
            "host 2's rule is not on 0 → 1"
        );
    }

    #[test]
    fn delay_adds_up_along_the_path_and_directions_are_kept_apart() {
        let mut r = Rules::new(1);
        let d = |ms| Impairment {
            delay: ms * MS,
            ..Default::default()
        };
        r.impair(Target::Host(0), Direction::Out, d(10));
        r.impair(Target::Pair(0, 1), Direction::Out, d(5));
        r.impair(Target::Host(1), Direction::In, d(1));
        assert_eq!(times(r.route(Duration::ZERO, 0, 1, 100)), vec![16 * MS]);
        // 1 → 0 meets none of those: host 0's rule is Out, the pair's is a → b.
        assert_eq!(r.route(Duration::ZERO, 1, 0, 100), Verdict::Now);
        r.impair(Target::Pair(0, 1), Direction::In, d(7));
        assert_eq!(times(r.route(Duration::ZERO, 1, 0, 100)), vec![7 * MS]);
        r.clear(Target::Pair(0, 1), Direction::Both);
        r.clear(Target::Host(0), Direction::Both);
        assert_eq!(times(r.route(Duration::ZERO, 0, 1, 100)), vec![MS]);
    }

    #[test]
    fn loss_drops_about_its_fraction_and_replays_with_the_seed() {
        let run = |seed| {
            let mut r = Rules::new(seed);
            let imp = Impairment {
                loss: 0.01,
                ..Default::default()
            };
            r.impair(Target::Host(0), Direction::Out, imp);
            (0..100_000)
                .map(|_| times(r.route(Duration::ZERO, 0, 1, 100)).is_empty())
                .collect::<Vec<bool>>()
        };
        let a = run(7);
        let lost = a.iter().filter(|&&d| d).count();
        assert!((800..1200).contains(&lost), "{lost} of 100000 lost at 1%");
        assert_eq!(a, run(7), "the same seed drops the same packets");
        assert_ne!(a, run(8), "another seed drops others");
    }

    #[test]
    fn a_dropped_packet_names_its_cause() {
        let mut r = Rules::new(1);
        r.impair(
            Target::Host(0),
            Direction::Out,
            Impairment {
                loss: 1.0,
                ..Default::default()
            },
        );
        assert_eq!(
            r.route(MS, 0, 1, 1),
            Verdict::At(vec![], Some(DropCause::Loss))
        );
    }

    #[test]
    fn rate_serialises_packets_and_tail_drops_past_the_queue_limit() {
        let mut r = Rules::new(1);
        // 8 Mbit/s: a 1000-byte packet takes 1 ms.
        let imp = Impairment {
            rate_bps: Some(8_000_000),
            ..Default::default()
        };
        r.impair(Target::Host(0), Direction::Out, imp);
        let at: Vec<Duration> = (0..3)
            .flat_map(|_| times(r.route(Duration::ZERO, 0, 1, 1000)))
            .collect();
        assert_eq!(at, vec![MS, 2 * MS, 3 * MS]);
        // Once the link is idle again, a packet is not held behind old ones.
        assert_eq!(times(r.route(50 * MS, 0, 1, 1000)), vec![51 * MS]);
        // Fill the queue past 100 ms: the packet that would wait longer drops.
        let mut dropped = 0;
        for _ in 0..200 {
            if let Verdict::At(t, cause) = r.route(60 * MS, 0, 1, 1000)
                && t.is_empty()
            {
                assert_eq!(cause, Some(DropCause::Queue));
                dropped += 1;
            }
        }
        assert_eq!(dropped, 200 - 100, "100 ms of queue is 100 packets");
    }

    #[test]
    fn jitter_stays_within_its_bounds() {
        let mut r = Rules::new(3);
        let imp = Impairment {
            delay: 20 * MS,
            jitter: 5 * MS,
            ..Default::default()
        };
        r.impair(Target::Host(0), Direction::Out, imp);
        let all: Vec<Duration> = (0..2000)
            .flat_map(|_| times(r.route(Duration::ZERO, 0, 1, 10)))
            .collect();
        assert!(all.iter().all(|t| (15 * MS..=25 * MS).contains(t)));
        assert!(all.iter().any(|t| *t < 17 * MS) && all.iter().any(|t| *t > 23 * MS));
    }

    #[test]
    fn duplicates_add_a_copy_and_reorders_hold_a_packet_back() {
        let mut r = Rules::new(1);
        r.impair(
            Target::Host(0),
            Direction::Out,
            Impairment {
                duplicate: 1.0,
                ..Default::default()
            },
        );
        assert_eq!(times(r.route(MS, 0, 1, 10)), vec![MS, MS]);
        let imp = Impairment {
            delay: 10 * MS,
            reorder: 1.0,
            ..Default::default()
        };
        r.impair(Target::Host(0), Direction::Out, imp);
        assert_eq!(times(r.route(Duration::ZERO, 0, 1, 10)), vec![20 * MS]);
        let mut r = Rules::new(5);
        let imp = Impairment {
            reorder: 0.5,
            ..Default::default()
        };
        r.impair(Target::Host(0), Direction::Out, imp);
        let held = (0..1000)
            .filter(|_| times(r.route(Duration::ZERO, 0, 1, 10)) == vec![MS])
            .count();
        assert!(
            (400..600).contains(&held),
            "{held} of 1000 held back at 50%"
        );
    }

    #[test]
    fn partitions_separate_groups_both_ways_and_heal_removes_them() {
        let mut r = Rules::new(1);
        r.partition(&[vec![0], vec![1, 2]]).unwrap();
        let cut = Verdict::At(vec![], Some(DropCause::Partition));
        assert_eq!(r.route(MS, 0, 1, 1), cut);
        assert_eq!(r.route(MS, 2, 0, 1), cut);
        assert_eq!(r.route(MS, 1, 2, 1), Verdict::Now);
        // Host 3 is named nowhere: it shares the rest's group, apart from both.
        assert_eq!(r.route(MS, 3, 0, 1), cut);
        assert_eq!(r.route(MS, 3, 1, 1), cut);
        // Partitions add up: a second one cuts 1 from 2 as well.
        r.partition(&[vec![1], vec![2]]).unwrap();
        assert_eq!(r.route(MS, 1, 2, 1), cut);
        r.heal();
        assert_eq!(r.route(MS, 0, 1, 1), Verdict::Now);
        assert_eq!(r.route(MS, 1, 2, 1), Verdict::Now);
        assert!(r.partition(&[vec![0], vec![0, 1]]).is_err());
    }
}
