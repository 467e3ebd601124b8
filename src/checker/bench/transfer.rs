//! `lanspread-checker bench transfer`: one real download between real peer
//! processes on 127.0.0.1 (or, with `--network lan`, each in its own host on
//! a network-lab LAN), timed by the receiving peer, with each peer's peak
//! resident memory. Speed is measured here, never asserted in a test.

use crate::checker::lab::network::{Direction, HostInfo, Impairment, Lan, Link};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The game the bench moves: bf1942, one sparse `.eti` of the asked size.
const GAME: &str = "bf1942";

/// What `bench transfer` was asked to do.
#[derive(Debug, Clone)]
pub struct TransferOptions {
    pub size: u64,
    pub sources: usize,
    pub chunk_size: Option<u64>,
    /// Where the game and the downloaded copy live (the destination disk).
    pub dir: Option<PathBuf>,
    pub keep: bool,
    /// An existing file to serve as the `.eti` (hard-linked), so
    /// bench/compare.sh can give every tool the very same file.
    pub eti: Option<PathBuf>,
    /// A folder whose files (hard-linked, at their relative paths) are the
    /// game instead of one `.eti`.
    pub tree: Option<PathBuf>,
    /// Start the receiving peer with `--buffered-writes`.
    pub buffered_writes: bool,
    /// Every peer its own host on a network-lab LAN instead of 127.0.0.1.
    pub lan: bool,
    /// On the LAN, cap what each source sends (bits per second).
    pub source_rate_bps: Option<u64>,
    /// Time a second download, after an untimed one by another peer, so
    /// every source has its digests cached (the steady state of a peer
    /// that has served the game before); the sources' CPU counts from the
    /// end of that warm-up (the timed client's start and connect
    /// included), their peak RSS over the whole run.
    pub warm_source: bool,
}

/// What one bench run measured.
#[derive(Debug, Clone)]
pub struct TransferReport {
    pub bytes: u64,
    pub duration_ms: u64,
    pub mib_per_s: f64,
    /// From sending `download` to reading `download-finished`, as the bench
    /// saw it: file lists and connection set-up included, like the process
    /// start and connect in curl's or scp's time in bench/compare.sh.
    pub wall_ms: u64,
    /// From sending `download` to reading `download-begin`: the file lists,
    /// their agreement and the targets' set-up.
    pub setup_ms: u64,
    /// Peak RSS (VmHWM) per peer name, in KiB.
    pub peak_rss_kib: Vec<(String, u64)>,
    /// CPU seconds (user + system) per peer name, over its whole life up to
    /// the end of the download: less sensitive to other load than MiB/s.
    pub cpu_s: Vec<(String, f64)>,
}

/// How a per-chunk event line starts to show (see `BenchPeer::start`).
const CHUNK_EVENT: &str = r#""event":"download-chunk-finished""#;

/// One peer process with its stdout lines arriving on a channel.
struct BenchPeer {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Value>,
    addr: String,
    next_id: u64,
}

impl BenchPeer {
    fn start(
        exec: &Path,
        name: &str,
        games: &Path,
        state: &Path,
        extra: &[String],
        host: Option<&HostInfo>,
    ) -> Result<Self> {
        std::fs::create_dir_all(state).with_context(|| format!("creating {}", state.display()))?;
        let mut cmd = Command::new(exec);
        let listen = match host {
            Some(h) => format!("{}:0", h.addr),
            None => "127.0.0.1:0".to_string(),
        };
        cmd.arg("peer")
            .arg("--games-dir")
            .arg(games)
            .arg("--state-dir")
            .arg(state)
            .arg("--listen")
            .arg(listen);
        cmd.args(extra);
        if let Some(h) = host {
            h.enter(&mut cmd)?;
        }
        let stderr = std::fs::File::create(state.join("stderr.log"))
            .with_context(|| format!("creating {}/stderr.log", state.display()))?;
        // Its own process group, reaped by the checker's Ctrl-C handler
        // like a scenario's peers.
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", exec.display()))?;
        crate::checker::lab::track_process_group(child.id() as i32);
        let stdout = child.stdout.take().context("peer stdout")?;
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The bench waits for none of the per-chunk events: parsing
                // the 100,000 of a small-file game took an eighth of a core
                // away from the peers it times.
                if line.contains(CHUNK_EVENT) {
                    continue;
                }
                // Only JSON lines matter to the bench; anything else is skipped.
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    break;
                }
            }
        });
        let mut peer = Self {
            name: name.to_string(),
            child,
            stdin,
            lines,
            addr: String::new(),
            next_id: 0,
        };
        let ready = peer.wait(Duration::from_secs(15), |v| {
            v["type"] == "event" && v["event"] == "ready"
        })?;
        peer.addr = ready["data"]["addr"]
            .as_str()
            .context("ready line without addr")?
            .to_string();
        Ok(peer)
    }

    fn wait(&mut self, timeout: Duration, want: impl Fn(&Value) -> bool) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if want(&v) => return Ok(v),
                Ok(_) => {}
                Err(_) => bail!("{}: no expected line within {timeout:?}", self.name),
            }
        }
    }

    /// Sends a command and returns its result's `data` (an error answer fails).
    fn call(&mut self, mut cmd: Value, timeout: Duration) -> Result<Value> {
        self.next_id += 1;
        let id = format!("bench-{}", self.next_id);
        cmd["id"] = json!(id);
        let stdin = self.stdin.as_mut().context("peer stdin closed")?;
        writeln!(stdin, "{cmd}").with_context(|| format!("writing to {}", self.name))?;
        let answer = self.wait(timeout, |v| v["id"] == id.as_str())?;
        if answer["type"] != "result" {
            bail!("{} answered {cmd} with {answer}", self.name);
        }
        Ok(answer["data"].clone())
    }

    fn peak_rss_kib(&self) -> Result<u64> {
        peak_rss_kib(self.child.id())
    }

    fn cpu_s(&self) -> Result<f64> {
        cpu_seconds(self.child.id())
    }
}

