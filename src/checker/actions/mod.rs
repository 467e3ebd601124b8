//! One module per family of actions; `run` dispatches a step to its family.

pub mod expect;
pub mod fs;
pub mod peers;
pub mod redirect;
pub mod transfer;

use crate::checker::lab::Lab;
use crate::checker::outcome::StepResult;
use crate::checker::steps::{Action, Step};

pub fn run(lab: &mut Lab, step: &Step) -> StepResult {
    match &step.action {
        Action::Peer(s) => peers::peer(lab, s),
        Action::Connect(s) => peers::connect(lab, s),
        Action::KillPeer(s) => peers::kill_peer(lab, s, step.line),
        Action::WaitGame(s) => transfer::wait_game(lab, s),
        Action::Download(s) => transfer::download(lab, s),
        Action::ExpectChunks(s) => expect::chunks(lab, s),
        Action::ExpectSameFiles(s) => expect::same_files(lab, s),
        Action::MakeGame(s) => fs::make_game(lab, s),
        Action::Redirect(s) => redirect::redirect(lab, s),
        Action::ExpectFile(s) => redirect::expect_file(lab, s),
    }
}
