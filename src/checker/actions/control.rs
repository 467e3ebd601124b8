//! `send`: any control command, raw or structured, and a check of the
//! answer; its step type is checked to hold exactly one of `cmd` and `raw`.

use crate::checker::actions::{COMMAND_TIMEOUT, json_contains, peer, timeout_or};
use crate::checker::lab::{Answer, Lab};
use crate::checker::outcome::{Failure, StepResult};
use crate::checker::params::{AnswerKind, Span};
use crate::checker::registry::{StepCtx, StepParams};
use serde::Deserialize;
use serde_json::json;
use std::time::Instant;

/// What `send{}` sends: exactly one of its `cmd` and `raw`.
#[derive(Debug, Clone, PartialEq)]
pub enum SendLine {
    /// The command as a table with a string `cmd`, e.g. `{ cmd = "status" }`;
    /// an `id` is added.
    Cmd(serde_json::Value),
    /// A raw line sent as it is (for malformed input); answered without id.
    Raw(String),
}

/// `send{}`: one raw control command and a check of its answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawSendStep")]
pub struct SendStep {
    pub peer: String,
    pub line: SendLine,
    pub expect: AnswerKind,
    /// Fields the answer must contain (`data` of a result; `code`/`error` of an error).
    pub pattern: Option<serde_json::Value>,
    pub timeout: Option<Span>,
}

impl StepParams for SendStep {}

/// `send{}` as written; turned into a `SendStep` (or refused) when the file
/// loads, so a run never meets both or neither of `cmd` and `raw`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSendStep {
    peer: String,
    cmd: Option<serde_json::Value>,
    raw: Option<String>,
    #[serde(default)]
    expect: AnswerKind,
    #[serde(rename = "match")]
    pattern: Option<serde_json::Value>,
    timeout: Option<Span>,
}

impl TryFrom<RawSendStep> for SendStep {
    type Error = String;
    fn try_from(r: RawSendStep) -> Result<Self, String> {
        let line = match (r.cmd, r.raw) {
            (Some(cmd), None) => {
                if cmd.get("cmd").is_none_or(|c| !c.is_string()) {
                    return Err("`cmd` must be a table with a string `cmd` field".into());
                }
                SendLine::Cmd(cmd)
            }
            (None, Some(raw)) => SendLine::Raw(raw),
            _ => return Err("give exactly one of `cmd` or `raw`".into()),
        };
        Ok(Self {
            peer: r.peer,
            line,
            expect: r.expect,
            pattern: r.pattern,
            timeout: r.timeout,
        })
    }
}

pub fn send(lab: &mut Lab, s: &SendStep, _cx: &StepCtx) -> StepResult {
    let timeout = timeout_or(s.timeout, COMMAND_TIMEOUT);
    let p = peer(lab, &s.peer)?;
    let (shown, answer) = match &s.line {
        SendLine::Cmd(cmd) => {
            let answer = p
                .request(cmd.clone(), timeout)
                .map_err(|e| Failure::harness(e, &[&s.peer]))?;
            let answer = match answer {
                Answer::Result(data) => (AnswerKind::Result, data),
                Answer::Error { code, message } => {
                    (AnswerKind::Error, json!({ "code": code, "error": message }))
                }
            };
            (cmd.to_string(), answer)
        }
        SendLine::Raw(raw) => {
            let start = p.log.len();
            p.send_line(raw)
                .map_err(|e| Failure::harness(e, &[&s.peer]))?;
            let hit = p.log.wait_for(start, Instant::now() + timeout, |v| {
                v["type"] == "result" || v["type"] == "error"
            });
            let Some(hit) = hit else {
                return Err(Failure::expect(
                    format!("an answer to {raw:?}"),
                    "no result or error line",
                    &[&s.peer],
                ));
            };
            let answer = if hit.value["type"] == "result" {
                (AnswerKind::Result, hit.value["data"].clone())
            } else {
                let mut e = hit.value.clone();
                if let Some(o) = e.as_object_mut() {
                    o.remove("type");
                }
                (AnswerKind::Error, e)
            };
            (format!("{raw:?}"), answer)
        }
    };
    let (kind, body) = answer;
    let label = |k: AnswerKind| match k {
        AnswerKind::Result => "result",
        AnswerKind::Error => "error",
    };
    if kind != s.expect {
        return Err(Failure::expect(
            format!("an {} for {shown}", label(s.expect)),
            format!("{}: {body}", label(kind)),
            &[&s.peer],
        ));
    }
    if let Some(pattern) = &s.pattern
        && !json_contains(&body, pattern)
    {
        return Err(Failure::expect(
            format!("{} for {shown} containing {pattern}", label(s.expect)),
            body.to_string(),
            &[&s.peer],
        ));
    }
    Ok(())
}
