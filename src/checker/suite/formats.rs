//! The folder run's machine formats: GitHub Actions workflow commands
//! (`--format github`) and JSON lines (`--format jsonl`). Pure text from
//! the children's records, so the escaping rules have tests.

use crate::checker::results::{RunRecord, StepStatus};
use serde_json::json;

/// `::error file=…,line=…,title=…::message` for a failed run (none for a pass).
pub fn github_error(r: &RunRecord) -> Option<String> {
    let f = r.failure.as_ref()?;
    let mut props = format!("file={}", property(&r.file));
    if let Some(line) = r.failure_line() {
        props.push_str(&format!(",line={line}"));
    }
    props.push_str(&format!(
        ",title={}",
        property(&format!("{} failed", r.scenario))
    ));
    Some(format!(
        "::error {props}::{}",
        data(&format!("{}: {}", f.title(), f.text()))
    ))
}

/// A workflow command's message: `%`, CR and LF escaped.
fn data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value: also `:` and `,`.
fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

/// One event per step, then one for the scenario round.
pub fn jsonl_events(r: &RunRecord, round: u32) -> Vec<String> {
    let mut lines: Vec<String> = r
        .steps
        .iter()
        .map(|s| {
            json!({
                "event": "step",
                "file": r.file,
                "scenario": r.scenario,
                "round": round,
                "n": s.n,
                "action": s.action,
                "label": s.label,
                "line": s.line,
                "status": s.status,
                "duration_ms": s.duration_ms,
                "failure": s.failure.as_ref().filter(|_| s.status == StepStatus::Failed),
            })
            .to_string()
        })
        .collect();
    lines.push(
        json!({
            "event": "scenario",
            "file": r.file,
            "scenario": r.scenario,
            "round": round,
            "exit_code": r.exit_code,
            "duration_ms": r.duration_ms,
            "seed": r.seed,
            "run_dir": r.run_dir,
            "failure": r.failure,
        })
        .to_string(),
    );
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_errors_name_file_and_line_escaped() {
        let mut r = RunRecord::invalid("dir/a,b.lua", 1, "50% bad\nreally");
        if let Some(f) = r.failure.as_mut() {
            f.location = "dir/a,b.lua:7".into();
        }
        let e = github_error(&r).unwrap_or_default();
        assert!(
            e.starts_with("::error file=dir/a%2Cb.lua,line=7,title=a%2Cb failed::"),
            "{e}"
        );
        assert!(e.ends_with("::scenario: 50%25 bad%0Areally"), "{e}");
        r.failure = None;
        assert_eq!(github_error(&r), None);
    }

    #[test]
    fn a_label_names_its_step_in_annotations_and_jsonl() {
        use crate::checker::outcome::Failure;
        use crate::checker::results::{FailureRecord, StepRecord};
        let f = Failure::expect("download-finished for g", "download-failed", &[]);
        let mut r = RunRecord::invalid("a.lua", 3, "bad");
        r.failure = Some(FailureRecord::new(
            "a.lua",
            9,
            "download",
            Some("round 3"),
            &f,
        ));
        r.steps = vec![StepRecord::new(
            1,
            "download",
            Some("round 3"),
            9,
            StepStatus::Failed,
            std::time::Duration::ZERO,
            Some(&f),
        )];
        let e = github_error(&r).unwrap_or_default();
        assert!(
            e.contains("::download \"round 3\": expected: download-finished"),
            "{e}"
        );
        let lines = jsonl_events(&r, 1);
        let step: serde_json::Value = serde_json::from_str(&lines[0]).unwrap_or_default();
        assert_eq!(step["label"], "round 3");
        assert_eq!(step["action"], "download");
    }

    #[test]
    fn jsonl_has_one_line_per_step_and_one_per_scenario() {
        let r = RunRecord::invalid("a.lua", 3, "bad");
        let lines = jsonl_events(&r, 2);
        assert_eq!(lines.len(), 1);
        let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap_or_default();
        assert_eq!(v["event"], "scenario");
        assert_eq!(v["round"], 2);
        assert_eq!(v["exit_code"], 2);
    }
}
