//! The typed form of every scenario step. Lua tables are deserialised into
//! these structs (`deny_unknown_fields`), so a typo is a load-time error.

use crate::checker::actions::redirect::RedirectStep;
use crate::units::{Size, Span};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// A path relative to the workspace or a peer's games folder stays inside
/// it. The run joins it with `fs::inside`, whose rule does not depend on the
/// folder, so the same call decides here.
fn check_inside(what: &str, rel: &str) -> Result<(), String> {
    match crate::checker::actions::fs::inside(Path::new(""), rel) {
        Ok(_) => Ok(()),
        Err(_) => Err(format!(
            "{what} {rel:?} leaves the folder it is relative to (an absolute path, or `..` too far up)"
        )),
    }
}

/// A path relative to the scenario file may reach the scenario folder's
/// parent, the project, but nothing above it (`fs::scenario_path`).
fn check_in_project(what: &str, rel: &str) -> Result<(), String> {
    let joined = Path::new("scenarios").join(rel);
    match crate::checker::actions::fs::inside(Path::new(""), &joined.to_string_lossy()) {
        Ok(_) => Ok(()),
        Err(_) => Err(format!(
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
    /// The peer must never change its games folder (checked at the end).
    #[serde(default)]
    pub readonly: bool,
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

impl PeerStep {
    fn check(&self) -> Result<(), String> {
        // `games` is tried in the workspace first, but it must at least be
        // usable from the scenario file.
        if let Some(games) = &self.games {
            check_in_project("`games`", games)?;
        }
        if let Some(catalog) = &self.catalog {
            check_in_project("`catalog`", catalog)?;
        }
        Ok(())
    }
}

/// `connect{}`: `from` dials each peer in `to`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectStep {
    pub from: String,
    pub to: OneOrMany<String>,
    /// `"result"` (connected) or `"error"` (the peer must refuse).
    #[serde(default)]
    pub expect: AnswerKind,
    /// With `expect = "error"`: the error code the peer must answer with.
    pub code: Option<String>,
    pub timeout: Option<Span>,
}

impl ConnectStep {
    fn check(&self) -> Result<(), String> {
        if self.code.is_some() && self.expect != AnswerKind::Error {
            return Err("`code` describes a refusal; add expect = \"error\"".into());
        }
        Ok(())
    }
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

impl DownloadOutcome {
    /// The event suffix: `download-finished`, `install-failed`, …
    pub fn name(self) -> &'static str {
        match self {
            DownloadOutcome::Finished => "finished",
            DownloadOutcome::Failed => "failed",
        }
    }

    /// A step that does not wait cannot see a failure (`download`,
    /// `streamInstall`).
    pub fn check_waited(self, wait: bool) -> Result<(), String> {
        if !wait && self == DownloadOutcome::Failed {
            return Err(
                "`wait = false` cannot expect \"failed\": nothing waits for the outcome".into(),
            );
        }
        Ok(())
    }
}

/// `download{}`: run a download and (unless `wait = false`) wait for its outcome.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadStep {
    pub peer: String,
    pub game: String,
    /// Install right after the download (`download-finished` then the
    /// install events); the step then waits for the install outcome too.
    #[serde(default)]
    pub install: bool,
    #[serde(default)]
    pub expect: DownloadOutcome,
    /// `false`: pass once the peer accepted the command, so later steps can
    /// act while the download runs.
    #[serde(default = "yes")]
    pub wait: bool,
    pub timeout: Option<Span>,
}

impl DownloadStep {
    fn check(&self) -> Result<(), String> {
        self.expect.check_waited(self.wait)
    }
}

/// `cancelDownload{}`: ask a peer to stop its running download of a game.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelDownloadStep {
    pub peer: String,
    pub game: String,
    /// Send the cancel the moment the peer prints this event for the game
    /// (counted from its last `download`/`streamInstall` step): mid-transfer.
    pub after: Option<String>,
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

/// `expectThroughput{}`: the last download's `download-finished` figures
/// are positive and agree with each other.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectThroughputStep {
    pub peer: String,
    pub game: String,
}

/// One group of uploads in `expectOverlap{ uploads = {...} }`: those to a
/// peer, of a game, or both.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadGroup {
    pub to: Option<String>,
    pub game: Option<String>,
}

