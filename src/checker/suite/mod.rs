//! Folder runs: many scenario files, each its own child checker, `-j` at
//! once, optionally sharded (`--partition`), repeated (`--repeat`) and
//! selected by tags and name; one summary table, one exit code (the
//! worst), a top-level `summary.json`, and JUnit/GitHub/JSON-lines reports.

pub mod formats;
pub mod progress;
pub mod runner;
pub mod select;
pub mod verdict;

use crate::checker::lab;
use crate::checker::outcome::exit;
use crate::checker::results::RunRecord;
use crate::checker::script;
use runner::{Event, Finished, Job};
use select::Selection;
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How the folder run reports on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Progress, the summary table, the failing scenarios' output.
    #[default]
    Human,
    /// As human, plus `::error` workflow commands for GitHub Actions.
    Github,
    /// One JSON object per step and per scenario on stdout; the human
    /// lines go to stderr.
    Jsonl,
}

#[derive(Debug, Clone)]
pub struct SuiteOptions {
    /// Files and folders given with `-s`.
    pub inputs: Vec<PathBuf>,
    /// The folder run's folder; a fresh one under the temp dir when `None`.
    pub out: Option<PathBuf>,
    pub keep: bool,
    pub jobs: usize,
    pub repeat: u32,
    pub selection: Selection,
    pub seed: Option<u64>,
    pub junit: Option<PathBuf>,
    pub format: Format,
    /// Only validate each file.
    pub check: bool,
}

/// The default `-j`: one scenario per core.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// One selected file and its rounds' results.
struct Entry {
    file: PathBuf,
    name: String,
    rounds: Vec<Option<(Finished, PathBuf)>>,
}

#[derive(Serialize)]
struct SummaryRound {
    round: u32,
    exit_code: i32,
    duration_ms: u64,
    run_dir: String,
    output: String,
}

#[derive(Serialize)]
struct SummaryScenario {
    file: String,
    scenario: String,
    exit_code: i32,
    failed_rounds: usize,
    rounds: Vec<SummaryRound>,
}

#[derive(Serialize)]
struct Summary {
    exit_code: i32,
    duration_ms: u64,
    jobs: usize,
    repeat: u32,
    scenarios: Vec<SummaryScenario>,
}

