use clap::{Parser, Subcommand};
use lanspread_checker::{catalog, checker, fixtures, peer};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Scenario checker for peer-to-peer LAN game distribution.
///
/// Runs one Lua scenario file against real peer processes:
///
///   lanspread-checker -s scenarios/s15_skew.lua
///
/// Exit codes: 0 every step passed, 1 an expectation failed, 2 the scenario
/// file is invalid, 3 the harness could not run. The scenario language is
/// documented in docs/SCENARIOS.md, the peer protocol in docs/PROTOCOL.md.
#[derive(Parser)]
#[command(version, about, long_about, args_conflicts_with_subcommands = true)]
struct Cli {
    /// The scenario file to run.
    #[arg(short = 's', long = "scenario", value_name = "FILE.lua")]
    scenario: Option<PathBuf>,
    /// Run folder for peer logs, event streams and the workspace
    /// (default: a fresh folder under the temp dir, removed when all steps pass).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Keep the default run folder even when the scenario passes.
    #[arg(long)]
    keep: bool,
    /// Stream every peer event to the console.
    #[arg(short, long)]
    verbose: bool,
    /// Validate the scenario file without starting any peer.
    #[arg(long)]
    check: bool,
    /// Seed for anything random in the run (printed at the start; visible to
    /// the script as `seed`). A fresh one when omitted.
    #[arg(long)]
    seed: Option<u64>,
    /// Also write a JUnit XML report to this file.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Colour the console output.
    #[arg(long, value_enum, default_value = "auto")]
    color: Color,
    /// Print every scenario action with its parameters and a one-line summary, then exit.
    #[arg(long)]
    list_actions: bool,
    /// Print a LuaCATS `---@meta` file of every action and its parameters
    /// (docs/lanspread.d.lua, for lua-language-server), then exit.
    #[arg(long)]
    emit_luals: bool,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Color {
    /// Colours when stdout is a terminal (and NO_COLOR is unset).
    Auto,
    Always,
    Never,
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Time one download of a sparse game between real peer processes on
    /// 127.0.0.1 and print MiB/s and each peer's peak RSS (VmHWM).
    Transfer {
        /// Size of the game's one `.eti` (e.g. 2GiB).
        #[arg(long, default_value = "2GiB", value_parser = parse_size)]
        size: u64,
        /// Number of source peers (each serves the same game).
        #[arg(long, default_value_t = 1)]
        sources: usize,
        /// The receiving peer's chunk size (the peer's default when omitted).
        #[arg(long, value_parser = parse_size)]
        chunk_size: Option<u64>,
        /// Folder for the game and the downloaded copy (the destination
        /// disk); the temp dir when omitted.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Keep the bench folder afterwards.
        #[arg(long)]
        keep: bool,
        /// Serve this file as the game's `.eti` (hard-linked into the bench
        /// folder, so it must be on the same filesystem as --dir) instead of
        /// a new sparse file; `--size` is then its size.
        #[arg(long, value_name = "FILE")]
        eti: Option<PathBuf>,
        /// Start the receiving peer with `--buffered-writes` (through the
        /// page cache), to compare with the default direct writes.
        #[arg(long)]
        buffered_writes: bool,
        /// `lan`: every peer its own host on a network-lab LAN (needs
        /// root); `loopback` (the default): all on 127.0.0.1.
        #[arg(long, default_value = "loopback", value_parser = ["loopback", "lan"])]
        network: String,
        /// With `--network lan`: cap what each source sends (e.g. 200Mbit).
        #[arg(long, value_parser = lanspread_checker::units::parse_rate)]
        rate: Option<u64>,
    },
    /// Build a network-lab LAN and measure, through it, what each
    /// impairment does (delay, loss, rate, partition, heal) and its bulk
    /// throughput against loopback. Needs root.
    Lab {
        /// Seed for the LAN's random drops.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Bytes each bulk run moves.
        #[arg(long, default_value = "1GiB", value_parser = parse_size)]
        bulk: u64,
    },
    /// Time stream extraction alone: a stored RAR archive held in memory is
    /// fed to the stream extractor in 4 MiB pieces (as stream-install does)
    /// and written below `--dir`; prints MiB/s and the CRC32-only rate.
    /// Needs about twice `--size` of memory.
    Extract {
        /// Archive size (e.g. 1GiB).
        #[arg(long, default_value = "1GiB", value_parser = parse_size)]
        size: u64,
        /// Where the files are extracted (e.g. /dev/shm to leave the disk
        /// out); the temp dir when omitted.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

fn parse_size(s: &str) -> Result<u64, String> {
    lanspread_checker::units::parse_size(s)
}

#[derive(Subcommand)]
enum Cmd {
    /// Measure the peer (never part of the tests).
    #[command(subcommand)]
    Bench(BenchCmd),
    /// The network lab's probe (UDP/TCP measurements inside a host).
    #[command(subcommand, hide = true)]
    Probe(checker::lab::network::probe::ProbeCmd),
    /// Run a peer driven by JSON lines on stdin (docs/PROTOCOL.md).
    Peer(peer::PeerArgs),
    /// Write a catalog `game.db` from a catalog source (JSON).
    Catalog {
        /// Where to write the SQLite database.
        #[arg(long)]
        out: PathBuf,
        /// Catalog source; the compiled-in fixtures/catalog.json when omitted.
        #[arg(long)]
        source: Option<PathBuf>,
    },
    /// Regenerate the checked-in fixture game folders.
    #[command(subcommand)]
    Fixtures(FixturesCmd),
}

#[derive(Subcommand)]
enum FixturesCmd {
    /// Write every fixture (same bytes on every run) below `--out`.
    Build {
        #[arg(long, default_value = "fixtures")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.color {
        Color::Auto => {}
        Color::Always => console::set_colors_enabled(true),
        Color::Never => console::set_colors_enabled(false),
    }
    if cli.emit_luals {
        // Written, not printed: a closed pipe must not panic.
        let mut out = std::io::stdout().lock();
        return match out.write_all(checker::luals::emit().as_bytes()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("--emit-luals: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if cli.list_actions {
        // Written, not printed: `--list-actions | head` must not panic.
        let mut out = std::io::stdout().lock();
        let listed = checker::script::action_fields()
            .into_iter()
            .try_for_each(|(action, fields)| {
                writeln!(out, "{} {{ {} }}", action.name, fields.join(", "))?;
                writeln!(out, "    {}", action.doc)
            })
            .and_then(|()| writeln!(out, "\nDetails and examples: docs/SCENARIOS.md"));
        return match listed {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("--list-actions: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match cli.command {
        Some(Cmd::Peer(args)) => match peer::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("peer failed: {e:#}");
                ExitCode::from(3)
            }
        },
        Some(Cmd::Bench(BenchCmd::Transfer {
            size,
            sources,
            chunk_size,
            dir,
            keep,
            eti,
            buffered_writes,
            network,
            rate,
        })) => {
            let opts = checker::bench::TransferOptions {
                size,
                sources,
                chunk_size,
                dir,
                keep,
                eti,
                buffered_writes,
                lan: network == "lan",
                source_rate_bps: rate,
            };
            match checker::bench::transfer(&opts) {
                Ok(report) => {
                    report.print(sources);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("bench failed: {e:#}");
                    ExitCode::from(3)
                }
            }
        }
        Some(Cmd::Bench(BenchCmd::Lab { seed, bulk })) => match checker::lab_bench::lab(seed, bulk)
        {
            Ok(figures) => {
                if checker::lab_bench::print(&figures) {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Err(e) => {
                eprintln!("bench failed: {e:#}");
                ExitCode::from(3)
            }
        },
        Some(Cmd::Probe(cmd)) => match checker::lab::network::probe::run(cmd) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("probe failed: {e:#}");
                ExitCode::from(3)
            }
        },
        Some(Cmd::Bench(BenchCmd::Extract { size, dir })) => {
            match checker::extract_bench::extract(size, dir.as_deref()) {
                Ok(report) => {
                    report.print();
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("bench failed: {e:#}");
                    ExitCode::from(3)
                }
            }
        }
        Some(Cmd::Catalog { out, source }) => {
            let text = match source {
                Some(p) => match std::fs::read_to_string(&p) {
                    Ok(t) => t,
                    Err(e) => {
                        eprintln!("reading {}: {e}", p.display());
                        return ExitCode::from(2);
                    }
                },
                None => catalog::BUILTIN_SOURCE.to_string(),
            };
            match catalog::write_db(&text, &out) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("writing catalog: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
        Some(Cmd::Fixtures(FixturesCmd::Build { out })) => match fixtures::build(&out) {
            Ok(n) => {
                println!("wrote {n} fixture files below {}", out.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("building fixtures: {e:#}");
                ExitCode::from(3)
            }
        },
        None => {
            let Some(scenario) = cli.scenario else {
                eprintln!("nothing to do: give -s FILE.lua to run a scenario (see --help)");
                return ExitCode::from(2);
            };
            let code = checker::run(&checker::RunOptions {
                scenario,
                out: cli.out,
                keep: cli.keep,
                verbose: cli.verbose,
                check: cli.check,
                seed: cli.seed,
                junit: cli.junit,
            });
            ExitCode::from(code as u8)
        }
    }
}