/// Every bench peer ends with its handle, also when the bench fails early.
impl Drop for BenchPeer {
    fn drop(&mut self) {
        // Closing stdin makes a peer exit; kill it if it lingers.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        crate::checker::lab::kill_group(self.child.id() as i32);
        let _ = self.child.wait();
    }
}

/// `VmHWM` of a live process, in KiB.
pub fn peak_rss_kib(pid: u32) -> Result<u64> {
    let pid = i32::try_from(pid).context("a process ID past i32")?;
    let bytes = crate::checker::actions::resources::peak_rss(pid)
        .with_context(|| format!("reading the peak RSS of process {pid}"))?;
    Ok(bytes / 1024)
}

/// User + system CPU time of a live process, in seconds.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    parse_cpu_ticks(&stat)
        .map(|ticks| ticks as f64 / clock_ticks_per_second())
        .with_context(|| format!("no CPU times in /proc/{pid}/stat"))
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line; the
/// fields are counted after the parenthesised command name, which may
/// itself hold spaces.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state), so field n is fields[n - 3].
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// Builds the game, starts `sources` + 1 peers, downloads once, reports.
pub fn transfer(opts: &TransferOptions) -> Result<TransferReport> {
    if opts.sources == 0 {
        bail!("--sources must be at least 1");
    }
    let exec = std::env::current_exe().context("finding this binary")?;
    crate::checker::lab::install_signal_handler();
    let base = match &opts.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir(),
    };
    let work = base.join(format!("lanspread-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    if !opts.keep {
        crate::checker::lab::remove_on_interrupt(&work);
    }
    let result = run_in(&work, &exec, opts);
    if !opts.keep {
        crate::checker::lab::forget_scratch_dir(&work);
        // A failed clean-up leaves a temp folder; the figures still count.
        if let Err(e) = std::fs::remove_dir_all(&work) {
            eprintln!("bench: could not remove {}: {e}", work.display());
        }
    }
    result
}

