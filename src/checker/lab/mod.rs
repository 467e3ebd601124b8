//! The lab: what one scenario run holds — its run folder, the peer
//! processes it started, their event logs, armed kill triggers, disk
//! watchers — and the guarantee that every peer is reaped.
//!
//! - `process`: the lab's process reaper (process groups, signals, panics);
//! - `events`: peers' event logs, cursors over them, kill triggers;
//! - `peer_proc`: the peer-process client (start, commands, answers, end);
//! - `run_folder`: the run folder's layout and whether it outlives the run;
//! - `deadline`: the scenario deadline every wait honours;
//! - `disk_watch`: the disk watcher of `watchDisk`/`expectDiskPeak`;
//! - `network`: the network lab (`scenario{ network = "lan" }`): hosts in
//!   namespaces on one userspace switch, impairments, partitions;
//! - `ssh`: peers started through OpenSSH on the LAN (`peer{ ssh = true }`).
//!
//! The types and functions other modules use are re-exported here.

pub mod deadline;
pub mod disk_watch;
pub mod events;
pub mod network;
pub mod peer_proc;
pub mod process;
pub mod run_folder;
pub mod ssh;

pub use events::{
    Act, EventFilter, EventLog, LogCursor, Logged, Trigger, Triggers, is_event, ordinal,
};
pub use peer_proc::{Answer, PeerProc, Spawn};
pub use process::{
    forget_scratch_dir, install_signal_handler, kill_all_peers, kill_group, remove_on_interrupt,
    track_process_group,
};

use crate::checker::outcome::Failure;
use anyhow::{Result, anyhow, bail};
use peer_proc::RunContext;
use run_folder::PeerFolder;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    pub disk_watchers: BTreeMap<String, disk_watch::Watcher>,
    /// The sshd of each `ssh = true` peer's host; dropped (killed) after
    /// the peers and before the LAN.
    sshds: Vec<ssh::Sshd>,
    /// The host the `ssh` clients run in, made with the first such peer.
    ssh_control: Option<network::HostInfo>,
    /// The run's LAN with `scenario{ network = "lan" }`: every peer is a
    /// host on it. Shared with triggers, which change it from reader threads.
    pub lan: Option<Arc<Mutex<network::Lan>>>,
}