/// `expectOverlap{}`: in a source's own event order, at some moment every
/// group has an upload in flight (`upload-begin` seen, `upload-end` not yet).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectOverlapStep {
    pub peer: String,
    pub uploads: Vec<UploadGroup>,
}

impl ExpectOverlapStep {
    fn check(&self) -> Result<(), String> {
        if self.uploads.len() < 2
            || self
                .uploads
                .iter()
                .any(|u| u.to.is_none() && u.game.is_none())
        {
            return Err("needs at least two upload groups, each with `to` and/or `game`".into());
        }
        Ok(())
    }
}

/// `expectSameFiles{}`: two peers' copies of a game hold the same bytes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectSameFilesStep {
    pub game: String,
    pub source: String,
    pub target: String,
    /// Compare the installed `local/` trees instead of the roots without
    /// them (`local` itself is a Lua keyword).
    #[serde(default)]
    pub installed: bool,
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

/// Largest file that goes into a `rar` archive (archives are built in memory).
pub const MAX_RAR_MEMBER: u64 = 64 << 20;

/// One file of `makeGame{ files = {...} }`: a string is its contents.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileSpec {
    pub contents: Option<String>,
    pub size: Option<Size>,
    pub sparse: bool,
    pub seed: Option<u64>,
    /// A RAR archive (stored entries) of these files instead.
    pub rar: Option<BTreeMap<String, FileSpec>>,
    /// With `rar`: set the archive's solid flag.
    pub solid: bool,
    /// With `rar`: file headers claim this compression method (data stays stored).
    pub method: Option<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpecTable {
    contents: Option<String>,
    size: Option<Size>,
    #[serde(default)]
    sparse: bool,
    seed: Option<u64>,
    rar: Option<BTreeMap<String, FileSpec>>,
    #[serde(default)]
    solid: bool,
    method: Option<u8>,
}

