//! The lab: the run folder, the peer processes a scenario started, their
//! event logs, and the guarantee that every peer is reaped.

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[path = "lab/network/mod.rs"]
pub mod network;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Process groups of every live peer, for the signal handler and panics.
static PROCESS_GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Puts a peer started in its own process group (`process_group(0)`, so
/// its pid is the group id) under the care of `kill_all_peers`.
pub fn track_process_group(pid: i32) {
    lock(&PROCESS_GROUPS).push(pid);
}

/// The peer's group is gone (reaped); a later `kill_all_peers` skips it.
fn untrack_process_group(pid: i32) {
    lock(&PROCESS_GROUPS).retain(|p| *p != pid);
}

/// SIGKILLs a peer's process group (its pid, see `track_process_group`)
/// and stops tracking it, before the caller reaps it: once reaped, the pid
/// may be reused by a process that is not ours.
pub fn kill_group(pid: i32) {
    // SAFETY: kill(2) with a negative pid signals a process group we created.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
    untrack_process_group(pid);
}

/// Kills every peer process group this process started.
pub fn kill_all_peers() {
    let groups: Vec<i32> = lock(&PROCESS_GROUPS).clone();
    groups.into_iter().for_each(kill_group);
}

/// Scratch folders that an interrupt removes once the peers are dead (the
/// bench's: it has no logs worth keeping, and gigabytes of game).
static SCRATCH_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Removes `dir` if the run is interrupted; `forget_scratch_dir` undoes it.
pub fn remove_on_interrupt(dir: &Path) {
    lock(&SCRATCH_DIRS).push(dir.to_path_buf());
}

pub fn forget_scratch_dir(dir: &Path) {
    lock(&SCRATCH_DIRS).retain(|d| d != dir);
}

/// Installs the Ctrl-C / SIGTERM handler that reaps peers before exiting.
pub fn install_signal_handler() {
    let _ = ctrlc::set_handler(|| {
        kill_all_peers();
        network::remove_all_live();
        for dir in lock(&SCRATCH_DIRS).drain(..) {
            let _ = std::fs::remove_dir_all(dir);
        }
        eprintln!("interrupted: peers killed");
        std::process::exit(130);
    });
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        kill_all_peers();
        network::remove_all_live();
        previous(info);
    }));
}

/// One stdout line of a peer, numbered in arrival order.
#[derive(Debug, Clone)]
pub struct Logged {
    pub seq: usize,
    pub at: Instant,
    pub value: Value,
}

/// Everything a peer printed on stdout, shared with its reader thread.
#[derive(Default)]
pub struct EventLog {
    lines: Mutex<Vec<Logged>>,
    changed: Condvar,
    closed: AtomicBool,
}

