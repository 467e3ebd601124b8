//! Actions that shape the run itself, with their step types: `log`, `sleep`.

use crate::checker::lab::Lab;
use crate::checker::outcome::StepResult;
use crate::checker::params::Span;
use crate::checker::registry::{StepCtx, StepParams};
use serde::Deserialize;

/// `log{}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogStep {
    pub message: String,
}

impl StepParams for LogStep {}

/// `sleep{}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SleepStep {
    pub duration: Span,
}

impl StepParams for SleepStep {}

pub fn log(_lab: &mut Lab, s: &LogStep, _cx: &StepCtx) -> StepResult {
    println!("      {}", s.message);
    Ok(())
}

pub fn sleep(_lab: &mut Lab, s: &SleepStep, _cx: &StepCtx) -> StepResult {
    crate::checker::lab::deadline::sleep(s.duration.0);
    Ok(())
}
