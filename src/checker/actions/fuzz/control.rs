//! Control-protocol fuzzing: `fuzzCommand` and `fuzzAllCommands` send the
//! planned combinations to a peer's control commands, demand exactly one
//! well-formed answer per input, then hand over to the aftermath.

use super::aftermath::{SideEffect, after_fuzz, peer_missing, snapshot};
use super::combinations::{Plan, Target, input_line};
use crate::checker::actions::{COMMAND_TIMEOUT, timeout_or};
use crate::checker::lab::Lab;
use crate::checker::outcome::{Failure, StepResult};
use crate::checker::params::Span;
use crate::checker::registry::{StepCtx, StepParams};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const DEFAULT_INPUT_TIMEOUT: Duration = Duration::from_secs(15);

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
    /// Documented side effects outside the games folder that may happen
    /// (`"first-play-marker"`: `play`'s marker in the state dir).
    #[serde(default)]
    pub allow: Vec<SideEffect>,
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
    /// As `fuzzCommand`'s.
    #[serde(default)]
    pub allow: Vec<SideEffect>,
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
    run_control_fuzz(lab, &s.peer, &plan, &s.choices, timeout, &s.allow)
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
    run_control_fuzz(lab, &s.peer, &plan, &s.choices, timeout, &s.allow)
}

fn run_control_fuzz(
    lab: &mut Lab,
    peer_name: &str,
    plan: &Plan,
    choices: &[Value],
    timeout: Duration,
    allow: &[SideEffect],
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
    after_fuzz(lab, peer_name, &before, &plan.replay_hint(), allow)
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
