//! LAN discovery (`peer --discover`) between real peer processes, each in
//! its own network namespace on a small virtual LAN built here: one veth per
//! host into a bridge that lives in a namespace of its own (not the host's,
//! whose firewall may drop bridged packets), addresses from 198.18.0.0/15,
//! a route for 224.0.0.0/4 on the LAN interface and no default route, so no
//! packet can leave the namespaces this test made.
//!
//! Needs root and `ip netns`; without them each test prints why and passes
//! without checking anything (CI runs as root, so it runs there).

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// Discovery's group and port (docs/PROTOCOL.md, "LAN discovery").
const GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 76, 83);
const PORT: u16 = 47683;
/// The issue's convergence target.
const CONVERGE: Duration = Duration::from_secs(3);

fn host_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, 10 + i as u8)
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("running ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Why this machine cannot build the LAN, or `None` when it can.
fn cannot_run(tag: &str) -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root".into());
    }
    let probe = format!("lsdisc-{}-{tag}-probe", std::process::id());
    if let Err(e) = ip(&["netns", "add", &probe]) {
        return Some(format!("no network namespaces: {e}"));
    }
    let _ = ip(&["netns", "delete", &probe]);
    None
}

macro_rules! skip_unless_lan {
    ($tag:expr) => {
        if let Some(why) = cannot_run($tag) {
            println!("skipped: LAN discovery test needs root and `ip netns` ({why})");
            return;
        }
    };
}

/// Removes namespaces `lsdisc-<pid>-…` whose test process is gone (a test
/// that was SIGKILLed cannot clean up after itself).
fn remove_stale_namespaces() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix("lsdisc-")
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = ip(&["netns", "delete", name]);
        }
    }
}

/// One virtual LAN: `hosts` namespaces wired to a bridge namespace. Every
/// namespace is deleted when it drops (also when the test panics).
struct Lan {
    prefix: String,
    hosts: usize,
}

