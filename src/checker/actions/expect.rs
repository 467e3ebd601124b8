//! Expectations over what already happened or is on disk, with their step
//! types: `expectThroughput`, `expectSameFiles`, `expectOverlap`,
//! `expectFile`, `expectNoFile`, `expectEntries` (`expectChunks` has
//! `chunks.rs`).

use crate::checker::lab::Lab;
use crate::checker::outcome::{Failure, StepResult};
use crate::checker::params::{Hex, Size, bytes_hex_field, check_in_project, check_inside};
use crate::checker::registry::{StepCtx, StepParams};
use crate::manifest;
use serde::Deserialize;
use serde_json::Value;

/// `expectThroughput{}`: the last download's `download-finished` figures
/// are positive and agree with each other.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectThroughputStep {
    pub peer: String,
    pub game: String,
}

impl StepParams for ExpectThroughputStep {}

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

impl StepParams for ExpectOverlapStep {
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

impl StepParams for ExpectSameFilesStep {}

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

impl StepParams for ExpectFileStep {
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

impl StepParams for ExpectNoFileStep {
    fn check(&self) -> Result<(), String> {
        check_inside("`path`", &self.path)
    }
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

impl StepParams for ExpectEntriesStep {
    fn check(&self) -> Result<(), String> {
        check_inside("`path`", &self.path)
    }
}

pub fn same_files(lab: &mut Lab, s: &ExpectSameFilesStep, _cx: &StepCtx) -> StepResult {
    let root = |name: &str| -> Result<std::path::PathBuf, Failure> {
        let p = lab
            .peers
            .get(name)
            .ok_or_else(|| Failure::invalid(format!("no peer named {name:?}")))?;
        Ok(p.games_dir.join(&s.game))
    };
    let (mut src, mut dst) = (root(&s.source)?, root(&s.target)?);
    let mut skip = vec![crate::protocol::layout::LOCAL_DIR];
    let mut what = s.game.clone();
    if s.installed {
        // The installed trees, e.g. a stream-install against a plain install.
        src.push(crate::protocol::layout::LOCAL_DIR);
        dst.push(crate::protocol::layout::LOCAL_DIR);
        skip.clear();
        what = format!("{}/{}", s.game, crate::protocol::layout::LOCAL_DIR);
        if !dst.is_dir() {
            return Err(Failure::expect(
                format!("{}:{what} installed", s.target),
                "no such folder",
                &[&s.target],
            ));
        }
    }
    let want = manifest::build(&src, &skip).map_err(|e| Failure::harness(e, &[&s.source]))?;
    if want.is_empty() {
        return Err(Failure::invalid(format!(
            "{} has no files at {}",
            s.source,
            src.display()
        )));
    }
    let got = manifest::build(&dst, &skip).map_err(|e| Failure::harness(e, &[&s.target]))?;
    let diff = manifest::diff(&want, &got);
    if diff.is_empty() {
        return Ok(());
    }
    Err(Failure::expect(
        format!(
            "{}:{what} equal to {}:{what} ({} files)",
            s.target,
            s.source,
            want.len()
        ),
        diff.to_string(),
        &[&s.source, &s.target],
    ))
}

fn file_path(
    lab: &mut Lab,
    peer: &Option<String>,
    rel: &str,
) -> Result<std::path::PathBuf, Failure> {
    crate::checker::actions::fs::resolve(lab, peer, rel)
}

fn shown(peer: &Option<String>, rel: &str) -> String {
    match peer {
        Some(p) => format!("{p}:{rel}"),
        None => rel.to_string(),
    }
}

pub fn file(lab: &mut Lab, s: &ExpectFileStep, _cx: &StepCtx) -> StepResult {
    let path = file_path(lab, &s.peer, &s.path)?;
    let name = shown(&s.peer, &s.path);
    let peers: Vec<&str> = s.peer.iter().map(String::as_str).collect();
    let fail = |expected: String, seen: String| Err(Failure::expect(expected, seen, &peers));
    if !path.is_file() {
        return fail(format!("file {name}"), "no such file".into());
    }
    // Hashing reads the whole file (minutes for a sparse 4 GiB one): only
    // when a digest is compared.
    let size = std::fs::metadata(&path)
        .map_err(|e| Failure::harness(e.into(), &[]))?
        .len();
    let sha = if s.sha256.is_some() || s.same_as.is_some() {
        manifest::hash_file(&path)
            .map_err(|e| Failure::harness(e, &[]))?
            .1
    } else {
        String::new()
    };
    if let Some(want) = s.size
        && size != want.0
    {
        return fail(
            format!("{name} of {} bytes", want.0),
            format!("{size} bytes"),
        );
    }
    if let Some(want) = &s.sha256
        && !want.eq_ignore_ascii_case(&sha)
    {
        return fail(
            format!("{name} with sha256 {want}"),
            format!("sha256 {sha}"),
        );
    }
    if let Some(want) = &s.contents {
        let got = std::fs::read(&path).map_err(|e| Failure::harness(e.into(), &[]))?;
        if got != want.as_bytes() {
            return fail(
                format!("{name} containing {want:?}"),
                format!("{:?}", String::from_utf8_lossy(&got)),
            );
        }
    }
    if let Some(other) = &s.same_as {
        let other_path = crate::checker::actions::fs::scenario_path(lab, other)?;
        let (other_size, other_sha) = manifest::hash_file(&other_path)
            .map_err(|e| Failure::invalid(format!("sameAs {other:?}: {e:#}")))?;
        if (other_size, &other_sha) != (size, &sha) {
            return fail(
                format!("{name} equal to {other} ({other_size} bytes, sha256 {other_sha})"),
                format!("{size} bytes, sha256 {sha}"),
            );
        }
    }
    if let Some(at) = &s.bytes {
        let want = &at.hex.bytes;
        let mut got = vec![0u8; want.len()];
        let read = std::fs::File::open(&path).and_then(|f| {
            use std::os::unix::fs::FileExt;
            f.read_exact_at(&mut got, at.offset.0)
        });
        if read.is_err() || got != *want {
            return fail(
                format!("{name} holding {} at offset {}", at.hex.text, at.offset.0),
                if read.is_err() {
                    "the file is too short".into()
                } else {
                    hex::encode(&got)
                },
            );
        }
    }
    Ok(())
}

pub fn no_file(lab: &mut Lab, s: &ExpectNoFileStep, _cx: &StepCtx) -> StepResult {
    let path = file_path(lab, &s.peer, &s.path)?;
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(());
    }
    let peers: Vec<&str> = s.peer.iter().map(String::as_str).collect();
    let what = if path.is_dir() { "a folder" } else { "a file" };
    Err(Failure::expect(
        format!("nothing at {}", shown(&s.peer, &s.path)),
        format!("{what} at {}", path.display()),
        &peers,
    ))
}

pub fn entries(lab: &mut Lab, s: &ExpectEntriesStep, _cx: &StepCtx) -> StepResult {
    let path = file_path(lab, &s.peer, &s.path)?;
    let peers: Vec<&str> = s.peer.iter().map(String::as_str).collect();
    let name = shown(&s.peer, &s.path);
    let expected = || {
        if s.only.is_empty() {
            format!("nothing in {name}")
        } else {
            format!("nothing in {name} besides {}", s.only.join(", "))
        }
    };
    let listing = match std::fs::read_dir(&path) {
        Ok(l) => l,
        // No folder holds no entries.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            let what = if path.is_file() {
                "a file".to_string()
            } else {
                e.to_string()
            };
            return Err(Failure::expect(
                expected(),
                format!("{what} at {}", path.display()),
                &peers,
            ));
        }
    };
    let mut extra = Vec::new();
    for entry in listing {
        let entry = entry.map_err(|e| Failure::harness(e.into(), &peers))?;
        let file = entry.file_name().to_string_lossy().into_owned();
        if !s.only.contains(&file) {
            let kind = match entry.file_type() {
                Ok(t) if t.is_dir() => "/",
                _ => "",
            };
            extra.push(format!("{file}{kind}"));
        }
    }
    if extra.is_empty() {
        return Ok(());
    }
    extra.sort();
    Err(Failure::expect(
        expected(),
        format!("also {}", extra.join(", ")),
        &peers,
    ))
}

