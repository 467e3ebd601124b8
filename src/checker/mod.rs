//! The scenario checker: loads one Lua scenario, runs its steps against real
//! peer processes, reports each step and exits with a meaningful code.

pub mod actions;
pub mod bench;
pub mod lab;
pub mod luals;
pub mod outcome;
pub mod params;
pub mod preflight;
pub mod registry;
pub mod report;
pub mod results;
pub mod script;
pub mod suite;
pub mod type_errors;
pub mod wire_client;

use lab::Lab;
use outcome::{Failure, exit};
use report::Report;
use results::{RunRecord, StepRecord, StepStatus};
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
    /// Seed for anything random; a fresh one (printed) when `None`.
    pub seed: Option<u64>,
    /// Also write a JUnit XML report here.
    pub junit: Option<PathBuf>,
}

/// Runs a scenario and returns the process exit code.
pub fn run(opts: &RunOptions) -> i32 {
    let report = Report::new();
    let seed = opts.seed.unwrap_or_else(rand::random);
    let file = opts.scenario.display().to_string();
    let scenario = match script::load(&opts.scenario, seed) {
        Ok(s) => s,
        Err(e) => {
            report.invalid(&e.0);
            let record = RunRecord::invalid(&file, seed, &e.0);
            write_junit(opts, &record, &report);
            return exit::INVALID;
        }
    };
    if opts.check {
        report.line(&format!("{file}: valid, {} steps", scenario.steps.len()));
        return exit::PASS;
    }
    lab::install_signal_handler();
    // A SIGKILLed earlier checker may have left its LAN's namespaces.
    lab::network::reap_stale();
    let run_dir = opts
        .out
        .clone()
        .unwrap_or_else(|| lab::run_folder::default_location(&scenario.name));
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
    lab.seed = seed;
    if scenario.network == script::Network::Lan {
        match lab::network::Lan::create(seed) {
            Ok(lan) => lab.lan = Some(std::sync::Arc::new(std::sync::Mutex::new(lan))),
            Err(e) => {
                // Never a silent pass: a lab scenario without its lab is a harness error.
                report.harness_setup(&format!("network = \"lan\": {e:#}"));
                return exit::HARNESS;
            }
        }
    }
    report.start(&scenario.name, &file, scenario.steps.len(), &run_dir, seed);
    let scenario_started = Instant::now();
    lab::deadline::set(scenario.timeout.map(|t| scenario_started + t));
    let mut records: Vec<StepRecord> = Vec::new();
    // (line, the step's title, the failure)
    let mut failure: Option<(u32, String, Failure)> = None;
    for (i, step) in scenario.steps.iter().enumerate() {
        let record = |status, took: std::time::Duration, f: Option<&Failure>| {
            StepRecord::new(
                i + 1,
                step.action.name(),
                step.label.as_deref(),
                step.line,
                status,
                took,
                f,
            )
        };
        if failure.is_some() {
            records.push(record(StepStatus::NotRun, Default::default(), None));
            continue;
        }
        if let Some(limit) = scenario.timeout
            && scenario_started.elapsed() > limit
        {
            let f = Failure::expect(
                format!("the scenario finishes within {limit:?}"),
                "time ran out",
                &[],
            );
            records.push(record(StepStatus::Failed, Default::default(), Some(&f)));
            failure = Some((step.line, step.title(), f));
            continue;
        }
        lab.mark_step(step.line);
        let started = Instant::now();
        let deadline = scenario.timeout.map(|t| scenario_started + t);
        let ticker = report::Ticker::start(i + 1, step.action.name(), deadline);
        let mut result = step.run(&mut lab);
        // A wait cut short by the deadline may return before the ticker
        // notices; either way the step did not finish in time.
        if ticker.timed_out() || lab::deadline::passed() {
            let limit = scenario.timeout.unwrap_or_default();
            result = Err(Failure::expect(
                format!("the scenario finishes within {limit:?}"),
                format!(
                    "step {} ({}) was still running; every peer was killed",
                    i + 1,
                    step.action.name()
                ),
                &[],
            ));
        }
        drop(ticker);
        let took = started.elapsed();
        report.step(i + 1, &step.title(), &file, step.line, took, result.is_ok());
        match result.map_err(|f| lab.name_peers_in(f)) {
            Ok(()) => records.push(record(StepStatus::Passed, took, None)),
            Err(f) => {
                records.push(record(StepStatus::Failed, took, Some(&f)));
                failure = Some((step.line, step.title(), f));
            }
        }
    }
    if failure.is_none()
        && let Some((line, message)) = lab.unfired_triggers().into_iter().next()
    {
        let action = scenario
            .steps
            .iter()
            .find(|s| s.line == line)
            .map_or("killPeer".to_string(), |s| s.title());
        failure = Some((
            line,
            action,
            Failure::expect("the armed trigger fired during the scenario", message, &[]),
        ));
    }
    // A watcher nobody checked would be a check that cannot fail.
    if failure.is_none()
        && let Some(name) = lab.disk_watchers.keys().next().cloned()
    {
        let line = scenario
            .steps
            .iter()
            .rfind(|s| matches!(&s.action, registry::Action::WatchDisk(w) if w.peer == name))
            .map(|s| s.line)
            .unwrap_or(0);
        failure = Some((
            line,
            "watchDisk".to_string(),
            Failure::invalid(format!(
                "watchDisk on {name} is never checked: add expectDiskPeak{{ peer = {name:?}, … }}"
            )),
        ));
    }
    if failure.is_none()
        && let Some((name, diff)) = lab.readonly_violations().into_iter().next()
    {
        let line = scenario
            .steps
            .iter()
            .find(|s| matches!(&s.action, registry::Action::Peer(p) if p.name == name))
            .map(|s| s.line)
            .unwrap_or(0);
        failure = Some((
            line,
            "peer".to_string(),
            Failure::expect(
                format!("readonly peer {name} leaves its games folder as it was"),
                diff,
                &[&name],
            ),
        ));
    }
    let code = match &failure {
        None => exit::PASS,
        Some((line, action, f)) => {
            report.failure(&file, *line, action, f, &lab);
            f.exit_code()
        }
    };
    lab::deadline::set(None);
    lab.shutdown_all();
    let took = scenario_started.elapsed();
    let record = RunRecord {
        scenario: scenario.name.clone(),
        file: file.clone(),
        seed,
        exit_code: code,
        duration_ms: took.as_millis() as u64,
        run_dir: run_dir.display().to_string(),
        steps: records,
        failure: failure.as_ref().map(|(line, title, f)| {
            // The step's action and label again, apart.
            let step = scenario
                .steps
                .iter()
                .find(|s| s.line == *line && s.title() == *title);
            match step {
                Some(s) => results::FailureRecord::new(
                    &file,
                    *line,
                    s.action.name(),
                    s.label.as_deref(),
                    f,
                ),
                None => results::FailureRecord::new(&file, *line, title, None, f),
            }
        }),
        network: lab
            .lan
            .as_ref()
            .map(|lan| results::NetworkRecord::of(&crate::sync::lock(lan))),
    };
    if let Err(e) = record.write_summary(&run_dir.join("summary.json")) {
        report.line(&format!("could not write summary.json: {e:#}"));
    }
    write_junit(opts, &record, &report);
    report.summary(&scenario.name, code, took, &run_dir);
    lab::run_folder::tidy(&run_dir, code == exit::PASS, opts.out.is_some(), opts.keep);
    // A signal that cut the run short decides the code (130, 143).
    lab::process::exit_code_unless_interrupted(code)
}

fn write_junit(opts: &RunOptions, record: &RunRecord, report: &Report) {
    if let Some(path) = &opts.junit
        && let Err(e) = record.write_junit(path)
    {
        report.line(&format!("could not write {}: {e:#}", path.display()));
    }
}