impl<'de> Deserialize<'de> for FileSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FileSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "file contents (a string) or a table {contents | size, sparse, seed | rar, solid, method}",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FileSpec, E> {
                Ok(FileSpec {
                    contents: Some(v.to_string()),
                    ..FileSpec::default()
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<FileSpec, A::Error> {
                let t = FileSpecTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let kinds = [t.contents.is_some(), t.size.is_some(), t.rar.is_some()];
                match kinds.iter().filter(|k| **k).count() {
                    0 => {
                        return Err(de::Error::custom(
                            "a file needs `contents`, `size` or `rar`",
                        ));
                    }
                    1 => {}
                    _ => {
                        return Err(de::Error::custom(
                            "give one of `contents`, `size` or `rar`, not several",
                        ));
                    }
                }
                if (t.solid || t.method.is_some()) && t.rar.is_none() {
                    return Err(de::Error::custom(
                        "`solid` and `method` only apply to a `rar` archive",
                    ));
                }
                if t.sparse && t.seed.is_some() {
                    return Err(de::Error::custom("a sparse file is all zeros; drop `seed`"));
                }
                if let Some(m) = t.method
                    && m > 5
                {
                    return Err(de::Error::custom(format!(
                        "`method` {m}: RAR methods are 0 to 5"
                    )));
                }
                for (rel, spec) in t.rar.iter().flatten() {
                    check_rar_member(rel, spec).map_err(de::Error::custom)?;
                }
                Ok(FileSpec {
                    contents: t.contents,
                    size: t.size,
                    sparse: t.sparse,
                    seed: t.seed,
                    rar: t.rar,
                    solid: t.solid,
                    method: t.method,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// What a `rar = {…}` member may be: a valid entry name holding `contents`
/// or up to `MAX_RAR_MEMBER` generated bytes (`size`, `seed`).
fn check_rar_member(rel: &str, spec: &FileSpec) -> Result<(), String> {
    crate::rar::check_name(rel).map_err(|e| format!("{e:#}"))?;
    if spec.rar.is_some() || spec.sparse {
        return Err(format!(
            "archive member {rel}: only `contents` or `size`/`seed` are allowed inside `rar`"
        ));
    }
    if let Some(size) = spec.size
        && size.0 > MAX_RAR_MEMBER
    {
        return Err(format!(
            "archive member {rel}: {} is over the 64 MiB limit",
            size.0
        ));
    }
    Ok(())
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
    /// Shorthand for the game's archive `<id>.eti`: a file spec like those
    /// in `files` (e.g. `{ size = "512MiB", sparse = true }`).
    pub eti: Option<FileSpec>,
}

impl MakeGameStep {
    fn check(&self) -> Result<(), String> {
        check_inside("`dir`", &self.dir)?;
        check_inside("`id`", &self.id)?;
        for rel in self.files.keys() {
            check_inside("`files` entry", rel)?;
        }
        let eti = format!("{}.eti", self.id);
        if self.eti.is_some() && self.files.contains_key(&eti) {
            return Err(format!("{eti} is given both as `eti` and in `files`"));
        }
        Ok(())
    }
}

pub(crate) fn yes() -> bool {
    true
}

/// `restartPeer{}`: graceful shutdown, then the same games and state dirs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartPeerStep {
    pub name: String,
    pub timeout: Option<Span>,
}

/// `shutdownPeer{}`: `shutdown` and wait for the process to exit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownPeerStep {
    pub name: String,
    pub timeout: Option<Span>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnswerKind {
    #[default]
    Result,
    Error,
}

/// What `send{}` sends: exactly one of its `cmd` and `raw`.
#[derive(Debug, Clone, PartialEq)]
pub enum SendLine {
    /// The command as a table with a string `cmd`, e.g. `{ cmd = "status" }`;
    /// an `id` is added.
    Cmd(serde_json::Value),
    /// A raw line sent as it is (for malformed input); answered without id.
    Raw(String),
}

/// `send{}`: one raw control command and a check of its answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawSendStep")]
pub struct SendStep {
    pub peer: String,
    pub line: SendLine,
    pub expect: AnswerKind,
    /// Fields the answer must contain (`data` of a result; `code`/`error` of an error).
    pub pattern: Option<serde_json::Value>,
    pub timeout: Option<Span>,
}

/// `send{}` as written; turned into a `SendStep` (or refused) when the file
/// loads, so a run never meets both or neither of `cmd` and `raw`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSendStep {
    peer: String,
    cmd: Option<serde_json::Value>,
    raw: Option<String>,
    #[serde(default)]
    expect: AnswerKind,
    #[serde(rename = "match")]
    pattern: Option<serde_json::Value>,
    timeout: Option<Span>,
}

impl TryFrom<RawSendStep> for SendStep {
    type Error = String;
    fn try_from(r: RawSendStep) -> Result<Self, String> {
        let line = match (r.cmd, r.raw) {
            (Some(cmd), None) => {
                if cmd.get("cmd").is_none_or(|c| !c.is_string()) {
                    return Err("`cmd` must be a table with a string `cmd` field".into());
                }
                SendLine::Cmd(cmd)
            }
            (None, Some(raw)) => SendLine::Raw(raw),
            _ => return Err("give exactly one of `cmd` or `raw`".into()),
        };
        Ok(Self {
            peer: r.peer,
            line,
            expect: r.expect,
            pattern: r.pattern,
            timeout: r.timeout,
        })
    }
}

/// One expected row of `expectGames{ games = { id = row } }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GameRow {
    pub peer_count: Option<u64>,
    pub version: Option<String>,
    pub downloaded: Option<bool>,
    pub installed: Option<bool>,
    /// `"Downloaded"`, `"LocalOnly"` or `"Remote"` (see docs/PROTOCOL.md).
    pub availability: Option<String>,
}

/// `expectGames{}`: the whole `list-games` picture on a peer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectGamesStep {
    pub peer: String,
    #[serde(default)]
    pub games: BTreeMap<String, GameRow>,
    #[serde(default)]
    pub absent: Vec<String>,
    /// No rows besides those in `games`.
    #[serde(default)]
    pub only: bool,
    pub timeout: Option<Span>,
}

/// One expected entry of `expectPeers{ peers = { name = … } }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerRow {
    /// Exactly these advertised games (ID → raw version).
    pub games: Option<BTreeMap<String, String>>,
}

/// `expectPeers{}`: what `list-peers` shows on a peer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectPeersStep {
    pub peer: String,
    pub count: Option<usize>,
    #[serde(default)]
    pub peers: BTreeMap<String, PeerRow>,
    #[serde(default)]
    pub absent: Vec<String>,
    pub timeout: Option<Span>,
}

/// Where an event search starts: the whole log, this step, or an earlier
/// step (named by its `label`, which the loader turns into its line).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum From {
    #[default]
    Start,
    ThisStep,
    Line(u32),
    Label(String),
}

