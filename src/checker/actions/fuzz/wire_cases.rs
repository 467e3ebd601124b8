//! The cases `fuzzWire` sends: the fixed, named hostile frames and seeded
//! random mutations of valid ones, and what the checker knows of the
//! target to build them (`Known`). `wire` sends them and judges the replies.

use crate::protocol::wire::{
    FileDesc, MAX_BATCH_BYTES, MAX_BATCH_PARTS, MAX_FRAME, PROTOCOL_VERSION,
};
use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where a case's bytes go.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Channel {
    /// A bidirectional request stream.
    Request,
    /// The unidirectional announce stream.
    Announce,
    /// Open this many request streams, send half a length prefix, walk away.
    Abandon(usize),
}

#[derive(Debug, Clone)]
pub(super) struct WireCase {
    pub name: String,
    pub channel: Channel,
    pub bytes: Vec<u8>,
}

pub(super) fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

pub(super) fn frame_json(v: &Value) -> Vec<u8> {
    frame(v.to_string().as_bytes())
}

/// What the checker learned from the target before fuzzing it.
pub(super) struct Known {
    pub peer_id: String,
    /// The ID the fuzzing client's own certificate proves: the only ID a
    /// hello from it may claim (PROTOCOL.md, "Identity").
    pub client_id: String,
    /// Game ID → files, for every game the target really serves.
    pub files: BTreeMap<String, Vec<FileDesc>>,
    pub games_dir: PathBuf,
}

impl Known {
    pub fn first_file(&self) -> (String, FileDesc) {
        self.files
            .iter()
            .find_map(|(g, f)| {
                f.iter()
                    .max_by_key(|f| f.size)
                    .map(|f| (g.clone(), f.clone()))
            })
            .unwrap_or_else(|| ("cnc4".into(), FileDesc::new("version.ini", 0)))
    }
}

pub(super) fn hello(peer_id: &str, protocol: u32) -> Value {
    json!({ "type": "hello", "protocol": protocol, "peer_id": peer_id,
            "addr": "127.0.0.1:9", "games": [] })
}

/// Paths (relative to the target's game root) the fixed cases use.
pub(super) const LINK_FILE: &str = "fuzz-link";

pub(super) const LINK_DIR: &str = "fuzz-dirlink";

pub(super) const LOCAL_SECRET: &str = "local/fuzz-secret";

/// Relative symlinks that stay inside the root but land under `local/`: to
/// the file, and to the folder (a lookup beneath the root that followed
/// symlinks would reach `local/` through either).
pub(super) const LINK_LOCAL: &str = "fuzz-locallink";

pub(super) const LINK_LOCAL_DIR: &str = "fuzz-localdir";

