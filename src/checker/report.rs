//! Console reporting: one line per step, failure details with the involved
//! peers' log tails, and a summary line.

use crate::checker::lab::Lab;
use crate::checker::outcome::{Failure, exit};
use console::{Style, Term};
use std::path::Path;
use std::time::Duration;

const LOG_TAIL: usize = 12;

pub struct Report {
    ok: Style,
    bad: Style,
    dim: Style,
}

impl Report {
    pub fn new() -> Self {
        // `console` turns colours off by itself when stdout is not a terminal
        // (or NO_COLOR / CLICOLOR=0 are set).
        let _ = Term::stdout();
        Self {
            ok: Style::new().green(),
            bad: Style::new().red().bold(),
            dim: Style::new().dim(),
        }
    }

    pub fn line(&self, text: &str) {
        println!("{text}");
    }

    pub fn invalid(&self, message: &str) {
        eprintln!("{} {message}", self.bad.apply_to("invalid scenario:"));
    }

    pub fn harness_setup(&self, message: &str) {
        eprintln!("{} {message}", self.bad.apply_to("harness error:"));
    }

    pub fn start(&self, name: &str, file: &str, steps: usize, run_dir: &Path, seed: u64) {
        println!("scenario {name} ({file}, {steps} steps, seed {seed})");
        println!(
            "{}",
            self.dim
                .apply_to(format!("run folder: {}", run_dir.display()))
        );
    }

    pub fn step(&self, n: usize, action: &str, file: &str, line: u32, took: Duration, ok: bool) {
        let mark = if ok {
            self.ok.apply_to("✓")
        } else {
            self.bad.apply_to("✗")
        };
        println!(
            "  {mark} {n:>3} {action:<16} {:<32} {:>8.2}s",
            format!("{file}:{line}"),
            took.as_secs_f64()
        );
    }

    pub fn failure(&self, file: &str, line: u32, action: &str, f: &Failure, lab: &Lab) {
        println!();
        println!("{} {action} at {file}:{line}", self.bad.apply_to("FAILED"));
        match f {
            Failure::Expectation { expected, seen, .. } => {
                println!("  expected: {expected}");
                println!("  seen:     {seen}");
            }
            Failure::Invalid { message } => println!("  invalid scenario: {message}"),
            Failure::Harness { message, .. } => println!("  harness error: {message}"),
        }
        for name in f.peers() {
            let Some(p) = lab.peers.get(name) else {
                continue;
            };
            println!(
                "  --- {name}: last stderr lines ({})",
                p.stderr_path.display()
            );
            for l in p.stderr_tail(LOG_TAIL) {
                println!("    {}", self.dim.apply_to(l));
            }
            println!(
                "  --- {name}: last stdout lines ({})",
                p.events_path.display()
            );
            let lines = p.log.since(p.log.len().saturating_sub(LOG_TAIL));
            for l in lines {
                println!("    {}", self.dim.apply_to(l.value.to_string()));
            }
        }
        println!();
    }

    pub fn summary(&self, name: &str, code: i32, took: Duration, run_dir: &Path) {
        let verdict = match code {
            exit::PASS => self.ok.apply_to("PASS".to_string()),
            exit::EXPECTATION => self.bad.apply_to("FAIL".to_string()),
            exit::INVALID => self.bad.apply_to("INVALID".to_string()),
            _ => self.bad.apply_to("HARNESS ERROR".to_string()),
        };
        println!(
            "{verdict} {name} in {:.1}s (exit {code})",
            took.as_secs_f64()
        );
        if code != exit::PASS {
            println!("logs kept in {}", run_dir.display());
        }
    }
}

/// Watches a running step: prints that it is still running every `EVERY`
/// and, past the scenario's deadline, kills every peer so that no wait can
/// hang the run (the step then fails and `timed_out` says why).
pub struct Ticker {
    stop: std::sync::mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
    timed_out: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Ticker {
    const EVERY: Duration = Duration::from_secs(10);

    pub fn start(n: usize, action: &'static str, deadline: Option<std::time::Instant>) -> Self {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let timed_out = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = timed_out.clone();
        let thread = std::thread::spawn(move || {
            let began = std::time::Instant::now();
            let mut next_note = began + Self::EVERY;
            loop {
                let now = std::time::Instant::now();
                let wake = deadline.map_or(next_note, |d| d.min(next_note)).max(now);
                match stopped.recv_timeout(wake - now) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
                let now = std::time::Instant::now();
                if deadline.is_some_and(|d| now >= d) {
                    println!(
                        "      … step {n} {action}: the scenario timeout passed; killing every peer"
                    );
                    flag.store(true, std::sync::atomic::Ordering::SeqCst);
                    crate::checker::lab::kill_all_peers();
                    return;
                }
                if now >= next_note {
                    println!(
                        "      … step {n} {action} still running ({:.0}s)",
                        began.elapsed().as_secs_f64()
                    );
                    next_note += Self::EVERY;
                }
            }
        });
        Self {
            stop,
            thread: Some(thread),
            timed_out,
        }
    }

    /// Whether the scenario deadline passed while the step ran.
    pub fn timed_out(&self) -> bool {
        self.timed_out.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Default for Report {
    fn default() -> Self {
        Self::new()
    }
}
