//! The integration suite: every file in `scenarios/` run by the real binary
//! against real peer processes, plus the checker's exit-code contract.

use std::path::Path;
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

/// How many scenarios the suite runs at once. Measured on the 2-core
/// machine while other builds ran: the folder took 145 s at `-j 1` and
/// 87 s at `-j 2`, all 42 passing in both, and `--repeat 2 -j 2` (84 runs,
/// 107 s) had no failing round; the timing-sensitive ones
/// (s37's throughput, s42's disk peak) passed every round at two.
const JOBS: &str = "2";

/// Runs the scenarios folder through the folder mode (one invocation), as
/// CI does; reports every failing scenario's output, not just the first.
#[test]
fn every_scenario_passes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let out_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let out_path = out_dir.path().join("run");
    let started = std::time::Instant::now();
    let out = run(&[
        "-s",
        &dir.to_string_lossy(),
        "-j",
        JOBS,
        "--out",
        &out_path.to_string_lossy(),
    ]);
    println!(
        "scenario matrix: {:.1}s wall time at -j {JOBS}",
        started.elapsed().as_secs_f64()
    );
    let t = text(&out);
    println!("{t}");
    assert_eq!(out.status.code(), Some(0), "failing scenarios:\n{t}");
    // The folder run's summary lists every file, each with a pass.
    let summary = std::fs::read_to_string(out_path.join("summary.json"))
        .unwrap_or_else(|e| panic!("summary.json: {e}"));
    let summary: serde_json::Value =
        serde_json::from_str(&summary).unwrap_or_else(|e| panic!("summary.json: {e}"));
    let files = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "lua"))
        .count();
    let listed = summary["scenarios"].as_array().map_or(0, |a| a.len());
    assert!(files > 0, "scenarios/ holds no .lua files");
    assert_eq!(listed, files, "{summary}");
}