/// The fixed, named hostile cases.
pub(super) fn named_cases(k: &Known) -> Vec<WireCase> {
    let (game, file) = k.first_file();
    let chunk = |path: &str, offset: u64, len: u64| {
        frame_json(&json!({ "type": "chunk", "game_id": game, "path": path,
                            "offset": offset, "len": len }))
    };
    let chunk_for = |game_id: &str| {
        frame_json(
            &json!({ "type": "chunk", "game_id": game_id, "path": file.path,
                            "offset": 0, "len": 1 }),
        )
    };
    let files_for =
        |game_id: &str| frame_json(&json!({ "type": "game-files", "game_id": game_id }));
    // A `chunks` request of `parts`, each (path, offset, len).
    let chunks = |parts: &[(&str, u64, u64)]| {
        let parts: Vec<Value> = parts
            .iter()
            .map(|(path, offset, len)| json!({ "path": path, "offset": offset, "len": len }))
            .collect();
        frame_json(&json!({ "type": "chunks", "game_id": game, "parts": parts }))
    };
    let good = (file.path.as_str(), 0, 1);
    let whole = (file.path.as_str(), 0, file.size);
    let parent = format!("../{game}/{}", file.path);
    let abs = k.games_dir.join(&game).join(&file.path);
    let mut oversized = ((MAX_FRAME + 1) as u32).to_be_bytes().to_vec();
    oversized.extend_from_slice(b"{\"type\":");
    let mut truncated = 100u32.to_be_bytes().to_vec();
    truncated.extend_from_slice(b"{\"type\":\"ga");
    let garbage: Vec<u8> = (0..64u32).map(|i| (i * 37 + 11) as u8).collect();
    let mut second_hello = frame_json(&hello(&k.client_id, PROTOCOL_VERSION));
    second_hello.extend(frame_json(&hello(&k.client_id, PROTOCOL_VERSION)));
    let r = |name: &str, bytes: Vec<u8>| WireCase {
        name: name.into(),
        channel: Channel::Request,
        bytes,
    };
    let a = |name: &str, bytes: Vec<u8>| WireCase {
        name: name.into(),
        channel: Channel::Announce,
        bytes,
    };
    vec![
        r("request: garbage bytes", garbage.clone()),
        a("announce: garbage bytes", garbage),
        r("request: length prefix over 4 MiB", oversized.clone()),
        a("announce: length prefix over 4 MiB", oversized),
        r("request: truncated frame", truncated.clone()),
        a("announce: truncated frame", truncated),
        r(
            "request: a hello on a request stream",
            frame_json(&hello(&k.client_id, PROTOCOL_VERSION)),
        ),
        r("request: a JSON array", frame(b"[1,2,3]")),
        r("request: a JSON string", frame(b"\"chunk\"")),
        r(
            "request: unknown type",
            frame_json(&json!({ "type": "delete", "game_id": game })),
        ),
        a(
            "announce: a request on the announce stream",
            files_for(&game),
        ),
        r(
            "request: unknown field",
            frame_json(&json!({ "type": "game-files", "game_id": game, "admin": true })),
        ),
        a(
            "announce: hello with an unknown field",
            frame_json(
                &json!({ "type": "hello", "protocol": PROTOCOL_VERSION, "peer_id": k.client_id,
                                "addr": "127.0.0.1:9", "games": [], "admin": true }),
            ),
        ),
        a(
            "announce: hello of protocol 999",
            frame_json(&hello("fuzz-p", 999)),
        ),
        a(
            "announce: hello with the target's own peer id",
            frame_json(&hello(&k.peer_id, PROTOCOL_VERSION)),
        ),
        a("announce: a second hello", second_hello),
        a(
            "announce: hello claiming an ID its certificate does not prove",
            frame_json(&hello("0123456789abcdef0123456789abcdef", PROTOCOL_VERSION)),
        ),
        a(
            "announce: hello of protocol 1 (IDs claimed, not proven)",
            frame_json(&hello(&k.client_id, 1)),
        ),
        a(
            "announce: hello of protocol 2 (no block digests)",
            frame_json(&hello(&k.client_id, 2)),
        ),
        a(
            "announce: hello with an invalid addr",
            frame_json(
                &json!({ "type": "hello", "protocol": PROTOCOL_VERSION, "peer_id": k.client_id,
                                "addr": "../x", "games": [] }),
            ),
        ),
        r(
            "chunk: ../ path",
            chunk(&format!("../{game}/{}", file.path), 0, 1),
        ),
        r(
            "chunk: deep ../ path",
            chunk("../../../../../../etc/passwd", 0, 1),
        ),
        r("chunk: absolute path outside", chunk("/etc/passwd", 0, 1)),
        r(
            "chunk: absolute path of a served file",
            chunk(&abs.to_string_lossy(), 0, 1),
        ),
        r("chunk: local/ path", chunk(LOCAL_SECRET, 0, 1)),
        r("chunk: symlink to a file outside", chunk(LINK_FILE, 0, 1)),
        r("chunk: symlink into local/", chunk(LINK_LOCAL, 0, 1)),
        r(
            "chunk: path through a symlink to local/",
            chunk(&format!("{LINK_LOCAL_DIR}/fuzz-secret"), 0, 1),
        ),
        r(
            "chunk: path through a symlinked dir",
            chunk(&format!("{LINK_DIR}/secret"), 0, 1),
        ),
        r("chunk: empty path", chunk("", 0, 1)),
        r("chunk: the root itself", chunk(".", 0, 1)),
        r(
            "chunk: offset past the end",
            chunk(&file.path, file.size + 1, 1),
        ),
        r("chunk: len = u64::MAX", chunk(&file.path, 0, u64::MAX)),
        r(
            "chunk: offset+len overflows",
            chunk(&file.path, u64::MAX - 1, 2),
        ),
        r(
            "chunk: one byte past the end",
            chunk(&file.path, 0, file.size + 1),
        ),
        r("chunk: negative offset", {
            let body = format!(
                "{{\"type\":\"chunk\",\"game_id\":{},\"path\":{},\"offset\":-1,\"len\":1}}",
                json!(game),
                json!(file.path)
            );
            frame(body.as_bytes())
        }),
        r("chunks: no parts", chunks(&[])),
        r(
            "chunks: more parts than MAX_BATCH_PARTS",
            chunks(&vec![good; MAX_BATCH_PARTS + 1]),
        ),
        r(
            "chunks: more bytes than MAX_BATCH_BYTES",
            // (over MAX_BATCH_PARTS too when the largest file is small)
            chunks(&vec![
                whole;
                (MAX_BATCH_BYTES / file.size.max(1) + 1).min(MAX_BATCH_PARTS as u64 + 1)
                    as usize
            ]),
        ),
        r(
            "chunks: lengths that overflow u64 together",
            chunks(&[(&file.path, 0, u64::MAX), (&file.path, 0, 2)]),
        ),
        r(
            "chunks: a ../ part after a good one",
            chunks(&[good, (&parent, 0, 1)]),
        ),
        r(
            "chunks: a local/ part after a good one",
            chunks(&[good, (LOCAL_SECRET, 0, 1)]),
        ),
        r(
            "chunks: a symlinked part",
            chunks(&[good, (LINK_FILE, 0, 1)]),
        ),
        r(
            "chunks: a symlinked-into-local/ part",
            chunks(&[good, (LINK_LOCAL, 0, 1)]),
        ),
        r(
            "chunks: a part past the end",
            chunks(&[good, (&file.path, file.size, 1)]),
        ),
        r(
            "chunks: a part whose offset+len overflows",
            chunks(&[good, (&file.path, u64::MAX - 1, 2)]),
        ),
        r(
            "chunks: a part with an unknown field",
            frame_json(&json!({ "type": "chunks", "game_id": game,
                "parts": [{ "path": file.path, "offset": 0, "len": 1, "mode": "rw" }] })),
        ),
        r("game-files: unknown game id", files_for("no-such-game-zz")),
        r("game-files: id with /", files_for(&format!("{game}/.."))),
        r("game-files: id ..", files_for("..")),
        r("game-files: id ../game", files_for(&format!("../{game}"))),
        r("game-files: empty id", files_for("")),
        r("chunk: id ..", chunk_for("..")),
        r("chunk: id ../game", chunk_for(&format!("../{game}"))),
        r("chunk: unknown game id", chunk_for("no-such-game-zz")),
        WireCase {
            name: "many request streams opened and abandoned".into(),
            channel: Channel::Abandon(300),
            bytes: Vec::new(),
        },
    ]
}

