//! The integration suite: every file in `scenarios/` run by the real binary
//! against real peer processes, plus the checker's exit-code contract.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn checker() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lanspread-checker"))
}

fn run(args: &[&str]) -> Output {
    match checker().args(args).output() {
        Ok(o) => o,
        Err(e) => panic!("cannot run the checker: {e}"),
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn scenario_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "lua"))
        .collect();
    files.sort();
    files
}

/// Runs every scenario; reports all failures at once rather than the first.
#[test]
fn every_scenario_passes() {
    let files = scenario_files();
    assert!(!files.is_empty(), "scenarios/ holds no .lua files");
    let mut failed = Vec::new();
    for file in &files {
        let path = file.to_string_lossy();
        let out = run(&["-s", &path]);
        let code = out.status.code();
        println!("{path}: exit {code:?}");
        if code != Some(0) {
            failed.push(format!("{path}: exit {code:?}\n{}", text(&out)));
        }
    }
    println!(
        "{} passed, {} failed",
        files.len() - failed.len(),
        failed.len()
    );
    assert!(
        failed.is_empty(),
        "failing scenarios:\n{}",
        failed.join("\n")
    );
}

fn scratch_scenario(body: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let path = dir.path().join("case.lua");
    std::fs::write(&path, body).unwrap_or_else(|e| panic!("writing scenario: {e}"));
    let path = path.to_string_lossy().into_owned();
    (dir, path)
}

#[test]
fn invalid_scenario_exits_2_naming_file_and_line() {
    let (_dir, path) =
        scratch_scenario("scenario {\n  peer { name = \"a\" },\n  peer { nmae = \"b\" },\n}\n");
    let out = run(&["-s", &path]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("{path}:3: peer: unknown field `nmae`")),
        "{}",
        text(&out)
    );
    // Found before any peer started: no run folder was announced.
    assert!(!text(&out).contains("run folder"), "{}", text(&out));
}

#[test]
fn failed_expectation_exits_1_with_expected_and_seen() {
    let (_dir, path) = scratch_scenario(
        "scenario {\n  makeGame { dir = \"s\", id = \"ggoo\", files = { x = \"1\" } },\n  peer { name = \"s\", games = \"s\" },\n  peer { name = \"c\" },\n  connect { from = \"c\", to = \"s\" },\n  waitGame { peer = \"c\", game = \"ggoo\", peerCount = 2, timeout = \"1s\" },\n}\n",
    );
    let out = run(&["-s", &path]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("FAILED waitGame at"), "{t}");
    assert!(t.contains("case.lua:6"), "{t}");
    assert!(
        t.contains("expected: a list-games row for ggoo on c with peer_count=2"),
        "{t}"
    );
    assert!(t.contains("\"peer_count\":1"), "{t}");
}

#[test]
fn peer_that_cannot_start_exits_3() {
    let (_dir, path) =
        scratch_scenario("scenario {\n  peer { name = \"x\", exec = \"/nonexistent/peer\" },\n}\n");
    let out = run(&["-s", &path]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("harness error"), "{}", text(&out));
}

#[test]
fn unfired_kill_trigger_fails_the_scenario() {
    let (_dir, path) = scratch_scenario(
        "scenario {\n  peer { name = \"a\" },\n  peer { name = \"b\" },\n  killPeer { name = \"a\", on = { peer = \"b\", event = \"download-begin\" } },\n}\n",
    );
    let out = run(&["-s", &path]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("case.lua:4"), "{t}");
    assert!(t.contains("never came"), "{t}");
}

#[test]
fn readonly_peer_whose_games_change_fails() {
    let (_dir, path) = scratch_scenario(
        "scenario {\n  makeGame { dir = \"s\", id = \"ggoo\", files = { x = \"1\" } },\n  peer { name = \"s\", games = \"s\" },\n  peer { name = \"c\", readonly = true },\n  connect { from = \"c\", to = \"s\" },\n  download { peer = \"c\", game = \"ggoo\" },\n}\n",
    );
    let out = run(&["-s", &path]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("FAILED peer at") && t.contains("case.lua:4"),
        "{t}"
    );
    assert!(
        t.contains("readonly peer c leaves its games folder as it was"),
        "{t}"
    );
    assert!(t.contains("extra: ggoo/version.ini"), "{t}");
}

#[test]
fn scenario_timeout_stops_a_step_that_would_wait_longer() {
    let (_dir, path) = scratch_scenario(
        "scenario {\n  timeout = \"2s\",\n  peer { name = \"s\" },\n  expectEvent { peer = \"s\", event = \"never-happens\", timeout = \"60s\" },\n}\n",
    );
    let started = std::time::Instant::now();
    let out = run(&["-s", &path]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("expected: the scenario finishes within 2s"),
        "{t}"
    );
    // Not a speed assertion: the step's own 60 s wait must have been cut short.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(50),
        "{t}"
    );
}

