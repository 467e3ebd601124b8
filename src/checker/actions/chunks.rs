//! `expectChunks`: who served which chunks in the last download of a game,
//! with its step type, the per-source chunk counts (`perSource`) and their
//! check.

use crate::checker::lab::Lab;
use crate::checker::outcome::{Failure, StepResult};
use crate::checker::params::Size;
use crate::checker::registry::{StepCtx, StepParams};
use crate::units::human_bytes;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// `expectChunks{}`: who served which bytes in the last download of a game.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExpectChunksStep {
    pub peer: String,
    pub game: String,
    pub only_from: Option<Vec<String>>,
    #[serde(default)]
    pub never_from: Vec<String>,
    #[serde(default)]
    pub served_by: Vec<String>,
    #[serde(default)]
    pub balanced: bool,
    pub totals: Option<BTreeMap<String, Size>>,
    pub chunks: Option<usize>,
    /// Each of the `servedBy` peers (or of the sources) served at least
    /// this share of the bytes.
    pub min_share: Option<crate::units::Percent>,
    /// Exactly this many chunks were reused from disk (`download-begin`'s
    /// `reused_chunks`; 0: a download that resumed nothing).
    pub reused: Option<usize>,
    /// At least this many chunks were reused from disk.
    pub reused_at_least: Option<usize>,
    /// How many chunk events each named source has (`version.ini` counts:
    /// it is a chunk of its own).
    pub per_source: Option<BTreeMap<String, ChunkCount>>,
}

impl StepParams for ExpectChunksStep {
    fn check(&self) -> Result<(), String> {
        if let Some(p) = self.min_share
            && !(p.0 > 0.0 && p.0 <= 1.0)
        {
            return Err(format!(
                "`minShare` must be above 0% and at most 100%, not {}%",
                p.0 * 100.0
            ));
        }
        for (who, c) in self.per_source.iter().flatten() {
            if let ChunkCount::Bounds(Bounds {
                at_least: None,
                at_most: None,
            }) = c
            {
                return Err(format!(
                    "`perSource.{who}` gives no bound: a number, or {{ atLeast = n }} and/or {{ atMost = n }}"
                ));
            }
            if let ChunkCount::Bounds(Bounds {
                at_least: Some(lo),
                at_most: Some(hi),
            }) = c
                && lo > hi
            {
                return Err(format!(
                    "`perSource.{who}`: atLeast {lo} is more than atMost {hi}"
                ));
            }
        }
        Ok(())
    }
}

/// `perSource = { a = 3, b = { atLeast = 2 } }`: a source's chunk count,
/// exactly or within bounds.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ChunkCount {
    Exactly(usize),
    Bounds(Bounds),
}

/// `{ atLeast = n, atMost = m }`, either or both.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Bounds {
    pub at_least: Option<usize>,
    pub at_most: Option<usize>,
}

