//! Peer actions and their step types: `peer`, `hostilePeer`, `restartPeer`,
//! `shutdownPeer`, `connect`, `killPeer`.

use crate::checker::actions::fs::inside;
use crate::checker::actions::{refused, timeout_or};
use crate::checker::lab::{Act, Answer, Lab, Spawn, Trigger};
use crate::checker::outcome::{Failure, StepResult};
use crate::checker::params::{AnswerKind, On, OneOrMany, Size, Span, check_in_project};
use crate::checker::registry::{StepCtx, StepParams};
use crate::protocol::hostile::Lie;
use anyhow::Context;
use serde::Deserialize;
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

/// `peer{}`: start a real peer process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PeerStep {
    pub name: String,
    /// A folder in the run workspace (used in place) or, failing that, one
    /// relative to the scenario file (copied into the run folder).
    pub games: Option<String>,
    /// The peer must never change its games folder (checked at the end).
    #[serde(default)]
    pub readonly: bool,
    pub chunk_size: Option<Size>,
    /// The peer's own catalog: a `game.db` or a catalog source (`.json`),
    /// relative to the scenario file. The run's default catalog otherwise.
    pub catalog: Option<String>,
    /// Another peer binary speaking the same control protocol.
    pub exec: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    pub timeout: Option<Span>,
    /// Its address on the run's LAN (`network = "lan"` only); the next
    /// free one in peer-start order otherwise.
    pub address: Option<std::net::Ipv4Addr>,
    /// Find the other peers of the LAN by multicast (`peer --discover`).
    #[serde(default)]
    pub discover: bool,
    /// A fixed listener port (`--listen <address>:<port>`); a free one
    /// otherwise.
    pub port: Option<u16>,
    /// Start the peer through OpenSSH: an sshd in its host, `ssh` from a
    /// control host (`network = "lan"` only).
    #[serde(default)]
    pub ssh: bool,
}

impl StepParams for PeerStep {
    fn check(&self) -> Result<(), String> {
        if self.port == Some(0) {
            return Err("`port` must be 1–65535 (leave it out for a free port)".into());
        }
        if let Some(a) = self.address
            && !crate::checker::lab::network::in_lan(a)
        {
            return Err(format!(
                "`address` {a} is not a host address of the lab's 198.18.0.0/15"
            ));
        }
        // `games` is tried in the workspace first, but it must at least be
        // usable from the scenario file.
        if let Some(games) = &self.games {
            check_in_project("`games`", games)?;
        }
        if let Some(catalog) = &self.catalog {
            check_in_project("`catalog`", catalog)?;
        }
        Ok(())
    }
}

/// `hostilePeer{}`: a peer that speaks the wire protocol but lies in one
/// way: this binary's `peer --hostile LIE` (a test aid, `peer::hostile`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HostilePeerStep {
    pub name: String,
    pub games: Option<String>,
    /// The lie; `impersonate` alone implies `"impersonate"`.
    pub behaviour: Option<Lie>,
    /// The scenario peer whose ID (from its `ready` line) the hellos claim.
    pub impersonate: Option<String>,
    pub chunk_size: Option<Size>,
    pub timeout: Option<Span>,
}

impl HostilePeerStep {
    /// The lie this step names (`check` made sure there is one).
    fn lie(&self) -> Option<Lie> {
        self.behaviour
            .or(self.impersonate.as_ref().map(|_| Lie::Impersonate))
    }
}

impl StepParams for HostilePeerStep {
    fn check(&self) -> Result<(), String> {
        match (self.behaviour, &self.impersonate) {
            (None, None) => {
                return Err(format!(
                    "give `behaviour` (one of {}) or `impersonate = \"peer\"`",
                    Lie::ALL
                        .iter()
                        .map(|l| format!("\"{l}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            (Some(Lie::Impersonate), None) => {
                return Err(
                    "`behaviour = \"impersonate\"` needs `impersonate = \"peer\"` (whose ID to claim)"
                        .into(),
                );
            }
            (Some(l), Some(_)) if l != Lie::Impersonate => {
                return Err(format!(
                    "`impersonate` is its own behaviour; it does not go with `behaviour = \"{l}\"`"
                ));
            }
            _ => {}
        }
        if self.impersonate.as_deref() == Some(self.name.as_str()) {
            return Err("a hostile peer cannot impersonate itself".into());
        }
        if let Some(games) = &self.games {
            check_in_project("`games`", games)?;
        }
        Ok(())
    }
}

/// `connect{}`: `from` dials each peer in `to`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectStep {
    pub from: String,
    pub to: OneOrMany<String>,
    /// `"result"` (connected) or `"error"` (the peer must refuse).
    #[serde(default)]
    pub expect: AnswerKind,
    /// With `expect = "error"`: the error code the peer must answer with.
    pub code: Option<String>,
    pub timeout: Option<Span>,
}

impl StepParams for ConnectStep {
    fn check(&self) -> Result<(), String> {
        if self.code.is_some() && self.expect != AnswerKind::Error {
            return Err("`code` describes a refusal; add expect = \"error\"".into());
        }
        Ok(())
    }
}

/// `killPeer{}`: SIGKILL a peer now, or when an event appears.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillPeerStep {
    pub name: String,
    pub on: Option<On>,
}

impl StepParams for KillPeerStep {}

/// `restartPeer{}`: graceful shutdown, then the same games and state dirs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartPeerStep {
    pub name: String,
    pub timeout: Option<Span>,
}

impl StepParams for RestartPeerStep {}

/// `shutdownPeer{}`: `shutdown` and wait for the process to exit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownPeerStep {
    pub name: String,
    pub timeout: Option<Span>,
}

