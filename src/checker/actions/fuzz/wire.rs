//! Wire-protocol fuzzing: `fuzzWire` opens QUIC connections to a target
//! (one per case) and sends fixed hostile cases and seeded random mutations
//! of valid frames; each reply is judged against what the target may serve.

use super::aftermath::{after_fuzz, peer_missing, snapshot};
use crate::checker::lab::Lab;
use crate::checker::outcome::{Failure, StepResult};
use crate::checker::registry::{StepCtx, StepParams};
use crate::checker::wire_client::{self, Reply, WireClient};
use crate::protocol::wire::{
    Announce, FileDesc, GameAd, MAX_BATCH_BYTES, MAX_BATCH_PARTS, MAX_FRAME, PROTOCOL_VERSION,
    Request, Response,
};
use anyhow::{Context, anyhow};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `fuzzWire{}`: hostile wire-protocol messages against `target`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FuzzWireStep {
    pub target: String,
    #[serde(default = "default_cases")]
    pub cases: usize,
    #[serde(default)]
    pub seed: u64,
}

impl StepParams for FuzzWireStep {}

fn default_cases() -> usize {
    200
}

/// Where a case's bytes go.
#[derive(Debug, Clone, PartialEq)]
enum Channel {
    /// A bidirectional request stream.
    Request,
    /// The unidirectional announce stream.
    Announce,
    /// Open this many request streams, send half a length prefix, walk away.
    Abandon(usize),
}

