//! Push-based streaming extraction of RAR5 archives with *stored* entries,
//! for stream-install: the archive's bytes are fed in order, in pieces of any
//! size, and every file is written below the destination as its data
//! arrives. Nothing seeks, nothing holds a whole entry in memory; the only
//! buffer is one block header (at most 2 MiB, as RAR readers allow) plus a
//! 256 KiB write buffer.
//!
//! Supported: RAR 5.0 archives whose entries are stored (method 0), solid or
//! not, with directories, empty files, service headers (comments, quick-open
//! data, recovery records: their data is skipped) and unknown header types
//! marked "skip if unknown". Every header CRC32 and every file's data CRC32
//! is checked.
//!
//! Refused, each with its own message: RAR 1.5–4.x archives, anything that is
//! not RAR, compressed entries, encrypted archives or entries, multivolume
//! archives, links (redirection records, Unix symlink or Windows reparse
//! attributes), names that are not relative `/`-paths (see
//! [`super::check_name`]), a target that already exists, files without a
//! CRC32 (BLAKE2-only archives), a stored entry whose unpacked size differs
//! from its data size, and any byte after the end-of-archive block: the
//! stream is exactly one archive, so trailing bytes mean it is not the
//! archive that was meant (unrar would ignore them; 7z warns).
//!
//! Files get the archive's mtime; attributes are not applied. On an error,
//! `dest` may hold partial output: the caller extracts into a scratch folder
//! and removes it. After a failed `feed`, every later call fails too.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Result, anyhow, bail};

use super::format::{
    COMP_METHOD_MASK, COMP_METHOD_SHIFT, Crc32, EHFL_NEXT_VOLUME, FHEXTRA_CRYPT, FHEXTRA_REDIR,
    FHFL_CRC32, FHFL_DIRECTORY, FHFL_UNKNOWN_SIZE, FHFL_UTIME, HEAD_CRYPT, HEAD_END, HEAD_FILE,
    HEAD_MAIN, HEAD_SERVICE, HFL_DATA, HFL_EXTRA, HFL_SKIP_IF_UNKNOWN, HFL_SPLIT_AFTER,
    HFL_SPLIT_BEFORE, HOST_UNIX, HOST_WINDOWS, MAX_HEADER_SIZE, MHFL_VOLUME, SIGNATURE,
    SIGNATURE_RAR4, UNIX_TYPE_MASK, UNIX_TYPE_SYMLINK, WIN_ATTR_REPARSE_POINT, check_name, crc32,
    decode_vint,
};

/// Bytes of file data buffered before a write.
const WRITE_BUFFER: usize = 256 * 1024;

/// What an extraction produced: file and directory entries, file bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Extracted {
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
}

/// Extracts a stored RAR5 archive fed to it piece by piece (see the module
/// documentation for what is supported).
pub struct StreamExtractor {
    dest: PathBuf,
    state: State,
    /// The signature or the block header being collected.
    buf: Vec<u8>,
    /// Archive bytes consumed so far.
    offset: u64,
    /// Archive offset of the header in `buf`.
    header_start: u64,
    seen_main: bool,
    made: Extracted,
    /// The last directory known to exist below `dest` (as a real directory).
    known_dir: Option<PathBuf>,
    /// Set by a failed `feed`; later calls fail with it.
    failed: Option<String>,
}

enum State {
    Signature,
    Header,
    Data(Data),
    End,
}

/// A data area being consumed: a file's contents or skipped bytes.
struct Data {
    /// `entry "a/b.bin"`, `service header "CMT"`, …: for messages.
    what: String,
    /// Archive offset where the data area starts.
    start: u64,
    size: u64,
    remaining: u64,
    /// Where a file's bytes go; `None` skips them.
    out: Option<Output>,
}

struct Output {
    name: String,
    path: PathBuf,
    file: BufWriter<File>,
    crc: Crc32,
    want_crc: Option<u32>,
    mtime: Option<u32>,
}

impl StreamExtractor {
    /// Extracts below `dest`, an existing directory.
    pub fn new(dest: &Path) -> Self {
        Self {
            dest: dest.to_path_buf(),
            state: State::Signature,
            buf: Vec::new(),
            offset: 0,
            header_start: 0,
            seen_main: false,
            made: Extracted::default(),
            known_dir: None,
            failed: None,
        }
    }

    /// Consumes the next bytes of the archive, in order. File data is
    /// written as it arrives (never buffering a whole entry in memory);
    /// errors carry context (entry name, offset).
    pub fn feed(&mut self, data: &[u8]) -> Result<()> {
        if let Some(e) = &self.failed {
            bail!("the archive stream failed earlier: {e}");
        }
        let result = self.feed_inner(data);
        if let Err(e) = &result {
            self.failed = Some(format!("{e:#}"));
        }
        result
    }

    /// The archive's bytes are all fed: fails unless the end-of-archive
    /// block was seen and no entry is incomplete. Returns what was extracted.
    pub fn finish(self) -> Result<Extracted> {
        if let Some(e) = self.failed {
            bail!("the archive stream failed: {e}");
        }
        match &self.state {
            State::End => Ok(self.made),
            State::Signature => bail!(
                "the archive is truncated: it ended after {} bytes, inside the RAR signature",
                self.offset
            ),
            State::Header if self.buf.is_empty() => bail!(
                "the archive is truncated: it ended at offset {} without an end-of-archive block",
                self.offset
            ),
            State::Header => bail!(
                "the archive is truncated: it ended inside the block header at offset {} \
                 ({} bytes of it arrived)",
                self.header_start,
                self.buf.len()
            ),
            State::Data(d) => bail!(
                "the archive is truncated: it ended inside the data of {} (which starts at \
                 offset {}; {} of its {} bytes arrived)",
                d.what,
                d.start,
                d.size - d.remaining,
                d.size
            ),
        }
    }