impl StepParams for ShutdownPeerStep {}

pub fn peer(lab: &mut Lab, s: &PeerStep, _cx: &StepCtx) -> StepResult {
    if lab.peers.contains_key(&s.name) {
        return Err(Failure::invalid(format!(
            "a peer named {:?} already exists",
            s.name
        )));
    }
    let games_dir = games_dir(lab, s)?;
    let exec = match &s.exec {
        Some(e) => {
            let exec = inside(&lab.scenario_dir, e)
                .ok()
                .filter(|p| p.exists())
                .unwrap_or_else(|| PathBuf::from(e));
            // A binary that is not there is the scenario's mistake (exit 2),
            // like any other thing it names that does not exist.
            if !runnable(&exec) {
                return Err(Failure::invalid(format!(
                    "exec {e:?} is neither beside the scenario nor a program on PATH"
                )));
            }
            exec
        }
        None => std::env::current_exe()
            .context("locating this binary")
            .map_err(|e| Failure::harness(e, &[]))?,
    };
    let catalog = match &s.catalog {
        Some(rel) => Some(catalog_db(lab, &s.name, rel)?),
        None => None,
    };
    let spec = Spawn {
        catalog,
        name: s.name.clone(),
        exec,
        games_dir,
        chunk_size: s.chunk_size.map(|c| c.0),
        args: s
            .discover
            .then(|| "--discover".to_string())
            .into_iter()
            .chain(s.args.iter().cloned())
            .collect(),
        address: s.address,
        port: s.port,
        via_ssh: s.ssh,
        ssh: None,
        host: None,
        ready_timeout: timeout_or(s.timeout, Duration::from_secs(15)),
        redirects: lab.redirects.clone(),
    };
    let games = spec.games_dir.clone();
    let before = if s.readonly {
        Some(crate::manifest::build(&games, &[]).map_err(|e| Failure::harness(e, &[]))?)
    } else {
        None
    };
    lab.spawn(spec).map_err(|e| Failure::harness(e, &[]))?;
    if let Some(before) = before {
        lab.readonly.push((s.name.clone(), games, before));
    }
    Ok(())
}

pub fn hostile_peer(lab: &mut Lab, s: &HostilePeerStep, cx: &StepCtx) -> StepResult {
    let Some(lie) = s.lie() else {
        return Err(Failure::invalid("hostilePeer names no behaviour"));
    };
    let mut args = vec!["--hostile".to_string(), lie.as_str().to_string()];
    if let Some(victim) = &s.impersonate {
        let id = lab
            .peer(victim)
            .map_err(|e| Failure::invalid(format!("`impersonate`: {e:#}")))?
            .peer_id
            .clone();
        args.extend(["--impersonate".to_string(), id]);
    }
    let step = PeerStep {
        name: s.name.clone(),
        games: s.games.clone(),
        readonly: false,
        chunk_size: s.chunk_size,
        catalog: None,
        exec: None,
        args,
        timeout: s.timeout,
        address: None,
        discover: false,
        port: None,
        ssh: false,
    };
    peer(lab, &step, cx)
}

/// Resolves `catalog = "…"`: a `.json` source becomes a `game.db` in the
/// peer's run folder; anything else is used as a `game.db` as it is.
fn catalog_db(lab: &Lab, peer: &str, rel: &str) -> Result<PathBuf, Failure> {
    let path = crate::checker::actions::fs::scenario_path(lab, rel)?;
    if !path.is_file() {
        return Err(Failure::invalid(format!(
            "catalog {rel:?} not found at {}",
            path.display()
        )));
    }
    if path.extension().is_none_or(|e| e != "json") {
        return Ok(path);
    }
    let dir = lab.run_dir.join("peers").join(peer);
    let db = dir.join("game.db");
    let built = std::fs::create_dir_all(&dir)
        .map_err(anyhow::Error::from)
        .and_then(|_| std::fs::read_to_string(&path).map_err(anyhow::Error::from))
        .and_then(|text| crate::catalog::write_db(&text, &db));
    built.map_err(|e| Failure::invalid(format!("catalog {rel:?}: {e:#}")))?;
    Ok(db)
}

/// Whether `exec` names a file (a path) or a program found on `PATH`.
fn runnable(exec: &std::path::Path) -> bool {
    if exec.components().count() > 1 || exec.is_absolute() {
        return exec.is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(exec).is_file()))
}

