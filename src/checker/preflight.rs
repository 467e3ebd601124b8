//! The load-time pass over a scenario's typed steps: what no single step
//! rules out but their order does (a peer named twice, a step naming a
//! peer no earlier step started — the peer it acts on, or a source
//! `expectChunks` names —, an expectation with no earlier step to check, a
//! games folder or catalog that neither an earlier step makes nor the
//! scenario's folder holds). A pure function of the steps and a lookup of
//! the scenario's folder, so `--check` rejects what the run would and the
//! rules have unit tests.

use crate::checker::registry::{Action, Step};
use std::collections::BTreeSet;

/// What the scenario's folder holds: `beside(rel, folder)` says whether
/// `rel` (relative to the scenario file) is a folder (or, `false`, a file).
pub type Beside<'a> = &'a dyn Fn(&str, bool) -> bool;

/// A step starting peer `name` on games folder `games`: the name must be
/// new, and the folder made by an earlier step or beside the scenario.
fn start_peer<'a>(
    peers: &mut BTreeSet<&'a str>,
    name: &'a str,
    games: Option<&str>,
    made: &BTreeSet<&str>,
    fs_touched: bool,
    beside: Beside,
) -> Result<(), String> {
    if !peers.insert(name) {
        return Err(format!(
            "a peer named {name:?} is already started by an earlier step"
        ));
    }
    match games {
        Some(g) if !fs_touched && !made.contains(g) && !beside(g, true) => Err(format!(
            "games folder {g:?} is made by no earlier makeGame{{ dir = {g:?} }} and is not beside the scenario"
        )),
        _ => Ok(()),
    }
}

/// The first problem in `steps`, as `line: action: message`.
pub fn check(steps: &[Step], beside: Beside) -> Result<(), (u32, &'static str, String)> {
    let mut made: BTreeSet<&str> = BTreeSet::new();
    // Folders an fs step makes or moves are not followed: after one, a
    // games folder is left to the run to find.
    let mut fs_touched = false;
    let mut peers: BTreeSet<&str> = BTreeSet::new();
    let mut watched: BTreeSet<&str> = BTreeSet::new();
    let mut downloaded: BTreeSet<(&str, &str)> = BTreeSet::new();
    for step in steps {
        let fail = |m: String| Err((step.line, step.action.name(), m));
        let started = match &step.action {
            Action::Peer(p) => Some((&p.name, p.games.as_deref())),
            Action::HostilePeer(p) => Some((&p.name, p.games.as_deref())),
            _ => None,
        };
        if let Some((name, games)) = started {
            start_peer(&mut peers, name, games, &made, fs_touched, beside).or_else(fail)?;
        }
        match &step.action {
            Action::Peer(p) => {
                if let Some(c) = &p.catalog
                    && !beside(c, false)
                {
                    return fail(format!("catalog {c:?} is not beside the scenario"));
                }
            }
            Action::MakeGame(m) => {
                made.insert(&m.dir);
            }
            Action::FsCreateFolder(_)
            | Action::FsCopyFile(_)
            | Action::FsRenameFile(_)
            | Action::FsRenameFolder(_)
            | Action::FsCreateFile(_) => fs_touched = true,
            Action::ExpectDiskPeak(s) if !watched.remove(s.peer.as_str()) => {
                return fail(format!(
                    "no earlier watchDisk{{ peer = {:?} }} to check (add one before the steps to measure)",
                    s.peer
                ));
            }
            Action::WatchDisk(s) => {
                watched.insert(&s.peer);
            }
            Action::Download(s) => {
                downloaded.insert((&s.peer, &s.game));
            }
            Action::StreamInstall(s) => {
                downloaded.insert((&s.peer, &s.game));
            }
            Action::ExpectChunks(s) if !downloaded.contains(&(&s.peer, &s.game)) => {
                return fail(no_download(&s.peer, &s.game));
            }
            Action::ExpectThroughput(s) if !downloaded.contains(&(&s.peer, &s.game)) => {
                return fail(no_download(&s.peer, &s.game));
            }
            _ => {}
        }
        if let Some((param, name)) = named_peers(&step.action)
            .into_iter()
            .find(|(_, n)| !peers.contains(n))
        {
            return fail(format!(
                "{param}: no peer named {name:?} is started before this step (peer{{ name = {name:?} }} must come first)"
            ));
        }
    }
    Ok(())
}

fn no_download(peer: &str, game: &str) -> String {
    format!("no earlier download{{ peer = {peer:?}, game = {game:?} }} (or streamInstall) to check")
}

