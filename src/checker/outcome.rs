//! How a step fails, and which exit code each kind of failure maps to.

/// A failed step.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The system under test did not do what the scenario expects (exit 1).
    Expectation {
        expected: String,
        seen: String,
        /// Peers whose logs explain the failure.
        peers: Vec<String>,
    },
    /// The scenario itself is wrong in a way only visible at run time (exit 2).
    Invalid { message: String },
    /// The harness could not do its job, e.g. a peer did not start (exit 3).
    Harness { message: String, peers: Vec<String> },
}

pub type StepResult = Result<(), Failure>;

impl Failure {
    pub fn expect(expected: impl Into<String>, seen: impl Into<String>, peers: &[&str]) -> Self {
        Failure::Expectation {
            expected: expected.into(),
            seen: seen.into(),
            peers: peers.iter().map(|p| p.to_string()).collect(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Failure::Invalid {
            message: message.into(),
        }
    }

    pub fn harness(e: anyhow::Error, peers: &[&str]) -> Self {
        Failure::Harness {
            message: format!("{e:#}"),
            peers: peers.iter().map(|p| p.to_string()).collect(),
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::Expectation { .. } => exit::EXPECTATION,
            Failure::Invalid { .. } => exit::INVALID,
            Failure::Harness { .. } => exit::HARNESS,
        }
    }

    pub fn peers(&self) -> &[String] {
        match self {
            Failure::Expectation { peers, .. } | Failure::Harness { peers, .. } => peers,
            Failure::Invalid { .. } => &[],
        }
    }
}

/// The checker's exit codes.
pub mod exit {
    pub const PASS: i32 = 0;
    pub const EXPECTATION: i32 = 1;
    pub const INVALID: i32 = 2;
    pub const HARNESS: i32 = 3;
}
