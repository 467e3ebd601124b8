//! `lanspread-checker bench lab`: builds a two-host LAN and measures,
//! through it with the probe, what each impairment does against issue 12's
//! targets, then the unimpaired LAN's TCP bulk throughput against
//! loopback. Figures are printed; speed is never asserted in a test.

use crate::checker::lab::network::{Direction, HostInfo, Impairment, Lan, Link, probe};
use anyhow::{Context, Result, bail};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One measured figure and whether it met its target.
pub struct Figure {
    pub what: &'static str,
    pub measured: String,
    pub target: &'static str,
    pub ok: bool,
}

fn udp(host: &HostInfo, port: u16) -> Result<UdpSocket> {
    let addr = SocketAddr::from((host.addr, port));
    let sock =
        host.run_in(move || UdpSocket::bind(addr).with_context(|| format!("binding {addr}")))?;
    probe::big_buffers(&sock);
    Ok(sock)
}

fn join<T>(h: JoinHandle<Result<T>>) -> Result<T> {
    h.join()
        .map_err(|_| anyhow::anyhow!("a probe thread panicked"))?
}

/// Sends `count` datagrams a → b at `rate` and returns what b's sink got.
fn flood_and_count(
    a: &HostInfo,
    b: &HostInfo,
    port: u16,
    count: u64,
    size: usize,
    rate: u64,
    quiet: Duration,
) -> Result<probe::Received> {
    let rx = udp(b, port)?;
    let tx = udp(a, port)?;
    let until = Instant::now() + Duration::from_secs(30);
    let sink = std::thread::spawn(move || probe::sink(&rx, quiet, until));
    probe::flood(&tx, SocketAddr::from((b.addr, port)), count, size, rate)?;
    join(sink)
}

/// TCP bulk `bytes` from `from` to `to` (which may be the same host, over
/// its loopback): MiB/s.
fn tcp_bulk(from: &HostInfo, to: &HostInfo, to_addr: SocketAddr, bytes: u64) -> Result<f64> {
    let listener =
        to.run_in(move || TcpListener::bind(to_addr).context("binding the bulk sink"))?;
    let until = Instant::now() + Duration::from_secs(120);
    let sink = std::thread::spawn(move || probe::tcp_sink(&listener, until));
    let (from, sent) = (from.clone(), bytes);
    let send = std::thread::spawn(move || from.run_in(move || probe::tcp_send(to_addr, sent)));
    join(send)?;
    let (got, took) = join(sink)?;
    if got != bytes {
        bail!("the bulk sink read {got} of {bytes} bytes");
    }
    Ok(got as f64 / (1u64 << 20) as f64 / took.as_secs_f64().max(1e-9))
}

