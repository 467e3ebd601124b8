//! Each step type's parameters for editors: name, LuaCATS type, whether it
//! may be left out and one line of doc. Kept beside nothing else on purpose:
//! the test in `luals/mod.rs` checks every list against serde's own view of
//! its struct (the field names serde knows, the field it misses first), so
//! a list cannot drift from the struct it describes.

use super::{ParamDoc, ParamDocs, opt, req};
use crate::checker::actions::{
    chunks, control, disk, expect, flow, fs, fuzz, install, network, observe, peers, redirect,
    resources, transfer,
};

// LuaCATS spellings of the shared parameter types.
const SIZE: &str = "integer|string";
const SPAN: &str = "number|string";
const FROM: &str = "\"start\"|\"step\"|string|integer";
const OUTCOME: &str = "\"finished\"|\"failed\"";
const ANSWER: &str = "\"result\"|\"error\"";
const LIE: &str = "\"wrong-bytes\"|\"wrong-digests\"|\"short-chunk\"|\"long-chunk\"|\"stall\"|\"escape-paths\"|\"huge-sizes\"|\"garbage\"|\"impersonate\"";
// A file is its contents (a string) or a table; a `rar` holds files the same
// way (LuaCATS has no recursive inline type, so their tables are `table`).
const FILE_SPEC: &str = "string|{ contents?: string, size?: integer|string, sparse?: boolean, seed?: integer, rar?: table<string, string|table>, solid?: boolean, method?: integer }";

const TIMEOUT: ParamDoc = opt(
    "timeout",
    SPAN,
    "How long the step may wait (a number of seconds or \"30s\").",
);
const FS_PEER: ParamDoc = opt(
    "peer",
    "string",
    "Resolve paths in this peer's games folder (else in the workspace).",
);

impl ParamDocs for peers::PeerStep {
    const PARAMS: &'static [ParamDoc] = &[
        req("name", "string", "The peer's name in this scenario."),
        opt(
            "games",
            "string",
            "Its games folder: one in the workspace, else one relative to the scenario file.",
        ),
        opt(
            "readonly",
            "boolean",
            "The peer must never change its games folder (checked at the end).",
        ),
        opt("chunkSize", SIZE, "Download chunk size (e.g. \"8MiB\")."),
        opt(
            "catalog",
            "string",
            "The peer's own catalog: a `game.db` or a catalog source (`.json`).",
        ),
        opt(
            "exec",
            "string",
            "Another peer binary speaking the same control protocol.",
        ),
        opt("args", "string[]", "Extra arguments for the peer process."),
        TIMEOUT,
        opt(
            "address",
            "string",
            "With `network = \"lan\"`: the host's address in 198.18.0.0/15 (else the next free one).",
        ),
        opt(
            "discover",
            "boolean",
            "Start the peer with `--discover` (LAN discovery; needs `network = \"lan\"`).",
        ),
        opt(
            "port",
            "integer",
            "A fixed QUIC listener port, kept across restarts (else a free one).",
        ),
        opt(
            "ssh",
            "boolean",
            "With `network = \"lan\"`: start the peer through OpenSSH (an sshd in its host).",
        ),
    ];
}

impl ParamDocs for peers::HostilePeerStep {
    const PARAMS: &'static [ParamDoc] = &[
        req("name", "string", "The peer's name in this scenario."),
        opt(
            "games",
            "string",
            "Its games folder: one in the workspace, else one relative to the scenario file.",
        ),
        opt(
            "behaviour",
            LIE,
            "How it lies (docs/PROTOCOL.md, \"Hostile sources\"); `impersonate` alone implies `\"impersonate\"`.",
        ),
        opt(
            "impersonate",
            "string",
            "A started peer whose ID (from its `ready` line) this one's hellos claim.",
        ),
        opt("chunkSize", SIZE, "Download chunk size (e.g. \"8MiB\")."),
        TIMEOUT,
    ];
}

impl ParamDocs for peers::RestartPeerStep {
    const PARAMS: &'static [ParamDoc] = &[req("name", "string", "The peer to restart."), TIMEOUT];
}

