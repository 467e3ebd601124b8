//! Transfer actions and their step types: `waitGame`, `download` and
//! `cancelDownload` (and `DownloadOutcome`, which `streamInstall` shares).

use crate::checker::actions::install::wait_install_outcome;
use crate::checker::actions::observe::{ExpectGamesStep, GameRow};
use crate::checker::actions::{COMMAND_TIMEOUT, observe, peer, poll, refused, timeout_or};
use crate::checker::lab::{Answer, EventFilter, Lab, is_event};
use crate::checker::outcome::{Failure, StepResult};
use crate::checker::params::{Count, OneOrMany, Span, yes};
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

/// Why a failed `download`/`streamInstall` must have failed: its `code`
/// (the peer refuses the command with it) and `error` (text the refusal's
/// or the failure event's error contains, case-insensitive).
#[derive(Debug, Clone, PartialEq)]
pub struct WhyFailed {
    pub code: Option<String>,
    pub parts: Vec<String>,
}

impl WhyFailed {
    pub fn new(code: &Option<String>, error: &Option<OneOrMany<String>>) -> Self {
        WhyFailed {
            code: code.clone(),
            parts: error.as_ref().map(|e| e.to_vec()).unwrap_or_default(),
        }
    }

    fn is_given(&self) -> bool {
        self.code.is_some() || !self.parts.is_empty()
    }

    /// The load-time rule: `code` and `error` describe a failure.
    pub fn check(&self, expect: DownloadOutcome) -> Result<(), String> {
        if self.is_given() && expect != DownloadOutcome::Failed {
            return Err("`code` and `error` describe a failure; add expect = \"failed\"".into());
        }
        Ok(())
    }

    /// Whether an error text holds every wanted part.
    pub fn text_matches(&self, text: &str) -> bool {
        let text = text.to_lowercase();
        self.parts.iter().all(|p| text.contains(&p.to_lowercase()))
    }

    /// Whether a refusal with `code` and `message` is the wanted one.
    pub fn refusal_matches(&self, code: &str, message: &str) -> bool {
        self.code.as_ref().is_none_or(|c| c == code) && self.text_matches(message)
    }

    /// Whether an accepted command can still turn out as wanted: not with
    /// a `code`, which only a refusal has.
    pub fn allows_acceptance(&self) -> bool {
        self.code.is_none()
    }

