//! Loading a scenario file: runs the Lua, turns each step constructor's table
//! into a typed `Step` (recording its line) and collects the `scenario{}`.
//! Every problem is found here, before any peer starts, and names file:line.

use crate::checker::actions::observe::From;
use crate::checker::registry::{ACTIONS, Action, ActionInfo, Step};
use crate::units::Span;
use mlua::{Lua, LuaSerdeExt, Value};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

/// A loaded, validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub path: PathBuf,
    pub name: String,
    pub timeout: Option<Duration>,
    /// Labels a folder run selects by (`--tags`, `--skip-tags`).
    pub tags: Vec<String>,
    /// Where the peers run: `scenario{ network = … }`.
    pub network: Network,
    pub steps: Vec<Step>,
}

/// The lab a scenario's peers run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// Every peer a process on 127.0.0.1 (the default, and the fastest).
    #[default]
    Loopback,
    /// Every peer its own host on a LAN the checker builds for the run.
    Lan,
}

/// What a step needs the LAN for, if anything: the loader refuses these
/// in a loopback scenario rather than let them fail when they run.
fn lan_only(action: &Action) -> Option<&'static str> {
    match action {
        Action::Impair(_) => Some("impair"),
        Action::Partition(_) => Some("partition"),
        Action::Heal(_) => Some("heal"),
        Action::ExpectDrops(_) => Some("expectDrops"),
        Action::Peer(p) if p.address.is_some() => Some("peer{ address = … }"),
        Action::Peer(p) if p.ssh => Some("peer{ ssh = true }"),
        _ => None,
    }
}

/// A load-time error: the message already names `file:line` when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError(pub String);

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

struct StepBox(Step);
impl mlua::UserData for StepBox {}

#[derive(Default)]
struct Collected {
    scenario: Option<(u32, mlua::Table)>,
    error: Option<String>,
}

fn caller_line(lua: &Lua) -> u32 {
    lua.inspect_stack(1)
        .map(|d| d.curr_line().max(0) as u32)
        .unwrap_or(0)
}

/// Loads and validates `path`.
pub fn load(path: &Path, seed: u64) -> Result<Scenario, LoadError> {
    let display = path.display().to_string();
    let source = std::fs::read_to_string(path)
        .map_err(|e| LoadError(format!("{display}: cannot read the scenario file: {e}")))?;
    let scenario = load_str(&display, &source, path, seed)?;
    check_order(&display, &scenario)?;
    Ok(scenario)
}

/// The pass over the whole step list (`preflight`), with the scenario's
/// folder for the files its steps name; `load` runs it, unit tests of
/// single steps need not.
pub fn check_order(display: &str, scenario: &Scenario) -> Result<(), LoadError> {
    let path = scenario.path.as_path();
    let steps = &scenario.steps;
    let dir = path.parent().unwrap_or(Path::new(""));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    // The run's own rule (`fs::scenario_path`) also stops at the project.
    let beside = |rel: &str, folder: bool| {
        let p = dir.join(rel);
        if folder { p.is_dir() } else { p.is_file() }
    };
    crate::checker::preflight::check(steps, &beside)
        .map_err(|(line, action, m)| LoadError(format!("{display}:{line}: {action}: {m}")))
}

