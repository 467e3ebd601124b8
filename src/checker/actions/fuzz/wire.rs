//! Wire-protocol fuzzing: `fuzzWire` opens QUIC connections to a target
//! (one per case) and sends fixed hostile cases and seeded random mutations
//! of valid frames; each reply is judged against what the target may serve.

use super::aftermath::{after_fuzz, peer_missing, snapshot};
use super::wire_cases::{
    Channel, Known, LINK_DIR, LINK_FILE, LINK_LOCAL, LINK_LOCAL_DIR, LOCAL_SECRET, WireCase,
    frame_json, named_cases, random_case,
};
use crate::checker::lab::Lab;
use crate::checker::outcome::{Failure, StepResult};
use crate::checker::registry::{StepCtx, StepParams};
use crate::checker::wire_client::{self, Reply, WireClient};
use crate::protocol::wire::{
    Announce, GameAd, MAX_BATCH_BYTES, MAX_BATCH_PARTS, MAX_FRAME, PROTOCOL_VERSION, Request,
    Response,
};
use anyhow::{Context, anyhow};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Deserialize;
use serde_json::json;
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
/// outside the root, a symlinked folder, a file under `local/` and
/// relative symlinks to it and to `local/`.
fn plant_traps(lab: &Lab, root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let outside = lab.run_dir.join("fuzz-outside");
    std::fs::create_dir_all(&outside)?;
    std::fs::write(outside.join("secret"), "never serve me")?;
    let mut planted = Vec::new();
    for (link, to) in [
        (LINK_FILE, outside.join("secret")),
        (LINK_DIR, outside.clone()),
        (LINK_LOCAL, PathBuf::from(LOCAL_SECRET)),
        (LINK_LOCAL_DIR, PathBuf::from("local")),
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
    use super::super::wire_cases::hello;
    use super::*;
    use crate::protocol::wire::FileDesc;

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
}
