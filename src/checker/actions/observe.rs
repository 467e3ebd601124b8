//! Expectations about a peer's current state or its event stream, each
//! polled until it holds or its timeout passes: `expectGames`,
//! `expectPeers`, `expectStatus`, `expectEvent`, `expectNoEvent`,
//! `expectSequence`, with their step types (and `From`, where an event
//! search starts).

use crate::checker::actions::{
    COMMAND_TIMEOUT, DEFAULT_WAIT, json_contains, peer, poll, timeout_or,
};
use crate::checker::lab::{Lab, is_event};
use crate::checker::outcome::{Failure, StepResult};
use crate::checker::params::Span;
use crate::checker::registry::{StepCtx, StepParams};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

/// One expected row of `expectGames{ games = { id = row } }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GameRow {
    pub peer_count: Option<u64>,
    pub version: Option<String>,
    pub downloaded: Option<bool>,
    pub installed: Option<bool>,
    /// `"Downloaded"`, `"LocalOnly"` or `"Remote"` (see docs/PROTOCOL.md).
    pub availability: Option<String>,
}

/// `expectGames{}`: the whole `list-games` picture on a peer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectGamesStep {
    pub peer: String,
    #[serde(default)]
    pub games: BTreeMap<String, GameRow>,
    #[serde(default)]
    pub absent: Vec<String>,
    /// No rows besides those in `games`.
    #[serde(default)]
    pub only: bool,
    pub timeout: Option<Span>,
}

impl StepParams for ExpectGamesStep {}

/// One expected entry of `expectPeers{ peers = { name = … } }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerRow {
    /// Exactly these advertised games (ID → raw version).
    pub games: Option<BTreeMap<String, String>>,
}

/// `expectPeers{}`: what `list-peers` shows on a peer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectPeersStep {
    pub peer: String,
    pub count: Option<usize>,
    #[serde(default)]
    pub peers: BTreeMap<String, PeerRow>,
    #[serde(default)]
    pub absent: Vec<String>,
    pub timeout: Option<Span>,
}

impl StepParams for ExpectPeersStep {}

/// Where an event search starts: the whole log, this step, or an earlier
/// step (named by its `label`, which the loader turns into its line).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum From {
    #[default]
    Start,
    ThisStep,
    Line(u32),
    Label(String),
}

impl<'de> Deserialize<'de> for From {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = From;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"start\", \"step\", an earlier step's label or its line number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<From, E> {
                match v {
                    "start" => Ok(From::Start),
                    "step" => Ok(From::ThisStep),
                    "" => Err(E::custom(
                        "use \"start\", \"step\", a label or a line number",
                    )),
                    label => Ok(From::Label(label.to_string())),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<From, E> {
                u32::try_from(v)
                    .map(From::Line)
                    .map_err(|_| E::custom("a line number must be positive"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<From, E> {
                self.visit_i64(v as i64)
            }
        }
        d.deserialize_any(V)
    }
}

/// `expectEvent{}`: a matching event appears (waits up to `timeout`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectEventStep {
    pub peer: String,
    pub event: String,
    #[serde(rename = "match")]
    pub pattern: Option<serde_json::Value>,
    #[serde(default)]
    pub from: From,
    /// At least this many matching events (default 1).
    pub count: Option<usize>,
    pub timeout: Option<Span>,
    /// The event's `peer_id` is this peer's (a name of the scenario).
    #[serde(rename = "peerId")]
    pub peer_id: Option<String>,
}

impl StepParams for ExpectEventStep {
    fn search_start_mut(&mut self) -> Option<&mut From> {
        Some(&mut self.from)
    }
}

/// `expectSequence{}`: the matching events, consecutive repeats collapsed,
/// are exactly this list of names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectSequenceStep {
    pub peer: String,
    pub sequence: Vec<String>,
    #[serde(rename = "match")]
    pub pattern: Option<serde_json::Value>,
    #[serde(default)]
    pub from: From,
    pub timeout: Option<Span>,
}