    fn feed_inner(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            let used = match self.state {
                State::Signature => self.eat_signature(data)?,
                State::Header => self.eat_header(data)?,
                State::Data(_) => self.eat_data(data)?,
                State::End => bail!(
                    "unexpected bytes after the end-of-archive block, at offset {}",
                    self.offset
                ),
            };
            self.offset = self
                .offset
                .checked_add(used as u64)
                .ok_or_else(|| anyhow!("the archive is longer than 2^64 bytes"))?;
            data = &data[used..];
        }
        Ok(())
    }

    fn eat_signature(&mut self, data: &[u8]) -> Result<usize> {
        let take = (SIGNATURE.len() - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..take]);
        let got = &self.buf[..];
        // Decide as soon as the bytes allow: the first six are common to
        // every RAR from 1.5 on, the seventh tells RAR4 from RAR5.
        let common = &SIGNATURE[..6];
        let n = got.len().min(6);
        if got[..n] != common[..n] {
            bail!("not a RAR archive (no RAR signature at the start)");
        }
        if got.len() >= 7 && got[..7] == SIGNATURE_RAR4[..] {
            bail!(
                "RAR4 archives cannot be streamed (a RAR 1.5-4.x signature; \
                 stream-install handles RAR5 archives only — use download + install)"
            );
        }
        if got.len() >= 7 && got[6] != SIGNATURE[6] {
            bail!("not a RAR archive (unknown RAR signature)");
        }
        if got.len() == 8 {
            if got[7] != SIGNATURE[7] {
                bail!(
                    "unsupported RAR version (signature byte {:#04x} after RAR5's; \
                     only RAR 5.0 archives can be streamed)",
                    got[7]
                );
            }
            self.buf.clear();
            self.state = State::Header;
        }
        Ok(take)
    }

    fn eat_header(&mut self, data: &[u8]) -> Result<usize> {
        if self.buf.is_empty() {
            self.header_start = self.offset;
        }
        // Until the size field is complete, take few bytes at a time so as
        // never to swallow bytes of what follows a short header.
        let take = match self.header_len()? {
            Some(total) => total - self.buf.len(),
            None if self.buf.len() < 5 => 5 - self.buf.len(),
            None => 1,
        }
        .min(data.len());
        self.buf.extend_from_slice(&data[..take]);
        if self.header_len()? == Some(self.buf.len()) {
            let header = std::mem::take(&mut self.buf);
            let result = self.header(&header);
            self.buf = header;
            self.buf.clear();
            result
                .map_err(|e| anyhow!("RAR block header at offset {}: {e:#}", self.header_start))?;
        }
        Ok(take)
    }

    /// The whole length of the header in `buf` (CRC, size field, body) once
    /// its size field is complete.
    fn header_len(&self) -> Result<Option<usize>> {
        let Some(field) = self.buf.get(4..) else {
            return Ok(None);
        };
        let Some((size, len)) = decode_vint(field).map_err(|e| {
            anyhow!(
                "RAR block header at offset {}: size field: {e}",
                self.header_start
            )
        })?
        else {
            return Ok(None);
        };
        if size == 0 || size > MAX_HEADER_SIZE {
            bail!(
                "RAR block header at offset {}: header size {size} is outside 1..={MAX_HEADER_SIZE}; \
                 the archive is corrupt",
                self.header_start
            );
        }
        // size <= 2 MiB, so this cannot overflow.
        Ok(Some(4 + len + size as usize))
    }

    fn eat_data(&mut self, data: &[u8]) -> Result<usize> {
        let State::Data(d) = &mut self.state else {
            bail!("internal error: not in a data area");
        };
        let n = usize::try_from(d.remaining).map_or(data.len(), |r| r.min(data.len()));
        let piece = &data[..n];
        if let Some(out) = &mut d.out {
            out.crc.update(piece);
            if let Err(e) = out.file.write_all(piece) {
                bail!(
                    "writing entry {:?} to {}: {e} (archive offset {})",
                    out.name,
                    out.path.display(),
                    self.offset
                );
            }
        }
        d.remaining -= n as u64;
        if d.remaining == 0
            && let State::Data(d) = std::mem::replace(&mut self.state, State::Header)
        {
            self.end_data(d)?;
        }
        Ok(n)
    }

    /// A data area is complete: a file is flushed and its CRC checked.
    fn end_data(&mut self, d: Data) -> Result<()> {
        let Some(out) = d.out else {
            return Ok(());
        };
        let Output {
            name,
            path,
            file,
            crc,
            want_crc,
            mtime,
        } = out;
        let file = file.into_inner().map_err(|e| {
            anyhow!(
                "writing entry {name:?} to {}: {}",
                path.display(),
                e.error()
            )
        })?;
        let got = crc.finalize();
        if let Some(want) = want_crc
            && got != want
        {
            bail!(
                "entry {name:?}: CRC32 mismatch (the archive says {want:08x}, its data at offset {} \
                 has {got:08x}); the archive is corrupt",
                d.start
            );
        }
        if let Some(t) = mtime {
            file.set_modified(UNIX_EPOCH + Duration::from_secs(t.into()))
                .map_err(|e| anyhow!("setting the mtime of {}: {e}", path.display()))?;
        }
        self.made.files += 1;
        self.made.bytes = self.made.bytes.saturating_add(d.size);
        Ok(())
    }

    /// One complete block header: CRC, size field, body.
    fn header(&mut self, h: &[u8]) -> Result<()> {
        let (crc_field, sized) = h.split_at_checked(4).ok_or_else(|| anyhow!("truncated"))?;
        let stored = u32::from_le_bytes(crc_field.try_into()?);
        let computed = crc32(sized);
        if stored != computed {
            bail!(
                "header CRC mismatch (stored {stored:08x}, computed {computed:08x}); \
                 the archive is corrupt"
            );
        }
        let (_, len) = decode_vint(sized)?.ok_or_else(|| anyhow!("truncated size field"))?;
        let body = &sized[len..];
        let mut r = Reader::new(body);
        let kind = r.vint()?;
        let flags = r.vint()?;
        let extra_size = if flags & HFL_EXTRA != 0 { r.vint()? } else { 0 };
        let data_size = if flags & HFL_DATA != 0 { r.vint()? } else { 0 };
        let extra_start = usize::try_from(extra_size)
            .ok()
            .and_then(|x| body.len().checked_sub(x))
            .filter(|&s| s >= r.pos)
            .ok_or_else(|| anyhow!("extra area size {extra_size} exceeds the header"))?;
        let extra = &body[extra_start..];
        let mut fields = Reader::new(&body[r.pos..extra_start]);
        let data_start = self
            .header_start
            .checked_add(h.len() as u64)
            .ok_or_else(|| anyhow!("offset overflow"))?;
        if data_start.checked_add(data_size).is_none() {
            bail!("data size {data_size} is impossibly large; the archive is corrupt");
        }

        if !self.seen_main && kind != HEAD_MAIN {
            if kind == HEAD_CRYPT {
                bail!("the archive's headers are encrypted; encrypted archives cannot be streamed");
            }
            bail!("expected the main archive header first, found a block of type {kind}");
        }
        match kind {
            HEAD_MAIN => {
                if self.seen_main {
                    bail!("a second main archive header");
                }
                let archive_flags = fields.vint()?;
                if archive_flags & MHFL_VOLUME != 0 {
                    bail!("multivolume archives cannot be streamed (the volume flag is set)");
                }
                self.seen_main = true;
                self.skip("the main header's data", data_start, data_size);
            }
            HEAD_FILE => self.file(flags, &mut fields, extra, data_start, data_size)?,
            HEAD_SERVICE => {
                let f = FileFields::read(&mut fields)?;
                let what = format!(
                    "service header {:?}",
                    String::from_utf8_lossy(f.name).as_ref()
                );
                self.skip(&what, data_start, data_size);
            }
            HEAD_CRYPT => bail!("an encryption header; encrypted archives cannot be streamed"),
            HEAD_END => {
                let end_flags = fields.vint()?;
                if end_flags & EHFL_NEXT_VOLUME != 0 {
                    bail!("multivolume archives cannot be streamed (more volumes follow)");
                }
                if data_size != 0 {
                    bail!("the end-of-archive block has a data area");
                }
                self.state = State::End;
            }
            _ if flags & HFL_SKIP_IF_UNKNOWN != 0 => {
                self.skip(&format!("block of type {kind}"), data_start, data_size)
            }
            _ => bail!("unknown block type {kind} (not marked skippable)"),
        }
        Ok(())
    }

    fn skip(&mut self, what: &str, start: u64, size: u64) {
        if size > 0 {
            self.state = State::Data(Data {
                what: what.to_string(),
                start,
                size,
                remaining: size,
                out: None,
            });
        }
    }

    /// A file header: creates the directory, or the file whose data follows.
    fn file(
        &mut self,
        flags: u64,
        fields: &mut Reader,
        extra: &[u8],
        data_start: u64,
        data_size: u64,
    ) -> Result<()> {
        let f = FileFields::read(fields)?;
        let name = std::str::from_utf8(f.name).map_err(|_| {
            anyhow!(
                "entry name {:?} is not UTF-8",
                String::from_utf8_lossy(f.name)
            )
        })?;
        let mut records = Reader::new(extra);
        while !records.at_end() {
            let size = records.vint()?;
            let record = records
                .bytes(size)
                .map_err(|_| anyhow!("entry {name:?}: an extra record overruns the header"))?;
            match Reader::new(record).vint()? {
                FHEXTRA_CRYPT => {
                    bail!("entry {name:?} is encrypted; encrypted archives cannot be streamed")
                }
                FHEXTRA_REDIR => {
                    bail!("entry {name:?} is a link (redirection record); links are refused")
                }
                _ => {}
            }
        }
        if flags & (HFL_SPLIT_BEFORE | HFL_SPLIT_AFTER) != 0 {
            bail!("entry {name:?} spans volumes; multivolume archives cannot be streamed");
        }
        let method = (f.comp >> COMP_METHOD_SHIFT) & COMP_METHOD_MASK;
        if method != 0 {
            bail!(
                "entry {name:?} is compressed (method {method}); stream-install handles stored \
                 archives only — use download + install"
            );
        }
        let link = match f.host {
            HOST_UNIX => f.attributes & UNIX_TYPE_MASK == UNIX_TYPE_SYMLINK,
            HOST_WINDOWS => f.attributes & WIN_ATTR_REPARSE_POINT != 0,
            _ => false,
        };
        if link {
            bail!("entry {name:?} is a symlink or reparse point; links are refused");
        }
        check_name(name)?;

        if f.file_flags & FHFL_DIRECTORY != 0 {
            if data_size != 0 {
                bail!("directory entry {name:?} has {data_size} bytes of data");
            }
            self.ensure_dir(name)
                .map_err(|e| anyhow!("entry {name:?}: {e:#}"))?;
            self.made.dirs += 1;
            return Ok(());
        }
        if f.file_flags & FHFL_UNKNOWN_SIZE == 0 && f.unpacked != data_size {
            bail!(
                "entry {name:?} is stored but its unpacked size {} differs from its data size \
                 {data_size}; the archive is corrupt",
                f.unpacked
            );
        }
        if f.crc.is_none() && data_size > 0 {
            bail!("entry {name:?} has no CRC32 (a BLAKE2-hashed archive?); it cannot be verified");
        }
        let path = match name.rsplit_once('/') {
            Some((parent, leaf)) => self
                .ensure_dir(parent)
                .map_err(|e| anyhow!("entry {name:?}: {e:#}"))?
                .join(leaf),
            None => self.dest.join(name),
        };
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| match e.kind() {
                ErrorKind::AlreadyExists => {
                    anyhow!("entry {name:?}: {} already exists", path.display())
                }
                _ => anyhow!("entry {name:?}: creating {}: {e}", path.display()),
            })?;
        let data = Data {
            what: format!("entry {name:?}"),
            start: data_start,
            size: data_size,
            remaining: data_size,
            out: Some(Output {
                name: name.to_string(),
                path,
                file: BufWriter::with_capacity(WRITE_BUFFER, file),
                crc: Crc32::new(),
                want_crc: f.crc,
                mtime: f.mtime,
            }),
        };
        if data_size == 0 {
            self.end_data(data)
        } else {
            self.state = State::Data(data);
            Ok(())
        }
    }

    /// Makes `dest/rel` (a checked name) a real directory, creating missing
    /// components; never follows a symlink. Returns its path.
    fn ensure_dir(&mut self, rel: &str) -> Result<PathBuf> {
        let target = self.dest.join(rel);
        if self.known_dir.as_ref() == Some(&target) {
            return Ok(target);
        }
        let mut path = self.dest.clone();
        for component in rel.split('/') {
            path.push(component);
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => bail!("{} exists and is not a directory", path.display()),
                Err(e) if e.kind() == ErrorKind::NotFound => std::fs::create_dir(&path)
                    .map_err(|e| anyhow!("creating directory {}: {e}", path.display()))?,
                Err(e) => bail!("checking {}: {e}", path.display()),
            }
        }
        self.known_dir = Some(target.clone());
        Ok(target)
    }
}