impl ChunkCount {
    fn admits(&self, n: usize) -> bool {
        match self {
            ChunkCount::Exactly(want) => n == *want,
            ChunkCount::Bounds(Bounds { at_least, at_most }) => {
                at_least.is_none_or(|lo| n >= lo) && at_most.is_none_or(|hi| n <= hi)
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            ChunkCount::Exactly(n) => format!("{n}"),
            ChunkCount::Bounds(Bounds { at_least, at_most }) => match (at_least, at_most) {
                (Some(lo), Some(hi)) => format!("{lo}..={hi}"),
                (Some(lo), None) => format!("at least {lo}"),
                (None, Some(hi)) => format!("at most {hi}"),
                (None, None) => "any number".into(),
            },
        }
    }
}

/// Checks each source's chunk count (`counts`, sources by name; a missing
/// one has none) against `want`; the error says what was wanted and seen.
pub fn check_per_source(
    counts: &BTreeMap<String, usize>,
    want: &BTreeMap<String, ChunkCount>,
) -> Result<(), (String, String)> {
    let wrong: Vec<String> = want
        .iter()
        .filter(|(who, c)| !c.admits(counts.get(*who).copied().unwrap_or(0)))
        .map(|(who, c)| format!("{who}: {}", c.describe()))
        .collect();
    if wrong.is_empty() {
        return Ok(());
    }
    let seen = counts
        .iter()
        .map(|(who, n)| format!("{who}={n}"))
        .collect::<Vec<_>>()
        .join(", ");
    Err((
        format!("chunks per source {}", wrong.join(", ")),
        format!(
            "chunks per source: {}",
            if seen.is_empty() { "none".into() } else { seen }
        ),
    ))
}

pub fn chunks(lab: &mut Lab, s: &ExpectChunksStep, _cx: &StepCtx) -> StepResult {
    let Some(&start) = lab.downloads.get(&(s.peer.clone(), s.game.clone())) else {
        return Err(Failure::invalid(format!(
            "expectChunks needs an earlier download{{ peer = {:?}, game = {:?} }}",
            s.peer, s.game
        )));
    };
    for name in s
        .only_from
        .iter()
        .flatten()
        .chain(&s.never_from)
        .chain(&s.served_by)
        .chain(s.totals.iter().flat_map(|m| m.keys()))
        .chain(s.per_source.iter().flat_map(|m| m.keys()))
    {
        lab.peer(name)
            .map_err(|e| Failure::invalid(format!("{e:#}")))?;
    }
    let log = super::peer(lab, &s.peer)?.log.clone();
    let game = |v: &serde_json::Value| v["game_id"] == s.game.as_str();
    let events: Vec<_> = log
        .events(start, "download-chunk-finished")
        .into_iter()
        .filter(game)
        .collect();
    // What a resume found on disk is not fetched again.
    let begin = log.events(start, "download-begin").into_iter().find(game);
    let planned: u64 = begin
        .as_ref()
        .and_then(|b| Some(b["bytes"].as_u64()? - b["reused_bytes"].as_u64().unwrap_or(0)))
        .unwrap_or(0);
    let reused = begin.as_ref().and_then(|b| b["reused_chunks"].as_u64());
    let all_chunks = begin.as_ref().and_then(|b| b["chunks"].as_u64());

    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    let mut duplicates = Vec::new();
    let mut largest = 0u64;
    for e in &events {
        let bytes = e["bytes"].as_u64().unwrap_or(0);
        largest = largest.max(bytes);
        let who = lab.name_of_addr(e["peer_addr"].as_str().unwrap_or("?"));
        *counts.entry(who.clone()).or_default() += 1;
        *totals.entry(who).or_default() += bytes;
        let key = (e["path"].to_string(), e["offset"].as_u64().unwrap_or(0));
        if !seen.insert(key.clone()) {
            duplicates.push(format!("{}@{}", key.0, key.1));
        }
    }
    let show = |t: &BTreeMap<String, u64>| {
        t.iter()
            .map(|(k, v)| format!("{k}={} ({v} B)", human_bytes(*v)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let fail = |expected: String, seen: String| Err(Failure::expect(expected, seen, &[&s.peer]));
    let delivered: u64 = totals.values().sum();
    if events.is_empty() {
        return fail(
            format!("chunk events for {} on {}", s.game, s.peer),
            "none".into(),
        );
    }
    if !duplicates.is_empty() {
        return fail(
            "no chunk fetched twice".into(),
            format!("duplicates: {}", duplicates.join(", ")),
        );
    }
    if delivered != planned {
        return fail(
            format!("chunks covering all {planned} planned bytes"),
            format!("{delivered} bytes delivered: {}", show(&totals)),
        );
    }
    if let Some(n) = s.chunks
        && events.len() != n
    {
        return fail(format!("{n} chunks"), format!("{} chunks", events.len()));
    }
    if s.reused.is_some() || s.reused_at_least.is_some() {
        let (Some(reused), Some(all)) = (reused, all_chunks) else {
            return fail(
                "download-begin with reused_chunks and chunks".into(),
                format!("{begin:?}"),
            );
        };
        let reused = reused as usize;
        if let Some(n) = s.reused
            && reused != n
        {
            return fail(format!("{n} chunks reused"), format!("{reused} reused"));
        }
        if let Some(n) = s.reused_at_least
            && reused < n
        {
            return fail(
                format!("at least {n} chunks reused"),
                format!("{reused} reused"),
            );
        }
        if reused + events.len() != all as usize {
            return fail(
                format!("reused and fetched chunks adding up to all {all}"),
                format!("{reused} reused, {} fetched", events.len()),
            );
        }
    }
    if let Some(only) = &s.only_from {
        let strays: Vec<_> = totals
            .keys()
            .filter(|k| !only.contains(k))
            .cloned()
            .collect();
        if !strays.is_empty() {
            return fail(
                format!("chunks only from {}", only.join(", ")),
                format!("chunks from {}: {}", strays.join(", "), show(&totals)),
            );
        }
    }
    for never in &s.never_from {
        if totals.get(never).is_some_and(|b| *b > 0) || totals.contains_key(never) {
            return fail(format!("no chunks from {never}"), show(&totals));
        }
    }
    for who in &s.served_by {
        if totals.get(who).copied().unwrap_or(0) == 0 {
            return fail(format!("{who} served bytes"), show(&totals));
        }
    }
    if s.balanced {
        let group: Vec<u64> = if s.served_by.is_empty() {
            totals.values().copied().collect()
        } else {
            s.served_by
                .iter()
                .map(|w| totals.get(w).copied().unwrap_or(0))
                .collect()
        };
        let (lo, hi) = (
            group.iter().min().copied().unwrap_or(0),
            group.iter().max().copied().unwrap_or(0),
        );
        if group.len() < 2 || hi - lo > largest {
            return fail(
                format!(
                    "bytes balanced within one chunk ({}) across at least two sources",
                    human_bytes(largest)
                ),
                show(&totals),
            );
        }
    }
    if let Some(share) = s.min_share {
        let group: Vec<&String> = if s.served_by.is_empty() {
            totals.keys().collect()
        } else {
            s.served_by.iter().collect()
        };
        let short: Vec<String> = group
            .iter()
            .filter(|w| {
                let b = totals.get(w.as_str()).copied().unwrap_or(0);
                (b as f64) < share.0 * delivered as f64
            })
            .map(|w| w.to_string())
            .collect();
        if !short.is_empty() {
            let shares = totals
                .iter()
                .map(|(k, v)| format!("{k} {:.1} %", 100.0 * *v as f64 / delivered.max(1) as f64))
                .collect::<Vec<_>>()
                .join(", ");
            return fail(
                format!(
                    "each of {} served at least {:.1} % of the bytes",
                    group
                        .iter()
                        .map(|w| w.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    share.0 * 100.0
                ),
                format!("{shares} ({})", show(&totals)),
            );
        }
    }
    if let Some(want) = &s.totals {
        let want: BTreeMap<String, u64> = want.iter().map(|(k, v)| (k.clone(), v.0)).collect();
        let got: BTreeMap<String, u64> = totals
            .iter()
            .filter(|(_, v)| **v > 0)
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let want_nonzero: BTreeMap<String, u64> = want
            .iter()
            .filter(|(_, v)| **v > 0)
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        if got != want_nonzero {
            return fail(format!("totals {}", show(&want)), show(&totals));
        }
    }
    if let Some(want) = &s.per_source
        && let Err((expected, seen)) = check_per_source(&counts, want)
    {
        return fail(expected, seen);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn want(v: serde_json::Value) -> BTreeMap<String, ChunkCount> {
        serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn per_source_counts_are_exact_or_bounded_and_absent_sources_have_none() {
        let counts: BTreeMap<String, usize> = [("a".to_string(), 3), ("b".to_string(), 2)].into();
        let ok = want(json!({ "a": 3, "b": { "atLeast": 2 }, "c": 0, "d": { "atMost": 0 } }));
        assert_eq!(check_per_source(&counts, &ok), Ok(()));
        let bad =
            want(json!({ "a": 4, "b": { "atLeast": 1, "atMost": 1 }, "c": { "atLeast": 1 } }));
        assert_eq!(
            check_per_source(&counts, &bad),
            Err((
                "chunks per source a: 4, b: 1..=1, c: at least 1".to_string(),
                "chunks per source: a=3, b=2".to_string()
            ))
        );
    }

    #[test]
    fn per_source_refuses_typos_and_empty_or_crossed_bounds() {
        assert!(
            serde_json::from_value::<BTreeMap<String, ChunkCount>>(
                json!({ "a": { "atleast": 2 } })
            )
            .is_err()
        );
        let step = |per: serde_json::Value| -> ExpectChunksStep {
            serde_json::from_value(json!({ "peer": "c", "game": "g", "perSource": per }))
                .unwrap_or_else(|e| panic!("{e}"))
        };
        assert!(step(json!({ "a": 2 })).check().is_ok());
        assert!(step(json!({ "a": {} })).check().is_err());
        assert!(
            step(json!({ "a": { "atLeast": 3, "atMost": 2 } }))
                .check()
                .is_err()
        );
    }
}
