//! Folding child checkers' exit codes into one: the folder run exits with
//! the worst. The table's codes are ordered by how much they say is wrong
//! with the run, which is their numeric order: harness (3) > invalid file
//! (2) > failed expectation (1) > pass (0).

use crate::checker::outcome::exit;

/// A child's exit status on the checker's table: a code outside it (a
/// child killed by a signal, 130 after Ctrl-C) means the harness failed.
pub fn of_child(code: Option<i32>) -> i32 {
    match code {
        Some(c @ (exit::PASS | exit::EXPECTATION | exit::INVALID | exit::HARNESS)) => c,
        _ => exit::HARNESS,
    }
}

/// The worst of `codes` (pass when there are none).
pub fn worst(codes: impl IntoIterator<Item = i32>) -> i32 {
    codes
        .into_iter()
        .map(|c| of_child(Some(c)))
        .max()
        .unwrap_or(exit::PASS)
}

/// The word for a code in the summary table.
pub fn word(code: i32) -> &'static str {
    match code {
        exit::PASS => "PASS",
        exit::EXPECTATION => "FAIL",
        exit::INVALID => "INVALID",
        _ => "HARNESS",
    }
}

/// The failure kind `summary.json` uses for a code.
pub fn kind(code: i32) -> &'static str {
    match code {
        exit::EXPECTATION => "expectation",
        exit::INVALID => "invalid",
        _ => "harness",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_code_wins() {
        assert_eq!(worst([]), 0);
        assert_eq!(worst([0, 0]), 0);
        assert_eq!(worst([0, 1, 0]), 1);
        assert_eq!(worst([1, 2, 1]), 2);
        assert_eq!(worst([2, 3, 0]), 3);
        assert_eq!(
            worst([1, 130]),
            3,
            "an interrupted child is a harness failure"
        );
    }

    #[test]
    fn a_signal_or_strange_code_is_a_harness_failure() {
        assert_eq!(of_child(None), 3);
        assert_eq!(of_child(Some(101)), 3);
        assert_eq!(of_child(Some(-1)), 3);
        assert_eq!(of_child(Some(2)), 2);
    }
}
