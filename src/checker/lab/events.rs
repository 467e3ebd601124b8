//! Peers' event logs and triggers: every stdout line of a peer lands in its
//! `EventLog` (which steps wait on), and before that passes the armed
//! `on = { … }` triggers (`killPeer`, `impair`, `partition`, `heal`), so
//! the action lands the moment its event is printed rather than when a step
//! next looks.

use super::process::sigkill_group;
use crate::sync::lock;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

/// One stdout line of a peer, numbered in arrival order.
#[derive(Debug, Clone)]
pub struct Logged {
    pub seq: usize,
    pub at: Instant,
    pub value: Value,
}

/// Everything a peer printed on stdout, shared with its reader thread.
#[derive(Default)]
pub struct EventLog {
    lines: Mutex<Vec<Logged>>,
    changed: Condvar,
    closed: AtomicBool,
}

impl EventLog {
    pub fn len(&self) -> usize {
        lock(&self.lines).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn since(&self, seq: usize) -> Vec<Logged> {
        lock(&self.lines).iter().skip(seq).cloned().collect()
    }

    /// Events named `name` from `seq` on.
    pub fn events(&self, seq: usize, name: &str) -> Vec<Value> {
        self.since(seq)
            .into_iter()
            .filter(|l| is_event(&l.value, name))
            .map(|l| l.value["data"].clone())
            .collect()
    }

    pub(super) fn push(&self, value: Value) {
        let mut lines = lock(&self.lines);
        let seq = lines.len();
        lines.push(Logged {
            seq,
            at: Instant::now(),
            value,
        });
        self.changed.notify_all();
    }

    /// A restarted peer writes to the same log again.
    pub(super) fn reopen(&self) {
        self.closed.store(false, Ordering::SeqCst);
    }

    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let _guard = lock(&self.lines);
        self.changed.notify_all();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Waits for the first line at or after `seq` that satisfies `pred`.
    /// Gives up at `deadline` or when the peer's stdout closes.
    pub fn wait_for(
        &self,
        seq: usize,
        deadline: Instant,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Logged> {
        let deadline = super::deadline::cap(deadline);
        let mut lines = lock(&self.lines);
        let mut next = seq;
        loop {
            if let Some(hit) = lines.iter().skip(next).find(|l| pred(&l.value)) {
                return Some(hit.clone());
            }
            next = lines.len();
            let now = Instant::now();
            if now >= deadline || self.is_closed() {
                return None;
            }
            lines = self
                .changed
                .wait_timeout(lines, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    pub fn cursor(&self, from: usize) -> LogCursor<'_> {
        LogCursor {
            log: self,
            next: from,
        }
    }
}

/// Reads an `EventLog` from a position on, each line once, so a step that
/// waits on a growing log looks at every line once rather than rereading
/// the log from its start whenever a line arrives.
pub struct LogCursor<'a> {
    log: &'a EventLog,
    next: usize,
}

impl LogCursor<'_> {
    /// The lines that arrived since the last call.
    pub fn fresh(&mut self) -> Vec<Logged> {
        let lines = self.log.since(self.next);
        self.next += lines.len();
        lines
    }

    /// Waits for a line `fresh` has not returned yet; gives up at `deadline`
    /// or when the peer's stdout closes.
    pub fn wait(&self, deadline: Instant) {
        self.log.wait_for(self.next, deadline, |_| true);
    }
}

pub fn is_event(v: &Value, name: &str) -> bool {
    v["type"] == "event" && v["event"] == name
}

/// What a trigger does when it fires.
pub enum Act {
    /// SIGKILL a process group (the target's owner reaps it).
    Kill { pgid: i32 },
    /// Anything else, run on the watched peer's reader thread; it must not
    /// block for long, since that peer's lines wait behind it.
    Run(Box<dyn Fn() + Send>),
}

/// Do `act` when `watch` prints `event` (for `game`, if given).
pub struct Trigger {
    pub watch: String,
    pub event: String,
    pub game: Option<String>,
    /// The armed step as messages name it, e.g. `killPeer b`.
    pub what: String,
    pub act: Act,
    pub line: u32,
    pub fired: Arc<AtomicBool>,
    /// Fire on this many-th matching event (1: the first).
    pub nth: usize,
    /// Matching events seen so far.
    pub seen: std::sync::atomic::AtomicUsize,
}

/// The run's armed triggers, shared with every peer's reader thread.
pub type Triggers = Arc<Mutex<Vec<Trigger>>>;

/// Fires (once each) the triggers that `watch` printing `v` sets off.
pub(super) fn fire_triggers(triggers: &Triggers, watch: &str, v: &Value) {
    if v["type"] != "event" {
        return;
    }
    for t in lock(triggers).iter() {
        if t.watch == watch
            && v["event"] == t.event.as_str()
            && t.game
                .as_ref()
                .is_none_or(|g| v["data"]["game_id"] == g.as_str())
            && t.seen.fetch_add(1, Ordering::SeqCst) + 1 >= t.nth
            && !t.fired.swap(true, Ordering::SeqCst)
        {
            match &t.act {
                // The target's owner reaps (and untracks) it.
                Act::Kill { pgid } => sigkill_group(*pgid),
                Act::Run(f) => f(),
            }
        }
    }
}

/// Triggers that never fired, as (line, message).
pub(super) fn unfired(triggers: &Triggers) -> Vec<(u32, String)> {
    lock(triggers)
        .iter()
        .filter(|t| !t.fired.load(Ordering::SeqCst))
        .map(|t| {
            (
                t.line,
                format!(
                    "{} on {}:{} was armed but the event never came",
                    t.what, t.watch, t.event
                ),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::os::unix::process::CommandExt;
    use std::time::Duration;

    #[test]
    fn a_cursor_returns_each_line_once_from_its_start() {
        let log = EventLog::default();
        for i in 0..3 {
            log.push(json!({ "n": i }));
        }
        let mut cursor = log.cursor(1);
        let ns = |lines: Vec<Logged>| {
            lines
                .iter()
                .map(|l| l.value["n"].clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ns(cursor.fresh()), [json!(1), json!(2)]);
        assert!(cursor.fresh().is_empty());
        log.push(json!({ "n": 3 }));
        // A line already there ends the wait at once.
        let began = Instant::now();
        cursor.wait(began + Duration::from_secs(5));
        assert!(began.elapsed() < Duration::from_secs(5));
        assert_eq!(ns(cursor.fresh()), [json!(3)]);
    }

    #[test]
    fn a_trigger_kills_its_target_once_on_its_event_for_its_game() -> anyhow::Result<()> {
        let mut target = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()?;
        let pgid = target.id() as i32;
        let fired = Arc::new(AtomicBool::new(false));
        let triggers: Triggers = Arc::new(Mutex::new(vec![Trigger {
            watch: "a".into(),
            event: "download-begin".into(),
            game: Some("g".into()),
            what: "killPeer b".into(),
            act: Act::Kill { pgid },
            line: 7,
            fired: fired.clone(),
            nth: 2,
            seen: Default::default(),
        }]));
        let event = |game: &str| json!({ "type": "event", "event": "download-begin", "data": { "game_id": game } });
        assert_eq!(unfired(&triggers).len(), 1);
        // Another peer, another game, a result line: none of them fires it.
        fire_triggers(&triggers, "b", &event("g"));
        fire_triggers(&triggers, "a", &event("other"));
        fire_triggers(
            &triggers,
            "a",
            &json!({ "type": "result", "event": "download-begin" }),
        );
        assert!(!fired.load(Ordering::SeqCst));
        assert!(
            target.try_wait()?.is_none(),
            "killed by a line that does not match"
        );
        // Armed for the second matching event: the first does not fire it.
        fire_triggers(&triggers, "a", &event("g"));
        assert!(!fired.load(Ordering::SeqCst), "fired on the first of two");
        fire_triggers(&triggers, "a", &event("g"));
        assert!(fired.load(Ordering::SeqCst));
        let status = target.wait()?;
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL)
        );
        assert!(unfired(&triggers).is_empty());
        Ok(())
    }

    #[test]
    fn a_run_trigger_runs_its_closure_once_at_its_event_with_matching_data() {
        use std::sync::atomic::AtomicUsize;
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let fired = Arc::new(AtomicBool::new(false));
        let triggers: Triggers = Arc::new(Mutex::new(vec![Trigger {
            watch: "client".into(),
            event: "download-chunk-finished".into(),
            game: Some("cnc4".into()),
            what: "partition".into(),
            act: Act::Run(Box::new(move || {
                counted.fetch_add(1, Ordering::SeqCst);
            })),
            line: 12,
            fired: fired.clone(),
            nth: 1,
            seen: Default::default(),
        }]));
        let chunk = |game: Value| json!({ "type": "event", "event": "download-chunk-finished", "data": { "game_id": game } });
        // Not yet: the wrong peer, another event, a game ID that only
        // looks alike (a number, a prefix, none at all), a result line.
        fire_triggers(&triggers, "a", &chunk(json!("cnc4")));
        fire_triggers(
            &triggers,
            "client",
            &json!({ "type": "event", "event": "download-begin", "data": { "game_id": "cnc4" } }),
        );
        fire_triggers(&triggers, "client", &chunk(json!("cnc")));
        fire_triggers(&triggers, "client", &chunk(json!(4)));
        fire_triggers(
            &triggers,
            "client",
            &json!({ "type": "event", "event": "download-chunk-finished" }),
        );
        fire_triggers(
            &triggers,
            "client",
            &json!({ "type": "result", "event": "download-chunk-finished", "data": { "game_id": "cnc4" } }),
        );
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        assert_eq!(
            unfired(&triggers),
            [(
                12,
                "partition on client:download-chunk-finished was armed but the event never came"
                    .to_string()
            )]
        );
        // The matching event runs it; later ones, matching or not, do not.
        fire_triggers(&triggers, "client", &chunk(json!("cnc4")));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        for _ in 0..3 {
            fire_triggers(&triggers, "client", &chunk(json!("cnc4")));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(fired.load(Ordering::SeqCst));
        assert!(unfired(&triggers).is_empty());
    }

    #[test]
    fn a_run_trigger_without_a_game_fires_on_any_game() {
        use std::sync::atomic::AtomicUsize;
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let triggers: Triggers = Arc::new(Mutex::new(vec![Trigger {
            watch: "client".into(),
            event: "download-begin".into(),
            game: None,
            what: "heal".into(),
            act: Act::Run(Box::new(move || {
                counted.fetch_add(1, Ordering::SeqCst);
            })),
            line: 3,
            fired: Arc::new(AtomicBool::new(false)),
            nth: 1,
            seen: Default::default(),
        }]));
        fire_triggers(
            &triggers,
            "client",
            &json!({ "type": "event", "event": "download-begin", "data": { "game_id": "anything" } }),
        );
        fire_triggers(
            &triggers,
            "client",
            &json!({ "type": "event", "event": "download-begin", "data": { "game_id": "other" } }),
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }
}
