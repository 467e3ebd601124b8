//! Machine-readable results of a run: `summary.json` in the run folder and
//! an optional JUnit XML report for CI systems.

use crate::checker::outcome::{Failure, exit};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    Passed,
    Failed,
    NotRun,
}

// Deserialized too: a folder run reads each child's `summary.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureRecord {
    /// `expectation`, `invalid` or `harness`.
    pub kind: String,
    pub location: String,
    pub action: String,
    /// The failed step's `label`, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub expected: Option<String>,
    pub seen: Option<String>,
    pub message: Option<String>,
}

/// How reports name a step: its action, and its label when it has one
/// (`download "cut"`), so steps built in a Lua loop are told apart.
pub fn step_title(action: &str, label: Option<&str>) -> String {
    match label {
        Some(l) => format!("{action} {l:?}"),
        None => action.to_string(),
    }
}

impl FailureRecord {
    pub fn new(file: &str, line: u32, action: &str, label: Option<&str>, f: &Failure) -> Self {
        let (kind, expected, seen, message) = match f {
            Failure::Expectation { expected, seen, .. } => (
                "expectation",
                Some(expected.clone()),
                Some(seen.clone()),
                None,
            ),
            Failure::Invalid { message } => ("invalid", None, None, Some(message.clone())),
            Failure::Harness { message, .. } => ("harness", None, None, Some(message.clone())),
        };
        Self {
            kind: kind.to_string(),
            location: format!("{file}:{line}"),
            action: action.to_string(),
            label: label.map(String::from),
            expected,
            seen,
            message,
        }
    }

    /// The failed step's action and label (`download "cut"`).
    pub fn title(&self) -> String {
        step_title(&self.action, self.label.as_deref())
    }