/// Loads scenario text; `display` names the file in messages.
/// `seed` is visible to the script as the global `seed`.
pub fn load_str(
    display: &str,
    source: &str,
    path: &Path,
    seed: u64,
) -> Result<Scenario, LoadError> {
    let lua = Lua::new();
    let state = Rc::new(RefCell::new(Collected::default()));
    let fail = |state: &Rc<RefCell<Collected>>, msg: String| -> mlua::Error {
        let mut s = state.borrow_mut();
        if s.error.is_none() {
            s.error = Some(msg.clone());
        }
        mlua::Error::RuntimeError(msg)
    };
    let register = || -> mlua::Result<()> {
        let globals = lua.globals();
        for action in ACTIONS {
            let (name, parse) = (action.name, action.parse);
            let st = state.clone();
            let file = display.to_string();
            let f = lua.create_function(move |lua, v: Value| {
                let line = caller_line(lua);
                let mut label = None;
                let table = match v {
                    Value::Nil => Value::Table(lua.create_table()?),
                    Value::Table(t) => {
                        // `label` belongs to every step, not to the action.
                        match t.raw_get::<Value>("label")? {
                            Value::Nil => {}
                            Value::String(l) if !l.to_string_lossy().is_empty() => {
                                label = Some(l.to_string_lossy());
                            }
                            _ => {
                                return Err(fail(
                                    &st,
                                    format!(
                                        "{file}:{line}: {name}: `label` must be a non-empty string"
                                    ),
                                ));
                            }
                        }
                        t.raw_set("label", Value::Nil)?;
                        Value::Table(t)
                    }
                    other => {
                        return Err(fail(
                            &st,
                            format!(
                                "{file}:{line}: {name} takes a table, got a {}",
                                other.type_name()
                            ),
                        ));
                    }
                };
                let written = table.clone();
                match parse(lua, table) {
                    Ok(action) => lua.create_userdata(StepBox(Step {
                        line,
                        label,
                        action,
                    })),
                    Err(e) => {
                        let why = crate::checker::type_errors::explain(&written, &clean(&e));
                        Err(fail(&st, format!("{file}:{line}: {name}: {why}")))
                    }
                }
            })?;
            globals.set(name, f)?;
        }
        let st = state.clone();
        let file = display.to_string();
        let scenario = lua.create_function(move |lua, t: Value| {
            let line = caller_line(lua);
            let Value::Table(t) = t else {
                return Err(fail(
                    &st,
                    format!("{file}:{line}: scenario takes a table of steps"),
                ));
            };
            let first = st.borrow().scenario.as_ref().map(|(l, _)| *l);
            if let Some(first) = first {
                return Err(fail(
                    &st,
                    format!(
                        "{file}:{line}: a second scenario{{}} call (the first is at line {first})"
                    ),
                ));
            }
            st.borrow_mut().scenario = Some((line, t));
            Ok(())
        })?;
        globals.set("scenario", scenario)?;
        // Lua integers are i64; the seed is reinterpreted, not truncated.
        globals.set("seed", seed as i64)?;
        // A misspelt action is a nil global: say so instead of "attempt to call a nil value".
        let st = state.clone();
        let file = display.to_string();
        let meta = lua.create_table()?;
        meta.set(
            "__index",
            lua.create_function(
                move |lua, (_, key): (Value, Value)| -> mlua::Result<Value> {
                    let line = caller_line(lua);
                    let key = key.to_string().unwrap_or_default();
                    Err(fail(
                        &st,
                        format!("{file}:{line}: unknown action or name `{key}`"),
                    ))
                },
            )?,
        )?;
        globals.set_metatable(Some(meta));
        Ok(())
    };
    register().map_err(|e| LoadError(format!("{display}: setting up Lua: {e}")))?;

    let chunk = lua.load(source).set_name(format!("@{display}"));
    if let Err(e) = chunk.exec() {
        let first = state.borrow().error.clone();
        return Err(LoadError(first.unwrap_or_else(|| clean(&e))));
    }
    let Some((line, table)) = state.borrow_mut().scenario.take() else {
        return Err(LoadError(format!(
            "{display}: no scenario{{...}} call in the file"
        )));
    };
    collect(display, path, line, table, &lua)
}

