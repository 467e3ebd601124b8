//! A writer for RAR5 archives with *stored* (uncompressed) entries: the `.eti`
//! archives of the fixture games. Output is deterministic: the same entries
//! and options always give the same bytes (one fixed mtime, Unix host, no
//! timestamps of the machine that wrote it).
//!
//! Format reference: the RAR 5.0 archive format description (rarlab.com,
//! "technote"). Every block is `CRC32 | size | type | flags | …`, with
//! variable-length integers (7 bits per byte, low bits first).
//!
//! [`stream::StreamExtractor`] is the reading side: a push-based extractor
//! that unpacks a stored RAR5 archive from its bytes as they arrive (for
//! stream-install), without ever holding or seeking the archive.

use anyhow::{Result, bail};

pub mod stream;

pub use stream::{Extracted, StreamExtractor};

/// The RAR 5.0 signature.
pub const SIGNATURE: &[u8; 8] = b"Rar!\x1a\x07\x01\x00";

/// Fixed mtime of every entry (2020-01-01T00:00:00Z), so output never
/// depends on when or where it was written.
pub const FIXED_MTIME: u32 = 1_577_836_800;

const HEAD_MAIN: u64 = 1;
const HEAD_FILE: u64 = 2;
const HEAD_END: u64 = 5;

const HFL_DATA: u64 = 0x0002;

const MHFL_SOLID: u64 = 0x0004;

const FHFL_DIRECTORY: u64 = 0x0001;
const FHFL_UTIME: u64 = 0x0002;
const FHFL_CRC32: u64 = 0x0004;

/// Compression info: bit 6 marks an entry that continues the solid stream.
const COMP_SOLID: u64 = 0x0040;
const HOST_UNIX: u64 = 1;
const MODE_FILE: u64 = 0o100644;
const MODE_DIR: u64 = 0o040755;

/// One archive entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir(String),
    File(String, Vec<u8>),
}

impl Entry {
    pub fn dir(path: &str) -> Self {
        Entry::Dir(path.to_string())
    }

    pub fn file(path: &str, data: impl Into<Vec<u8>>) -> Self {
        Entry::File(path.to_string(), data.into())
    }

    fn path(&self) -> &str {
        match self {
            Entry::Dir(p) | Entry::File(p, _) => p,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Sets the archive's solid flag (and marks every entry after the first
    /// as continuing the solid stream, as RAR does).
    pub solid: bool,
    pub mtime: u32,
    /// The compression method (1–5) every file header *claims*, while the
    /// data stays stored: a valid-looking compressed archive, which this
    /// writer cannot otherwise make, for checking that readers refuse it.
    /// 0 (the default) is the truth: stored.
    pub claimed_method: u8,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            solid: false,
            mtime: FIXED_MTIME,
            claimed_method: 0,
        }
    }
}

/// Writes a RAR5 archive holding `entries` in order.
pub fn build(entries: &[Entry], options: &Options) -> Result<Vec<u8>> {
    if options.claimed_method > 5 {
        bail!(
            "compression method {}: RAR methods are 0 to 5",
            options.claimed_method
        );
    }
    let mut out = SIGNATURE.to_vec();
    let mut body = Vec::new();
    vint(&mut body, HEAD_MAIN);
    vint(&mut body, 0);
    vint(&mut body, if options.solid { MHFL_SOLID } else { 0 });
    block(&mut out, &body)?;

    for (i, entry) in entries.iter().enumerate() {
        check_name(entry.path())?;
        let (is_dir, data): (bool, &[u8]) = match entry {
            Entry::Dir(_) => (true, &[]),
            Entry::File(_, d) => (false, d),
        };
        let mut body = Vec::new();
        vint(&mut body, HEAD_FILE);
        if is_dir {
            vint(&mut body, 0);
        } else {
            vint(&mut body, HFL_DATA);
            vint(&mut body, data.len() as u64);
        }
        let mut file_flags = FHFL_UTIME;
        if is_dir {
            file_flags |= FHFL_DIRECTORY;
        } else {
            file_flags |= FHFL_CRC32;
        }
        vint(&mut body, file_flags);
        vint(&mut body, data.len() as u64);
        vint(&mut body, if is_dir { MODE_DIR } else { MODE_FILE });
        body.extend_from_slice(&options.mtime.to_le_bytes());
        if !is_dir {
            body.extend_from_slice(&crc32(data).to_le_bytes());
        }
        // Version 0 (RAR 5.0), method 0 (store) unless another is claimed
        // (folders always stored, as RAR writes them), smallest dictionary.
        let method = if is_dir { 0 } else { options.claimed_method };
        let mut comp = u64::from(method) << 7;
        if options.solid && i > 0 {
            comp |= COMP_SOLID;
        }
        vint(&mut body, comp);
        vint(&mut body, HOST_UNIX);
        vint(&mut body, entry.path().len() as u64);
        body.extend_from_slice(entry.path().as_bytes());
        block(&mut out, &body)?;
        out.extend_from_slice(data);
    }

    let mut body = Vec::new();
    vint(&mut body, HEAD_END);
    vint(&mut body, 0);
    vint(&mut body, 0);
    block(&mut out, &body)?;
    Ok(out)
}