impl StepParams for ExpectSequenceStep {
    fn search_start_mut(&mut self) -> Option<&mut From> {
        Some(&mut self.from)
    }
}

/// `expectNoEvent{}`: no matching event since `from`, nor during `window`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectNoEventStep {
    pub peer: String,
    pub event: String,
    #[serde(rename = "match")]
    pub pattern: Option<serde_json::Value>,
    #[serde(default)]
    pub from: From,
    pub window: Option<Span>,
    /// The event's `peer_id` is this peer's (a name of the scenario).
    #[serde(rename = "peerId")]
    pub peer_id: Option<String>,
}

impl StepParams for ExpectNoEventStep {
    fn search_start_mut(&mut self) -> Option<&mut From> {
        Some(&mut self.from)
    }
}

/// `expectStatus{}`: a peer's active operations and outbound transfers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExpectStatusStep {
    pub peer: String,
    pub active_operations: Option<BTreeMap<String, serde_json::Value>>,
    pub active_outbound_transfers: Option<BTreeMap<String, u64>>,
    pub timeout: Option<Span>,
}

impl StepParams for ExpectStatusStep {}

pub(crate) fn query(lab: &mut Lab, name: &str, cmd: &str) -> Result<Value, Failure> {
    peer(lab, name)?
        .call(json!({ "cmd": cmd }), COMMAND_TIMEOUT)
        .map_err(|e| Failure::harness(e, &[name]))
}

/// Checks `list-games` rows against the step; `Err` describes the mismatch.
pub(crate) fn games_match(rows: &[Value], s: &ExpectGamesStep) -> Result<(), String> {
    let by_id: BTreeMap<&str, &Value> = rows
        .iter()
        .filter_map(|r| r["game_id"].as_str().map(|id| (id, r)))
        .collect();
    for (id, want) in &s.games {
        let Some(row) = by_id.get(id.as_str()) else {
            return Err(format!("no row for {id}"));
        };
        let checks: [(&str, Option<Value>); 5] = [
            ("peer_count", want.peer_count.map(|v| json!(v))),
            ("eti_game_version", want.version.as_ref().map(|v| json!(v))),
            ("downloaded", want.downloaded.map(|v| json!(v))),
            ("installed", want.installed.map(|v| json!(v))),
            ("availability", want.availability.as_ref().map(|v| json!(v))),
        ];
        for (field, wanted) in checks {
            if let Some(w) = wanted
                && row[field] != w
            {
                return Err(format!("{id}: {field} is {} (want {w})", row[field]));
            }
        }
    }
    for id in &s.absent {
        if by_id.contains_key(id.as_str()) {
            return Err(format!("{id} is listed: {}", by_id[id.as_str()]));
        }
    }
    if s.only {
        let extra: Vec<&str> = by_id
            .keys()
            .filter(|id| !s.games.contains_key(**id))
            .copied()
            .collect();
        if !extra.is_empty() {
            return Err(format!("unexpected rows: {}", extra.join(", ")));
        }
    }
    Ok(())
}

pub fn games(lab: &mut Lab, s: &ExpectGamesStep, _cx: &StepCtx) -> StepResult {
    let timeout = timeout_or(s.timeout, DEFAULT_WAIT);
    let mut last = Value::Null;
    let outcome = poll(timeout, || {
        let answer = query(lab, &s.peer, "list-games")?;
        last = answer["games"].clone();
        let rows = last.as_array().cloned().unwrap_or_default();
        Ok(games_match(&rows, s))
    })?;
    outcome.map_err(|why| {
        Failure::expect(
            format!("list-games on {} as described within {timeout:?}", s.peer),
            format!("{why}; rows: {last}"),
            &[&s.peer],
        )
    })
}