impl<'de> Deserialize<'de> for From {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = From;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"start\", \"step\", an earlier step's label or its line number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<From, E> {
                match v {
                    "start" => Ok(From::Start),
                    "step" => Ok(From::ThisStep),
                    "" => Err(E::custom(
                        "use \"start\", \"step\", a label or a line number",
                    )),
                    label => Ok(From::Label(label.to_string())),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<From, E> {
                u32::try_from(v)
                    .map(From::Line)
                    .map_err(|_| E::custom("a line number must be positive"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<From, E> {
                self.visit_i64(v as i64)
            }
        }
        d.deserialize_any(V)
    }
}

/// `expectEvent{}`: a matching event appears (waits up to `timeout`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectEventStep {
    pub peer: String,
    pub event: String,
    #[serde(rename = "match")]
    pub pattern: Option<serde_json::Value>,
    #[serde(default)]
    pub from: From,
    /// At least this many matching events (default 1).
    pub count: Option<usize>,
    pub timeout: Option<Span>,
}

/// `expectSequence{}`: the matching events, consecutive repeats collapsed,
/// are exactly this list of names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectSequenceStep {
    pub peer: String,
    pub sequence: Vec<String>,
    #[serde(rename = "match")]
    pub pattern: Option<serde_json::Value>,
    #[serde(default)]
    pub from: From,
    pub timeout: Option<Span>,
}

/// `expectNoEvent{}`: no matching event since `from`, nor during `window`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectNoEventStep {
    pub peer: String,
    pub event: String,
    #[serde(rename = "match")]
    pub pattern: Option<serde_json::Value>,
    #[serde(default)]
    pub from: From,
    pub window: Option<Span>,
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

fn hex_field<'de, D: Deserializer<'de>>(d: D) -> Result<Hex, D::Error> {
    Hex::named(d, "hex")
}

fn bytes_hex_field<'de, D: Deserializer<'de>>(d: D) -> Result<Hex, D::Error> {
    Hex::named(d, "bytes.hex")
}

/// `bytes = { offset = …, hex = "…" }` of `expectFile`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BytesAt {
    pub offset: Size,
    #[serde(deserialize_with = "bytes_hex_field")]
    pub hex: Hex,
}

/// `expectFile{}`: a file exists with the given properties.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExpectFileStep {
    /// Resolve `path` in this peer's games dir (else in the workspace).
    pub peer: Option<String>,
    pub path: String,
    pub size: Option<Size>,
    pub sha256: Option<String>,
    pub contents: Option<String>,
    /// Same bytes as this file, relative to the scenario file.
    pub same_as: Option<String>,
    pub bytes: Option<BytesAt>,
}

impl ExpectFileStep {
    fn check(&self) -> Result<(), String> {
        check_inside("`path`", &self.path)?;
        // A typo here would only ever show up as a mismatch at run time.
        if let Some(sha) = &self.sha256
            && (sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(format!("`sha256` {sha:?} is not 64 hex digits"));
        }
        if let Some(other) = &self.same_as {
            check_in_project("`sameAs`", other)?;
        }
        Ok(())
    }
}

/// `expectNoFile{}`: nothing exists at the path.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectNoFileStep {
    pub peer: Option<String>,
    pub path: String,
}

/// `expectEntries{}`: a folder holds nothing besides these entries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectEntriesStep {
    pub peer: Option<String>,
    pub path: String,
    /// Names allowed directly in the folder; `{}`: empty or absent.
    pub only: Vec<String>,
}

/// `expectStatus{}`: a peer's active operations and outbound transfers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExpectStatusStep {
    pub peer: String,
    pub active_operations: Option<BTreeMap<String, serde_json::Value>>,
    pub active_outbound_transfers: Option<BTreeMap<String, u64>>,
    pub timeout: Option<Span>,
}

/// `fsCreateFile{}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FsCreateFileStep {
    pub peer: Option<String>,
    pub path: String,
    pub contents: Option<String>,
    /// A sparse file of this size instead of `contents`.
    pub size: Option<Size>,
}

impl FsCreateFileStep {
    fn check(&self) -> Result<(), String> {
        check_inside("`path`", &self.path)?;
        if self.contents.is_some() && self.size.is_some() {
            return Err("give `contents` or `size`, not both".into());
        }
        Ok(())
    }
}