#[test]
fn disk_peak_over_its_bound_fails_showing_the_readings() {
    // s93's download of 32 MiB, held to 8 MiB: the watcher must go red.
    let (_dir, path) = scratch_scenario(
        "scenario {\n  makeGame { dir = \"s\", id = \"cnc4\", eti = { size = \"32MiB\", seed = 93 } },\n  peer { name = \"s\", games = \"s\" },\n  peer { name = \"c\", chunkSize = \"4MiB\" },\n  connect { from = \"c\", to = \"s\" },\n  watchDisk { peer = \"c\" },\n  download { peer = \"c\", game = \"cnc4\" },\n  expectDiskPeak { peer = \"c\", atMost = \"8MiB\" },\n}\n",
    );
    let out = run(&["-s", &path]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("FAILED expectDiskPeak at") && t.contains("case.lua:8"),
        "{t}"
    );
    assert!(t.contains("peak − baseline at most 8 MiB"), "{t}");
    assert!(t.contains("baseline ") && t.contains("final "), "{t}");
}

#[test]
fn unchecked_disk_watcher_fails_the_scenario() {
    let (_dir, path) = scratch_scenario(
        "scenario {\n  peer { name = \"a\" },\n  watchDisk { peer = \"a\" },\n}\n",
    );
    let out = run(&["-s", &path]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(
        t.contains("case.lua:3") && t.contains("never checked"),
        "{t}"
    );
}

#[test]
fn scenario_timeout_ends_a_sleep() {
    // A sleep waits on no peer, so killing the peers cannot end it: the
    // deadline itself must, and a last step cut short must not pass.
    let (_dir, path) =
        scratch_scenario("scenario {\n  timeout = \"2s\",\n  sleep { duration = \"20s\" },\n}\n");
    let started = std::time::Instant::now();
    let out = run(&["-s", &path]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("the scenario finishes within 2s"), "{t}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "took {:?}: {t}",
        started.elapsed()
    );
}

#[test]
fn a_reused_out_folder_behaves_like_a_fresh_one() {
    // Before: the second run found the first run's game and failed with
    // `already-downloaded`.
    let (dir, path) = scratch_scenario(
        "scenario {\n  makeGame { dir = \"s\", id = \"cnc4\", files = { x = \"1\" } },\n  peer { name = \"s\", games = \"s\" },\n  peer { name = \"c\" },\n  connect { from = \"c\", to = \"s\" },\n  download { peer = \"c\", game = \"cnc4\" },\n}\n",
    );
    let out_dir = dir.path().join("run");
    let out_arg = out_dir.to_string_lossy().into_owned();
    for round in 1..=2 {
        let out = run(&["-s", &path, "--out", &out_arg]);
        assert_eq!(out.status.code(), Some(0), "round {round}: {}", text(&out));
    }
    let user = dir.path().join("mine");
    std::fs::create_dir(&user).unwrap_or_else(|e| panic!("mkdir: {e}"));
    std::fs::write(user.join("keep.txt"), "x").unwrap_or_else(|e| panic!("write: {e}"));
    let out = run(&["-s", &path, "--out", &user.to_string_lossy()]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("not a run folder"), "{}", text(&out));
    assert!(user.join("keep.txt").is_file());
}

#[test]
fn check_rejects_what_the_run_would() {
    // Each of these passed --check and failed only when run.
    for (body, says) in [
        (
            "  peer { name = \"a\" },\n  peer { name = \"a\" },\n",
            "case.lua:3: peer: a peer named \"a\"",
        ),
        (
            "  peer { name = \"a\" },\n  connect { from = \"a\", to = \"b\" },\n",
            "case.lua:3: connect: no peer named \"b\"",
        ),
        (
            "  peer { name = \"a\" },\n  expectDiskPeak { peer = \"a\", atMost = \"1MiB\" },\n",
            "no earlier watchDisk",
        ),
        (
            "  peer { name = \"a\", games = \"nope\" },\n",
            "games folder \"nope\"",
        ),
        (
            "  peer { name = \"a\", catalog = \"nope.json\" },\n",
            "catalog \"nope.json\"",
        ),
    ] {
        let (_dir, path) = scratch_scenario(&format!("scenario {{\n{body}}}\n"));
        let out = run(&["-s", &path, "--check"]);
        assert_eq!(out.status.code(), Some(2), "{body}: {}", text(&out));
        assert!(text(&out).contains(says), "{body}: {}", text(&out));
    }
}

#[test]
fn a_missing_exec_binary_is_the_scenario_s_mistake() {
    let (_dir, path) = scratch_scenario(
        "scenario {\n  peer { name = \"a\", exec = \"no-such-peer-binary\" },\n}\n",
    );
    let out = run(&["-s", &path]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no-such-peer-binary"), "{}", text(&out));
}
