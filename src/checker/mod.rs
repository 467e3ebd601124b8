//! The scenario checker: loads one Lua scenario, runs its steps against real
//! peer processes, reports each step and exits with a meaningful code.

pub mod actions;
pub mod lab;
pub mod outcome;
pub mod report;
pub mod script;
pub mod steps;

use lab::Lab;
use outcome::{Failure, exit};
use report::Report;
use std::path::PathBuf;
use std::time::Instant;

/// Options of a scenario run (see `lanspread-checker --help`).
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub scenario: PathBuf,
    /// Run folder; a fresh one under the temp dir when `None`.
    pub out: Option<PathBuf>,
    /// Keep the run folder even when every step passed.
    pub keep: bool,
    pub verbose: bool,
    /// Only validate the file.
    pub check: bool,
}

/// Runs a scenario and returns the process exit code.
pub fn run(opts: &RunOptions) -> i32 {
    let report = Report::new();
    let scenario = match script::load(&opts.scenario) {
        Ok(s) => s,
        Err(e) => {
            report.invalid(&e.0);
            return exit::INVALID;
        }
    };
    if opts.check {
        report.line(&format!(
            "{}: valid, {} steps",
            opts.scenario.display(),
            scenario.steps.len()
        ));
        return exit::PASS;
    }
    lab::install_signal_handler();
    let run_dir = opts
        .out
        .clone()
        .unwrap_or_else(|| default_run_dir(&scenario.name));
    let scenario_dir = opts
        .scenario
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                p.to_path_buf()
            }
        })
        .unwrap_or_else(|| PathBuf::from("."));
    let mut lab = match Lab::new(run_dir.clone(), scenario_dir, opts.verbose) {
        Ok(l) => l,
        Err(e) => {
            report.harness_setup(&format!("{e:#}"));
            return exit::HARNESS;
        }
    };
    let file = opts.scenario.display().to_string();
    report.start(&scenario.name, &file, scenario.steps.len(), &run_dir);
    let scenario_started = Instant::now();
    let mut failure: Option<(u32, &'static str, Failure)> = None;
    for (i, step) in scenario.steps.iter().enumerate() {
        if let Some(limit) = scenario.timeout
            && scenario_started.elapsed() > limit
        {
            failure = Some((
                step.line,
                step.action.name(),
                Failure::expect(
                    format!("the scenario finishes within {limit:?}"),
                    "time ran out",
                    &[],
                ),
            ));
            break;
        }
        let started = Instant::now();
        let result = actions::run(&mut lab, step);
        report.step(
            i + 1,
            step.action.name(),
            &file,
            step.line,
            started.elapsed(),
            result.is_ok(),
        );
        if let Err(f) = result {
            failure = Some((step.line, step.action.name(), f));
            break;
        }
    }
    if failure.is_none()
        && let Some((line, message)) = lab.unfired_triggers().into_iter().next()
    {
        failure = Some((
            line,
            "killPeer",
            Failure::expect("the kill trigger fired during the scenario", message, &[]),
        ));
    }
    let code = match &failure {
        None => exit::PASS,
        Some((line, action, f)) => {
            report.failure(&file, *line, action, f, &lab);
            f.exit_code()
        }
    };
    lab.shutdown_all();
    report.summary(&scenario.name, code, scenario_started.elapsed(), &run_dir);
    if code == exit::PASS && opts.out.is_none() && !opts.keep {
        let _ = std::fs::remove_dir_all(&run_dir);
    }
    code
}

fn default_run_dir(name: &str) -> PathBuf {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    std::env::temp_dir()
        .join("lanspread-checker")
        .join(format!("{name}-{stamp}-{}", std::process::id()))
}