/// `fsCopyFile{}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FsCopyStep {
    pub peer: Option<String>,
    pub from: String,
    pub to: String,
    /// `from` is relative to the scenario file instead.
    #[serde(default)]
    pub from_scenario: bool,
}

impl FsCopyStep {
    fn check(&self) -> Result<(), String> {
        if self.from_scenario {
            check_in_project("`from`", &self.from)?;
        } else {
            check_inside("`from`", &self.from)?;
        }
        check_inside("`to`", &self.to)
    }
}

/// `fsRenameFile{}`, `fsRenameFolder{}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FsMoveStep {
    pub peer: Option<String>,
    pub from: String,
    pub to: String,
}

impl FsMoveStep {
    fn check(&self) -> Result<(), String> {
        check_inside("`from`", &self.from)?;
        check_inside("`to`", &self.to)
    }
}

/// `fsDeleteFile{}`, `fsCreateFolder{}`, `fsDeleteFolder{}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FsPathStep {
    pub peer: Option<String>,
    pub path: String,
}

impl FsPathStep {
    /// A delete must name something below its folder: `""`, `"."` or
    /// `"a/.."` would remove the whole workspace or games folder.
    fn check_delete(&self) -> Result<(), String> {
        check_inside("`path`", &self.path)?;
        if Path::new(&self.path)
            .components()
            .all(|c| c == std::path::Component::CurDir)
            || crate::checker::actions::fs::inside(Path::new(""), &self.path)
                .is_ok_and(|p| p.as_os_str().is_empty())
        {
            return Err(format!(
                "`path` {:?} is the folder itself; name what to delete inside it",
                self.path
            ));
        }
        Ok(())
    }
}

/// `fsAppend{}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FsAppendStep {
    pub peer: Option<String>,
    pub path: String,
    pub contents: String,
}

/// `fsPatch{}`: overwrite (or XOR) bytes of an existing file in place.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FsPatchStep {
    pub peer: Option<String>,
    pub path: String,
    pub offset: Size,
    #[serde(deserialize_with = "hex_field")]
    pub hex: Hex,
    /// XOR the bytes in instead (`hex = "01"` surely changes one byte).
    #[serde(default)]
    pub xor: bool,
}

/// `log{}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogStep {
    pub message: String,
}

/// `sleep{}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SleepStep {
    pub duration: Span,
}

/// Parses one action's Lua table into its typed step.
pub type Parser = fn(&mlua::Lua, mlua::Value) -> mlua::Result<Action>;

/// One list defines every action: its Lua name, its variant and its
/// parameter struct. It generates `Action`, `Action::name` and `ACTIONS`.
macro_rules! actions {
    ($($name:literal => $variant:ident($ty:ty)),* $(,)?) => {
        /// Every action a scenario can use.
        #[derive(Debug, Clone)]
        pub enum Action {
            $($variant($ty),)*
        }

        impl Action {
            pub fn name(&self) -> &'static str {
                match self {
                    $(Action::$variant(_) => $name,)*
                }
            }
        }

        /// Every action name with the parser for its table.
        pub const ACTIONS: &[(&str, Parser)] = &[
            $(($name, |lua, v| {
                use mlua::LuaSerdeExt;
                let action = Action::$variant(lua.from_value(v)?);
                action.check().map_err(mlua::Error::RuntimeError)?;
                Ok(action)
            }),)*
        ];
    };
}

