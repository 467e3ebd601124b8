//! The peer: a real LAN game-distribution node (the system under test).
//!
//! It serves ready game roots over QUIC, learns other peers' libraries,
//! downloads games in chunks from every eligible peer at once, and is driven
//! by JSON lines on stdin (see docs/PROTOCOL.md). Logs go to stderr.

use crate::protocol::control::Event;
pub mod control;
pub mod digests;
pub mod discovery;
pub mod download;
pub mod files;
pub mod heap;
pub mod hostile;
pub mod identity;
pub mod install;
pub mod library;
pub mod mesh;
pub mod operations;
pub mod output;
pub mod play;
pub mod redial;
pub mod scratch;
pub mod serve;
pub mod stream_install;

use crate::catalog::Catalog;
use crate::protocol::wire::{self, GameAd};
use crate::redirect;
use crate::sync::lock;
use anyhow::{Context, Result};
use files::Files;
use library::LocalGame;
use mesh::Mesh;
pub use operations::{Operation, OperationClaim};
use output::Output;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Default chunk size: 128 MiB, as in the reference peer.
pub const DEFAULT_CHUNK_SIZE: u64 = 128 << 20;

#[derive(Debug, Clone, clap::Args)]
pub struct PeerArgs {
    /// Folder with one sub-folder per game (`<games-dir>/<game_id>/version.ini`).
    #[arg(long)]
    pub games_dir: PathBuf,
    /// Folder for the peer's own state (its persistent peer id).
    #[arg(long)]
    pub state_dir: PathBuf,
    /// The catalog `game.db` (SQLite); the compiled-in catalog when omitted.
    #[arg(long)]
    pub catalog: Option<PathBuf>,
    /// QUIC listener address; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Download chunk size, e.g. `134217728` or `8MiB`.
    #[arg(long, default_value = "128MiB", value_parser = parse_chunk_size)]
    pub chunk_size: u64,
    /// Refuse to write any file larger than this (RLIMIT_FSIZE), e.g. `3MiB`:
    /// a way to make the disk "full" for tests of write failures.
    #[arg(long, value_parser = parse_chunk_size)]
    pub max_file_size: Option<u64>,
    /// How often the games dir is rescanned for added, removed or changed roots.
    #[arg(long, default_value = "500ms", value_parser = parse_interval)]
    pub rescan: Duration,
    /// JSON object mapping paths of the peer's layout (`games/<id>/…`,
    /// `game.db`) to absolute real paths; every file access honours it.
    #[arg(long, value_name = "FILE")]
    pub redirects: Option<PathBuf>,
    /// Test aid: hold chunk uploads until requests of N distinct
    /// (requester, game) downloads are in (at most 10 s), see `serve::UploadHold`.
    #[arg(long, value_name = "N")]
    pub hold_uploads: Option<usize>,
    /// Test aid: speak the wire protocol but lie in one way (`wrong-bytes`,
    /// `wrong-digests`, `short-chunk`, `long-chunk`, `stall`,
    /// `escape-paths`, `huge-sizes`, `garbage`, `impersonate`), see
    /// `peer::hostile`. Never for real use.
    #[arg(long, value_name = "LIE", value_parser = parse_lie)]
    pub hostile: Option<crate::protocol::hostile::Lie>,
    /// With `--hostile impersonate`: the peer ID its hellos claim.
    #[arg(long, value_name = "PEER_ID")]
    pub impersonate: Option<String>,
    /// Write downloads through the page cache instead of around it
    /// (O_DIRECT): slower and costlier in CPU for big games, but the game is
    /// then warm in memory. Unaligned pieces always go through the cache.
    #[arg(long)]
    pub buffered_writes: bool,
    /// Find peers on the LAN by UDP multicast and connect to them, without
    /// `connect` commands (see docs/PROTOCOL.md, "LAN discovery").
    #[arg(long)]
    pub discover: bool,
}

fn parse_chunk_size(s: &str) -> Result<u64, String> {
    match crate::units::parse_size(s)? {
        0 => Err("chunk size must be positive".into()),
        n => Ok(n),
    }
}

fn parse_lie(s: &str) -> Result<crate::protocol::hostile::Lie, String> {
    crate::protocol::hostile::Lie::parse(s).map_err(|e| e.to_string())
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    crate::units::parse_duration(s)
}

