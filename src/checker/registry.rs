//! The one list of actions. Each line names an action's Lua name, its enum
//! variant and parameter type (owned by its family in `actions/`), the
//! handler that runs it and a one-line doc. From it come `Action`, its
//! name, load-time check, event-search start and run dispatch, and
//! `ACTIONS` (the loader's parser table, `--list-actions`, `--emit-luals`,
//! tests/docs.rs).
//! Adding an action is one line here plus its parameter type, handler and
//! parameter docs (`luals/params.rs`).

use crate::checker::actions::{
    chunks, control, disk, expect, flow, fs, fuzz, install, network, observe, peers, redirect,
    resources, transfer,
};
use crate::checker::lab::Lab;
use crate::checker::luals::{ParamDoc, ParamDocs};
use crate::checker::outcome::StepResult;
use serde::de::DeserializeOwned;

/// What every parameter type of an action provides besides its serde form.
pub trait StepParams: DeserializeOwned {
    /// What no single field's type rules out but the parameters alone decide
    /// (combinations that contradict each other, values no run could use,
    /// paths leaving their folder), rejected when the file loads rather than
    /// when the step runs.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }

    /// Where an event search starts, for the steps that have one; the
    /// loader turns a label there into its line.
    fn search_start_mut(&mut self) -> Option<&mut observe::From> {
        None
    }
}

/// What a handler knows about its step besides the parameters.
#[derive(Debug, Clone, Copy)]
pub struct StepCtx {
    /// The step's line in the scenario file.
    pub line: u32,
}

/// A step and where it was written.
#[derive(Debug, Clone)]
pub struct Step {
    pub line: u32,
    /// A name later steps can refer to (`from = "label"`).
    pub label: Option<String>,
    pub action: Action,
}

impl Step {
    /// How reports name the step: `download`, or `download "cut"` with a label.
    pub fn title(&self) -> String {
        crate::checker::results::step_title(self.action.name(), self.label.as_deref())
    }

    pub fn run(&self, lab: &mut Lab) -> StepResult {
        self.action.run(lab, &StepCtx { line: self.line })
    }
}

/// Parses one action's Lua table into its typed, checked step.
pub type Parser = fn(&mlua::Lua, mlua::Value) -> mlua::Result<Action>;

/// One registry entry as data.
#[derive(Debug, Clone, Copy)]
pub struct ActionInfo {
    /// The Lua name, e.g. `"download"`.
    pub name: &'static str,
    /// One line for `--list-actions`; docs/SCENARIOS.md has the details.
    pub doc: &'static str,
    pub parse: Parser,
    /// The parameters for editors (`--emit-luals`), from the step type.
    pub params: &'static [ParamDoc],
    /// The Lua type of a step written as a free-form table instead.
    pub map: Option<&'static str>,
}

macro_rules! registry {
    ($($name:literal => $variant:ident($ty:ty) => $handler:path, $doc:literal;)*) => {
        /// Every action a scenario can use.
        #[derive(Debug, Clone)]
        pub enum Action {
            $(#[doc = $doc] $variant($ty),)*
        }

        impl Action {
            pub fn name(&self) -> &'static str {
                match self {
                    $(Action::$variant(_) => $name,)*
                }
            }

            fn check(&self) -> Result<(), String> {
                match self {
                    $(Action::$variant(s) => StepParams::check(s),)*
                }
            }

            /// Where an event expectation starts looking, for the steps that have one.
            pub fn from_mut(&mut self) -> Option<&mut observe::From> {
                match self {
                    $(Action::$variant(s) => StepParams::search_start_mut(s),)*
                }
            }

            pub fn run(&self, lab: &mut Lab, cx: &StepCtx) -> StepResult {
                match self {
                    $(Action::$variant(s) => $handler(lab, s, cx),)*
                }
            }
        }

        /// Every action in registry order.
        pub const ACTIONS: &[ActionInfo] = &[
            $(ActionInfo {
                name: $name,
                doc: $doc,
                parse: |lua, v| {
                    use mlua::LuaSerdeExt;
                    let action = Action::$variant(lua.from_value(v)?);
                    action.check().map_err(mlua::Error::RuntimeError)?;
                    Ok(action)
                },
                params: <$ty as ParamDocs>::PARAMS,
                map: <$ty as ParamDocs>::MAP,
            },)*
        ];
    };
}

