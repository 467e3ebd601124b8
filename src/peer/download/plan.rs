//! What a download fetches: the file list every source must agree on, the
//! archives a stream-install fetches, and the split of files into chunks.

use crate::protocol::layout::{self, SENTINEL};
use crate::protocol::wire::FileDesc;
use anyhow::{Result, bail};
use std::collections::BTreeSet;

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
    let mut out = Vec::new();
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

/// Checks that every source sent the same file list; names the first
/// conflict otherwise.
pub fn agree(lists: &[(String, Vec<FileDesc>)]) -> Result<Vec<FileDesc>> {
    let Some((first_addr, first)) = lists.first() else {
        bail!("no source sent a file list");
    };
    // By path, so lists of 100,000 files compare in linear time.
    let first_sizes: std::collections::HashMap<&str, u64> =
        first.iter().map(|f| (f.path.as_str(), f.size)).collect();
    for (addr, list) in &lists[1..] {
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
    let mut seen = BTreeSet::new();
    for f in first {
        layout::checked_rel_path(&f.path)?;
        if f.path.split('/').any(|c| c.starts_with(".lanspread")) {
            bail!("source offered a reserved path {:?}", f.path);
        }
        if !seen.insert(&f.path) {
            bail!("source listed {} twice", f.path);
        }
    }
    if !first.iter().any(|f| f.path == SENTINEL) {
        bail!("source file list has no {SENTINEL}");
    }
    Ok(first.clone())
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
        FileDesc {
            path: path.into(),
            size,
        }
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
        assert_eq!(agree(&[a.clone(), a.clone()]).ok(), Some(a.1));
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
