//! Install actions: `install`, `uninstall` and `play`.

use crate::checker::actions::{COMMAND_TIMEOUT, peer};
use crate::checker::lab::{Answer, Lab, is_event};
use crate::checker::outcome::{Failure, StepResult};
use crate::checker::steps::DownloadOutcome;
use crate::units::Span;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// `install{}`: install a downloaded game and wait for its outcome.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallStep {
    pub peer: String,
    pub game: String,
    /// `"finished"` (default) or `"failed"`; a refused command counts as failed.
    #[serde(default)]
    pub expect: DownloadOutcome,
    pub timeout: Option<Span>,
}

/// `uninstall{}`: remove a game's `local/`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UninstallStep {
    pub peer: String,
    pub game: String,
}

/// The `outcome` flags of a `play` answer; the ones given must match.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlayExpect {
    pub already_applied: Option<bool>,
    pub account_name_written: Option<bool>,
    pub language_written: Option<bool>,
    pub persona_name_written: Option<bool>,
}

/// `play{}`: launch an installed game with a username and language.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlayStep {
    pub peer: String,
    pub game: String,
    pub username: String,
    pub language: String,
    #[serde(default)]
    pub expect: PlayExpect,
}

fn outcome_name(o: DownloadOutcome) -> &'static str {
    match o {
        DownloadOutcome::Finished => "finished",
        DownloadOutcome::Failed => "failed",
    }
}

pub fn install(lab: &mut Lab, s: &InstallStep) -> StepResult {
    let timeout = s.timeout.map(|t| t.0).unwrap_or(Duration::from_secs(60));
    let p = peer(lab, &s.peer)?;
    let start = p.log.len();
    let answer = p
        .request(
            json!({ "cmd": "install", "game_id": s.game }),
            COMMAND_TIMEOUT,
        )
        .map_err(|e| Failure::harness(e, &[&s.peer]))?;
    if let Answer::Error { code, message } = answer {
        return match s.expect {
            DownloadOutcome::Failed => Ok(()),
            DownloadOutcome::Finished => Err(Failure::expect(
                format!("{} accepts install {}", s.peer, s.game),
                format!("error {code}: {message}"),
                &[&s.peer],
            )),
        };
    }
    let game = s.game.clone();
    let is_outcome = move |v: &Value| {
        (is_event(v, "install-finished") || is_event(v, "install-failed"))
            && v["data"]["game_id"] == game.as_str()
    };
    let Some(hit) = p.log.wait_for(start, Instant::now() + timeout, is_outcome) else {
        let why = if p.log.is_closed() {
            "the peer exited"
        } else {
            "timed out"
        };
        return Err(Failure::expect(
            format!(
                "install-{} for {} within {timeout:?}",
                outcome_name(s.expect),
                s.game
            ),
            format!("no install outcome ({why})"),
            &[&s.peer],
        ));
    };
    let got = if hit.value["event"] == "install-finished" {
        DownloadOutcome::Finished
    } else {
        DownloadOutcome::Failed
    };
    if got == s.expect {
        return Ok(());
    }
    Err(Failure::expect(
        format!("install-{} for {}", outcome_name(s.expect), s.game),
        format!("install-{}: {}", outcome_name(got), hit.value["data"]),
        &[&s.peer],
    ))
}

pub fn uninstall(lab: &mut Lab, s: &UninstallStep) -> StepResult {
    let p = peer(lab, &s.peer)?;
    let answer = p
        .request(
            json!({ "cmd": "uninstall", "game_id": s.game }),
            COMMAND_TIMEOUT,
        )
        .map_err(|e| Failure::harness(e, &[&s.peer]))?;
    match answer {
        Answer::Result(_) => Ok(()),
        Answer::Error { code, message } => Err(Failure::expect(
            format!("{} uninstalls {}", s.peer, s.game),
            format!("error {code}: {message}"),
            &[&s.peer],
        )),
    }
}

pub fn play(lab: &mut Lab, s: &PlayStep) -> StepResult {
    let p = peer(lab, &s.peer)?;
    let answer = p
        .request(
            json!({ "cmd": "play", "game_id": s.game, "username": s.username, "language": s.language }),
            COMMAND_TIMEOUT,
        )
        .map_err(|e| Failure::harness(e, &[&s.peer]))?;
    let data = match answer {
        Answer::Result(data) => data,
        Answer::Error { code, message } => {
            return Err(Failure::expect(
                format!("{} plays {}", s.peer, s.game),
                format!("error {code}: {message}"),
                &[&s.peer],
            ));
        }
    };
    let e = &s.expect;
    let wanted = [
        ("already_applied", e.already_applied),
        ("account_name_written", e.account_name_written),
        ("language_written", e.language_written),
        ("persona_name_written", e.persona_name_written),
    ];
    let outcome = &data["outcome"];
    let wrong: Vec<String> = wanted
        .iter()
        .filter_map(|(k, want)| {
            let want = (*want)?;
            (outcome[*k] != want).then(|| format!("{k}={want}"))
        })
        .collect();
    if wrong.is_empty() {
        return Ok(());
    }
    Err(Failure::expect(
        format!("play {} outcome with {}", s.game, wrong.join(", ")),
        outcome.to_string(),
        &[&s.peer],
    ))
}
