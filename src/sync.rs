//! Locking that survives a panicked holder.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, taking the data even if a thread panicked while holding it:
/// the data here (logs, lists of pids) stays usable after a panic, and the
/// reaper must still run then.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
