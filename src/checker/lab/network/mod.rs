//! The network lab's fabric: a LAN of hosts for one run.
//!
//! Each host is a network namespace with one interface, `eth0`, a TUN
//! device whose descriptor the checker's switch thread holds; the switch
//! forwards every packet between hosts through the link rules (delay,
//! jitter, loss, rate, duplication, reordering, partitions). The kernel
//! here has no netem, so all of that happens in userspace, seeded by the
//! run's seed so a failing run replays (docs/NETWORK.md has the design and
//! its measured figures).
//!
//! ```ignore
//! let mut lan = Lan::create(seed)?;
//! let a = lan.add_host("a", None)?;              // 198.18.0.1
//! let b = lan.add_host("b", None)?;              // 198.18.0.2
//! a.enter(&mut command)?;                        // the child runs in host a
//! lan.impair(Link::Pair("a", "b"), Direction::Both, Impairment { delay, .. })?;
//! lan.partition(&[vec!["a"], vec!["b"]])?;
//! lan.heal();
//! ```
//!
//! Hosts have `lo`, one address from 198.18.0.0/15, a 224.0.0.0/4 route
//! for multicast, IPv6 off, and no default route: nothing leaves the LAN.
//! Dropping the `Lan` removes its namespaces; `cleanup::remove_all_live`
//! does it from a signal handler and `reap_stale` after a killed checker.

pub mod cleanup;
mod netns;
pub mod packet;
pub mod probe;
pub mod rules;
mod switch;
mod tun;

pub use cleanup::{reap_stale, remove_all_live};
pub use netns::preflight;
pub use rules::{Direction, Impairment};
pub use switch::Stats;

use anyhow::{Context, Result, bail};
use rules::{HostId, Rules, Target};
use serde::Serialize;
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Duration;
use switch::Switch;

/// The hosts' MTU: near loopback's 64 KiB, since QUIC on loopback sends
/// datagrams that large and that is what makes it fast.
pub const HOST_MTU: u32 = 65000;
/// The LAN: 198.18.0.0/15 (RFC 2544's benchmark range).
pub const NETWORK: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 0);
pub const PREFIX_LEN: u32 = 15;
pub const BROADCAST: Ipv4Addr = Ipv4Addr::new(198, 19, 255, 255);

/// True for a host address of the LAN (not its network or broadcast).
pub fn in_lan(addr: Ipv4Addr) -> bool {
    let mask = u32::MAX << (32 - PREFIX_LEN);
    u32::from(addr) & mask == u32::from(NETWORK) && addr != NETWORK && addr != BROADCAST
}

/// One host of a LAN.
#[derive(Debug, Clone, Serialize)]
pub struct HostInfo {
    /// The scenario's name for it.
    pub name: String,
    pub addr: Ipv4Addr,
    /// Its network namespace (under /run/netns).
    pub netns: String,
}

impl HostInfo {
    /// Makes `cmd`'s child process start inside this host.
    pub fn enter(&self, cmd: &mut Command) -> Result<()> {
        netns::enter(cmd, &self.netns)
            .with_context(|| format!("starting a process in host `{}`", self.name))
    }

    /// Runs `f` on a thread inside this host (its sockets stay there).
    pub fn run_in<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        netns::run_in(&self.netns, f)
    }
}

/// What an impairment is set on, by host name.
#[derive(Debug, Clone, Copy)]
pub enum Link<'a> {
    /// All traffic of one host.
    Host(&'a str),
    /// Traffic between two hosts (`Out` is first → second).
    Pair(&'a str, &'a str),
}

/// One change to the LAN, for the run's records.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// Since the LAN was created.
    #[serde(rename = "at_ms")]
    #[serde(serialize_with = "as_millis")]
    pub at: Duration,
    pub what: String,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

pub struct Lan {
    prefix: String,
    hosts: Vec<HostInfo>,
    changes: Vec<Change>,
    // Declared after `hosts` but dropped explicitly first in `Drop`.
    switch: Switch,
}

