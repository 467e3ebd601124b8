//! Names and cleanup. Every namespace a LAN makes is called
//! `lsck-<pid>-<start>-<lan>-h<index>`: the owning checker's pid and its
//! start time (clock ticks since boot, from /proc/<pid>/stat), so a
//! leftover is recognised as stale once that process is gone even if the
//! pid was reused, and two checkers never pick the same name. Live
//! namespaces are also listed here for the Ctrl-C handler.

use super::netns;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

pub const PREFIX: &str = "lsck-";

/// Namespaces of every live LAN in this process.
static LIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn live() -> MutexGuard<'static, Vec<String>> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// The start time of process `pid` (field 22 of /proc/<pid>/stat).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// The name prefix for the next LAN of this process.
pub fn next_lan_prefix() -> String {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let pid = std::process::id();
    let start = start_time(pid).unwrap_or(0);
    let n = COUNT.fetch_add(1, Ordering::SeqCst);
    format!("{PREFIX}{pid}-{start}-{n}")
}

/// The owner (pid, start time) a lab name carries.
fn owner(name: &str) -> Option<(u32, u64)> {
    let mut parts = name.strip_prefix(PREFIX)?.split('-');
    let pid = parts.next()?.parse().ok()?;
    let start = parts.next()?.parse().ok()?;
    Some((pid, start))
}

/// True when `name` is a lab name whose owning process is gone.
pub fn is_stale(name: &str) -> bool {
    match owner(name) {
        Some((pid, start)) => start_time(pid) != Some(start),
        None => false,
    }
}

/// Lists a namespace for the Ctrl-C handler.
pub fn track(name: &str) {
    live().push(name.to_string());
}

/// The LAN removed `name` itself.
pub fn untrack(name: &str) {
    live().retain(|n| n != name);
}

/// Removes the namespaces of every live LAN of this process: for the
/// signal handler, which exits without running destructors.
pub fn remove_all_live() {
    let names: Vec<String> = live().drain(..).collect();
    for name in names {
        let _ = netns::delete(&name);
    }
}

/// Removes the namespaces left by checkers that are gone (a SIGKILLed run):
/// called at the start of every run. Returns the names removed.
pub fn reap_stale() -> Vec<String> {
    let mut removed = Vec::new();
    for name in netns::list() {
        if is_stale(&name) && netns::delete(&name).is_ok() {
            removed.push(name);
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_a_live_owner_and_a_dead_one_is_stale() {
        let prefix = next_lan_prefix();
        let name = format!("{prefix}-h0");
        assert!(name.starts_with(PREFIX));
        assert!(!is_stale(&name), "this process owns {name}");
        assert_ne!(prefix, next_lan_prefix(), "each LAN its own prefix");
        let pid = std::process::id();
        let start = start_time(pid).unwrap();
        // The same pid with another start time is a reused pid: stale.
        assert!(is_stale(&format!("{PREFIX}{pid}-{}-0-h0", start + 1)));
        // No such pid at all (above pid_max): stale.
        assert!(is_stale(&format!("{PREFIX}999999999-{start}-0-h0")));
        assert!(!is_stale("other-netns"), "names not ours are never touched");
        assert!(!is_stale("lsck-garbage"));
    }
}