/// Builds the LAN and measures every figure.
pub fn lab(seed: u64, bulk_bytes: u64) -> Result<Vec<Figure>> {
    crate::checker::lab::install_signal_handler();
    crate::checker::lab::network::reap_stale();
    let mut lan = Lan::create(seed)?;
    let a = lan.add_host("a", None)?;
    let b = lan.add_host("b", None)?;
    let mut figures = Vec::new();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;

    // RTT with 20 ms each way.
    let delay = Impairment {
        delay: Duration::from_millis(20),
        ..Default::default()
    };
    lan.impair(Link::Pair("a", "b"), Direction::Both, delay)?;
    let echo_sock = udp(&b, 7001)?;
    let until = Instant::now() + Duration::from_secs(30);
    let echo = std::thread::spawn(move || probe::echo(&echo_sock, until));
    let ping_sock = udp(&a, 7001)?;
    let mut rtts = probe::ping(
        &ping_sock,
        SocketAddr::from((b.addr, 7001)),
        100,
        Duration::from_secs(1),
    )?;
    let received = rtts.len();
    let median = probe::median(&mut rtts)?;
    figures.push(Figure {
        what: "RTT, delay 20ms both ways (median of 100)",
        measured: format!(
            "{:.2} ms ({received}/100 answered, {:.2}–{:.2} ms)",
            ms(median),
            ms(rtts[0]),
            ms(rtts[rtts.len() - 1])
        ),
        target: "40 ms ± 3 ms",
        ok: (ms(median) - 40.0).abs() <= 3.0,
    });
    lan.clear(Link::Pair("a", "b"), Direction::Both)?;
    drop(echo);

    // Loss 1% over 20,000 packets.
    let loss = Impairment {
        loss: 0.01,
        ..Default::default()
    };
    lan.impair(Link::Pair("a", "b"), Direction::Out, loss)?;
    let before = lan.stats();
    let sent = 20_000u64;
    let got = flood_and_count(
        &a,
        &b,
        7002,
        sent,
        200,
        20_000_000,
        Duration::from_millis(500),
    )?;
    let lost = 100.0 * (sent - got.packets) as f64 / sent as f64;
    let by_rule = lan.stats().dropped_loss - before.dropped_loss;
    figures.push(Figure {
        what: "loss 1% (20,000 packets of 200 B)",
        measured: format!(
            "{lost:.3} % lost ({} received; the rule dropped {by_rule})",
            got.packets
        ),
        target: "0.7–1.3 %",
        ok: (0.7..=1.3).contains(&lost),
    });
    lan.clear(Link::Pair("a", "b"), Direction::Out)?;

    // Rate 100Mbit, offered 150 Mbit/s for 2 s.
    let rate = Impairment {
        rate_bps: Some(100_000_000),
        ..Default::default()
    };
    lan.impair(Link::Pair("a", "b"), Direction::Out, rate)?;
    let size = 1200usize;
    let count = 150_000_000 * 2 / (size as u64 * 8);
    let got = flood_and_count(
        &a,
        &b,
        7003,
        count,
        size,
        150_000_000,
        Duration::from_millis(500),
    )?;
    let mbit = got.bits_per_sec() / 1e6;
    figures.push(Figure {
        what: "rate 100Mbit (offered 150 Mbit/s for 2 s)",
        measured: format!("{mbit:.1} Mbit/s received"),
        target: "90–110 Mbit/s",
        ok: (90.0..=110.0).contains(&mbit),
    });
    lan.clear(Link::Pair("a", "b"), Direction::Out)?;

    // A partition passes nothing; after heal traffic flows within 1 s.
    lan.partition(&[vec!["a"], vec!["b"]])?;
    let rx = udp(&b, 7004)?;
    let tx = udp(&a, 7004)?;
    let until = Instant::now() + Duration::from_secs(3);
    let sink = std::thread::spawn(move || {
        probe::sink(&rx, Duration::from_secs(1), until).map(|r| (r, rx))
    });
    probe::flood(&tx, SocketAddr::from((b.addr, 7004)), 2000, 200, 10_000_000)?;
    let (got, rx) = join(sink)?;
    figures.push(Figure {
        what: "partition {a} {b} (2,000 packets sent)",
        measured: format!("{} packets passed", got.packets),
        target: "0",
        ok: got.packets == 0,
    });
    lan.heal();
    let healed = Instant::now();
    rx.set_read_timeout(Some(Duration::from_millis(10)))?;
    let mut back = None;
    let mut buf = [0u8; 64];
    while back.is_none() && healed.elapsed() < Duration::from_secs(3) {
        tx.send_to(b"LSPB-heal", SocketAddr::from((b.addr, 7004)))?;
        if let Ok((n, _)) = rx.recv_from(&mut buf)
            && &buf[..n] == b"LSPB-heal"
        {
            back = Some(healed.elapsed());
        }
    }
    figures.push(Figure {
        what: "traffic after heal",
        measured: back.map_or("nothing within 3 s".into(), |d| {
            format!("flows after {:.1} ms", ms(d))
        }),
        target: "within 1 s",
        ok: back.is_some_and(|d| d <= Duration::from_secs(1)),
    });

    // Bulk: TCP over the LAN vs over a host's own loopback.
    let lan_mib = tcp_bulk(&a, &b, SocketAddr::from((b.addr, 7005)), bulk_bytes)?;
    let lo_mib = tcp_bulk(&a, &a, SocketAddr::from(([127, 0, 0, 1], 7006)), bulk_bytes)?;
    let share = 100.0 * lan_mib / lo_mib;
    figures.push(Figure {
        what: "TCP bulk, unimpaired LAN vs loopback",
        measured: format!("{lan_mib:.0} MiB/s vs {lo_mib:.0} MiB/s: {share:.0} %"),
        target: "≥ 50 %",
        ok: share >= 50.0,
    });
    let stats = lan.stats();
    eprintln!(
        "switch counters: {}",
        serde_json::to_string(&stats).unwrap_or_default()
    );
    Ok(figures)
}

/// Prints one line per figure; true when every target was met.
pub fn print(figures: &[Figure]) -> bool {
    for f in figures {
        let mark = if f.ok { "ok  " } else { "MISS" };
        println!("{mark} {}: {} (target {})", f.what, f.measured, f.target);
    }
    figures.iter().all(|f| f.ok)
}
