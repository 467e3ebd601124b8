use clap::{Parser, Subcommand};
use lanspread_checker::{catalog, checker, fixtures, peer};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Scenario checker for peer-to-peer LAN game distribution.
///
/// Runs Lua scenario files against real peer processes:
///
///   lanspread-checker -s scenarios/s15_skew.lua
///   lanspread-checker -s scenarios/ -j 2          (a folder run)
///
/// Exit codes: 0 every step passed, 1 an expectation failed, 2 the scenario
/// file is invalid, 3 the harness could not run. A folder run exits with the
/// worst of its scenarios' codes (3 > 2 > 1 > 0). The scenario language is
/// documented in docs/SCENARIOS.md, the peer protocol in docs/PROTOCOL.md.
#[derive(Parser)]
#[command(version, about, long_about, args_conflicts_with_subcommands = true)]
struct Cli {
    /// The scenario file to run; a folder (its `*.lua` files) or several
    /// `-s` make a folder run: each file its own scenario, in a child checker.
    #[arg(short = 's', long = "scenario", value_name = "FILE.lua|DIR")]
    scenario: Vec<PathBuf>,
    /// Folder run: how many scenarios run at once (default: the number of cores).
    #[arg(short = 'j', long, value_name = "N")]
    jobs: Option<usize>,
    /// Folder run: run only shard K of N (files go to shards by a hash of
    /// their file name, so adding a file moves no other).
    #[arg(long, value_name = "K/N")]
    partition: Option<lanspread_checker::checker::suite::select::Partition>,
    /// Folder run: run every scenario N times; failing any round fails it,
    /// and the summary shows how many rounds failed.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    /// Folder run: only files whose `scenario{ tags = … }` has any of these.
    #[arg(long, value_name = "TAG,…", value_delimiter = ',')]
    tags: Vec<String>,
    /// Folder run: skip files whose tags have any of these.
    #[arg(long, value_name = "TAG,…", value_delimiter = ',')]
    skip_tags: Vec<String>,
    /// Folder run: only files whose name contains PATTERN, or matches it
    /// whole when it holds `*` or `?` (a glob).
    #[arg(long, value_name = "PATTERN")]
    filter: Option<String>,
    /// Folder run: how to report on stdout. `human`: progress, a summary
    /// table, the failing scenarios' output; `github`: that plus
    /// `::error file=…,line=…::` annotations; `jsonl`: one JSON object per
    /// step and per scenario on stdout (the human lines go to stderr).
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
    /// Run folder for peer logs, event streams and the workspace
    /// (default: a fresh folder under the temp dir, removed when all steps pass).
    /// A folder run puts each scenario's run folder in it, and a summary.json.
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
    /// Also write a JUnit XML report to this file (one testsuite per
    /// scenario, one testcase per step).
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

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Human,
    Github,
    Jsonl,
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
        /// Serve every file below this folder, at its relative path, as the
        /// game (hard-linked, so it must be on the same filesystem as
        /// --dir) instead of one `.eti`: the small-file case that
        /// `MODE=files bench/compare.sh` races against rsync.
        #[arg(long, value_name = "DIR", conflicts_with = "eti")]
        tree: Option<PathBuf>,
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
        /// Let another peer download the game first (untimed), so every
        /// source has its block digests cached, as a source that served
        /// the game before has; then time the download. The sources' CPU
        /// is counted from the end of that warm-up; their peak RSS covers it.
        #[arg(long)]
        warm_source: bool,
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
    /// Hash throughput of the block-digest candidates (BLAKE3, SHA-256) on
    /// this CPU, one thread, over 1 MiB blocks held in memory.
    Hash {
        /// Bytes hashed by each candidate (e.g. 2GiB).
        #[arg(long, default_value = "2GiB", value_parser = parse_size)]
        size: u64,
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
            tree,
            buffered_writes,
            network,
            rate,
            warm_source,
        })) => {
            let opts = checker::bench::transfer::TransferOptions {
                size,
                sources,
                chunk_size,
                dir,
                keep,
                eti,
                tree,
                buffered_writes,
                lan: network == "lan",
                source_rate_bps: rate,
                warm_source,
            };
            match checker::bench::transfer::transfer(&opts) {
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
        Some(Cmd::Bench(BenchCmd::Lab { seed, bulk })) => {
            match checker::bench::lab::lab(seed, bulk) {
                Ok(figures) => {
                    if checker::bench::lab::print(&figures) {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => {
                    eprintln!("bench failed: {e:#}");
                    ExitCode::from(3)
                }
            }
        }
        Some(Cmd::Probe(cmd)) => match checker::lab::network::probe::run(cmd) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("probe failed: {e:#}");
                ExitCode::from(3)
            }
        },
        Some(Cmd::Bench(BenchCmd::Hash { size })) => {
            for (name, rate) in lanspread_checker::protocol::digest::bench(size) {
                println!("{name}: {rate:.0} MiB/s");
            }
            ExitCode::SUCCESS
        }
        Some(Cmd::Bench(BenchCmd::Extract { size, dir })) => {
            match checker::bench::extract::extract(size, dir.as_deref()) {
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
            let folder_run = cli.scenario.len() > 1
                || cli.scenario.iter().any(|p| p.is_dir())
                || cli.repeat > 1
                || cli.partition.is_some()
                || !cli.tags.is_empty()
                || !cli.skip_tags.is_empty()
                || cli.filter.is_some()
                || cli.format != Format::Human;
            if folder_run {
                use checker::suite;
                let code = suite::run(&suite::SuiteOptions {
                    inputs: cli.scenario,
                    out: cli.out,
                    keep: cli.keep,
                    jobs: cli.jobs.unwrap_or_else(suite::default_jobs),
                    repeat: cli.repeat,
                    selection: suite::select::Selection {
                        filter: cli.filter,
                        tags: cli.tags,
                        skip_tags: cli.skip_tags,
                        partition: cli.partition,
                    },
                    seed: cli.seed,
                    junit: cli.junit,
                    format: match cli.format {
                        Format::Human => suite::Format::Human,
                        Format::Github => suite::Format::Github,
                        Format::Jsonl => suite::Format::Jsonl,
                    },
                    check: cli.check,
                });
                return ExitCode::from(code as u8);
            }
            let Some(scenario) = cli.scenario.into_iter().next() else {
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