/// Runs the folder and returns the process exit code.
pub fn run(opts: &SuiteOptions) -> i32 {
    let mut progress = progress::Progress::new(opts.format == Format::Jsonl);
    let files = match select::expand(&opts.inputs, |d| {
        std::fs::read_dir(d)?.map(|e| e.map(|e| e.path())).collect()
    }) {
        Ok(f) => f,
        Err(m) => {
            eprintln!("invalid scenario: {m}");
            return exit::INVALID;
        }
    };
    let selected: Vec<PathBuf> = files
        .into_iter()
        .filter(|f| {
            // Tags live in the file: load it (no peer starts) only when asked.
            let tags = opts
                .selection
                .needs_tags()
                .then(|| script::load(f, 0).ok().map(|s| s.tags))
                .flatten();
            opts.selection.selects(f, tags.as_deref())
        })
        .collect();
    if selected.is_empty() {
        eprintln!("no scenario file is selected (check --filter, --tags, --partition)");
        return exit::INVALID;
    }
    lab::install_signal_handler();
    let named = opts.out.is_some();
    let dir = opts
        .out
        .clone()
        .unwrap_or_else(|| lab::run_folder::default_location("folder"));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("harness error: creating {}: {e}", dir.display());
        return exit::HARNESS;
    }
    let names = unique_names(&selected);
    let mut entries: Vec<Entry> = selected
        .iter()
        .zip(names)
        .map(|(file, name)| Entry {
            file: file.clone(),
            name,
            rounds: (0..opts.repeat).map(|_| None).collect(),
        })
        .collect();
    let repeat = opts.repeat.max(1);
    let mut queue = Vec::new();
    // Round-major: a flake shows early, and no scenario runs beside itself.
    for round in 1..=repeat {
        for e in &entries {
            let out = if repeat > 1 {
                dir.join(&e.name).join(format!("round-{round}"))
            } else {
                dir.join(&e.name)
            };
            let mut log = out.clone().into_os_string();
            log.push(".output.log");
            let log = PathBuf::from(log);
            queue.push(Job {
                id: queue.len(),
                file: e.file.clone(),
                round,
                out,
                log,
            });
        }
    }
    let mut args = vec!["--color".to_string(), "never".to_string()];
    if let Some(seed) = opts.seed {
        args.extend(["--seed".to_string(), seed.to_string()]);
    }
    if opts.check {
        args.push("--check".into());
    }
    let jobs = opts.jobs.max(1);
    progress.note(&format!(
        "running {} scenario file(s) × {repeat} round(s), {jobs} at a time; folder {}",
        entries.len(),
        dir.display()
    ));
    let started = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    let labels: Vec<(usize, u32, PathBuf, PathBuf)> = queue
        .iter()
        .map(|j| {
            let entry = entries.iter().position(|e| e.file == j.file).unwrap_or(0);
            (entry, j.round, j.out.clone(), j.log.clone())
        })
        .collect();
    let runner = std::thread::spawn(move || runner::run_all(queue, jobs, args, tx));
    let label = |id: usize, entries: &[Entry]| {
        let (e, round, _, _) = &labels[id];
        if repeat > 1 {
            format!("{} (round {round})", entries[*e].name)
        } else {
            entries[*e].name.clone()
        }
    };
    loop {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(Event::Started(id)) => progress.started(id, label(id, &entries)),
            Ok(Event::Finished(id, done)) => {
                let (e, round, out, log) = labels[id].clone();
                let line = format!(
                    "{:<7} {} {:.1}s",
                    verdict::word(done.code),
                    label(id, &entries),
                    done.took.as_secs_f64()
                );
                progress.finished(id, &line);
                if opts.format == Format::Jsonl {
                    for l in formats::jsonl_events(&done.record, round) {
                        println!("{l}");
                    }
                }
                if done.code == exit::PASS && !lab::run_folder::outlives_run(true, named, opts.keep)
                {
                    // A passed round's folder is no evidence; its games are big.
                    let _ = std::fs::remove_dir_all(&out);
                    let _ = std::fs::remove_file(&log);
                }
                entries[e].rounds[(round - 1) as usize] = Some((*done, log));
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => progress.tick(),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = runner.join();
    progress.done();
    let took = started.elapsed();
    let code = verdict::worst(
        entries
            .iter()
            .flat_map(|e| e.rounds.iter().flatten().map(|(f, _)| f.code)),
    );
    // Scenarios a signal cut short are not failures of their own.
    let code = lab::process::interrupted().unwrap_or(code);
    report(opts, &entries, repeat, took, code, &dir);
    let summary = Summary {
        exit_code: code,
        duration_ms: took.as_millis() as u64,
        jobs,
        repeat,
        scenarios: entries.iter().map(summary_of).collect(),
    };
    let summary_path = dir.join("summary.json");
    match serde_json::to_string_pretty(&summary) {
        Ok(text) => {
            if let Err(e) = std::fs::write(&summary_path, text) {
                eprintln!("could not write {}: {e}", summary_path.display());
            }
        }
        Err(e) => eprintln!("could not write {}: {e}", summary_path.display()),
    }
    if let Some(path) = &opts.junit {
        let runs: Vec<RunRecord> = entries
            .iter()
            .flat_map(|e| {
                e.rounds.iter().enumerate().filter_map(move |(i, r)| {
                    let mut rec = r.as_ref()?.0.record.clone();
                    if repeat > 1 {
                        rec.scenario = format!("{} (round {})", rec.scenario, i + 1);
                    }
                    Some(rec)
                })
            })
            .collect();
        if let Err(e) = crate::checker::results::write_junit(&runs, path) {
            eprintln!("could not write {}: {e:#}", path.display());
        }
    }
    lab::run_folder::tidy(&dir, code == exit::PASS, named, opts.keep);
    // A signal that cut the run short decides the code (130, 143).
    lab::process::exit_code_unless_interrupted(code)
}

/// Run-folder names from file stems; a stem seen twice gets `-2`, `-3`…
fn unique_names(files: &[PathBuf]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    files
        .iter()
        .map(|f| {
            let stem = f
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "scenario".into());
            let mut name = stem.clone();
            let mut n = 1;
            while !seen.insert(name.clone()) {
                n += 1;
                name = format!("{stem}-{n}");
            }
            name
        })
        .collect()
}

