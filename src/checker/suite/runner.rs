//! Runs a folder's scenarios as child checkers, `jobs` at a time: each is
//! this binary re-executed on one file (`-s FILE --out DIR`), in a process
//! group of its own tracked by the lab's reaper, its console output going
//! to a log file beside its run folder. Its result is the `summary.json`
//! it writes there.

use crate::checker::lab::process::{track_checker_group, untrack_checker_group};
use crate::checker::outcome::exit;
use crate::checker::results::{FailureRecord, RunRecord};
use crate::checker::suite::verdict;
use anyhow::{Context, Result};
use std::collections::VecDeque;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One round of one scenario.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: usize,
    pub file: PathBuf,
    pub round: u32,
    /// The child's run folder (`--out`).
    pub out: PathBuf,
    /// The child's stdout and stderr, interleaved as it wrote them.
    pub log: PathBuf,
}

#[derive(Debug)]
pub enum Event {
    Started(usize),
    Finished(usize, Box<Finished>),
}

#[derive(Debug)]
pub struct Finished {
    /// The child's exit code, folded to the checker's table (`verdict`).
    pub code: i32,
    pub took: Duration,
    pub record: RunRecord,
}

/// Runs `queue` on `jobs` worker threads, reporting through `events`;
/// `args` go to every child after `-s FILE --out DIR`.
pub fn run_all(queue: Vec<Job>, jobs: usize, args: Vec<String>, events: Sender<Event>) {
    let queue = Arc::new(Mutex::new(VecDeque::from(queue)));
    let args = Arc::new(args);
    let workers: Vec<_> = (0..jobs.max(1))
        .map(|_| {
            let (queue, args, events) = (queue.clone(), args.clone(), events.clone());
            std::thread::spawn(move || {
                loop {
                    let next = crate::sync::lock(&queue).pop_front();
                    let Some(job) = next else { return };
                    let _ = events.send(Event::Started(job.id));
                    let done = run_one(&job, &args);
                    let _ = events.send(Event::Finished(job.id, Box::new(done)));
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
}

fn run_one(job: &Job, args: &[String]) -> Finished {
    let started = Instant::now();
    let status = spawn_and_wait(job, args);
    let took = started.elapsed();
    let (code, why) = match status {
        Ok(code) => (verdict::of_child(code), None),
        Err(e) => (exit::HARNESS, Some(format!("{e:#}"))),
    };
    let record = match (&why, read_summary(&job.out.join("summary.json"))) {
        (None, Some(r)) => r,
        _ => stand_in(job, code, took, why),
    };
    Finished { code, took, record }
}

/// The child's exit code (`None` when a signal ended it).
fn spawn_and_wait(job: &Job, args: &[String]) -> Result<Option<i32>> {
    if let Some(parent) = job.log.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let log = std::fs::File::create(&job.log)
        .with_context(|| format!("creating {}", job.log.display()))?;
    let exe = std::env::current_exe().context("finding this checker's binary")?;
    let mut child = Command::new(exe)
        .arg("-s")
        .arg(&job.file)
        .arg("--out")
        .arg(&job.out)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().context("sharing the log file")?)
        .stderr(log)
        // Its own group: a terminal's Ctrl-C reaches only this checker,
        // which then SIGTERMs each child so it can reap its peers.
        .process_group(0)
        .spawn()
        .context("starting a child checker")?;
    let pid = child.id() as i32;
    track_checker_group(pid);
    let status = child.wait();
    untrack_checker_group(pid);
    Ok(status.context("waiting for a child checker")?.code())
}

fn read_summary(path: &Path) -> Option<RunRecord> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// The record of a child that wrote no `summary.json` (a file that did not
/// load, `--check`, or a child that died): its message is the log's tail.
fn stand_in(job: &Job, code: i32, took: Duration, why: Option<String>) -> RunRecord {
    let file = job.file.display().to_string();
    let tail = why.unwrap_or_else(|| log_tail(&job.log, 5).join("\n"));
    let mut record = RunRecord::invalid(&file, 0, &tail);
    record.exit_code = code;
    record.duration_ms = took.as_millis() as u64;
    record.run_dir = job.out.display().to_string();
    record.failure = match code {
        exit::PASS => None,
        _ => Some(FailureRecord {
            kind: verdict::kind(code).to_string(),
            // An invalid file's message starts `file:line:`; keep that line.
            location: invalid_location(&file, &tail),
            action: "scenario".into(),
            label: None,
            expected: None,
            seen: None,
            message: Some(tail),
        }),
    };
    record
}

/// `file:line` from a message that names it (`t.lua:3: peer: …`), else `file`.
pub fn invalid_location(file: &str, message: &str) -> String {
    message
        .lines()
        .find_map(|l| {
            let at = l.find(file)? + file.len();
            let rest = l[at..].strip_prefix(':')?;
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            (!digits.is_empty()).then(|| format!("{file}:{digits}"))
        })
        .unwrap_or_else(|| file.to_string())
}

/// The last `n` lines of a log file (none when it cannot be read).
pub fn log_tail(path: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_files_message_gives_its_line() {
        let m = "invalid scenario: /tmp/x/case.lua:3: peer: unknown field `nmae`";
        assert_eq!(invalid_location("/tmp/x/case.lua", m), "/tmp/x/case.lua:3");
        assert_eq!(
            invalid_location("a.lua", "a.lua: no scenario{...} call"),
            "a.lua"
        );
        assert_eq!(invalid_location("a.lua", "harness error: b"), "a.lua");
    }
}
