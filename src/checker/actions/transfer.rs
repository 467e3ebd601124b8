//! Transfer actions: `waitGame` and `download`.

use crate::checker::actions::COMMAND_TIMEOUT;
use crate::checker::lab::{Answer, Lab, is_event};
use crate::checker::outcome::{Failure, StepResult};
use crate::checker::steps::{DownloadOutcome, DownloadStep, WaitGameStep};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// How often a long wait prints that it is still waiting.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

fn row_matches(row: &Value, s: &WaitGameStep) -> bool {
    row["game_id"] == s.game.as_str()
        && s.peer_count.is_none_or(|n| row["peer_count"] == n)
        && s.version
            .as_ref()
            .is_none_or(|v| row["eti_game_version"] == v.as_str())
}

fn describe_wanted(s: &WaitGameStep) -> String {
    let mut parts = vec![format!("a list-games row for {} on {}", s.game, s.peer)];
    if let Some(n) = s.peer_count {
        parts.push(format!("peer_count={n}"));
    }
    if let Some(v) = &s.version {
        parts.push(format!("eti_game_version={v}"));
    }
    parts.join(" with ")
}

pub fn wait_game(lab: &mut Lab, s: &WaitGameStep) -> StepResult {
    let timeout = s.timeout.map(|t| t.0).unwrap_or(Duration::from_secs(15));
    let deadline = Instant::now() + timeout;
    let peer = lab
        .peer(&s.peer)
        .map_err(|e| Failure::invalid(format!("{e:#}")))?;
    let last_rows = loop {
        let games = peer
            .call(json!({ "cmd": "list-games" }), COMMAND_TIMEOUT)
            .map_err(|e| Failure::harness(e, &[&s.peer]))?;
        let rows = games["games"].clone();
        if rows
            .as_array()
            .is_some_and(|r| r.iter().any(|row| row_matches(row, s)))
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            break rows;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let seen = last_rows
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["game_id"] == s.game.as_str())
        .map(|r| format!("row {r}"))
        .unwrap_or_else(|| format!("no row for {} among {last_rows}", s.game));
    Err(Failure::expect(
        format!("{} within {timeout:?}", describe_wanted(s)),
        seen,
        &[&s.peer],
    ))
}

pub fn download(lab: &mut Lab, s: &DownloadStep) -> StepResult {
    let timeout = s.timeout.map(|t| t.0).unwrap_or(Duration::from_secs(120));
    let peer = lab
        .peer(&s.peer)
        .map_err(|e| Failure::invalid(format!("{e:#}")))?;
    let start = peer.log.len();
    let answer = peer
        .request(
            json!({ "cmd": "download", "game_id": s.game, "install": false }),
            COMMAND_TIMEOUT,
        )
        .map_err(|e| Failure::harness(e, &[&s.peer]))?;
    lab.downloads
        .insert((s.peer.clone(), s.game.clone()), start);
    let peer = lab
        .peer(&s.peer)
        .map_err(|e| Failure::invalid(format!("{e:#}")))?;
    if let Answer::Error { code, message } = answer {
        return match s.expect {
            DownloadOutcome::Failed => Ok(()),
            DownloadOutcome::Finished => Err(Failure::expect(
                format!("{} accepts download {}", s.peer, s.game),
                format!("error {code}: {message}"),
                &[&s.peer],
            )),
        };
    }
    let game = s.game.clone();
    let is_outcome = move |v: &Value| {
        (is_event(v, "download-finished") || is_event(v, "download-failed"))
            && v["data"]["game_id"] == game.as_str()
    };
    let began = Instant::now();
    let deadline = began + timeout;
    let outcome = loop {
        let slice = (Instant::now() + PROGRESS_EVERY).min(deadline);
        if let Some(hit) = peer.log.wait_for(start, slice, &is_outcome) {
            break Some(hit.value);
        }
        if Instant::now() >= deadline || peer.log.is_closed() {
            break None;
        }
        let chunks = peer.log.events(start, "download-chunk-finished").len();
        println!(
            "      … {} still downloading {} ({:.0}s, {chunks} chunks so far)",
            s.peer,
            s.game,
            began.elapsed().as_secs_f64()
        );
    };
    let Some(outcome) = outcome else {
        let why = if peer.log.is_closed() {
            "the peer exited"
        } else {
            "timed out"
        };
        return Err(Failure::expect(
            format!(
                "download-{} for {} within {timeout:?}",
                outcome_name(s.expect),
                s.game
            ),
            format!("no download outcome ({why})"),
            &[&s.peer],
        ));
    };
    let got = if outcome["event"] == "download-finished" {
        DownloadOutcome::Finished
    } else {
        DownloadOutcome::Failed
    };
    if got == s.expect {
        return Ok(());
    }
    Err(Failure::expect(
        format!("download-{} for {}", outcome_name(s.expect), s.game),
        format!("download-{}: {}", outcome_name(got), outcome["data"]),
        &[&s.peer],
    ))
}

fn outcome_name(o: DownloadOutcome) -> &'static str {
    match o {
        DownloadOutcome::Finished => "finished",
        DownloadOutcome::Failed => "failed",
    }
}