impl ParamDocs for peers::ShutdownPeerStep {
    const PARAMS: &'static [ParamDoc] = &[req("name", "string", "The peer to shut down."), TIMEOUT];
}

impl ParamDocs for peers::ConnectStep {
    const PARAMS: &'static [ParamDoc] = &[
        req("from", "string", "The peer that dials."),
        req("to", "string|string[]", "The peer or peers it dials."),
        opt(
            "expect",
            ANSWER,
            "`\"result\"` (connected) or `\"error\"` (the peer must refuse).",
        ),
        opt(
            "code",
            "string",
            "With `expect = \"error\"`: the error code the peer must answer with.",
        ),
        TIMEOUT,
    ];
}

impl ParamDocs for peers::KillPeerStep {
    const PARAMS: &'static [ParamDoc] = &[
        req("name", "string", "The peer to SIGKILL."),
        opt(
            "on",
            ON,
            "Kill when this peer prints this event (the `count`th matching one) instead of now.",
        ),
    ];
}

impl ParamDocs for control::SendStep {
    const PARAMS: &'static [ParamDoc] = &[
        req("peer", "string", "The peer to send to."),
        opt(
            "cmd",
            "table",
            "The command as a table with a string `cmd`, e.g. `{ cmd = \"status\" }`.",
        ),
        opt(
            "raw",
            "string",
            "A raw line sent as it is (for malformed input); give `cmd` or `raw`.",
        ),
        opt(
            "expect",
            ANSWER,
            "The answer's kind (default `\"result\"`).",
        ),
        opt(
            "match",
            "table",
            "Fields the answer must contain (`data` of a result; `code`/`error` of an error).",
        ),
        TIMEOUT,
    ];
}

impl ParamDocs for transfer::WaitGameStep {
    const PARAMS: &'static [ParamDoc] = &[
        req("peer", "string", "The peer whose `list-games` is polled."),
        req("game", "string", "The game ID."),
        opt("peerCount", "integer", "The row's `peer_count`."),
        opt("version", "string", "The row's version."),
        TIMEOUT,
    ];
}

impl ParamDocs for transfer::DownloadStep {
    const PARAMS: &'static [ParamDoc] = &[
        req("peer", "string", "The downloading peer."),
        req("game", "string", "The game ID."),
        opt(
            "install",
            "boolean",
            "Install right after the download and wait for that outcome too.",
        ),
        opt("expect", OUTCOME, "The outcome (default `\"finished\"`)."),
        opt(
            "wait",
            "boolean",
            "`false`: pass once the peer accepted the command.",
        ),
        opt(
            "code",
            "string",
            "With `expect = \"failed\"`: the command must be refused with this code.",
        ),
        opt(
            "error",
            "string|string[]",
            "With `expect = \"failed\"`: the refusal's or `download-failed`'s error contains this text (or each of these).",
        ),
        TIMEOUT,
    ];
}

impl ParamDocs for transfer::CancelDownloadStep {
    const PARAMS: &'static [ParamDoc] = &[
        req("peer", "string", "The downloading peer."),
        req("game", "string", "The game ID."),
        opt(
            "after",
            "string|{ event: string, match?: table, count?: integer }",
            "Cancel the moment the peer prints this event for the game (the `count`th matching one).",
        ),
        TIMEOUT,
    ];
}

impl ParamDocs for observe::ExpectGamesStep {
    const PARAMS: &'static [ParamDoc] = &[
        req("peer", "string", "The peer whose `list-games` is polled."),
        opt(
            "games",
            "table<string, { peerCount?: integer, version?: string, downloaded?: boolean, installed?: boolean, availability?: string }>",
            "Game ID → the fields its row must have.",
        ),
        opt("absent", "string[]", "Game IDs that must have no row."),
        opt("only", "boolean", "No rows besides those in `games`."),
        TIMEOUT,
    ];
}

impl ParamDocs for observe::ExpectPeersStep {
    const PARAMS: &'static [ParamDoc] = &[
        req("peer", "string", "The peer whose `list-peers` is polled."),
        opt("count", "integer", "How many peers it lists."),
        opt(
            "peers",
            "table<string, { games?: table<string, string> }>",
            "Peer name → what it must advertise.",
        ),
        opt("absent", "string[]", "Peers that must not be listed."),
        TIMEOUT,
    ];
}

