//! Network-lab actions and their step types: `impair`, `partition`, `heal`,
//! `expectDrops`.
//! They change the run's LAN (`scenario{ network = "lan" }`) now or, with
//! `on = { peer, event, … }`, the moment that event is printed. The loader
//! refuses them in a loopback scenario.

use crate::checker::lab::network::{Direction, Impairment, Lan, Link};
use crate::checker::lab::{Act, Lab, Trigger};
use crate::checker::outcome::{Failure, StepResult};
use crate::checker::params::On;
use crate::checker::params::Span;
use crate::checker::registry::{StepCtx, StepParams};
use crate::sync::lock;
use crate::units::{Percent, Rate};
use serde::Deserialize;
use std::sync::{Arc, Mutex};

/// `direction = "in" | "out"`; both when absent.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Dir {
    In,
    Out,
}

/// `impair{}`: set (or `clear`) link rules on a host or between two hosts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImpairStep {
    /// All traffic of this peer's host.
    pub peer: Option<String>,
    /// Traffic between these two peers' hosts (`out` is first → second).
    pub between: Option<[String; 2]>,
    pub delay: Option<Span>,
    pub jitter: Option<Span>,
    pub loss: Option<Percent>,
    pub rate: Option<Rate>,
    pub duplicate: Option<Percent>,
    pub reorder: Option<Percent>,
    pub direction: Option<Dir>,
    /// Remove what an earlier `impair` set on the same link and direction.
    #[serde(default)]
    pub clear: bool,
    pub on: Option<On>,
}

impl ImpairStep {
    fn impairment(&self) -> Impairment {
        let pct = |p: Option<Percent>| p.map(|p| p.0).unwrap_or(0.0);
        Impairment {
            delay: self.delay.map(|d| d.0).unwrap_or_default(),
            jitter: self.jitter.map(|d| d.0).unwrap_or_default(),
            loss: pct(self.loss),
            rate_bps: self.rate.map(|r| r.0),
            duplicate: pct(self.duplicate),
            reorder: pct(self.reorder),
        }
    }

    fn direction(&self) -> Direction {
        match self.direction {
            None => Direction::Both,
            Some(Dir::In) => Direction::In,
            Some(Dir::Out) => Direction::Out,
        }
    }

    fn names(&self) -> Vec<&str> {
        match (&self.peer, &self.between) {
            (Some(p), _) => vec![p.as_str()],
            (None, Some([a, b])) => vec![a.as_str(), b.as_str()],
            (None, None) => Vec::new(),
        }
    }

    fn apply(&self, lan: &mut Lan) -> anyhow::Result<()> {
        let link = match (&self.peer, &self.between) {
            (Some(p), _) => Link::Host(p),
            (None, Some([a, b])) => Link::Pair(a, b),
            (None, None) => anyhow::bail!("impair names no link"),
        };
        if self.clear {
            lan.clear(link, self.direction())
        } else {
            lan.impair(link, self.direction(), self.impairment())
        }
    }
}

impl StepParams for ImpairStep {
    fn check(&self) -> Result<(), String> {
        match (&self.peer, &self.between) {
            (Some(_), Some(_)) => return Err("give `peer` or `between`, not both".into()),
            (None, None) => {
                return Err("name the link: `peer = \"a\"` or `between = {\"a\", \"b\"}`".into());
            }
            (None, Some([a, b])) if a == b => {
                return Err(format!(
                    "`between` needs two different peers, not {a:?} twice"
                ));
            }
            _ => {}
        }
        let any_value = self.impairment() != Impairment::default();
        if self.clear && any_value {
            return Err(
                "`clear = true` removes an impairment; it takes no delay, loss, … values".into(),
            );
        }
        if !self.clear && !any_value {
            return Err("give at least one of delay, jitter, loss, rate, duplicate, reorder (or clear = true)".into());
        }
        if self.rate.is_some_and(|r| r.0 == 0) {
            return Err("`rate` must be above zero (use partition{} to pass nothing)".into());
        }
        Ok(())
    }
}

/// `partition{ {"a"}, {"b", "client"} }`: no packet crosses between the
/// groups; peers named in no group form one more group.
#[derive(Debug, Clone)]
pub struct PartitionStep {
    pub groups: Vec<Vec<String>>,
    pub on: Option<On>,
}

impl<'de> Deserialize<'de> for PartitionStep {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // As a map: read as a sequence, a table with list items would drop `on`.
        d.deserialize_map(PartitionVisitor)
    }
}

/// A partition table mixes list items (the groups) with the named `on`, so
/// it is read key by key: integer keys are groups, `on` is the trigger.
struct PartitionVisitor;

#[derive(Deserialize)]
#[serde(untagged)]
enum PartitionKey {
    Index(i64),
    Name(String),
}

