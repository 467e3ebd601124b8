//! A writer for RAR5 archives with *stored* (uncompressed) entries: the `.eti`
//! archives of the fixture games. Output is deterministic: the same entries
//! and options always give the same bytes (one fixed mtime, Unix host, no
//! timestamps of the machine that wrote it).

use super::format::{
    COMP_METHOD_SHIFT, COMP_SOLID, FHFL_CRC32, FHFL_DIRECTORY, FHFL_UTIME, HEAD_END, HEAD_FILE,
    HEAD_MAIN, HFL_DATA, HOST_UNIX, MAX_HEADER_SIZE, MHFL_SOLID, MODE_DIR, MODE_FILE, SIGNATURE,
    check_name, crc32, vint,
};
use anyhow::{Result, bail};

/// Fixed mtime of every entry (2020-01-01T00:00:00Z), so output never
/// depends on when or where it was written.
pub const FIXED_MTIME: u32 = 1_577_836_800;

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
        let mut comp = u64::from(method) << COMP_METHOD_SHIFT;
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

/// Appends a block: CRC32 of (size field + body), the size, the body.
pub(super) fn block(out: &mut Vec<u8>, body: &[u8]) -> Result<()> {
    // Readers accept at most a 3-byte size field: below 2 MiB.
    if body.len() as u64 >= MAX_HEADER_SIZE {
        bail!("archive header of {} bytes is too large", body.len());
    }
    let mut sized = Vec::with_capacity(body.len() + 3);
    vint(&mut sized, body.len() as u64);
    sized.extend_from_slice(body);
    out.extend_from_slice(&crc32(&sized).to_le_bytes());
    out.extend_from_slice(&sized);
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::path::Path;

    pub(in crate::rar) fn sample() -> Vec<Entry> {
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
    fn list(path: &Path) -> Result<Vec<(String, bool, u64, u32)>> {
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

    pub(in crate::rar) fn extract(path: &Path, dest: &Path) -> Result<()> {
        let mut archive = unrar::Archive::new(path).open_for_processing()?;
        while let Some(header) = archive.read_header()? {
            archive = header.extract_with_base(dest)?;
        }
        Ok(())
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
