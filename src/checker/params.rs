//! Parameter pieces shared by the step types of several action families:
//! one-or-many values, hex bytes, answer kinds, and the load-time form of
//! the "a relative path stays inside its folder" rule (`crate::paths`).
//! Sizes and spans are `crate::units` types, re-exported here.

use serde::Deserialize;
use serde::de::{self, Deserializer};
use std::path::Path;

pub use crate::units::{Size, Span};

/// A path relative to the workspace or a peer's games folder stays inside
/// it. The run joins it with `paths::join_inside`, whose rule does not
/// depend on the folder, so the same rule decides here.
pub fn check_inside(what: &str, rel: &str) -> Result<(), String> {
    match crate::paths::collapse(rel) {
        Some(_) => Ok(()),
        None => Err(format!(
            "{what} {rel:?} leaves the folder it is relative to (an absolute path, or `..` too far up)"
        )),
    }
}

/// A path relative to the scenario file may reach the scenario folder's
/// parent, the project, but nothing above it (`fs::scenario_path`).
pub fn check_in_project(what: &str, rel: &str) -> Result<(), String> {
    let joined = Path::new("scenarios").join(rel);
    match crate::paths::collapse(&joined.to_string_lossy()) {
        Some(_) => Ok(()),
        None => Err(format!(
            "{what} {rel:?} leaves the project folder (the scenario folder's parent)"
        )),
    }
}

/// A value that may be written as one item or a list: `to = "a"` or `to = {"a","b"}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T: Clone> OneOrMany<T> {
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        match self {
            OneOrMany::One(t) => std::slice::from_ref(t).iter(),
            OneOrMany::Many(v) => v.iter(),
        }
    }

    pub fn to_vec(&self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// `#[serde(default = "yes")]`: a flag that is on unless written `false`.
pub fn yes() -> bool {
    true
}

/// What a peer answers a command with: `"result"` or `"error"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnswerKind {
    #[default]
    Result,
    Error,
}

/// Bytes written in hex (`hex = "deadbeef"`), decoded when the file loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hex {
    /// As written, for messages.
    pub text: String,
    pub bytes: Vec<u8>,
}

impl Hex {
    /// Reads a hex string; `field` names it when it is not hex or empty (no
    /// bytes patch nothing and match anything).
    fn named<'de, D: Deserializer<'de>>(d: D, field: &str) -> Result<Hex, D::Error> {
        let text = String::deserialize(d)?;
        match hex::decode(&text) {
            Ok(bytes) if bytes.is_empty() => Err(de::Error::custom(format!(
                "`{field}` is empty: give at least one byte"
            ))),
            Ok(bytes) => Ok(Hex { text, bytes }),
            Err(e) => Err(de::Error::custom(format!(
                "`{field}` {text:?} is not hex: {e}"
            ))),
        }
    }
}

pub fn hex_field<'de, D: Deserializer<'de>>(d: D) -> Result<Hex, D::Error> {
    Hex::named(d, "hex")
}

pub fn bytes_hex_field<'de, D: Deserializer<'de>>(d: D) -> Result<Hex, D::Error> {
    Hex::named(d, "bytes.hex")
}

/// Which matching event an `on`/`after` trigger fires on: a whole number,
/// at least 1 (`count = 10`: the 10th).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "u64")]
pub struct Count(pub usize);

impl TryFrom<u64> for Count {
    type Error = String;
    fn try_from(n: u64) -> Result<Self, String> {
        match usize::try_from(n) {
            Ok(n) if n >= 1 => Ok(Count(n)),
            _ => Err(format!(
                "`count` is {n}: give the matching event to fire on, 1 for the first"
            )),
        }
    }
}

/// `on = { peer, event, game?, match?, count? }`: the event a trigger
/// waits for (`killPeer`, `impair`, `partition`, `heal`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct On {
    /// The peer whose events count.
    pub peer: String,
    pub event: String,
    /// Only events of this game.
    pub game: Option<String>,
    /// Only events whose data contains this table (as `expectEvent`'s).
    #[serde(rename = "match")]
    pub pattern: Option<serde_json::Value>,
    /// Fire on the `count`th matching event (default 1).
    pub count: Option<Count>,
}

impl On {
    pub fn filter(&self) -> crate::checker::lab::EventFilter {
        crate::checker::lab::EventFilter {
            event: self.event.clone(),
            game: self.game.clone(),
            pattern: self.pattern.clone(),
            count: self.count.map_or(1, |c| c.0),
        }
    }
}
