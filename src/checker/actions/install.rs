//! Install actions: `install`, `streamInstall`, `uninstall` and `play`.

use crate::checker::actions::transfer::{DownloadOutcome, WhyFailed};
use crate::checker::actions::{COMMAND_TIMEOUT, peer, refused, timeout_or};
use crate::checker::lab::{Answer, Lab, PeerProc, is_event};
use crate::checker::outcome::{Failure, StepResult};
use crate::checker::params::OneOrMany;
use crate::checker::registry::{StepCtx, StepParams};
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

impl StepParams for InstallStep {}

/// `streamInstall{}`: download and extract at once, keeping no archive.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamInstallStep {
    pub peer: String,
    pub game: String,
    /// `"finished"` (default) or `"failed"`; a refused command counts as failed.
    #[serde(default)]
    pub expect: DownloadOutcome,
    /// `false`: pass once the peer accepted the command.
    #[serde(default = "crate::checker::params::yes")]
    pub wait: bool,
    /// With `expect = "failed"`: the command must be refused with this code.
    pub code: Option<String>,
    /// With `expect = "failed"`: the refusal's or `install-failed`'s error
    /// contains this text (or each of these), case-insensitive.
    pub error: Option<OneOrMany<String>>,
    pub timeout: Option<Span>,
}

impl StreamInstallStep {
    pub fn why(&self) -> WhyFailed {
        WhyFailed::new(&self.code, &self.error)
    }
}

impl StepParams for StreamInstallStep {
    fn check(&self) -> Result<(), String> {
        self.expect.check_waited(self.wait)?;
        self.why().check(self.expect)
    }
}

/// `uninstall{}`: remove a game's `local/`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UninstallStep {
    pub peer: String,
    pub game: String,
}

impl StepParams for UninstallStep {}

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

impl StepParams for PlayStep {}

pub fn install(lab: &mut Lab, s: &InstallStep, _cx: &StepCtx) -> StepResult {
    let timeout = timeout_or(s.timeout, Duration::from_secs(60));
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
            DownloadOutcome::Finished => Err(refused(
                format!("{} accepts install {}", s.peer, s.game),
                &code,
                &message,
                &[&s.peer],
            )),
        };
    }
    wait_install_outcome(p, start, &s.game, s.expect, timeout).map(drop)
}

/// Waits for `install-finished`/`install-failed` of `game` from log position
/// `start` on and compares it with `expect`; returns the outcome's data. A
/// failure shows that data and any `download-failed`/`download-cancelled`
/// that led to it.
pub(crate) fn wait_install_outcome(
    p: &mut PeerProc,
    start: usize,
    game: &str,
    expect: DownloadOutcome,
    timeout: Duration,
) -> Result<Value, Failure> {
    let name = p.name.clone();
    let id = game.to_string();
    let is_outcome = move |v: &Value| {
        (is_event(v, "install-finished") || is_event(v, "install-failed"))
            && v["data"]["game_id"] == id.as_str()
    };
    let Some(hit) = p.log.wait_for(start, Instant::now() + timeout, is_outcome) else {
        let why = if p.log.is_closed() {
            "the peer exited"
        } else {
            "timed out"
        };
        return Err(Failure::expect(
            format!("install-{} for {game} within {timeout:?}", expect.name()),
            format!("no install outcome ({why})"),
            &[&name],
        ));
    };
    let got = if hit.value["event"] == "install-finished" {
        DownloadOutcome::Finished
    } else {
        DownloadOutcome::Failed
    };
    if got == expect {
        return Ok(hit.value["data"].clone());
    }
    Err(Failure::expect(
        format!("install-{} for {game}", expect.name()),
        with_cause(
            p,
            start,
            game,
            format!("install-{}: {}", got.name(), hit.value["data"]),
        ),
        &[&name],
    ))
}

/// `seen`, preceded by the `download-failed`/`download-cancelled` of `game`
/// since `start`, if there is one.
fn with_cause(p: &PeerProc, start: usize, game: &str, seen: String) -> String {
    let mut seen = seen;
    for cause in ["download-failed", "download-cancelled"] {
        let ours = |d: &&Value| d["game_id"] == game;
        if let Some(d) = p.log.events(start, cause).iter().find(ours) {
            seen = format!("{cause}: {d}, then {seen}");
        }
    }
    seen
}

pub fn stream_install(lab: &mut Lab, s: &StreamInstallStep, _cx: &StepCtx) -> StepResult {
    let timeout = timeout_or(s.timeout, Duration::from_secs(120));
    // Contradictory parameters were refused at load time (`check`).
    let failed = s.expect == DownloadOutcome::Failed;
    let p = peer(lab, &s.peer)?;
    let start = p.log.len();
    let answer = p
        .request(
            json!({ "cmd": "stream-install", "game_id": s.game }),
            COMMAND_TIMEOUT,
        )
        .map_err(|e| Failure::harness(e, &[&s.peer]))?;
    // Its chunk events are a download's: expectChunks looks from here.
    lab.downloads
        .insert((s.peer.clone(), s.game.clone()), start);
    let p = peer(lab, &s.peer)?;
    let fail = |expected: String, seen: String| Err(Failure::expect(expected, seen, &[&s.peer]));
    let why = s.why();
    let describe = || why.describe(&s.peer, "stream-install", &s.game);
    match (answer, failed) {
        (Answer::Error { code, message }, false) => Err(refused(
            format!("{} accepts stream-install {}", s.peer, s.game),
            &code,
            &message,
            &[&s.peer],
        )),
        (Answer::Error { code, message }, true) => {
            if !why.refusal_matches(&code, &message) {
                return Err(refused(describe(), &code, &message, &[&s.peer]));
            }
            Ok(())
        }
        (Answer::Result(data), _) if !why.allows_acceptance() => {
            fail(describe(), format!("accepted: {data}"))
        }
        (Answer::Result(_), _) if !s.wait => Ok(()),
        (Answer::Result(_), _) => {
            let data = wait_install_outcome(p, start, &s.game, s.expect, timeout)?;
            let text = data["error"].as_str().unwrap_or_default();
            if failed && !why.text_matches(text) {
                return fail(
                    describe(),
                    with_cause(p, start, &s.game, format!("install-failed: {data}")),
                );
            }
            Ok(())
        }
    }
}

pub fn uninstall(lab: &mut Lab, s: &UninstallStep, _cx: &StepCtx) -> StepResult {
    let p = peer(lab, &s.peer)?;
    let answer = p
        .request(
            json!({ "cmd": "uninstall", "game_id": s.game }),
            COMMAND_TIMEOUT,
        )
        .map_err(|e| Failure::harness(e, &[&s.peer]))?;
    match answer {
        Answer::Result(_) => Ok(()),
        Answer::Error { code, message } => Err(refused(
            format!("{} uninstalls {}", s.peer, s.game),
            &code,
            &message,
            &[&s.peer],
        )),
    }
}

pub fn play(lab: &mut Lab, s: &PlayStep, _cx: &StepCtx) -> StepResult {
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
            return Err(refused(
                format!("{} plays {}", s.peer, s.game),
                &code,
                &message,
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