/// Everything a running peer knows; shared by all its tasks.
pub struct Node {
    /// The peer ID its certificate proves (`identity.id`).
    pub id: String,
    /// What the peer presents in every handshake, either way.
    pub identity: crate::protocol::transport::Identity,
    pub addr: SocketAddr,
    /// The real games dir (after redirects), for `status`.
    pub games_dir: PathBuf,
    /// The peer's own state (peer id, per-game markers such as first play).
    pub state_dir: PathBuf,
    /// Every file access goes through this layer (it applies `--redirects`).
    pub files: Files,
    pub chunk_size: u64,
    /// Downloads write aligned blocks around the page cache (see
    /// `download::target_file`); off with `--buffered-writes`.
    pub direct_writes: bool,
    pub catalog: Catalog,
    pub endpoint: quinn::Endpoint,
    pub out: Output,
    library: Mutex<BTreeMap<String, LocalGame>>,
    adverts: watch::Sender<Vec<GameAd>>,
    pub mesh: Mutex<Mesh>,
    /// Known peers whose connection died, to dial again (`redial`).
    pub redial: Mutex<redial::Redial>,
    operations: operations::Operations,
    outbound: Mutex<BTreeMap<String, usize>>,
    /// `--hold-uploads`.
    pub upload_hold: Option<serve::UploadHold>,
    /// `--hostile`: the one lie this test peer tells.
    pub hostile: Option<hostile::Hostile>,
    /// Block digests of the files this peer serves (and has downloaded).
    pub digests: digests::DigestCache,
}

impl Node {
    pub fn library(&self) -> BTreeMap<String, LocalGame> {
        lock(&self.library).clone()
    }

    pub fn adverts(&self) -> watch::Receiver<Vec<GameAd>> {
        self.adverts.subscribe()
    }

    /// Rescans the games dir and pushes a library update to connected peers
    /// when what this peer advertises changed.
    pub fn refresh_library(&self) -> Result<()> {
        let games = library::scan(&self.files)?;
        let busy = self.operations();
        let ads: Vec<GameAd> = library::adverts(&games)
            .into_iter()
            .filter(|ad| !busy.contains_key(&ad.game_id))
            .collect();
        *lock(&self.library) = games;
        self.adverts.send_if_modified(|current| {
            if *current == ads {
                false
            } else {
                tracing::info!(games = ads.len(), "library changed");
                *current = ads;
                true
            }
        });
        Ok(())
    }

    /// Claims a game for an operation; `operation-in-progress` names the one
    /// already running. The game stays claimed until the claim drops.
    pub fn begin_operation(
        &self,
        game_id: &str,
        op: Operation,
    ) -> Result<OperationClaim, crate::protocol::control::CommandError> {
        self.operations.begin(game_id, op)
    }

    /// Asks a running `op` on a game to stop; `false` when no such operation
    /// runs. The operation itself drops its claim once it has stopped.
    pub fn cancel_operation(&self, game_id: &str, op: Operation) -> bool {
        self.operations.cancel(game_id, op)
    }

    pub fn operation(&self, game_id: &str) -> Option<Operation> {
        self.operations.get(game_id)
    }

    pub fn operations(&self) -> BTreeMap<String, Operation> {
        self.operations.all()
    }

    pub fn outbound_transfers(&self) -> BTreeMap<String, usize> {
        lock(&self.outbound).clone()
    }

    /// Counts an outbound transfer of `game_id` until the guard drops.
    pub fn outbound_guard(self: &Arc<Self>, game_id: &str) -> OutboundGuard {
        *lock(&self.outbound).entry(game_id.to_string()).or_default() += 1;
        OutboundGuard {
            node: self.clone(),
            game_id: game_id.to_string(),
        }
    }
}

pub struct OutboundGuard {
    node: Arc<Node>,
    game_id: String,
}

impl Drop for OutboundGuard {
    fn drop(&mut self) {
        let mut map = lock(&self.node.outbound);
        if let Some(n) = map.get_mut(&self.game_id) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.game_id);
            }
        }
    }
}

/// Runs a peer until `shutdown` or the end of stdin.
pub fn run(args: PeerArgs) -> Result<()> {
    if let Some(limit) = args.max_file_size {
        limit_file_size(limit)?;
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    // After the log is set up (its warning would be lost before), before
    // the runtime starts any thread.
    tune_malloc();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async_main(args))
}