impl Lab {
    /// Creates the run folder at `run_dir` (see `run_folder`) for a run
    /// with nothing started yet.
    pub fn new(run_dir: PathBuf, scenario_dir: PathBuf, verbose: bool) -> Result<Self> {
        let folder = run_folder::create(&run_dir)?;
        Ok(Self {
            run_dir,
            workspace: folder.workspace,
            scenario_dir,
            catalog_db: folder.catalog_db,
            peers: BTreeMap::new(),
            triggers: Arc::new(Mutex::new(Vec::new())),
            downloads: BTreeMap::new(),
            marks: BTreeMap::new(),
            readonly: Vec::new(),
            redirects: crate::redirect::Redirects::new(),
            verbose,
            seed: 0,
            disk_watchers: BTreeMap::new(),
            sshds: Vec::new(),
            ssh_control: None,
            lan: None,
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

    /// `failure` with every peer's listener address (from its `ready`
    /// line) written as the peer's scenario name, which is what the
    /// author knows it by.
    pub fn name_peers_in(&self, failure: Failure) -> Failure {
        let addrs: Vec<(&str, &str)> = self
            .peers
            .values()
            .filter(|p| !p.addr.is_empty())
            .map(|p| (p.addr.as_str(), p.name.as_str()))
            .collect();
        let fix = |s: String| name_addrs(&s, &addrs);
        match failure {
            Failure::Expectation {
                expected,
                seen,
                peers,
            } => Failure::Expectation {
                expected: fix(expected),
                seen: fix(seen),
                peers,
            },
            Failure::Invalid { message } => Failure::Invalid {
                message: fix(message),
            },
            Failure::Harness { message, peers } => Failure::Harness {
                message: fix(message),
                peers,
            },
        }
    }

    /// Starts a peer process and waits for its `ready` line. On a LAN the
    /// peer first becomes a host there (at `spec.address`, or the next free
    /// address), which it keeps across restarts.
    pub fn spawn(&mut self, mut spec: Spawn) -> Result<&mut PeerProc> {
        if self.peers.contains_key(&spec.name) {
            bail!("a peer named {:?} already exists", spec.name);
        }
        if spec.via_ssh && self.lan.is_none() {
            bail!(
                "peer {:?}: `ssh = true` needs scenario{{ network = \"lan\" }}",
                spec.name
            );
        }
        if spec.via_ssh {
            // Before any host is made: a missing sshd is reported as such.
            ssh::preflight().map_err(|e| anyhow!("peer {:?}: {e:#}", spec.name))?;
        }
        match &self.lan {
            Some(lan) => {
                let host = crate::sync::lock(lan).add_host(&spec.name, spec.address)?;
                if spec.via_ssh {
                    let control = match &self.ssh_control {
                        Some(c) => c.clone(),
                        None => {
                            let c = crate::sync::lock(lan).add_host(ssh::CONTROL_HOST, None)?;
                            self.ssh_control = Some(c.clone());
                            c
                        }
                    };
                    let dir = self.run_dir.join("peers").join(&spec.name).join("ssh");
                    let (sshd, login) = ssh::start(&dir, &host, control)
                        .map_err(|e| anyhow!("peer {:?}: {e:#}", spec.name))?;
                    self.sshds.push(sshd);
                    spec.ssh = Some(login);
                }
                spec.host = Some(host);
            }
            None if spec.address.is_some() => {
                bail!(
                    "peer {:?}: `address` needs scenario{{ network = \"lan\" }}",
                    spec.name
                )
            }
            None => {}
        }
        let folder = PeerFolder::create(&self.run_dir, &spec.name)?;
        let mut proc = PeerProc::new(spec, folder);
        proc.start(&self.run_context())?;
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
        let started = proc.start(&self.run_context());
        self.peers.insert(name.to_string(), proc);
        started.map(|_| graceful)
    }

    fn run_context(&self) -> RunContext<'_> {
        RunContext {
            default_catalog: &self.catalog_db,
            triggers: &self.triggers,
            verbose: self.verbose,
        }
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
        events::unfired(&self.triggers)
    }

    /// Ends every peer: a graceful `shutdown` first, then SIGKILL.
    pub fn shutdown_all(&mut self) {
        self.disk_watchers.clear();
        for p in self.peers.values_mut() {
            p.ask_to_shut_down();
        }
        // One deadline for all: they were asked together.
        let deadline = Instant::now() + Duration::from_secs(3);
        for p in self.peers.values_mut() {
            p.wait_exit(deadline);
            p.kill();
        }
    }
}

/// `text` with each address in `addrs` replaced by its peer's name; an
/// address followed by a digit is another port (`…:4305` inside `…:43051`)
/// and kept. In prose an address becomes `peer "a"`; inside a string of
/// embedded JSON (`{"error":"… at 127.0.0.1:43051"}`) it becomes
/// `127.0.0.1:43051 (peer a)`, escaped, so the JSON stays valid.
fn name_addrs(text: &str, addrs: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut json = JsonScan::default();
    let mut rest = text;
    'scan: while !rest.is_empty() {
        for (addr, name) in addrs {
            if let Some(after) = rest.strip_prefix(addr)
                && !after.starts_with(|c: char| c.is_ascii_digit())
            {
                if json.in_string() {
                    let named = format!("{addr} (peer {name})");
                    let quoted = serde_json::Value::String(named).to_string();
                    out.push_str(&quoted[1..quoted.len() - 1]);
                } else {
                    out.push_str(&format!("peer {name:?}"));
                }
                rest = after;
                continue 'scan;
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            json.feed(c);
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

/// Where a scan of prose with embedded JSON is: how deep in `{`/`[` and
/// whether inside one of its strings (quotes in prose outside any JSON
/// value do not count).
#[derive(Default)]
struct JsonScan {
    depth: usize,
    string: bool,
    escaped: bool,
}

impl JsonScan {
    fn in_string(&self) -> bool {
        self.depth > 0 && self.string
    }

    fn feed(&mut self, c: char) {
        if self.depth == 0 {
            if c == '{' || c == '[' {
                self.depth = 1;
            }
            return;
        }
        if self.string {
            match (self.escaped, c) {
                (true, _) => self.escaped = false,
                (false, '\\') => self.escaped = true,
                (false, '"') => self.string = false,
                _ => {}
            }
            return;
        }
        match c {
            '"' => self.string = true,
            '{' | '[' => self.depth += 1,
            '}' | ']' => self.depth -= 1,
            _ => {}
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_become_peer_names_but_longer_ports_stay() {
        let addrs = [("127.0.0.1:4305", "a"), ("127.0.0.1:43051", "b")];
        assert_eq!(
            name_addrs(
                "every source failed (127.0.0.1:43051: busy; 127.0.0.1:4305: gone)",
                &addrs
            ),
            "every source failed (peer \"b\": busy; peer \"a\": gone)"
        );
        assert_eq!(
            name_addrs("at 127.0.0.1:430512", &addrs),
            "at 127.0.0.1:430512"
        );
    }

    #[test]
    fn addresses_inside_json_strings_keep_the_json_valid() -> anyhow::Result<()> {
        let addrs = [("127.0.0.1:4305", "a"), ("127.0.0.1:43051", "b\"q")];
        let seen = r#"download-failed: {"error":"size conflict: 2 bytes at 127.0.0.1:43051, 1 at 127.0.0.1:4305","peers":["127.0.0.1:4305"],"n":{"x":"}"}} then 127.0.0.1:4305 left"#;
        let named = name_addrs(seen, &addrs);
        assert_eq!(
            named,
            r#"download-failed: {"error":"size conflict: 2 bytes at 127.0.0.1:43051 (peer b\"q), 1 at 127.0.0.1:4305 (peer a)","peers":["127.0.0.1:4305 (peer a)"],"n":{"x":"}"}} then peer "a" left"#
        );
        // The embedded JSON still parses, with the names in it.
        let json = &named[named.find('{').unwrap_or(0)..named.rfind(" then").unwrap_or(0)];
        let v: serde_json::Value = serde_json::from_str(json)?;
        assert_eq!(v["peers"][0], "127.0.0.1:4305 (peer a)");
        // Quotes in prose outside any JSON do not count as strings.
        assert_eq!(
            name_addrs(r#"want "x" from 127.0.0.1:4305"#, &addrs),
            r#"want "x" from peer "a""#
        );
        Ok(())
    }
}