impl ParamDocs for observe::ExpectEventStep {
    const PARAMS: &'static [ParamDoc] = &[
        req("peer", "string", "The peer whose events are searched."),
        req("event", "string", "The event name."),
        opt("match", "table", "Fields the event's data must contain."),
        opt(
            "from",
            FROM,
            "Where the search starts: `\"start\"`, `\"step\"`, a label or a line.",
        ),
        opt(
            "count",
            "integer",
            "At least this many matching events (default 1).",
        ),
        opt(
            "peerId",
            "string",
            "A peer's name: the event's `peer_id` is that peer's ID.",
        ),
        TIMEOUT,
    ];
}

impl ParamDocs for observe::ExpectNoEventStep {
    const PARAMS: &'static [ParamDoc] = &[
        req("peer", "string", "The peer whose events are searched."),
        req("event", "string", "The event name."),
        opt("match", "table", "Fields the event's data must contain."),
        opt(
            "from",
            FROM,
            "Where the search starts: `\"start\"`, `\"step\"`, a label or a line.",
        ),
        opt("window", SPAN, "Keep watching this long before passing."),
        opt(
            "peerId",
            "string",
            "A peer's name: only events whose `peer_id` is that peer's ID count.",
        ),
    ];
}

impl ParamDocs for observe::ExpectSequenceStep {
    const PARAMS: &'static [ParamDoc] = &[
        req("peer", "string", "The peer whose events are searched."),
        req(
            "sequence",
            "string[]",
            "Event names in the order they must appear.",
        ),
        opt(
            "match",
            "table",
            "Fields every event in the sequence must contain.",
        ),
        opt(
            "from",
            FROM,
            "Where the search starts: `\"start\"`, `\"step\"`, a label or a line.",
        ),
        TIMEOUT,
    ];
}

impl ParamDocs for observe::ExpectStatusStep {
    const PARAMS: &'static [ParamDoc] = &[
        req("peer", "string", "The peer whose `status` is polled."),
        opt(
            "activeOperations",
            "table<string, any>",
            "Exactly these operations (game ID → operation).",
        ),
        opt(
            "activeOutboundTransfers",
            "table<string, integer>",
            "Exactly these outbound transfer counts (game ID → count).",
        ),
        TIMEOUT,
    ];
}

impl ParamDocs for chunks::ExpectChunksStep {
    const PARAMS: &'static [ParamDoc] = &[
        req("peer", "string", "The peer that downloaded."),
        req("game", "string", "The game ID."),
        opt("onlyFrom", "string[]", "Every chunk came from these peers."),
        opt("neverFrom", "string[]", "No chunk came from these peers."),
        opt(
            "servedBy",
            "string[]",
            "Each of these peers served at least one chunk.",
        ),
        opt("balanced", "boolean", "Sources served about equal shares."),
        opt(
            "minShare",
            PERCENT,
            "Each servedBy peer (or source) served at least this share (\"40%\").",
        ),
        opt(
            "totals",
            "table<string, integer|string>",
            "Peer name → the bytes it served.",
        ),
        opt("chunks", "integer", "How many chunks the download fetched."),
        opt(
            "reused",
            "integer",
            "Exactly this many chunks were reused from disk (download-begin's reused_chunks).",
        ),
        opt(
            "reusedAtLeast",
            "integer",
            "At least this many chunks were reused from disk.",
        ),
        opt(
            "perSource",
            "table<string, integer|{ atLeast?: integer, atMost?: integer }>",
            "Peer name → its number of chunk events, exact or bounded (`version.ini` is a chunk).",
        ),
    ];
}

impl ParamDocs for expect::ExpectThroughputStep {
    const PARAMS: &'static [ParamDoc] = &[
        req("peer", "string", "The peer that downloaded."),
        req("game", "string", "The game ID."),
    ];
}

impl ParamDocs for expect::ExpectSameFilesStep {
    const PARAMS: &'static [ParamDoc] = &[
        req("game", "string", "The game ID."),
        req("source", "string", "One peer."),
        req("target", "string", "The other peer."),
        opt(
            "installed",
            "boolean",
            "Compare the installed `local/` trees instead of the roots.",
        ),
    ];
}

