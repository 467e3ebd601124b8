//! What a download fetches: the file list every source must agree on, the
//! archives a stream-install fetches, and the split of files into chunks.

use crate::protocol::digest;
use crate::protocol::layout::{self, SENTINEL};
use crate::protocol::wire::FileDesc;
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

/// The archive extension of a game root.
pub const ARCHIVE_EXT: &str = ".eti";
/// Largest piece a streamed download asks for: streamed pieces wait in memory
/// until every earlier byte has arrived, so they must stay small.
pub const STREAM_CHUNK_MAX: u64 = 4 << 20;

/// One piece of one file, fetched from one source in one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The file's position in the list the chunks were planned from.
    pub file: usize,
    pub path: String,
    pub offset: u64,
    pub len: u64,
}

impl Chunk {
    /// The range this chunk is requested as: widened to whole digest blocks
    /// of its file (of `size` bytes), so every byte that arrives can be
    /// verified. An aligned chunk is its own request range.
    pub fn request_range(&self, size: u64) -> (u64, u64) {
        let start = self.offset / digest::BLOCK * digest::BLOCK;
        let end = (self.offset + self.len)
            .div_ceil(digest::BLOCK)
            .saturating_mul(digest::BLOCK)
            .min(size);
        (start, end.max(start))
    }

    /// Whether this chunk ends its file.
    pub fn is_last(&self, files: &[FileDesc]) -> bool {
        files
            .get(self.file)
            .is_some_and(|f| self.offset + self.len == f.size)
    }
}

/// Splits files into chunks of at most `chunk_size`; an empty file is one
/// empty chunk, so every file is announced by at least one chunk event.
pub fn plan_chunks(files: &[FileDesc], chunk_size: u64) -> Vec<Chunk> {
    // At least one chunk per file: exact for a game of small files, where
    // growing by doubling left up to half of 100,000 chunks' room unused.
    let mut out = Vec::with_capacity(files.len());
    for (file, f) in files.iter().enumerate() {
        if f.size == 0 {
            out.push(Chunk {
                file,
                path: f.path.clone(),
                offset: 0,
                len: 0,
            });
            continue;
        }
        let mut offset = 0;
        while offset < f.size {
            let len = chunk_size.min(f.size - offset);
            out.push(Chunk {
                file,
                path: f.path.clone(),
                offset,
                len,
            });
            offset += len;
        }
    }
    out
}

/// Checks that every source sent the same file list (paths and sizes);
/// names the first conflict otherwise.
pub fn agree(lists: &[(String, Vec<FileDesc>)]) -> Result<()> {
    let Some(((first_addr, first), others)) = lists.split_first() else {
        bail!("no source sent a file list");
    };
    // By path, so lists of 100,000 files compare in linear time; a sole
    // source has nothing to compare (no index of its 100,000 paths).
    if !others.is_empty() {
        let first_sizes: std::collections::HashMap<&str, u64> =
            first.iter().map(|f| (f.path.as_str(), f.size)).collect();
        for (addr, list) in others {
            let sizes: std::collections::HashMap<&str, u64> =
                list.iter().map(|f| (f.path.as_str(), f.size)).collect();
            for f in first {
                match sizes.get(f.path.as_str()) {
                    Some(&size) if size != f.size => bail!(
                        "file size conflict on {}: {} bytes at {first_addr}, {} bytes at {addr}",
                        f.path,
                        f.size,
                        size
                    ),
                    Some(_) => {}
                    None => bail!(
                        "file set conflict: {} is at {first_addr} but not at {addr}",
                        f.path
                    ),
                }
            }
            if let Some(g) = list
                .iter()
                .find(|g| !first_sizes.contains_key(g.path.as_str()))
            {
                bail!(
                    "file set conflict: {} is at {addr} but not at {first_addr}",
                    g.path
                );
            }
        }
    }
    check_paths(first)
}

/// The rules one source's file list must keep on its own, checked as it
/// arrives (a list that breaks one leaves its source out of the download,
/// `source-list-failed`): `check_paths`, and each file's digest count
/// matching its size (so a size near 2^63, which would need 2^43 digests,
/// cannot be listed).
pub fn check_list(files: &[FileDesc]) -> Result<()> {
    check_paths(files)?;
    for f in files {
        digest::check_list(f.size, &f.blocks).map_err(|e| anyhow::anyhow!("{}: {e}", f.path))?;
    }
    Ok(())
}

