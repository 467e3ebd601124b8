//! One module per family of actions. Each family owns the parameter types of
//! its actions (with their load-time checks) beside the handlers that run
//! them; `checker::registry` lists every action once and dispatches to them.
//! Shared helpers for polling and matching live here.

pub mod chunks;
pub mod control;
pub mod disk;
pub mod expect;
pub mod flow;
pub mod fs;
pub mod fuzz;
pub mod install;
pub mod network;
pub mod observe;
pub mod peers;
pub mod redirect;
pub mod resources;
pub mod transfer;

use crate::checker::lab::{Lab, PeerProc};
use crate::checker::outcome::Failure;
use crate::units::Span;
use serde_json::Value;
use std::time::{Duration, Instant};

/// How long to wait when a step gives no `timeout`.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);
/// How long a single control command may take to be answered.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

pub fn timeout_or(t: Option<Span>, default: Duration) -> Duration {
    t.map(|t| t.0).unwrap_or(default)
}

/// The named peer, or an invalid-scenario failure.
pub fn peer<'a>(lab: &'a mut Lab, name: &str) -> Result<&'a mut PeerProc, Failure> {
    lab.peer(name)
        .map_err(|e| Failure::invalid(format!("{e:#}")))
}

/// The failure of a step whose command the peer refused (with `code` and
/// `message`) when `expected` says what should have happened instead.
pub fn refused(expected: String, code: &str, message: &str, peers: &[&str]) -> Failure {
    Failure::expect(expected, format!("error {code}: {message}"), peers)
}

/// Runs `check` until it reports success or `timeout` passes. `check`
/// returns `Ok(Ok(()))` when satisfied and `Ok(Err(seen))` while not yet;
/// on timeout the last `seen` is returned.
pub fn poll(
    timeout: Duration,
    mut check: impl FnMut() -> Result<Result<(), String>, Failure>,
) -> Result<Result<(), String>, Failure> {
    let deadline = crate::checker::lab::deadline::cap(Instant::now() + timeout);
    loop {
        let seen = match check()? {
            Ok(()) => return Ok(Ok(())),
            Err(seen) => seen,
        };
        if Instant::now() >= deadline {
            return Ok(Err(seen));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether `value` contains `pattern`: objects match key by key (extra keys
/// in `value` are fine, recursively); everything else must be equal.
pub fn json_contains(value: &Value, pattern: &Value) -> bool {
    match (value, pattern) {
        (Value::Object(v), Value::Object(p)) => p
            .iter()
            .all(|(k, pv)| v.get(k).is_some_and(|vv| json_contains(vv, pv))),
        // Lua writes whole numbers as integers, peers may print floats.
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => value == pattern,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn contains_is_a_recursive_subset_match() {
        let v = json!({"a": 1, "b": {"c": "x", "d": [1, 2]}, "e": 2.0});
        assert!(json_contains(&v, &json!({})));
        assert!(json_contains(&v, &json!({"b": {"c": "x"}})));
        assert!(json_contains(&v, &json!({"e": 2})));
        assert!(!json_contains(&v, &json!({"b": {"c": "y"}})));
        assert!(!json_contains(&v, &json!({"b": {"d": [1]}})));
        assert!(!json_contains(&v, &json!({"z": null})));
    }

    #[test]
    fn a_refusal_shows_its_code_and_message() {
        let f = refused(
            "a accepts install g".into(),
            "not-downloaded",
            "no root",
            &["a"],
        );
        assert_eq!(
            f,
            Failure::expect(
                "a accepts install g",
                "error not-downloaded: no root",
                &["a"]
            )
        );
    }
}
