//! Transfer actions and their step types: `waitGame`, `download` and
//! `cancelDownload` (and `DownloadOutcome`, which `streamInstall` shares).

use crate::checker::actions::install::wait_install_outcome;
use crate::checker::actions::observe::{ExpectGamesStep, GameRow};
use crate::checker::actions::{COMMAND_TIMEOUT, observe, peer, poll, refused, timeout_or};
use crate::checker::lab::{Answer, Lab, is_event};
use crate::checker::outcome::{Failure, StepResult};
use crate::checker::params::{Span, yes};
use crate::checker::registry::{StepCtx, StepParams};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// `waitGame{}`: a `list-games` row appears with the given fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WaitGameStep {
    pub peer: String,
    pub game: String,
    pub peer_count: Option<u64>,
    pub version: Option<String>,
    pub timeout: Option<Span>,
}

impl StepParams for WaitGameStep {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DownloadOutcome {
    #[default]
    Finished,
    Failed,
}

impl DownloadOutcome {
    /// The event suffix: `download-finished`, `install-failed`, …
    pub fn name(self) -> &'static str {
        match self {
            DownloadOutcome::Finished => "finished",
            DownloadOutcome::Failed => "failed",
        }
    }

    /// A step that does not wait cannot see a failure (`download`,
    /// `streamInstall`).
    pub fn check_waited(self, wait: bool) -> Result<(), String> {
        if !wait && self == DownloadOutcome::Failed {
            return Err(
                "`wait = false` cannot expect \"failed\": nothing waits for the outcome".into(),
            );
        }
        Ok(())
    }
}

/// `download{}`: run a download and (unless `wait = false`) wait for its outcome.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadStep {
    pub peer: String,
    pub game: String,
    /// Install right after the download (`download-finished` then the
    /// install events); the step then waits for the install outcome too.
    #[serde(default)]
    pub install: bool,
    #[serde(default)]
    pub expect: DownloadOutcome,
    /// `false`: pass once the peer accepted the command, so later steps can
    /// act while the download runs.
    #[serde(default = "yes")]
    pub wait: bool,
    pub timeout: Option<Span>,
}

impl StepParams for DownloadStep {
    fn check(&self) -> Result<(), String> {
        self.expect.check_waited(self.wait)
    }
}

/// `cancelDownload{}`: ask a peer to stop its running download of a game.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelDownloadStep {
    pub peer: String,
    pub game: String,
    /// Send the cancel the moment the peer prints this event for the game
    /// (counted from its last `download`/`streamInstall` step): mid-transfer.
    pub after: Option<String>,
    pub timeout: Option<Span>,
}

impl StepParams for CancelDownloadStep {}

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

pub fn wait_game(lab: &mut Lab, s: &WaitGameStep, _cx: &StepCtx) -> StepResult {
    let timeout = timeout_or(s.timeout, Duration::from_secs(15));
    // A one-row expectGames, reported in waitGame's own words.
    let wanted = ExpectGamesStep {
        peer: s.peer.clone(),
        games: [(
            s.game.clone(),
            GameRow {
                peer_count: s.peer_count,
                version: s.version.clone(),
                downloaded: None,
                installed: None,
                availability: None,
            },
        )]
        .into(),
        absent: Vec::new(),
        only: false,
        timeout: None,
    };
    let mut rows = Value::Null;
    let outcome = poll(timeout, || {
        rows = observe::query(lab, &s.peer, "list-games")?["games"].clone();
        let list = rows.as_array().cloned().unwrap_or_default();
        Ok(observe::games_match(&list, &wanted))
    })?;
    if outcome.is_ok() {
        return Ok(());
    }
    let seen = rows
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["game_id"] == s.game.as_str())
        .map(|r| format!("row {r}"))
        .unwrap_or_else(|| format!("no row for {} among {rows}", s.game));
    Err(Failure::expect(
        format!("{} within {timeout:?}", describe_wanted(s)),
        seen,
        &[&s.peer],
    ))
}

