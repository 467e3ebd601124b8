//! The scenario deadline (`scenario{ timeout = … }`), known to every wait
//! so that a step that waits on no peer (`sleep`, an `expectNoEvent`
//! window, a poll between commands) also ends when time runs out; killing
//! the peers ends only the waits on peers.

use crate::sync::lock;
use std::sync::Mutex;
use std::time::{Duration, Instant};

static DEADLINE: Mutex<Option<Instant>> = Mutex::new(None);

/// Sets (or with `None` clears) the run's deadline.
pub fn set(deadline: Option<Instant>) {
    *lock(&DEADLINE) = deadline;
}

/// `wanted`, or the scenario deadline when that comes first.
pub fn cap(wanted: Instant) -> Instant {
    cap_with(*lock(&DEADLINE), wanted)
}

fn cap_with(deadline: Option<Instant>, wanted: Instant) -> Instant {
    deadline.map_or(wanted, |d| d.min(wanted))
}

/// Whether the scenario deadline has passed.
pub fn passed() -> bool {
    lock(&DEADLINE).is_some_and(|d| Instant::now() >= d)
}

/// Sleeps for `span`, or until the scenario deadline when that comes first.
pub fn sleep(span: Duration) {
    let until = cap(Instant::now() + span);
    let now = Instant::now();
    if until > now {
        std::thread::sleep(until - now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earlier_of_the_two_wins() {
        let now = Instant::now();
        let later = now + Duration::from_secs(20);
        assert_eq!(cap_with(None, later), later);
        assert_eq!(cap_with(Some(now), later), now);
        assert_eq!(cap_with(Some(later), now), now);
    }
}