/// One `upload-begin` / `upload-end` of a source, in its output order.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadMark {
    pub begin: bool,
    pub upload: u64,
    pub peer_addr: String,
    pub game_id: String,
}

/// A group of `expectOverlap`: uploads to an address and/or of a game.
pub type Group = (Option<String>, Option<String>);

fn in_group(m: &UploadMark, g: &Group) -> bool {
    g.0.as_ref().is_none_or(|a| *a == m.peer_addr) && g.1.as_ref().is_none_or(|id| *id == m.game_id)
}

/// Whether distinct in-flight uploads can stand for every group at once
/// (a tiny search: groups and uploads in flight are a handful).
fn assignable(flight: &[&UploadMark], groups: &[Group], used: &mut Vec<u64>) -> bool {
    let Some((g, rest)) = groups.split_first() else {
        return true;
    };
    for m in flight {
        if in_group(m, g) && !used.contains(&m.upload) {
            used.push(m.upload);
            if assignable(flight, rest, used) {
                return true;
            }
            used.pop();
        }
    }
    false
}

/// The position (in `marks`) of the first moment at which every group has
/// its own upload in flight; `Err` summarises each group's uploads, one
/// entry per group.
pub fn first_overlap(marks: &[UploadMark], groups: &[Group]) -> Result<usize, Vec<String>> {
    let mut flight: Vec<&UploadMark> = Vec::new();
    for (i, m) in marks.iter().enumerate() {
        if m.begin {
            flight.push(m);
            if assignable(&flight, groups, &mut Vec::new()) {
                return Ok(i);
            }
        } else {
            flight.retain(|f| f.upload != m.upload);
        }
    }
    let spans: Vec<String> = groups
        .iter()
        .map(|g| {
            let at: Vec<usize> = (0..marks.len())
                .filter(|&i| in_group(&marks[i], g))
                .collect();
            let n = at.iter().filter(|&&i| marks[i].begin).count();
            match (at.first(), at.last()) {
                (Some(a), Some(b)) => format!("{n} uploads, events #{}–#{}", a + 1, b + 1),
                _ => "no uploads".to_string(),
            }
        })
        .collect();
    Err(spans)
}