    /// `client refuses download g with no-source, the error containing ["x"]`.
    pub fn describe(&self, peer: &str, cmd: &str, game: &str) -> String {
        let mut d = match &self.code {
            Some(c) => format!("{peer} refuses {cmd} {game} with {c}"),
            None => format!("{peer} refuses or fails {cmd} {game}"),
        };
        if !self.parts.is_empty() {
            d.push_str(&format!(", the error containing {:?}", self.parts));
        }
        d
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
    /// With `expect = "failed"`: the command must be refused with this code.
    pub code: Option<String>,
    /// With `expect = "failed"`: the refusal's or `download-failed`'s error
    /// contains this text (or each of these), case-insensitive.
    pub error: Option<OneOrMany<String>>,
    pub timeout: Option<Span>,
}

impl DownloadStep {
    pub fn why(&self) -> WhyFailed {
        WhyFailed::new(&self.code, &self.error)
    }
}

impl StepParams for DownloadStep {
    fn check(&self) -> Result<(), String> {
        self.expect.check_waited(self.wait)?;
        self.why().check(self.expect)
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
    pub after: Option<After>,
    pub timeout: Option<Span>,
}

impl StepParams for CancelDownloadStep {}

/// `after = "event"` or `after = { event, match?, count? }`: the event of
/// the game (since its last transfer step) that sends the cancel.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum After {
    Event(String),
    On(AfterOn),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AfterOn {
    pub event: String,
    /// Only events whose data contains this table.
    #[serde(rename = "match")]
    pub pattern: Option<Value>,
    /// Cancel on the `count`th matching event (default 1).
    pub count: Option<Count>,
}

impl After {
    /// The filter for `game`'s events.
    pub fn filter(&self, game: &str) -> EventFilter {
        let (event, pattern, count) = match self {
            After::Event(e) => (e.clone(), None, 1),
            After::On(o) => (
                o.event.clone(),
                o.pattern.clone(),
                o.count.map_or(1, |c| c.0),
            ),
        };
        EventFilter {
            event,
            game: Some(game.to_string()),
            pattern,
            count,
        }
    }
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
    let why = s.why();
    if let Answer::Error { code, message } = answer {
        return match s.expect {
            DownloadOutcome::Failed if why.refusal_matches(&code, &message) => Ok(()),
            DownloadOutcome::Failed => Err(refused(
                why.describe(&s.peer, "download", &s.game),
                &code,
                &message,
                &[&s.peer],
            )),
            DownloadOutcome::Finished => Err(refused(
                format!("{} accepts download {}", s.peer, s.game),
                &code,
                &message,
                &[&s.peer],
            )),
        };
    }
    if !why.allows_acceptance() {
        return Err(Failure::expect(
            why.describe(&s.peer, "download", &s.game),
            "accepted",
            &[&s.peer],
        ));
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
    if got == DownloadOutcome::Failed
        && !why.text_matches(outcome["data"]["error"].as_str().unwrap_or_default())
    {
        return Err(Failure::expect(
            why.describe(&s.peer, "download", &s.game),
            format!("download-failed: {}", outcome["data"]),
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
    if let Some(after) = &s.after {
        wait_before_cancel(lab, s, &after.filter(&s.game), timeout)?;
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

/// `cancelDownload{ after = … }`: waits for the `count`th matching event
/// of the game since its last transfer step; fails when the transfer ends
/// first.
fn wait_before_cancel(
    lab: &mut Lab,
    s: &CancelDownloadStep,
    filter: &EventFilter,
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
    let log = peer(lab, &s.peer)?.log.clone();
    let hit = log.wait_nth(start, Instant::now() + timeout, filter, |v| {
        v["data"]["game_id"] == game.as_str() && ENDS.iter().any(|e| is_event(v, e))
    });
    let wanted = format!("{} on {}", filter.describe(), s.peer);
    match hit {
        Some(h) if filter.matches(&h.value) => Ok(()),
        Some(h) => {
            let so_far = log
                .since(start)
                .iter()
                .take_while(|l| l.seq < h.seq)
                .filter(|l| filter.matches(&l.value))
                .count();
            Err(Failure::expect(
                format!("{wanted} before the transfer ends"),
                format!(
                    "{}: {} after {so_far} such event(s)",
                    h.value["event"].as_str().unwrap_or("?"),
                    h.value["data"]
                ),
                &[&s.peer],
            ))
        }
        None => Err(Failure::expect(
            format!("{wanted} within {timeout:?}"),
            format!(
                "{} such event(s)",
                log.since(start)
                    .iter()
                    .filter(|l| filter.matches(&l.value))
                    .count()
            ),
            &[&s.peer],
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn why(code: Option<&str>, parts: &[&str]) -> WhyFailed {
        WhyFailed {
            code: code.map(String::from),
            parts: parts.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn why_failed_matches_code_and_every_text_part() {
        let w = why(Some("no-source"), &["Nobody", "coh"]);
        assert!(w.refusal_matches("no-source", "nobody offers COH"));
        assert!(!w.refusal_matches("unknown-game", "nobody offers coh"));
        assert!(!w.refusal_matches("no-source", "nobody offers cnc4"));
        assert!(!w.allows_acceptance());
        let text_only = why(None, &["size conflict"]);
        assert!(text_only.allows_acceptance());
        assert!(text_only.text_matches("file SIZE CONFLICT on cnc4.eti"));
        assert!(!text_only.text_matches("every source failed"));
        // Nothing asked: anything matches.
        assert!(why(None, &[]).refusal_matches("any", "thing"));
    }

    #[test]
    fn why_failed_needs_expect_failed_and_describes_itself() {
        let w = why(Some("no-source"), &["x"]);
        assert!(w.check(DownloadOutcome::Finished).is_err());
        assert!(w.check(DownloadOutcome::Failed).is_ok());
        assert!(why(None, &[]).check(DownloadOutcome::Finished).is_ok());
        assert_eq!(
            w.describe("client", "download", "coh"),
            "client refuses download coh with no-source, the error containing [\"x\"]"
        );
        assert_eq!(
            why(None, &["conflict"]).describe("client", "download", "cnc4"),
            "client refuses or fails download cnc4, the error containing [\"conflict\"]"
        );
    }

    #[test]
    fn after_reads_an_event_name_or_a_counted_match() -> anyhow::Result<()> {
        let plain: After = serde_json::from_value(serde_json::json!("download-begin"))?;
        assert_eq!(
            plain.filter("g"),
            EventFilter {
                event: "download-begin".into(),
                game: Some("g".into()),
                pattern: None,
                count: 1
            }
        );
        let counted: After = serde_json::from_value(serde_json::json!({
            "event": "download-chunk-finished", "count": 40, "match": { "path": "g.eti" }
        }))?;
        let f = counted.filter("g");
        assert_eq!(
            (f.count, f.pattern),
            (40, Some(serde_json::json!({ "path": "g.eti" })))
        );
        assert!(
            serde_json::from_value::<After>(serde_json::json!({ "event": "e", "count": 0 }))
                .is_err()
        );
        assert!(
            serde_json::from_value::<After>(serde_json::json!({ "event": "e", "cuont": 2 }))
                .is_err()
        );
        Ok(())
    }
}