impl<'de> serde::de::Visitor<'de> for PartitionVisitor {
    type Value = PartitionStep;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of peer groups, e.g. { {\"a\"}, {\"b\", \"c\"} }, and optionally `on`")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> Result<PartitionStep, A::Error> {
        let mut groups = Vec::new();
        while let Some(g) = seq.next_element::<Vec<String>>()? {
            groups.push(g);
        }
        Ok(PartitionStep { groups, on: None })
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> Result<PartitionStep, A::Error> {
        use serde::de::Error;
        let mut indexed = Vec::new();
        let mut on = None;
        while let Some(key) = map.next_key::<PartitionKey>()? {
            match key {
                PartitionKey::Index(i) => indexed.push((i, map.next_value::<Vec<String>>()?)),
                PartitionKey::Name(n) if n == "on" => on = Some(map.next_value::<On>()?),
                PartitionKey::Name(n) => {
                    return Err(A::Error::custom(format!(
                        "unknown field `{n}`, expected `on` (the groups are list items)"
                    )));
                }
            }
        }
        indexed.sort_by_key(|(i, _)| *i);
        Ok(PartitionStep {
            groups: indexed.into_iter().map(|(_, g)| g).collect(),
            on,
        })
    }
}

impl StepParams for PartitionStep {
    fn check(&self) -> Result<(), String> {
        if self.groups.is_empty() {
            return Err("give the groups: partition{ {\"a\"}, {\"b\", \"c\"} }".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for g in &self.groups {
            if g.is_empty() {
                return Err("a group names no peer".into());
            }
            for p in g {
                if !seen.insert(p) {
                    return Err(format!("peer {p:?} is in two groups"));
                }
            }
        }
        Ok(())
    }
}

/// `heal{}`: remove every partition (impairments stay).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealStep {
    pub on: Option<On>,
}

impl StepParams for HealStep {}

/// The run's LAN, or an invalid-scenario failure (the loader refuses these
/// actions without `network = "lan"`, so this is a second line).
fn lan(lab: &Lab) -> Result<Arc<Mutex<Lan>>, Failure> {
    lab.lan
        .clone()
        .ok_or_else(|| Failure::invalid("this action needs scenario{ network = \"lan\" }"))
}

/// Every name must be a host now: a trigger cannot report a typo later.
fn check_hosts(lan: &Lan, names: &[&str]) -> Result<(), Failure> {
    for n in names {
        if lan.host(n).is_none() {
            return Err(Failure::invalid(format!(
                "no peer named {n:?} on the LAN (start it with peer{{ name = {n:?} }} first)"
            )));
        }
    }
    Ok(())
}

/// Runs `change` on the LAN now, or arms it to run on `on`'s event.
fn now_or_on(
    lab: &mut Lab,
    cx: &StepCtx,
    what: String,
    on: &Option<On>,
    change: impl Fn(&mut Lan) -> anyhow::Result<()> + Send + 'static,
) -> StepResult {
    let lan = lan(lab)?;
    let Some(on) = on else {
        return change(&mut lock(&lan)).map_err(|e| Failure::invalid(format!("{what}: {e:#}")));
    };
    crate::checker::actions::peer(lab, &on.peer)?;
    let act = Act::Run(Box::new(move || {
        // Names were checked when it was armed; nothing else can fail.
        let _ = change(&mut lock(&lan));
    }));
    lock(&lab.triggers).push(Trigger::new(&on.peer, on.filter(), what, act, cx.line));
    Ok(())
}

pub fn impair(lab: &mut Lab, s: &ImpairStep, cx: &StepCtx) -> StepResult {
    check_hosts(&lock(&*lan(lab)?), &s.names())?;
    let step = s.clone();
    let what = format!("impair {}", s.names().join(","));
    now_or_on(lab, cx, what, &s.on, move |lan| step.apply(lan))
}

pub fn partition(lab: &mut Lab, s: &PartitionStep, cx: &StepCtx) -> StepResult {
    let names: Vec<&str> = s.groups.iter().flatten().map(String::as_str).collect();
    check_hosts(&lock(&*lan(lab)?), &names)?;
    let groups = s.groups.clone();
    now_or_on(lab, cx, "partition".into(), &s.on, move |lan| {
        let refs: Vec<Vec<&str>> = groups
            .iter()
            .map(|g| g.iter().map(String::as_str).collect())
            .collect();
        lan.partition(&refs)
    })
}

pub fn heal(lab: &mut Lab, s: &HealStep, cx: &StepCtx) -> StepResult {
    now_or_on(lab, cx, "heal".into(), &s.on, |lan| {
        lan.heal();
        Ok(())
    })
}

/// Which of the switch's drop counters `expectDrops` reads.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DropCause {
    Loss,
    Partition,
    Queue,
}

/// `expectDrops{}`: the LAN's switch dropped at least / at most this many
/// packets for `cause` since the LAN started.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExpectDropsStep {
    pub cause: DropCause,
    pub at_least: Option<u64>,
    pub at_most: Option<u64>,
}

impl StepParams for ExpectDropsStep {
    fn check(&self) -> Result<(), String> {
        match (self.at_least, self.at_most) {
            (None, None) => Err("give `atLeast`, `atMost` or both".into()),
            (Some(lo), Some(hi)) if lo > hi => {
                Err(format!("`atLeast` {lo} is above `atMost` {hi}"))
            }
            _ => Ok(()),
        }
    }
}

pub fn expect_drops(lab: &mut Lab, s: &ExpectDropsStep, _cx: &StepCtx) -> StepResult {
    let stats = lock(&*lan(lab)?).stats();
    let (name, n) = match s.cause {
        DropCause::Loss => ("the loss rule", stats.dropped_loss),
        DropCause::Partition => ("partitions", stats.dropped_partition),
        DropCause::Queue => ("full rate queues", stats.dropped_queue),
    };
    let low = s.at_least.is_some_and(|lo| n < lo);
    let high = s.at_most.is_some_and(|hi| n > hi);
    if low || high {
        let bound = match (s.at_least, s.at_most) {
            (Some(lo), Some(hi)) => format!("{lo}–{hi}"),
            (Some(lo), None) => format!("at least {lo}"),
            (None, Some(hi)) => format!("at most {hi}"),
            (None, None) => String::new(),
        };
        return Err(Failure::expect(
            format!("{bound} packets dropped by {name}"),
            format!(
                "{n} ({} delivered, {} by loss, {} by partitions, {} by queues)",
                stats.delivered, stats.dropped_loss, stats.dropped_partition, stats.dropped_queue
            ),
            &[],
        ));
    }
    Ok(())
}