pub fn overlap(lab: &mut Lab, s: &ExpectOverlapStep, _cx: &StepCtx) -> StepResult {
    let mut groups: Vec<Group> = Vec::new();
    let mut names = Vec::new();
    for u in &s.uploads {
        let addr =
            u.to.as_deref()
                .map(|name| super::peer(lab, name).map(|p| p.addr.clone()))
                .transpose()?;
        let to = u.to.as_ref().map(|t| format!("to {t}"));
        let of = u.game.as_ref().map(|g| format!("of {g}"));
        names.push(to.into_iter().chain(of).collect::<Vec<_>>().join(" "));
        groups.push((addr, u.game.clone()));
    }
    let log = super::peer(lab, &s.peer)?.log.clone();
    let marks: Vec<UploadMark> = log
        .since(0)
        .iter()
        .filter_map(|l| {
            let begin = match l.value["event"].as_str() {
                Some("upload-begin") => true,
                Some("upload-end") => false,
                _ => return None,
            };
            let d = &l.value["data"];
            Some(UploadMark {
                begin,
                upload: d["upload"].as_u64()?,
                peer_addr: d["peer_addr"].as_str()?.to_string(),
                game_id: d["game_id"].as_str()?.to_string(),
            })
        })
        .collect();
    first_overlap(&marks, &groups).map(|_| ()).map_err(|spans| {
        let seen = names
            .iter()
            .zip(spans)
            .map(|(n, sp)| format!("{n}: {sp}"))
            .collect::<Vec<_>>()
            .join("; ");
        Failure::expect(
            format!(
                "uploads on {} {} in flight at one moment",
                s.peer,
                names.join(" and ")
            ),
            format!("never together ({} upload events): {seen}", marks.len()),
            &[&s.peer],
        )
    })
}

/// Mbit/s per MiB/s: 2^20 × 8 / 10^6.
const MBIT_PER_MIB: f64 = 8.388608;

/// Checks one `download-finished` throughput object against the
/// `download-begin` it belongs to; `Err` says what is wrong.
pub fn check_throughput(tp: &Value, begin: &Value) -> Result<(), String> {
    let int = |k: &str| {
        tp[k]
            .as_u64()
            .ok_or_else(|| format!("`{k}` is not a whole number"))
    };
    let real = |k: &str| {
        tp[k]
            .as_f64()
            .ok_or_else(|| format!("`{k}` is not a number"))
    };
    let (bytes, ms, chunks) = (int("bytes")?, int("duration_ms")?, int("chunks")?);
    let (mib, mbit) = (real("mib_per_s")?, real("mbit_per_s")?);
    if bytes == 0 || ms == 0 || chunks == 0 || mib <= 0.0 || mbit <= 0.0 {
        return Err("every figure positive".into());
    }
    if Some(bytes) != begin["bytes"].as_u64() || Some(chunks) != begin["chunks"].as_u64() {
        return Err(format!(
            "bytes and chunks as announced in download-begin ({} bytes, {} chunks)",
            begin["bytes"], begin["chunks"]
        ));
    }
    let want_mib = bytes as f64 / (1u64 << 20) as f64 / (ms as f64 / 1000.0);
    if ((mib - want_mib) / want_mib).abs() > 1e-9 {
        return Err(format!(
            "mib_per_s = bytes / 2^20 / (duration_ms / 1000) = {want_mib}"
        ));
    }
    if ((mbit / mib) - MBIT_PER_MIB).abs() > 1e-9 {
        return Err(format!(
            "mbit_per_s / mib_per_s = {MBIT_PER_MIB} (is {})",
            mbit / mib
        ));
    }
    Ok(())
}