#[derive(Debug, Clone)]
struct WireCase {
    name: String,
    channel: Channel,
    bytes: Vec<u8>,
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

fn frame_json(v: &Value) -> Vec<u8> {
    frame(v.to_string().as_bytes())
}

/// What the checker learned from the target before fuzzing it.
struct Known {
    peer_id: String,
    /// The ID the fuzzing client's own certificate proves: the only ID a
    /// hello from it may claim (PROTOCOL.md, "Identity").
    client_id: String,
    /// Game ID → files, for every game the target really serves.
    files: BTreeMap<String, Vec<FileDesc>>,
    games_dir: PathBuf,
}

impl Known {
    fn first_file(&self) -> (String, FileDesc) {
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

fn hello(peer_id: &str, protocol: u32) -> Value {
    json!({ "type": "hello", "protocol": protocol, "peer_id": peer_id,
            "addr": "127.0.0.1:9", "games": [] })
}

/// Paths (relative to the target's game root) the fixed cases use.
const LINK_FILE: &str = "fuzz-link";

const LINK_DIR: &str = "fuzz-dirlink";

const LOCAL_SECRET: &str = "local/fuzz-secret";

/// The fixed, named hostile cases.
fn named_cases(k: &Known) -> Vec<WireCase> {
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
fn random_case(i: usize, rng: &mut StdRng, k: &Known) -> WireCase {
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

fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Splits `bytes` into frame bodies the way the target reads them; `Err` when
/// the target would hit a framing error.
fn split_frames(bytes: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err("a cut-off length prefix".into());
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len > MAX_FRAME {
            return Err(format!("a {len}-byte frame"));
        }
        if rest.len() - 4 < len {
            return Err("a cut-off frame body".into());
        }
        out.push(&rest[4..4 + len]);
        rest = &rest[4 + len..];
    }
    Ok(out)
}

/// Whether the target may keep the connection after reading `bytes` on the
/// announce stream: only for a valid hello of the current protocol claiming
/// the ID the client's certificate proves (`client_id`, not the target's
/// own), with a parseable address, followed by nothing but library frames.
fn announce_may_stay_open(bytes: &[u8], own_id: &str, client_id: &str) -> bool {
    let Ok(frames) = split_frames(bytes) else {
        return false;
    };
    let mut frames = frames.into_iter();
    let Some(first) = frames.next() else {
        return false;
    };
    match crate::protocol::wire::decode::<Announce>(first) {
        Ok(Announce::Hello {
            protocol,
            peer_id,
            addr,
            ..
        }) if protocol == PROTOCOL_VERSION
            && peer_id == client_id
            && peer_id != own_id
            && addr.parse::<std::net::SocketAddr>().is_ok() => {}
        _ => return false,
    }
    frames.all(|f| {
        matches!(
            crate::protocol::wire::decode::<Announce>(f),
            Ok(Announce::Library { .. })
        )
    })
}

/// Judges a served response against what the target may legitimately serve.
fn judge_served(sent: &[u8], response: &Response, bytes: &[u8], k: &Known) -> Result<(), String> {
    let request = split_frames(sent)
        .ok()
        .and_then(|f| f.first().copied())
        .and_then(|body| crate::protocol::wire::decode::<Request>(body).ok());
    let Some(request) = request else {
        return Err(format!(
            "served {response:?} for a request that does not parse"
        ));
    };
    match (&request, response) {
        (
            Request::GameFiles { game_id },
            Response::GameFiles {
                game_id: g, files, ..
            },
        ) => match k.files.get(game_id) {
            Some(want) if g == game_id && want == files => Ok(()),
            Some(_) => Err(format!(
                "answered {request:?} with a different list: {response:?}"
            )),
            None => Err(format!("served a file list for {request:?}")),
        },
        (
            Request::Chunk {
                game_id,
                path,
                offset,
                len,
            },
            Response::Chunk { len: got },
        ) => {
            let listed = k
                .files
                .get(game_id)
                .and_then(|f| f.iter().find(|f| &f.path == path));
            let Some(file) = listed else {
                return Err(format!(
                    "served {got} bytes for {request:?}, which names no served file"
                ));
            };
            if offset.checked_add(*len).is_none_or(|end| end > file.size) || got != len {
                return Err(format!("served {got} bytes for out-of-range {request:?}"));
            }
            let want = read_range(&k.games_dir.join(game_id).join(path), *offset, *len)
                .map_err(|e| format!("{e:#}"))?;
            if want != bytes {
                return Err(format!(
                    "served bytes for {request:?} that differ from the file"
                ));
            }
            Ok(())
        }
        (Request::Chunks { game_id, parts }, Response::Chunk { len: got }) => {
            let mut want = Vec::new();
            for part in parts {
                let listed = k
                    .files
                    .get(game_id)
                    .and_then(|f| f.iter().find(|f| f.path == part.path));
                let Some(file) = listed else {
                    return Err(format!(
                        "served {got} bytes for {request:?}, a part of which names no served file"
                    ));
                };
                if part
                    .offset
                    .checked_add(part.len)
                    .is_none_or(|end| end > file.size)
                {
                    return Err(format!("served {got} bytes for out-of-range {request:?}"));
                }
                let path = k.games_dir.join(game_id).join(&part.path);
                want.extend(
                    read_range(&path, part.offset, part.len).map_err(|e| format!("{e:#}"))?,
                );
            }
            if parts.is_empty()
                || parts.len() > MAX_BATCH_PARTS
                || want.len() as u64 > MAX_BATCH_BYTES
                || *got != want.len() as u64
            {
                return Err(format!("served {got} bytes for {request:?}"));
            }
            if want != bytes {
                return Err(format!(
                    "served bytes for {request:?} that differ from the files"
                ));
            }
            Ok(())
        }
        _ => Err(format!("answered {request:?} with {response:?}")),
    }
}

fn read_range(path: &Path, offset: u64, len: u64) -> anyhow::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut buf = vec![0u8; usize::try_from(len)?];
    file.read_exact_at(&mut buf, offset)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(buf)
}

/// Runs one case on a fresh connection; `Err` says what the target did wrong.
/// Runs one case on a fresh connection: `Ok` names what the target did,
/// `Err` says what it did wrong.
async fn run_case(
    client: &WireClient,
    case: &WireCase,
    k: &Known,
) -> anyhow::Result<Result<&'static str, String>> {
    let conn = client.connect().await?;
    let verdict = match &case.channel {
        Channel::Request => match wire_client::request(&conn, &case.bytes).await? {
            Reply::Denied(_) => Ok("denied"),
            Reply::Closed(_) => Ok("closed the stream"),
            Reply::NoAnswer => Err(format!(
                "no answer within {:?} and the stream stayed open",
                wire_client::REPLY_TIMEOUT
            )),
            Reply::Malformed(m) => Err(format!("a malformed answer: {m}")),
            Reply::Served { response, bytes } => {
                judge_served(&case.bytes, &response, &bytes, k).map(|()| "served legitimately")
            }
        },
        Channel::Announce => {
            wire_client::announce(&conn, &case.bytes).await?;
            if announce_may_stay_open(&case.bytes, &k.peer_id, &k.client_id) {
                Ok("accepted a valid announce")
            } else if wire_client::closes_within(&conn, Duration::from_secs(3)).await {
                Ok("closed the connection")
            } else {
                Err("the connection stayed open after a hostile announce stream".into())
            }
        }
        Channel::Abandon(n) => {
            wire_client::abandon_streams(&conn, *n).await?;
            Ok("survived abandoned streams")
        }
    };
    conn.close(0u32.into(), b"case done");
    Ok(verdict)
}

fn show_bytes(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(160)];
    let more = if bytes.len() > shown.len() {
        format!(" … ({} bytes)", bytes.len())
    } else {
        String::new()
    };
    format!(
        "hex {}{more}\n            text {:?}",
        hex::encode(shown),
        String::from_utf8_lossy(shown)
    )
}

/// Prepares the target's games dir for the path cases: a symlink to a file
/// outside the root, a symlinked folder and a file under `local/`.
fn plant_traps(lab: &Lab, root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let outside = lab.run_dir.join("fuzz-outside");
    std::fs::create_dir_all(&outside)?;
    std::fs::write(outside.join("secret"), "never serve me")?;
    let mut planted = Vec::new();
    for (link, to) in [
        (LINK_FILE, outside.join("secret")),
        (LINK_DIR, outside.clone()),
    ] {
        let at = root.join(link);
        if std::fs::symlink_metadata(&at).is_err() {
            std::os::unix::fs::symlink(&to, &at)
                .with_context(|| format!("creating {}", at.display()))?;
            planted.push(at);
        }
    }
    let local = root.join(LOCAL_SECRET);
    if !local.exists() {
        if let Some(parent) = local.parent()
            && !parent.exists()
        {
            std::fs::create_dir_all(parent)?;
            planted.push(parent.to_path_buf());
        }
        std::fs::write(&local, "installed, never served")?;
        planted.push(local);
    }
    Ok(planted)
}

fn remove_traps(planted: &[PathBuf]) {
    // Newest first, so files go before the folder that holds them.
    for p in planted.iter().rev() {
        let _ = std::fs::remove_file(p).or_else(|_| std::fs::remove_dir(p));
    }
}

/// Asks the target for its hello and the file list of every game it
/// advertises; games it refuses are left out.
async fn learn(client: &WireClient, games_dir: PathBuf) -> anyhow::Result<Known> {
    let conn = client.connect().await?;
    let hello = wire_client::read_hello(&conn).await?;
    let Announce::Hello { peer_id, games, .. } = hello else {
        return Err(anyhow!("the target's first announce frame was not a hello"));
    };
    let mut files = BTreeMap::new();
    for GameAd { game_id, .. } in games {
        let req = frame_json(&json!({ "type": "game-files", "game_id": game_id }));
        if let Reply::Served {
            response: Response::GameFiles { files: f, .. },
            ..
        } = wire_client::request(&conn, &req).await?
        {
            files.insert(game_id, f);
        }
    }
    conn.close(0u32.into(), b"learned");
    Ok(Known {
        peer_id,
        client_id: client.peer_id.clone(),
        files,
        games_dir,
    })
}

pub fn fuzz_wire(lab: &mut Lab, s: &FuzzWireStep, _cx: &StepCtx) -> StepResult {
    let t = &s.target;
    let (addr, games_dir) = {
        let p = lab.peer(t).map_err(peer_missing)?;
        (p.addr.clone(), p.games_dir.clone())
    };
    let client = WireClient::new(&addr).map_err(|e| Failure::harness(e, &[t]))?;
    let known = client
        .block_on(learn(&client, games_dir.clone()))
        .map_err(|e| Failure::harness(e, &[t]))?;
    let Some(game) = known.files.keys().next().cloned() else {
        return Err(Failure::invalid(format!(
            "{t} serves no game, so fuzzWire has no valid frames to start from \
             (give it one with makeGame)"
        )));
    };
    let planted =
        plant_traps(lab, &games_dir.join(&game)).map_err(|e| Failure::harness(e, &[t]))?;
    let result = fuzz_wire_cases(lab, s, &client, &known);
    remove_traps(&planted);
    client.close();
    result
}

fn fuzz_wire_cases(
    lab: &mut Lab,
    s: &FuzzWireStep,
    client: &WireClient,
    known: &Known,
) -> StepResult {
    let t = s.target.as_str();
    let before = snapshot(lab, t)?;
    let hint = format!("fuzzWire seed {}", s.seed);
    let mut cases = named_cases(known);
    let mut rng = StdRng::seed_from_u64(s.seed);
    cases.extend((0..s.cases).map(|i| random_case(i, &mut rng, known)));
    let mut tally: BTreeMap<&'static str, usize> = BTreeMap::new();
    for case in &cases {
        let verdict = client
            .block_on(run_case(client, case, known))
            .map_err(|e| Failure::harness(e.context(format!("case {:?}", case.name)), &[t]))?;
        let alive = lab.peer(t).map_err(peer_missing)?.is_alive();
        let problem = match verdict {
            Err(problem) => Some(problem),
            Ok(_) if !alive => Some("the target process died".to_string()),
            Ok(what) => {
                *tally.entry(what).or_default() += 1;
                None
            }
        };
        if let Some(problem) = problem {
            return Err(Failure::expect(
                format!("{t} denies or closes every hostile wire message and stays alive"),
                format!(
                    "case {:?} ({:?}): {problem}\n            {}\n            {hint}",
                    case.name,
                    case.channel,
                    show_bytes(&case.bytes)
                ),
                &[t],
            ));
        }
    }
    let tally: Vec<String> = tally.iter().map(|(k, n)| format!("{n} {k}")).collect();
    println!(
        "      … {t}: {} wire cases: {} ({hint})",
        cases.len(),
        tally.join(", ")
    );
    after_fuzz(lab, t, &before, &hint, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announce_oracle_allows_only_a_clean_hello_and_libraries() {
        let ok = frame_json(&hello("other", PROTOCOL_VERSION));
        assert!(announce_may_stay_open(&ok, "me", "other"));
        // Any ID but the one the client's certificate proves is refused.
        assert!(!announce_may_stay_open(&ok, "me", "third"));
        let mut with_lib = ok.clone();
        with_lib.extend(frame_json(&json!({ "type": "library", "games": [] })));
        assert!(announce_may_stay_open(&with_lib, "me", "other"));
        let mut twice = ok.clone();
        twice.extend(ok.clone());
        assert!(!announce_may_stay_open(&twice, "me", "other"));
        let own = frame_json(&hello("me", PROTOCOL_VERSION));
        assert!(!announce_may_stay_open(&own, "me", "me"));
        let old = frame_json(&hello("other", PROTOCOL_VERSION - 1));
        assert!(!announce_may_stay_open(&old, "me", "other"));
        assert!(!announce_may_stay_open(&ok[..ok.len() - 1], "me", "other"));
        assert!(!announce_may_stay_open(b"", "me", "other"));
    }

    #[test]
    fn served_bytes_are_judged_against_the_files_on_disk() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("g"))?;
        std::fs::write(dir.path().join("g/f.bin"), b"hello")?;
        let k = Known {
            peer_id: "me".into(),
            client_id: "fuzzer".into(),
            files: BTreeMap::from([("g".to_string(), vec![FileDesc::new("f.bin", 5)])]),
            games_dir: dir.path().to_path_buf(),
        };
        let req = |path: &str, offset: u64, len: u64| {
            frame_json(&json!({ "type": "chunk", "game_id": "g", "path": path,
                                "offset": offset, "len": len }))
        };
        let chunk = |len| Response::Chunk { len };
        assert!(judge_served(&req("f.bin", 1, 3), &chunk(3), b"ell", &k).is_ok());
        assert!(judge_served(&req("f.bin", 1, 3), &chunk(3), b"xxx", &k).is_err());
        assert!(judge_served(&req("../g/f.bin", 0, 1), &chunk(1), b"h", &k).is_err());
        assert!(judge_served(&req("f.bin", 4, 2), &chunk(2), b"o?", &k).is_err());
        assert!(judge_served(b"\0\0\0\x02{}", &chunk(1), b"h", &k).is_err());
        Ok(())
    }

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
