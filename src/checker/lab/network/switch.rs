//! The switch: one thread that reads each host's TUN device and writes
//! every packet to the host(s) it is for, at the time `Rules` decide.
//! It is the thin I/O loop around the rule engine: poll, read, ask the
//! rules, write now or queue by release time.

use super::packet;
use super::rules::{DropCause, HostId, Rules, Verdict};
use super::tun::VNET_HDR_LEN;
use anyhow::{Context, Result};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::os::unix::io::{AsRawFd, FromRawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Larger than the hosts' MTU (see `HOST_MTU`) plus the device's header,
/// so no packet is cut.
const BUF: usize = 65536 + 64;
/// Packets read from one device before the next gets its turn.
const BURST: usize = 64;
/// Packets waiting for their release time may hold at most this much
/// memory; beyond it new ones are dropped (as a full queue would).
const MAX_QUEUED_BYTES: usize = 256 << 20;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Packet counters since the LAN started.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub delivered: u64,
    pub dropped_partition: u64,
    pub dropped_loss: u64,
    pub dropped_queue: u64,
    /// Not IPv4, or for an address no host has.
    pub dropped_no_route: u64,
    /// A host's device refused the write.
    pub dropped_write: u64,
}

#[derive(Default)]
struct Counters {
    delivered: AtomicU64,
    partition: AtomicU64,
    loss: AtomicU64,
    queue: AtomicU64,
    no_route: AtomicU64,
    write: AtomicU64,
}

impl Counters {
    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
    fn snapshot(&self) -> Stats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            delivered: g(&self.delivered),
            dropped_partition: g(&self.partition),
            dropped_loss: g(&self.loss),
            dropped_queue: g(&self.queue),
            dropped_no_route: g(&self.no_route),
            dropped_write: g(&self.write),
        }
    }
}

struct Port {
    tun: Arc<File>,
    addr: Ipv4Addr,
}

struct Shared {
    start: Instant,
    rules: Mutex<Rules>,
    ports: Mutex<Vec<Port>>,
    stop: AtomicBool,
    counters: Counters,
    broadcast: Ipv4Addr,
}

/// A packet waiting for its release time.
struct Queued {
    release: Duration,
    seq: u64,
    dst: HostId,
    data: Vec<u8>,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.release, self.seq) == (o.release, o.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.release, self.seq).cmp(&(o.release, o.seq))
    }
}

pub struct Switch {
    shared: Arc<Shared>,
    wake: File,
    thread: Option<JoinHandle<()>>,
}

fn pipe() -> Result<(File, File)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors, which we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error()).context("creating the switch's wake pipe");
    }
    // SAFETY: both descriptors are fresh and owned by nothing else.
    Ok(unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) })
}

impl Switch {
    pub fn start(rules: Rules, broadcast: Ipv4Addr) -> Result<Switch> {
        let shared = Arc::new(Shared {
            start: Instant::now(),
            rules: Mutex::new(rules),
            ports: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            counters: Counters::default(),
            broadcast,
        });
        let (rx, wake) = pipe()?;
        let inner = shared.clone();
        let thread = std::thread::Builder::new()
            .name("lab-switch".into())
            .spawn(move || run(&inner, rx))
            .context("starting the lab's switch thread")?;
        Ok(Switch {
            shared,
            wake,
            thread: Some(thread),
        })
    }

    /// Time since the switch started: the clock the rules run on.
    pub fn now(&self) -> Duration {
        self.shared.start.elapsed()
    }

    /// Plugs in a host's device; its index is the host's `HostId`.
    pub fn add_port(&self, tun: File, addr: Ipv4Addr) -> HostId {
        let id = {
            let mut ports = lock(&self.shared.ports);
            ports.push(Port {
                tun: Arc::new(tun),
                addr,
            });
            ports.len() - 1
        };
        self.poke();
        id
    }