/// Every path relative, inside the root, not under `local/`, not a
/// reserved `.lanspread` name, listed once; and a `version.ini`.
fn check_paths(files: &[FileDesc]) -> Result<()> {
    let mut seen = BTreeSet::new();
    for f in files {
        layout::checked_rel_path(&f.path)?;
        if f.path.split('/').any(|c| c.starts_with(".lanspread")) {
            bail!("source offered a reserved path {:?}", f.path);
        }
        if !seen.insert(&f.path) {
            bail!("source listed {} twice", f.path);
        }
    }
    if !files.iter().any(|f| f.path == SENTINEL) {
        bail!("source file list has no {SENTINEL}");
    }
    Ok(())
}

/// What the digest vote decided (see `majority`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreed {
    /// The agreed list, each file with its majority digests.
    pub files: Vec<FileDesc>,
    /// (file index, source index) pairs of sources in the minority for a
    /// file: they are not asked for any of its bytes.
    pub minority: Vec<(usize, usize)>,
}

/// Decides each file's digests by strict majority among the sources'
/// lists (which `agree` found to match in paths and sizes): the digest list
/// that more than half of the sources sent wins; a source that sent another
/// one, or a malformed one, is in the minority for that file. No strict
/// majority (a tie, two sources that differ, all different) fails the
/// download. `lists` are in source order; the agreed list is the first
/// one's, taken over (not copied: a list is as long as the game).
pub fn majority(mut lists: Vec<(String, Vec<FileDesc>)>) -> Result<Agreed> {
    let Some((_, first)) = lists.first_mut() else {
        bail!("no source sent a file list");
    };
    let mut files = std::mem::take(first);
    let by_path: Vec<HashMap<&str, &FileDesc>> = lists[1..]
        .iter()
        .map(|(_, l)| l.iter().map(|f| (f.path.as_str(), f)).collect())
        .collect();
    let mut minority = Vec::new();
    let well_formed =
        |d: &FileDesc, size: u64| d.size == size && digest::check_list(d.size, &d.blocks).is_ok();
    for (i, f) in files.iter_mut().enumerate() {
        // Each source's vote: its list for this file, if well formed.
        let votes: Vec<Option<&Vec<digest::Digest>>> = std::iter::once(Some(&*f))
            .chain(by_path.iter().map(|m| m.get(f.path.as_str()).copied()))
            .map(|d| d.filter(|d| well_formed(d, f.size)).map(|d| &d.blocks))
            .collect();
        let winner = votes.iter().position(|v| {
            v.is_some() && 2 * votes.iter().filter(|w| *w == v).count() > votes.len()
        });
        let Some(winner) = winner else {
            let mut groups: Vec<(Option<&Vec<digest::Digest>>, Vec<&str>)> = Vec::new();
            for (v, (addr, _)) in votes.iter().zip(&lists) {
                match groups.iter_mut().find(|(g, _)| g == v) {
                    Some((_, who)) => who.push(addr),
                    None => groups.push((*v, vec![addr])),
                }
            }
            let said: Vec<String> = groups
                .iter()
                .map(|(v, who)| match v {
                    Some(_) => who.join(" and "),
                    None => format!("{} (malformed)", who.join(" and ")),
                })
                .collect();
            bail!(
                "no strict majority of the {} sources agrees on the digests of {}: {} differ",
                lists.len(),
                f.path,
                said.join(" vs ")
            );
        };
        for (source, v) in votes.iter().enumerate() {
            if *v != votes[winner] {
                minority.push((i, source));
            }
        }
        // The first source's digests are the file's own: only another
        // winner's are copied.
        let other = if votes[0] != votes[winner] {
            votes[winner].cloned()
        } else {
            None
        };
        if let Some(blocks) = other {
            f.blocks = blocks;
        }
    }
    Ok(Agreed { files, minority })
}

/// What a download leaves in its root while it runs (`.lanspread-download`):
/// the version and digests its bytes are for. The next download reuses
/// what is on disk only when both match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResumeMarker {
    pub version: String,
    /// `digest::list_id` of the agreed list.
    pub digests: String,
}

impl ResumeMarker {
    pub fn new(version: &str, files: &[FileDesc]) -> Self {
        Self {
            version: version.to_string(),
            digests: digest::list_id(
                files
                    .iter()
                    .map(|f| (f.path.as_str(), f.size, f.blocks.as_slice())),
            ),
        }
    }
}

