//! The end every fuzz step shares: in-flight operations settle, nothing
//! outside the target's games dir changed (snapshots before and after), and
//! the target still serves a normal download to a fresh probe peer.

use crate::checker::actions::COMMAND_TIMEOUT;
use crate::checker::lab::{Lab, Spawn, is_event};
use crate::checker::outcome::{Failure, StepResult};
use crate::manifest::{self, Entry};
use anyhow::Context;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A documented side effect outside the games folder that a fuzz step may
/// allow (`allow = { "first-play-marker" }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SideEffect {
    /// `play` writes `<state-dir>/games/<id>/launch_settings_applied` once.
    FirstPlayMarker,
}

/// Whether `change` of `path` is a side effect `allow` covers for a target
/// whose state dir is `state_dir`: a first-play marker may appear (never
/// change or vanish) in the target's own state dir, for any game.
pub fn allowed(allow: &[SideEffect], state_dir: &Path, path: &Path, change: Change) -> bool {
    allow.iter().any(|a| match a {
        SideEffect::FirstPlayMarker => {
            change == Change::Appeared
                && path
                    .file_name()
                    .is_some_and(|n| n == crate::protocol::layout::FIRST_PLAY_MARKER)
                && path
                    .parent()
                    .and_then(Path::file_name)
                    .and_then(|g| g.to_str())
                    .is_some_and(|g| {
                        crate::protocol::layout::first_play_marker(state_dir, g) == path
                    })
        }
    })
}

/// How a watched file differs after fuzzing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Removed,
    Changed,
    Appeared,
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

pub(super) fn peer_missing(e: anyhow::Error) -> Failure {
    Failure::invalid(format!("{e:#}"))
}

/// The common end of every fuzz step: in-flight operations settle, nothing
/// outside the target's games dir changed, and the target still serves.
pub(super) fn after_fuzz(
    lab: &mut Lab,
    target: &str,
    before: &Snapshot,
    hint: &str,
    allow: &[SideEffect],
) -> StepResult {
    settle(lab, target)?;
    let after = snapshot(lab, target)?;
    let state_dir = lab.peer(target).map_err(peer_missing)?.state_dir.clone();
    let changes: Vec<String> = diff_snapshots(before, &after)
        .into_iter()
        .filter(|(path, change)| !allowed(allow, &state_dir, path, *change))
        .map(|(path, change)| {
            let what = match change {
                Change::Removed => "was removed",
                Change::Changed => "changed",
                Change::Appeared => "appeared",
            };
            format!("{} {what}", path.display())
        })
        .collect();
    if !changes.is_empty() {
        return Err(Failure::expect(
            format!("nothing outside {target}'s games dir changes while it is fuzzed"),
            format!("{} ({hint})", changes.join("; ")),
            &[target],
        ));
    }
    probe_download(lab, target)
}

