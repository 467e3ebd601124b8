//! The folder run's console while it runs: on a terminal, one live line
//! per running scenario below the finished ones; elsewhere (CI, tests) one
//! plain line per finished scenario.

use console::Term;
use std::time::Instant;

pub struct Progress {
    term: Term,
    live: bool,
    running: Vec<(usize, String, Instant)>,
    drawn: usize,
}

impl Progress {
    /// `to_stderr` when stdout carries a machine format.
    pub fn new(to_stderr: bool) -> Self {
        let term = if to_stderr {
            Term::stderr()
        } else {
            Term::stdout()
        };
        let live = term.is_term();
        Self {
            term,
            live,
            running: Vec::new(),
            drawn: 0,
        }
    }

    pub fn started(&mut self, id: usize, label: String) {
        self.running.push((id, label, Instant::now()));
        self.redraw();
    }

    /// `id` finished; `line` says how, and stays.
    pub fn finished(&mut self, id: usize, line: &str) {
        self.running.retain(|(i, _, _)| *i != id);
        self.clear();
        let _ = self.term.write_line(line);
        self.redraw();
    }

    /// A line that stays, printed above the live lines.
    pub fn note(&mut self, line: &str) {
        self.clear();
        let _ = self.term.write_line(line);
        self.redraw();
    }

    /// Refreshes the running scenarios' clocks.
    pub fn tick(&mut self) {
        self.redraw();
    }

    pub fn done(&mut self) {
        self.clear();
    }

    fn clear(&mut self) {
        if self.live && self.drawn > 0 {
            let _ = self.term.clear_last_lines(self.drawn);
        }
        self.drawn = 0;
    }

    fn redraw(&mut self) {
        if !self.live {
            return;
        }
        self.clear();
        let width = usize::from(self.term.size().1).max(20);
        for (_, label, since) in &self.running {
            let line = format!("  … {label} {:.0}s", since.elapsed().as_secs_f64());
            let _ = self
                .term
                .write_line(&console::truncate_str(&line, width - 1, "…"));
        }
        self.drawn = self.running.len();
    }
}