impl ParamDocs for expect::ExpectOverlapStep {
    const PARAMS: &'static [ParamDoc] = &[
        req("peer", "string", "The source peer."),
        req(
            "uploads",
            "{ to?: string, game?: string }[]",
            "Groups that must all have an upload in flight at one moment.",
        ),
    ];
}

impl ParamDocs for expect::ExpectFileStep {
    const PARAMS: &'static [ParamDoc] = &[
        FS_PEER,
        req("path", "string", "The file."),
        opt("size", SIZE, "Its size."),
        opt("sha256", "string", "Its SHA-256 in hex."),
        opt("contents", "string", "Its whole contents."),
        opt(
            "sameAs",
            "string",
            "Same bytes as this file, relative to the scenario file.",
        ),
        opt(
            "bytes",
            "{ offset: integer|string, hex: string }",
            "These bytes (hex) at this offset.",
        ),
    ];
}

impl ParamDocs for expect::ExpectNoFileStep {
    const PARAMS: &'static [ParamDoc] = &[
        FS_PEER,
        req("path", "string", "The path that must not exist."),
    ];
}

impl ParamDocs for expect::ExpectEntriesStep {
    const PARAMS: &'static [ParamDoc] = &[
        FS_PEER,
        req("path", "string", "The folder."),
        req(
            "only",
            "string[]",
            "Names allowed directly in the folder; `{}`: empty or absent.",
        ),
    ];
}

impl ParamDocs for fs::MakeGameStep {
    const PARAMS: &'static [ParamDoc] = &[
        req(
            "dir",
            "string",
            "Games folder in the workspace, e.g. `\"a\"` creates `a/<id>/`.",
        ),
        req("id", "string", "The game ID."),
        opt(
            "version",
            "string",
            "The sentinel's version; the catalog version when omitted.",
        ),
        opt(
            "sentinel",
            "boolean",
            "Write `version.ini` (default true); false makes a root that is not ready.",
        ),
        opt("files", FILE_SPEC_MAP, "Path in the root → file spec."),
        opt(
            "eti",
            FILE_SPEC,
            "Shorthand for the game's archive `<id>.eti`.",
        ),
    ];
}
const FILE_SPEC_MAP: &str = "table<string, string|{ contents?: string, size?: integer|string, sparse?: boolean, seed?: integer, rar?: table<string, string|table>, solid?: boolean, method?: integer }>";

impl ParamDocs for redirect::RedirectStep {
    const PARAMS: &'static [ParamDoc] = &[];
    const MAP: Option<&'static str> = Some("table<string, string>");
}

impl ParamDocs for fs::FsCreateFileStep {
    const PARAMS: &'static [ParamDoc] = &[
        FS_PEER,
        req("path", "string", "The file."),
        opt("contents", "string", "Its contents."),
        opt(
            "size",
            SIZE,
            "A sparse file of this size instead of `contents`.",
        ),
    ];
}

impl ParamDocs for fs::FsCopyStep {
    const PARAMS: &'static [ParamDoc] = &[
        FS_PEER,
        req("from", "string", "The file to copy."),
        req("to", "string", "The copy."),
        opt(
            "fromScenario",
            "boolean",
            "`from` is relative to the scenario file instead.",
        ),
    ];
}

impl ParamDocs for fs::FsMoveStep {
    const PARAMS: &'static [ParamDoc] = &[
        FS_PEER,
        req("from", "string", "The old path."),
        req("to", "string", "The new path."),
    ];
}

impl ParamDocs for fs::FsDeleteStep {
    const PARAMS: &'static [ParamDoc] = <fs::FsPathStep as ParamDocs>::PARAMS;
}

impl ParamDocs for fs::FsAppendStep {
    const PARAMS: &'static [ParamDoc] = &[
        FS_PEER,
        req("path", "string", "The existing file."),
        req("contents", "string", "The text to append."),
    ];
}