    /// The failure in one or two lines (`expected: … / seen: …`).
    pub fn text(&self) -> String {
        match (&self.expected, &self.seen, &self.message) {
            (Some(e), Some(s), _) => format!("expected: {e}\nseen: {s}"),
            (_, _, Some(m)) => m.clone(),
            _ => String::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepRecord {
    pub n: usize,
    pub action: String,
    /// The step's `label`, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub line: u32,
    pub status: StepStatus,
    pub duration_ms: u64,
    pub failure: Option<FailureRecord>,
}

impl StepRecord {
    pub fn new(
        n: usize,
        action: &'static str,
        label: Option<&str>,
        line: u32,
        status: StepStatus,
        took: Duration,
        f: Option<&Failure>,
    ) -> Self {
        Self {
            n,
            action: action.to_string(),
            label: label.map(String::from),
            line,
            status,
            duration_ms: took.as_millis() as u64,
            failure: f.map(|f| FailureRecord::new("", line, action, label, f)),
        }
    }

    /// The step's action and label (`download "cut"`).
    pub fn title(&self) -> String {
        step_title(&self.action, self.label.as_deref())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRecord {
    pub scenario: String,
    pub file: String,
    pub seed: u64,
    pub exit_code: i32,
    pub duration_ms: u64,
    pub run_dir: String,
    pub steps: Vec<StepRecord>,
    pub failure: Option<FailureRecord>,
    /// With `network = "lan"`: who had which address, and every change to
    /// the LAN with when it took effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkRecord>,
}

/// The LAN of a `network = "lan"` run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkRecord {
    /// Peer → address, in the order the hosts were added.
    pub topology: Vec<HostRecord>,
    /// Hosts added, impairments, clears, partitions and heals, in order.
    pub changes: Vec<ChangeRecord>,
}

/// One change to the LAN and when it took effect, since the LAN was made.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeRecord {
    pub at_ms: u64,
    pub what: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostRecord {
    pub peer: String,
    pub address: std::net::Ipv4Addr,
}

impl NetworkRecord {
    pub fn of(lan: &crate::checker::lab::network::Lan) -> Self {
        Self {
            topology: lan
                .topology()
                .into_iter()
                .map(|(peer, address)| HostRecord { peer, address })
                .collect(),
            changes: lan
                .changes()
                .iter()
                .map(|c| ChangeRecord {
                    at_ms: c.at.as_millis() as u64,
                    what: c.what.clone(),
                })
                .collect(),
        }
    }
}

impl RunRecord {
    /// The record of a file that did not load.
    pub fn invalid(file: &str, seed: u64, message: &str) -> Self {
        Self {
            scenario: Path::new(file)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            file: file.to_string(),
            seed,
            exit_code: exit::INVALID,
            duration_ms: 0,
            run_dir: String::new(),
            steps: Vec::new(),
            network: None,
            failure: Some(FailureRecord {
                kind: "invalid".into(),
                location: file.to_string(),
                action: "scenario".into(),
                label: None,
                expected: None,
                seen: None,
                message: Some(message.to_string()),
            }),
        }
    }

    pub fn write_summary(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }

    /// The JUnit document of this one run.
    pub fn junit(&self) -> String {
        junit_document(std::slice::from_ref(self))
    }

    /// One `<testsuite>` for the scenario, one `<testcase>` per step.
    fn junit_suite(&self) -> String {
        let failures = self
            .steps
            .iter()
            .filter(|s| s.status == StepStatus::Failed)
            .count()
            + usize::from(self.steps.is_empty() && self.failure.is_some());
        let skipped = self
            .steps
            .iter()
            .filter(|s| s.status == StepStatus::NotRun)
            .count();
        let mut x = String::new();
        let _ = writeln!(
            x,
            "<testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{:.3}\">",
            esc(&self.scenario),
            self.steps.len().max(1),
            self.duration_ms as f64 / 1000.0
        );
        let _ = writeln!(
            x,
            "  <properties><property name=\"seed\" value=\"{}\"/></properties>",
            self.seed
        );
        if self.steps.is_empty()
            && let Some(f) = &self.failure
        {
            let _ = writeln!(
                x,
                "  <testcase classname=\"{}\" name=\"load\"><failure type=\"invalid\" message=\"{}\"/></testcase>",
                esc(&self.scenario),
                esc(&f.text())
            );
        }
        for s in &self.steps {
            let _ = write!(
                x,
                "  <testcase classname=\"{}\" name=\"{} {} ({}:{})\" time=\"{:.3}\"",
                esc(&self.scenario),
                s.n,
                esc(&s.title()),
                esc(&self.file),
                s.line,
                s.duration_ms as f64 / 1000.0
            );
            match (&s.status, &s.failure) {
                (StepStatus::Passed, _) => x.push_str("/>\n"),
                (StepStatus::NotRun, _) => x.push_str("><skipped/></testcase>\n"),
                (StepStatus::Failed, f) => {
                    let (kind, text) = f
                        .as_ref()
                        .map(|f| (f.kind.as_str(), f.text()))
                        .unwrap_or(("failure", String::new()));
                    let _ = writeln!(
                        x,
                        "><failure type=\"{kind}\" message=\"{}\">{}</failure></testcase>",
                        esc(&text),
                        esc(&text)
                    );
                }
            }
        }
        x.push_str("</testsuite>\n");
        x
    }

    pub fn write_junit(&self, path: &Path) -> Result<()> {
        write_junit(std::slice::from_ref(self), path)
    }

    /// The failure's line in its scenario file, when it names one.
    pub fn failure_line(&self) -> Option<u32> {
        let f = self.failure.as_ref()?;
        f.location.rsplit_once(':')?.1.parse().ok()
    }
}

/// One JUnit document: a `<testsuite>` per run (a folder run has many).
pub fn junit_document(runs: &[RunRecord]) -> String {
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    for r in runs {
        x.push_str(&r.junit_suite());
    }
    x.push_str("</testsuites>\n");
    x
}

pub fn write_junit(runs: &[RunRecord], path: &Path) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, junit_document(runs))
        .with_context(|| format!("writing {}", path.display()))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\n', "&#10;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_marks_failed_and_not_run_steps() {
        let f = Failure::expect("a <row>", "none", &[]);
        let rec = RunRecord {
            scenario: "s".into(),
            file: "s.lua".into(),
            seed: 7,
            exit_code: 1,
            duration_ms: 1500,
            run_dir: "/tmp/x".into(),
            steps: vec![
                StepRecord::new(
                    1,
                    "peer",
                    None,
                    3,
                    StepStatus::Passed,
                    Duration::from_millis(5),
                    None,
                ),
                StepRecord::new(
                    2,
                    "waitGame",
                    Some("row <2>"),
                    4,
                    StepStatus::Failed,
                    Duration::from_secs(1),
                    Some(&f),
                ),
                StepRecord::new(
                    3,
                    "download",
                    None,
                    5,
                    StepStatus::NotRun,
                    Duration::ZERO,
                    None,
                ),
            ],
            failure: None,
            network: None,
        };
        let x = rec.junit();
        assert!(
            x.contains("tests=\"3\" failures=\"1\" skipped=\"1\""),
            "{x}"
        );
        assert!(x.contains("expected: a &lt;row&gt;"), "{x}");
        assert!(x.contains("<property name=\"seed\" value=\"7\"/>"), "{x}");
        // A label names its step, escaped; a step without one is its action.
        assert!(
            x.contains("name=\"2 waitGame &quot;row &lt;2&gt;&quot; (s.lua:4)\""),
            "{x}"
        );
        assert!(x.contains("name=\"1 peer (s.lua:3)\""), "{x}");
        let json = serde_json::to_value(&rec).unwrap_or_default();
        assert_eq!(json["steps"][2]["status"], "not-run");
        assert_eq!(json["steps"][0].get("label"), None);
        // A folder run reads the summary back; it must survive the trip.
        let back: RunRecord = serde_json::from_value(json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.steps[1].action, "waitGame");
        assert_eq!(back.steps[1].label.as_deref(), Some("row <2>"));
        assert_eq!(
            back.steps[1].failure.as_ref().map(|f| f.title()),
            Some("waitGame \"row <2>\"".into())
        );
        assert_eq!(
            back.steps[1].failure.as_ref().map(|f| f.kind.as_str()),
            Some("expectation")
        );
    }

    #[test]
    fn a_document_holds_one_testsuite_per_run() {
        let a = RunRecord::invalid("a.lua", 1, "bad");
        let mut b = RunRecord::invalid("b.lua", 2, "worse");
        b.failure = None;
        let x = junit_document(&[a, b]);
        assert_eq!(x.matches("<testsuite ").count(), 2, "{x}");
        assert_eq!(x.matches("<testsuites>").count(), 1, "{x}");
        assert!(x.trim_end().ends_with("</testsuites>"), "{x}");
    }

    #[test]
    fn failure_line_comes_from_the_location() {
        let r = RunRecord::invalid("dir/a.lua", 1, "bad");
        assert_eq!(r.failure_line(), None);
        let mut r = r;
        if let Some(f) = r.failure.as_mut() {
            f.location = "dir/a.lua:17".into();
        }
        assert_eq!(r.failure_line(), Some(17));
    }
}