impl EventLog {
    pub fn len(&self) -> usize {
        lock(&self.lines).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn since(&self, seq: usize) -> Vec<Logged> {
        lock(&self.lines).iter().skip(seq).cloned().collect()
    }

    /// Events named `name` from `seq` on.
    pub fn events(&self, seq: usize, name: &str) -> Vec<Value> {
        self.since(seq)
            .into_iter()
            .filter(|l| is_event(&l.value, name))
            .map(|l| l.value["data"].clone())
            .collect()
    }

    fn push(&self, value: Value) {
        let mut lines = lock(&self.lines);
        let seq = lines.len();
        lines.push(Logged {
            seq,
            at: Instant::now(),
            value,
        });
        self.changed.notify_all();
    }

    /// A restarted peer writes to the same log again.
    fn reopen(&self) {
        self.closed.store(false, Ordering::SeqCst);
    }

    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let _guard = lock(&self.lines);
        self.changed.notify_all();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Waits for the first line at or after `seq` that satisfies `pred`.
    /// Gives up at `deadline` or when the peer's stdout closes.
    pub fn wait_for(
        &self,
        seq: usize,
        deadline: Instant,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Logged> {
        let mut lines = lock(&self.lines);
        let mut next = seq;
        loop {
            if let Some(hit) = lines.iter().skip(next).find(|l| pred(&l.value)) {
                return Some(hit.clone());
            }
            next = lines.len();
            let now = Instant::now();
            if now >= deadline || self.is_closed() {
                return None;
            }
            lines = self
                .changed
                .wait_timeout(lines, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }
}

/// Reads an `EventLog` from a position on, each line once, so a step that
/// waits on a growing log looks at every line once rather than rereading
/// the log from its start whenever a line arrives.
pub struct LogCursor<'a> {
    log: &'a EventLog,
    next: usize,
}

impl LogCursor<'_> {
    /// The lines that arrived since the last call.
    pub fn fresh(&mut self) -> Vec<Logged> {
        let lines = self.log.since(self.next);
        self.next += lines.len();
        lines
    }

    /// Waits for a line `fresh` has not returned yet; gives up at `deadline`
    /// or when the peer's stdout closes.
    pub fn wait(&self, deadline: Instant) {
        self.log.wait_for(self.next, deadline, |_| true);
    }
}

impl EventLog {
    pub fn cursor(&self, from: usize) -> LogCursor<'_> {
        LogCursor {
            log: self,
            next: from,
        }
    }
}

pub fn is_event(v: &Value, name: &str) -> bool {
    v["type"] == "event" && v["event"] == name
}

/// Kill `target` when `watch` prints `event` (for `game`, if given).
pub struct Trigger {
    pub watch: String,
    pub event: String,
    pub game: Option<String>,
    pub target: String,
    pub target_pgid: i32,
    pub line: u32,
    pub fired: Arc<AtomicBool>,
}

type Triggers = Arc<Mutex<Vec<Trigger>>>;

/// A running (or killed) peer process.
pub struct PeerProc {
    pub name: String,
    pub pid: i32,
    pub peer_id: String,
    pub addr: String,
    pub games_dir: PathBuf,
    pub state_dir: PathBuf,
    pub stderr_path: PathBuf,
    pub events_path: PathBuf,
    /// Every stdout line of every incarnation (restarts append to it).
    pub log: Arc<EventLog>,
    spec: Spawn,
    /// `None` until the first start.
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    reader: Option<std::thread::JoinHandle<()>>,
    next_id: u64,
}

/// How a peer answered a command.
pub enum Answer {
    Result(Value),
    Error { code: String, message: String },
}

impl PeerProc {
    /// Sends one control command and waits for its answer.
    pub fn request(&mut self, mut cmd: Value, timeout: Duration) -> Result<Answer> {
        self.next_id += 1;
        let id = format!("k{}", self.next_id);
        cmd["id"] = json!(id);
        let start = self.log.len();
        self.send_line(&cmd.to_string())?;
        let deadline = Instant::now() + timeout;
        let hit = self.log.wait_for(start, deadline, |v| {
            v["id"] == json!(id) && (v["type"] == "result" || v["type"] == "error")
        });
        match hit {
            Some(l) if l.value["type"] == "result" => Ok(Answer::Result(l.value["data"].clone())),
            Some(l) => Ok(Answer::Error {
                code: l.value["code"].as_str().unwrap_or("").to_string(),
                message: l.value["error"].as_str().unwrap_or("").to_string(),
            }),
            None if self.log.is_closed() => bail!("peer {} exited while running {cmd}", self.name),
            None => bail!("peer {} did not answer {cmd} within {timeout:?}", self.name),
        }
    }