impl ParamDocs for fs::FsPatchStep {
    const PARAMS: &'static [ParamDoc] = &[
        FS_PEER,
        req("path", "string", "The existing file."),
        req("offset", SIZE, "Where the bytes go."),
        req("hex", "string", "The bytes, in hex."),
        opt("xor", "boolean", "XOR the bytes in instead of overwriting."),
        opt(
            "keepMtime",
            "boolean",
            "Put the modification time back afterwards (bit rot: same size, same mtime).",
        ),
    ];
}

impl ParamDocs for fs::FsPathStep {
    const PARAMS: &'static [ParamDoc] = &[FS_PEER, req("path", "string", "The path.")];
}

impl ParamDocs for flow::LogStep {
    const PARAMS: &'static [ParamDoc] = &[req("message", "string", "The text to print.")];
}

impl ParamDocs for flow::SleepStep {
    const PARAMS: &'static [ParamDoc] = &[req("duration", SPAN, "How long to wait.")];
}

impl ParamDocs for fuzz::control::FuzzCommandStep {
    const PARAMS: &'static [ParamDoc] = &[
        req("peer", "string", "The peer to fuzz."),
        req("cmd", "string", "The control command."),
        opt(
            "fields",
            "string[]",
            "Field names to fill, in order; the peer's `commands` list otherwise.",
        ),
        req(
            "choices",
            "any[]",
            "Values each field takes (`nil` is written as an absent field).",
        ),
        opt("minLen", "integer", "Fewest fields filled."),
        req("maxLen", "integer", "Most fields filled."),
        opt("timeout", SPAN, "Per input."),
        opt(
            "allow",
            "\"first-play-marker\"[]",
            "Side effects outside the games folder that may happen (play's first-play marker in the state dir).",
        ),
    ];
}

impl ParamDocs for fuzz::control::FuzzAllCommandsStep {
    const PARAMS: &'static [ParamDoc] = &[
        req("peer", "string", "The peer to fuzz."),
        req("choices", "any[]", "Values each field takes."),
        opt("minLen", "integer", "Fewest fields filled."),
        req("maxLen", "integer", "Most fields filled."),
        opt(
            "limit",
            "integer",
            "Cap on the total inputs; a seeded sample is sent when there are more.",
        ),
        opt("seed", "integer", "Seed for that sample."),
        opt("skip", "string[]", "Commands left out."),
        opt("timeout", SPAN, "Per input."),
        opt(
            "allow",
            "\"first-play-marker\"[]",
            "As fuzzCommand's `allow`.",
        ),
    ];
}

impl ParamDocs for fuzz::wire::FuzzWireStep {
    const PARAMS: &'static [ParamDoc] = &[
        req("target", "string", "The peer attacked over QUIC."),
        opt(
            "cases",
            "integer",
            "How many hostile messages (default 200).",
        ),
        opt("seed", "integer", "Seed for the messages."),
    ];
}

impl ParamDocs for install::InstallStep {
    const PARAMS: &'static [ParamDoc] = &[
        req("peer", "string", "The peer that installs."),
        req("game", "string", "The game ID."),
        opt(
            "expect",
            OUTCOME,
            "`\"finished\"` (default) or `\"failed\"`; a refused command counts as failed.",
        ),
        TIMEOUT,
    ];
}

impl ParamDocs for install::UninstallStep {
    const PARAMS: &'static [ParamDoc] = &[
        req("peer", "string", "The peer."),
        req("game", "string", "The game ID."),
    ];
}

impl ParamDocs for install::PlayStep {
    const PARAMS: &'static [ParamDoc] = &[
        req("peer", "string", "The peer."),
        req("game", "string", "The game ID."),
        req(
            "username",
            "string",
            "The account name written at first play.",
        ),
        req("language", "string", "The language written at first play."),
        opt(
            "expect",
            "{ already_applied?: boolean, account_name_written?: boolean, language_written?: boolean, persona_name_written?: boolean }",
            "The outcome flags.",
        ),
    ];
}