fn collect(
    display: &str,
    path: &Path,
    line: u32,
    table: mlua::Table,
    lua: &Lua,
) -> Result<Scenario, LoadError> {
    let at = |m: String| LoadError(format!("{display}:{line}: scenario: {m}"));
    let mut name = None;
    let mut timeout = None;
    let mut tags = Vec::new();
    let mut network = Network::Loopback;
    let mut steps = Vec::new();
    let len = table.raw_len();
    for pair in table.pairs::<Value, Value>() {
        let (k, v) = pair.map_err(|e| at(clean(&e)))?;
        match k {
            Value::Integer(i) if i >= 1 && (i as usize) <= len => {}
            Value::String(s) => {
                let key = s.to_string_lossy();
                match key.as_str() {
                    "name" => {
                        name = Some(
                            v.as_string()
                                .map(|s| s.to_string_lossy())
                                .ok_or_else(|| at("`name` must be a string".into()))?,
                        )
                    }
                    "timeout" => {
                        let span: Span = lua
                            .from_value(v)
                            .map_err(|e| at(format!("timeout: {}", clean(&e))))?;
                        timeout = Some(span.0);
                    }
                    "network" => {
                        network = match v.as_string().map(|s| s.to_string_lossy()).as_deref() {
                            Some("loopback") => Network::Loopback,
                            Some("lan") => Network::Lan,
                            _ => {
                                return Err(at(
                                    "`network` must be \"lan\" or \"loopback\" (the default)"
                                        .into(),
                                ));
                            }
                        }
                    }
                    "description" => {}
                    "tags" => tags = parse_tags(v).map_err(|m| at(format!("tags: {m}")))?,
                    other => {
                        return Err(at(format!(
                            "unknown field `{other}` (named fields are name, timeout, network, description, tags)"
                        )));
                    }
                }
            }
            other => return Err(at(format!("unexpected key {other:?} in the step list"))),
        }
    }
    for i in 1..=len {
        let v: Value = table.raw_get(i).map_err(|e| at(clean(&e)))?;
        let step = match &v {
            Value::UserData(ud) => ud.borrow::<StepBox>().map(|b| b.0.clone()).ok(),
            _ => None,
        };
        match step {
            Some(s) => steps.push(s),
            None => {
                return Err(at(format!(
                    "item {i} is a {}, not a step (did you forget the action name?)",
                    v.type_name()
                )));
            }
        }
    }
    if steps.is_empty() {
        return Err(at("the scenario has no steps".into()));
    }
    if network == Network::Loopback
        && let Some((step, what)) = steps
            .iter()
            .find_map(|s| lan_only(&s.action).map(|w| (s, w)))
    {
        return Err(LoadError(format!(
            "{display}:{}: {what} needs the network lab: add network = \"lan\" to scenario{{}}",
            step.line
        )));
    }
    resolve_labels(display, &mut steps)?;
    let name = name.unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| display.to_string())
    });
    Ok(Scenario {
        path: path.to_path_buf(),
        name,
        timeout,
        tags,
        network,
        steps,
    })
}

/// `tags = {"slow", "lan"}`: a list of words (letters, digits, `-`, `_`),
/// so that `--tags a,b` on the command line can name every one of them.
fn parse_tags(v: Value) -> Result<Vec<String>, String> {
    let Value::Table(t) = v else {
        return Err(format!("expected a list of words, got a {}", v.type_name()));
    };
    let len = t.raw_len();
    if t.clone().pairs::<Value, Value>().count() != len {
        return Err("expected a list of words, got a table with named keys".into());
    }
    let mut tags = Vec::with_capacity(len);
    for i in 1..=len {
        let word = match t.raw_get::<Value>(i) {
            Ok(Value::String(s)) => s.to_string_lossy(),
            Ok(other) => return Err(format!("item {i} is a {}, not a word", other.type_name())),
            Err(e) => return Err(clean(&e)),
        };
        let ok = !word.is_empty()
            && word
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            return Err(format!(
                "{word:?} is not a word (letters, digits, `-` and `_` only)"
            ));
        }
        tags.push(word);
    }
    Ok(tags)
}

/// Checks labels are unique and turns every `from = "label"` into the line
/// of the earlier step with that label.
fn resolve_labels(display: &str, steps: &mut [Step]) -> Result<(), LoadError> {
    let mut lines: BTreeMap<String, u32> = BTreeMap::new();
    for step in steps.iter_mut() {
        if let Some(from) = step.action.from_mut()
            && let From::Label(label) = from
        {
            let Some(&at) = lines.get(label.as_str()) else {
                return Err(LoadError(format!(
                    "{display}:{}: from = \"{label}\": no earlier step has that label",
                    step.line
                )));
            };
            *from = From::Line(at);
        }
        if let Some(label) = &step.label
            && let Some(first) = lines.insert(label.clone(), step.line)
        {
            return Err(LoadError(format!(
                "{display}:{}: label \"{label}\" is already used at line {first}",
                step.line
            )));
        }
    }
    Ok(())
}

/// Every action with its parameter names, read from the parameter structs
/// themselves (their unknown-field error lists the known fields), so the
/// list cannot drift from what the loader accepts.
pub fn action_fields() -> Vec<(&'static ActionInfo, Vec<String>)> {
    let lua = Lua::new();
    ACTIONS
        .iter()
        .map(|action| {
            let parse = action.parse;
            let probe = lua.create_table().and_then(|t| {
                t.set("\u{1}", true)?;
                Ok(Value::Table(t))
            });
            let message = match probe.map(|t| parse(&lua, t)) {
                Ok(Err(e)) => clean(&e),
                _ => String::new(),
            };
            let listed = message
                .split_once("expected")
                .map(|(_, rest)| rest)
                .unwrap_or("");
            let mut fields: Vec<String> = listed
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect();
            if fields.is_empty() {
                // A free-form table (e.g. `redirect`) has no fixed names.
                fields.push("[key] = value, …".to_string());
            }
            (action, fields)
        })
        .collect()
}