/// Waits until the target has no active operation.
fn settle(lab: &mut Lab, target: &str) -> StepResult {
    let peer = lab.peer(target).map_err(peer_missing)?;
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        if !peer.is_alive() {
            return Err(Failure::expect(
                format!("{target} survives the fuzzing"),
                "the peer process is gone",
                &[target],
            ));
        }
        let status = peer
            .call(json!({ "cmd": "status" }), COMMAND_TIMEOUT)
            .map_err(|e| Failure::harness(e, &[target]))?;
        let busy = &status["active_operations"];
        if busy.as_object().is_some_and(|o| o.is_empty()) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Failure::expect(
                format!("{target}'s operations settle within {SETTLE_TIMEOUT:?} after fuzzing"),
                format!("active_operations {busy}"),
                &[target],
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Absolute path → manifest entry of every watched file.
pub(super) type Snapshot = BTreeMap<PathBuf, Entry>;

/// Hashes the run workspace, the other peers' games dirs and the target's
/// state dir, leaving out the target's games dir, log files and block-digest
/// cache (a file-list request fills it).
pub(super) fn snapshot(lab: &Lab, target: &str) -> Result<Snapshot, Failure> {
    let own = lab
        .peers
        .get(target)
        .ok_or_else(|| Failure::invalid(format!("no peer named {target:?}")))?;
    let skip = own.games_dir.clone();
    let mut roots = vec![lab.workspace.clone(), own.state_dir.clone()];
    roots.extend(
        lab.peers
            .values()
            .filter(|p| p.name != target)
            .map(|p| p.games_dir.clone()),
    );
    let mut out = Snapshot::new();
    for root in roots {
        if !root.is_dir() || root.starts_with(&skip) {
            continue;
        }
        let m = manifest::build(&root, &[])
            .with_context(|| format!("snapshot of {}", root.display()))
            .map_err(|e| Failure::harness(e, &[]))?;
        for (rel, entry) in m {
            let path = root.join(&rel);
            let is_log = path.file_name().is_some_and(|n| {
                n == "stderr.log"
                    || n == "events.jsonl"
                    || (path.starts_with(&own.state_dir)
                        && n.to_str()
                            .is_some_and(|n| n.starts_with(crate::protocol::digest::CACHE_FILE)))
            });
            if !path.starts_with(&skip) && !is_log {
                out.insert(path, entry);
            }
        }
    }
    Ok(out)
}

fn diff_snapshots(before: &Snapshot, after: &Snapshot) -> Vec<(PathBuf, Change)> {
    let mut out = Vec::new();
    for (p, e) in before {
        match after.get(p) {
            None => out.push((p.clone(), Change::Removed)),
            Some(a) if a != e => out.push((p.clone(), Change::Changed)),
            _ => {}
        }
    }
    for p in after.keys().filter(|p| !before.contains_key(*p)) {
        out.push((p.clone(), Change::Appeared));
    }
    out
}

/// Starts a fresh probe peer, connects it to `target`, downloads one ready
/// catalog-version game the target offers and compares the bytes.
pub fn probe_download(lab: &mut Lab, target: &str) -> StepResult {
    let target_addr = lab.peer(target).map_err(peer_missing)?.addr.clone();
    let mut n = 1;
    let name = loop {
        let candidate = format!("{target}-probe{n}");
        // Earlier probes are gone from `peers` but their folders stay.
        if !lab.peers.contains_key(&candidate)
            && !lab.run_dir.join("peers").join(&candidate).exists()
        {
            break candidate;
        }
        n += 1;
    };
    let games_dir = lab.run_dir.join("peers").join(&name).join("games");
    std::fs::create_dir_all(&games_dir).map_err(|e| Failure::harness(e.into(), &[]))?;
    let exec = std::env::current_exe()
        .context("locating this binary")
        .map_err(|e| Failure::harness(e, &[]))?;
    lab.spawn(Spawn {
        name: name.clone(),
        exec,
        games_dir: games_dir.clone(),
        chunk_size: None,
        catalog: None,
        // The probe must see the real layout, whatever the scenario redirected.
        redirects: crate::redirect::Redirects::new(),
        args: Vec::new(),
        ready_timeout: Duration::from_secs(15),
        address: None,
        port: None,
        via_ssh: false,
        ssh: None,
        host: None,
    })
    .map_err(|e| Failure::harness(e, &[]))?;
    let result = probe_inner(lab, target, &name, &target_addr, &games_dir);
    if result.is_ok() {
        // A passing probe leaves no peer behind for later steps to trip on.
        if let Some(mut p) = lab.peers.remove(&name) {
            p.kill();
        }
    }
    result
}

fn probe_inner(
    lab: &mut Lab,
    target: &str,
    probe: &str,
    target_addr: &str,
    probe_games: &Path,
) -> StepResult {
    let peers = [target, probe];
    let p = lab.peer(probe).map_err(peer_missing)?;
    p.call(
        json!({ "cmd": "connect", "addr": target_addr }),
        COMMAND_TIMEOUT,
    )
    .map_err(|e| {
        Failure::expect(
            format!("a fresh probe peer connects to {target} after fuzzing"),
            format!("{e:#}"),
            &peers,
        )
    })?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let game = loop {
        let games = p
            .call(json!({ "cmd": "list-games" }), COMMAND_TIMEOUT)
            .map_err(|e| Failure::harness(e, &peers))?;
        let offered = games["games"].as_array().and_then(|rows| {
            rows.iter()
                .find(|r| r["peer_count"].as_u64().is_some_and(|c| c >= 1))
                .and_then(|r| r["game_id"].as_str().map(str::to_string))
        });
        if let Some(g) = offered {
            break g;
        }
        if Instant::now() >= deadline {
            return Err(Failure::invalid(format!(
                "{target} offers no ready catalog-version game, so the fuzz step cannot check \
                 that it still serves (give it one with makeGame); the probe's list-games: {}",
                games["games"]
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let start = p.log.len();
    p.call(
        json!({ "cmd": "download", "game_id": game, "install": false }),
        COMMAND_TIMEOUT,
    )
    .map_err(|e| {
        Failure::expect(
            format!("{target} still serves {game} after fuzzing"),
            format!("{e:#}"),
            &peers,
        )
    })?;
    let g = game.clone();
    let outcome = p
        .log
        .wait_for(start, Instant::now() + PROBE_TIMEOUT, move |v| {
            (is_event(v, "download-finished") || is_event(v, "download-failed"))
                && v["data"]["game_id"] == g.as_str()
        });
    match outcome {
        Some(o) if is_event(&o.value, "download-finished") => {}
        Some(o) => {
            return Err(Failure::expect(
                format!("a probe download of {game} from {target} finishes after fuzzing"),
                format!("download-failed: {}", o.value["data"]),
                &peers,
            ));
        }
        None => {
            return Err(Failure::expect(
                format!("a probe download of {game} from {target} finishes after fuzzing"),
                format!("no outcome within {PROBE_TIMEOUT:?}"),
                &peers,
            ));
        }
    }
    let target_root = lab
        .peer(target)
        .map_err(peer_missing)?
        .games_dir
        .join(&game);
    let want = manifest::build(&target_root, &[crate::protocol::layout::LOCAL_DIR])
        .map_err(|e| Failure::harness(e, &peers))?;
    let got = manifest::build(
        &probe_games.join(&game),
        &[crate::protocol::layout::LOCAL_DIR],
    )
    .map_err(|e| Failure::harness(e, &peers))?;
    if want != got {
        let d = manifest::diff(&want, &got);
        return Err(Failure::expect(
            format!("the probe's copy of {game} equals {target}'s"),
            format!(
                "missing {:?}, extra {:?}, differing {:?}",
                d.missing, d.extra, d.differing
            ),
            &peers,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_new_first_play_marker_in_the_targets_state_dir_is_allowed() {
        let state = Path::new("/run/peers/s/state");
        let marker = state.join("games/cnc4/launch_settings_applied");
        let allow = [SideEffect::FirstPlayMarker];
        assert!(allowed(&allow, state, &marker, Change::Appeared));
        // Not allowed: nothing asked, a change or removal of it, another
        // file beside it, a marker in another peer's state dir or deeper.
        assert!(!allowed(&[], state, &marker, Change::Appeared));
        assert!(!allowed(&allow, state, &marker, Change::Changed));
        assert!(!allowed(&allow, state, &marker, Change::Removed));
        assert!(!allowed(
            &allow,
            state,
            &state.join("games/cnc4/other"),
            Change::Appeared
        ));
        assert!(!allowed(
            &allow,
            state,
            Path::new("/run/peers/t/state/games/cnc4/launch_settings_applied"),
            Change::Appeared
        ));
        assert!(!allowed(
            &allow,
            state,
            &state.join("games/cnc4/x/launch_settings_applied"),
            Change::Appeared
        ));
        let parsed: Vec<SideEffect> =
            serde_json::from_value(serde_json::json!(["first-play-marker"])).unwrap_or_default();
        assert_eq!(parsed, allow);
        assert!(
            serde_json::from_value::<Vec<SideEffect>>(serde_json::json!(["anything"])).is_err()
        );
    }

    #[test]
    fn snapshots_differ_by_removed_changed_and_appeared_files() {
        let entry = |size: u64| Entry {
            size,
            sha256: String::new(),
        };
        let before: Snapshot = [
            (PathBuf::from("/a"), entry(1)),
            (PathBuf::from("/b"), entry(1)),
        ]
        .into();
        let after: Snapshot = [
            (PathBuf::from("/b"), entry(2)),
            (PathBuf::from("/c"), entry(1)),
        ]
        .into();
        assert_eq!(
            diff_snapshots(&before, &after),
            [
                (PathBuf::from("/a"), Change::Removed),
                (PathBuf::from("/b"), Change::Changed),
                (PathBuf::from("/c"), Change::Appeared),
            ]
        );
    }
}
