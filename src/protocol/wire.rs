//! Peer-to-peer wire messages and their framing.
//!
//! Every connection carries, in each direction, one unidirectional
//! *announce* stream (a `Hello`, then `Library` updates) and any number of
//! bidirectional *request* streams (one request, one response, then raw bytes
//! for a chunk). Frames are a 4-byte big-endian length and a JSON body; a
//! frame over `MAX_FRAME` or a body that does not parse is a protocol error
//! and the stream is dropped.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// Wire protocol version carried in `Hello`; a peer refuses other versions.
/// 2: the hello's peer ID must be the one the connection's certificate
/// proves (`transport::peer_id_of_connection`).
/// 3: file descriptors carry block digests (`FileDesc::blocks`), and chunk
/// requests may reach past a chunk to whole digest blocks.
/// 4: `chunks` requests: the ranges of many small files in one request.
pub const PROTOCOL_VERSION: u32 = 4;
/// Largest frame accepted, to bound memory against hostile peers.
pub const MAX_FRAME: usize = 4 << 20;
/// Encoded descriptors a sender puts in one `game-files` page: well inside
/// `MAX_FRAME` (a 100,000-file list is ~4.8 MB, so it takes five pages).
pub const FILE_LIST_PAGE: usize = 1 << 20;
/// Most ranges one `chunks` request may ask for; a source refuses more.
pub const MAX_BATCH_PARTS: usize = 256;
/// Most bytes one `chunks` request may ask for over all its parts; a source
/// refuses more. Receivers batch short chunks of at most 1 MiB a request;
/// the bound keeps one small request from asking for 256 whole files.
pub const MAX_BATCH_BYTES: u64 = 16 << 20;
/// Most descriptors a receiver takes in one file list, over all its pages.
pub const MAX_LIST_FILES: usize = 1_000_000;
/// Most frame bytes a receiver reads for one file list, over all its pages:
/// with `MAX_LIST_FILES`, what a hostile source can make it buffer.
pub const MAX_LIST_BYTES: usize = 128 << 20;

/// One ready game root as advertised to others (raw, unfiltered version).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GameAd {
    pub game_id: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Announce {
    Hello {
        protocol: u32,
        peer_id: String,
        /// The sender's listener address, as others should dial it.
        addr: String,
        games: Vec<GameAd>,
    },
    /// The sender's whole library after a change (small: IDs and versions).
    Library { games: Vec<GameAd> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// The file list of a ready game root.
    GameFiles { game_id: String },
    /// `len` bytes of `path` from `offset`.
    Chunk {
        game_id: String,
        path: String,
        offset: u64,
        len: u64,
    },
    /// The ranges `parts` of `game_id`'s files, one after the other in one
    /// answer: many small files without a request each (at most
    /// `MAX_BATCH_PARTS`).
    Chunks { game_id: String, parts: Vec<Part> },
}

/// One range of a `chunks` request: `len` bytes of `path` from `offset`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Part {
    pub path: String,
    pub offset: u64,
    pub len: u64,
}

/// One regular file of a game root; `path` is relative, `/`-separated.
/// `blocks` holds one digest per `digest::BLOCK` of the file, in order (an
/// empty file has none, and the field is then left out); a receiver checks
/// every byte it fetches against them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDesc {
    pub path: String,
    pub size: u64,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "digests_exact"
    )]
    pub blocks: Vec<crate::protocol::digest::Digest>,
}

/// A digest list, decoded with no spare room: JSON tells no length up
/// front, so a decoded list had room for four digests where most files
/// have one, ~5 MiB of a 100,000-file list at the receiver.
fn digests_exact<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<crate::protocol::digest::Digest>, D::Error> {
    let mut blocks = Vec::<crate::protocol::digest::Digest>::deserialize(d)?;
    blocks.shrink_to_fit();
    Ok(blocks)
}

impl FileDesc {
    /// A descriptor whose digests are yet to be filled in.
    pub fn new(path: impl Into<String>, size: u64) -> Self {
        Self {
            path: path.into(),
            size,
            blocks: Vec::new(),
        }
    }

