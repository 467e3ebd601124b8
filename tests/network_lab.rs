//! A SIGKILLed checker leaves its LAN's namespaces behind (no destructor
//! runs), and the reaper every run starts with removes them. Needs root and
//! network namespaces; skips with the reason otherwise (CI runs as root).

use lanspread_checker::checker::lab::network::reap_stale;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn namespaces() -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output();
    let Ok(out) = out else { return Vec::new() };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

#[test]
fn a_killed_checkers_lan_is_reaped() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0
        || Command::new("ip").args(["netns", "list"]).output().is_err()
    {
        eprintln!("skipping a_killed_checkers_lan_is_reaped: needs root and `ip netns`");
        return;
    }
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("lan.lua");
    std::fs::write(
        &file,
        "scenario {\n  network = \"lan\",\n  peer { name = \"a\" },\n  sleep { duration = \"30s\" },\n}\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut checker = Command::new(env!("CARGO_BIN_EXE_lanspread-checker"))
        .args(["-s", &file.to_string_lossy()])
        .arg("--out")
        .arg(dir.path().join("run"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run the checker: {e}"));
    let ours = format!("lsck-{}-", checker.id());
    let deadline = Instant::now() + Duration::from_secs(15);
    let netns = loop {
        if let Some(n) = namespaces().into_iter().find(|n| n.starts_with(&ours)) {
            break n;
        }
        if Instant::now() > deadline {
            let _ = checker.kill();
            panic!("the checker made no {ours}… namespace within 15 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    checker.kill().unwrap_or_else(|e| panic!("{e}")); // SIGKILL: no destructor runs
    let _ = checker.wait();
    assert!(
        namespaces().contains(&netns),
        "a SIGKILLed checker leaves {netns} behind"
    );
    let removed = reap_stale();
    assert!(removed.contains(&netns), "reaped {removed:?}, not {netns}");
    assert!(!namespaces().contains(&netns));
}