pub fn throughput(lab: &mut Lab, s: &ExpectThroughputStep, _cx: &StepCtx) -> StepResult {
    let Some(&start) = lab.downloads.get(&(s.peer.clone(), s.game.clone())) else {
        return Err(Failure::invalid(format!(
            "expectThroughput needs an earlier download{{ peer = {:?}, game = {:?} }}",
            s.peer, s.game
        )));
    };
    let log = super::peer(lab, &s.peer)?.log.clone();
    let game = |v: &Value| v["game_id"] == s.game.as_str();
    let begin = log.events(start, "download-begin").into_iter().find(game);
    let finished = log
        .events(start, "download-finished")
        .into_iter()
        .find(game);
    let (Some(begin), Some(finished)) = (begin, finished) else {
        return Err(Failure::expect(
            format!("download-begin and download-finished for {}", s.game),
            "not both (did the download finish?)".to_string(),
            &[&s.peer],
        ));
    };
    let tp = &finished["throughput"];
    check_throughput(tp, &begin).map_err(|want| {
        Failure::expect(
            format!("throughput with {want}"),
            tp.to_string(),
            &[&s.peer],
        )
    })
}

#[cfg(test)]
mod throughput_tests {
    use super::*;
    use serde_json::json;

    fn mark(begin: bool, upload: u64, to: &str, game: &str) -> UploadMark {
        UploadMark {
            begin,
            upload,
            peer_addr: to.into(),
            game_id: game.into(),
        }
    }

    #[test]
    fn overlap_needs_every_group_in_flight_at_one_moment() {
        let to = |a: &str| (Some(a.to_string()), None);
        let groups = [to("A"), to("B")];
        // A's uploads end before B's begin: served one after the other.
        let serial = [
            mark(true, 0, "A", "g"),
            mark(true, 1, "A", "g"),
            mark(false, 0, "A", "g"),
            mark(false, 1, "A", "g"),
            mark(true, 2, "B", "g"),
            mark(false, 2, "B", "g"),
        ];
        let err = first_overlap(&serial, &groups).expect_err("serial is no overlap");
        assert_eq!(err, ["2 uploads, events #1–#4", "1 uploads, events #5–#6"]);
        let mut side_by_side = serial.to_vec();
        side_by_side.swap(3, 4);
        assert_eq!(first_overlap(&side_by_side, &groups), Ok(3));
        // Groups that both match one upload need two distinct uploads.
        let same = [(None, Some("g".to_string())), (Some("A".to_string()), None)];
        assert!(first_overlap(&serial[..1], &same).is_err());
        assert_eq!(first_overlap(&serial, &same), Ok(1));
    }

    #[test]
    fn consistent_figures_pass_and_each_inconsistency_is_named() {
        let begin = json!({ "bytes": 2147483648u64, "chunks": 16 });
        let good = json!({ "bytes": 2147483648u64, "duration_ms": 4000, "chunks": 16,
            "mib_per_s": 512.0, "mbit_per_s": 512.0 * 8.388608 });
        assert_eq!(check_throughput(&good, &begin), Ok(()));
        let mut bad = good.clone();
        bad["mib_per_s"] = json!(500.0);
        assert!(check_throughput(&bad, &begin).is_err_and(|e| e.contains("2^20")));
        let mut bad = good.clone();
        bad["mbit_per_s"] = json!(512.0 * 8.0);
        assert!(check_throughput(&bad, &begin).is_err_and(|e| e.contains("8.388608")));
        let mut bad = good.clone();
        bad["duration_ms"] = json!(0);
        assert!(check_throughput(&bad, &begin).is_err_and(|e| e.contains("positive")));
        let mut bad = good.clone();
        bad["bytes"] = json!(1);
        assert!(check_throughput(&bad, &begin).is_err());
        assert!(check_throughput(&json!({}), &begin).is_err());
    }
}