    /// Writes one raw line to the peer's stdin.
    pub fn send_line(&mut self, line: &str) -> Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| anyhow!("peer {} is not running", self.name))?;
        writeln!(stdin, "{line}")
            .and_then(|_| stdin.flush())
            .with_context(|| format!("peer {} is not reading commands (exited?)", self.name))
    }

    /// Like `request`, but an error answer is an `Err`.
    pub fn call(&mut self, cmd: Value, timeout: Duration) -> Result<Value> {
        match self.request(cmd.clone(), timeout)? {
            Answer::Result(v) => Ok(v),
            Answer::Error { code, message } => {
                bail!("peer {} refused {cmd}: {code}: {message}", self.name)
            }
        }
    }

    pub fn is_alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGKILLs the peer's process group and reaps it.
    pub fn kill(&mut self) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        kill_group(self.pid);
        let _ = child.wait();
        self.stdin = None;
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }

    /// Asks the peer to shut down and waits for it to exit; `false` if it
    /// was still running at the deadline (it is then killed).
    pub fn shutdown(&mut self, timeout: Duration) -> bool {
        let _ = self.send_line(&json!({ "cmd": "shutdown" }).to_string());
        self.stdin = None;
        let deadline = Instant::now() + timeout;
        while self.is_alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let graceful = !self.is_alive();
        self.kill();
        graceful
    }

    /// The last `n` lines of the peer's stderr log.
    pub fn stderr_tail(&self, n: usize) -> Vec<String> {
        tail(&self.stderr_path, n)
    }
}