/// The entry-name rule shared by the writer and the stream extractor:
/// names are relative `/`-paths of at most 2048 bytes without `.`/`..` or
/// empty components, NUL or backslashes.
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 2048
        || name.contains('\0')
        || name.contains('\\')
        || name.starts_with('/')
        || name
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        bail!("invalid archive entry name {name:?}");
    }
    Ok(())
}

/// Appends a block: CRC32 of (size field + body), the size, the body.
fn block(out: &mut Vec<u8>, body: &[u8]) -> Result<()> {
    // Readers accept at most a 3-byte size field (2 MiB headers).
    if body.len() >= 1 << 21 {
        bail!("archive header of {} bytes is too large", body.len());
    }
    let mut sized = Vec::with_capacity(body.len() + 3);
    vint(&mut sized, body.len() as u64);
    sized.extend_from_slice(body);
    out.extend_from_slice(&crc32(&sized).to_le_bytes());
    out.extend_from_slice(&sized);
    Ok(())
}

/// RAR's variable-length integer: 7 bits per byte, low first, high bit = more.
fn vint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// CRC-32 (IEEE 802.3, reflected), as RAR and zip use. For data that
/// arrives in pieces, use [`Crc32`] (`update` per piece, then `finalize`).
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// Incremental CRC-32 (the same checksum as [`crc32`]): SIMD-accelerated
/// where the CPU allows, many GiB/s.
pub use crc32fast::Hasher as Crc32;

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    pub(super) fn sample() -> Vec<Entry> {
        vec![
            Entry::dir("bin"),
            Entry::file(
                "bin/game-payload.bin",
                (0..5000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>(),
            ),
            Entry::dir("data"),
            Entry::file("data/assets.dat", b"assets\n".to_vec()),
            Entry::file("empty.txt", Vec::new()),
            Entry::file("deep/a/b/c.ini", b"[S]\r\nk = v\r\n".to_vec()),
        ]
    }

    /// Lists an archive with the unrar crate: (name, is_dir, size, crc).
    pub(super) fn list(path: &Path) -> Result<Vec<(String, bool, u64, u32)>> {
        let mut out = Vec::new();
        for h in unrar::Archive::new(path).open_for_listing()? {
            let h = h?;
            // unrar leaves a directory's CRC at the previous file's value;
            // directories have none, so it is not compared.
            let crc = if h.is_directory() { 0 } else { h.file_crc };
            out.push((
                h.filename.to_string_lossy().into_owned(),
                h.is_directory(),
                h.unpacked_size,
                crc,
            ));
        }
        Ok(out)
    }

    pub(super) fn extract(path: &Path, dest: &Path) -> Result<()> {
        let mut archive = unrar::Archive::new(path).open_for_processing()?;
        while let Some(header) = archive.read_header()? {
            archive = header.extract_with_base(dest)?;
        }
        Ok(())
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        let mut c = Crc32::new();
        for piece in [&b"1234"[..], b"", b"5", b"6789"] {
            c.update(piece);
        }
        assert_eq!(c.finalize(), 0xCBF4_3926);
    }

    #[test]
    fn vints_are_seven_bits_per_byte() {
        let mut v = Vec::new();
        vint(&mut v, 0);
        vint(&mut v, 127);
        vint(&mut v, 128);
        vint(&mut v, 300);
        assert_eq!(v, [0, 127, 0x80, 1, 0xAC, 2]);
    }

    #[test]
    fn unrar_lists_and_extracts_every_entry() -> Result<()> {
        for solid in [false, true] {
            let dir = tempfile::tempdir()?;
            let arc = dir.path().join("game.eti");
            let entries = sample();
            let options = Options {
                solid,
                ..Options::default()
            };
            std::fs::write(&arc, build(&entries, &options)?)?;
            let opened = unrar::Archive::new(&arc).open_for_listing()?;
            assert_eq!(opened.is_solid(), solid);
            let listed = list(&arc)?;
            let want: Vec<(String, bool, u64, u32)> = entries
                .iter()
                .map(|e| match e {
                    Entry::Dir(p) => (p.clone(), true, 0, 0),
                    Entry::File(p, d) => (p.clone(), false, d.len() as u64, crc32(d)),
                })
                .collect();
            assert_eq!(listed, want, "solid={solid}");
            let dest = dir.path().join("out");
            std::fs::create_dir(&dest)?;
            extract(&arc, &dest)?;
            for e in &entries {
                match e {
                    Entry::Dir(p) => assert!(dest.join(p).is_dir(), "{p}"),
                    Entry::File(p, d) => assert_eq!(&std::fs::read(dest.join(p))?, d, "{p}"),
                }
            }
        }
        Ok(())
    }

    #[test]
    fn a_flipped_payload_byte_fails_the_crc_check() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let arc = dir.path().join("bad.eti");
        let mut bytes = build(&[Entry::file("a.bin", vec![7u8; 100])], &Options::default())?;
        // The payload is the last 100 bytes before the end block.
        // The end block: crc (4), size (1), type, flags and end flags (3).
        let end_block = 8;
        let at = bytes.len() - end_block - 50;
        bytes[at] ^= 0xff;
        std::fs::write(&arc, bytes)?;
        let dest = dir.path().join("out");
        std::fs::create_dir(&dest)?;
        assert!(extract(&arc, &dest).is_err());
        Ok(())
    }

    #[test]
    fn output_is_deterministic() -> Result<()> {
        let a = build(&sample(), &Options::default())?;
        let b = build(&sample(), &Options::default())?;
        assert_eq!(a, b);
        assert!(a.starts_with(SIGNATURE));
        Ok(())
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in ["", "/abs", "a/../b", "a//b", "./a", "a\\b"] {
            assert!(
                build(&[Entry::dir(bad)], &Options::default()).is_err(),
                "{bad:?}"
            );
        }
    }

    /// `7z t` and `7z l` accept the archive too (skipped when 7z is absent;
    /// .ci/run installs p7zip-full).
    #[test]
    fn seven_zip_tests_the_archive() -> Result<()> {
        if std::process::Command::new("7z").arg("i").output().is_err() {
            eprintln!("7z not installed; skipping the 7z cross-check");
            return Ok(());
        }
        let dir = tempfile::tempdir()?;
        let arc = dir.path().join("game.rar");
        std::fs::write(
            &arc,
            build(
                &sample(),
                &Options {
                    solid: true,
                    ..Options::default()
                },
            )?,
        )?;
        let t = std::process::Command::new("7z")
            .arg("t")
            .arg(&arc)
            .output()?;
        let text = String::from_utf8_lossy(&t.stdout);
        assert!(
            t.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&t.stderr)
        );
        assert!(text.contains("Everything is Ok"), "{text}");
        let l = std::process::Command::new("7z")
            .args(["l", "-slt"])
            .arg(&arc)
            .output()?;
        let text = String::from_utf8_lossy(&l.stdout);
        assert!(l.status.success(), "{text}");
        assert!(text.contains("Path = deep/a/b/c.ini"), "{text}");
        assert!(text.contains("Solid = +"), "{text}");
        Ok(())
    }
}