impl Lan {
    fn new(tag: &str, hosts: usize) -> Result<Lan, String> {
        remove_stale_namespaces();
        let lan = Lan {
            prefix: format!("lsdisc-{}-{tag}", std::process::id()),
            hosts,
        };
        let br = lan.bridge();
        ip(&["netns", "add", &br])?;
        // No snooping: without an IGMP querier it would stop forwarding
        // the group once its membership entries age out.
        ip(&[
            "-n",
            &br,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        ip(&["-n", &br, "link", "set", "br0", "up"])?;
        for i in 0..hosts {
            let ns = lan.host(i);
            let port = format!("p{i}");
            let addr = format!("{}/24", host_ip(i));
            ip(&["netns", "add", &ns])?;
            ip(&[
                "-n", &br, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ])?;
            ip(&["-n", &br, "link", "set", &port, "master", "br0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "route", "add", "224.0.0.0/4", "dev", "eth0"])?;
        }
        Ok(lan)
    }

    fn bridge(&self) -> String {
        format!("{}-br", self.prefix)
    }

    fn host(&self, i: usize) -> String {
        format!("{}-{i}", self.prefix)
    }

    /// A UDP socket living in host `i`'s namespace, bound to `port`.
    fn socket(&self, i: usize, port: u16) -> UdpSocket {
        let path = PathBuf::from("/run/netns").join(self.host(i));
        let bind = SocketAddr::from((host_ip(i), port));
        // Only this short-lived thread enters the namespace; the socket
        // stays in it after the thread ends.
        let joined = std::thread::spawn(move || -> Result<UdpSocket, String> {
            let ns = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            use std::os::fd::AsRawFd;
            // SAFETY: setns on this thread only, with an fd we own.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(format!("setns: {}", std::io::Error::last_os_error()));
            }
            UdpSocket::bind(bind).map_err(|e| format!("binding {bind}: {e}"))
        })
        .join();
        match joined {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => panic!("socket in {}: {e}", self.host(i)),
            Err(_) => panic!("socket thread panicked"),
        }
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for i in 0..self.hosts {
            let _ = ip(&["netns", "delete", &self.host(i)]);
        }
        let _ = ip(&["netns", "delete", &self.bridge()]);
    }
}

/// A peer process in one namespace, driven through its stdin/stdout.
struct Peer {
    name: String,
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<Value>,
    events: Vec<Value>,
    stderr: PathBuf,
    next_id: u64,
    id: String,
    port: u16,
}

impl Peer {
    fn start(lan: &Lan, i: usize, dir: &Path) -> Peer {
        let name = format!("peer{i}");
        let root = dir.join(&name);
        // Appended to: a restarted peer's log follows its first life's.
        let stderr = dir.join(format!("{name}.stderr"));
        let log = match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr)
        {
            Ok(f) => f,
            Err(e) => panic!("creating {}: {e}", stderr.display()),
        };
        let spawned = Command::new("ip")
            .args(["netns", "exec", &lan.host(i)])
            .arg(env!("CARGO_BIN_EXE_lanspread-checker"))
            .arg("peer")
            .arg("--games-dir")
            .arg(root.join("games"))
            .arg("--state-dir")
            .arg(root.join("state"))
            .args(["--listen", "0.0.0.0:0", "--discover"])
            .env("RUST_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => panic!("starting {name}: {e}"),
        };
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            panic!("{name}: no stdin/stdout pipe");
        };
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value = serde_json::from_str(&line).unwrap_or_else(
                    |e| json!({ "type": "unparsable", "line": line, "error": e.to_string() }),
                );
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        let mut peer = Peer {
            name,
            child,
            stdin,
            lines,
            events: Vec::new(),
            stderr,
            next_id: 0,
            id: String::new(),
            port: 0,
        };
        let ready = peer.next_line(Duration::from_secs(10));
        if ready["event"] != "ready" {
            panic!(
                "{}: first line is not ready: {ready}\n{}",
                peer.name,
                peer.log_tail()
            );
        }
        peer.id = ready["data"]["peer_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let addr: Option<SocketAddr> = ready["data"]["addr"].as_str().and_then(|a| a.parse().ok());
        peer.port = addr.map_or(0, |a| a.port());
        assert!(
            peer.id.len() == 32 && peer.port != 0,
            "{}: bad ready {ready}",
            peer.name
        );
        peer
    }

    fn next_line(&mut self, timeout: Duration) -> Value {
        match self.lines.recv_timeout(timeout) {
            Ok(v) => v,
            Err(RecvTimeoutError::Timeout) => {
                panic!(
                    "{}: nothing on stdout in {timeout:?}\n{}",
                    self.name,
                    self.log_tail()
                )
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("{}: stdout closed\n{}", self.name, self.log_tail())
            }
        }
    }

    /// Sends one command and returns its result's `data`; events seen on
    /// the way are kept in `events`.
    fn request(&mut self, mut cmd: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        cmd["id"] = json!(id);
        if let Err(e) = writeln!(self.stdin, "{cmd}") {
            panic!("{}: writing a command: {e}\n{}", self.name, self.log_tail());
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.next_line(left.max(Duration::from_millis(1)));
            match line["type"].as_str() {
                Some("event") => self.events.push(line),
                Some("result") if line["id"] == json!(id) => return line["data"].clone(),
                _ if line["id"] == json!(id) => panic!("{}: {cmd} failed: {line}", self.name),
                _ => {}
            }
        }
    }

    /// Peer ID → listener address of every peer this one lists.
    fn listed(&mut self) -> BTreeMap<String, String> {
        let data = self.request(json!({ "cmd": "list-peers" }));
        let Some(peers) = data["peers"].as_array() else {
            panic!("{}: list-peers without peers: {data}", self.name);
        };
        peers
            .iter()
            .map(|p| {
                (
                    p["peer_id"].as_str().unwrap_or_default().to_string(),
                    p["addr"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    fn discovered(&self) -> Vec<(String, String)> {
        self.events
            .iter()
            .filter(|e| e["event"] == "peer-discovered")
            .map(|e| {
                (
                    e["data"]["peer_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    e["data"]["addr"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls until every peer lists exactly the others (at their LAN address
/// and listener port) or `within` has passed; returns how long it took.
fn converge(peers: &mut [Peer], hosts: &[usize], within: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    let want: Vec<(String, String)> = peers
        .iter()
        .zip(hosts)
        .map(|(p, &h)| (p.id.clone(), format!("{}:{}", host_ip(h), p.port)))
        .collect();
    loop {
        let mut missing = Vec::new();
        for (i, peer) in peers.iter_mut().enumerate() {
            let listed = peer.listed();
            if listed.contains_key(&peer.id) {
                return Err(format!("{} lists itself: {listed:?}", peer.name));
            }
            let expected: BTreeMap<String, String> = want
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, w)| w.clone())
                .collect();
            if listed != expected {
                missing.push(format!(
                    "{} lists {listed:?}, expected {expected:?}",
                    peer.name
                ));
            }
        }
        if missing.is_empty() {
            return Ok(start.elapsed());
        }
        if start.elapsed() >= within {
            return Err(format!(
                "not converged in {within:?}:\n{}",
                missing.join("\n")
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn fail(peers: &[Peer], msg: &str) -> ! {
    let logs: Vec<String> = peers
        .iter()
        .map(|p| format!("--- {} ({}) stderr:\n{}", p.name, p.id, p.log_tail()))
        .collect();
    panic!("{msg}\n{}", logs.join("\n"));
}

fn scratch() -> tempfile::TempDir {
    match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("temp dir: {e}"),
    }
}

fn lan(tag: &str, hosts: usize) -> Lan {
    match Lan::new(tag, hosts) {
        Ok(l) => l,
        Err(e) => panic!("building the LAN: {e}"),
    }
}

#[test]
fn six_peers_find_each_other_and_a_restarted_one() {
    skip_unless_lan!("six");
    const N: usize = 6;
    let lan = lan("six", N);
    let dir = scratch();
    let started = Instant::now();
    let mut peers: Vec<Peer> = (0..N).map(|i| Peer::start(&lan, i, dir.path())).collect();
    let all_ready = started.elapsed();
    let hosts: Vec<usize> = (0..N).collect();
    let took = match converge(&mut peers, &hosts, CONVERGE) {
        Ok(t) => t,
        Err(e) => fail(&peers, &e),
    };
    println!(
        "{N} peers ready {all_ready:?} after the first start; all converged {took:?} after the last ready"
    );

    // Connected peers keep beaconing; none of that makes a new connection.
    let connections = |peers: &[Peer]| -> Vec<usize> {
        peers
            .iter()
            .map(|p| p.log().matches("peer connected").count())
            .collect()
    };
    let before = connections(&peers);
    std::thread::sleep(Duration::from_millis(2500));
    let after = connections(&peers);
    if before != after {
        fail(
            &peers,
            &format!("connected peers were dialled again: connections {before:?} → {after:?}"),
        );
    }
    // Every peer printed `peer-discovered` for each other, at its address.
    // (A peer may list another, dialled by it, before that one's beacon
    // reached it: by now, after more than two beacon periods, it has.)
    for peer in peers.iter_mut() {
        peer.request(json!({ "cmd": "status" }));
    }
    for i in 0..N {
        let seen: BTreeSet<(String, String)> = peers[i].discovered().into_iter().collect();
        for j in (0..N).filter(|&j| j != i) {
            let want = (
                peers[j].id.clone(),
                format!("{}:{}", host_ip(j), peers[j].port),
            );
            if !seen.contains(&want) {
                fail(
                    &peers,
                    &format!(
                        "{} printed no peer-discovered for {want:?}: {seen:?}",
                        peers[i].name
                    ),
                );
            }
        }
        if seen.iter().any(|(id, _)| *id == peers[i].id) {
            fail(&peers, &format!("{} discovered itself", peers[i].name));
        }
    }

    // One connection per pair, seen at both ends: the smaller ID of a pair
    // dials, the larger waits for it instead of dialling at the same time.
    let total: usize = after.iter().sum();
    println!("connections seen (both ends): {total}");
    if total != N * (N - 1) {
        fail(
            &peers,
            &format!(
                "not one connection per pair: {after:?} (want {} in all)",
                N * (N - 1)
            ),
        );
    }

    // A peer SIGKILLed and restarted (same state dir: same ID, new port) is
    // found again by all, and finds all.
    let old_id = peers[2].id.clone();
    peers[2].kill();
    let restarted = Instant::now();
    peers[2] = Peer::start(&lan, 2, dir.path());
    if peers[2].id != old_id {
        fail(&peers, "the restarted peer has another ID");
    }
    let took = match converge(&mut peers, &hosts, Duration::from_secs(8)) {
        Ok(t) => t,
        Err(e) => fail(&peers, &format!("after the restart: {e}")),
    };
    println!(
        "restarted peer found again {took:?} after its ready ({:?} after the kill)",
        restarted.elapsed()
    );
    // Its new listener was announced to everyone (within a beacon period).
    std::thread::sleep(Duration::from_millis(1200));
    let again = (
        peers[2].id.clone(),
        format!("{}:{}", host_ip(2), peers[2].port),
    );
    for i in (0..N).filter(|&i| i != 2) {
        peers[i].request(json!({ "cmd": "status" }));
        if !peers[i].discovered().contains(&again) {
            fail(
                &peers,
                &format!(
                    "{} printed no peer-discovered for the restarted {again:?}",
                    peers[i].name
                ),
            );
        }
    }
}

#[test]
fn hostile_beacons_are_dropped_and_dials_are_bounded() {
    skip_unless_lan!("hostile");
    // Hosts 0 and 1 run peers; host 2 sends the beacons and plays the
    // address they point to.
    let lan = lan("hostile", 3);
    let dir = scratch();
    let mut peers: Vec<Peer> = (0..2).map(|i| Peer::start(&lan, i, dir.path())).collect();
    if let Err(e) = converge(&mut peers, &[0, 1], CONVERGE) {
        fail(&peers, &e);
    }
    let sender = lan.socket(2, 0);
    let trap = lan.socket(2, 9999);
    let group = SocketAddr::from((GROUP, PORT));
    let id = "0123456789abcdef0123456789abcdef";
    let garbage: Vec<Vec<u8>> = vec![
        b"hello".to_vec(),
        vec![0xff; 40],
        vec![b'x'; 2000],
        b"lanspread-discovery/2\n{}".to_vec(),
        b"lanspread-discovery/1\nnot json".to_vec(),
        format!("lanspread-discovery/1\n{{\"peer_id\":\"{id}\",\"port\":0}}").into_bytes(),
        b"lanspread-discovery/1\n{\"peer_id\":\"short\",\"port\":9999}".to_vec(),
        format!("lanspread-discovery/1\n{{\"peer_id\":\"{id}\",\"port\":9999,\"admin\":true}}")
            .into_bytes(),
        // Peer 0's own ID at another address: peer 0 must not dial it.
        format!(
            "lanspread-discovery/1\n{{\"peer_id\":\"{}\",\"port\":9999}}",
            peers[0].id
        )
        .into_bytes(),
    ];
    for g in &garbage {
        if let Err(e) = sender.send_to(g, group) {
            panic!("sending garbage: {e}");
        }
    }
    // A flood of made-up peers, all pointing at the trap: more than the
    // table holds, faster than dials are allowed.
    let flood_start = Instant::now();
    for n in 0..300u32 {
        let beacon = format!("lanspread-discovery/1\n{{\"peer_id\":\"{n:032x}\",\"port\":9999}}");
        if let Err(e) = sender.send_to(beacon.as_bytes(), group) {
            panic!("sending the flood: {e}");
        }
        // Paced, so the peers' socket buffers do not drop what the table
        // limit is to drop.
        if n % 20 == 19 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // Count the QUIC connection attempts (distinct destination connection
    // IDs of Initial packets) that reach the trap, per dialling peer, for
    // three seconds: dials of unanswered peers are bounded to 8 at a time.
    let mut attempts: BTreeMap<Ipv4Addr, BTreeSet<Vec<u8>>> = BTreeMap::new();
    if let Err(e) = trap.set_read_timeout(Some(Duration::from_millis(100))) {
        panic!("{e}");
    }
    let mut buf = [0u8; 2048];
    while flood_start.elapsed() < Duration::from_secs(3) {
        let Ok((n, from)) = trap.recv_from(&mut buf) else {
            continue;
        };
        let SocketAddr::V4(from) = from else { continue };
        // Long header: flag bit, 4-byte version, DCID length, DCID.
        if n >= 6 && buf[0] & 0x80 != 0 {
            let len = usize::from(buf[5]);
            if n >= 6 + len {
                attempts
                    .entry(*from.ip())
                    .or_default()
                    .insert(buf[6..6 + len].to_vec());
            }
        }
    }
    let counts: BTreeMap<Ipv4Addr, usize> = attempts.iter().map(|(ip, d)| (*ip, d.len())).collect();
    println!("connection attempts at the trap in 3 s, per peer: {counts:?}");
    for (i, peer) in peers.iter().enumerate() {
        let n = counts.get(&host_ip(i)).copied().unwrap_or(0);
        if n == 0 || n > 8 {
            fail(
                &peers,
                &format!("{} made {n} connection attempts (want 1..=8)", peer.name),
            );
        }
    }

    for i in 0..2 {
        if let Ok(Some(status)) = peers[i].child.try_wait() {
            fail(&peers, &format!("{} exited: {status}", peers[i].name));
        }
        let status = peers[i].request(json!({ "cmd": "status" }));
        if status["peer_id"] != json!(peers[i].id) {
            fail(&peers, &format!("{}: status {status}", peers[i].name));
        }
        let log = peers[i].log();
        if !log.contains("dropping a discovery datagram") {
            fail(
                &peers,
                &format!("{} logged no dropped datagram", peers[i].name),
            );
        }
        if !log.contains("too many peers known") && !log.contains("more discovery datagrams") {
            fail(
                &peers,
                &format!("{} did not bound its table", peers[i].name),
            );
        }
    }
    // Only the real peers are connected; peer 0 never took its own ID.
    let listed = peers[0].listed();
    if listed.keys().collect::<Vec<_>>() != vec![&peers[1].id] {
        fail(&peers, &format!("peer0 lists {listed:?}"));
    }
    let own = peers[0].id.clone();
    if peers[0].discovered().iter().any(|(id, _)| *id == own) {
        fail(&peers, "peer0 discovered its own ID");
    }
}
