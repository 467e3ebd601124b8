//! Peers' event logs and triggers: every stdout line of a peer lands in its
//! `EventLog` (which steps wait on), and before that passes the armed
//! `on = { … }` triggers (`killPeer`, `impair`, `partition`, `heal`), so
//! the action lands the moment its event is printed rather than when a step
//! next looks.

use super::process::sigkill_group;
use crate::sync::lock;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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

    /// Waits for the `filter.count`th line at or after `seq` that `filter`
    /// matches, or the first line `stop` accepts before it (whichever comes
    /// first). Gives up at `deadline` or when the peer's stdout closes.
    pub fn wait_nth(
        &self,
        seq: usize,
        deadline: Instant,
        filter: &EventFilter,
        stop: impl Fn(&Value) -> bool,
    ) -> Option<Logged> {
        let seen = std::cell::Cell::new(0usize);
        // `wait_for` hands each line to the predicate once, in order.
        self.wait_for(seq, deadline, |v| {
            if filter.matches(v) {
                seen.set(seen.get() + 1);
                return seen.get() >= filter.count;
            }
            stop(v)
        })
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

/// Which events count for a trigger or a wait: the event's name, its game
/// (if given), a subset match on its data (if given), and which matching
/// event it is (the `count`th; the first by default).
#[derive(Debug, Clone, PartialEq)]
pub struct EventFilter {
    pub event: String,
    pub game: Option<String>,
    /// `json_contains` on the event's `data`.
    pub pattern: Option<Value>,
    /// Fire on the `count`th matching event (at least 1).
    pub count: usize,
}

impl EventFilter {
    /// Whether `v` is an event this filter counts (whatever its position).
    pub fn matches(&self, v: &Value) -> bool {
        is_event(v, &self.event)
            && self
                .game
                .as_ref()
                .is_none_or(|g| v["data"]["game_id"] == g.as_str())
            && self
                .pattern
                .as_ref()
                .is_none_or(|p| crate::checker::actions::json_contains(&v["data"], p))
    }

    /// `download-chunk-finished for g matching {…} (the 10th)`.
    pub fn describe(&self) -> String {
        let mut d = self.event.clone();
        if let Some(g) = &self.game {
            d.push_str(&format!(" for {g}"));
        }
        if let Some(p) = &self.pattern {
            d.push_str(&format!(" matching {p}"));
        }
        if self.count > 1 {
            d.push_str(&format!(" (the {})", ordinal(self.count)));
        }
        d
    }
}

/// `1st`, `2nd`, `3rd`, `4th`, `11th`, `22nd`, …
pub fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// Do `act` when `watch` prints the `filter.count`th event `filter` matches.
pub struct Trigger {
    pub watch: String,
    pub filter: EventFilter,
    /// The armed step as messages name it, e.g. `killPeer b`.
    pub what: String,
    pub act: Act,
    pub line: u32,
    pub fired: Arc<AtomicBool>,
    /// Matching events seen so far.
    pub seen: AtomicUsize,
}

impl Trigger {
    pub fn new(watch: &str, filter: EventFilter, what: String, act: Act, line: u32) -> Self {
        Trigger {
            watch: watch.to_string(),
            filter,
            what,
            act,
            line,
            fired: Arc::new(AtomicBool::new(false)),
            seen: AtomicUsize::new(0),
        }
    }
}

/// The run's armed triggers, shared with every peer's reader thread.
pub type Triggers = Arc<Mutex<Vec<Trigger>>>;

/// Fires (once each) the triggers that `watch` printing `v` sets off: those
/// for which `v` is the `count`th matching event.
pub(super) fn fire_triggers(triggers: &Triggers, watch: &str, v: &Value) {
    if v["type"] != "event" {
        return;
    }
    for t in lock(triggers).iter() {
        if t.watch != watch || !t.filter.matches(v) {
            continue;
        }
        let nth = t.seen.fetch_add(1, Ordering::SeqCst) + 1;
        if nth == t.filter.count && !t.fired.swap(true, Ordering::SeqCst) {
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
            let seen = t.seen.load(Ordering::SeqCst);
            let why = if seen == 0 {
                "the event never came".to_string()
            } else {
                format!("only {seen} such event(s) came")
            };
            (
                t.line,
                format!(
                    "{} on {}:{} was armed but {why}",
                    t.what,
                    t.watch,
                    t.filter.describe()
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

    fn filter(
        event: &str,
        game: Option<&str>,
        pattern: Option<Value>,
        count: usize,
    ) -> EventFilter {
        EventFilter {
            event: event.into(),
            game: game.map(String::from),
            pattern,
            count,
        }
    }

    fn chunk(game: &str, source: &str) -> Value {
        json!({ "type": "event", "event": "download-chunk-finished",
                "data": { "game_id": game, "source": source } })
    }

    #[test]
    fn a_counted_trigger_fires_on_the_nth_match_only() {
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = runs.clone();
        let trigger = Trigger::new(
            "c",
            filter(
                "download-chunk-finished",
                Some("g"),
                Some(json!({ "source": "a" })),
                3,
            ),
            "killPeer a".into(),
            Act::Run(Box::new(move || {
                counter.fetch_add(1, Ordering::SeqCst);
            })),
            9,
        );
        let triggers: Triggers = Arc::new(Mutex::new(vec![trigger]));
        // Two matches, and lines that do not count: another source, another
        // game, another peer.
        fire_triggers(&triggers, "c", &chunk("g", "a"));
        fire_triggers(&triggers, "c", &chunk("g", "b"));
        fire_triggers(&triggers, "c", &chunk("h", "a"));
        fire_triggers(&triggers, "d", &chunk("g", "a"));
        fire_triggers(&triggers, "c", &chunk("g", "a"));
        assert_eq!(runs.load(Ordering::SeqCst), 0, "fired before the 3rd match");
        assert_eq!(
            unfired(&triggers),
            [(
                9,
                "killPeer a on c:download-chunk-finished for g matching {\"source\":\"a\"} (the 3rd) was armed but only 2 such event(s) came".to_string()
            )]
        );
        fire_triggers(&triggers, "c", &chunk("g", "a"));
        assert_eq!(runs.load(Ordering::SeqCst), 1, "the 3rd match fires it");
        // Later matches do not fire it again.
        fire_triggers(&triggers, "c", &chunk("g", "a"));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(unfired(&triggers).is_empty());
    }

    #[test]
    fn wait_nth_returns_the_nth_match_or_an_earlier_stop() {
        let log = EventLog::default();
        for source in ["a", "b", "a", "a"] {
            log.push(chunk("g", source));
        }
        let soon = || Instant::now() + Duration::from_millis(50);
        let never = |_: &Value| false;
        let f = filter(
            "download-chunk-finished",
            Some("g"),
            Some(json!({ "source": "a" })),
            2,
        );
        assert_eq!(log.wait_nth(0, soon(), &f, never).map(|l| l.seq), Some(2));
        // Counted from `seq` on.
        assert_eq!(log.wait_nth(1, soon(), &f, never).map(|l| l.seq), Some(3));
        let third = EventFilter {
            count: 3,
            ..f.clone()
        };
        assert_eq!(
            log.wait_nth(0, soon(), &third, never).map(|l| l.seq),
            Some(3)
        );
        let fourth = EventFilter {
            count: 4,
            ..f.clone()
        };
        assert!(log.wait_nth(0, soon(), &fourth, never).is_none());
        // A stop line before the nth match ends the wait.
        let is_b = |v: &Value| v["data"]["source"] == "b";
        assert_eq!(
            log.wait_nth(0, soon(), &third, is_b).map(|l| l.seq),
            Some(1)
        );
    }

    #[test]
    fn ordinals_read_as_english() {
        let got: Vec<String> = [1, 2, 3, 4, 10, 11, 12, 13, 21, 22, 40, 101, 111]
            .into_iter()
            .map(ordinal)
            .collect();
        assert_eq!(
            got,
            [
                "1st", "2nd", "3rd", "4th", "10th", "11th", "12th", "13th", "21st", "22nd", "40th",
                "101st", "111th"
            ]
        );
    }

    #[test]
    fn a_trigger_kills_its_target_once_on_its_event_for_its_game() -> anyhow::Result<()> {
        let mut target = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()?;
        let pgid = target.id() as i32;
        let trigger = Trigger::new(
            "a",
            filter("download-begin", Some("g"), None, 2),
            "killPeer b".into(),
            Act::Kill { pgid },
            7,
        );
        let fired = trigger.fired.clone();
        let triggers: Triggers = Arc::new(Mutex::new(vec![trigger]));
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
        let trigger = Trigger::new(
            "client",
            filter("download-chunk-finished", Some("cnc4"), None, 1),
            "partition".into(),
            Act::Run(Box::new(move || {
                counted.fetch_add(1, Ordering::SeqCst);
            })),
            12,
        );
        let fired = trigger.fired.clone();
        let triggers: Triggers = Arc::new(Mutex::new(vec![trigger]));
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
                "partition on client:download-chunk-finished for cnc4 was armed but the event never came"
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
        let triggers: Triggers = Arc::new(Mutex::new(vec![Trigger::new(
            "client",
            filter("download-begin", None, None, 1),
            "heal".into(),
            Act::Run(Box::new(move || {
                counted.fetch_add(1, Ordering::SeqCst);
            })),
            3,
        )]));
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