impl Lan {
    /// A LAN for this run, with no hosts yet. Fails with what is missing
    /// when this process cannot build one (root, namespaces, tun, `ip`).
    pub fn create(seed: u64) -> Result<Lan> {
        preflight()?;
        let switch = Switch::start(Rules::new(seed), BROADCAST)?;
        let lan = Lan {
            prefix: cleanup::next_lan_prefix(),
            hosts: Vec::new(),
            changes: Vec::new(),
            switch,
        };
        Ok(lan)
    }

    /// The names this LAN's namespaces start with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn next_addr(&self) -> Ipv4Addr {
        let mut n = u32::from(NETWORK) + 1;
        while self.hosts.iter().any(|h| u32::from(h.addr) == n) {
            n += 1;
        }
        Ipv4Addr::from(n)
    }

    /// Adds host `name` with `addr` (the next free address from
    /// 198.18.0.1 on when `None`).
    pub fn add_host(&mut self, name: &str, addr: Option<Ipv4Addr>) -> Result<HostInfo> {
        if self.hosts.iter().any(|h| h.name == name) {
            bail!("the LAN already has a host `{name}`");
        }
        let addr = match addr {
            Some(a) if !in_lan(a) => {
                bail!("host `{name}`: address {a} is not a host address of 198.18.0.0/15")
            }
            Some(a) => {
                if let Some(other) = self.hosts.iter().find(|h| h.addr == a) {
                    bail!(
                        "host `{name}`: address {a} is already host `{}`'s",
                        other.name
                    );
                }
                a
            }
            None => self.next_addr(),
        };
        let netns = format!("{}-h{}", self.prefix, self.hosts.len());
        netns::add(&netns).with_context(|| format!("creating host `{name}`"))?;
        cleanup::track(&netns);
        let host = HostInfo {
            name: name.to_string(),
            addr,
            netns: netns.clone(),
        };
        let setup = host.run_in(|| {
            // IPv6 off: the switch forwards IPv4 only, and stray router
            // solicitations would only be noise.
            for knob in ["all", "default"] {
                let path = format!("/proc/sys/net/ipv6/conf/{knob}/disable_ipv6");
                if std::path::Path::new(&path).exists() {
                    std::fs::write(&path, "1").with_context(|| format!("writing {path}"))?;
                }
            }
            tun::create("eth0")
        });
        let tun = match setup {
            Ok(tun) => tun,
            Err(e) => {
                self.remove_netns(&netns);
                return Err(e.context(format!("creating host `{name}`'s interface")));
            }
        };
        let batch = format!(
            "link set lo up\n\
             link set eth0 mtu {HOST_MTU} up\n\
             addr add {addr}/{PREFIX_LEN} broadcast {BROADCAST} dev eth0\n\
             route add 224.0.0.0/4 dev eth0\n"
        );
        if let Err(e) = netns::configure(&netns, &batch) {
            self.remove_netns(&netns);
            return Err(e.context(format!("configuring host `{name}`")));
        }
        let id = self.switch.add_port(tun, addr);
        debug_assert_eq!(id, self.hosts.len());
        self.hosts.push(host.clone());
        self.record(format!("host {name} {addr}"));
        Ok(host)
    }

    fn remove_netns(&self, netns: &str) {
        let _ = netns::delete(netns);
        cleanup::untrack(netns);
    }

    pub fn hosts(&self) -> &[HostInfo] {
        &self.hosts
    }

    pub fn host(&self, name: &str) -> Option<&HostInfo> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// Host name → address, in the order they were added.
    pub fn topology(&self) -> Vec<(String, Ipv4Addr)> {
        self.hosts
            .iter()
            .map(|h| (h.name.clone(), h.addr))
            .collect()
    }

    /// The scenario name of the host at `addr` (failure messages name
    /// peers, not addresses).
    pub fn name_of(&self, addr: Ipv4Addr) -> Option<&str> {
        self.hosts
            .iter()
            .find(|h| h.addr == addr)
            .map(|h| h.name.as_str())
    }

    /// Every change so far, in order, with its time since the LAN started.
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    pub fn stats(&self) -> Stats {
        self.switch.stats()
    }

    fn id(&self, name: &str) -> Result<HostId> {
        self.hosts
            .iter()
            .position(|h| h.name == name)
            .with_context(|| format!("the LAN has no host `{name}`"))
    }

    fn target(&self, link: Link<'_>) -> Result<Target> {
        Ok(match link {
            Link::Host(h) => Target::Host(self.id(h)?),
            Link::Pair(a, b) => {
                let (ia, ib) = (self.id(a)?, self.id(b)?);
                if ia == ib {
                    bail!("a link needs two different hosts, not `{a}` twice");
                }
                Target::Pair(ia, ib)
            }
        })
    }

    fn record(&mut self, what: String) {
        let at = self.switch.now();
        self.changes.push(Change { at, what });
    }

    /// Sets `imp` on `link` in `direction`, replacing what was set there.
    pub fn impair(&mut self, link: Link<'_>, direction: Direction, imp: Impairment) -> Result<()> {
        let target = self.target(link)?;
        self.switch.rules().impair(target, direction, imp);
        self.record(format!(
            "impair {} {direction:?}: {}",
            describe(link),
            describe_imp(&imp)
        ));
        Ok(())
    }

    /// Removes what `impair` set on `link` in `direction`.
    pub fn clear(&mut self, link: Link<'_>, direction: Direction) -> Result<()> {
        let target = self.target(link)?;
        self.switch.rules().clear(target, direction);
        self.record(format!("clear {} {direction:?}", describe(link)));
        Ok(())
    }

    /// No packet crosses between `groups` (either way, multicast too);
    /// hosts named in no group form one more group. Partitions add up
    /// until `heal`.
    pub fn partition(&mut self, groups: &[Vec<&str>]) -> Result<()> {
        let ids = groups
            .iter()
            .map(|g| g.iter().map(|h| self.id(h)).collect::<Result<Vec<_>>>())
            .collect::<Result<Vec<_>>>()?;
        self.switch
            .rules()
            .partition(&ids)
            .map_err(|e| anyhow::anyhow!("partition: {e}"))?;
        let text: Vec<String> = groups
            .iter()
            .map(|g| format!("{{{}}}", g.join(",")))
            .collect();
        self.record(format!("partition {}", text.join(" ")));
        Ok(())
    }

    /// Removes every partition (impairments stay).
    pub fn heal(&mut self) {
        self.switch.rules().heal();
        self.record("heal".into());
    }
}

