//! File redirection: `redirect{}` adds entries to the lab's redirect table,
//! which every peer started afterwards receives as its `--redirects` file;
//! `expectFile{}` compares a file in a peer's games folder with a file next
//! to the scenario, to prove a peer really moved the redirected bytes.

use crate::checker::actions::fs::scenario_path;
use crate::checker::lab::Lab;
use crate::checker::outcome::{Failure, StepResult};
use crate::checker::registry::{StepCtx, StepParams};
use crate::protocol::layout::CATALOG;
use crate::protocol::layout::check_game_id;
use crate::redirect::normal_key;
use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `redirect{ ["games/cnc4/version.ini"] = "../redirects/stale/version.ini" }`:
/// paths of a peer's layout → paths relative to the scenario file's folder.
/// Checked when the file loads: keys must name `game.db` or something under
/// `games/`, values must be relative and stay below the scenario folder's
/// parent.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "BTreeMap<String, String>")]
pub struct RedirectStep(pub BTreeMap<String, String>);

impl StepParams for RedirectStep {}

impl TryFrom<BTreeMap<String, String>> for RedirectStep {
    type Error = String;

    fn try_from(map: BTreeMap<String, String>) -> Result<Self, String> {
        if map.is_empty() {
            return Err("give at least one [path] = \"target\" entry".into());
        }
        for (key, value) in &map {
            check_key(key).map_err(|e| format!("{e:#}"))?;
            check_value(value).map_err(|e| format!("[{key:?}]: {e:#}"))?;
        }
        Ok(Self(map))
    }
}

/// A key names the catalog or lies under `games/` (and then its first folder
/// is a valid game ID).
fn check_key(key: &str) -> Result<()> {
    let normal = normal_key(key)?;
    let comps: Vec<&str> = normal.split('/').collect();
    match comps.as_slice() {
        [c] if *c == CATALOG => Ok(()),
        ["games"] => Ok(()),
        ["games", id, ..] => check_game_id(id).with_context(|| format!("key {key:?}")),
        _ => bail!("key {key:?} is not in a peer's layout (`games/<id>/…` or `{CATALOG}`)"),
    }
}

/// A value is relative to the scenario folder and may climb at most to that
/// folder's parent (the repository root for `scenarios/`).
fn check_value(value: &str) -> Result<()> {
    if value.is_empty() || Path::new(value).is_absolute() {
        bail!("target {value:?} must be a path relative to the scenario file's folder");
    }
    // The scenario folder is one component below the project.
    if crate::paths::collapse(&format!("scenarios/{value}")).is_none() {
        bail!("target {value:?} climbs above the scenario folder's parent");
    }
    Ok(())
}

pub fn redirect(lab: &mut Lab, s: &RedirectStep, _cx: &StepCtx) -> StepResult {
    for (key, value) in &s.0 {
        let target = scenario_path(lab, value)?;
        let creatable = target.parent().is_some_and(Path::is_dir);
        if !target.exists() && !creatable {
            return Err(Failure::invalid(format!(
                "redirect [{key:?}]: {value:?} does not exist and its folder is missing ({})",
                target.display()
            )));
        }
        let target = if normal_key(key).is_ok_and(|k| k == CATALOG)
            && target.extension().is_some_and(|e| e == "json")
        {
            build_catalog(lab, &target)
                .map_err(|e| Failure::invalid(format!("redirect [{key:?}] = {value:?}: {e:#}")))?
        } else {
            target
        };
        lab.redirects
            .insert(key, target)
            .map_err(|e| Failure::invalid(format!("redirect [{key:?}]: {e:#}")))?;
    }
    Ok(())
}

/// A `.json` catalog source becomes a `.db` in the run folder; the peer only
/// opens SQLite catalogs.
fn build_catalog(lab: &Lab, source: &Path) -> Result<PathBuf> {
    let dir = lab.run_dir.join("redirects");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let stem = source
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "catalog".into());
    let mut db = dir.join(format!("{stem}.db"));
    let mut n = 1;
    while db.exists() {
        n += 1;
        db = dir.join(format!("{stem}-{n}.db"));
    }
    let text =
        std::fs::read_to_string(source).with_context(|| format!("reading {}", source.display()))?;
    crate::catalog::write_db(&text, &db)?;
    Ok(db)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(pairs: &[(&str, &str)]) -> Result<RedirectStep, String> {
        RedirectStep::try_from(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    #[test]
    fn keys_must_be_in_the_layout_and_values_near_the_scenario() {
        for ok in [
            ("games/cnc4/version.ini", "../redirects/stale/version.ini"),
            ("games/ggoo/", "alt/ggoo/"),
            ("game.db", "../redirects/catalogs/x.json"),
            ("games", "./all-games"),
            ("games/x/../cnc4/a", "a/../../b"),
        ] {
            assert!(step(&[ok]).is_ok(), "{ok:?} refused");
        }
        for (bad, why) in [
            (("etc/passwd", "x"), "not in a peer's layout"),
            (("game.db/x", "x"), "not in a peer's layout"),
            (("games/../x", "x"), "not in a peer's layout"),
            (("/games/a", "x"), "absolute"),
            (("games/.hidden/a", "x"), "invalid game id"),
            (("games/a", "/etc"), "relative"),
            (("games/a", ""), "relative"),
            (("games/a", "../../x"), "climbs above"),
            (("games/a", "x/../../../y"), "climbs above"),
        ] {
            match step(&[bad]) {
                Ok(_) => panic!("{bad:?} accepted"),
                Err(e) => assert!(e.contains(why), "{bad:?}: {e} (want {why})"),
            }
        }
        assert!(step(&[]).is_err());
    }

    #[test]
    fn bad_redirect_and_expect_file_tables_fail_at_load_naming_the_line() {
        let cases = [
            (
                "scenario {\n\n redirect { [\"games/a/x\"] = 5 },\n}",
                "t.lua:3: redirect: games/a/x: expected a string, got the number 5",
            ),
            (
                "scenario {\n redirect { [\"etc/x\"] = \"y\" },\n}",
                "t.lua:2: redirect: key \"etc/x\" is not in a peer's layout",
            ),
            (
                "scenario {\n redirect { [\"game.db\"] = \"/abs.db\" },\n}",
                "t.lua:2: redirect: [\"game.db\"]: target \"/abs.db\" must be a path relative",
            ),
            (
                "scenario {\n expectFile { peer = \"a\", path = \"g/x\", same = \"y\" },\n}",
                "t.lua:2: expectFile: unknown field `same`",
            ),
        ];
        for (src, want) in cases {
            match crate::checker::script::load_str("t.lua", src, Path::new("t.lua"), 0) {
                Ok(_) => panic!("{src} loaded"),
                Err(e) => assert!(e.0.contains(want), "{src}\n got: {}\nwant: {want}", e.0),
            }
        }
    }

    #[test]
    fn scenario_values_resolve_against_the_scenario_folder() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let scen = dir.path().join("tests");
        std::fs::create_dir_all(&scen)?;
        let lab = Lab::new(dir.path().join("run"), scen.clone(), false)?;
        let base = scen.canonicalize()?;
        // The reference table's ["a/b/"] = "c/d/" in tests/scenario.lua.
        let resolve = |v: &str| scenario_path(&lab, v).map_err(|f| anyhow::anyhow!("{f:?}"));
        assert_eq!(resolve("c/d/")?, base.join("c/d"));
        assert_eq!(
            resolve("../redirects/x")?,
            base.parent()
                .map(|p| p.join("redirects/x"))
                .unwrap_or_default()
        );
        assert!(resolve("../../x").is_err());
        Ok(())
    }
}