pub fn download(lab: &mut Lab, s: &DownloadStep, _cx: &StepCtx) -> StepResult {
    let timeout = timeout_or(s.timeout, Duration::from_secs(120));
    let peer = super::peer(lab, &s.peer)?;
    let start = peer.log.len();
    let answer = peer
        .request(
            json!({ "cmd": "download", "game_id": s.game, "install": s.install }),
            COMMAND_TIMEOUT,
        )
        .map_err(|e| Failure::harness(e, &[&s.peer]))?;
    lab.downloads
        .insert((s.peer.clone(), s.game.clone()), start);
    let peer = super::peer(lab, &s.peer)?;
    if let Answer::Error { code, message } = answer {
        return match s.expect {
            DownloadOutcome::Failed => Ok(()),
            DownloadOutcome::Finished => Err(refused(
                format!("{} accepts download {}", s.peer, s.game),
                &code,
                &message,
                &[&s.peer],
            )),
        };
    }
    if !s.wait {
        // The outcome is left to later steps; a refusal was handled above.
        return Ok(());
    }
    let game = s.game.clone();
    let is_outcome = move |v: &Value| {
        (is_event(v, "download-finished") || is_event(v, "download-failed"))
            && v["data"]["game_id"] == game.as_str()
    };
    let outcome = peer
        .log
        .wait_for(start, Instant::now() + timeout, &is_outcome)
        .map(|hit| hit.value);
    let Some(outcome) = outcome else {
        let why = if peer.log.is_closed() {
            "the peer exited"
        } else {
            "timed out"
        };
        return Err(Failure::expect(
            format!(
                "download-{} for {} within {timeout:?}",
                s.expect.name(),
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
    if got != s.expect {
        return Err(Failure::expect(
            format!("download-{} for {}", s.expect.name(), s.game),
            format!("download-{}: {}", got.name(), outcome["data"]),
            &[&s.peer],
        ));
    }
    if s.install && got == DownloadOutcome::Finished {
        // install = true: the install outcome follows the download's.
        return wait_install_outcome(peer, start, &s.game, DownloadOutcome::Finished, timeout)
            .map(drop);
    }
    Ok(())
}

pub fn cancel_download(lab: &mut Lab, s: &CancelDownloadStep, _cx: &StepCtx) -> StepResult {
    let timeout = timeout_or(s.timeout, COMMAND_TIMEOUT);
    if let Some(event) = &s.after {
        wait_before_cancel(lab, s, event, timeout)?;
    }
    let answer = peer(lab, &s.peer)?
        .request(
            json!({ "cmd": "cancel-download", "game_id": s.game }),
            timeout,
        )
        .map_err(|e| Failure::harness(e, &[&s.peer]))?;
    match answer {
        Answer::Result(_) => Ok(()),
        Answer::Error { code, message } => Err(refused(
            format!("{} accepts cancel-download {}", s.peer, s.game),
            &code,
            &message,
            &[&s.peer],
        )),
    }
}

/// `cancelDownload{ after = event }`: waits for `event` of the game since its
/// last transfer step; fails when the transfer ends first.
fn wait_before_cancel(
    lab: &mut Lab,
    s: &CancelDownloadStep,
    event: &str,
    timeout: Duration,
) -> StepResult {
    let Some(&start) = lab.downloads.get(&(s.peer.clone(), s.game.clone())) else {
        return Err(Failure::invalid(format!(
            "cancelDownload{{ after = … }} needs an earlier download or streamInstall of {} on {}",
            s.game, s.peer
        )));
    };
    const ENDS: [&str; 5] = [
        "download-finished",
        "download-failed",
        "download-cancelled",
        "install-finished",
        "install-failed",
    ];
    let game = s.game.clone();
    let hit = peer(lab, &s.peer)?
        .log
        .wait_for(start, Instant::now() + timeout, |v| {
            v["type"] == "event"
                && v["data"]["game_id"] == game.as_str()
                && (v["event"] == event || ENDS.iter().any(|e| v["event"] == *e))
        });
    match hit {
        Some(h) if h.value["event"] == event => Ok(()),
        Some(h) => Err(Failure::expect(
            format!(
                "{event} for {} on {} before the transfer ends",
                s.game, s.peer
            ),
            format!(
                "{}: {}",
                h.value["event"].as_str().unwrap_or("?"),
                h.value["data"]
            ),
            &[&s.peer],
        )),
        None => Err(Failure::expect(
            format!("{event} for {} on {} within {timeout:?}", s.game, s.peer),
            "no such event",
            &[&s.peer],
        )),
    }
}