/// The type-specific fields of a file or service header.
struct FileFields<'a> {
    file_flags: u64,
    unpacked: u64,
    attributes: u64,
    mtime: Option<u32>,
    crc: Option<u32>,
    comp: u64,
    host: u64,
    name: &'a [u8],
}

impl<'a> FileFields<'a> {
    fn read(r: &mut Reader<'a>) -> Result<Self> {
        let file_flags = r.vint()?;
        let unpacked = r.vint()?;
        let attributes = r.vint()?;
        let mtime = if file_flags & FHFL_UTIME != 0 {
            Some(r.u32()?)
        } else {
            None
        };
        let crc = if file_flags & FHFL_CRC32 != 0 {
            Some(r.u32()?)
        } else {
            None
        };
        let comp = r.vint()?;
        let host = r.vint()?;
        let name_len = r.vint()?;
        let name = r.bytes(name_len)?;
        Ok(Self {
            file_flags,
            unpacked,
            attributes,
            mtime,
            crc,
            comp,
            host,
            name,
        })
    }
}

/// Bounds-checked reading of header fields.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn vint(&mut self) -> Result<u64> {
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        let (v, len) =
            decode_vint(rest)?.ok_or_else(|| anyhow!("a field runs past the end of the header"))?;
        self.pos += len;
        Ok(v)
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes(b.try_into()?))
    }

    fn bytes(&mut self, n: u64) -> Result<&'a [u8]> {
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| self.pos.checked_add(n))
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| anyhow!("a field of {n} bytes runs past the end of the header"))?;
        let b = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rar::format::{MHFL_SOLID, vint};
    use crate::rar::writer::tests::{extract as unrar_extract, sample};
    use crate::rar::writer::{Entry, FIXED_MTIME, Options, block, build};
    use rand::{Rng, SeedableRng, rngs::StdRng};
    use std::collections::BTreeMap;

    /// How the archive's bytes are cut into `feed` calls.
    #[derive(Debug, Clone, Copy)]
    enum Split {
        Whole,
        Bytes,
        Random(u64),
    }

    const SPLITS: [Split; 4] = [
        Split::Whole,
        Split::Bytes,
        Split::Random(1),
        Split::Random(0x5eed),
    ];

    fn pieces(bytes: &[u8], split: Split) -> Vec<&[u8]> {
        match split {
            Split::Whole => vec![bytes],
            Split::Bytes => bytes.chunks(1).collect(),
            Split::Random(seed) => {
                let mut rng = StdRng::seed_from_u64(seed);
                let mut out = Vec::new();
                let mut rest = bytes;
                while !rest.is_empty() {
                    // Mostly small pieces (header and boundary cases), some large.
                    let max = if rng.random_bool(0.8) { 40 } else { 300_000 };
                    let n = rng.random_range(0..=max).min(rest.len());
                    // Empty feeds are legal and must be harmless.
                    out.push(&rest[..n]);
                    rest = &rest[n..];
                }
                out
            }
        }
    }

    fn stream(bytes: &[u8], dest: &Path, split: Split) -> Result<Extracted> {
        let mut x = StreamExtractor::new(dest);
        for piece in pieces(bytes, split) {
            x.feed(piece)?;
        }
        x.finish()
    }

    /// Relative path → contents (`None` for a directory).
    type Tree = BTreeMap<String, Option<Vec<u8>>>;

    fn tree(dir: &Path) -> Tree {
        let mut out = Tree::new();
        for e in walkdir::WalkDir::new(dir).min_depth(1) {
            let e = e.unwrap();
            let rel = e
                .path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            assert!(!e.path_is_symlink(), "{rel} is a symlink");
            let data = e
                .file_type()
                .is_file()
                .then(|| std::fs::read(e.path()).unwrap());
            out.insert(rel, data);
        }
        out
    }

    /// The tree `entries` should extract to, implied parent directories included.
    fn expected(entries: &[Entry]) -> Tree {
        let mut out = Tree::new();
        for e in entries {
            let (path, data) = match e {
                Entry::Dir(p) => (p, None),
                Entry::File(p, d) => (p, Some(d.clone())),
            };
            let mut parent = String::new();
            for c in path.split('/').collect::<Vec<_>>().split_last().unwrap().1 {
                if !parent.is_empty() {
                    parent.push('/');
                }
                parent.push_str(c);
                out.insert(parent.clone(), None);
            }
            out.insert(path.clone(), data);
        }
        out
    }

    fn counts(entries: &[Entry]) -> Extracted {
        let mut x = Extracted::default();
        for e in entries {
            match e {
                Entry::Dir(_) => x.dirs += 1,
                Entry::File(_, d) => {
                    x.files += 1;
                    x.bytes += d.len() as u64;
                }
            }
        }
        x
    }

    fn archives() -> Vec<(&'static str, Vec<Entry>, bool)> {
        let many: Vec<Entry> = (0..400)
            .map(|i| {
                Entry::file(
                    &format!("d{}/f{i:03}.bin", i % 7),
                    (0..(i * 37 % 1000))
                        .map(|b| (b * i) as u8)
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        let big = vec![
            Entry::file(
                "big/one.bin",
                (0..700_000u32)
                    .map(|i| (i * 7 + i / 256) as u8)
                    .collect::<Vec<_>>(),
            ),
            Entry::file("big/two.bin", vec![0xAB; WRITE_BUFFER + 1]),
            Entry::file("after.txt", b"after\n".to_vec()),
        ];
        vec![
            ("plain", sample(), false),
            ("solid", sample(), true),
            (
                "dirs",
                vec![Entry::dir("a"), Entry::dir("a/b"), Entry::dir("c")],
                false,
            ),
            (
                "empty files",
                vec![
                    Entry::file("e1", Vec::new()),
                    Entry::dir("d"),
                    Entry::file("d/e2", Vec::new()),
                ],
                true,
            ),
            (
                "nested",
                vec![
                    Entry::file("x/y/z/w/file.txt", b"deep".to_vec()),
                    Entry::file("x/y/other.txt", b"o".to_vec()),
                    Entry::dir("x/y/z"),
                ],
                false,
            ),
            ("many", many.clone(), false),
            ("many solid", many, true),
            ("big", big, true),
            ("no entries", Vec::new(), false),
        ]
    }

    #[test]
    fn every_writer_archive_round_trips_in_any_pieces() -> Result<()> {
        for (label, entries, solid) in archives() {
            let bytes = build(
                &entries,
                &Options {
                    solid,
                    ..Options::default()
                },
            )?;
            let dir = tempfile::tempdir()?;
            let arc = dir.path().join("game.eti");
            std::fs::write(&arc, &bytes)?;
            let by_unrar = dir.path().join("unrar");
            std::fs::create_dir(&by_unrar)?;
            unrar_extract(&arc, &by_unrar)?;
            let want = expected(&entries);
            assert_eq!(tree(&by_unrar), want, "{label}: unrar");
            for split in SPLITS {
                let dest = dir.path().join(format!("{split:?}"));
                std::fs::create_dir(&dest)?;
                let got = stream(&bytes, &dest, split)?;
                assert_eq!(got, counts(&entries), "{label} {split:?}");
                assert!(tree(&dest) == want, "{label} {split:?}: tree differs");
                for e in &entries {
                    if let Entry::File(p, _) = e {
                        let m = std::fs::metadata(dest.join(p))?.modified()?;
                        let want = UNIX_EPOCH + Duration::from_secs(FIXED_MTIME.into());
                        assert_eq!(m, want, "{label} {split:?}: mtime of {p}");
                    }
                }
            }
        }
        Ok(())
    }

    // ---- hand-made archives -------------------------------------------------

    fn main_block(archive_flags: u64) -> Vec<u8> {
        let mut body = Vec::new();
        vint(&mut body, HEAD_MAIN);
        vint(&mut body, 0);
        vint(&mut body, archive_flags);
        let mut out = Vec::new();
        block(&mut out, &body).unwrap();
        out
    }

    fn end_block(end_flags: u64) -> Vec<u8> {
        let mut body = Vec::new();
        vint(&mut body, HEAD_END);
        vint(&mut body, 0);
        vint(&mut body, end_flags);
        let mut out = Vec::new();
        block(&mut out, &body).unwrap();
        out
    }

    /// A file (or service) block with its data, every field overridable.
    #[derive(Clone)]
    struct Hdr {
        kind: u64,
        header_flags: u64,
        name: Vec<u8>,
        data: Vec<u8>,
        file_flags: u64,
        unpacked: Option<u64>,
        data_size: Option<u64>,
        attributes: u64,
        crc: Option<u32>,
        comp: u64,
        host: u64,
        extra: Vec<u8>,
    }

    impl Hdr {
        fn file(name: &str, data: &[u8]) -> Self {
            Self {
                kind: HEAD_FILE,
                header_flags: HFL_DATA,
                name: name.as_bytes().to_vec(),
                data: data.to_vec(),
                file_flags: FHFL_UTIME | FHFL_CRC32,
                unpacked: None,
                data_size: None,
                attributes: 0o100644,
                crc: None,
                comp: 0,
                host: HOST_UNIX,
                extra: Vec::new(),
            }
        }

        fn service(name: &str, data: &[u8]) -> Self {
            Self {
                kind: HEAD_SERVICE,
                ..Self::file(name, data)
            }
        }

        fn bytes(&self) -> Vec<u8> {
            let mut body = Vec::new();
            vint(&mut body, self.kind);
            let mut flags = self.header_flags;
            if !self.extra.is_empty() {
                flags |= HFL_EXTRA;
            }
            vint(&mut body, flags);
            if !self.extra.is_empty() {
                vint(&mut body, self.extra.len() as u64);
            }
            if flags & HFL_DATA != 0 {
                vint(&mut body, self.data_size.unwrap_or(self.data.len() as u64));
            }
            vint(&mut body, self.file_flags);
            vint(&mut body, self.unpacked.unwrap_or(self.data.len() as u64));
            vint(&mut body, self.attributes);
            if self.file_flags & FHFL_UTIME != 0 {
                body.extend_from_slice(&FIXED_MTIME.to_le_bytes());
            }
            if self.file_flags & FHFL_CRC32 != 0 {
                let crc = self.crc.unwrap_or_else(|| crc32(&self.data));
                body.extend_from_slice(&crc.to_le_bytes());
            }
            vint(&mut body, self.comp);
            vint(&mut body, self.host);
            vint(&mut body, self.name.len() as u64);
            body.extend_from_slice(&self.name);
            body.extend_from_slice(&self.extra);
            let mut out = Vec::new();
            block(&mut out, &body).unwrap();
            out.extend_from_slice(&self.data);
            out
        }
    }

    /// Signature, main header, `blocks`, end-of-archive.
    fn archive(blocks: &[Vec<u8>]) -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        out.extend(main_block(0));
        for b in blocks {
            out.extend_from_slice(b);
        }
        out.extend(end_block(0));
        out
    }

    /// Streams `bytes` in every split; each must fail with a message holding
    /// `needle`, without panicking and without writing anything outside `dest`.
    /// Returns the last message.
    fn refused(bytes: &[u8], needle: &str) -> String {
        let mut message = String::new();
        for split in SPLITS {
            let dir = tempfile::tempdir().unwrap();
            let dest = dir.path().join("dest");
            std::fs::create_dir(&dest).unwrap();
            let err = stream(bytes, &dest, split).expect_err(needle);
            message = format!("{err:#}");
            assert!(message.contains(needle), "{split:?}: {message}");
            let outside: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(outside, ["dest"], "{split:?}: wrote outside dest");
        }
        message
    }

    #[test]
    fn hand_made_headers_are_valid_for_unrar_and_for_us() -> Result<()> {
        let bytes = archive(&[
            Hdr::file("a.txt", b"alpha").bytes(),
            Hdr::service("CMT", b"a comment").bytes(),
            Hdr::file("b/c.txt", b"charlie").bytes(),
        ]);
        let dir = tempfile::tempdir()?;
        let arc = dir.path().join("h.rar");
        std::fs::write(&arc, &bytes)?;
        let by_unrar = dir.path().join("unrar");
        std::fs::create_dir(&by_unrar)?;
        unrar_extract(&arc, &by_unrar)?;
        let want = expected(&[
            Entry::file("a.txt", b"alpha".to_vec()),
            Entry::file("b/c.txt", b"charlie".to_vec()),
        ]);
        assert_eq!(tree(&by_unrar), want);
        for split in SPLITS {
            let dest = dir.path().join(format!("{split:?}"));
            std::fs::create_dir(&dest)?;
            let got = stream(&bytes, &dest, split)?;
            assert_eq!(tree(&dest), want, "{split:?}");
            assert_eq!(
                got,
                Extracted {
                    files: 2,
                    dirs: 0,
                    bytes: 12
                }
            );
        }
        Ok(())
    }

    #[test]
    fn service_headers_and_skippable_unknown_blocks_are_skipped() -> Result<()> {
        let mut unknown = Vec::new();
        let mut body = Vec::new();
        vint(&mut body, 9);
        vint(&mut body, HFL_SKIP_IF_UNKNOWN | HFL_DATA);
        vint(&mut body, 5);
        block(&mut unknown, &body)?;
        unknown.extend_from_slice(b"12345");
        let bytes = archive(&[
            Hdr::service("CMT", &vec![b'c'; 100_000]).bytes(),
            Hdr::file("a.txt", b"alpha").bytes(),
            unknown,
            Hdr::service("QO", b"").bytes(),
            Hdr::file("b.txt", b"bravo").bytes(),
        ]);
        for split in SPLITS {
            let dir = tempfile::tempdir()?;
            stream(&bytes, dir.path(), split)?;
            assert_eq!(
                tree(dir.path()),
                expected(&[
                    Entry::file("a.txt", b"alpha".to_vec()),
                    Entry::file("b.txt", b"bravo".to_vec())
                ]),
                "{split:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn unknown_blocks_without_the_skip_flag_are_refused() {
        let mut unknown = Vec::new();
        let mut body = Vec::new();
        vint(&mut body, 9);
        vint(&mut body, 0);
        block(&mut unknown, &body).unwrap();
        refused(&archive(&[unknown]), "unknown block type 9");
    }

    #[test]
    fn a_flipped_data_byte_is_a_crc_error_naming_the_entry() {
        let entries = [
            Entry::file("first.bin", vec![1u8; 10]),
            Entry::file("dir/victim.bin", vec![7u8; 100]),
            Entry::file("last.bin", vec![2u8; 10]),
        ];
        let mut bytes = build(&entries, &Options::default()).unwrap();
        let at = bytes.windows(100).position(|w| w == [7u8; 100]).unwrap();
        bytes[at + 50] ^= 0x01;
        let message = refused(&bytes, "CRC32 mismatch");
        assert!(message.contains("\"dir/victim.bin\""), "{message}");
    }

    #[test]
    fn a_flipped_header_byte_is_a_header_crc_error() {
        let mut bytes = build(&sample(), &Options::default()).unwrap();
        let at = bytes
            .windows(b"empty.txt".len())
            .position(|w| w == b"empty.txt")
            .unwrap();
        bytes[at] = b'E';
        refused(&bytes, "header CRC mismatch");
    }

    /// Every single flipped byte (signature, headers, CRCs, data) fails the
    /// extraction, and none panics.
    #[test]
    fn every_flipped_byte_is_detected() {
        let entries = [
            Entry::dir("d"),
            Entry::file("d/a.bin", vec![3u8; 40]),
            Entry::file("e.txt", Vec::new()),
        ];
        let bytes = build(&entries, &Options::default()).unwrap();
        for at in 0..bytes.len() {
            for bit in [0x01, 0x80] {
                let mut bad = bytes.clone();
                bad[at] ^= bit;
                let dir = tempfile::tempdir().unwrap();
                assert!(
                    stream(&bad, dir.path(), Split::Whole).is_err(),
                    "flipping bit {bit:#x} of byte {at} went unnoticed"
                );
            }
        }
    }

    /// Every proper prefix of an archive fails (at `finish` at the latest).
    #[test]
    fn a_truncated_archive_fails_finish() {
        let small = [
            Entry::dir("d"),
            Entry::file("d/a.bin", vec![3u8; 40]),
            Entry::file("e.txt", Vec::new()),
            Entry::file("x/y.txt", b"why".to_vec()),
        ];
        let options = Options {
            solid: true,
            ..Options::default()
        };
        let bytes = build(&small, &options).unwrap();
        for len in 0..bytes.len() {
            let dir = tempfile::tempdir().unwrap();
            let mut x = StreamExtractor::new(dir.path());
            x.feed(&bytes[..len]).unwrap();
            let err = x.finish().expect_err("truncated");
            assert!(format!("{err:#}").contains("truncated"), "{len}: {err:#}");
        }
        let bytes = build(&sample(), &options).unwrap();
        let dir = tempfile::tempdir().unwrap();
        // Inside the data of the last file (12 bytes, then the 8-byte end block).
        let cut = bytes.len() - 8 - 5;
        let mut x = StreamExtractor::new(dir.path());
        x.feed(&bytes[..cut]).unwrap();
        let message = format!("{:#}", x.finish().unwrap_err());
        assert!(message.contains("deep/a/b/c.ini"), "{message}");
    }

    #[test]
    fn trailing_bytes_after_the_end_block_are_an_error() {
        let mut bytes = build(&sample(), &Options::default()).unwrap();
        bytes.push(0);
        refused(&bytes, "after the end-of-archive block");
    }

    #[test]
    fn hostile_names_are_refused_and_nothing_lands_outside_dest() {
        for name in [
            "../x",
            "/abs",
            "a//b",
            "a/../../x",
            "a\\b",
            "",
            "a\0b",
            ".",
            "x/./y",
            "x/",
        ] {
            let bytes = archive(&[Hdr::file(name, b"evil").bytes()]);
            refused(&bytes, "invalid archive entry name");
            let mut dir = Hdr::file(name, b"");
            dir.file_flags |= FHFL_DIRECTORY;
            refused(&archive(&[dir.bytes()]), "invalid archive entry name");
        }
        let mut not_utf8 = Hdr::file("x", b"evil");
        not_utf8.name = b"a\xff".to_vec();
        refused(&archive(&[not_utf8.bytes()]), "not UTF-8");
    }

    #[test]
    fn links_are_refused() {
        // Redirection record: size, type 5, redirection type 1 (Unix
        // symlink), flags, target length, target.
        let target = b"/etc/passwd";
        let mut record = Vec::new();
        vint(&mut record, FHEXTRA_REDIR);
        vint(&mut record, 1);
        vint(&mut record, 0);
        vint(&mut record, target.len() as u64);
        record.extend_from_slice(target);
        let mut link = Hdr::file("link", b"");
        vint(&mut link.extra, record.len() as u64);
        link.extra.extend_from_slice(&record);
        refused(&archive(&[link.bytes()]), "links are refused");

        let mut unix = Hdr::file("link", b"/etc/passwd");
        unix.attributes = 0o120777;
        refused(&archive(&[unix.bytes()]), "links are refused");

        let mut windows = Hdr::file("link", b"x");
        windows.host = HOST_WINDOWS;
        windows.attributes = 0x20 | WIN_ATTR_REPARSE_POINT;
        refused(&archive(&[windows.bytes()]), "links are refused");
    }

    #[test]
    fn compressed_entries_get_the_clear_error() {
        let mut h = Hdr::file("bin/game.exe", b"packed");
        h.comp = 3 << 7;
        let message = refused(&archive(&[h.bytes()]), "is compressed (method 3)");
        assert!(
            message.contains(
                "entry \"bin/game.exe\" is compressed (method 3); stream-install handles stored \
                 archives only — use download + install"
            ),
            "{message}"
        );
    }

    #[test]
    fn encryption_is_refused() {
        let mut record = Vec::new();
        vint(&mut record, FHEXTRA_CRYPT);
        record.extend_from_slice(&[0; 20]);
        let mut h = Hdr::file("secret", b"xx");
        vint(&mut h.extra, record.len() as u64);
        h.extra.extend_from_slice(&record);
        refused(&archive(&[h.bytes()]), "is encrypted");

        let mut bytes = SIGNATURE.to_vec();
        let mut body = Vec::new();
        vint(&mut body, HEAD_CRYPT);
        vint(&mut body, 0);
        body.extend_from_slice(&[0; 20]);
        block(&mut bytes, &body).unwrap();
        refused(&bytes, "headers are encrypted");
    }

    #[test]
    fn multivolume_archives_are_refused() {
        let mut bytes = SIGNATURE.to_vec();
        bytes.extend(main_block(MHFL_VOLUME | MHFL_SOLID));
        refused(&bytes, "multivolume");
        let mut bytes = SIGNATURE.to_vec();
        bytes.extend(main_block(0));
        bytes.extend(end_block(EHFL_NEXT_VOLUME));
        refused(&bytes, "multivolume");
        let mut split = Hdr::file("part", b"12");
        split.header_flags |= HFL_SPLIT_AFTER;
        refused(&archive(&[split.bytes()]), "multivolume");
    }

    #[test]
    fn other_signatures_are_refused_clearly() {
        let mut rar4 = b"Rar!\x1a\x07\x00".to_vec();
        rar4.extend_from_slice(&[0xCF, 0x90, 0x73, 0, 0, 0x0D, 0, 0, 0, 0, 0, 0, 0]);
        refused(&rar4, "RAR4 archives cannot be streamed");
        refused(b"PK\x03\x04 a zip file", "not a RAR archive");
        refused(b"Rar!\x1a\x07\x02\x00....", "not a RAR archive");
        refused(b"Rar!\x1a\x07\x01\x01....", "unsupported RAR version");
        refused(b"R", "truncated");
        refused(b"", "truncated");
    }

    #[test]
    fn huge_or_malformed_numbers_are_errors_not_panics() {
        let sig = SIGNATURE.to_vec();
        // A header size field that never ends.
        let mut endless = sig.clone();
        endless.extend_from_slice(&[0; 4]);
        endless.extend_from_slice(&[0x80; 11]);
        refused(&endless, "longer than 10 bytes");
        // A ten-byte vint beyond 64 bits.
        let mut wide = sig.clone();
        wide.extend_from_slice(&[0; 4]);
        wide.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]);
        refused(&wide, "exceeds 64 bits");
        // A header larger than 2 MiB (no bytes need to follow).
        let mut large = sig.clone();
        large.extend_from_slice(&[0; 4]);
        vint(&mut large, MAX_HEADER_SIZE + 1);
        refused(&large, "header size 2097153");
        let mut zero = sig.clone();
        zero.extend_from_slice(&[0; 4]);
        vint(&mut zero, 0);
        refused(&zero, "header size 0");

        let mut h = Hdr::file("a", b"");
        h.data_size = Some(u64::MAX);
        h.unpacked = Some(u64::MAX);
        refused(&archive(&[h.bytes()]), "impossibly large");

        let mut h = Hdr::file("a", b"x");
        h.name = Vec::new();
        let mut bytes = h.bytes();
        // Rewrite the name length (the byte before the empty name, i.e. the
        // last body byte) as a huge vint: rebuild the block by hand.
        bytes.clear();
        let mut body = Vec::new();
        vint(&mut body, HEAD_FILE);
        vint(&mut body, HFL_DATA);
        vint(&mut body, 1);
        vint(&mut body, FHFL_CRC32);
        vint(&mut body, 1);
        vint(&mut body, 0o100644);
        body.extend_from_slice(&crc32(b"x").to_le_bytes());
        vint(&mut body, 0);
        vint(&mut body, HOST_UNIX);
        vint(&mut body, u64::MAX);
        block(&mut bytes, &body).unwrap();
        bytes.push(b'x');
        refused(&archive(&[bytes]), "runs past the end of the header");

        let mut body = Vec::new();
        vint(&mut body, HEAD_FILE);
        vint(&mut body, HFL_EXTRA);
        vint(&mut body, u64::MAX >> 1);
        let mut bytes = Vec::new();
        block(&mut bytes, &body).unwrap();
        refused(&archive(&[bytes]), "extra area size");

        // An extra record larger than the extra area.
        let mut h = Hdr::file("a", b"x");
        vint(&mut h.extra, 1 << 40);
        h.extra.push(2);
        refused(&archive(&[h.bytes()]), "overruns the header");

        // A huge but representable data size: accepted, then truncated.
        let mut h = Hdr::file("big", b"");
        h.data_size = Some(1 << 62);
        h.unpacked = Some(1 << 62);
        refused(&archive(&[h.bytes()]), "truncated");
    }

    #[test]
    fn sizes_and_checksums_must_be_consistent() {
        let mut h = Hdr::file("a", b"abc");
        h.unpacked = Some(4);
        refused(&archive(&[h.bytes()]), "unpacked size 4 differs");
        let mut h = Hdr::file("a", b"abc");
        h.file_flags &= !FHFL_CRC32;
        refused(&archive(&[h.bytes()]), "has no CRC32");
        let mut h = Hdr::file("dir", b"abc");
        h.file_flags |= FHFL_DIRECTORY;
        refused(&archive(&[h.bytes()]), "has 3 bytes of data");
        let mut h = Hdr::file("empty", b"");
        h.crc = Some(1);
        refused(&archive(&[h.bytes()]), "CRC32 mismatch");
    }

    #[test]
    fn existing_targets_are_refused() {
        let twice = archive(&[Hdr::file("a", b"1").bytes(), Hdr::file("a", b"2").bytes()]);
        refused(&twice, "already exists");
        let mut dir = Hdr::file("a", b"");
        dir.file_flags |= FHFL_DIRECTORY;
        let file_then_dir = archive(&[Hdr::file("a", b"1").bytes(), dir.bytes()]);
        refused(&file_then_dir, "exists and is not a directory");
        let file_then_child =
            archive(&[Hdr::file("a", b"1").bytes(), Hdr::file("a/b", b"2").bytes()]);
        refused(&file_then_child, "exists and is not a directory");
        // A directory entry for an existing directory is fine.
        let dir_twice = archive(&[Hdr::file("d/f", b"1").bytes(), {
            let mut d = Hdr::file("d", b"");
            d.file_flags |= FHFL_DIRECTORY;
            d.bytes()
        }]);
        let dir = tempfile::tempdir().unwrap();
        stream(&dir_twice, dir.path(), Split::Whole).unwrap();
    }

    #[test]
    fn symlinks_already_in_dest_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("dest");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&dest).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, dest.join("d")).unwrap();
        std::os::unix::fs::symlink(outside.join("f"), dest.join("f")).unwrap();
        let via_dir = archive(&[Hdr::file("d/x", b"1").bytes()]);
        let err = stream(&via_dir, &dest, Split::Whole).unwrap_err();
        assert!(format!("{err:#}").contains("not a directory"), "{err:#}");
        let via_file = archive(&[Hdr::file("f", b"1").bytes()]);
        let err = stream(&via_file, &dest, Split::Whole).unwrap_err();
        assert!(format!("{err:#}").contains("already exists"), "{err:#}");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }

    #[test]
    fn the_extractor_can_move_to_a_blocking_thread() {
        fn is_send<T: Send + 'static>() {}
        is_send::<StreamExtractor>();
    }

    #[test]
    fn a_failed_stream_stays_failed() {
        let mut x = StreamExtractor::new(Path::new("/nonexistent-dest"));
        assert!(x.feed(b"PK").is_err());
        let err = x.feed(SIGNATURE).unwrap_err();
        assert!(format!("{err:#}").contains("failed earlier"), "{err:#}");
        assert!(x.finish().is_err());
        // A destination that does not exist: the error names the path.
        let bytes = archive(&[Hdr::file("a", b"1").bytes()]);
        let err = stream(&bytes, Path::new("/nonexistent-dest"), Split::Whole).unwrap_err();
        assert!(
            format!("{err:#}").contains("/nonexistent-dest/a"),
            "{err:#}"
        );
    }
}
