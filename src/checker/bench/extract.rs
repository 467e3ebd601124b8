//! `lanspread-checker bench extract`: how fast `rar::stream` extracts a
//! stored archive held in memory, fed in download-sized pieces, and how fast
//! the CRC32 alone runs over the same bytes (the floor of that data path).
//! Measured here, never asserted in a test.

use crate::rar::{Crc32, Entry, Options, StreamExtractor, build};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Pieces as a stream-install hands them over (its largest request).
const PIECE: usize = 4 << 20;
/// Members are at most this big, so building the archive needs ~2× its size.
const MEMBER: u64 = 128 << 20;

/// What one `bench extract` run measured.
#[derive(Debug, Clone)]
pub struct ExtractReport {
    pub bytes: u64,
    pub files: u64,
    /// The folder the (since removed) extraction folder was made in.
    pub dest: PathBuf,
    pub extract_mib_per_s: f64,
    pub crc_mib_per_s: f64,
}

impl ExtractReport {
    pub fn print(&self) {
        println!(
            "extract: {} MiB ({} files) into a folder in {}: {:.1} MiB/s; crc32 alone: {:.1} MiB/s",
            self.bytes >> 20,
            self.files,
            self.dest.display(),
            self.extract_mib_per_s,
            self.crc_mib_per_s
        );
    }
}

/// Builds a stored archive of about `size` bytes and extracts it below a
/// fresh folder in `dir` (the temp dir when `None`).
pub fn extract(size: u64, dir: Option<&Path>) -> Result<ExtractReport> {
    if size == 0 {
        bail!("--size must be positive");
    }
    let members = size.div_ceil(MEMBER);
    let entries: Vec<Entry> = (0..members)
        .map(|i| {
            let len = MEMBER.min(size - i * MEMBER) as usize;
            // Not all-zero, so nothing along the way can shortcut the data.
            let data: Vec<u8> = (0..len)
                .map(|j| (j ^ (j >> 9) ^ i as usize) as u8)
                .collect();
            Entry::file(&format!("data/part-{i:03}.bin"), data)
        })
        .collect();
    let archive = build(&entries, &Options::default()).context("building the archive")?;
    drop(entries);
    let tmp = match dir {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .context("creating the extraction folder")?;

    let began = Instant::now();
    let mut x = StreamExtractor::new(tmp.path());
    for piece in archive.chunks(PIECE) {
        x.feed(piece)?;
    }
    let got = x.finish()?;
    let extract_secs = began.elapsed().as_secs_f64();

    let began = Instant::now();
    let mut crc = Crc32::new();
    for piece in archive.chunks(PIECE) {
        crc.update(piece);
    }
    std::hint::black_box(crc.finalize());
    let crc_secs = began.elapsed().as_secs_f64();

    let mib = archive.len() as f64 / f64::from(1u32 << 20);
    Ok(ExtractReport {
        bytes: archive.len() as u64,
        files: got.files,
        dest: tmp
            .path()
            .parent()
            .map_or_else(|| tmp.path().to_path_buf(), Path::to_path_buf),
        extract_mib_per_s: mib / extract_secs.max(1e-9),
        crc_mib_per_s: mib / crc_secs.max(1e-9),
    })
}