    pub fn rules(&self) -> MutexGuard<'_, Rules> {
        lock(&self.shared.rules)
    }

    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }

    fn poke(&self) {
        let _ = (&self.wake).write(&[1]);
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.poke();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The switch thread's own view of the ports.
struct Plugged {
    tuns: Vec<Arc<File>>,
    by_addr: HashMap<Ipv4Addr, HostId>,
}

fn run(shared: &Shared, mut wake: File) {
    let mut plugged = Plugged {
        tuns: Vec::new(),
        by_addr: HashMap::new(),
    };
    let mut queue: BinaryHeap<Reverse<Queued>> = BinaryHeap::new();
    let mut queued_bytes = 0usize;
    let mut seq = 0u64;
    let mut buf = vec![0u8; BUF];
    let c = &shared.counters;
    while !shared.stop.load(Ordering::SeqCst) {
        {
            let ports = lock(&shared.ports);
            if ports.len() != plugged.tuns.len() {
                plugged.tuns = ports.iter().map(|p| p.tun.clone()).collect();
                plugged.by_addr = ports.iter().enumerate().map(|(i, p)| (p.addr, i)).collect();
            }
        }
        let mut fds: Vec<libc::pollfd> = std::iter::once(wake.as_raw_fd())
            .chain(plugged.tuns.iter().map(|t| t.as_raw_fd()))
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // Sleep until a packet arrives or the next queued one is due.
        let wait = queue
            .peek()
            .map(|Reverse(q)| q.release.saturating_sub(shared.start.elapsed()))
            .unwrap_or(Duration::from_millis(200))
            .min(Duration::from_millis(200));
        let ts = libc::timespec {
            tv_sec: wait.as_secs() as libc::time_t,
            tv_nsec: wait.subsec_nanos() as libc::c_long,
        };
        // SAFETY: ppoll over a live array of pollfds of the stated length.
        unsafe {
            libc::ppoll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                &ts,
                std::ptr::null(),
            )
        };
        if fds[0].revents != 0 {
            let mut sink = [0u8; 64];
            while matches!(wake.read(&mut sink), Ok(n) if n > 0) {}
        }
        for (src, pfd) in fds[1..].iter().enumerate() {
            if pfd.revents == 0 {
                continue;
            }
            let mut rules = lock(&shared.rules);
            for _ in 0..BURST {
                let n = match (&*plugged.tuns[src]).read(&mut buf) {
                    Ok(n) if n > 0 => n,
                    _ => break,
                };
                let pkt = &buf[..n];
                // The rules see the IP packet's size; the header rides along.
                let Some((_, dst_addr)) = pkt.get(VNET_HDR_LEN..).and_then(packet::ipv4_addrs)
                else {
                    Counters::add(&c.no_route, 1);
                    continue;
                };
                let flood = packet::is_flood(dst_addr, shared.broadcast);
                let dsts: Vec<HostId> = if flood {
                    (0..plugged.tuns.len()).filter(|&d| d != src).collect()
                } else {
                    match plugged.by_addr.get(&dst_addr) {
                        Some(&d) if d != src => vec![d],
                        _ => {
                            Counters::add(&c.no_route, 1);
                            continue;
                        }
                    }
                };
                let now = shared.start.elapsed();
                for dst in dsts {
                    match rules.route(now, src, dst, n - VNET_HDR_LEN) {
                        Verdict::Now => write(c, &plugged.tuns[dst], pkt),
                        Verdict::At(times, cause) => {
                            if let Some(cause) = cause {
                                let counter = match cause {
                                    DropCause::Partition => &c.partition,
                                    DropCause::Loss => &c.loss,
                                    DropCause::Queue => &c.queue,
                                };
                                Counters::add(counter, 1);
                            }
                            for release in times {
                                if queued_bytes + n > MAX_QUEUED_BYTES {
                                    Counters::add(&c.queue, 1);
                                    continue;
                                }
                                queued_bytes += n;
                                seq += 1;
                                queue.push(Reverse(Queued {
                                    release,
                                    seq,
                                    dst,
                                    data: pkt.to_vec(),
                                }));
                            }
                        }
                    }
                }
            }
        }
        let now = shared.start.elapsed();
        while queue.peek().is_some_and(|Reverse(q)| q.release <= now) {
            let Some(Reverse(q)) = queue.pop() else { break };
            queued_bytes -= q.data.len();
            write(c, &plugged.tuns[q.dst], &q.data);
        }
    }
}

fn write(c: &Counters, tun: &File, pkt: &[u8]) {
    // A TUN write takes the whole packet or none of it.
    match (&*tun).write(pkt) {
        Ok(n) if n == pkt.len() => Counters::add(&c.delivered, 1),
        _ => Counters::add(&c.write, 1),
    }
}
