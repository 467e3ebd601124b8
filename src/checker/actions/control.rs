//! `send`: any control command, raw or structured, and a check of the answer.

use crate::checker::actions::{COMMAND_TIMEOUT, json_contains, peer, timeout_or};
use crate::checker::lab::{Answer, Lab};
use crate::checker::outcome::{Failure, StepResult};
use crate::checker::steps::{AnswerKind, SendLine, SendStep};
use serde_json::json;
use std::time::Instant;

pub fn send(lab: &mut Lab, s: &SendStep) -> StepResult {
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
