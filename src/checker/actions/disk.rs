//! Disk-use watching: `watchDisk` samples the bytes allocated under a peer's
//! games folder in a background thread; `expectDiskPeak` stops it and checks
//! how far the peak rose above the baseline. Made for "a stream-install never
//! stores more than one chunk beyond what it installs".

use crate::checker::actions::peer;
use crate::checker::lab::Lab;
use crate::checker::lab::disk_watch::{Readings, Watcher};
use crate::checker::outcome::{Failure, StepResult};
use crate::checker::registry::{StepCtx, StepParams};
use crate::units::{Size, Span, human_bytes};
use serde::Deserialize;
use std::time::Duration;

/// `watchDisk{}`: start sampling a peer's games folder.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchDiskStep {
    pub peer: String,
    /// Time between samples (default 5 ms).
    pub interval: Option<Span>,
}

impl StepParams for WatchDiskStep {}

/// `expectDiskPeak{}`: stop the peer's watcher and bound peak − baseline.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawExpectDiskPeak")]
pub struct ExpectDiskPeakStep {
    pub peer: String,
    pub at_most: Option<Size>,
    pub at_least: Option<Size>,
    /// Bound on peak − final: how far use ever rose above where it ended.
    pub over_final: Option<Size>,
}

impl StepParams for ExpectDiskPeakStep {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawExpectDiskPeak {
    peer: String,
    at_most: Option<Size>,
    at_least: Option<Size>,
    over_final: Option<Size>,
}

impl TryFrom<RawExpectDiskPeak> for ExpectDiskPeakStep {
    type Error = String;
    fn try_from(r: RawExpectDiskPeak) -> Result<Self, String> {
        // A step with no bound could never fail.
        if r.at_most.is_none() && r.at_least.is_none() && r.over_final.is_none() {
            return Err("give at least one of `atMost`, `atLeast`, `overFinal`".into());
        }
        if let (Some(lo), Some(hi)) = (r.at_least, r.at_most)
            && lo.0 > hi.0
        {
            return Err(format!("`atLeast` ({}) is above `atMost` ({})", lo.0, hi.0));
        }
        Ok(Self {
            peer: r.peer,
            at_most: r.at_most,
            at_least: r.at_least,
            over_final: r.over_final,
        })
    }
}

pub fn watch_disk(lab: &mut Lab, s: &WatchDiskStep, _cx: &StepCtx) -> StepResult {
    if lab.disk_watchers.contains_key(&s.peer) {
        return Err(Failure::invalid(format!(
            "{} is already watched: expectDiskPeak{{ peer = {:?} }} first",
            s.peer, s.peer
        )));
    }
    let root = peer(lab, &s.peer)?.games_dir.clone();
    let interval = s.interval.map(|i| i.0).unwrap_or(Duration::from_millis(5));
    let w = Watcher::start(&root, interval).map_err(|e| {
        Failure::harness(
            anyhow::Error::new(e).context(format!("watching {}", root.display())),
            &[&s.peer],
        )
    })?;
    lab.disk_watchers.insert(s.peer.clone(), w);
    Ok(())
}

/// The first bound `r` breaks, as (expected, seen).
fn broken_bound(s: &ExpectDiskPeakStep, r: &Readings) -> Option<(String, String)> {
    let rise = r.peak.saturating_sub(r.baseline);
    let over = r.peak.saturating_sub(r.last);
    let fmt = |n: u64| format!("{} ({n} B)", human_bytes(n));
    if let Some(hi) = s.at_most
        && rise > hi.0
    {
        return Some((
            format!("peak − baseline at most {}", fmt(hi.0)),
            format!("+{}", fmt(rise)),
        ));
    }
    if let Some(lo) = s.at_least
        && rise < lo.0
    {
        return Some((
            format!("peak − baseline at least {}", fmt(lo.0)),
            format!("+{}", fmt(rise)),
        ));
    }
    if let Some(hi) = s.over_final
        && over > hi.0
    {
        return Some((
            format!("peak − final at most {}", fmt(hi.0)),
            format!("+{}", fmt(over)),
        ));
    }
    None
}

pub fn expect_disk_peak(lab: &mut Lab, s: &ExpectDiskPeakStep, _cx: &StepCtx) -> StepResult {
    let Some(w) = lab.disk_watchers.remove(&s.peer) else {
        return Err(Failure::invalid(format!(
            "expectDiskPeak needs an earlier watchDisk{{ peer = {:?} }}",
            s.peer
        )));
    };
    let readings = w
        .finish()
        .map_err(|e| Failure::harness(anyhow::Error::new(e), &[&s.peer]))?;
    println!("      … disk use of {}: {}", s.peer, readings.show());
    match broken_bound(s, &readings) {
        None => Ok(()),
        Some((expected, seen)) => Err(Failure::expect(
            format!("on {}: {expected}", s.peer),
            format!("{seen}; {}", readings.show()),
            &[&s.peer],
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::registry::Action;
    use crate::checker::script::load_str;
    use std::path::Path;

    #[test]
    fn broken_bound_names_the_first_bound_a_peak_breaks() -> anyhow::Result<()> {
        // A 4 MiB file that came and went over a 64 KiB baseline.
        let baseline = 64 << 10;
        let r = Readings {
            baseline,
            peak: baseline + (4 << 20) + 4096,
            last: baseline,
            samples: 10,
        };
        let step = |at_most: Option<u64>, at_least: Option<u64>, over_final: Option<u64>| {
            ExpectDiskPeakStep {
                peer: "p".into(),
                at_most: at_most.map(Size),
                at_least: at_least.map(Size),
                over_final: over_final.map(Size),
            }
        };
        assert!(broken_bound(&step(None, Some(4 << 20), None), &r).is_none());
        assert!(broken_bound(&step(Some(5 << 20), None, None), &r).is_none());
        let (want, seen) = broken_bound(&step(Some(1 << 20), None, None), &r)
            .ok_or_else(|| anyhow::anyhow!("atMost 1 MiB passed: {r:?}"))?;
        assert!(want.contains("at most 1 MiB"), "{want}");
        assert!(seen.starts_with('+'), "{seen}");
        assert!(broken_bound(&step(None, Some(8 << 20), None), &r).is_some());
        assert!(broken_bound(&step(None, None, Some(1 << 20)), &r).is_some());
        Ok(())
    }

    fn parse(src: &str) -> Result<Vec<Action>, String> {
        load_str("t.lua", src, Path::new("t.lua"), 0)
            .map(|s| s.steps.into_iter().map(|s| s.action).collect())
            .map_err(|e| e.0)
    }

    #[test]
    fn steps_parse_sizes_and_refuse_mistakes() -> Result<(), String> {
        let steps = parse(
            "scenario { watchDisk { peer = \"c\", interval = \"2ms\" },\n\
             expectDiskPeak { peer = \"c\", atMost = \"65MiB\", atLeast = 1024, overFinal = \"1MiB\" } }",
        )?;
        match &steps[..] {
            [Action::WatchDisk(w), Action::ExpectDiskPeak(e)] => {
                assert_eq!(w.interval, Some(Span(Duration::from_millis(2))));
                assert_eq!(e.at_most, Some(Size(65 << 20)));
                assert_eq!(e.at_least, Some(Size(1024)));
                assert_eq!(e.over_final, Some(Size(1 << 20)));
            }
            other => return Err(format!("{other:?}")),
        }
        let e = parse("scenario { expectDiskPeak { peer = \"c\" } }").err();
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("t.lua:1") && e.contains("at least one")),
            "{e:?}"
        );
        let e = parse("scenario {\n expectDiskPeak { peer = \"c\", atmost = \"1MiB\" } }").err();
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("t.lua:2") && e.contains("unknown field `atmost`")),
            "{e:?}"
        );
        let e = parse(
            "scenario { expectDiskPeak { peer = \"c\", atMost = \"1MiB\", atLeast = \"2MiB\" } }",
        )
        .err();
        assert!(e.as_deref().is_some_and(|e| e.contains("above")), "{e:?}");
        let e = parse("scenario { expectDiskPeak { peer = \"c\", atMost = \"lots\" } }").err();
        assert!(
            e.as_deref().is_some_and(|e| e.contains("not a size")),
            "{e:?}"
        );
        let e = parse("scenario { watchDisk { peer = \"c\", every = \"1ms\" } }").err();
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("unknown field `every`")),
            "{e:?}"
        );
        Ok(())
    }
}
