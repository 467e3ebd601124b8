//! Fuzzing actions: `fuzzCommand` and `fuzzAllCommands` send combinations of
//! field values to a peer's control commands; `fuzzWire` sends malformed and
//! hostile wire-protocol messages over QUIC. All three then check that the
//! target survived, changed nothing outside its games dir, and still serves a
//! normal download to a fresh probe peer.

use crate::checker::actions::timeout_or;
use crate::checker::lab::{Lab, Spawn, is_event};
use crate::checker::outcome::{Failure, StepResult};
use crate::checker::registry::{StepCtx, StepParams};
use crate::checker::wire_client::{self, Reply, WireClient};
use crate::manifest::{self, Entry};
use crate::peer::wire::{
    Announce, FileDesc, GameAd, MAX_FRAME, PROTOCOL_VERSION, Request, Response,
};
use crate::units::Span;
use anyhow::{Context, anyhow};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_INPUT_TIMEOUT: Duration = Duration::from_secs(15);
/// A single `fuzzCommand` larger than this is surely a mistake in the scenario.
const MAX_INPUTS: u64 = 100_000;
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// `fuzzCommand{}`: every combination of `choices` for one control command.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FuzzCommandStep {
    pub peer: String,
    pub cmd: String,
    /// Field names to fill, in order; the peer's `commands` list otherwise.
    pub fields: Option<Vec<String>>,
    pub choices: Vec<Value>,
    #[serde(default)]
    pub min_len: usize,
    pub max_len: usize,
    /// Per input.
    pub timeout: Option<Span>,
}

/// `fuzzAllCommands{}`: `fuzzCommand` for every listed command but `shutdown`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FuzzAllCommandsStep {
    pub peer: String,
    pub choices: Vec<Value>,
    #[serde(default)]
    pub min_len: usize,
    pub max_len: usize,
    /// Cap on the total inputs; a seeded sample is sent when there are more.
    pub limit: Option<u64>,
    pub seed: Option<u64>,
    #[serde(default)]
    pub skip: Vec<String>,
    /// Per input.
    pub timeout: Option<Span>,
}

/// `fuzzWire{}`: hostile wire-protocol messages against `target`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FuzzWireStep {
    pub target: String,
    #[serde(default = "default_cases")]
    pub cases: usize,
    #[serde(default)]
    pub seed: u64,
}

impl StepParams for FuzzWireStep {}

fn default_cases() -> usize {
    200
}

/// `minLen` above `maxLen` would send nothing.
fn check_lengths(min_len: usize, max_len: usize) -> Result<(), String> {
    if min_len > max_len {
        return Err(format!(
            "`minLen` ({min_len}) is above `maxLen` ({max_len})"
        ));
    }
    Ok(())
}

impl StepParams for FuzzCommandStep {
    fn check(&self) -> Result<(), String> {
        check_lengths(self.min_len, self.max_len)?;
        if let Some(f) = self.fields.as_deref().and_then(unfuzzable) {
            return Err(format!("`fields`: {}", cannot_fuzz(f)));
        }
        Ok(())
    }
}

impl StepParams for FuzzAllCommandsStep {
    fn check(&self) -> Result<(), String> {
        check_lengths(self.min_len, self.max_len)
    }
}

// ---------------------------------------------------------------------------
// Enumeration of inputs

/// How many inputs there are of every length in `min..=max` over `n`
/// choices; `None` when the count does not fit in a u64.
pub fn combination_count(n: usize, min: usize, max: usize) -> Option<u64> {
    let mut total = 0u64;
    for k in min..=max {
        let k = u32::try_from(k).ok()?;
        total = total.checked_add((n as u64).checked_pow(k)?)?;
    }
    Some(total)
}

/// The `i`-th input (0-based) in enumeration order: by length ascending,
/// then lexicographically by choice index. Each item is a choice index.
pub fn nth_combination(n: usize, min: usize, max: usize, mut i: u64) -> Option<Vec<usize>> {
    for k in min..=max {
        let count = (n as u64).checked_pow(u32::try_from(k).ok()?)?;
        if i < count {
            let mut digits = vec![0usize; k];
            for d in digits.iter_mut().rev() {
                *d = (i % n as u64) as usize;
                i /= n as u64;
            }
            return Some(digits);
        }
        i -= count;
    }
    None
}

/// Which of `total` inputs to send: all of them, or (when `limit` is
/// smaller) `limit` distinct ones drawn with `seed`, in enumeration order.
pub fn select(total: u64, limit: Option<u64>, seed: u64) -> Vec<u64> {
    match limit {
        Some(limit) if limit < total => {
            let mut rng = StdRng::seed_from_u64(seed);
            let len = usize::try_from(total).unwrap_or(usize::MAX);
            let amount = usize::try_from(limit).unwrap_or(usize::MAX);
            let mut picked: Vec<u64> = rand::seq::index::sample(&mut rng, len, amount)
                .into_iter()
                .map(|i| i as u64)
                .collect();
            picked.sort_unstable();
            picked
        }
        _ => (0..total).collect(),
    }
}

/// One command to fuzz: its name and the fields filled in order.
#[derive(Debug, Clone, PartialEq)]
struct Target {
    cmd: String,
    fields: Vec<String>,
}

impl Target {
    /// Lengths past the field count cannot be built: cap them.
    fn max_len(&self, max_len: usize) -> usize {
        max_len.min(self.fields.len())
    }
}

/// The JSON line of one input.
fn input_line(id: &str, target: &Target, combo: &[usize], choices: &[Value]) -> String {
    let mut obj = serde_json::Map::new();
    obj.insert("id".into(), json!(id));
    obj.insert("cmd".into(), json!(target.cmd));
    for (field, choice) in target.fields.iter().zip(combo) {
        obj.insert(field.clone(), choices[*choice].clone());
    }
    Value::Object(obj).to_string()
}

// ---------------------------------------------------------------------------
// Control-protocol fuzzing

fn peer_missing(e: anyhow::Error) -> Failure {
    Failure::invalid(format!("{e:#}"))
}

