//! The probe: UDP and TCP traffic that measures a LAN from inside its
//! hosts (RTT, loss, rate, bulk throughput). `bench lab` runs it on
//! threads inside the hosts; `lanspread-checker probe …` runs the same
//! code as a process (e.g. started in a host with `HostInfo::enter`).
//! Every loop is bounded by a count or a deadline.

use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// Probe packets start with this, then a little-endian u64 sequence number.
const MAGIC: &[u8; 4] = b"LSPB";
const HEADER: usize = 12;

fn seq_of(buf: &[u8]) -> Option<u64> {
    if buf.len() < HEADER || &buf[..4] != MAGIC {
        return None;
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&buf[4..HEADER]);
    Some(u64::from_le_bytes(n))
}

fn packet(seq: u64, size: usize) -> Vec<u8> {
    let mut p = vec![0u8; size.max(HEADER)];
    p[..4].copy_from_slice(MAGIC);
    p[4..HEADER].copy_from_slice(&seq.to_le_bytes());
    p
}

/// Echoes every datagram back to its sender until `until`.
pub fn echo(sock: &UdpSocket, until: Instant) -> Result<u64> {
    let mut buf = vec![0u8; 65536];
    let mut echoed = 0;
    while Instant::now() < until {
        sock.set_read_timeout(Some(Duration::from_millis(50)))?;
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            sock.send_to(&buf[..n], from).context("echoing")?;
            echoed += 1;
        }
    }
    Ok(echoed)
}

/// Round-trip times of `count` pings to an echo at `to`, one at a time,
/// each waiting at most `timeout` (a lost one is left out).
pub fn ping(
    sock: &UdpSocket,
    to: SocketAddr,
    count: u64,
    timeout: Duration,
) -> Result<Vec<Duration>> {
    let mut rtts = Vec::new();
    let mut buf = vec![0u8; 2048];
    for seq in 0..count {
        let sent = Instant::now();
        sock.send_to(&packet(seq, 64), to)
            .context("sending a ping")?;
        let deadline = sent + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            sock.set_read_timeout(Some(left))?;
            match sock.recv_from(&mut buf) {
                Ok((n, _)) if seq_of(&buf[..n]) == Some(seq) => {
                    rtts.push(sent.elapsed());
                    break;
                }
                Ok(_) => continue,
                Err(_) => break,
            }
        }
    }
    Ok(rtts)
}

/// What a sink received.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Received {
    /// Distinct sequence numbers seen.
    pub packets: u64,
    pub bytes: u64,
    /// From the first packet to the last.
    pub span: Duration,
}

impl Received {
    pub fn bits_per_sec(&self) -> f64 {
        if self.span.is_zero() {
            0.0
        } else {
            self.bytes as f64 * 8.0 / self.span.as_secs_f64()
        }
    }
}

/// Counts probe datagrams until `quiet` passes without one (after the
/// first) or `until`.
pub fn sink(sock: &UdpSocket, quiet: Duration, until: Instant) -> Result<Received> {
    let mut buf = vec![0u8; 65536];
    let mut seen = std::collections::HashSet::new();
    let mut got = Received::default();
    let mut first = None;
    let mut last = Instant::now();
    sock.set_read_timeout(Some(Duration::from_millis(20)))?;
    while Instant::now() < until {
        match sock.recv_from(&mut buf) {
            Ok((n, _)) => {
                let Some(seq) = seq_of(&buf[..n]) else {
                    continue;
                };
                last = Instant::now();
                first.get_or_insert(last);
                if seen.insert(seq) {
                    got.packets += 1;
                    got.bytes += n as u64;
                }
            }
            Err(_) if first.is_some() && last.elapsed() >= quiet => break,
            Err(_) => {}
        }
    }
    if let Some(f) = first {
        got.span = last - f;
    }
    Ok(got)
}

/// Sends `count` datagrams of `size` bytes to `to`, paced at `rate_bps`.
pub fn flood(
    sock: &UdpSocket,
    to: SocketAddr,
    count: u64,
    size: usize,
    rate_bps: u64,
) -> Result<u64> {
    let start = Instant::now();
    let per_packet = size as f64 * 8.0 / rate_bps.max(1) as f64;
    for seq in 0..count {
        let due = start + Duration::from_secs_f64(per_packet * seq as f64);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        // A full socket buffer is the sender's own loss: retry once shortly.
        if sock.send_to(&packet(seq, size), to).is_err() {
            std::thread::sleep(Duration::from_micros(200));
            sock.send_to(&packet(seq, size), to)
                .context("sending a flood datagram")?;
        }
    }
    Ok(count)
}

/// Accepts one TCP connection and reads it to the end: bytes and seconds.
pub fn tcp_sink(listener: &TcpListener, until: Instant) -> Result<(u64, Duration)> {
    listener.set_nonblocking(true)?;
    let mut stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(_) if Instant::now() < until => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(e).context("no bulk connection arrived"),
        }
    };
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(
        until
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1)),
    ))?;
    let start = Instant::now();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(e) => return Err(e).context("reading the bulk stream"),
        }
    }
    Ok((total, start.elapsed()))
}

/// Writes `bytes` zeros to a TCP connection to `to`.
pub fn tcp_send(to: SocketAddr, bytes: u64) -> Result<()> {
    let mut stream = TcpStream::connect_timeout(&to, Duration::from_secs(5))
        .with_context(|| format!("connecting to {to}"))?;
    let buf = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        stream
            .write_all(&buf[..n])
            .context("writing the bulk stream")?;
        left -= n as u64;
    }
    Ok(())
}

