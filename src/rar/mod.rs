//! RAR5 archives with *stored* entries, the `.eti` archives of games:
//!
//! - `format`: the one table of RAR 5.0 constants, vints, CRC32 and the
//!   entry-name rule, shared by both sides;
//! - `writer`: [`build`] writes a deterministic archive of [`Entry`]s;
//! - [`stream`]: [`StreamExtractor`], a push-based extractor that unpacks an
//!   archive from its bytes as they arrive (for stream-install), without
//!   ever holding or seeking the archive.

mod format;
pub mod stream;
mod writer;

pub use format::{Crc32, check_name, crc32};
pub use stream::{Extracted, StreamExtractor};
pub use writer::{Entry, FIXED_MTIME, Options, build};