async fn async_main(args: PeerArgs) -> Result<()> {
    let identity = identity::load_or_create(&args.state_dir)?;
    let redirects = match &args.redirects {
        Some(path) => Files::load_redirects(path)?,
        None => redirect::Redirects::new(),
    };
    if !redirects.is_empty() {
        tracing::info!(entries = redirects.len(), "file redirects active");
    }
    let files = Files::new(args.games_dir.clone(), args.catalog.clone(), redirects);
    let catalog = match files.catalog() {
        Some(path) => Catalog::open(&path)?,
        None => Catalog::builtin()?,
    };
    let games_dir = files.games_dir()?;
    std::fs::create_dir_all(&games_dir)
        .with_context(|| format!("creating games dir {}", games_dir.display()))?;
    let endpoint = crate::protocol::transport::endpoint(args.listen, &identity)?;
    let addr = endpoint
        .local_addr()
        .context("reading the listener address")?;
    let hostile = match args.hostile {
        Some(lie) => Some(hostile::Hostile::new(
            lie,
            args.impersonate.clone(),
            &games_dir,
        )?),
        None if args.impersonate.is_some() => {
            anyhow::bail!("--impersonate goes with --hostile impersonate")
        }
        None => None,
    };
    let (out, writer) = Output::new();
    let (adverts, _) = watch::channel(Vec::new());
    let node = Arc::new(Node {
        id: identity.id.clone(),
        identity,
        addr,
        games_dir: games_dir.clone(),
        state_dir: args.state_dir.clone(),
        files,
        chunk_size: args.chunk_size,
        direct_writes: !args.buffered_writes,
        catalog,
        endpoint,
        out,
        library: Mutex::new(BTreeMap::new()),
        adverts,
        mesh: Mutex::new(Mesh::default()),
        redial: Mutex::new(redial::Redial::default()),
        operations: operations::Operations::default(),
        outbound: Mutex::new(BTreeMap::new()),
        upload_hold: args.hold_uploads.map(serve::UploadHold::new),
        hostile,
        digests: digests::DigestCache::new(&args.state_dir),
    });
    node.refresh_library()?;
    let discovery = match args.discover {
        true => Some(discovery::Discovery::bind(node.clone())?),
        false => None,
    };
    tracing::info!(peer_id = %node.id, %addr, games_dir = %games_dir.display(), "peer ready");
    node.out.event(
        Event::Ready,
        serde_json::json!({ "peer_id": node.id, "addr": addr.to_string(), "protocol": wire::PROTOCOL_VERSION }),
    );

    tokio::spawn(mesh::accept_loop(node.clone()));
    tokio::spawn(redial::run(node.clone()));
    if let Some(d) = discovery {
        tokio::spawn(d.run());
    }
    let rescan_node = node.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(args.rescan);
        loop {
            tick.tick().await;
            if let Err(e) = rescan_node.refresh_library() {
                tracing::warn!("library rescan failed: {e:#}");
            }
        }
    });

    control::run(node.clone()).await;
    node.endpoint.close(0u32.into(), b"shutdown");
    // Let the close frames and the last stdout lines go out.
    let _ = tokio::time::timeout(Duration::from_millis(500), node.endpoint.wait_idle()).await;
    node.out.close();
    let _ = writer.await;
    Ok(())
}

/// Caps the size of files this process writes. SIGXFSZ is ignored so that a
/// write past the cap fails with EFBIG (an ordinary I/O error) instead of
/// killing the peer.
fn limit_file_size(limit: u64) -> Result<()> {
    let lim = libc::rlimit {
        rlim_cur: limit as libc::rlim_t,
        rlim_max: limit as libc::rlim_t,
    };
    // SAFETY: plain syscalls on this process's own signal disposition and limits.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
            anyhow::bail!(
                "setrlimit(RLIMIT_FSIZE): {}",
                std::io::Error::last_os_error()
            );
        }
    }
    Ok(())
}

/// Tunes glibc's allocator for a peer that moves gigabytes through short-
/// lived buffers (64 KiB datagrams, 256 KiB reads, 1 MiB write blocks).
///
/// - Every thread that allocates would get its own arena; the blocking
///   threads that write downloads each kept megabytes of freed write
///   buffers, doubling a downloading peer's peak RSS. Two arenas suffice for
///   two runtime workers.
/// - With glibc's defaults those buffers were mapped and unmapped, or handed
///   back at the heap's top and faulted in (and zeroed) again, over and
///   over: a fixed mmap threshold above every buffer size and 16 MiB kept at
///   the heap's top cut a 2 GiB two-source download's CPU from 2.79 / 2.87 /
///   2.89 s to 2.42 / 2.60 / 2.40 s (back-to-back `bench transfer` pairs),
///   for a few MiB more peak RSS.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only adjusts allocator tuning; called before the
        // runtime starts any thread.
        let ok = unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2) == 1
                // Above stream-install's 4 MiB pieces plus malloc's header.
                && libc::mallopt(libc::M_MMAP_THRESHOLD, 8 << 20) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, 16 << 20) == 1
        };
        if !ok {
            tracing::warn!("could not tune malloc");
        }
    }
}