/// The peers a step acts on or reads, besides the one `peer{}` starts,
/// each with the parameter that names it.
fn named_peers(action: &Action) -> Vec<(&'static str, &str)> {
    use Action as A;
    match action {
        // The peer whose ID it claims must be running (its ID is read then).
        A::HostilePeer(s) => s
            .impersonate
            .iter()
            .map(|p| ("impersonate", p.as_str()))
            .collect(),
        A::RestartPeer(s) => vec![("name", &s.name)],
        A::ShutdownPeer(s) => vec![("name", &s.name)],
        A::KillPeer(s) => {
            let mut v = vec![("name", s.name.as_str())];
            v.extend(s.on.as_ref().map(|o| ("on.peer", o.peer.as_str())));
            v
        }
        A::Connect(s) => {
            let mut v = vec![("from", s.from.as_str())];
            v.extend(s.to.iter().map(|t| ("to", t.as_str())));
            v
        }
        A::Send(s) => vec![("peer", &s.peer)],
        A::WaitGame(s) => vec![("peer", &s.peer)],
        A::Download(s) => vec![("peer", &s.peer)],
        A::CancelDownload(s) => vec![("peer", &s.peer)],
        A::ExpectGames(s) => vec![("peer", &s.peer)],
        A::ExpectPeers(s) => vec![("peer", &s.peer)],
        A::ExpectEvent(s) => vec![("peer", &s.peer)],
        A::ExpectNoEvent(s) => vec![("peer", &s.peer)],
        A::ExpectSequence(s) => vec![("peer", &s.peer)],
        A::ExpectStatus(s) => vec![("peer", &s.peer)],
        A::ExpectChunks(s) => {
            // The sources it names are peers too (the run resolves them
            // the same way).
            let mut v = vec![("peer", s.peer.as_str())];
            v.extend(
                s.only_from
                    .iter()
                    .flatten()
                    .map(|n| ("onlyFrom", n.as_str())),
            );
            v.extend(s.never_from.iter().map(|n| ("neverFrom", n.as_str())));
            v.extend(s.served_by.iter().map(|n| ("servedBy", n.as_str())));
            v.extend(
                s.totals
                    .iter()
                    .flat_map(|m| m.keys())
                    .map(|n| ("totals", n.as_str())),
            );
            v.extend(
                s.per_source
                    .iter()
                    .flat_map(|m| m.keys())
                    .map(|n| ("perSource", n.as_str())),
            );
            v
        }
        A::ExpectThroughput(s) => vec![("peer", &s.peer)],
        A::ExpectSameFiles(s) => vec![("source", &s.source), ("target", &s.target)],
        A::ExpectOverlap(s) => vec![("peer", &s.peer)],
        A::FuzzCommand(s) => vec![("peer", &s.peer)],
        A::FuzzAllCommands(s) => vec![("peer", &s.peer)],
        A::FuzzWire(s) => vec![("target", &s.target)],
        A::Install(s) => vec![("peer", &s.peer)],
        A::Uninstall(s) => vec![("peer", &s.peer)],
        A::Play(s) => vec![("peer", &s.peer)],
        A::StreamInstall(s) => vec![("peer", &s.peer)],
        A::WatchDisk(s) => vec![("peer", &s.peer)],
        A::ExpectDiskPeak(s) => vec![("peer", &s.peer)],
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    /// The loader's message, which is `check`'s with the file in front.
    fn problem(src: &str) -> String {
        let path = std::path::Path::new("no-such-folder/case.lua");
        let checked = crate::checker::script::load_str("case.lua", src, path, 0)
            .and_then(|s| crate::checker::script::check_order("case.lua", &s));
        match checked {
            Ok(()) => String::new(),
            Err(e) => e.0.trim_start_matches("case.lua:").to_string(),
        }
    }

    #[test]
    fn a_valid_order_passes() {
        assert_eq!(
            problem(
                "scenario {\n peer { name = \"a\" },\n peer { name = \"b\" },\n connect { from = \"a\", to = \"b\" },\n watchDisk { peer = \"b\" },\n download { peer = \"b\", game = \"cnc4\" },\n expectDiskPeak { peer = \"b\", atMost = \"1MiB\" },\n expectChunks { peer = \"b\", game = \"cnc4\", onlyFrom = {\"a\"} },\n}"
            ),
            ""
        );
    }

    #[test]
    fn a_hostile_peer_starts_a_peer_and_impersonates_only_a_started_one() {
        let ok = "scenario {\n peer { name = \"a\" },\n hostilePeer { name = \"h\", impersonate = \"a\" },\n connect { from = \"a\", to = \"h\" },\n}";
        assert_eq!(problem(ok), "");
        let p = problem(
            "scenario {\n hostilePeer { name = \"h\", impersonate = \"a\" },\n peer { name = \"a\" },\n}",
        );
        assert!(
            p.starts_with("2: hostilePeer: impersonate: no peer named \"a\""),
            "{p}"
        );
        let p = problem(
            "scenario {\n peer { name = \"h\" },\n hostilePeer { name = \"h\", behaviour = \"stall\" },\n}",
        );
        assert!(
            p.starts_with("3: hostilePeer: a peer named \"h\" is already"),
            "{p}"
        );
        let p = problem("scenario {\n hostilePeer { name = \"h\", behaviour = \"polite\" },\n}");
        assert!(p.contains("unknown variant"), "{p}");
        let p = problem("scenario {\n hostilePeer { name = \"h\" },\n}");
        assert!(p.contains("give `behaviour`"), "{p}");
        let p = problem(
            "scenario {\n peer { name = \"a\" },\n hostilePeer { name = \"h\", behaviour = \"stall\", impersonate = \"a\" },\n}",
        );
        assert!(p.contains("does not go with"), "{p}");
    }

    #[test]
    fn a_peer_named_twice_is_rejected() {
        let p = problem("scenario {\n peer { name = \"a\" },\n peer { name = \"a\" },\n}");
        assert!(
            p.starts_with("3: peer: a peer named \"a\" is already"),
            "{p}"
        );
    }

    #[test]
    fn a_peer_named_before_it_starts_or_never_is_rejected() {
        let p = problem(
            "scenario {\n peer { name = \"a\" },\n connect { from = \"a\", to = \"b\" },\n peer { name = \"b\" },\n}",
        );
        assert!(p.starts_with("3: connect: to: no peer named \"b\""), "{p}");
        let p = problem(
            "scenario {\n expectSameFiles { game = \"g\", source = \"x\", target = \"y\" },\n}",
        );
        assert!(
            p.starts_with("2: expectSameFiles: source: no peer named \"x\""),
            "{p}"
        );
    }

    #[test]
    fn expect_chunks_sources_must_be_peers() {
        let head = "scenario {\n peer { name = \"a\" },\n peer { name = \"c\" },\n download { peer = \"c\", game = \"g\" },\n";
        for (param, body) in [
            ("onlyFrom", "onlyFrom = { \"a\", \"z\" }"),
            ("neverFrom", "neverFrom = { \"z\" }"),
            ("servedBy", "servedBy = { \"a\", \"z\" }"),
            ("totals", "totals = { a = 1, z = 2 }"),
            ("perSource", "perSource = { a = 1, z = { atLeast = 1 } }"),
        ] {
            let p = problem(&format!(
                "{head} expectChunks {{ peer = \"c\", game = \"g\", {body} }},\n}}"
            ));
            assert!(
                p.starts_with(&format!(
                    "5: expectChunks: {param}: no peer named \"z\" is started before this step"
                )),
                "{param}: {p}"
            );
        }
        // Peers started before the step pass, whatever the parameter.
        let p = problem(&format!(
            "{head} expectChunks {{ peer = \"c\", game = \"g\", onlyFrom = {{ \"a\" }}, neverFrom = {{ \"c\" }}, servedBy = {{ \"a\" }}, totals = {{ a = 1 }}, perSource = {{ a = 1 }} }},\n}}"
        ));
        assert_eq!(p, "");
    }

    #[test]
    fn an_expectation_without_its_earlier_step_is_rejected() {
        let p = problem(
            "scenario {\n peer { name = \"a\" },\n expectDiskPeak { peer = \"a\", atMost = \"1MiB\" },\n}",
        );
        assert!(
            p.starts_with("3: expectDiskPeak: no earlier watchDisk"),
            "{p}"
        );
        let p = problem(
            "scenario {\n peer { name = \"a\" },\n expectChunks { peer = \"a\", game = \"g\", balanced = true },\n}",
        );
        assert!(p.starts_with("3: expectChunks: no earlier download"), "{p}");
        let p = problem(
            "scenario {\n peer { name = \"a\" },\n expectThroughput { peer = \"a\", game = \"g\" },\n}",
        );
        assert!(
            p.starts_with("3: expectThroughput: no earlier download"),
            "{p}"
        );
    }

    #[test]
    fn a_games_folder_or_catalog_nothing_provides_is_rejected() {
        let p = problem("scenario {\n peer { name = \"a\", games = \"g\" },\n}");
        assert!(
            p.starts_with("2: peer: games folder \"g\" is made by no earlier"),
            "{p}"
        );
        let p = problem(
            "scenario {\n makeGame { dir = \"g\", id = \"cnc4\", files = { x = \"1\" } },\n peer { name = \"a\", games = \"g\" },\n}",
        );
        assert_eq!(p, "");
        let p = problem("scenario {\n peer { name = \"a\", catalog = \"cat.json\" },\n}");
        assert!(
            p.starts_with("2: peer: catalog \"cat.json\" is not beside"),
            "{p}"
        );
    }
}