/// The useful part of a Lua/serde error: no traceback, no wrapper noise.
fn clean(e: &mlua::Error) -> String {
    match e {
        mlua::Error::CallbackError { cause, .. } => clean(cause),
        mlua::Error::RuntimeError(m) | mlua::Error::SyntaxError { message: m, .. } => m.clone(),
        mlua::Error::DeserializeError(m) => m.clone(),
        other => other
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(src: &str) -> Result<Scenario, LoadError> {
        load_str("t.lua", src, Path::new("t.lua"), 7)
    }

    #[test]
    fn steps_record_their_lines_and_types() -> Result<(), LoadError> {
        let s = load_text(
            "scenario {\n  name = \"demo\",\n  peer { name = \"a\", chunkSize = \"8MiB\" },\n\n  connect { from = \"a\", to = {\"b\", \"c\"} },\n}\n",
        )?;
        assert_eq!(s.name, "demo");
        assert_eq!(s.steps.len(), 2);
        assert_eq!(s.steps[0].line, 3);
        assert_eq!(s.steps[1].line, 5);
        match &s.steps[0].action {
            Action::Peer(p) => assert_eq!(p.chunk_size.map(|c| c.0), Some(8 << 20)),
            other => panic!("{other:?}"),
        }
        Ok(())
    }

    #[test]
    fn every_action_lists_its_parameters() {
        let all = action_fields();
        assert_eq!(all.len(), ACTIONS.len());
        for (action, fields) in &all {
            assert!(!fields.is_empty(), "{} lists no parameters", action.name);
        }
        let peer = all
            .iter()
            .find(|(a, _)| a.name == "peer")
            .map(|(_, f)| f.clone())
            .unwrap_or_default();
        assert!(peer.contains(&"chunkSize".to_string()), "{peer:?}");
    }

    #[test]
    fn network_steps_need_the_lan_and_parse_their_groups() -> Result<(), LoadError> {
        let lan = load_text(
            "scenario {\n network = \"lan\",\n peer { name = \"a\", address = \"198.18.0.20\" },\n partition { {\"a\"}, {\"b\", \"c\"}, on = { peer = \"a\", event = \"e\" } },\n impair { between = {\"a\", \"b\"}, loss = \"1%\", rate = \"100Mbit\", direction = \"out\" },\n heal {},\n}",
        )?;
        assert_eq!(lan.network, Network::Lan);
        match &lan.steps[1].action {
            Action::Partition(p) => {
                assert_eq!(p.groups, [vec!["a"], vec!["b", "c"]]);
                assert_eq!(p.on.as_ref().map(|o| o.event.as_str()), Some("e"));
            }
            other => panic!("parsed as {other:?}"),
        }
        let cases = [
            (
                "scenario {\n peer { name = \"a\" },\n heal {},\n}",
                "t.lua:3: heal needs the network lab",
            ),
            (
                "scenario {\n peer { name = \"a\", address = \"198.18.0.2\" },\n}",
                "t.lua:2: peer{ address = … } needs the network lab",
            ),
            (
                "scenario {\n network = \"lan\",\n peer { name = \"a\", address = \"10.0.0.1\" },\n}",
                "t.lua:3: peer: `address` 10.0.0.1 is not a host address",
            ),
            (
                "scenario {\n network = \"wan\",\n log { message = \"x\" },\n}",
                "`network` must be",
            ),
            (
                "scenario {\n network = \"lan\",\n impair { peer = \"a\", between = {\"a\", \"b\"}, loss = \"1%\" },\n}",
                "t.lua:3: impair: give `peer` or `between`, not both",
            ),
            (
                "scenario {\n network = \"lan\",\n impair { peer = \"a\", loss = \"1%\", clear = true },\n}",
                "t.lua:3: impair: `clear = true` removes",
            ),
            (
                "scenario {\n network = \"lan\",\n partition { {\"a\"}, {\"a\"} },\n}",
                "t.lua:3: partition: peer \"a\" is in two groups",
            ),
            (
                "scenario {\n network = \"lan\",\n partition { {\"a\"}, when = 1 },\n}",
                "t.lua:3: partition: unknown field `when`",
            ),
        ];
        for (src, want) in cases {
            match load_text(src) {
                Err(e) => assert!(e.0.contains(want), "{:?} does not contain {want:?}", e.0),
                Ok(_) => panic!("{src} loaded"),
            }
        }
        Ok(())
    }

    #[test]
    fn labels_become_the_lines_of_their_steps() -> Result<(), LoadError> {
        let s = load_text(
            "scenario {\n log { message = \"a\" },\n log { message = \"b\", label = \"here\" },\n expectEvent { peer = \"p\", event = \"e\", from = \"here\" },\n}",
        )?;
        assert_eq!(s.steps[1].label.as_deref(), Some("here"));
        match &s.steps[2].action {
            Action::ExpectEvent(e) => assert_eq!(e.from, From::Line(3)),
            other => panic!("parsed as {other:?}"),
        }
        Ok(())
    }

    #[test]
    fn tags_are_a_list_of_words() -> Result<(), LoadError> {
        let s =
            load_text("scenario {\n tags = {\"slow\", \"lan_2\"},\n log { message = \"m\" },\n}")?;
        assert_eq!(s.tags, ["slow", "lan_2"]);
        assert!(
            load_text("scenario { log { message = \"m\" } }")?
                .tags
                .is_empty()
        );
        for (tags, says) in [
            ("\"slow\"", "tags: expected a list of words, got a string"),
            ("{\"a b\"}", "tags: \"a b\" is not a word"),
            ("{\"\"}", "tags: \"\" is not a word"),
            ("{3}", "tags: item 1 is a integer, not a word"),
            ("{ x = \"y\" }", "got a table with named keys"),
        ] {
            let src = format!("scenario {{\n tags = {tags},\n log {{ message = \"m\" }},\n}}");
            match load_text(&src) {
                Ok(_) => panic!("tags = {tags} loaded"),
                Err(e) => assert!(e.0.contains(says), "tags = {tags}: {}", e.0),
            }
        }
        Ok(())
    }

    #[test]
    fn mistakes_name_file_and_line() {
        let cases = [
            (
                "scenario {\n peer { name = \"a\", gmaes = \"x\" },\n}",
                "t.lua:2: peer: unknown field `gmaes`",
            ),
            (
                "scenario {\n peer { name = 5 },\n}",
                "t.lua:2: peer: name: expected a string, got the number 5",
            ),
            (
                "scenario {\n\n dowload { peer = \"a\" },\n}",
                "t.lua:3: unknown action or name `dowload`",
            ),
            ("x = 1", "t.lua: no scenario{...} call"),
            (
                "scenario { peer{name=\"a\"} }\nscenario { peer{name=\"b\"} }",
                "t.lua:2: a second scenario{} call (the first is at line 1)",
            ),
            ("scenario {\n 42,\n}", "item 1 is a integer, not a step"),
            (
                "scenario { nmae = \"x\", peer{name=\"a\"} }",
                "unknown field `nmae`",
            ),
            ("scenario {\n peer { name = \"a\" \n", "t.lua:"),
            (
                "scenario {\n download { peer = \"a\", game = \"g\", expect = \"maybe\" },\n}",
                "t.lua:2: download: unknown variant `maybe`",
            ),
            (
                "scenario {\n makeGame { dir = \"a\", id = \"g\", files = { x = { size = \"1MiB\", contents = \"y\" } } },\n}",
                "not several",
            ),
            (
                "scenario {\n waitGame { peer = \"a\", game = \"g\", timeout = \"3 fortnights\" },\n}",
                "t.lua:2: waitGame: `3 fortnights`: unknown duration unit",
            ),
            (
                "scenario {\n expectEvent { peer = \"a\", event = \"e\", from = \"later\" },\n log { message = \"m\", label = \"later\" },\n}",
                "t.lua:2: from = \"later\": no earlier step has that label",
            ),
            (
                "scenario {\n log { message = \"m\", label = \"x\" },\n log { message = \"m\", label = \"x\" },\n}",
                "t.lua:3: label \"x\" is already used at line 2",
            ),
            (
                "scenario {\n log { message = \"m\", label = 4 },\n}",
                "t.lua:2: log: `label` must be a non-empty string",
            ),
        ];
        for (src, want) in cases {
            let err = load_text(src).expect_err(src);
            assert!(err.0.contains(want), "{src}\n got: {}\nwant: {want}", err.0);
        }
    }

    /// `step` as the third line of a scenario.
    fn at_line_3(step: &str) -> String {
        format!("scenario {{\n log {{ message = \"m\" }},\n {step},\n}}")
    }

    /// Each step, on line 3, fails to load with an error containing its text.
    fn refused_at_load(cases: &[(&str, &str)]) {
        for (step, want) in cases {
            match load_text(&at_line_3(step)) {
                Ok(_) => panic!("{step} loaded"),
                Err(e) => assert!(e.0.contains(want), "{step}\n got: {}\nwant: {want}", e.0),
            }
        }
    }

    /// Each step, on line 3, loads.
    fn loads(steps: &[&str]) {
        for step in steps {
            if let Err(e) = load_text(&at_line_3(step)) {
                panic!("{step} is refused: {}", e.0);
            }
        }
    }

    #[test]
    fn contradictory_parameters_fail_at_load_time() {
        refused_at_load(&[
            (
                r#"download { peer = "a", game = "g", wait = false, expect = "failed" }"#,
                r#"t.lua:3: download: `wait = false` cannot expect "failed""#,
            ),
            (
                r#"streamInstall { peer = "a", game = "g", wait = false, expect = "failed" }"#,
                r#"t.lua:3: streamInstall: `wait = false` cannot expect "failed""#,
            ),
            (
                r#"streamInstall { peer = "a", game = "g", code = "no-source" }"#,
                "t.lua:3: streamInstall: `code` and `error` describe a failure",
            ),
            (
                r#"streamInstall { peer = "a", game = "g", expect = "finished", error = "crc" }"#,
                "t.lua:3: streamInstall: `code` and `error` describe a failure",
            ),
            (
                r#"expectOverlap { peer = "s", uploads = { { to = "c1" } } }"#,
                "t.lua:3: expectOverlap: needs at least two upload groups",
            ),
            (
                r#"expectOverlap { peer = "s", uploads = { { to = "c1" }, {} } }"#,
                "t.lua:3: expectOverlap: needs at least two upload groups, each with `to` and/or `game`",
            ),
            (
                r#"connect { from = "a", to = "b", code = "self-connect" }"#,
                r#"t.lua:3: connect: `code` describes a refusal; add expect = "error""#,
            ),
            (
                r#"connect { from = "a", to = "b", expect = "result", code = "self-connect" }"#,
                r#"t.lua:3: connect: `code` describes a refusal; add expect = "error""#,
            ),
            (
                r#"send { peer = "a" }"#,
                "t.lua:3: send: give exactly one of `cmd` or `raw`",
            ),
            (
                r#"send { peer = "a", cmd = { cmd = "status" }, raw = "{}" }"#,
                "t.lua:3: send: give exactly one of `cmd` or `raw`",
            ),
            (
                r#"send { peer = "a", cmd = "status" }"#,
                "t.lua:3: send: `cmd` must be a table with a string `cmd` field",
            ),
            (
                r#"send { peer = "a", cmd = { game_id = "g" } }"#,
                "t.lua:3: send: `cmd` must be a table with a string `cmd` field",
            ),
            (
                r#"send { peer = "a", cmd = { cmd = 5 } }"#,
                "t.lua:3: send: `cmd` must be a table with a string `cmd` field",
            ),
            (
                r#"fsCreateFile { path = "x", contents = "y", size = "1KiB" }"#,
                "t.lua:3: fsCreateFile: give `contents` or `size`, not both",
            ),
            (
                r#"makeGame { dir = "a", id = "g", eti = { size = 1 }, files = { ["g.eti"] = "x" } }"#,
                "t.lua:3: makeGame: g.eti is given both as `eti` and in `files`",
            ),
            (
                r#"fuzzCommand { peer = "s", cmd = "status", choices = { 1 }, minLen = 3, maxLen = 2 }"#,
                "t.lua:3: fuzzCommand: `minLen` (3) is above `maxLen` (2)",
            ),
            (
                r#"fuzzAllCommands { peer = "s", choices = { 1 }, minLen = 1, maxLen = 0 }"#,
                "t.lua:3: fuzzAllCommands: `minLen` (1) is above `maxLen` (0)",
            ),
        ]);
        // Their sound neighbours load.
        loads(&[
            r#"download { peer = "a", game = "g", wait = false }"#,
            r#"download { peer = "a", game = "g", expect = "failed" }"#,
            r#"streamInstall { peer = "a", game = "g", wait = false }"#,
            r#"streamInstall { peer = "a", game = "g", expect = "failed", code = "no-source", error = "x" }"#,
            r#"expectOverlap { peer = "s", uploads = { { to = "c1" }, { game = "g" } } }"#,
            r#"connect { from = "a", to = "a", expect = "error", code = "self-connect" }"#,
            r#"connect { from = "a", to = "b", expect = "error" }"#,
            r#"send { peer = "a", cmd = { cmd = "status" }, match = { peers = 0 } }"#,
            r#"send { peer = "a", raw = "not json", expect = "error" }"#,
            r#"fsCreateFile { path = "x", contents = "y" }"#,
            r#"fsCreateFile { path = "x", size = "1KiB" }"#,
            r#"makeGame { dir = "a", id = "g", eti = { size = 1 }, files = { ["h.eti"] = "x" } }"#,
            r#"fuzzCommand { peer = "s", cmd = "status", choices = { 1 }, minLen = 2, maxLen = 2 }"#,
            r#"fuzzAllCommands { peer = "s", choices = { 1 }, maxLen = 0 }"#,
        ]);
    }

    #[test]
    fn unusable_values_fail_at_load_time() {
        refused_at_load(&[
            (
                r#"fsPatch { path = "x", offset = 0, hex = "zz" }"#,
                r#"t.lua:3: fsPatch: `hex` "zz" is not hex: Invalid character 'z' at position 0"#,
            ),
            (
                r#"fsPatch { path = "x", offset = 0, hex = "abc" }"#,
                r#"t.lua:3: fsPatch: `hex` "abc" is not hex: Odd number of digits"#,
            ),
            (
                r#"fsPatch { path = "x", offset = 0, hex = "" }"#,
                "t.lua:3: fsPatch: `hex` is empty: give at least one byte",
            ),
            (
                r#"expectFile { path = "x", bytes = { offset = 4, hex = "0g" } }"#,
                r#"t.lua:3: expectFile: `bytes.hex` "0g" is not hex: Invalid character 'g' at position 1"#,
            ),
            (
                r#"makeGame { dir = "a", id = "g", eti = { rar = { x = { rar = { y = "z" } } } } }"#,
                "t.lua:3: makeGame: archive member x: only `contents` or `size`/`seed` are allowed inside `rar`",
            ),
            (
                r#"makeGame { dir = "a", id = "g", eti = { rar = { x = { size = 8, sparse = true } } } }"#,
                "t.lua:3: makeGame: archive member x: only `contents` or `size`/`seed` are allowed inside `rar`",
            ),
            (
                r#"makeGame { dir = "a", id = "g", files = { ["g.eti"] = { rar = { x = { size = "65MiB" } } } } }"#,
                "t.lua:3: makeGame: archive member x: 68157440 is over the 64 MiB limit",
            ),
            (
                r#"makeGame { dir = "a", id = "g", eti = { rar = { ["../x"] = "y" } } }"#,
                r#"t.lua:3: makeGame: invalid archive entry name "../x""#,
            ),
            (
                r#"makeGame { dir = "a", id = "g", eti = { rar = { x = "y" }, method = 6 } }"#,
                "t.lua:3: makeGame: `method` 6: RAR methods are 0 to 5",
            ),
            (
                r#"fuzzCommand { peer = "s", cmd = "download", fields = { "game_id", "id" }, choices = { 1 }, maxLen = 2 }"#,
                r#"t.lua:3: fuzzCommand: `fields`: "id" cannot be fuzzed: the fuzzer needs it to match answers"#,
            ),
        ]);
        // Their sound neighbours load.
        loads(&[
            r#"fsPatch { path = "x", offset = "1KiB", hex = "DEADbeef", xor = true }"#,
            r#"expectFile { path = "x", bytes = { offset = 4, hex = "00ff" } }"#,
            r#"makeGame { dir = "a", id = "g", eti = { rar = { ["bin/x"] = { size = "64MiB", seed = 2 }, y = "z" }, solid = true, method = 5 } }"#,
            r#"fuzzCommand { peer = "s", cmd = "download", fields = { "game_id", "bogus" }, choices = { 1 }, maxLen = 2 }"#,
        ]);
    }

    #[test]
    fn paths_leaving_their_folder_fail_at_load_time() {
        refused_at_load(&[
            (
                r#"fsCreateFile { path = "../x" }"#,
                r#"t.lua:3: fsCreateFile: `path` "../x" leaves the folder it is relative to"#,
            ),
            (
                r#"fsDeleteFolder { peer = "a", path = "/etc" }"#,
                r#"t.lua:3: fsDeleteFolder: `path` "/etc" leaves the folder it is relative to"#,
            ),
            (
                r#"expectFile { path = "x", sha256 = "abc" }"#,
                r#"t.lua:3: expectFile: `sha256` "abc" is not 64 hex digits"#,
            ),
            (
                r#"expectFile { path = "x", bytes = { offset = 0, hex = "" } }"#,
                r#"t.lua:3: expectFile: `bytes.hex` is empty"#,
            ),
            (
                r#"fsDeleteFolder { peer = "a", path = "" }"#,
                r#"t.lua:3: fsDeleteFolder: `path` "" is the folder itself"#,
            ),
            (
                r#"fsDeleteFolder { path = "games/.." }"#,
                r#"t.lua:3: fsDeleteFolder: `path` "games/.." is the folder itself"#,
            ),
            (
                r#"fsDeleteFile { peer = "a", path = "." }"#,
                r#"t.lua:3: fsDeleteFile: `path` "." is the folder itself"#,
            ),
            (
                r#"fsRenameFile { from = "a", to = "a/../../b" }"#,
                r#"t.lua:3: fsRenameFile: `to` "a/../../b" leaves the folder it is relative to"#,
            ),
            (
                r#"fsCopyFile { from = "../../x", fromScenario = true, to = "y" }"#,
                r#"t.lua:3: fsCopyFile: `from` "../../x" leaves the project folder"#,
            ),
            (
                r#"fsCopyFile { from = "../x", to = "y" }"#,
                r#"t.lua:3: fsCopyFile: `from` "../x" leaves the folder it is relative to"#,
            ),
            (
                r#"fsAppend { path = "..", contents = "x" }"#,
                r#"t.lua:3: fsAppend: `path` ".." leaves the folder it is relative to"#,
            ),
            (
                r#"fsPatch { path = "/x", offset = 0, hex = "01" }"#,
                r#"t.lua:3: fsPatch: `path` "/x" leaves the folder it is relative to"#,
            ),
            (
                r#"expectFile { path = "x", sameAs = "/etc/passwd" }"#,
                r#"t.lua:3: expectFile: `sameAs` "/etc/passwd" leaves the project folder"#,
            ),
            (
                r#"expectNoFile { path = "../x" }"#,
                r#"t.lua:3: expectNoFile: `path` "../x" leaves the folder it is relative to"#,
            ),
            (
                r#"expectEntries { path = "../x", only = {} }"#,
                r#"t.lua:3: expectEntries: `path` "../x" leaves the folder it is relative to"#,
            ),
            (
                r#"makeGame { dir = "..", id = "g" }"#,
                r#"t.lua:3: makeGame: `dir` ".." leaves the folder it is relative to"#,
            ),
            (
                r#"makeGame { dir = "a", id = "../g" }"#,
                r#"t.lua:3: makeGame: `id` "../g" leaves the folder it is relative to"#,
            ),
            (
                r#"makeGame { dir = "a", id = "g", files = { ["../../x"] = "y" } }"#,
                r#"t.lua:3: makeGame: `files` entry "../../x" leaves the folder it is relative to"#,
            ),
            (
                r#"peer { name = "a", catalog = "../../game.db" }"#,
                r#"t.lua:3: peer: `catalog` "../../game.db" leaves the project folder"#,
            ),
            (
                r#"peer { name = "a", games = "/srv/games" }"#,
                r#"t.lua:3: peer: `games` "/srv/games" leaves the project folder"#,
            ),
        ]);
        // Their sound neighbours load.
        loads(&[
            r#"fsCreateFile { path = "a/../b" }"#,
            r#"fsCopyFile { from = "../redirects/files/payload.txt", fromScenario = true, to = "s/x" }"#,
            r#"expectFile { peer = "c", path = "g/./x", sameAs = "../fixtures/x" }"#,
            r#"makeGame { dir = "a", id = "g", files = { ["data/../readme.txt"] = "y" } }"#,
            r#"peer { name = "a", games = "../fixtures/fixture-a", catalog = "../redirects/catalogs/c.json" }"#,
        ]);
    }
}
