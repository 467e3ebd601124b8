//! Keeps docs/SCENARIOS.md honest against the action registry (the loader's
//! one list of actions): every action has a section, every action section
//! names an action, every registry doc is one line, and every Lua example
//! in the file loads.

use lanspread_checker::checker::registry::ACTIONS;
use lanspread_checker::checker::script;
use std::path::Path;

fn scenarios_md() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/SCENARIOS.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[test]
fn every_action_has_a_section() {
    let doc = scenarios_md();
    let missing: Vec<&str> = ACTIONS
        .iter()
        .map(|a| a.name)
        .filter(|name| !doc.lines().any(|l| l.trim() == format!("### {name}")))
        .collect();
    assert!(
        missing.is_empty(),
        "actions without a `### name` section: {missing:?}"
    );
}

/// The `### name` headings of the Actions chapter.
fn action_sections(doc: &str) -> Vec<String> {
    let mut in_actions = false;
    let mut names = Vec::new();
    for line in doc.lines() {
        if let Some(chapter) = line.strip_prefix("## ") {
            in_actions = chapter.trim() == "Actions";
        } else if let Some(name) = line.strip_prefix("### ")
            && in_actions
        {
            names.push(name.trim().to_string());
        }
    }
    names
}

#[test]
fn every_action_section_names_an_action() {
    let sections = action_sections(&scenarios_md());
    assert!(sections.len() >= ACTIONS.len(), "{sections:?}");
    let unknown: Vec<&String> = sections
        .iter()
        .filter(|s| !ACTIONS.iter().any(|a| a.name == s.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "sections for actions the loader does not know: {unknown:?}"
    );
}

#[test]
fn every_action_has_a_one_line_doc() {
    let bad: Vec<&str> = ACTIONS
        .iter()
        .filter(|a| a.doc.trim().is_empty() || a.doc.contains('\n') || a.doc.len() > 100)
        .map(|a| a.name)
        .collect();
    assert!(
        bad.is_empty(),
        "actions without a short one-line doc: {bad:?}"
    );
}

#[test]
fn every_example_passes_check() {
    let doc = scenarios_md();
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in doc.lines().enumerate() {
        match (&mut current, line.trim()) {
            (None, "```lua") => current = Some((i + 1, String::new())),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some((_, text)), _) => {
                text.push_str(line);
                text.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(
        blocks.len() > 20,
        "only {} lua examples found",
        blocks.len()
    );
    let mut bad = Vec::new();
    for (line, text) in &blocks {
        // Fragments of a step list are checked inside a scenario.
        let source = if text.contains("scenario") {
            text.clone()
        } else {
            format!("scenario {{\n{text}\n}}\n")
        };
        let name = format!("docs/SCENARIOS.md:{line}");
        if let Err(e) = script::load_str(&name, &source, Path::new("docs/example.lua"), 0) {
            bad.push(e.0);
        }
    }
    assert!(
        bad.is_empty(),
        "examples that do not load:\n{}",
        bad.join("\n")
    );
}

fn protocol_md() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/PROTOCOL.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Every error code and event name the peer can print is documented, so a
/// new one cannot slip out undocumented (both are closed enums).
#[test]
fn every_error_code_and_event_is_documented() {
    use lanspread_checker::protocol::control::{ErrorCode, Event};
    let doc = protocol_md();
    let names = ErrorCode::ALL
        .iter()
        .map(|c| c.as_str())
        .chain(Event::ALL.iter().map(|e| e.as_str()));
    let missing: Vec<&str> = names
        .filter(|name| !doc.contains(&format!("`{name}`")))
        .collect();
    assert!(missing.is_empty(), "not in docs/PROTOCOL.md: {missing:?}");
}

/// Every hostile behaviour is documented for scenario writers (the
/// `hostilePeer` table) and for peer readers (what a receiver does
/// against it), so a new lie cannot slip in undescribed.
#[test]
fn every_hostile_behaviour_is_documented() {
    use lanspread_checker::protocol::hostile::Lie;
    let scenarios = scenarios_md();
    let protocol = protocol_md();
    let missing: Vec<&str> = Lie::ALL
        .iter()
        .map(|l| l.as_str())
        .filter(|name| {
            let row = format!("| `{name}` ");
            !scenarios.contains(&row) || !protocol.contains(&row)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "hostile behaviours without a row in docs/SCENARIOS.md and docs/PROTOCOL.md: {missing:?}"
    );
}