registry! {
    "peer" => Peer(peers::PeerStep) => peers::peer,
        "Start a peer process and wait for its `ready` line.";
    "hostilePeer" => HostilePeer(peers::HostilePeerStep) => peers::hostile_peer,
        "Start a peer that speaks the wire protocol but lies in one chosen way (a test aid).";
    "restartPeer" => RestartPeer(peers::RestartPeerStep) => peers::restart_peer,
        "Shut a peer down gracefully (or find it killed) and start it again on the same folders.";
    "shutdownPeer" => ShutdownPeer(peers::ShutdownPeerStep) => peers::shutdown_peer,
        "Send `shutdown` and wait for the process to exit.";
    "connect" => Connect(peers::ConnectStep) => peers::connect,
        "Dial each peer in `to` from `from` (or expect the dial refused).";
    "killPeer" => KillPeer(peers::KillPeerStep) => peers::kill_peer,
        "SIGKILL a peer's process group, at once or when an event appears.";
    "impair" => Impair(network::ImpairStep) => network::impair,
        "Delay, drop, throttle, duplicate or reorder a peer's or a pair's packets on the LAN (or clear that).";
    "partition" => Partition(network::PartitionStep) => network::partition,
        "Let no packet cross between groups of peers on the LAN.";
    "heal" => Heal(network::HealStep) => network::heal,
        "Remove every partition of the LAN.";
    "expectDrops" => ExpectDrops(network::ExpectDropsStep) => network::expect_drops,
        "Check how many packets the LAN's switch dropped, by cause, since the run began.";
    "send" => Send(control::SendStep) => control::send,
        "Send one control command (structured or raw) and check the answer.";
    "waitGame" => WaitGame(transfer::WaitGameStep) => transfer::wait_game,
        "Poll `list-games` until a row for the game matches.";
    "download" => Download(transfer::DownloadStep) => transfer::download,
        "Download a game from every eligible peer and wait for the outcome.";
    "cancelDownload" => CancelDownload(transfer::CancelDownloadStep) => transfer::cancel_download,
        "Cancel a peer's running download of a game, now or on an event.";
    "expectGames" => ExpectGames(observe::ExpectGamesStep) => observe::games,
        "Poll `list-games` until the rows are as described.";
    "expectPeers" => ExpectPeers(observe::ExpectPeersStep) => observe::peers,
        "Poll `list-peers` until it is as described.";
    "expectEvent" => ExpectEvent(observe::ExpectEventStep) => observe::event,
        "Wait until a peer has printed a matching event.";
    "expectNoEvent" => ExpectNoEvent(observe::ExpectNoEventStep) => observe::no_event,
        "Check that a peer printed no matching event.";
    "expectSequence" => ExpectSequence(observe::ExpectSequenceStep) => observe::sequence,
        "Check the order of a peer's matching events.";
    "expectStatus" => ExpectStatus(observe::ExpectStatusStep) => observe::status,
        "Poll `status` until a peer's operations and transfers are exactly as given.";
    "expectChunks" => ExpectChunks(chunks::ExpectChunksStep) => chunks::chunks,
        "Check who served which chunks in the last download of a game.";
    "expectThroughput" => ExpectThroughput(expect::ExpectThroughputStep) => expect::throughput,
        "Check the last download's `download-finished` figures agree.";
    "expectSameFiles" => ExpectSameFiles(expect::ExpectSameFilesStep) => expect::same_files,
        "Compare two peers' copies of a game byte for byte.";
    "expectOverlap" => ExpectOverlap(expect::ExpectOverlapStep) => expect::overlap,
        "Check a source had uploads of every group in flight at one moment.";
    "expectFile" => ExpectFile(expect::ExpectFileStep) => expect::file,
        "Check a file's size, digest, contents or bytes.";
    "expectNoFile" => ExpectNoFile(expect::ExpectNoFileStep) => expect::no_file,
        "Check that nothing exists at a path.";
    "expectEntries" => ExpectEntries(expect::ExpectEntriesStep) => expect::entries,
        "Check that a folder holds nothing besides the named entries.";
    "makeGame" => MakeGame(fs::MakeGameStep) => fs::make_game,
        "Create a game root in the workspace.";
    "redirect" => Redirect(redirect::RedirectStep) => redirect::redirect,
        "Point paths of a peer's file layout somewhere else.";
    "fsCreateFile" => FsCreateFile(fs::FsCreateFileStep) => fs::create_file,
        "Create (or overwrite) a file.";
    "fsCopyFile" => FsCopyFile(fs::FsCopyStep) => fs::copy_file,
        "Copy a file.";
    "fsRenameFile" => FsRenameFile(fs::FsMoveStep) => fs::rename_file,
        "Rename a file.";
    "fsDeleteFile" => FsDeleteFile(fs::FsDeleteStep) => fs::delete_file,
        "Delete a file.";
    "fsAppend" => FsAppend(fs::FsAppendStep) => fs::append,
        "Append text to an existing file.";
    "fsPatch" => FsPatch(fs::FsPatchStep) => fs::patch,
        "Overwrite (or XOR) bytes of an existing file in place.";
    "fsCreateFolder" => FsCreateFolder(fs::FsPathStep) => fs::create_folder,
        "Create a folder and its parents.";
    "fsRenameFolder" => FsRenameFolder(fs::FsMoveStep) => fs::rename_folder,
        "Rename a folder.";
    "fsDeleteFolder" => FsDeleteFolder(fs::FsDeleteStep) => fs::delete_folder,
        "Delete a folder with everything in it.";
    "log" => Log(flow::LogStep) => flow::log,
        "Print a message in the step list.";
    "sleep" => Sleep(flow::SleepStep) => flow::sleep,
        "Wait for a while (prefer a waiting expectation).";
    "fuzzCommand" => FuzzCommand(fuzz::control::FuzzCommandStep) => fuzz::control::fuzz_command,
        "Send one control command with every combination of field values, then check the peer.";
    "fuzzAllCommands" => FuzzAllCommands(fuzz::control::FuzzAllCommandsStep) => fuzz::control::fuzz_all_commands,
        "`fuzzCommand` for every command the peer lists but `shutdown`.";
    "fuzzWire" => FuzzWire(fuzz::wire::FuzzWireStep) => fuzz::wire::fuzz_wire,
        "Send malformed and hostile wire-protocol messages to a peer over QUIC.";
    "install" => Install(install::InstallStep) => install::install,
        "Install a downloaded game and wait for the outcome.";
    "uninstall" => Uninstall(install::UninstallStep) => install::uninstall,
        "Remove a game's installed `local/` folder.";
    "play" => Play(install::PlayStep) => install::play,
        "Play a game and check the outcome flags.";
    "streamInstall" => StreamInstall(install::StreamInstallStep) => install::stream_install,
        "Download a game's archives and extract them while they arrive.";
    "watchDisk" => WatchDisk(disk::WatchDiskStep) => disk::watch_disk,
        "Start sampling the bytes allocated under a peer's games folder.";
    "expectDiskPeak" => ExpectDiskPeak(disk::ExpectDiskPeakStep) => disk::expect_disk_peak,
        "Stop a peer's disk sampler and check how far its peak rose.";
    "expectResources" => ExpectResources(resources::ExpectResourcesStep) => resources::expect_resources,
        "Bound a peer process's open files (sampled until an event) and peak RSS.";
}