actions! {
    "peer" => Peer(PeerStep),
    "restartPeer" => RestartPeer(RestartPeerStep),
    "shutdownPeer" => ShutdownPeer(ShutdownPeerStep),
    "connect" => Connect(ConnectStep),
    "killPeer" => KillPeer(KillPeerStep),
    "send" => Send(SendStep),
    "waitGame" => WaitGame(WaitGameStep),
    "download" => Download(DownloadStep),
    "cancelDownload" => CancelDownload(CancelDownloadStep),
    "expectGames" => ExpectGames(ExpectGamesStep),
    "expectPeers" => ExpectPeers(ExpectPeersStep),
    "expectEvent" => ExpectEvent(ExpectEventStep),
    "expectNoEvent" => ExpectNoEvent(ExpectNoEventStep),
    "expectSequence" => ExpectSequence(ExpectSequenceStep),
    "expectStatus" => ExpectStatus(ExpectStatusStep),
    "expectChunks" => ExpectChunks(ExpectChunksStep),
    "expectThroughput" => ExpectThroughput(ExpectThroughputStep),
    "expectSameFiles" => ExpectSameFiles(ExpectSameFilesStep),
    "expectOverlap" => ExpectOverlap(ExpectOverlapStep),
    "expectFile" => ExpectFile(ExpectFileStep),
    "expectNoFile" => ExpectNoFile(ExpectNoFileStep),
    "expectEntries" => ExpectEntries(ExpectEntriesStep),
    "makeGame" => MakeGame(MakeGameStep),
    "redirect" => Redirect(RedirectStep),
    "fsCreateFile" => FsCreateFile(FsCreateFileStep),
    "fsCopyFile" => FsCopyFile(FsCopyStep),
    "fsRenameFile" => FsRenameFile(FsMoveStep),
    "fsDeleteFile" => FsDeleteFile(FsPathStep),
    "fsAppend" => FsAppend(FsAppendStep),
    "fsPatch" => FsPatch(FsPatchStep),
    "fsCreateFolder" => FsCreateFolder(FsPathStep),
    "fsRenameFolder" => FsRenameFolder(FsMoveStep),
    "fsDeleteFolder" => FsDeleteFolder(FsPathStep),
    "log" => Log(LogStep),
    "sleep" => Sleep(SleepStep),
    "fuzzCommand" => FuzzCommand(crate::checker::actions::fuzz::FuzzCommandStep),
    "fuzzAllCommands" => FuzzAllCommands(crate::checker::actions::fuzz::FuzzAllCommandsStep),
    "fuzzWire" => FuzzWire(crate::checker::actions::fuzz::FuzzWireStep),
    "install" => Install(crate::checker::actions::install::InstallStep),
    "uninstall" => Uninstall(crate::checker::actions::install::UninstallStep),
    "play" => Play(crate::checker::actions::install::PlayStep),
    "streamInstall" => StreamInstall(crate::checker::actions::install::StreamInstallStep),
    "watchDisk" => WatchDisk(crate::checker::actions::disk::WatchDiskStep),
    "expectDiskPeak" => ExpectDiskPeak(crate::checker::actions::disk::ExpectDiskPeakStep),
}

/// A step and where it was written.
#[derive(Debug, Clone)]
pub struct Step {
    pub line: u32,
    /// A name later steps can refer to (`from = "label"`).
    pub label: Option<String>,
    pub action: Action,
}

impl Action {
    /// What no single field's type rules out but the parameters alone
    /// decide (combinations that contradict each other, values no run could
    /// use, paths leaving their folder), rejected when the file loads rather
    /// than when the step runs.
    fn check(&self) -> Result<(), String> {
        match self {
            Action::Peer(s) => s.check(),
            Action::Connect(s) => s.check(),
            Action::Download(s) => s.check(),
            Action::ExpectFile(s) => s.check(),
            // Steps whose only parameter to check is `path`.
            Action::ExpectNoFile(ExpectNoFileStep { path, .. })
            | Action::ExpectEntries(ExpectEntriesStep { path, .. })
            | Action::FsCreateFolder(FsPathStep { path, .. })
            | Action::FsAppend(FsAppendStep { path, .. })
            | Action::FsPatch(FsPatchStep { path, .. }) => check_inside("`path`", path),
            Action::FsCreateFile(s) => s.check(),
            Action::FsCopyFile(s) => s.check(),
            Action::FsRenameFile(s) | Action::FsRenameFolder(s) => s.check(),
            Action::FsDeleteFile(s) | Action::FsDeleteFolder(s) => s.check_delete(),
            Action::MakeGame(s) => s.check(),
            Action::FuzzCommand(s) => s.check(),
            Action::FuzzAllCommands(s) => s.check(),
            Action::StreamInstall(s) => s.check(),
            Action::ExpectOverlap(s) => s.check(),
            _ => Ok(()),
        }
    }

    /// Where an event expectation starts looking, for the steps that have one.
    pub fn from_mut(&mut self) -> Option<&mut From> {
        match self {
            Action::ExpectEvent(s) => Some(&mut s.from),
            Action::ExpectNoEvent(s) => Some(&mut s.from),
            Action::ExpectSequence(s) => Some(&mut s.from),
            _ => None,
        }
    }
}
