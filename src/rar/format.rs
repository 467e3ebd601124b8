//! The RAR 5.0 format as both sides here use it: the one table of
//! signatures, header types, flags, host systems and modes, the
//! variable-length integer (`vint`), CRC32, and the entry-name rule.
//!
//! Reference: the RAR 5.0 archive format description (rarlab.com,
//! "technote"). Every block is `CRC32 | size | type | flags | …`: the CRC32
//! covers the size field and the body; sizes and most fields are vints.

use anyhow::{Result, bail};

/// The RAR 5.0 signature.
pub const SIGNATURE: &[u8; 8] = b"Rar!\x1a\x07\x01\x00";
/// The RAR 1.5–4.x signature.
pub const SIGNATURE_RAR4: &[u8; 7] = b"Rar!\x1a\x07\x00";

/// Largest header (the size field's value) RAR readers accept: a size field
/// of at most three bytes.
pub const MAX_HEADER_SIZE: u64 = 2 * 1024 * 1024;
/// A vint carries 7 bits per byte: ten bytes hold 64 bits.
pub const MAX_VINT_BYTES: usize = 10;

// Header types.
pub const HEAD_MAIN: u64 = 1;
pub const HEAD_FILE: u64 = 2;
pub const HEAD_SERVICE: u64 = 3;
pub const HEAD_CRYPT: u64 = 4;
pub const HEAD_END: u64 = 5;

// Flags common to every header.
pub const HFL_EXTRA: u64 = 0x0001;
pub const HFL_DATA: u64 = 0x0002;
pub const HFL_SKIP_IF_UNKNOWN: u64 = 0x0004;
pub const HFL_SPLIT_BEFORE: u64 = 0x0008;
pub const HFL_SPLIT_AFTER: u64 = 0x0010;

// Main archive header flags.
pub const MHFL_VOLUME: u64 = 0x0001;
pub const MHFL_SOLID: u64 = 0x0004;

// End-of-archive header flags.
pub const EHFL_NEXT_VOLUME: u64 = 0x0001;

// File (and service) header flags.
pub const FHFL_DIRECTORY: u64 = 0x0001;
pub const FHFL_UTIME: u64 = 0x0002;
pub const FHFL_CRC32: u64 = 0x0004;
pub const FHFL_UNKNOWN_SIZE: u64 = 0x0008;

// File header extra record types.
pub const FHEXTRA_CRYPT: u64 = 0x01;
pub const FHEXTRA_REDIR: u64 = 0x05;

/// Compression info: bit 6 marks an entry that continues the solid stream.
pub const COMP_SOLID: u64 = 0x0040;
/// Compression info: the method (0 = stored … 5) sits in bits 7–9.
pub const COMP_METHOD_SHIFT: u32 = 7;
pub const COMP_METHOD_MASK: u64 = 0x7;

// Host systems, which say how to read the attributes.
pub const HOST_WINDOWS: u64 = 0;
pub const HOST_UNIX: u64 = 1;

// Attributes: Unix modes and the Windows bit of a reparse point.
pub const MODE_FILE: u64 = 0o100644;
pub const MODE_DIR: u64 = 0o040755;
pub const UNIX_TYPE_MASK: u64 = 0o170000;
pub const UNIX_TYPE_SYMLINK: u64 = 0o120000;
pub const WIN_ATTR_REPARSE_POINT: u64 = 0x400;

/// Appends `v` as RAR's variable-length integer: 7 bits per byte, low
/// first, high bit = more.
pub fn vint(out: &mut Vec<u8>, mut v: u64) {
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

/// Decodes a vint at the start of `bytes` as (value, length): `Ok(None)`
/// while incomplete, an error past ten bytes or beyond 64 bits.
pub fn decode_vint(bytes: &[u8]) -> Result<Option<(u64, usize)>> {
    let mut v = 0u64;
    for (i, &b) in bytes.iter().enumerate() {
        if i == MAX_VINT_BYTES {
            bail!("a variable-length integer is longer than {MAX_VINT_BYTES} bytes");
        }
        let bits = u64::from(b & 0x7f);
        if i == MAX_VINT_BYTES - 1 && bits > 1 {
            bail!("a variable-length integer exceeds 64 bits");
        }
        v |= bits << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((v, i + 1)));
        }
    }
    if bytes.len() >= MAX_VINT_BYTES {
        bail!("a variable-length integer is longer than {MAX_VINT_BYTES} bytes");
    }
    Ok(None)
}

/// CRC-32 (IEEE 802.3, reflected), as RAR and zip use. For data that
/// arrives in pieces, use [`Crc32`] (`update` per piece, then `finalize`).
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// Incremental CRC-32 (the same checksum as [`crc32`]): SIMD-accelerated
/// where the CPU allows, many GiB/s.
pub use crc32fast::Hasher as Crc32;

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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn decoding_reads_back_what_encoding_wrote() -> Result<()> {
        for want in [
            0,
            1,
            127,
            128,
            300,
            MAX_HEADER_SIZE,
            u64::MAX >> 1,
            u64::MAX,
        ] {
            let mut bytes = Vec::new();
            vint(&mut bytes, want);
            assert!(bytes.len() <= MAX_VINT_BYTES, "{want}");
            assert_eq!(decode_vint(&bytes)?, Some((want, bytes.len())), "{want}");
            // Cut short, it is incomplete, not wrong.
            assert_eq!(decode_vint(&bytes[..bytes.len() - 1])?, None, "{want}");
        }
        // Ten bytes whose last carries more than the 64th bit.
        let mut too_big = vec![0xff; MAX_VINT_BYTES - 1];
        too_big.push(0x02);
        assert!(decode_vint(&too_big).is_err());
        assert!(decode_vint(&[0x80; MAX_VINT_BYTES + 1]).is_err());
        Ok(())
    }
}