pub fn peers(lab: &mut Lab, s: &ExpectPeersStep, _cx: &StepCtx) -> StepResult {
    let timeout = timeout_or(s.timeout, DEFAULT_WAIT);
    // Names → peer IDs, resolved up front (the expected peers must exist).
    let mut ids = BTreeMap::new();
    for name in s.peers.keys().chain(&s.absent) {
        ids.insert(name.clone(), peer(lab, name)?.peer_id.clone());
    }
    let mut last = Value::Null;
    let outcome = poll(timeout, || {
        last = query(lab, &s.peer, "list-peers")?["peers"].clone();
        let list = last.as_array().cloned().unwrap_or_default();
        let find = |id: &str| list.iter().find(|p| p["peer_id"] == id);
        if let Some(n) = s.count
            && list.len() != n
        {
            return Ok(Err(format!("{} peers listed (want {n})", list.len())));
        }
        for (name, want) in &s.peers {
            let Some(entry) = find(&ids[name]) else {
                return Ok(Err(format!("{name} is not listed")));
            };
            let occurrences = list
                .iter()
                .filter(|p| p["peer_id"] == ids[name].as_str())
                .count();
            if occurrences > 1 {
                return Ok(Err(format!("{name} is listed {occurrences} times")));
            }
            if let Some(games) = &want.games {
                let got: BTreeMap<String, String> = entry["games"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|g| {
                        (
                            g["game_id"].as_str().unwrap_or_default().to_string(),
                            g["version"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect();
                if &got != games {
                    return Ok(Err(format!("{name} advertises {got:?} (want {games:?})")));
                }
            }
        }
        for name in &s.absent {
            if find(&ids[name]).is_some() {
                return Ok(Err(format!("{name} is listed")));
            }
        }
        Ok(Ok(()))
    })?;
    outcome.map_err(|why| {
        Failure::expect(
            format!("list-peers on {} as described within {timeout:?}", s.peer),
            format!("{why}; peers: {last}"),
            &[&s.peer],
        )
    })
}

pub fn status(lab: &mut Lab, s: &ExpectStatusStep, _cx: &StepCtx) -> StepResult {
    let timeout = timeout_or(s.timeout, DEFAULT_WAIT);
    let mut last = Value::Null;
    let outcome = poll(timeout, || {
        last = query(lab, &s.peer, "status")?;
        if let Some(want) = &s.active_operations
            && last["active_operations"] != json!(want)
        {
            return Ok(Err(format!(
                "active_operations {}",
                last["active_operations"]
            )));
        }
        if let Some(want) = &s.active_outbound_transfers
            && last["active_outbound_transfers"] != json!(want)
        {
            return Ok(Err(format!(
                "active_outbound_transfers {}",
                last["active_outbound_transfers"]
            )));
        }
        Ok(Ok(()))
    })?;
    outcome.map_err(|why| {
        Failure::expect(
            format!(
                "status on {} with active_operations={} active_outbound_transfers={} within {timeout:?}",
                s.peer,
                s.active_operations.as_ref().map(|v| json!(v)).unwrap_or(json!("any")),
                s.active_outbound_transfers.as_ref().map(|v| json!(v)).unwrap_or(json!("any")),
            ),
            why,
            &[&s.peer],
        )
    })
}

/// The log position an event search starts at.
fn start_of(lab: &Lab, name: &str, from: &From, line: u32) -> Result<usize, Failure> {
    match from {
        From::Start => Ok(0),
        From::ThisStep => Ok(lab.mark(line, name).unwrap_or(0)),
        From::Line(l) => lab.mark(*l, name).ok_or_else(|| {
            Failure::invalid(format!("`from = {l}`: no step at line {l} has run yet"))
        }),
        // The loader turns every label into its step's line.
        From::Label(l) => Err(Failure::invalid(format!(
            "`from = \"{l}\"` was not resolved"
        ))),
    }
}

fn matches(v: &Value, event: &str, pattern: &Option<Value>) -> bool {
    is_event(v, event)
        && pattern
            .as_ref()
            .is_none_or(|p| json_contains(&v["data"], p))
}

fn describe(event: &str, pattern: &Option<Value>) -> String {
    match pattern {
        Some(p) => format!("{event} matching {p}"),
        None => event.to_string(),
    }
}

/// `match` with `peerId = "name"` added as `peer_id = <that peer's ID>`.
fn with_peer_id(
    lab: &mut Lab,
    pattern: &Option<Value>,
    name: &Option<String>,
) -> Result<Option<Value>, Failure> {
    let Some(name) = name else {
        return Ok(pattern.clone());
    };
    let id = peer(lab, name)?.peer_id.clone();
    let mut p = pattern.clone().unwrap_or_else(|| serde_json::json!({}));
    match p.as_object_mut() {
        Some(map) => {
            map.insert("peer_id".into(), Value::String(id));
            Ok(Some(p))
        }
        None => Err(Failure::invalid(
            "`match` must be a table to add `peerId` to",
        )),
    }
}

pub fn event(lab: &mut Lab, s: &ExpectEventStep, cx: &StepCtx) -> StepResult {
    let pattern = with_peer_id(lab, &s.pattern, &s.peer_id)?;
    let s = &ExpectEventStep {
        pattern,
        peer_id: None,
        ..s.clone()
    };
    let line = cx.line;
    let timeout = timeout_or(s.timeout, DEFAULT_WAIT);
    let start = start_of(lab, &s.peer, &s.from, line)?;
    let log = peer(lab, &s.peer)?.log.clone();
    let want = s.count.unwrap_or(1);
    let deadline = crate::checker::lab::deadline::cap(Instant::now() + timeout);
    let mut cursor = log.cursor(start);
    let mut found = 0;
    loop {
        found += cursor
            .fresh()
            .iter()
            .filter(|l| matches(&l.value, &s.event, &s.pattern))
            .count();
        if found >= want {
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline || log.is_closed() {
            let recent: Vec<String> = log
                .since(start)
                .iter()
                .filter(|l| l.value["type"] == "event")
                .rev()
                .take(5)
                .map(|l| l.value["event"].as_str().unwrap_or("?").to_string())
                .collect();
            return Err(Failure::expect(
                format!(
                    "{want} × {} on {} within {timeout:?}",
                    describe(&s.event, &s.pattern),
                    s.peer
                ),
                format!("{found} such events; latest events: {}", recent.join(", ")),
                &[&s.peer],
            ));
        }
        // Wake on the next line, whatever it is, then count the new ones.
        cursor.wait(deadline.min(now + Duration::from_millis(500)));
    }
}

pub fn no_event(lab: &mut Lab, s: &ExpectNoEventStep, cx: &StepCtx) -> StepResult {
    let pattern = with_peer_id(lab, &s.pattern, &s.peer_id)?;
    let s = &ExpectNoEventStep {
        pattern,
        peer_id: None,
        ..s.clone()
    };
    let line = cx.line;
    let start = start_of(lab, &s.peer, &s.from, line)?;
    let log = peer(lab, &s.peer)?.log.clone();
    let window = timeout_or(s.window, Duration::ZERO);
    if !window.is_zero() {
        crate::checker::lab::deadline::sleep(window);
    }
    let hits: Vec<Value> = log
        .since(start)
        .into_iter()
        .filter(|l| matches(&l.value, &s.event, &s.pattern))
        .map(|l| l.value["data"].clone())
        .collect();
    match hits.first() {
        None => Ok(()),
        Some(first) => Err(Failure::expect(
            format!("no {} on {}", describe(&s.event, &s.pattern), s.peer),
            format!("{} such events, the first: {first}", hits.len()),
            &[&s.peer],
        )),
    }
}

/// Names of the events from `lines` whose data contains `pattern`.
pub(crate) fn event_names(lines: &[Value], pattern: &Option<Value>) -> Vec<String> {
    lines
        .iter()
        .filter(|v| v["type"] == "event")
        .filter(|v| {
            pattern
                .as_ref()
                .is_none_or(|p| json_contains(&v["data"], p))
        })
        .map(|v| v["event"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SeqMatch {
    Full,
    /// Everything seen fits, but the sequence is not complete yet.
    Prefix,
    Mismatch,
}

/// Matches event names, fed one at a time, against a sequence where
/// `name*` stands for one or more `name` in a row (greedily) and every other
/// name for exactly one.
pub(crate) struct SeqMatcher<'a> {
    sequence: &'a [String],
    /// The sequence items matched so far.
    next: usize,
    /// The name of the last matched item when it was `name*`: more of it fit.
    repeating: Option<&'a str>,
    mismatch: bool,
}

impl<'a> SeqMatcher<'a> {
    pub(crate) fn new(sequence: &'a [String]) -> Self {
        Self {
            sequence,
            next: 0,
            repeating: None,
            mismatch: false,
        }
    }

    pub(crate) fn push(&mut self, seen: &str) {
        if self.mismatch || self.repeating == Some(seen) {
            return;
        }
        let Some(want) = self.sequence.get(self.next) else {
            // Anything after the end.
            self.mismatch = true;
            return;
        };
        let (name, many) = match want.strip_suffix('*') {
            Some(n) => (n, true),
            None => (want.as_str(), false),
        };
        if seen != name {
            self.mismatch = true;
            return;
        }
        self.next += 1;
        self.repeating = many.then_some(name);
    }

    pub(crate) fn verdict(&self) -> SeqMatch {
        if self.mismatch {
            SeqMatch::Mismatch
        } else if self.next == self.sequence.len() {
            SeqMatch::Full
        } else {
            SeqMatch::Prefix
        }
    }
}

/// `a a a b` → `a ×3 → b`.
fn show_runs(names: &[String]) -> String {
    let mut runs: Vec<(String, usize)> = Vec::new();
    for n in names {
        match runs.last_mut() {
            Some((last, k)) if last == n => *k += 1,
            _ => runs.push((n.clone(), 1)),
        }
    }
    if runs.is_empty() {
        return "none".into();
    }
    runs.iter()
        .map(|(n, k)| {
            if *k > 1 {
                format!("{n} ×{k}")
            } else {
                n.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" → ")
}

pub fn sequence(lab: &mut Lab, s: &ExpectSequenceStep, cx: &StepCtx) -> StepResult {
    let line = cx.line;
    let timeout = timeout_or(s.timeout, DEFAULT_WAIT);
    let start = start_of(lab, &s.peer, &s.from, line)?;
    let log = peer(lab, &s.peer)?.log.clone();
    let deadline = crate::checker::lab::deadline::cap(Instant::now() + timeout);
    let mut cursor = log.cursor(start);
    let mut matcher = SeqMatcher::new(&s.sequence);
    let mut seen = Vec::new();
    loop {
        let lines: Vec<Value> = cursor.fresh().into_iter().map(|l| l.value).collect();
        for name in event_names(&lines, &s.pattern) {
            matcher.push(&name);
            seen.push(name);
        }
        let verdict = matcher.verdict();
        if verdict == SeqMatch::Full {
            return Ok(());
        }
        let now = Instant::now();
        // A mismatch never heals: events only get appended.
        if verdict == SeqMatch::Mismatch || now >= deadline || log.is_closed() {
            let what = match &s.pattern {
                Some(p) => format!(" matching {p}"),
                None => String::new(),
            };
            return Err(Failure::expect(
                format!(
                    "events{what} on {} in the order {}",
                    s.peer,
                    s.sequence.join(" → ")
                ),
                show_runs(&seen),
                &[&s.peer],
            ));
        }
        cursor.wait(deadline.min(now + Duration::from_millis(500)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn match_sequence(seen: &[String], sequence: &[String]) -> SeqMatch {
        let mut m = SeqMatcher::new(sequence);
        for name in seen {
            m.push(name);
        }
        m.verdict()
    }

    /// The whole-list matcher `SeqMatcher` replaced, kept as the reference.
    fn reference_match(seen: &[String], sequence: &[String]) -> SeqMatch {
        let mut i = 0;
        for want in sequence {
            let (name, many) = match want.strip_suffix('*') {
                Some(n) => (n, true),
                None => (want.as_str(), false),
            };
            if i == seen.len() {
                return SeqMatch::Prefix;
            }
            if seen[i] != name {
                return SeqMatch::Mismatch;
            }
            i += 1;
            while many && i < seen.len() && seen[i] == name {
                i += 1;
            }
        }
        if i == seen.len() {
            SeqMatch::Full
        } else {
            SeqMatch::Mismatch
        }
    }

    /// Every list of up to `len` items drawn from `alphabet`.
    fn all_lists(alphabet: &[&str], len: usize) -> Vec<Vec<String>> {
        let mut out = vec![Vec::new()];
        let mut last = vec![Vec::new()];
        for _ in 0..len {
            let mut longer = Vec::new();
            for l in &last {
                for a in alphabet {
                    let mut l = l.clone();
                    l.push(a.to_string());
                    longer.push(l);
                }
            }
            out.extend(longer.iter().cloned());
            last = longer;
        }
        out
    }

    #[test]
    fn fed_one_at_a_time_the_matcher_agrees_with_the_whole_list_match() {
        let sequences = all_lists(&["a", "b", "a*", "b*"], 3);
        let seens = all_lists(&["a", "b"], 5);
        for sequence in &sequences {
            for seen in &seens {
                let mut m = SeqMatcher::new(sequence);
                for (n, name) in seen.iter().enumerate() {
                    m.push(name);
                    assert_eq!(
                        m.verdict(),
                        reference_match(&seen[..=n], sequence),
                        "{sequence:?} after {:?}",
                        &seen[..=n]
                    );
                }
                assert_eq!(
                    match_sequence(seen, sequence),
                    reference_match(seen, sequence)
                );
            }
        }
    }

    #[test]
    fn sequences_match_stars_and_filter_by_match() {
        let ev = |name: &str, game: &str| json!({"type": "event", "event": name, "data": {"game_id": game}});
        let lines = vec![
            ev("install-begin", "g"),
            ev("download-begin", "other"),
            json!({"type": "result", "data": {"game_id": "g"}}),
            ev("download-chunk-finished", "g"),
            ev("download-chunk-finished", "other"),
            ev("download-chunk-finished", "g"),
            ev("install-finished", "g"),
        ];
        let seen = event_names(&lines, &Some(json!({"game_id": "g"})));
        assert_eq!(seen.len(), 4);
        assert_eq!(event_names(&lines, &None).len(), 6);
        let seq = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let full = seq(&[
            "install-begin",
            "download-chunk-finished*",
            "install-finished",
        ]);
        assert_eq!(match_sequence(&seen, &full), SeqMatch::Full);
        assert_eq!(match_sequence(&seen[..2], &full), SeqMatch::Prefix);
        assert_eq!(match_sequence(&[], &full), SeqMatch::Prefix);
        // Without the star a repeated event is one too many.
        let once = seq(&[
            "install-begin",
            "download-chunk-finished",
            "install-finished",
        ]);
        assert_eq!(match_sequence(&seen, &once), SeqMatch::Mismatch);
        // Anything after the end, or out of order, is a mismatch.
        let mut twice = seen.clone();
        twice.push("install-finished".into());
        assert_eq!(match_sequence(&twice, &full), SeqMatch::Mismatch);
        assert_eq!(
            match_sequence(&seq(&["install-finished"]), &full),
            SeqMatch::Mismatch
        );
        assert_eq!(
            show_runs(&seen),
            "install-begin → download-chunk-finished ×2 → install-finished"
        );
    }
}