impl ParamDocs for install::StreamInstallStep {
    const PARAMS: &'static [ParamDoc] = &[
        req("peer", "string", "The peer that installs."),
        req("game", "string", "The game ID."),
        opt(
            "expect",
            OUTCOME,
            "`\"finished\"` (default) or `\"failed\"`; a refused command counts as failed.",
        ),
        opt(
            "wait",
            "boolean",
            "`false`: pass once the peer accepted the command.",
        ),
        opt(
            "code",
            "string",
            "With `expect = \"failed\"`: the command must be refused with this code.",
        ),
        opt(
            "error",
            "string|string[]",
            "With `expect = \"failed\"`: the error contains this text (or each of these).",
        ),
        TIMEOUT,
    ];
}

impl ParamDocs for disk::WatchDiskStep {
    const PARAMS: &'static [ParamDoc] = &[
        req("peer", "string", "The peer whose games folder is sampled."),
        opt("interval", SPAN, "Time between samples (default 5 ms)."),
    ];
}

impl ParamDocs for disk::ExpectDiskPeakStep {
    const PARAMS: &'static [ParamDoc] = &[
        req("peer", "string", "The peer being sampled."),
        opt("atMost", SIZE, "The peak is at most this."),
        opt("atLeast", SIZE, "The peak is at least this."),
        opt(
            "overFinal",
            SIZE,
            "Bound on peak − final: how far use ever rose above where it ended.",
        ),
    ];
}

const ON: &str = "{ peer: string, event: string, game?: string, match?: table, count?: integer }";
const PERCENT: &str = "string";

impl ParamDocs for network::ImpairStep {
    const PARAMS: &'static [ParamDoc] = &[
        opt("peer", "string", "All traffic of this peer's host."),
        opt(
            "between",
            "string[]",
            "Traffic between these two peers' hosts (`out` is first to second).",
        ),
        opt(
            "delay",
            SPAN,
            "Added per packet in each direction it applies to (\"20ms\").",
        ),
        opt(
            "jitter",
            SPAN,
            "Random extra delay up to this much (\"5ms\").",
        ),
        opt("loss", PERCENT, "Packets dropped, seeded (\"1%\")."),
        opt("rate", "string", "Bandwidth cap (\"100Mbit\")."),
        opt(
            "duplicate",
            PERCENT,
            "Packets sent twice, seeded (\"0.1%\").",
        ),
        opt(
            "reorder",
            PERCENT,
            "Packets held back behind later ones, seeded (\"1%\").",
        ),
        opt(
            "direction",
            "\"in\"|\"out\"",
            "Only one direction (default both).",
        ),
        opt(
            "clear",
            "boolean",
            "Remove what an earlier `impair` set on this link.",
        ),
        opt(
            "on",
            ON,
            "Apply when this peer prints this event instead of now.",
        ),
    ];
}

impl ParamDocs for network::PartitionStep {
    const PARAMS: &'static [ParamDoc] = &[];
    const MAP: Option<&'static str> = Some(
        "{ [integer]: string[], on?: { peer: string, event: string, game?: string, count?: integer } }",
    );
}

impl ParamDocs for network::HealStep {
    const PARAMS: &'static [ParamDoc] = &[opt(
        "on",
        ON,
        "Heal when this peer prints this event instead of now.",
    )];
}

impl ParamDocs for network::ExpectDropsStep {
    const PARAMS: &'static [ParamDoc] = &[
        req(
            "cause",
            "\"loss\"|\"partition\"|\"queue\"",
            "Which drops to count: the loss rule, partitions, or a full rate queue.",
        ),
        opt("atLeast", "integer", "At least this many such drops."),
        opt("atMost", "integer", "At most this many such drops."),
    ];
}

impl ParamDocs for resources::ExpectResourcesStep {
    const PARAMS: &'static [ParamDoc] = &[
        req("peer", "string", "The peer whose process is read."),
        opt("also", "string[]", "More peers held to the same bounds."),
        opt(
            "openFiles",
            "{ atMost: integer }",
            "Bound on open file descriptors.",
        ),
        opt(
            "rss",
            "{ atMost: integer|string }",
            "Bound on peak resident memory (VmHWM).",
        ),
        opt(
            "untilEvent",
            "string",
            "Sample open files until the peer prints this event.",
        ),
        opt("interval", SPAN, "Time between samples (default 2 ms)."),
        TIMEOUT,
    ];
}