    /// Frame bytes this descriptor takes at most, encoded (see
    /// `file_list_pages`).
    pub fn encoded_bound(&self) -> usize {
        // `{"path":…,"size":…,"blocks":[…]},`: the path's escaping is at most
        // 6 bytes a byte (\u00XX), the rest at most 50; each digest is its
        // hex and 3 bytes of quotes and comma.
        self.path.len() * 6
            + 50
            + self.blocks.len() * (2 * crate::protocol::digest::DIGEST_BYTES + 3)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Response {
    /// One page of a file list; pages follow on the same stream while
    /// `more` is true (see `file_list_pages`).
    GameFiles {
        game_id: String,
        version: String,
        files: Vec<FileDesc>,
        more: bool,
    },
    /// Exactly `len` raw bytes follow on the stream (for `chunks`, the sum
    /// of the parts' lengths: each part's bytes in the order asked).
    Chunk { len: u64 },
    /// The request was refused; `reason` says why.
    Denied { reason: String },
}

/// Splits a file list into pages of about `budget` encoded bytes each (at
/// least one descriptor a page, and one empty page for an empty list), so
/// every `game-files` frame stays far below `MAX_FRAME` whatever the list.
pub fn file_list_pages(files: &[FileDesc], budget: usize) -> Vec<&[FileDesc]> {
    let mut pages = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, f) in files.iter().enumerate() {
        let len = f.encoded_bound();
        if i > start && bytes + len > budget {
            pages.push(&files[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += len;
    }
    if start < files.len() || pages.is_empty() {
        pages.push(&files[start..]);
    }
    pages
}

/// Writes one frame.
pub async fn write_frame<T: Serialize>(send: &mut quinn::SendStream, msg: &T) -> Result<()> {
    let body = serde_json::to_vec(msg).context("encoding frame")?;
    let len = u32::try_from(body.len()).context("frame too large")?;
    send.write_all(&len.to_be_bytes()).await?;
    send.write_all(&body).await?;
    Ok(())
}

/// Reads one frame; `Ok(None)` when the stream ended cleanly before a frame.
pub async fn read_frame<T: DeserializeOwned>(recv: &mut quinn::RecvStream) -> Result<Option<T>> {
    match read_frame_body(recv).await? {
        Some(body) => decode(&body).map(Some),
        None => Ok(None),
    }
}

/// The body of the next frame; `None` when the stream ended cleanly before one.
async fn read_frame_body(recv: &mut quinn::RecvStream) -> Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match recv.read_exact(&mut len).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(e) => return Err(e).context("reading frame length"),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        bail!("frame of {len} bytes exceeds the {MAX_FRAME}-byte limit");
    }
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body)
        .await
        .context("reading frame body")?;
    Ok(Some(body))
}

/// Parses a response frame body, as `decode` does. A file-list page, the
/// one large answer, is parsed straight into its fields first: through the
/// internally tagged `Response`, serde copies the whole page into an untyped
/// tree before it reads it (~9,000 descriptors a page). What this accepts,
/// `decode` accepts the same; anything else goes the usual way.
pub fn decode_response(body: &[u8]) -> Result<Response> {
    #[derive(Deserialize)]
    enum PageTag {
        #[serde(rename = "game-files")]
        GameFiles,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Page {
        #[serde(rename = "type")]
        _tag: PageTag,
        game_id: String,
        version: String,
        files: Vec<FileDesc>,
        more: bool,
    }
    match serde_json::from_slice::<Page>(body) {
        Ok(Page {
            _tag: PageTag::GameFiles,
            game_id,
            version,
            files,
            more,
        }) => Ok(Response::GameFiles {
            game_id,
            version,
            files,
            more,
        }),
        Err(_) => decode(body),
    }
}

/// Reads one response frame (see `read_frame`, `decode_response`).
pub async fn read_response(recv: &mut quinn::RecvStream) -> Result<Option<Response>> {
    match read_frame_body(recv).await? {
        Some(body) => decode_response(&body).map(Some),
        None => Ok(None),
    }
}

/// Parses a frame body; kept apart so the parsing rules are unit-testable.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).context("malformed frame")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page parsed the fast way equals the usual parse, and everything the
    /// fast way refuses (other answers, unknown fields, a wrong tag) is
    /// still parsed or refused as `decode` does.
    #[test]
    fn responses_decode_the_same_either_way() -> Result<()> {
        let page = Response::GameFiles {
            game_id: "g".into(),
            version: "1".into(),
            files: vec![
                FileDesc::new("a/b", 3),
                FileDesc::new("c", 0),
                FileDesc {
                    blocks: vec![
                        crate::protocol::digest::Digest(
                            [7; crate::protocol::digest::DIGEST_BYTES]
                        );
                        2
                    ],
                    ..FileDesc::new("d", 2 * crate::protocol::digest::BLOCK)
                },
            ],
            more: true,
        };
        let frames = [
            serde_json::to_vec(&page)?,
            serde_json::to_vec(&Response::Chunk { len: 5 })?,
            serde_json::to_vec(&Response::Denied { reason: "no".into() })?,
            br#"{"type":"game-files","game_id":"g","version":"1","files":[],"more":false,"x":1}"#.to_vec(),
            br#"{"type":"game-file","game_id":"g","version":"1","files":[],"more":false}"#.to_vec(),
            br#"{"game_id":"g","version":"1","files":[],"more":false}"#.to_vec(),
            br#"{"type":"game-files","game_id":"g","version":"1","files":[{"path":"a","size":1,"y":2}],"more":false}"#.to_vec(),
            br#"{"more":false,"files":[],"version":"1","game_id":"g","type":"game-files"}"#.to_vec(),
        ];
        for frame in &frames {
            let fast = decode_response(frame).map_err(|e| e.to_string());
            let usual = decode::<Response>(frame).map_err(|e| e.to_string());
            assert_eq!(
                fast.is_ok(),
                usual.is_ok(),
                "{}",
                String::from_utf8_lossy(frame)
            );
            if let (Ok(a), Ok(b)) = (&fast, &usual) {
                assert_eq!(a, b);
            }
        }
        assert_eq!(decode_response(&frames[0])?, page);
        // Decoded digest lists keep no spare room (a receiver holds
        // 100,000 of them).
        for decoded in [
            decode_response(&frames[0])?,
            decode::<Response>(&frames[0])?,
        ] {
            let Response::GameFiles { files, .. } = decoded else {
                panic!("not a page");
            };
            assert!(files.iter().all(|f| f.blocks.capacity() == f.blocks.len()));
        }
        Ok(())
    }

    #[test]
    fn messages_round_trip_and_unknown_fields_are_refused() -> Result<()> {
        let hello = Announce::Hello {
            protocol: PROTOCOL_VERSION,
            peer_id: "ab".into(),
            addr: "127.0.0.1:1".into(),
            games: vec![GameAd {
                game_id: "cnc4".into(),
                version: "20170204".into(),
            }],
        };
        let bytes = serde_json::to_vec(&hello)?;
        assert_eq!(decode::<Announce>(&bytes)?, hello);
        assert!(decode::<Request>(br#"{"type":"game-files","game_id":"x","evil":1}"#).is_err());
        assert!(
            decode::<Request>(br#"{"type":"chunk","game_id":"x","path":"a","offset":-1,"len":1}"#)
                .is_err()
        );
        assert!(decode::<Response>(b"\xff\xfe").is_err());
        Ok(())
    }

    #[test]
    fn file_lists_are_paged_below_the_frame_limit() -> Result<()> {
        let f = |i: usize| FileDesc {
            path: format!("data/d{:03}/f{i:06}.bin", i % 1000),
            size: i as u64,
            blocks: if i.is_multiple_of(7) {
                vec![crate::protocol::digest::Digest([0x5a; 16]); i % 5]
            } else {
                Vec::new()
            },
        };
        let files: Vec<FileDesc> = (0..100_000).map(f).collect();
        let pages = file_list_pages(&files, FILE_LIST_PAGE);
        assert!(pages.len() > 1, "{} pages", pages.len());
        // In order, nothing lost or repeated, each frame under the bound.
        let joined: Vec<FileDesc> = pages.iter().flat_map(|p| p.iter().cloned()).collect();
        assert_eq!(joined, files);
        for (i, page) in pages.iter().enumerate() {
            let frame = serde_json::to_vec(&Response::GameFiles {
                game_id: "g".into(),
                version: "20240101".into(),
                files: page.to_vec(),
                more: i + 1 < pages.len(),
            })?;
            assert!(
                frame.len() <= FILE_LIST_PAGE + 100,
                "page {i}: {}",
                frame.len()
            );
            assert!(frame.len() < MAX_FRAME);
        }
        // The whole list would not have fit one frame.
        assert!(serde_json::to_vec(&files)?.len() > MAX_FRAME);
        assert_eq!(
            file_list_pages(&[], FILE_LIST_PAGE),
            vec![&[] as &[FileDesc]]
        );
        // A path of control characters escapes to 6 bytes a byte: still paged.
        let odd = vec![FileDesc::new("\u{1}".repeat(4000), 1); 100];
        for page in file_list_pages(&odd, 64 << 10) {
            assert!(serde_json::to_vec(page)?.len() <= (64 << 10) + 24_100);
        }
        Ok(())
    }
}
