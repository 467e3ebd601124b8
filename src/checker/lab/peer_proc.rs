//! The peer-process client: starts a peer process (this binary's `peer`
//! subcommand, or another `exec` that speaks the control protocol), reads
//! its stdout into its event log on a thread of its own, sends it commands
//! and waits for their answers, and ends it.

use super::events::{EventLog, Triggers, fire_triggers, is_event};
use super::process::{kill_group, track_process_group};
use super::run_folder::PeerFolder;
use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// Where `spec.redirects` is written for the peer to read.
    redirects_path: PathBuf,
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
    /// Its fixed address on the run's LAN (`peer{ address = … }`).
    pub address: Option<std::net::Ipv4Addr>,
    /// Its fixed listener port (`peer{ port = … }`); 0 (a free one) when `None`.
    pub port: Option<u16>,
    /// Start it through OpenSSH (`peer{ ssh = true }`, LAN only).
    pub via_ssh: bool,
    /// Set by the lab for `via_ssh`: how to log in to the peer's host.
    pub ssh: Option<super::ssh::SshLogin>,
    /// Set by the lab on a LAN: the host the process starts in.
    pub host: Option<super::network::HostInfo>,
}

/// What every start of a peer shares with the rest of the run.
pub(super) struct RunContext<'a> {
    /// The catalog of peers whose `Spawn` names none.
    pub default_catalog: &'a Path,
    pub triggers: &'a Triggers,
    /// Echo every event line to stdout.
    pub verbose: bool,
}

/// A started process before it is known to be ready.
struct Started {
    child: Child,
    stdin: Option<ChildStdin>,
    reader: std::thread::JoinHandle<()>,
    pid: i32,
}

impl PeerProc {
    /// A peer not started yet, with its files in `folder`.
    pub(super) fn new(spec: Spawn, folder: PeerFolder) -> Self {
        Self {
            name: spec.name.clone(),
            pid: 0,
            peer_id: String::new(),
            addr: String::new(),
            games_dir: spec.games_dir.clone(),
            state_dir: folder.state_dir,
            stderr_path: folder.stderr_log,
            events_path: folder.events_log,
            log: Arc::new(EventLog::default()),
            redirects_path: folder.redirects,
            spec,
            child: None,
            stdin: None,
            reader: None,
            next_id: 0,
        }
    }

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
        self.ask_to_shut_down();
        let graceful = self.wait_exit(Instant::now() + timeout);
        self.kill();
        graceful
    }

    /// Sends `shutdown` (if the peer still reads commands) and closes its
    /// stdin, without waiting: many peers can then end at once.
    pub fn ask_to_shut_down(&mut self) {
        if self.stdin.is_some() {
            let _ = self.send_line(&json!({ "cmd": "shutdown" }).to_string());
        }
        self.stdin = None;
    }

    /// Waits until the process exits or `deadline` passes; `true` if it exited.
    pub fn wait_exit(&mut self, deadline: Instant) -> bool {
        while self.is_alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        !self.is_alive()
    }

    /// The last `n` lines of the peer's stderr log.
    pub fn stderr_tail(&self, n: usize) -> Vec<String> {
        tail(&self.stderr_path, n)
    }

    /// Launches the peer's process and waits for its ready line; the peer
    /// is killed again if that line does not come.
    pub(super) fn start(&mut self, run: &RunContext) -> Result<()> {
        let spec = self.spec.clone();
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr_path)
            .with_context(|| format!("opening {}", self.stderr_path.display()))?;
        let mut argv: Vec<OsString> = vec![
            spec.exec.clone().into(),
            "peer".into(),
            "--games-dir".into(),
            spec.games_dir.clone().into(),
            "--state-dir".into(),
            self.state_dir.clone().into(),
            "--catalog".into(),
            spec.catalog
                .as_deref()
                .unwrap_or(run.default_catalog)
                .into(),
            "--listen".into(),
        ];
        // On a LAN the peer listens on its host's address, inside its host.
        let port = spec.port.unwrap_or(0);
        let ip = spec
            .host
            .as_ref()
            .map_or_else(|| "127.0.0.1".to_string(), |h| h.addr.to_string());
        argv.push(format!("{ip}:{port}").into());
        if let Some(c) = spec.chunk_size {
            argv.push("--chunk-size".into());
            argv.push(c.to_string().into());
        }
        if !spec.redirects.is_empty() {
            let file = &self.redirects_path;
            std::fs::write(file, spec.redirects.to_json()?)
                .with_context(|| format!("writing {}", file.display()))?;
            argv.push("--redirects".into());
            argv.push(file.clone().into());
        }
        argv.extend(spec.args.iter().map(OsString::from));
        let mut cmd = match (&spec.ssh, &spec.host) {
            // The ssh client runs in the control host; sshd starts the
            // peer inside the peer's own host.
            (Some(login), _) => login.command(&argv)?,
            (None, host) => {
                let mut cmd = Command::new(&argv[0]);
                cmd.args(&argv[1..]);
                if let Some(host) = host {
                    host.enter(&mut cmd)?;
                }
                cmd
            }
        };
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .process_group(0);
        let started = self.launch(cmd, run)?;
        self.child = Some(started.child);
        self.stdin = started.stdin;
        self.reader = Some(started.reader);
        self.pid = started.pid;
        let from = self.log.len();
        let deadline = Instant::now() + spec.ready_timeout;
        let Some(ready) = self.log.wait_for(from, deadline, |v| is_event(v, "ready")) else {
            let tail = self.stderr_tail(15).join("\n      ");
            self.kill();
            bail!(
                "peer {} did not print its ready line within {:?}; stderr:\n      {tail}",
                spec.name,
                spec.ready_timeout
            );
        };
        self.peer_id = ready.value["data"]["peer_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.addr = ready.value["data"]["addr"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if self.addr.is_empty() {
            self.kill();
            bail!(
                "peer {}'s ready line has no addr: {}",
                spec.name,
                ready.value
            );
        }
        Ok(())
    }

    /// Spawns `cmd` under the reaper's care and starts the thread that
    /// copies its stdout to `events.jsonl` and the event log, firing
    /// triggers on the way.
    fn launch(&self, mut cmd: Command, run: &RunContext) -> Result<Started> {
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", self.spec.exec.display()))?;
        let pid = child.id() as i32;
        track_process_group(pid);
        let stdout = child.stdout.take().context("peer stdout")?;
        let stdin = child.stdin.take();
        let log = self.log.clone();
        log.reopen();
        let triggers = run.triggers.clone();
        let me = self.name.clone();
        let verbose = run.verbose;
        let mut events_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.events_path)
            .with_context(|| format!("opening {}", self.events_path.display()))?;
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
}

/// The last `n` lines of a text file; none if it cannot be read.
fn tail(path: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|s| s.to_string())
        .collect()
}