fn run_in(work: &Path, exec: &Path, opts: &TransferOptions) -> Result<TransferReport> {
    if opts.warm_source && opts.lan {
        bail!("--warm-source is for loopback runs");
    }
    let catalog = crate::catalog::Catalog::builtin()?;
    let version = catalog
        .version(GAME)
        .with_context(|| format!("{GAME} is not in the built-in catalog"))?
        .to_string();
    // One sparse source root serves every source peer: reads of a hole cost
    // no disk time, so the figure is the transfer and the receiver's writes.
    let games = work.join("source");
    let root = games.join(GAME);
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    match &opts.tree {
        Some(tree) => link_tree(tree, &root)?,
        None => place_eti(opts, &root)?,
    }
    std::fs::write(root.join("version.ini"), &version).context("writing version.ini")?;
    // The set-up's 100,000 new links are 100,000 dirty inodes: synced
    // before the clock starts, or the download's own `syncfs` writes them
    // back inside the timed window (rsync's sync in compare.sh never has
    // them to write).
    crate::syncfs::sync_file_system(&games)?;

    // Declared before the peers, so it is dropped after them.
    let mut lan = if opts.lan {
        crate::checker::lab::network::reap_stale();
        Some(Lan::create(1)?)
    } else {
        if opts.source_rate_bps.is_some() {
            bail!("--rate needs --network lan");
        }
        None
    };
    let mut host = |name: &str| -> Result<Option<HostInfo>> {
        match lan.as_mut() {
            Some(lan) => Ok(Some(lan.add_host(name, None)?)),
            None => Ok(None),
        }
    };
    let mut sources = Vec::new();
    for i in 0..opts.sources {
        let name = format!("source{}", i + 1);
        let state = work.join("state").join(&name);
        let h = host(&name)?;
        sources.push(BenchPeer::start(
            exec,
            &name,
            &games,
            &state,
            &[],
            h.as_ref(),
        )?);
    }
    let mut client_args = Vec::new();
    if let Some(c) = opts.chunk_size {
        client_args.extend(["--chunk-size".to_string(), c.to_string()]);
    }
    if opts.buffered_writes {
        client_args.push("--buffered-writes".to_string());
    }
    let client_host = host("client")?;
    if let (Some(lan), Some(rate)) = (lan.as_mut(), opts.source_rate_bps) {
        for s in &sources {
            let cap = Impairment {
                rate_bps: Some(rate),
                ..Default::default()
            };
            lan.impair(Link::Host(&s.name), Direction::Out, cap)?;
        }
    }
    // A source that served the game once has its digests cached: a
    // first, untimed download by another peer gets it there.
    let mut sources_cpu_before = vec![0.0; sources.len()];
    if opts.warm_source {
        let warm = download_once(exec, work, "warm-up", &client_args, None, &sources)?;
        if warm.outcome["event"] != "download-finished" {
            bail!("the warm-up download failed: {}", warm.outcome["data"]);
        }
        drop(warm);
        for (before, s) in sources_cpu_before.iter_mut().zip(&sources) {
            *before = s.cpu_s()?;
        }
    }
    let Downloaded {
        client,
        outcome,
        setup_ms,
        wall_ms,
    } = download_once(
        exec,
        work,
        "client",
        &client_args,
        client_host.as_ref(),
        &sources,
    )?;
    if outcome["event"] != "download-finished" {
        bail!("the download failed: {}", outcome["data"]);
    }
    let tp = &outcome["data"]["throughput"];
    let mut peak_rss_kib = vec![("client".to_string(), client.peak_rss_kib()?)];
    let mut cpu_s = vec![("client".to_string(), client.cpu_s()?)];
    for (s, before) in sources.iter().zip(&sources_cpu_before) {
        cpu_s.push((s.name.clone(), s.cpu_s()? - before));
        peak_rss_kib.push((s.name.clone(), s.peak_rss_kib()?));
    }
    drop(client);
    drop(sources);
    Ok(TransferReport {
        bytes: tp["bytes"].as_u64().context("throughput without bytes")?,
        duration_ms: tp["duration_ms"]
            .as_u64()
            .context("throughput without duration_ms")?,
        mib_per_s: tp["mib_per_s"]
            .as_f64()
            .context("throughput without mib_per_s")?,
        wall_ms,
        setup_ms,
        peak_rss_kib,
        cpu_s,
    })
}

/// One client's download (`download_once`), its peer still running.
struct Downloaded {
    client: BenchPeer,
    /// `download-finished` or `download-failed`.
    outcome: Value,
    setup_ms: u64,
    wall_ms: u64,
}