/// The median of `v` (which must not be empty).
pub fn median(v: &mut [Duration]) -> Result<Duration> {
    if v.is_empty() {
        bail!("no samples");
    }
    v.sort();
    Ok(v[v.len() / 2])
}

/// Asks the kernel for large socket buffers (root may exceed rmem_max),
/// so a burst is not lost in the probe's own socket.
pub fn big_buffers(sock: &UdpSocket) {
    use std::os::unix::io::AsRawFd;
    let size: libc::c_int = 16 << 20;
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_SNDBUFFORCE] {
        // SAFETY: setsockopt with an int option on a socket we own; a
        // failure only leaves the default buffer size.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                &size as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

/// The probe talks to LAN hosts and loopback only, never further.
fn lab_only(addr: SocketAddr) -> Result<SocketAddr> {
    match addr {
        SocketAddr::V4(a) if super::in_lan(*a.ip()) || a.ip().is_loopback() => Ok(addr),
        _ => bail!("the probe only talks to 198.18.0.0/15 or loopback, not {addr}"),
    }
}

/// `lanspread-checker probe …`: the probe as a process (hidden from help),
/// printing one JSON line of results.
#[derive(clap::Subcommand, Debug)]
pub enum ProbeCmd {
    /// Echo UDP datagrams for `secs`.
    Echo {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long, default_value_t = 10)]
        secs: u64,
    },
    /// Ping a UDP echo `count` times; prints the RTTs' median and spread.
    Ping {
        #[arg(long)]
        to: SocketAddr,
        #[arg(long, default_value_t = 100)]
        count: u64,
    },
    /// Count probe datagrams until 1 s passes without one (or `secs`).
    Sink {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long, default_value_t = 10)]
        secs: u64,
    },
    /// Send `count` datagrams of `size` bytes paced at `rate`.
    Flood {
        #[arg(long)]
        to: SocketAddr,
        #[arg(long, default_value_t = 20_000)]
        count: u64,
        #[arg(long, default_value_t = 1200)]
        size: usize,
        #[arg(long, default_value = "100Mbit", value_parser = crate::units::parse_rate)]
        rate: u64,
    },
    /// Accept one TCP connection and read it to the end.
    TcpSink {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long, default_value_t = 60)]
        secs: u64,
    },
    /// Write `bytes` over one TCP connection.
    TcpSend {
        #[arg(long)]
        to: SocketAddr,
        #[arg(long, default_value = "1GiB", value_parser = crate::units::parse_size)]
        bytes: u64,
    },
}

/// Runs one probe command and prints its JSON result line.
pub fn run(cmd: ProbeCmd) -> Result<()> {
    use serde_json::json;
    let out = match cmd {
        ProbeCmd::Echo { listen, secs } => {
            let sock = UdpSocket::bind(lab_only(listen)?).context("binding the echo")?;
            big_buffers(&sock);
            let n = echo(&sock, Instant::now() + Duration::from_secs(secs))?;
            json!({ "echoed": n })
        }
        ProbeCmd::Ping { to, count } => {
            let sock = UdpSocket::bind((std::net::Ipv4Addr::UNSPECIFIED, 0))?;
            let mut rtts = ping(&sock, lab_only(to)?, count, Duration::from_secs(1))?;
            let received = rtts.len();
            let med = median(&mut rtts).ok();
            json!({
                "sent": count,
                "received": received,
                "median_ms": med.map(|d| d.as_secs_f64() * 1000.0),
                "min_ms": rtts.first().map(|d| d.as_secs_f64() * 1000.0),
                "max_ms": rtts.last().map(|d| d.as_secs_f64() * 1000.0),
            })
        }
        ProbeCmd::Sink { listen, secs } => {
            let sock = UdpSocket::bind(lab_only(listen)?).context("binding the sink")?;
            big_buffers(&sock);
            let got = sink(
                &sock,
                Duration::from_secs(1),
                Instant::now() + Duration::from_secs(secs),
            )?;
            json!({ "packets": got.packets, "bytes": got.bytes,
                    "secs": got.span.as_secs_f64(), "mbit_s": got.bits_per_sec() / 1e6 })
        }
        ProbeCmd::Flood {
            to,
            count,
            size,
            rate,
        } => {
            let sock = UdpSocket::bind((std::net::Ipv4Addr::UNSPECIFIED, 0))?;
            big_buffers(&sock);
            let sent = flood(&sock, lab_only(to)?, count, size, rate)?;
            json!({ "sent": sent })
        }
        ProbeCmd::TcpSink { listen, secs } => {
            let l = TcpListener::bind(lab_only(listen)?).context("binding the TCP sink")?;
            let (bytes, took) = tcp_sink(&l, Instant::now() + Duration::from_secs(secs))?;
            json!({ "bytes": bytes, "secs": took.as_secs_f64(),
                    "mib_s": bytes as f64 / (1 << 20) as f64 / took.as_secs_f64().max(1e-9) })
        }
        ProbeCmd::TcpSend { to, bytes } => {
            tcp_send(lab_only(to)?, bytes)?;
            json!({ "sent": bytes })
        }
    };
    println!("{out}");
    Ok(())
}
