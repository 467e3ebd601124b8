//! Actions that shape the run itself: `log`, `sleep`.

use crate::checker::outcome::StepResult;
use crate::checker::steps::{LogStep, SleepStep};

pub fn log(s: &LogStep) -> StepResult {
    println!("      {}", s.message);
    Ok(())
}

pub fn sleep(s: &SleepStep) -> StepResult {
    std::thread::sleep(s.duration.0);
    Ok(())
}
