//! The typed form of every scenario step. Lua tables are deserialised into
//! these structs (`deny_unknown_fields`), so a typo is a load-time error.

use crate::checker::actions::redirect::{ExpectFileStep, RedirectStep};
use crate::units::{Size, Span};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use std::collections::BTreeMap;
use std::fmt;

/// A value that may be written as one item or a list: `to = "a"` or `to = {"a","b"}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T: Clone> OneOrMany<T> {
    pub fn to_vec(&self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// `peer{}`: start a real peer process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PeerStep {
    pub name: String,
    /// A folder in the run workspace (used in place) or, failing that, one
    /// relative to the scenario file (copied into the run folder).
    pub games: Option<String>,
    pub chunk_size: Option<Size>,
    /// The peer's own catalog: a `game.db` or a catalog source (`.json`),
    /// relative to the scenario file. The run's default catalog otherwise.
    pub catalog: Option<String>,
    /// Another peer binary speaking the same control protocol.
    pub exec: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    pub timeout: Option<Span>,
}

/// `connect{}`: `from` dials each peer in `to`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectStep {
    pub from: String,
    pub to: OneOrMany<String>,
    pub timeout: Option<Span>,
}

/// `waitGame{}`: a `list-games` row appears with the given fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WaitGameStep {
    pub peer: String,
    pub game: String,
    pub peer_count: Option<u64>,
    pub version: Option<String>,
    pub timeout: Option<Span>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DownloadOutcome {
    #[default]
    Finished,
    Failed,
}

/// `download{}`: run a download and wait for its outcome.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadStep {
    pub peer: String,
    pub game: String,
    #[serde(default)]
    pub expect: DownloadOutcome,
    pub timeout: Option<Span>,
}

/// `expectChunks{}`: who served which bytes in the last download of a game.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExpectChunksStep {
    pub peer: String,
    pub game: String,
    pub only_from: Option<Vec<String>>,
    #[serde(default)]
    pub never_from: Vec<String>,
    #[serde(default)]
    pub served_by: Vec<String>,
    #[serde(default)]
    pub balanced: bool,
    pub totals: Option<BTreeMap<String, Size>>,
    pub chunks: Option<usize>,
}

/// `expectSameFiles{}`: two peers' copies of a game hold the same bytes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectSameFilesStep {
    pub game: String,
    pub source: String,
    pub target: String,
}

/// `killPeer{ on = {...} }`: the event that triggers the kill.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillOn {
    pub peer: String,
    pub event: String,
    pub game: Option<String>,
}

/// `killPeer{}`: SIGKILL a peer now, or when an event appears.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillPeerStep {
    pub name: String,
    pub on: Option<KillOn>,
}

/// One file of `makeGame{ files = {...} }`: a string is its contents.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileSpec {
    pub contents: Option<String>,
    pub size: Option<Size>,
    pub sparse: bool,
    pub seed: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpecTable {
    contents: Option<String>,
    size: Option<Size>,
    #[serde(default)]
    sparse: bool,
    seed: Option<u64>,
}

impl<'de> Deserialize<'de> for FileSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FileSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("file contents (a string) or a table {size, sparse, seed, contents}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FileSpec, E> {
                Ok(FileSpec {
                    contents: Some(v.to_string()),
                    ..FileSpec::default()
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<FileSpec, A::Error> {
                let t = FileSpecTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                match (&t.contents, &t.size) {
                    (Some(_), Some(_)) => {
                        return Err(de::Error::custom("give `contents` or `size`, not both"));
                    }
                    (None, None) => {
                        return Err(de::Error::custom("a file needs `contents` or `size`"));
                    }
                    _ => {}
                }
                if t.sparse && t.seed.is_some() {
                    return Err(de::Error::custom("a sparse file is all zeros; drop `seed`"));
                }
                Ok(FileSpec {
                    contents: t.contents,
                    size: t.size,
                    sparse: t.sparse,
                    seed: t.seed,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// `makeGame{}`: create a game root in the run workspace.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MakeGameStep {
    /// Games folder in the workspace, e.g. `"a"` creates `a/<id>/`.
    pub dir: String,
    pub id: String,
    /// The sentinel's version; the catalog version when omitted.
    pub version: Option<String>,
    /// Write `version.ini` (default true); false makes a root that is not ready.
    #[serde(default = "yes")]
    pub sentinel: bool,
    #[serde(default)]
    pub files: BTreeMap<String, FileSpec>,
}

fn yes() -> bool {
    true
}

/// Every action a scenario can use.
#[derive(Debug, Clone)]
pub enum Action {
    Peer(PeerStep),
    Connect(ConnectStep),
    WaitGame(WaitGameStep),
    Download(DownloadStep),
    ExpectChunks(ExpectChunksStep),
    ExpectSameFiles(ExpectSameFilesStep),
    KillPeer(KillPeerStep),
    MakeGame(MakeGameStep),
    Redirect(RedirectStep),
    ExpectFile(ExpectFileStep),
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Peer(_) => "peer",
            Action::Connect(_) => "connect",
            Action::WaitGame(_) => "waitGame",
            Action::Download(_) => "download",
            Action::ExpectChunks(_) => "expectChunks",
            Action::ExpectSameFiles(_) => "expectSameFiles",
            Action::KillPeer(_) => "killPeer",
            Action::MakeGame(_) => "makeGame",
            Action::Redirect(_) => "redirect",
            Action::ExpectFile(_) => "expectFile",
        }
    }
}

/// A step and where it was written.
#[derive(Debug, Clone)]
pub struct Step {
    pub line: u32,
    pub action: Action,
}