/// A workspace folder is used in place (scenarios mutate it later); a folder
/// next to the scenario is copied, so fixtures are never modified.
fn games_dir(lab: &Lab, s: &PeerStep) -> Result<PathBuf, Failure> {
    let own = lab.run_dir.join("peers").join(&s.name).join("games");
    let Some(rel) = &s.games else {
        std::fs::create_dir_all(&own).map_err(|e| Failure::harness(e.into(), &[]))?;
        return Ok(own);
    };
    if let Ok(p) = inside(&lab.workspace, rel)
        && p.is_dir()
    {
        return Ok(p);
    }
    let from_scenario = crate::checker::actions::fs::scenario_path(lab, rel)?;
    if from_scenario.is_dir() {
        copy_tree(&from_scenario, &own).map_err(|e| Failure::harness(e, &[]))?;
        return Ok(own);
    }
    Err(Failure::invalid(format!(
        "games folder {rel:?} is neither in the run workspace nor at {}",
        from_scenario.display()
    )))
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) -> anyhow::Result<()> {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry?;
        let rel = entry.path().strip_prefix(from)?;
        let target = to.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target)?;
        } else if entry.file_type().is_file() {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

pub fn connect(lab: &mut Lab, s: &ConnectStep, _cx: &StepCtx) -> StepResult {
    let timeout = timeout_or(s.timeout, Duration::from_secs(10));
    for to in s.to.to_vec() {
        let addr = lab
            .peer(&to)
            .map_err(|e| Failure::invalid(format!("{e:#}")))?
            .addr
            .clone();
        let from = lab
            .peer(&s.from)
            .map_err(|e| Failure::invalid(format!("{e:#}")))?;
        let answer = from
            .request(json!({ "cmd": "connect", "addr": addr }), timeout)
            .map_err(|e| Failure::harness(e, &[&s.from, &to]))?;
        let refusal = format!(
            "{} refuses to connect to {to} ({addr}){}",
            s.from,
            s.code
                .as_ref()
                .map(|c| format!(" with {c}"))
                .unwrap_or_default()
        );
        match (answer, s.expect) {
            (Answer::Result(_), AnswerKind::Result) => {}
            (Answer::Error { code, .. }, AnswerKind::Error)
                if s.code.as_ref().is_none_or(|c| *c == code) => {}
            (Answer::Result(data), AnswerKind::Error) => {
                return Err(Failure::expect(
                    refusal,
                    format!("connected: {data}"),
                    &[&s.from, &to],
                ));
            }
            (Answer::Error { code, message }, AnswerKind::Error) => {
                return Err(refused(refusal, &code, &message, &[&s.from, &to]));
            }
            (Answer::Error { code, message }, AnswerKind::Result) => {
                return Err(refused(
                    format!("{} connects to {to} ({addr})", s.from),
                    &code,
                    &message,
                    &[&s.from, &to],
                ));
            }
        }
    }
    Ok(())
}

pub fn kill_peer(lab: &mut Lab, s: &KillPeerStep, cx: &StepCtx) -> StepResult {
    let line = cx.line;
    let target = lab
        .peer(&s.name)
        .map_err(|e| Failure::invalid(format!("{e:#}")))?;
    let Some(on) = &s.on else {
        target.kill();
        return Ok(());
    };
    let pgid = target.pid;
    lab.peer(&on.peer)
        .map_err(|e| Failure::invalid(format!("{e:#}")))?;
    crate::sync::lock(&lab.triggers).push(Trigger::new(
        &on.peer,
        on.filter(),
        format!("killPeer {}", s.name),
        Act::Kill { pgid },
        line,
    ));
    Ok(())
}

pub fn restart_peer(lab: &mut Lab, s: &RestartPeerStep, _cx: &StepCtx) -> StepResult {
    let timeout = timeout_or(s.timeout, Duration::from_secs(10));
    crate::checker::actions::peer(lab, &s.name)?;
    let old_id = lab
        .peer(&s.name)
        .map(|p| p.peer_id.clone())
        .unwrap_or_default();
    lab.restart(&s.name, timeout)
        .map_err(|e| Failure::harness(e, &[&s.name]))?;
    let new_id = crate::checker::actions::peer(lab, &s.name)?.peer_id.clone();
    if new_id != old_id {
        return Err(Failure::expect(
            format!("{} keeps its peer id {old_id} across a restart", s.name),
            format!("peer id {new_id}"),
            &[&s.name],
        ));
    }
    Ok(())
}

pub fn shutdown_peer(lab: &mut Lab, s: &ShutdownPeerStep, _cx: &StepCtx) -> StepResult {
    let timeout = timeout_or(s.timeout, Duration::from_secs(10));
    let p = crate::checker::actions::peer(lab, &s.name)?;
    if !p.is_alive() {
        return Err(Failure::invalid(format!("peer {} is not running", s.name)));
    }
    if p.shutdown(timeout) {
        return Ok(());
    }
    Err(Failure::expect(
        format!("{} exits within {timeout:?} of `shutdown`", s.name),
        "still running (killed)",
        &[&s.name],
    ))
}
