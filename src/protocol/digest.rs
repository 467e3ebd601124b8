//! Block digests: what lets a receiver verify every byte a source sends.
//!
//! A file is cut into `BLOCK`-sized blocks (the last one shorter; an empty
//! file has none), and each block's digest is BLAKE3 truncated to 128 bits,
//! sent as 32 lowercase hex digits with the file's descriptor (see
//! docs/PROTOCOL.md, "Verified chunks"). BLAKE3 was measured against
//! SHA-256 on this machine's SHA extensions (`lanspread-checker bench
//! hash`); the figures are in docs/PROTOCOL.md.

use anyhow::{Context, Result, bail};
use std::io::Read;

/// One block digest: 16 bytes in memory, 32 lowercase hex digits on the
/// wire and in the cache. Held as bytes, not text: a 100,000-file list held
/// one heap string per block, ~8 MiB of the receiver's peak.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest(pub [u8; DIGEST_BYTES]);

impl Digest {
    /// Parses 32 lowercase hex digits; anything else is refused.
    pub fn from_hex(text: &str) -> Result<Self> {
        if text.len() != 2 * DIGEST_BYTES
            || !text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            bail!("malformed block digest {text:?}");
        }
        let mut out = [0u8; DIGEST_BYTES];
        hex::decode_to_slice(text, &mut out).context("malformed block digest")?;
        Ok(Self(out))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Digest::from_hex(&text).map_err(|e| serde::de::Error::custom(format!("{e:#}")))
    }
}

/// The source's digest cache in its state dir (with SQLite's `-wal` and
/// `-shm` beside it): the peer's own cache, which a file-list request may
/// write (the fuzzers' "nothing else changes" check leaves it out).
pub const CACHE_FILE: &str = "digests.sqlite";

/// Bytes per digest block: 1 MiB, the receiver's direct-write block, so a
/// block-aligned chunk is verified one write buffer at a time.
pub const BLOCK: u64 = 1 << 20;
/// Bytes of a block digest (BLAKE3 output truncated).
pub const DIGEST_BYTES: usize = 16;

/// The digest of one block, as it goes on the wire.
pub fn block_digest(data: &[u8]) -> Digest {
    let hash = blake3::hash(data);
    let mut out = [0u8; DIGEST_BYTES];
    out.copy_from_slice(&hash.as_bytes()[..DIGEST_BYTES]);
    Digest(out)
}

/// How many blocks a file of `size` bytes has.
pub fn block_count(size: u64) -> u64 {
    size.div_ceil(BLOCK)
}

/// The byte range `[start, end)` of block `index` of a file of `size` bytes.
pub fn block_range(index: u64, size: u64) -> (u64, u64) {
    let start = index * BLOCK;
    (start, (start + BLOCK).min(size))
}

/// Whether `digests` is a well-formed digest list for a file of `size`
/// bytes: one digest per block (each digest's form was checked when it was
/// decoded).
pub fn check_list(size: u64, digests: &[Digest]) -> Result<()> {
    if digests.len() as u64 != block_count(size) {
        bail!(
            "{} digests for {size} bytes ({} blocks)",
            digests.len(),
            block_count(size)
        );
    }
    Ok(())
}

/// Digests every block of `reader`, which holds `size` bytes; fails when it
/// holds fewer.
pub fn digest_reader(mut reader: impl Read, size: u64) -> Result<Vec<Digest>> {
    let mut out = Vec::with_capacity(block_count(size) as usize);
    // As long as the longest block: a 1 MiB buffer zeroed for each of
    // 100,000 4 KiB files was most of a cold cache's set-up.
    let mut buf = vec![0u8; BLOCK.min(size) as usize];
    for i in 0..block_count(size) {
        let (start, end) = block_range(i, size);
        let len = (end - start) as usize;
        reader
            .read_exact(&mut buf[..len])
            .with_context(|| format!("reading block {i} ({start}..{end})"))?;
        out.push(block_digest(&buf[..len]));
    }
    Ok(out)
}

/// Digests the blocks of the file at `path`, which must be `size` bytes.
pub fn digest_file(path: &std::path::Path, size: u64) -> Result<Vec<Digest>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    digest_reader(std::io::BufReader::with_capacity(0, file), size)
        .with_context(|| format!("digesting {}", path.display()))
}

/// One digest-list identity: the digest of a whole agreed list, so a resume
/// marker can tell whether the digests it was written for still hold.
pub fn list_id<'a>(files: impl IntoIterator<Item = (&'a str, u64, &'a [Digest])>) -> String {
    let mut h = blake3::Hasher::new();
    for (path, size, blocks) in files {
        h.update(path.as_bytes());
        h.update(&[0]);
        h.update(&size.to_le_bytes());
        for b in blocks {
            h.update(&b.0);
        }
        h.update(&[0xff]);
    }
    hex::encode(&h.finalize().as_bytes()[..DIGEST_BYTES])
}

/// Throughput of the two candidate hashes over `total` bytes in `BLOCK`
/// pieces (for `bench hash`): (name, MiB/s) pairs.
pub fn bench(total: u64) -> Vec<(&'static str, f64)> {
    use sha2::Digest;
    let block: Vec<u8> = (0..BLOCK as usize).map(|i| (i * 31 % 251) as u8).collect();
    let rounds = total.div_ceil(BLOCK).max(1);
    let mib = (rounds * BLOCK) as f64 / (1u64 << 20) as f64;
    let mut out = Vec::new();
    let mut sink = 0u8;
    let t = std::time::Instant::now();
    for _ in 0..rounds {
        sink ^= blake3::hash(&block).as_bytes()[0];
    }
    out.push(("blake3", mib / t.elapsed().as_secs_f64()));
    let t = std::time::Instant::now();
    for _ in 0..rounds {
        sink ^= sha2::Sha256::digest(&block)[0];
    }
    out.push(("sha256", mib / t.elapsed().as_secs_f64()));
    std::hint::black_box(sink);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_digested_per_block_and_lists_are_checked() -> Result<()> {
        let data: Vec<u8> = (0..(2 * BLOCK + 5)).map(|i| (i % 251) as u8).collect();
        let list = digest_reader(&data[..], data.len() as u64)?;
        assert_eq!(list.len(), 3);
        assert_eq!(list[2], block_digest(&data[2 * BLOCK as usize..]));
        assert_ne!(list[0], list[1]);
        check_list(data.len() as u64, &list)?;
        assert!(check_list(data.len() as u64, &list[..2]).is_err());
        assert!(check_list(0, &[]).is_ok());
        // On the wire a digest is 32 lowercase hex digits, nothing else.
        let hex = list[0].to_hex();
        assert_eq!(Digest::from_hex(&hex)?, list[0]);
        assert_eq!(serde_json::to_string(&list[0])?, format!("\"{hex}\""));
        assert_eq!(
            serde_json::from_str::<Digest>(&format!("\"{hex}\""))?,
            list[0]
        );
        for bad in [
            hex.to_uppercase(),
            hex[..30].to_string(),
            format!("{hex}00"),
            "zz".repeat(16),
        ] {
            assert!(Digest::from_hex(&bad).is_err(), "{bad} accepted");
            assert!(serde_json::from_str::<Digest>(&format!("\"{bad}\"")).is_err());
        }
        // A reader shorter than the size it claims fails.
        assert!(digest_reader(&data[..10], 11).is_err());
        assert_eq!(
            block_range(2, data.len() as u64),
            (2 * BLOCK, 2 * BLOCK + 5)
        );
        Ok(())
    }
}