/// Values a random mutation may put into a field.
fn hostile_value(rng: &mut StdRng, k: &Known) -> Value {
    let (game, file) = k.first_file();
    let pool = [
        json!("../x"),
        json!(format!("../{game}/{}", file.path)),
        json!("/etc/passwd"),
        json!(LOCAL_SECRET),
        json!(LINK_FILE),
        json!(LINK_LOCAL),
        json!(format!("{LINK_LOCAL_DIR}/fuzz-secret")),
        json!(format!("{LINK_DIR}/secret")),
        json!(""),
        json!("x".repeat(5000)),
        json!(".."),
        json!(game),
        json!(file.path),
        json!(0),
        json!(-1),
        json!(u64::MAX),
        json!(file.size),
        json!(file.size + 1),
        json!(1e30),
        json!(null),
        json!(true),
        json!([]),
        json!({}),
        json!("cnc4"),
    ];
    pool[rng.random_range(0..pool.len())].clone()
}

/// One random mutation of a valid frame, built from `rng`.
pub(super) fn random_case(i: usize, rng: &mut StdRng, k: &Known) -> WireCase {
    let (game, file) = k.first_file();
    let len = file.size.min(4096);
    let (mut value, channel) = match rng.random_range(0..5) {
        0 => (
            json!({ "type": "game-files", "game_id": game }),
            Channel::Request,
        ),
        1 => (
            json!({ "type": "chunk", "game_id": game, "path": file.path,
                    "offset": 0, "len": len }),
            Channel::Request,
        ),
        2 => (hello(&k.client_id, PROTOCOL_VERSION), Channel::Announce),
        3 => (
            json!({ "type": "chunks", "game_id": game, "parts": [
                { "path": file.path, "offset": 0, "len": len },
                { "path": file.path, "offset": len / 2, "len": len / 2 },
            ] }),
            Channel::Request,
        ),
        _ => (
            json!({ "type": "library", "games": [{ "game_id": game, "version": "1" }] }),
            Channel::Announce,
        ),
    };
    let library = value["type"] == "library";
    let mut ops = Vec::new();
    for _ in 0..rng.random_range(1..=3) {
        let Some(obj) = value.as_object_mut() else {
            break;
        };
        let keys: Vec<String> = obj.keys().cloned().collect();
        // Every field dropped already: only adding one is left.
        let op = if keys.is_empty() {
            2
        } else {
            rng.random_range(0..4)
        };
        match op {
            0 => {
                let key = &keys[rng.random_range(0..keys.len())];
                let v = hostile_value(rng, k);
                ops.push(format!("{key}={}", truncate(&v.to_string(), 40)));
                obj.insert(key.clone(), v);
            }
            1 => {
                let key = &keys[rng.random_range(0..keys.len())];
                ops.push(format!("drop {key}"));
                obj.remove(key);
            }
            2 => {
                ops.push("unknown field".into());
                obj.insert("fuzz".into(), hostile_value(rng, k));
            }
            _ => {
                let types = [
                    "hello",
                    "library",
                    "game-files",
                    "chunk",
                    "chunks",
                    "denied",
                    "HELLO",
                ];
                let t = types[rng.random_range(0..types.len())];
                ops.push(format!("type={t}"));
                obj.insert("type".into(), json!(t));
            }
        }
    }
    let mut body = value.to_string().into_bytes();
    // Some cases also get byte-level damage.
    if rng.random_bool(0.3) && !body.is_empty() {
        let at = rng.random_range(0..body.len());
        match rng.random_range(0..3) {
            0 => {
                body[at] ^= 1 << rng.random_range(0..8);
                ops.push(format!("flip byte {at}"));
            }
            1 => {
                body.truncate(at);
                ops.push(format!("truncate at {at}"));
            }
            _ => {
                let junk: Vec<u8> = (0..rng.random_range(1..16)).map(|_| rng.random()).collect();
                body.splice(at..at, junk);
                ops.push(format!("insert junk at {at}"));
            }
        }
    }
    let mut bytes = frame(&body);
    if rng.random_bool(0.1) {
        let claimed: u32 = match rng.random_range(0..3) {
            0 => (body.len() as u32).saturating_add(rng.random_range(1..64)),
            1 => (body.len() as u32).saturating_sub(rng.random_range(1..8)),
            _ => rng.random(),
        };
        bytes[..4].copy_from_slice(&claimed.to_be_bytes());
        ops.push(format!("length prefix {claimed}"));
    }
    if library {
        // A library update only counts after a valid hello.
        let mut with_hello = frame_json(&hello(&k.client_id, PROTOCOL_VERSION));
        with_hello.extend(bytes);
        bytes = with_hello;
    }
    WireCase {
        name: format!("random #{i} ({})", ops.join(", ")),
        channel,
        bytes,
    }
}

pub(super) fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn random_cases_are_reproducible_from_the_seed() {
        let k = Known {
            peer_id: "me".into(),
            client_id: "fuzzer".into(),
            files: BTreeMap::new(),
            games_dir: PathBuf::from("/g"),
        };
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..20)
                .map(|i| random_case(i, &mut rng, &k).bytes)
                .collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }
}