fn tail(path: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// How to start one peer.
#[derive(Debug, Clone)]
pub struct Spawn {
    pub name: String,
    pub exec: PathBuf,
    pub games_dir: PathBuf,
    pub chunk_size: Option<u64>,
    /// `game.db` for this peer; the run's default catalog when `None`.
    pub catalog: Option<PathBuf>,
    pub args: Vec<String>,
    pub ready_timeout: Duration,
    /// Written to the peer's run folder and passed as `--redirects` when not empty.
    pub redirects: crate::redirect::Redirects,
}

/// A started process before it is known to be ready.
struct Started {
    child: Child,
    stdin: Option<ChildStdin>,
    reader: std::thread::JoinHandle<()>,
    pid: i32,
}

/// The run folder and every peer of one scenario run.
pub struct Lab {
    pub run_dir: PathBuf,
    pub workspace: PathBuf,
    pub scenario_dir: PathBuf,
    pub catalog_db: PathBuf,
    pub peers: BTreeMap<String, PeerProc>,
    pub triggers: Triggers,
    /// Log position before the last `download` of (peer, game).
    pub downloads: BTreeMap<(String, String), usize>,
    /// Peers started with `readonly`: their games folder as it was then.
    pub readonly: Vec<(String, PathBuf, crate::manifest::Manifest)>,
    /// Step line → each peer's log position when that step began.
    marks: BTreeMap<u32, BTreeMap<String, usize>>,
    /// `redirect{}` entries so far; peers started later get them.
    pub redirects: crate::redirect::Redirects,
    pub verbose: bool,
    /// The run's seed; the default for seeded actions such as fuzzAllCommands.
    pub seed: u64,
    /// `watchDisk{}` samplers by peer name, until their `expectDiskPeak`.
    pub disk_watchers: BTreeMap<String, crate::checker::actions::disk::Watcher>,
}

impl Lab {
    pub fn new(run_dir: PathBuf, scenario_dir: PathBuf, verbose: bool) -> Result<Self> {
        let workspace = run_dir.join("workspace");
        std::fs::create_dir_all(&workspace)
            .with_context(|| format!("creating {}", workspace.display()))?;
        let catalog_db = run_dir.join("game.db");
        crate::peer::catalog::write_db(crate::peer::catalog::BUILTIN_SOURCE, &catalog_db)?;
        Ok(Self {
            run_dir,
            workspace,
            scenario_dir,
            catalog_db,
            peers: BTreeMap::new(),
            triggers: Arc::new(Mutex::new(Vec::new())),
            downloads: BTreeMap::new(),
            marks: BTreeMap::new(),
            readonly: Vec::new(),
            redirects: crate::redirect::Redirects::new(),
            verbose,
            seed: 0,
            disk_watchers: BTreeMap::new(),
        })
    }

    pub fn peer(&mut self, name: &str) -> Result<&mut PeerProc> {
        self.peers.get_mut(name).ok_or_else(|| {
            anyhow!("no peer named {name:?} (start it with peer{{ name = {name:?} }})")
        })
    }

    /// Name of the peer listening on `addr`, or the address itself.
    pub fn name_of_addr(&self, addr: &str) -> String {
        self.peers
            .values()
            .find(|p| p.addr == addr)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| addr.to_string())
    }

    /// Starts a peer process and waits for its `ready` line.
    pub fn spawn(&mut self, spec: Spawn) -> Result<&mut PeerProc> {
        if self.peers.contains_key(&spec.name) {
            bail!("a peer named {:?} already exists", spec.name);
        }
        let dir = self.run_dir.join("peers").join(&spec.name);
        let state_dir = dir.join("state");
        std::fs::create_dir_all(&state_dir)?;
        let log = Arc::new(EventLog::default());
        let mut proc = PeerProc {
            name: spec.name.clone(),
            pid: 0,
            peer_id: String::new(),
            addr: String::new(),
            games_dir: spec.games_dir.clone(),
            state_dir,
            stderr_path: dir.join("stderr.log"),
            events_path: dir.join("events.jsonl"),
            log,
            spec,
            child: None,
            stdin: None,
            reader: None,
            next_id: 0,
        };
        self.start(&mut proc)?;
        let name = proc.name.clone();
        self.peers.insert(name.clone(), proc);
        self.peer(&name)
    }

    /// Restarts a peer with the same games and state dirs (so the same
    /// identity); its event log continues where it was.
    pub fn restart(&mut self, name: &str, graceful_timeout: Duration) -> Result<bool> {
        let mut proc = self
            .peers
            .remove(name)
            .ok_or_else(|| anyhow!("no peer named {name:?}"))?;
        let graceful = if proc.is_alive() {
            proc.shutdown(graceful_timeout)
        } else {
            true
        };
        proc.kill();
        let started = self.start(&mut proc);
        self.peers.insert(name.to_string(), proc);
        started.map(|_| graceful)
    }

    /// Launches `proc`'s process and waits for its ready line.
    fn start(&self, proc: &mut PeerProc) -> Result<()> {
        let spec = proc.spec.clone();
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&proc.stderr_path)?;
        let mut cmd = Command::new(&spec.exec);
        cmd.arg("peer")
            .arg("--games-dir")
            .arg(&spec.games_dir)
            .arg("--state-dir")
            .arg(&proc.state_dir)
            .arg("--catalog")
            .arg(spec.catalog.as_ref().unwrap_or(&self.catalog_db))
            .arg("--listen")
            .arg("127.0.0.1:0");
        if let Some(c) = spec.chunk_size {
            cmd.arg("--chunk-size").arg(c.to_string());
        }
        if !spec.redirects.is_empty() {
            let file = self
                .run_dir
                .join("peers")
                .join(&spec.name)
                .join("redirects.json");
            std::fs::write(&file, spec.redirects.to_json()?)
                .with_context(|| format!("writing {}", file.display()))?;
            cmd.arg("--redirects").arg(&file);
        }
        cmd.args(&spec.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .process_group(0);
        let started = self.launch(cmd, proc)?;
        proc.child = Some(started.child);
        proc.stdin = started.stdin;
        proc.reader = Some(started.reader);
        proc.pid = started.pid;
        let from = proc.log.len();
        let deadline = Instant::now() + spec.ready_timeout;
        let Some(ready) = proc.log.wait_for(from, deadline, |v| is_event(v, "ready")) else {
            let tail = proc.stderr_tail(15).join("\n      ");
            proc.kill();
            bail!(
                "peer {} did not print its ready line within {:?}; stderr:\n      {tail}",
                spec.name,
                spec.ready_timeout
            );
        };
        proc.peer_id = ready.value["data"]["peer_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        proc.addr = ready.value["data"]["addr"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if proc.addr.is_empty() {
            proc.kill();
            bail!(
                "peer {}'s ready line has no addr: {}",
                spec.name,
                ready.value
            );
        }
        Ok(())
    }

    fn launch(&self, mut cmd: Command, proc: &PeerProc) -> Result<Started> {
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", proc.spec.exec.display()))?;
        let pid = child.id() as i32;
        track_process_group(pid);
        let stdout = child.stdout.take().context("peer stdout")?;
        let stdin = child.stdin.take();
        let log = proc.log.clone();
        log.reopen();
        let triggers = self.triggers.clone();
        let me = proc.name.clone();
        let verbose = self.verbose;
        let mut events_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&proc.events_path)?;
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(events_file, "{line}");
                let value = serde_json::from_str::<Value>(&line)
                    .unwrap_or_else(|_| json!({ "type": "garbage", "line": line }));
                fire_triggers(&triggers, &me, &value);
                if verbose && value["type"] == "event" {
                    println!(
                        "    [{me}] {} {}",
                        value["event"].as_str().unwrap_or("?"),
                        value["data"]
                    );
                }
                log.push(value);
            }
            log.close();
        });
        Ok(Started {
            child,
            stdin,
            reader,
            pid,
        })
    }

    /// Records every peer's log position as the step at `line` begins.
    pub fn mark_step(&mut self, line: u32) {
        let marks = self
            .peers
            .iter()
            .map(|(n, p)| (n.clone(), p.log.len()))
            .collect();
        self.marks.insert(line, marks);
    }

    /// Where `peer`'s log stood when the step at `line` began (0 if the peer
    /// did not exist yet); `None` if no step began at that line.
    pub fn mark(&self, line: u32, peer: &str) -> Option<usize> {
        self.marks
            .get(&line)
            .map(|m| m.get(peer).copied().unwrap_or(0))
    }

    /// Readonly peers whose games folder changed, with what changed.
    pub fn readonly_violations(&self) -> Vec<(String, String)> {
        self.readonly
            .iter()
            .filter_map(|(name, dir, before)| {
                let after = crate::manifest::build(dir, &[]).unwrap_or_default();
                let diff = crate::manifest::diff(before, &after);
                (!diff.is_empty()).then(|| (name.clone(), diff.to_string()))
            })
            .collect()
    }

    /// Triggers armed by `killPeer{ on = … }` that never fired.
    pub fn unfired_triggers(&self) -> Vec<(u32, String)> {
        lock(&self.triggers)
            .iter()
            .filter(|t| !t.fired.load(Ordering::SeqCst))
            .map(|t| {
                (
                    t.line,
                    format!(
                        "killPeer {} on {}:{} was armed but the event never came",
                        t.target, t.watch, t.event
                    ),
                )
            })
            .collect()
    }

    /// Ends every peer: a graceful `shutdown` first, then SIGKILL.
    pub fn shutdown_all(&mut self) {
        self.disk_watchers.clear();
        for p in self.peers.values_mut() {
            if p.stdin.is_some() {
                let _ = p.send_line(&json!({ "cmd": "shutdown" }).to_string());
            }
            p.stdin = None;
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        for p in self.peers.values_mut() {
            while p.is_alive() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            p.kill();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for p in self.peers.values_mut() {
            p.kill();
        }
    }
}

fn fire_triggers(triggers: &Triggers, watch: &str, v: &Value) {
    if v["type"] != "event" {
        return;
    }
    for t in lock(triggers).iter() {
        if t.watch == watch
            && v["event"] == t.event.as_str()
            && t.game
                .as_ref()
                .is_none_or(|g| v["data"]["game_id"] == g.as_str())
            && !t.fired.swap(true, Ordering::SeqCst)
        {
            // SAFETY: signals the target peer's own process group.
            unsafe {
                libc::kill(-t.target_pgid, libc::SIGKILL);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_returns_each_line_once_from_its_start() {
        let log = EventLog::default();
        for i in 0..3 {
            log.push(json!({ "n": i }));
        }
        let mut cursor = log.cursor(1);
        let ns = |lines: Vec<Logged>| {
            lines
                .iter()
                .map(|l| l.value["n"].clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ns(cursor.fresh()), [json!(1), json!(2)]);
        assert!(cursor.fresh().is_empty());
        log.push(json!({ "n": 3 }));
        // A line already there ends the wait at once.
        let began = Instant::now();
        cursor.wait(began + Duration::from_secs(5));
        assert!(began.elapsed() < Duration::from_secs(5));
        assert_eq!(ns(cursor.fresh()), [json!(3)]);
    }
}