/// The resume plan: which chunks need no fetch. Nothing is reused unless
/// the marker left by the interrupted download is the one this download
/// writes (same version, same digests); then a chunk is reused when every
/// digest block it touches verified on disk (`verified[file][block]`).
/// Empty chunks are always fetched (they cost nothing).
pub fn resume_plan(
    left: Option<&ResumeMarker>,
    want: &ResumeMarker,
    files: &[FileDesc],
    chunks: &[Chunk],
    verified: &[Vec<bool>],
) -> Vec<bool> {
    if left != Some(want) {
        return vec![false; chunks.len()];
    }
    chunks
        .iter()
        .map(|c| {
            let (Some(f), Some(ok)) = (files.get(c.file), verified.get(c.file)) else {
                return false;
            };
            if c.len == 0 {
                return false;
            }
            let (start, end) = c.request_range(f.size);
            let blocks = start / digest::BLOCK..end.div_ceil(digest::BLOCK);
            !blocks.is_empty()
                && blocks
                    .into_iter()
                    .all(|b| ok.get(b as usize) == Some(&true))
        })
        .collect()
}

/// A root's top-level archives, in path order: what install extracts.
pub fn root_archives(files: &[FileDesc]) -> Vec<FileDesc> {
    let mut out: Vec<FileDesc> = files
        .iter()
        .filter(|f| !f.path.contains('/') && f.path.ends_with(ARCHIVE_EXT))
        .cloned()
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// The files a stream fetches: the sources' root archives.
pub fn stream_files(files: &[FileDesc]) -> Result<Vec<FileDesc>> {
    let out = root_archives(files);
    if out.is_empty() {
        bail!("the sources' root has no {ARCHIVE_EXT} archive to stream");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(path: &str, size: u64) -> FileDesc {
        FileDesc::new(path, size)
    }

    /// A list with its digests, as a source sends it.
    fn listed(path: &str, size: u64) -> FileDesc {
        let blocks = (0..digest::block_count(size))
            .map(|i| digest::Digest([i as u8; 16]))
            .collect();
        FileDesc {
            path: path.into(),
            size,
            blocks,
        }
    }

    #[test]
    fn a_list_that_breaks_the_rules_on_its_own_is_refused() -> Result<()> {
        let good = vec![listed("a.eti", 3 << 20), listed("version.ini", 8)];
        check_list(&good)?;
        let with = |extra: FileDesc| {
            let mut l = good.clone();
            l.push(extra);
            check_list(&l).map_err(|e| e.to_string())
        };
        for (bad, want) in [
            (listed("../up.bin", 16), "escapes"),
            (listed("/abs/x.bin", 16), "escapes"),
            (listed("data/../../x.bin", 16), "escapes"),
            (listed("local/x.bin", 16), "local/"),
            (listed(".lanspread-download", 16), "reserved"),
            (listed("a.eti", 3 << 20), "twice"),
            // Near 2^63: it would need 2^43 digests.
            (
                FileDesc {
                    path: "huge.bin".into(),
                    size: (1 << 63) - 1,
                    blocks: vec![digest::Digest([0; 16])],
                },
                "huge.bin: 1 digests",
            ),
            (
                FileDesc::new("nodigests.bin", 5),
                "nodigests.bin: 0 digests",
            ),
        ] {
            match with(bad) {
                Err(e) => assert!(e.contains(want), "{e} !~ {want}"),
                Ok(()) => panic!("accepted (wanted {want})"),
            }
        }
        let no_sentinel = vec![listed("a.eti", 3 << 20)];
        assert!(check_list(&no_sentinel).is_err());
        Ok(())
    }

    #[test]
    fn chunks_cover_every_byte_once() {
        let files = [f("a.eti", 10), f("empty", 0), f("version.ini", 8)];
        let plan = plan_chunks(&files, 4);
        let spans: Vec<(&str, u64, u64)> = plan
            .iter()
            .map(|c| (c.path.as_str(), c.offset, c.len))
            .collect();
        assert_eq!(
            spans,
            vec![
                ("a.eti", 0, 4),
                ("a.eti", 4, 4),
                ("a.eti", 8, 2),
                ("empty", 0, 0),
                ("version.ini", 0, 4),
                ("version.ini", 4, 4)
            ]
        );
        // Each chunk knows its file, and which chunk ends it.
        assert!(plan.iter().all(|c| files[c.file].path == c.path));
        let last: Vec<bool> = plan.iter().map(|c| c.is_last(&files)).collect();
        assert_eq!(last, [false, false, true, true, false, true]);
    }

    #[test]
    fn a_stream_fetches_only_top_level_archives_in_path_order() -> Result<()> {
        let files = [
            f("version.ini", 8),
            f("z.eti", 3),
            f("docs/inner.eti", 5),
            f("a.eti", 4),
            f("readme.txt", 2),
        ];
        let picked: Vec<String> = stream_files(&files)?.into_iter().map(|f| f.path).collect();
        assert_eq!(picked, vec!["a.eti", "z.eti"]);
        let err = stream_files(&[f("version.ini", 8), f("data/x.eti", 1)])
            .expect_err("no top-level archive");
        assert!(err.to_string().contains("no .eti archive"), "{err}");
        Ok(())
    }

    #[test]
    fn size_conflicts_and_set_conflicts_are_named() {
        let a = ("A".to_string(), vec![f("x.eti", 10), f("version.ini", 8)]);
        let b = ("B".to_string(), vec![f("x.eti", 18), f("version.ini", 8)]);
        let c = ("C".to_string(), vec![f("version.ini", 8)]);
        let err = agree(&[a.clone(), b]).expect_err("conflict");
        assert!(
            err.to_string()
                .contains("file size conflict on x.eti: 10 bytes at A, 18 bytes at B")
        );
        let err = agree(&[a.clone(), c]).expect_err("set conflict");
        assert!(err.to_string().contains("x.eti is at A but not at C"));
        assert!(agree(&[a.clone(), a.clone()]).is_ok());
    }

    fn d(path: &str, size: u64, blocks: &[&str]) -> FileDesc {
        FileDesc {
            path: path.into(),
            size,
            blocks: blocks
                .iter()
                .map(|b| digest::Digest::from_hex(&b.repeat(32)).expect("test digest"))
                .collect(),
        }
    }

    /// `majority` of lists that `agree` passed.
    fn agreed(l: Vec<(String, Vec<FileDesc>)>) -> Result<Vec<(String, Vec<FileDesc>)>> {
        agree(&l)?;
        Ok(l)
    }

    fn lists(per_source: &[&[FileDesc]]) -> Vec<(String, Vec<FileDesc>)> {
        per_source
            .iter()
            .enumerate()
            .map(|(i, l)| (format!("S{i}"), l.to_vec()))
            .collect()
    }

    #[test]
    fn digests_are_decided_by_strict_majority() -> Result<()> {
        let good = d("a.eti", 10, &["a"]);
        let bad = d("a.eti", 10, &["b"]);
        let ini = d("version.ini", 8, &["c"]);
        // 2 against 1: the two win, the one is the minority for a.eti only.
        let l = lists(&[
            &[good.clone(), ini.clone()],
            &[bad.clone(), ini.clone()],
            &[good.clone(), ini.clone()],
        ]);
        agree(&l)?;
        let got = majority(l)?;
        assert_eq!(got.files, vec![good.clone(), ini.clone()]);
        assert_eq!(got.minority, vec![(0, 1)]);
        // The first source outvoted: the winners' digests replace its own
        // in the agreed list, and it is the minority for that file.
        let l = lists(&[
            &[bad.clone(), ini.clone()],
            &[good.clone(), ini.clone()],
            &[good.clone(), ini.clone()],
        ]);
        let got = majority(agreed(l)?)?;
        assert_eq!(got.files, vec![good.clone(), ini.clone()]);
        assert_eq!(got.minority, vec![(0, 0)]);
        // Its malformed list for a file is outvoted the same way.
        let l = lists(&[
            &[d("a.eti", 10, &[]), ini.clone()],
            &[good.clone(), ini.clone()],
            &[good.clone(), ini.clone()],
        ]);
        assert_eq!(majority(agreed(l)?)?.files[0], good);
        // One source: its digests are the majority.
        let l = lists(&[&[bad.clone(), ini.clone()]]);
        assert_eq!(majority(agreed(l)?)?.files[0], bad);
        // Unanimous: no minority.
        let l = lists(&[&[good.clone(), ini.clone()], &[good.clone(), ini.clone()]]);
        assert!(majority(agreed(l)?)?.minority.is_empty());
        Ok(())
    }

    #[test]
    fn no_strict_majority_fails() -> Result<()> {
        let v = |b: &str| d("a.eti", 10, &[b]);
        let ini = d("version.ini", 8, &["c"]);
        let cases: Vec<Vec<FileDesc>> = vec![
            // 1 vs 1.
            vec![v("a"), v("b")],
            // A 2-2 tie.
            vec![v("a"), v("a"), v("b"), v("b")],
            // All differ.
            vec![v("a"), v("b"), v("e")],
            // 1 vs 1 vs a malformed one.
            vec![v("a"), v("b"), d("a.eti", 10, &[])],
            // A malformed majority cannot win: two with no digests.
            vec![v("a"), d("a.eti", 10, &[]), d("a.eti", 10, &[])],
        ];
        for files in cases {
            let per: Vec<Vec<FileDesc>> =
                files.iter().map(|f| vec![f.clone(), ini.clone()]).collect();
            let refs: Vec<&[FileDesc]> = per.iter().map(|p| p.as_slice()).collect();
            let l = lists(&refs);
            let err = majority(agreed(l)?).expect_err("no majority");
            assert!(
                err.to_string().contains("no strict majority") && err.to_string().contains("a.eti"),
                "{err}"
            );
        }
        // A sole source with malformed digests has no majority either.
        let l = lists(&[&[d("a.eti", 10, &["a", "a"]), ini.clone()]]);
        assert!(majority(agreed(l)?).is_err());
        Ok(())
    }

    #[test]
    fn chunks_are_requested_as_whole_digest_blocks() {
        let b = digest::BLOCK;
        let c = |offset, len| Chunk {
            file: 0,
            path: "a".into(),
            offset,
            len,
        };
        assert_eq!(c(0, b).request_range(3 * b), (0, b));
        assert_eq!(c(b + 3, 10).request_range(3 * b), (b, 2 * b));
        assert_eq!(c(b - 1, 2).request_range(3 * b), (0, 2 * b));
        assert_eq!(c(2 * b, 5).request_range(2 * b + 5), (2 * b, 2 * b + 5));
        assert_eq!(c(0, 0).request_range(0), (0, 0));
    }

    #[test]
    fn resume_reuses_only_verified_chunks_of_the_same_download() {
        let b = digest::BLOCK;
        let files = vec![
            d("a.eti", 3 * b + 7, &["a", "b", "c", "e"]),
            f("version.ini", 0),
        ];
        let chunks = plan_chunks(&files, b + 1);
        // Chunks: [0,b+1) [b+1,2b+2) [2b+2,3b+3) [3b+3,3b+7) and the empty one.
        assert_eq!(chunks.len(), 5);
        let want = ResumeMarker::new("1", &files);
        let verified = vec![vec![true, true, false, true], vec![]];
        let plan = resume_plan(Some(&want), &want, &files, &chunks, &verified);
        // Chunk 0 needs blocks 0-1, chunk 1 blocks 1-2 (2 is bad), chunk 2
        // blocks 2-3, chunk 3 block 3; the empty chunk is fetched.
        assert_eq!(plan, [true, false, false, true, false]);
        // Inputs that must reuse nothing: no marker, another version,
        // other digests, nothing verified.
        let other_version = ResumeMarker::new("2", &files);
        let mut other = files.clone();
        other[0].blocks[3] = digest::Digest([0xff; 16]);
        let other_digests = ResumeMarker::new("1", &other);
        assert_ne!(other_digests, want);
        for left in [None, Some(&other_version), Some(&other_digests)] {
            assert_eq!(
                resume_plan(left, &want, &files, &chunks, &verified),
                [false; 5]
            );
        }
        let none = vec![vec![false; 4], vec![]];
        assert_eq!(
            resume_plan(Some(&want), &want, &files, &chunks, &none),
            [false; 5]
        );
        // A verified list shorter than the file (a truncated leftover).
        let short = vec![vec![true], vec![]];
        assert_eq!(
            resume_plan(Some(&want), &want, &files, &chunks, &short),
            [false; 5]
        );
    }

    #[test]
    fn hostile_file_lists_are_refused() {
        for bad in ["../escape", "local/x", ".lanspread-version.ini.part"] {
            let list = ("A".to_string(), vec![f(bad, 1), f("version.ini", 8)]);
            assert!(agree(&[list]).is_err(), "{bad} accepted");
        }
        let dup = (
            "A".to_string(),
            vec![f("a", 1), f("a", 1), f("version.ini", 8)],
        );
        assert!(agree(&[dup]).is_err());
        let no_sentinel = ("A".to_string(), vec![f("a", 1)]);
        assert!(agree(&[no_sentinel]).is_err());
    }
}