/// The peer's `commands` answer: command name → field names in order.
fn listed_commands(lab: &mut Lab, peer: &str) -> Result<BTreeMap<String, Vec<String>>, Failure> {
    let answer = lab
        .peer(peer)
        .map_err(peer_missing)?
        .call(json!({ "cmd": "commands" }), COMMAND_TIMEOUT)
        .map_err(|e| Failure::harness(e, &[peer]))?;
    let mut out = BTreeMap::new();
    let rows = answer["commands"].as_array().ok_or_else(|| {
        Failure::expect(
            "a `commands` answer with a `commands` list",
            answer.to_string(),
            &[peer],
        )
    })?;
    for row in rows {
        let name = row["name"].as_str().ok_or_else(|| {
            Failure::expect("every listed command has a name", row.to_string(), &[peer])
        })?;
        let fields = row["fields"]
            .as_array()
            .map(|f| {
                f.iter()
                    .filter_map(|f| f["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        out.insert(name.to_string(), fields);
    }
    Ok(out)
}

/// The first of `fields` that the fuzzer sets itself to match answers.
fn unfuzzable(fields: &[String]) -> Option<&str> {
    fields
        .iter()
        .map(String::as_str)
        .find(|f| ["id", "cmd", "command"].contains(f))
}

fn cannot_fuzz(field: &str) -> String {
    format!("{field:?} cannot be fuzzed: the fuzzer needs it to match answers")
}

/// The fields a peer lists for a command (a scenario's own `fields` were
/// checked when the file loaded).
fn check_listed_fields(fields: &[String]) -> Result<(), Failure> {
    match unfuzzable(fields) {
        Some(f) => Err(Failure::invalid(format!("field {}", cannot_fuzz(f)))),
        None => Ok(()),
    }
}

pub fn fuzz_command(lab: &mut Lab, s: &FuzzCommandStep, _cx: &StepCtx) -> StepResult {
    let fields = match &s.fields {
        Some(f) => f.clone(),
        None => {
            let listed = listed_commands(lab, &s.peer)?;
            let fields = listed.get(&s.cmd).cloned().ok_or_else(|| {
                Failure::invalid(format!(
                    "{} does not list a command {:?} (it lists {}); give `fields`",
                    s.peer,
                    s.cmd,
                    listed.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            })?;
            check_listed_fields(&fields)?;
            fields
        }
    };
    let target = Target {
        cmd: s.cmd.clone(),
        fields,
    };
    let timeout = timeout_or(s.timeout, DEFAULT_INPUT_TIMEOUT);
    let plan = Plan::new(vec![target], &s.choices, s.min_len, s.max_len, None, 0)?;
    run_control_fuzz(lab, &s.peer, &plan, &s.choices, timeout)
}

pub fn fuzz_all_commands(lab: &mut Lab, s: &FuzzAllCommandsStep, _cx: &StepCtx) -> StepResult {
    let listed = listed_commands(lab, &s.peer)?;
    let targets: Vec<Target> = listed
        .into_iter()
        .filter(|(name, _)| name != "shutdown" && !s.skip.contains(name))
        .map(|(cmd, fields)| Target { cmd, fields })
        .collect();
    for t in &targets {
        check_listed_fields(&t.fields)?;
    }
    let timeout = timeout_or(s.timeout, DEFAULT_INPUT_TIMEOUT);
    // The run's seed unless the scenario pins one (printed on failure).
    let seed = s.seed.unwrap_or(lab.seed);
    let plan = Plan::new(targets, &s.choices, s.min_len, s.max_len, s.limit, seed)?;
    run_control_fuzz(lab, &s.peer, &plan, &s.choices, timeout)
}

/// The inputs of one fuzz step: (target, combination) in send order.
struct Plan {
    inputs: Vec<(usize, Vec<usize>)>,
    targets: Vec<Target>,
    total: u64,
    seed: u64,
    limited: bool,
}

impl Plan {
    fn new(
        targets: Vec<Target>,
        choices: &[Value],
        min_len: usize,
        max_len: usize,
        limit: Option<u64>,
        seed: u64,
    ) -> Result<Self, Failure> {
        // `minLen` ≤ `maxLen` was checked when the file loaded.
        let n = choices.len();
        let mut counts = Vec::new();
        for t in &targets {
            let max = t.max_len(max_len);
            let count = if min_len > max {
                0
            } else {
                combination_count(n, min_len, max).ok_or_else(|| {
                    Failure::invalid(format!("{}: too many combinations to count", t.cmd))
                })?
            };
            counts.push(count);
        }
        let total = counts
            .iter()
            .try_fold(0u64, |a, c| a.checked_add(*c))
            .ok_or_else(|| Failure::invalid("too many combinations to count"))?;
        let picked = select(total, limit, seed);
        if picked.len() as u64 > MAX_INPUTS {
            return Err(Failure::invalid(format!(
                "{} inputs is too many; lower maxLen or the number of choices, or set `limit`",
                picked.len()
            )));
        }
        let mut inputs = Vec::with_capacity(picked.len());
        // Map each global index to (target, index within that target).
        let mut base = 0u64;
        let mut t = 0usize;
        for g in picked {
            while t < counts.len() && g >= base + counts[t] {
                base += counts[t];
                t += 1;
            }
            let max = targets[t].max_len(max_len);
            let combo = nth_combination(n, min_len, max, g - base)
                .ok_or_else(|| Failure::invalid("input index out of range"))?;
            inputs.push((t, combo));
        }
        Ok(Self {
            inputs,
            targets,
            total,
            seed,
            limited: limit.is_some_and(|l| l < total),
        })
    }

    fn replay_hint(&self) -> String {
        if self.limited {
            format!(
                "seed {} (a sample of {} of {} inputs)",
                self.seed,
                self.inputs.len(),
                self.total
            )
        } else {
            format!("seed {} (all {} inputs were due)", self.seed, self.total)
        }
    }
}

fn run_control_fuzz(
    lab: &mut Lab,
    peer_name: &str,
    plan: &Plan,
    choices: &[Value],
    timeout: Duration,
) -> StepResult {
    let before = snapshot(lab, peer_name)?;
    let peer = lab.peer(peer_name).map_err(peer_missing)?;
    let log_start = peer.log.len();
    let mut ids = Vec::with_capacity(plan.inputs.len());
    for (n, (t, combo)) in plan.inputs.iter().enumerate() {
        let id = format!("fuzz-{n}");
        let line = input_line(&id, &plan.targets[*t], combo, choices);
        let fail = |what: String| {
            Failure::expect(
                "every fuzz input gets exactly one well-formed answer and the peer stays alive",
                format!(
                    "{what}\n            input: {line}\n            {}",
                    plan.replay_hint()
                ),
                &[peer_name],
            )
        };
        let start = peer.log.len();
        if let Err(e) = peer.send_line(&line) {
            return Err(fail(format!("{e:#}")));
        }
        let deadline = Instant::now() + timeout;
        let answer = peer.log.wait_for(start, deadline, |v| {
            v["id"] == json!(id) && (v["type"] == "result" || v["type"] == "error")
        });
        let Some(answer) = answer else {
            let why = if peer.log.is_closed() {
                "the peer exited".to_string()
            } else {
                format!("no answer within {timeout:?}")
            };
            return Err(fail(why));
        };
        if let Some(problem) = malformed_answer(&answer.value) {
            return Err(fail(format!("{problem}: {}", answer.value)));
        }
        if !peer.is_alive() {
            return Err(fail("the peer died after answering".into()));
        }
        ids.push((id, line));
    }
    // A late second answer to an input is a defect too.
    std::thread::sleep(Duration::from_millis(300));
    let lines = peer.log.since(log_start);
    if let Some(garbage) = lines.iter().find(|l| l.value["type"] == "garbage") {
        return Err(Failure::expect(
            "only JSON lines on the peer's stdout",
            format!("{} ({})", garbage.value["line"], plan.replay_hint()),
            &[peer_name],
        ));
    }
    for (id, line) in &ids {
        let n = lines
            .iter()
            .filter(|l| l.value["id"] == json!(id))
            .filter(|l| l.value["type"] == "result" || l.value["type"] == "error")
            .count();
        if n != 1 {
            return Err(Failure::expect(
                "exactly one answer per fuzz input",
                format!("{n} answers to input {line} ({})", plan.replay_hint()),
                &[peer_name],
            ));
        }
    }
    println!(
        "      … {peer_name}: {} fuzz inputs answered ({})",
        ids.len(),
        plan.replay_hint()
    );
    after_fuzz(lab, peer_name, &before, &plan.replay_hint())
}

/// What is wrong with an answer line, if anything.
fn malformed_answer(v: &Value) -> Option<&'static str> {
    match v["type"].as_str() {
        Some("result") if v.get("data").is_none() => Some("a result without `data`"),
        Some("error") if !v["code"].is_string() || !v["error"].is_string() => {
            Some("an error without a string `code` and `error`")
        }
        _ => None,
    }
}

/// The common end of every fuzz step: in-flight operations settle, nothing
/// outside the target's games dir changed, and the target still serves.
fn after_fuzz(lab: &mut Lab, target: &str, before: &Snapshot, hint: &str) -> StepResult {
    settle(lab, target)?;
    let after = snapshot(lab, target)?;
    let changes = diff_snapshots(before, &after);
    if !changes.is_empty() {
        return Err(Failure::expect(
            format!("nothing outside {target}'s games dir changes while it is fuzzed"),
            format!("{} ({hint})", changes.join("; ")),
            &[target],
        ));
    }
    probe_download(lab, target)
}

/// Waits until the target has no active operation.
fn settle(lab: &mut Lab, target: &str) -> StepResult {
    let peer = lab.peer(target).map_err(peer_missing)?;
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        if !peer.is_alive() {
            return Err(Failure::expect(
                format!("{target} survives the fuzzing"),
                "the peer process is gone",
                &[target],
            ));
        }
        let status = peer
            .call(json!({ "cmd": "status" }), COMMAND_TIMEOUT)
            .map_err(|e| Failure::harness(e, &[target]))?;
        let busy = &status["active_operations"];
        if busy.as_object().is_some_and(|o| o.is_empty()) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Failure::expect(
                format!("{target}'s operations settle within {SETTLE_TIMEOUT:?} after fuzzing"),
                format!("active_operations {busy}"),
                &[target],
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ---------------------------------------------------------------------------
// Snapshots and the probe download (shared by every fuzz action)

/// Absolute path → manifest entry of every watched file.
type Snapshot = BTreeMap<PathBuf, Entry>;

/// Hashes the run workspace, the other peers' games dirs and the target's
/// state dir, leaving out the target's games dir and log files.
fn snapshot(lab: &Lab, target: &str) -> Result<Snapshot, Failure> {
    let own = lab
        .peers
        .get(target)
        .ok_or_else(|| Failure::invalid(format!("no peer named {target:?}")))?;
    let skip = own.games_dir.clone();
    let mut roots = vec![lab.workspace.clone(), own.state_dir.clone()];
    roots.extend(
        lab.peers
            .values()
            .filter(|p| p.name != target)
            .map(|p| p.games_dir.clone()),
    );
    let mut out = Snapshot::new();
    for root in roots {
        if !root.is_dir() || root.starts_with(&skip) {
            continue;
        }
        let m = manifest::build(&root, &[])
            .with_context(|| format!("snapshot of {}", root.display()))
            .map_err(|e| Failure::harness(e, &[]))?;
        for (rel, entry) in m {
            let path = root.join(&rel);
            let is_log = path
                .file_name()
                .is_some_and(|n| n == "stderr.log" || n == "events.jsonl");
            if !path.starts_with(&skip) && !is_log {
                out.insert(path, entry);
            }
        }
    }
    Ok(out)
}

fn diff_snapshots(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    for (p, e) in before {
        match after.get(p) {
            None => out.push(format!("{} was removed", p.display())),
            Some(a) if a != e => out.push(format!("{} changed", p.display())),
            _ => {}
        }
    }
    for p in after.keys().filter(|p| !before.contains_key(*p)) {
        out.push(format!("{} appeared", p.display()));
    }
    out
}

/// Starts a fresh probe peer, connects it to `target`, downloads one ready
/// catalog-version game the target offers and compares the bytes.
pub fn probe_download(lab: &mut Lab, target: &str) -> StepResult {
    let target_addr = lab.peer(target).map_err(peer_missing)?.addr.clone();
    let mut n = 1;
    let name = loop {
        let candidate = format!("{target}-probe{n}");
        // Earlier probes are gone from `peers` but their folders stay.
        if !lab.peers.contains_key(&candidate)
            && !lab.run_dir.join("peers").join(&candidate).exists()
        {
            break candidate;
        }
        n += 1;
    };
    let games_dir = lab.run_dir.join("peers").join(&name).join("games");
    std::fs::create_dir_all(&games_dir).map_err(|e| Failure::harness(e.into(), &[]))?;
    let exec = std::env::current_exe()
        .context("locating this binary")
        .map_err(|e| Failure::harness(e, &[]))?;
    lab.spawn(Spawn {
        name: name.clone(),
        exec,
        games_dir: games_dir.clone(),
        chunk_size: None,
        catalog: None,
        // The probe must see the real layout, whatever the scenario redirected.
        redirects: crate::redirect::Redirects::new(),
        args: Vec::new(),
        ready_timeout: Duration::from_secs(15),
    })
    .map_err(|e| Failure::harness(e, &[]))?;
    let result = probe_inner(lab, target, &name, &target_addr, &games_dir);
    if result.is_ok() {
        // A passing probe leaves no peer behind for later steps to trip on.
        if let Some(mut p) = lab.peers.remove(&name) {
            p.kill();
        }
    }
    result
}

fn probe_inner(
    lab: &mut Lab,
    target: &str,
    probe: &str,
    target_addr: &str,
    probe_games: &Path,
) -> StepResult {
    let peers = [target, probe];
    let p = lab.peer(probe).map_err(peer_missing)?;
    p.call(
        json!({ "cmd": "connect", "addr": target_addr }),
        COMMAND_TIMEOUT,
    )
    .map_err(|e| {
        Failure::expect(
            format!("a fresh probe peer connects to {target} after fuzzing"),
            format!("{e:#}"),
            &peers,
        )
    })?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let game = loop {
        let games = p
            .call(json!({ "cmd": "list-games" }), COMMAND_TIMEOUT)
            .map_err(|e| Failure::harness(e, &peers))?;
        let offered = games["games"].as_array().and_then(|rows| {
            rows.iter()
                .find(|r| r["peer_count"].as_u64().is_some_and(|c| c >= 1))
                .and_then(|r| r["game_id"].as_str().map(str::to_string))
        });
        if let Some(g) = offered {
            break g;
        }
        if Instant::now() >= deadline {
            return Err(Failure::invalid(format!(
                "{target} offers no ready catalog-version game, so the fuzz step cannot check \
                 that it still serves (give it one with makeGame); the probe's list-games: {}",
                games["games"]
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let start = p.log.len();
    p.call(
        json!({ "cmd": "download", "game_id": game, "install": false }),
        COMMAND_TIMEOUT,
    )
    .map_err(|e| {
        Failure::expect(
            format!("{target} still serves {game} after fuzzing"),
            format!("{e:#}"),
            &peers,
        )
    })?;
    let g = game.clone();
    let outcome = p
        .log
        .wait_for(start, Instant::now() + PROBE_TIMEOUT, move |v| {
            (is_event(v, "download-finished") || is_event(v, "download-failed"))
                && v["data"]["game_id"] == g.as_str()
        });
    match outcome {
        Some(o) if is_event(&o.value, "download-finished") => {}
        Some(o) => {
            return Err(Failure::expect(
                format!("a probe download of {game} from {target} finishes after fuzzing"),
                format!("download-failed: {}", o.value["data"]),
                &peers,
            ));
        }
        None => {
            return Err(Failure::expect(
                format!("a probe download of {game} from {target} finishes after fuzzing"),
                format!("no outcome within {PROBE_TIMEOUT:?}"),
                &peers,
            ));
        }
    }
    let target_root = lab
        .peer(target)
        .map_err(peer_missing)?
        .games_dir
        .join(&game);
    let want = manifest::build(&target_root, &[crate::peer::library::LOCAL_DIR])
        .map_err(|e| Failure::harness(e, &peers))?;
    let got = manifest::build(&probe_games.join(&game), &[crate::peer::library::LOCAL_DIR])
        .map_err(|e| Failure::harness(e, &peers))?;
    if want != got {
        let d = manifest::diff(&want, &got);
        return Err(Failure::expect(
            format!("the probe's copy of {game} equals {target}'s"),
            format!(
                "missing {:?}, extra {:?}, differing {:?}",
                d.missing, d.extra, d.differing
            ),
            &peers,
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Wire-protocol fuzzing

/// Where a case's bytes go.
#[derive(Debug, Clone, PartialEq)]
enum Channel {
    /// A bidirectional request stream.
    Request,
    /// The unidirectional announce stream.
    Announce,
    /// Open this many request streams, send half a length prefix, walk away.
    Abandon(usize),
}

#[derive(Debug, Clone)]
struct WireCase {
    name: String,
    channel: Channel,
    bytes: Vec<u8>,
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

fn frame_json(v: &Value) -> Vec<u8> {
    frame(v.to_string().as_bytes())
}

/// What the checker learned from the target before fuzzing it.
struct Known {
    peer_id: String,
    /// Game ID → files, for every game the target really serves.
    files: BTreeMap<String, Vec<FileDesc>>,
    games_dir: PathBuf,
}

impl Known {
    fn first_file(&self) -> (String, FileDesc) {
        self.files
            .iter()
            .find_map(|(g, f)| {
                f.iter()
                    .max_by_key(|f| f.size)
                    .map(|f| (g.clone(), f.clone()))
            })
            .unwrap_or_else(|| {
                (
                    "cnc4".into(),
                    FileDesc {
                        path: "version.ini".into(),
                        size: 0,
                    },
                )
            })
    }
}

fn hello(peer_id: &str, protocol: u32) -> Value {
    json!({ "type": "hello", "protocol": protocol, "peer_id": peer_id,
            "addr": "127.0.0.1:9", "games": [] })
}

/// Paths (relative to the target's game root) the fixed cases use.
const LINK_FILE: &str = "fuzz-link";
const LINK_DIR: &str = "fuzz-dirlink";
const LOCAL_SECRET: &str = "local/fuzz-secret";

/// The fixed, named hostile cases.
fn named_cases(k: &Known) -> Vec<WireCase> {
    let (game, file) = k.first_file();
    let chunk = |path: &str, offset: u64, len: u64| {
        frame_json(&json!({ "type": "chunk", "game_id": game, "path": path,
                            "offset": offset, "len": len }))
    };
    let chunk_for = |game_id: &str| {
        frame_json(
            &json!({ "type": "chunk", "game_id": game_id, "path": file.path,
                            "offset": 0, "len": 1 }),
        )
    };
    let files_for =
        |game_id: &str| frame_json(&json!({ "type": "game-files", "game_id": game_id }));
    let abs = k.games_dir.join(&game).join(&file.path);
    let mut oversized = ((MAX_FRAME + 1) as u32).to_be_bytes().to_vec();
    oversized.extend_from_slice(b"{\"type\":");
    let mut truncated = 100u32.to_be_bytes().to_vec();
    truncated.extend_from_slice(b"{\"type\":\"ga");
    let garbage: Vec<u8> = (0..64u32).map(|i| (i * 37 + 11) as u8).collect();
    let mut second_hello = frame_json(&hello("fuzz-second-hello", PROTOCOL_VERSION));
    second_hello.extend(frame_json(&hello("fuzz-second-hello", PROTOCOL_VERSION)));
    let r = |name: &str, bytes: Vec<u8>| WireCase {
        name: name.into(),
        channel: Channel::Request,
        bytes,
    };
    let a = |name: &str, bytes: Vec<u8>| WireCase {
        name: name.into(),
        channel: Channel::Announce,
        bytes,
    };
    vec![
        r("request: garbage bytes", garbage.clone()),
        a("announce: garbage bytes", garbage),
        r("request: length prefix over 4 MiB", oversized.clone()),
        a("announce: length prefix over 4 MiB", oversized),
        r("request: truncated frame", truncated.clone()),
        a("announce: truncated frame", truncated),
        r(
            "request: a hello on a request stream",
            frame_json(&hello("fuzz-x", 1)),
        ),
        r("request: a JSON array", frame(b"[1,2,3]")),
        r("request: a JSON string", frame(b"\"chunk\"")),
        r(
            "request: unknown type",
            frame_json(&json!({ "type": "delete", "game_id": game })),
        ),
        a(
            "announce: a request on the announce stream",
            files_for(&game),
        ),
        r(
            "request: unknown field",
            frame_json(&json!({ "type": "game-files", "game_id": game, "admin": true })),
        ),
        a(
            "announce: hello with an unknown field",
            frame_json(
                &json!({ "type": "hello", "protocol": 1, "peer_id": "fuzz-u",
                                "addr": "127.0.0.1:9", "games": [], "admin": true }),
            ),
        ),
        a(
            "announce: hello of protocol 999",
            frame_json(&hello("fuzz-p", 999)),
        ),
        a(
            "announce: hello with the target's own peer id",
            frame_json(&hello(&k.peer_id, 1)),
        ),
        a("announce: a second hello", second_hello),
        a(
            "announce: hello with an invalid addr",
            frame_json(
                &json!({ "type": "hello", "protocol": 1, "peer_id": "fuzz-a",
                                "addr": "../x", "games": [] }),
            ),
        ),
        r(
            "chunk: ../ path",
            chunk(&format!("../{game}/{}", file.path), 0, 1),
        ),
        r(
            "chunk: deep ../ path",
            chunk("../../../../../../etc/passwd", 0, 1),
        ),
        r("chunk: absolute path outside", chunk("/etc/passwd", 0, 1)),
        r(
            "chunk: absolute path of a served file",
            chunk(&abs.to_string_lossy(), 0, 1),
        ),
        r("chunk: local/ path", chunk(LOCAL_SECRET, 0, 1)),
        r("chunk: symlink to a file outside", chunk(LINK_FILE, 0, 1)),
        r(
            "chunk: path through a symlinked dir",
            chunk(&format!("{LINK_DIR}/secret"), 0, 1),
        ),
        r("chunk: empty path", chunk("", 0, 1)),
        r("chunk: the root itself", chunk(".", 0, 1)),
        r(
            "chunk: offset past the end",
            chunk(&file.path, file.size + 1, 1),
        ),
        r("chunk: len = u64::MAX", chunk(&file.path, 0, u64::MAX)),
        r(
            "chunk: offset+len overflows",
            chunk(&file.path, u64::MAX - 1, 2),
        ),
        r(
            "chunk: one byte past the end",
            chunk(&file.path, 0, file.size + 1),
        ),
        r("chunk: negative offset", {
            let body = format!(
                "{{\"type\":\"chunk\",\"game_id\":{},\"path\":{},\"offset\":-1,\"len\":1}}",
                json!(game),
                json!(file.path)
            );
            frame(body.as_bytes())
        }),
        r("game-files: unknown game id", files_for("no-such-game-zz")),
        r("game-files: id with /", files_for(&format!("{game}/.."))),
        r("game-files: id ..", files_for("..")),
        r("game-files: id ../game", files_for(&format!("../{game}"))),
        r("game-files: empty id", files_for("")),
        r("chunk: id ..", chunk_for("..")),
        r("chunk: id ../game", chunk_for(&format!("../{game}"))),
        r("chunk: unknown game id", chunk_for("no-such-game-zz")),
        WireCase {
            name: "many request streams opened and abandoned".into(),
            channel: Channel::Abandon(300),
            bytes: Vec::new(),
        },
    ]
}

/// Values a random mutation may put into a field.
fn hostile_value(rng: &mut StdRng, k: &Known) -> Value {
    let (game, file) = k.first_file();
    let pool = [
        json!("../x"),
        json!(format!("../{game}/{}", file.path)),
        json!("/etc/passwd"),
        json!(LOCAL_SECRET),
        json!(LINK_FILE),
        json!(format!("{LINK_DIR}/secret")),
        json!(""),
        json!("x".repeat(5000)),
        json!(".."),
        json!(game),
        json!(file.path),
        json!(0),
        json!(-1),
        json!(u64::MAX),
        json!(file.size),
        json!(file.size + 1),
        json!(1e30),
        json!(null),
        json!(true),
        json!([]),
        json!({}),
        json!("cnc4"),
    ];
    pool[rng.random_range(0..pool.len())].clone()
}

/// One random mutation of a valid frame, built from `rng`.
fn random_case(i: usize, rng: &mut StdRng, k: &Known) -> WireCase {
    let (game, file) = k.first_file();
    let len = file.size.min(4096);
    let (mut value, channel) = match rng.random_range(0..4) {
        0 => (
            json!({ "type": "game-files", "game_id": game }),
            Channel::Request,
        ),
        1 => (
            json!({ "type": "chunk", "game_id": game, "path": file.path,
                    "offset": 0, "len": len }),
            Channel::Request,
        ),
        2 => (
            hello(&format!("fuzz-r{i}"), PROTOCOL_VERSION),
            Channel::Announce,
        ),
        _ => (
            json!({ "type": "library", "games": [{ "game_id": game, "version": "1" }] }),
            Channel::Announce,
        ),
    };
    let library = value["type"] == "library";
    let mut ops = Vec::new();
    for _ in 0..rng.random_range(1..=3) {
        let Some(obj) = value.as_object_mut() else {
            break;
        };
        let keys: Vec<String> = obj.keys().cloned().collect();
        // Every field dropped already: only adding one is left.
        let op = if keys.is_empty() {
            2
        } else {
            rng.random_range(0..4)
        };
        match op {
            0 => {
                let key = &keys[rng.random_range(0..keys.len())];
                let v = hostile_value(rng, k);
                ops.push(format!("{key}={}", truncate(&v.to_string(), 40)));
                obj.insert(key.clone(), v);
            }
            1 => {
                let key = &keys[rng.random_range(0..keys.len())];
                ops.push(format!("drop {key}"));
                obj.remove(key);
            }
            2 => {
                ops.push("unknown field".into());
                obj.insert("fuzz".into(), hostile_value(rng, k));
            }
            _ => {
                let types = ["hello", "library", "game-files", "chunk", "denied", "HELLO"];
                let t = types[rng.random_range(0..types.len())];
                ops.push(format!("type={t}"));
                obj.insert("type".into(), json!(t));
            }
        }
    }
    let mut body = value.to_string().into_bytes();
    // Some cases also get byte-level damage.
    if rng.random_bool(0.3) && !body.is_empty() {
        let at = rng.random_range(0..body.len());
        match rng.random_range(0..3) {
            0 => {
                body[at] ^= 1 << rng.random_range(0..8);
                ops.push(format!("flip byte {at}"));
            }
            1 => {
                body.truncate(at);
                ops.push(format!("truncate at {at}"));
            }
            _ => {
                let junk: Vec<u8> = (0..rng.random_range(1..16)).map(|_| rng.random()).collect();
                body.splice(at..at, junk);
                ops.push(format!("insert junk at {at}"));
            }
        }
    }
    let mut bytes = frame(&body);
    if rng.random_bool(0.1) {
        let claimed: u32 = match rng.random_range(0..3) {
            0 => (body.len() as u32).saturating_add(rng.random_range(1..64)),
            1 => (body.len() as u32).saturating_sub(rng.random_range(1..8)),
            _ => rng.random(),
        };
        bytes[..4].copy_from_slice(&claimed.to_be_bytes());
        ops.push(format!("length prefix {claimed}"));
    }
    if library {
        // A library update only counts after a valid hello.
        let mut with_hello = frame_json(&hello(&format!("fuzz-r{i}"), PROTOCOL_VERSION));
        with_hello.extend(bytes);
        bytes = with_hello;
    }
    WireCase {
        name: format!("random #{i} ({})", ops.join(", ")),
        channel,
        bytes,
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Splits `bytes` into frame bodies the way the target reads them; `Err` when
/// the target would hit a framing error.
fn split_frames(bytes: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err("a cut-off length prefix".into());
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len > MAX_FRAME {
            return Err(format!("a {len}-byte frame"));
        }
        if rest.len() - 4 < len {
            return Err("a cut-off frame body".into());
        }
        out.push(&rest[4..4 + len]);
        rest = &rest[4 + len..];
    }
    Ok(out)
}

/// Whether the target may keep the connection after reading `bytes` on the
/// announce stream: only for a valid hello of protocol 1 from another peer
/// ID with a parseable address, followed by nothing but library frames.
fn announce_may_stay_open(bytes: &[u8], own_id: &str) -> bool {
    let Ok(frames) = split_frames(bytes) else {
        return false;
    };
    let mut frames = frames.into_iter();
    let Some(first) = frames.next() else {
        return false;
    };
    match crate::peer::wire::decode::<Announce>(first) {
        Ok(Announce::Hello {
            protocol,
            peer_id,
            addr,
            ..
        }) if protocol == PROTOCOL_VERSION
            && peer_id != own_id
            && addr.parse::<std::net::SocketAddr>().is_ok() => {}
        _ => return false,
    }
    frames.all(|f| {
        matches!(
            crate::peer::wire::decode::<Announce>(f),
            Ok(Announce::Library { .. })
        )
    })
}

/// Judges a served response against what the target may legitimately serve.
fn judge_served(sent: &[u8], response: &Response, bytes: &[u8], k: &Known) -> Result<(), String> {
    let request = split_frames(sent)
        .ok()
        .and_then(|f| f.first().copied())
        .and_then(|body| crate::peer::wire::decode::<Request>(body).ok());
    let Some(request) = request else {
        return Err(format!(
            "served {response:?} for a request that does not parse"
        ));
    };
    match (&request, response) {
        (
            Request::GameFiles { game_id },
            Response::GameFiles {
                game_id: g, files, ..
            },
        ) => match k.files.get(game_id) {
            Some(want) if g == game_id && want == files => Ok(()),
            Some(_) => Err(format!(
                "answered {request:?} with a different list: {response:?}"
            )),
            None => Err(format!("served a file list for {request:?}")),
        },
        (
            Request::Chunk {
                game_id,
                path,
                offset,
                len,
            },
            Response::Chunk { len: got },
        ) => {
            let listed = k
                .files
                .get(game_id)
                .and_then(|f| f.iter().find(|f| &f.path == path));
            let Some(file) = listed else {
                return Err(format!(
                    "served {got} bytes for {request:?}, which names no served file"
                ));
            };
            if offset.checked_add(*len).is_none_or(|end| end > file.size) || got != len {
                return Err(format!("served {got} bytes for out-of-range {request:?}"));
            }
            let want = read_range(&k.games_dir.join(game_id).join(path), *offset, *len)
                .map_err(|e| format!("{e:#}"))?;
            if want != bytes {
                return Err(format!(
                    "served bytes for {request:?} that differ from the file"
                ));
            }
            Ok(())
        }
        _ => Err(format!("answered {request:?} with {response:?}")),
    }
}

fn read_range(path: &Path, offset: u64, len: u64) -> anyhow::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut buf = vec![0u8; usize::try_from(len)?];
    file.read_exact_at(&mut buf, offset)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(buf)
}

/// Runs one case on a fresh connection; `Err` says what the target did wrong.
/// Runs one case on a fresh connection: `Ok` names what the target did,
/// `Err` says what it did wrong.
async fn run_case(
    client: &WireClient,
    case: &WireCase,
    k: &Known,
) -> anyhow::Result<Result<&'static str, String>> {
    let conn = client.connect().await?;
    let verdict = match &case.channel {
        Channel::Request => match wire_client::request(&conn, &case.bytes).await? {
            Reply::Denied(_) => Ok("denied"),
            Reply::Closed(_) => Ok("closed the stream"),
            Reply::NoAnswer => Err(format!(
                "no answer within {:?} and the stream stayed open",
                wire_client::REPLY_TIMEOUT
            )),
            Reply::Malformed(m) => Err(format!("a malformed answer: {m}")),
            Reply::Served { response, bytes } => {
                judge_served(&case.bytes, &response, &bytes, k).map(|()| "served legitimately")
            }
        },
        Channel::Announce => {
            wire_client::announce(&conn, &case.bytes).await?;
            if announce_may_stay_open(&case.bytes, &k.peer_id) {
                Ok("accepted a valid announce")
            } else if wire_client::closes_within(&conn, Duration::from_secs(3)).await {
                Ok("closed the connection")
            } else {
                Err("the connection stayed open after a hostile announce stream".into())
            }
        }
        Channel::Abandon(n) => {
            wire_client::abandon_streams(&conn, *n).await?;
            Ok("survived abandoned streams")
        }
    };
    conn.close(0u32.into(), b"case done");
    Ok(verdict)
}

fn show_bytes(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(160)];
    let more = if bytes.len() > shown.len() {
        format!(" … ({} bytes)", bytes.len())
    } else {
        String::new()
    };
    format!(
        "hex {}{more}\n            text {:?}",
        hex::encode(shown),
        String::from_utf8_lossy(shown)
    )
}

/// Prepares the target's games dir for the path cases: a symlink to a file
/// outside the root, a symlinked folder and a file under `local/`.
fn plant_traps(lab: &Lab, root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let outside = lab.run_dir.join("fuzz-outside");
    std::fs::create_dir_all(&outside)?;
    std::fs::write(outside.join("secret"), "never serve me")?;
    let mut planted = Vec::new();
    for (link, to) in [
        (LINK_FILE, outside.join("secret")),
        (LINK_DIR, outside.clone()),
    ] {
        let at = root.join(link);
        if std::fs::symlink_metadata(&at).is_err() {
            std::os::unix::fs::symlink(&to, &at)
                .with_context(|| format!("creating {}", at.display()))?;
            planted.push(at);
        }
    }
    let local = root.join(LOCAL_SECRET);
    if !local.exists() {
        if let Some(parent) = local.parent()
            && !parent.exists()
        {
            std::fs::create_dir_all(parent)?;
            planted.push(parent.to_path_buf());
        }
        std::fs::write(&local, "installed, never served")?;
        planted.push(local);
    }
    Ok(planted)
}

fn remove_traps(planted: &[PathBuf]) {
    // Newest first, so files go before the folder that holds them.
    for p in planted.iter().rev() {
        let _ = std::fs::remove_file(p).or_else(|_| std::fs::remove_dir(p));
    }
}

/// Asks the target for its hello and the file list of every game it
/// advertises; games it refuses are left out.
async fn learn(client: &WireClient, games_dir: PathBuf) -> anyhow::Result<Known> {
    let conn = client.connect().await?;
    let hello = wire_client::read_hello(&conn).await?;
    let Announce::Hello { peer_id, games, .. } = hello else {
        return Err(anyhow!("the target's first announce frame was not a hello"));
    };
    let mut files = BTreeMap::new();
    for GameAd { game_id, .. } in games {
        let req = frame_json(&json!({ "type": "game-files", "game_id": game_id }));
        if let Reply::Served {
            response: Response::GameFiles { files: f, .. },
            ..
        } = wire_client::request(&conn, &req).await?
        {
            files.insert(game_id, f);
        }
    }
    conn.close(0u32.into(), b"learned");
    Ok(Known {
        peer_id,
        files,
        games_dir,
    })
}

pub fn fuzz_wire(lab: &mut Lab, s: &FuzzWireStep, _cx: &StepCtx) -> StepResult {
    let t = &s.target;
    let (addr, games_dir) = {
        let p = lab.peer(t).map_err(peer_missing)?;
        (p.addr.clone(), p.games_dir.clone())
    };
    let client = WireClient::new(&addr).map_err(|e| Failure::harness(e, &[t]))?;
    let known = client
        .block_on(learn(&client, games_dir.clone()))
        .map_err(|e| Failure::harness(e, &[t]))?;
    let Some(game) = known.files.keys().next().cloned() else {
        return Err(Failure::invalid(format!(
            "{t} serves no game, so fuzzWire has no valid frames to start from \
             (give it one with makeGame)"
        )));
    };
    let planted =
        plant_traps(lab, &games_dir.join(&game)).map_err(|e| Failure::harness(e, &[t]))?;
    let result = fuzz_wire_cases(lab, s, &client, &known);
    remove_traps(&planted);
    client.close();
    result
}

fn fuzz_wire_cases(
    lab: &mut Lab,
    s: &FuzzWireStep,
    client: &WireClient,
    known: &Known,
) -> StepResult {
    let t = s.target.as_str();
    let before = snapshot(lab, t)?;
    let hint = format!("fuzzWire seed {}", s.seed);
    let mut cases = named_cases(known);
    let mut rng = StdRng::seed_from_u64(s.seed);
    cases.extend((0..s.cases).map(|i| random_case(i, &mut rng, known)));
    let mut tally: BTreeMap<&'static str, usize> = BTreeMap::new();
    for case in &cases {
        let verdict = client
            .block_on(run_case(client, case, known))
            .map_err(|e| Failure::harness(e.context(format!("case {:?}", case.name)), &[t]))?;
        let alive = lab.peer(t).map_err(peer_missing)?.is_alive();
        let problem = match verdict {
            Err(problem) => Some(problem),
            Ok(_) if !alive => Some("the target process died".to_string()),
            Ok(what) => {
                *tally.entry(what).or_default() += 1;
                None
            }
        };
        if let Some(problem) = problem {
            return Err(Failure::expect(
                format!("{t} denies or closes every hostile wire message and stays alive"),
                format!(
                    "case {:?} ({:?}): {problem}\n            {}\n            {hint}",
                    case.name,
                    case.channel,
                    show_bytes(&case.bytes)
                ),
                &[t],
            ));
        }
    }
    let tally: Vec<String> = tally.iter().map(|(k, n)| format!("{n} {k}")).collect();
    println!(
        "      … {t}: {} wire cases: {} ({hint})",
        cases.len(),
        tally.join(", ")
    );
    after_fuzz(lab, t, &before, &hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(n: usize, min: usize, max: usize) -> Vec<Vec<usize>> {
        let total = combination_count(n, min, max).unwrap_or(0);
        (0..total)
            .filter_map(|i| nth_combination(n, min, max, i))
            .collect()
    }

    #[test]
    fn enumeration_is_by_length_then_lexicographic() {
        // choices {"a","b"}, maxLen 3: the order of the reference's table.
        let names = |c: &Vec<usize>| {
            c.iter()
                .map(|i| ["a", "b"][*i])
                .collect::<Vec<_>>()
                .join(" ")
        };
        let got: Vec<String> = all(2, 0, 3).iter().map(names).collect();
        let want = [
            "", "a", "b", "a a", "a b", "b a", "b b", "a a a", "a a b", "a b a", "a b b", "b a a",
            "b a b", "b b a", "b b b",
        ];
        assert_eq!(got, want);
        assert_eq!(all(3, 2, 2).len(), 9);
        assert_eq!(all(3, 1, 2)[0], vec![0]);
        assert_eq!(nth_combination(2, 0, 3, 15), None);
    }

    #[test]
    fn counts_handle_edges_and_overflow() {
        assert_eq!(combination_count(2, 0, 3), Some(15));
        assert_eq!(combination_count(0, 0, 2), Some(1));
        assert_eq!(combination_count(0, 1, 2), Some(0));
        assert_eq!(combination_count(7, 0, 2), Some(57));
        assert_eq!(combination_count(1000, 0, 10), None);
        assert!(all(0, 1, 2).is_empty());
    }

    #[test]
    fn sampling_is_deterministic_sorted_and_distinct() {
        assert_eq!(select(5, None, 1), vec![0, 1, 2, 3, 4]);
        assert_eq!(select(5, Some(9), 1), vec![0, 1, 2, 3, 4]);
        let a = select(1_000_000, Some(50), 7);
        assert_eq!(a, select(1_000_000, Some(50), 7));
        assert_ne!(a, select(1_000_000, Some(50), 8));
        assert_eq!(a.len(), 50);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert!(a.iter().all(|i| *i < 1_000_000));
    }

    #[test]
    fn plans_cap_lengths_at_the_field_count_and_map_a_limit_across_commands() -> Result<(), String>
    {
        let choices = vec![json!("a"), json!(1)];
        let targets = vec![
            Target {
                cmd: "a".into(),
                fields: vec![],
            },
            Target {
                cmd: "b".into(),
                fields: vec!["x".into(), "y".into()],
            },
        ];
        let plan =
            Plan::new(targets.clone(), &choices, 0, 3, None, 0).map_err(|e| format!("{e:?}"))?;
        // a: only the empty input; b: 1 + 2 + 4.
        assert_eq!(plan.total, 8);
        assert_eq!(plan.inputs[0], (0, vec![]));
        assert_eq!(plan.inputs[1], (1, vec![]));
        assert_eq!(plan.inputs[7], (1, vec![1, 1]));
        let line = input_line("i", &targets[1], &plan.inputs[6].1, &choices);
        assert_eq!(line, r#"{"cmd":"b","id":"i","x":1,"y":"a"}"#);
        let limited =
            Plan::new(targets, &choices, 0, 3, Some(3), 5).map_err(|e| format!("{e:?}"))?;
        assert_eq!(limited.inputs.len(), 3);
        assert!(limited.limited);
        Ok(())
    }

    #[test]
    fn announce_oracle_allows_only_a_clean_hello_and_libraries() {
        let ok = frame_json(&hello("other", PROTOCOL_VERSION));
        assert!(announce_may_stay_open(&ok, "me"));
        let mut with_lib = ok.clone();
        with_lib.extend(frame_json(&json!({ "type": "library", "games": [] })));
        assert!(announce_may_stay_open(&with_lib, "me"));
        let mut twice = ok.clone();
        twice.extend(ok.clone());
        assert!(!announce_may_stay_open(&twice, "me"));
        assert!(!announce_may_stay_open(&frame_json(&hello("me", 1)), "me"));
        assert!(!announce_may_stay_open(&frame_json(&hello("x", 2)), "me"));
        assert!(!announce_may_stay_open(&ok[..ok.len() - 1], "me"));
        assert!(!announce_may_stay_open(b"", "me"));
    }

    #[test]
    fn served_bytes_are_judged_against_the_files_on_disk() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("g"))?;
        std::fs::write(dir.path().join("g/f.bin"), b"hello")?;
        let k = Known {
            peer_id: "me".into(),
            files: BTreeMap::from([(
                "g".to_string(),
                vec![FileDesc {
                    path: "f.bin".into(),
                    size: 5,
                }],
            )]),
            games_dir: dir.path().to_path_buf(),
        };
        let req = |path: &str, offset: u64, len: u64| {
            frame_json(&json!({ "type": "chunk", "game_id": "g", "path": path,
                                "offset": offset, "len": len }))
        };
        let chunk = |len| Response::Chunk { len };
        assert!(judge_served(&req("f.bin", 1, 3), &chunk(3), b"ell", &k).is_ok());
        assert!(judge_served(&req("f.bin", 1, 3), &chunk(3), b"xxx", &k).is_err());
        assert!(judge_served(&req("../g/f.bin", 0, 1), &chunk(1), b"h", &k).is_err());
        assert!(judge_served(&req("f.bin", 4, 2), &chunk(2), b"o?", &k).is_err());
        assert!(judge_served(b"\0\0\0\x02{}", &chunk(1), b"h", &k).is_err());
        Ok(())
    }

    #[test]
    fn fuzz_steps_load_from_lua_with_defaults() -> Result<(), String> {
        use crate::checker::registry::Action;
        use crate::checker::script::load_str;
        let src = "scenario {\n fuzzAllCommands { peer = \"s\", maxLen = 2, choices = { \"a\", 0, true, { k = 1 } }, skip = { \"connect\" } },\n fuzzWire { target = \"s\" },\n}";
        let s = load_str("t.lua", src, Path::new("t.lua"), 0).map_err(|e| e.0)?;
        match &s.steps[0].action {
            Action::FuzzAllCommands(f) => {
                assert_eq!(
                    f.choices,
                    vec![json!("a"), json!(0), json!(true), json!({ "k": 1 })]
                );
                assert_eq!((f.min_len, f.max_len, f.limit, f.seed), (0, 2, None, None));
                assert_eq!(f.skip, vec!["connect".to_string()]);
            }
            other => return Err(format!("{other:?}")),
        }
        match &s.steps[1].action {
            Action::FuzzWire(w) => assert_eq!((w.cases, w.seed), (200, 0)),
            other => return Err(format!("{other:?}")),
        }
        let bad = "scenario {\n fuzzCommand { peer = \"s\", cmd = \"x\", choices = {}, maxLen = 1, max_len = 2 },\n}";
        let err = load_str("t.lua", bad, Path::new("t.lua"), 0)
            .map(|_| ())
            .err();
        assert!(
            err.as_ref().is_some_and(|e| e
                .0
                .contains("t.lua:2: fuzzCommand: unknown field `max_len`")),
            "{err:?}"
        );
        Ok(())
    }

    #[test]
    fn random_cases_are_reproducible_from_the_seed() {
        let k = Known {
            peer_id: "me".into(),
            files: BTreeMap::new(),
            games_dir: PathBuf::from("/g"),
        };
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..20)
                .map(|i| random_case(i, &mut rng, &k).bytes)
                .collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }
}