fn summary_of(e: &Entry) -> SummaryScenario {
    let rounds: Vec<SummaryRound> = e
        .rounds
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let (f, log) = r.as_ref()?;
            Some(SummaryRound {
                round: i as u32 + 1,
                exit_code: f.code,
                duration_ms: f.took.as_millis() as u64,
                run_dir: f.record.run_dir.clone(),
                output: log.display().to_string(),
            })
        })
        .collect();
    SummaryScenario {
        file: e.file.display().to_string(),
        scenario: e
            .rounds
            .iter()
            .flatten()
            .map(|(f, _)| f.record.scenario.clone())
            .next()
            .unwrap_or_else(|| e.name.clone()),
        exit_code: verdict::worst(rounds.iter().map(|r| r.exit_code)),
        failed_rounds: rounds.iter().filter(|r| r.exit_code != exit::PASS).count(),
        rounds,
    }
}

/// The summary table, then each failing scenario's output (its first
/// failing round's), then the format's extras.
fn report(
    opts: &SuiteOptions,
    entries: &[Entry],
    repeat: u32,
    took: Duration,
    code: i32,
    dir: &Path,
) {
    let mut out: Vec<String> = Vec::new();
    let width = entries
        .iter()
        .map(|e| e.name.len())
        .max()
        .unwrap_or(8)
        .max(8);
    out.push(String::new());
    let mut head = format!("{:<width$}  {:<7}  {:>8}", "scenario", "result", "time");
    if repeat > 1 {
        head.push_str("  failed rounds");
    }
    out.push(head);
    let mut failing = Vec::new();
    for e in entries {
        let done: Vec<&(Finished, PathBuf)> = e.rounds.iter().flatten().collect();
        let worst = verdict::worst(done.iter().map(|(f, _)| f.code));
        let failed = done.iter().filter(|(f, _)| f.code != exit::PASS).count();
        let mean =
            done.iter().map(|(f, _)| f.took.as_secs_f64()).sum::<f64>() / done.len().max(1) as f64;
        let mut row = format!(
            "{:<width$}  {:<7}  {:>7.1}s",
            e.name,
            verdict::word(worst),
            mean
        );
        if repeat > 1 {
            row.push_str(&format!("  {failed}/{} failed", done.len()));
        }
        out.push(row);
        if let Some((round, (_, log))) = e.rounds.iter().enumerate().find_map(|(i, r)| {
            r.as_ref()
                .filter(|(f, _)| f.code != exit::PASS)
                .map(|r| (i + 1, r))
        }) {
            failing.push((e, round, log));
        }
    }
    let passed = entries.len() - failing.len();
    out.push(format!(
        "{passed} passed, {} failed of {} in {:.1}s (exit {code}); folder {}",
        failing.len(),
        entries.len(),
        took.as_secs_f64(),
        dir.display()
    ));
    for (e, round, log) in &failing {
        out.push(String::new());
        out.push(format!(
            "--- output of {} (round {round}, {}):",
            e.file.display(),
            log.display()
        ));
        out.extend(runner::log_tail(log, 400));
    }
    let text = out.join("\n");
    if opts.format == Format::Jsonl {
        eprintln!("{text}");
        println!(
            "{}",
            serde_json::json!({
                "event": "suite",
                "exit_code": code,
                "duration_ms": took.as_millis() as u64,
                "scenarios": entries.len(),
                "failed": failing.len(),
            })
        );
    } else {
        println!("{text}");
    }
    if opts.format == Format::Github {
        for (e, round, _) in &failing {
            if let Some((f, _)) = e.rounds[round - 1].as_ref()
                && let Some(line) = formats::github_error(&f.record)
            {
                println!("{line}");
            }
        }
        let level = if code == exit::PASS {
            "notice"
        } else {
            "error"
        };
        println!(
            "::{level} title=scenarios::{passed} passed, {} failed of {} (exit {code})",
            failing.len(),
            entries.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_folder_names_are_unique() {
        let files = [
            PathBuf::from("a/s1.lua"),
            PathBuf::from("b/s1.lua"),
            PathBuf::from("s2.lua"),
        ];
        assert_eq!(unique_names(&files), ["s1", "s1-2", "s2"]);
    }
}