fn describe(link: Link<'_>) -> String {
    match link {
        Link::Host(h) => format!("peer {h}"),
        Link::Pair(a, b) => format!("between {a},{b}"),
    }
}

fn describe_imp(imp: &Impairment) -> String {
    let mut parts = Vec::new();
    if !imp.delay.is_zero() {
        parts.push(format!("delay {:?}", imp.delay));
    }
    if !imp.jitter.is_zero() {
        parts.push(format!("jitter {:?}", imp.jitter));
    }
    if imp.loss > 0.0 {
        parts.push(format!("loss {}%", imp.loss * 100.0));
    }
    if let Some(r) = imp.rate_bps {
        parts.push(format!("rate {}bit", r));
    }
    if imp.duplicate > 0.0 {
        parts.push(format!("duplicate {}%", imp.duplicate * 100.0));
    }
    if imp.reorder > 0.0 {
        parts.push(format!("reorder {}%", imp.reorder * 100.0));
    }
    if parts.is_empty() {
        "nothing".into()
    } else {
        parts.join(", ")
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        // Namespaces go first; the switch's descriptors (and with them the
        // TUN devices) close when it drops after this.
        for h in &self.hosts {
            let _ = netns::delete(&h.netns);
            cleanup::untrack(&h.netns);
        }
    }
}

#[cfg(test)]
mod tests;
