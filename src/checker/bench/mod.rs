//! `lanspread-checker bench …`: measurements, never assertions. Each figure
//! comes from real processes and is printed for people (README, docs).
//!
//! - `transfer`: one real download between peer processes (loopback or LAN);
//! - `extract`: the stream extractor alone, fed from memory;
//! - `lab`: what the network lab's impairments really do, through a probe.

pub mod extract;
pub mod lab;
pub mod transfer;
