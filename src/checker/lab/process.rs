//! The lab's process reaper: every peer runs in a process group of its own,
//! tracked here, so a Ctrl-C, a SIGTERM, a panic or a scenario timeout
//! SIGKILLs every group this checker started (and removes scratch folders
//! that must not outlive an interrupted run).

use crate::sync::lock;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, Ordering};

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

/// The signal that interrupted the run (0: none yet). Set by the signal
/// handler itself, so the main thread sees it before it returns a code.
static INTERRUPTED: AtomicI32 = AtomicI32::new(0);
/// The write end of the self-pipe the handler wakes the reaper thread with.
static WAKE: AtomicI32 = AtomicI32::new(-1);

/// The exit code of a run ended by `signal`: 128 + its number (130 for
/// SIGINT, 143 for SIGTERM, 129 for SIGHUP), as shells report it.
pub fn interrupt_exit_code(signal: i32) -> i32 {
    128 + signal
}

extern "C" fn on_signal(signal: libc::c_int) {
    // Only async-signal-safe work here: an atomic store and write(2).
    let _ = INTERRUPTED.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
    let byte = signal as u8;
    // SAFETY: writes one byte from a live local to the pipe we opened.
    unsafe {
        libc::write(WAKE.load(Ordering::SeqCst), (&byte as *const u8).cast(), 1);
    }
}

/// Reaps everything an interrupted run started, then exits 128 + signal.
fn reap_and_exit(signal: i32) -> ! {
    terminate_checkers(std::time::Duration::from_secs(5));
    kill_all_peers();
    super::network::remove_all_live();
    for dir in lock(&SCRATCH_DIRS).drain(..) {
        let _ = std::fs::remove_dir_all(dir);
    }
    let name = match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    };
    eprintln!("interrupted by {name}: peers killed");
    std::process::exit(interrupt_exit_code(signal));
}

/// Installs (once) the SIGINT / SIGTERM / SIGHUP handler that reaps peers,
/// child checkers and LANs, then exits 128 + the signal's number; and a
/// panic hook that reaps them too.
pub fn install_signal_handler() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills the two descriptors it is given.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            eprintln!(
                "cannot install the signal handler: {}",
                std::io::Error::last_os_error()
            );
            return;
        }
        WAKE.store(fds[1], Ordering::SeqCst);
        let read_end = fds[0];
        std::thread::spawn(move || {
            let mut byte = 0u8;
            loop {
                // SAFETY: reads one byte into a live local.
                let n = unsafe { libc::read(read_end, (&mut byte as *mut u8).cast(), 1) };
                if n == 1 {
                    reap_and_exit(i32::from(byte));
                }
                if n < 0
                    && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
                {
                    continue;
                }
                return;
            }
        });
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: a zeroed sigaction with our handler and an empty mask.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(signal, &action, std::ptr::null_mut());
            }
        }
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            terminate_checkers(std::time::Duration::from_secs(5));
            kill_all_peers();
            super::network::remove_all_live();
            previous(info);
        }));
    });
}

/// The exit code a signal that interrupted this run gives it, if one did.
pub fn interrupted() -> Option<i32> {
    match INTERRUPTED.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(interrupt_exit_code(signal)),
    }
}

/// A run's exit code: `code`, unless a signal interrupted it. Then the
/// handler's thread is reaping and will exit 128 + signal; this waits for
/// it (bounded), so the main thread cannot end the process first with the
/// code of the steps the signal cut short.
pub fn exit_code_unless_interrupted(code: i32) -> i32 {
    let signal = INTERRUPTED.load(Ordering::SeqCst);
    if signal == 0 {
        return code;
    }
    std::thread::sleep(std::time::Duration::from_secs(30));
    interrupt_exit_code(signal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interrupts_exit_as_shells_report_signals() {
        assert_eq!(interrupt_exit_code(libc::SIGINT), 130);
        assert_eq!(interrupt_exit_code(libc::SIGTERM), 143);
        assert_eq!(interrupt_exit_code(libc::SIGHUP), 129);
        // Not interrupted: the run's own code.
        assert_eq!(exit_code_unless_interrupted(1), 1);
    }
}