#[test]
fn a_folder_run_exits_with_the_worst_code_and_reports_each() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let write = |name: &str, body: &str| {
        std::fs::write(dir.path().join(name), body).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    write(
        "a_pass.lua",
        "scenario {\n  tags = {\"quick\"},\n  peer { name = \"a\" },\n}\n",
    );
    write(
        "b_fail.lua",
        "scenario {\n  tags = {\"quick\"},\n  peer { name = \"s\" },\n  expectEvent { peer = \"s\", event = \"never\", timeout = \"200ms\" },\n}\n",
    );
    write("c_invalid.lua", "scenario {\n  peer { nmae = \"a\" },\n}\n");
    let d = dir.path().to_string_lossy().into_owned();
    let junit = dir.path().join("out/junit.xml");
    let out = run(&[
        "-s",
        &d,
        "-j",
        "2",
        "--format",
        "github",
        "--junit",
        &junit.to_string_lossy(),
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("1 passed, 2 failed of 3"), "{t}");
    assert!(t.contains("b_fail.lua,line=4,"), "{t}");
    assert!(t.contains("c_invalid.lua,line=2,"), "{t}");
    // The failing scenarios' own output follows the table.
    assert!(t.contains("FAILED expectEvent at"), "{t}");
    let x = std::fs::read_to_string(&junit).unwrap_or_else(|e| panic!("junit: {e}"));
    assert_eq!(x.matches("<testsuite ").count(), 3, "{x}");
    // Tags select: the invalid file (tags unknown) stays, so its error shows.
    let out = run(&[
        "-s",
        &d,
        "--tags",
        "quick",
        "--skip-tags",
        "x",
        "--filter",
        "a_*",
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("1 passed, 0 failed of 1"), "{t}");
    let out = run(&["-s", &d, "--filter", "b_", "--repeat", "2"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("2/2 failed"), "{t}");
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
    // The binary exists but exits at once: the harness could not run what
    // the scenario rightly asks.
    let (_dir, path) =
        scratch_scenario("scenario {\n  peer { name = \"x\", exec = \"/bin/false\" },\n}\n");
    let out = run(&["-s", &path]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("harness error"), "{}", text(&out));
}

#[test]
fn a_peer_binary_that_is_not_there_exits_2() {
    // The scenario names something that is not there (README, exit codes).
    let (_dir, path) =
        scratch_scenario("scenario {\n  peer { name = \"x\", exec = \"/nonexistent/peer\" },\n}\n");
    let out = run(&["-s", &path]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
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
            "case.lua:3: connect: to: no peer named \"b\"",
        ),
        (
            "  peer { name = \"a\" },\n  peer { name = \"c\" },\n  download { peer = \"c\", game = \"g\" },\n  expectChunks { peer = \"c\", game = \"g\", perSource = { b = 1 } },\n",
            "case.lua:5: expectChunks: perSource: no peer named \"b\"",
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

/// Pids of live processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .collect()
}

/// Starts the checker on `input` (a file or a folder holding a scenario
/// that starts peer `a` and then sleeps), waits until that peer runs,
/// sends `signal` to the checker and returns its exit code; asserts that
/// no process of the run outlives it.
fn interrupt_a_run(input: &str, out: &std::path::Path, signal: i32) -> Option<i32> {
    use std::time::{Duration, Instant};
    let out_arg = out.to_string_lossy().into_owned();
    let mut child = checker()
        .args(["-s", input, "--out", &out_arg])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run the checker: {e}"));
    let peer_dir = format!("{out_arg}/");
    let peer_cmd = format!("peer\0--games-dir\0{peer_dir}");
    let until = Instant::now() + Duration::from_secs(30);
    // The peer is up once a process runs with `peer --games-dir <out>/…`.
    while processes_mentioning(&peer_cmd).is_empty() {
        assert!(Instant::now() < until, "the peer never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill(2) on the checker we started (its pid, not a group).
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
    let until = Instant::now() + Duration::from_secs(30);
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                let _ = child.kill();
                panic!("the checker did not exit within 30 s of the signal");
            }
            Err(e) => panic!("waiting for the checker: {e}"),
        }
    };
    let left = processes_mentioning(&peer_dir);
    assert!(
        left.is_empty(),
        "processes of the run outlived it: {left:?}"
    );
    status.code()
}

#[test]
fn a_signal_ends_a_run_with_128_plus_its_number_after_reaping_peers() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let folder = dir.path().join("folder");
    std::fs::create_dir(&folder).unwrap_or_else(|e| panic!("mkdir: {e}"));
    let file = folder.join("hold.lua");
    std::fs::write(
        &file,
        "scenario {\n  name = \"hold\",\n  peer { name = \"a\" },\n  sleep { duration = \"120s\" },\n}\n",
    )
    .unwrap_or_else(|e| panic!("writing scenario: {e}"));
    let (folder, file) = (
        folder.to_string_lossy().into_owned(),
        file.to_string_lossy().into_owned(),
    );
    // A folder run (its child checker gets SIGTERM from it) and a
    // single-file run, each with SIGTERM and SIGINT.
    let cases = [
        (&folder, libc::SIGTERM, 143),
        (&folder, libc::SIGINT, 130),
        (&file, libc::SIGTERM, 143),
        (&file, libc::SIGINT, 130),
    ];
    for (i, (input, signal, want)) in cases.into_iter().enumerate() {
        let out = dir.path().join(format!("run-{i}"));
        assert_eq!(
            interrupt_a_run(input, &out, signal),
            Some(want),
            "{input} with signal {signal}"
        );
    }
}

#[test]
fn a_label_names_a_loop_built_step_in_reports() {
    let (dir, path) = scratch_scenario(
        "local steps = { name = \"loop\", peer { name = \"a\" } }\nfor i = 1, 3 do\n  steps[#steps + 1] = expectGames { peer = \"a\", games = i == 3 and { ggoo = {} } or {}, timeout = \"0.2s\", label = \"round \" .. i }\nend\nscenario(steps)\n",
    );
    let junit = dir.path().join("j.xml");
    let out = run(&["-s", &path, "--junit", &junit.to_string_lossy()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("✓   3 expectGames \"round 2\""), "{t}");
    assert!(t.contains("FAILED expectGames \"round 3\" at "), "{t}");
    let x = std::fs::read_to_string(&junit).unwrap_or_else(|e| panic!("junit: {e}"));
    assert!(
        x.contains("name=\"4 expectGames &quot;round 3&quot; ("),
        "{x}"
    );
}
