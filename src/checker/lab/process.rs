//! The lab's process reaper: every peer runs in a process group of its own,
//! tracked here, so a Ctrl-C, a SIGTERM, a panic or a scenario timeout
//! SIGKILLs every group this checker started (and removes scratch folders
//! that must not outlive an interrupted run).

use crate::sync::lock;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Process groups of every live peer, for the signal handler and panics.
static PROCESS_GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Puts a peer started in its own process group (`process_group(0)`, so
/// its pid is the group id) under the care of `kill_all_peers`.
pub fn track_process_group(pid: i32) {
    lock(&PROCESS_GROUPS).push(pid);
}

/// The peer's group is gone (reaped); a later `kill_all_peers` skips it.
fn untrack_process_group(pid: i32) {
    lock(&PROCESS_GROUPS).retain(|p| *p != pid);
}

/// SIGKILLs the process group `pgid` without untracking it: for a group
/// that is still to be reaped by its owner (a kill trigger's target).
pub(super) fn sigkill_group(pgid: i32) {
    // SAFETY: kill(2) with a negative pid signals a process group we created.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// SIGKILLs a peer's process group (its pid, see `track_process_group`)
/// and stops tracking it, before the caller reaps it: once reaped, the pid
/// may be reused by a process that is not ours.
pub fn kill_group(pid: i32) {
    sigkill_group(pid);
    untrack_process_group(pid);
}

/// Kills every peer process group this process started.
pub fn kill_all_peers() {
    let groups: Vec<i32> = lock(&PROCESS_GROUPS).clone();
    groups.into_iter().for_each(kill_group);
}

/// Process groups of child checkers (a folder run's scenarios). Each reaps
/// its own peers and LAN on SIGTERM, so an interrupt asks before it kills.
static CHECKER_GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Puts a child checker started with `process_group(0)` under the care of
/// the interrupt handler.
pub fn track_checker_group(pid: i32) {
    lock(&CHECKER_GROUPS).push(pid);
}

/// The child checker was reaped; its pid may be reused.
pub fn untrack_checker_group(pid: i32) {
    lock(&CHECKER_GROUPS).retain(|p| *p != pid);
}

/// SIGTERMs every child checker (which then kills its peers and removes
/// its LAN), waits up to `grace` for them to go, then SIGKILLs the rest.
pub fn terminate_checkers(grace: std::time::Duration) {
    let groups: Vec<i32> = lock(&CHECKER_GROUPS).clone();
    if groups.is_empty() {
        return;
    }
    // SAFETY: kill(2) on process groups this process created.
    let alive = |g: i32| unsafe { libc::kill(-g, 0) == 0 };
    for g in &groups {
        unsafe {
            libc::kill(-g, libc::SIGTERM);
        }
    }
    let until = std::time::Instant::now() + grace;
    while groups.iter().any(|g| alive(*g)) && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    groups.into_iter().for_each(sigkill_group);
}

/// Scratch folders that an interrupt removes once the peers are dead (the
/// bench's: it has no logs worth keeping, and gigabytes of game).
static SCRATCH_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Removes `dir` if the run is interrupted; `forget_scratch_dir` undoes it.
pub fn remove_on_interrupt(dir: &Path) {
    lock(&SCRATCH_DIRS).push(dir.to_path_buf());
}

pub fn forget_scratch_dir(dir: &Path) {
    lock(&SCRATCH_DIRS).retain(|d| d != dir);
}

/// Installs the Ctrl-C / SIGTERM handler that reaps peers before exiting.
pub fn install_signal_handler() {
    let _ = ctrlc::set_handler(|| {
        terminate_checkers(std::time::Duration::from_secs(5));
        kill_all_peers();
        super::network::remove_all_live();
        for dir in lock(&SCRATCH_DIRS).drain(..) {
            let _ = std::fs::remove_dir_all(dir);
        }
        eprintln!("interrupted: peers killed");
        std::process::exit(130);
    });
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        terminate_checkers(std::time::Duration::from_secs(5));
        kill_all_peers();
        super::network::remove_all_live();
        previous(info);
    }));
}
