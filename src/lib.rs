//! lanspread-checker: a LAN game-distribution peer and a Lua scenario checker
//! that drives real peer processes through their control protocol.

pub mod catalog;
pub mod checker;
pub mod fixtures;
pub mod manifest;
pub mod paths;
pub mod peer;
pub mod protocol;
pub mod rar;
pub mod redirect;
pub mod sync;
pub mod syncfs;
pub mod units;