/// Starts client peer `name` (its games in `work/<name>`), connects it to
/// every source, waits until it sees the game on all of them, then times
/// one download from the command to its outcome.
fn download_once(
    exec: &Path,
    work: &Path,
    name: &str,
    args: &[String],
    host: Option<&HostInfo>,
    sources: &[BenchPeer],
) -> Result<Downloaded> {
    let games = work.join(name);
    std::fs::create_dir_all(&games).with_context(|| format!("creating {}", games.display()))?;
    let mut client = BenchPeer::start(
        exec,
        name,
        &games,
        &work.join("state").join(name),
        args,
        host,
    )?;
    let t = Duration::from_secs(10);
    for s in sources {
        client.call(json!({ "cmd": "connect", "addr": s.addr }), t)?;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let games = client.call(json!({ "cmd": "list-games" }), t)?;
        let count = games["games"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|g| g["game_id"] == GAME)
            .and_then(|g| g["peer_count"].as_u64())
            .unwrap_or(0);
        if count as usize == sources.len() {
            break;
        }
        if Instant::now() > deadline {
            bail!("{name} sees {count} of {} sources", sources.len());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let started = Instant::now();
    client.call(json!({ "cmd": "download", "game_id": GAME }), t)?;
    let ended = |v: &Value| {
        v["type"] == "event"
            && (v["event"] == "download-finished" || v["event"] == "download-failed")
    };
    let begin = client.wait(Duration::from_secs(3600), |v| {
        ended(v) || (v["type"] == "event" && v["event"] == "download-begin")
    })?;
    let setup_ms = started.elapsed().as_millis() as u64;
    let outcome = if ended(&begin) {
        begin
    } else {
        client.wait(Duration::from_secs(3600), ended)?
    };
    Ok(Downloaded {
        client,
        outcome,
        setup_ms,
        wall_ms: started.elapsed().as_millis() as u64,
    })
}

/// The game as one `.eti`: the given file hard-linked, or a new sparse one.
fn place_eti(opts: &TransferOptions, root: &Path) -> Result<()> {
    let eti_path = root.join(format!("{GAME}.eti"));
    match &opts.eti {
        Some(given) => std::fs::hard_link(given, &eti_path).with_context(|| {
            format!(
                "hard-linking {} into {} (same filesystem needed)",
                given.display(),
                root.display()
            )
        })?,
        None => {
            let eti = std::fs::File::create(&eti_path).context("creating the sparse .eti")?;
            eti.set_len(opts.size).context("sizing the sparse .eti")?;
        }
    }
    // Read the source once before the clock starts: a fresh sparse file is
    // not in the page cache, and filling 2 GiB of cache with zeroed pages
    // costs the sender as much CPU as the transfer. curl and scp in
    // bench/compare.sh read the same warm file.
    let mut f = std::fs::File::open(&eti_path).context("opening the .eti")?;
    // 1 MiB reads: io::copy's 8 KiB buffer takes ~260k reads for 2 GiB.
    std::io::copy(
        &mut std::io::BufReader::with_capacity(1 << 20, &mut f),
        &mut std::io::sink(),
    )
    .context("reading the .eti once")?;
    Ok(())
}

/// The game as every file below `tree`, hard-linked at its relative path,
/// each read once so all of them are as warm as rsync's source in
/// bench/compare.sh. The folders are made first, then the files are linked
/// and read on every core: one after the other, a whole bench run of
/// 100,000 files took 23 s, of which ~9 s for the download itself.
fn link_tree(tree: &Path, root: &Path) -> Result<()> {
    use rayon::prelude::*;
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(tree).min_depth(1) {
        let entry = entry.with_context(|| format!("walking {}", tree.display()))?;
        let rel = entry
            .path()
            .strip_prefix(tree)
            .context("a walked path outside the tree")?;
        let target = root.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target)
                .with_context(|| format!("creating {}", target.display()))?;
        } else if entry.file_type().is_file() {
            files.push((entry.into_path(), target));
        }
    }
    files.par_iter().try_for_each(|(source, target)| {
        std::fs::hard_link(source, target).with_context(|| {
            format!(
                "hard-linking {} to {} (same filesystem needed)",
                source.display(),
                target.display()
            )
        })?;
        std::io::copy(&mut std::fs::File::open(target)?, &mut std::io::sink())
            .with_context(|| format!("reading {}", target.display()))?;
        Ok(())
    })
}

impl TransferReport {
    /// Human lines, then one `key=value` line for scripts (bench/compare.sh).
    pub fn print(&self, sources: usize) {
        let mib = self.bytes as f64 / (1u64 << 20) as f64;
        let wall_mib_per_s = mib / (self.wall_ms.max(1) as f64 / 1000.0);
        println!(
            "transfer: {mib:.0} MiB from {sources} source(s) in {:.3} s: {:.1} MiB/s (peer's clock, download-begin to synced and committed)",
            self.duration_ms as f64 / 1000.0,
            self.mib_per_s
        );
        println!(
            "from the download command to download-finished: {:.3} s: {wall_mib_per_s:.1} MiB/s",
            self.wall_ms as f64 / 1000.0
        );
        println!(
            "of which before download-begin (file lists, targets): {:.3} s",
            self.setup_ms as f64 / 1000.0
        );
        for (name, kib) in &self.peak_rss_kib {
            println!("peak RSS {name}: {:.1} MiB", *kib as f64 / 1024.0);
        }
        let cpu: Vec<String> = self
            .cpu_s
            .iter()
            .map(|(name, s)| format!("{name} {s:.2} s"))
            .collect();
        println!("CPU time (user + system): {}", cpu.join(", "));
        let total_cpu: f64 = self.cpu_s.iter().map(|(_, s)| s).sum();
        let worst = self.peak_rss_kib.iter().map(|(_, k)| *k).max().unwrap_or(0);
        println!(
            "result mib_per_s={:.1} duration_ms={} wall_mib_per_s={wall_mib_per_s:.1} wall_ms={} setup_ms={} cpu_s={total_cpu:.2} max_peak_rss_kib={worst}",
            self.mib_per_s, self.duration_ms, self.wall_ms, self.setup_ms
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_read_after_the_command_name() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0";
        assert_eq!(parse_cpu_ticks(stat), Some(325));
        assert_eq!(parse_cpu_ticks("42 (x) S 1"), None);
        assert!(cpu_seconds(std::process::id()).is_ok());
    }

    #[test]
    fn this_process_has_a_peak_rss() -> Result<()> {
        assert!(peak_rss_kib(std::process::id())? > 0);
        Ok(())
    }
}
