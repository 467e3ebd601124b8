//! File redirection: a table from paths in a peer's *virtual layout*
//! (`games/<id>/…` under its games dir, `game.db` for its catalog) to real
//! paths. Shared by the checker, which builds the table from `redirect{}`
//! steps, and the peer, whose file layer (`peer::files`) asks it for every
//! path it touches.
//!
//! Matching: paths use `/`; `.`, `..` and empty components are collapsed in
//! both the key and the used path; a key matches when its components are a
//! whole-component prefix of the used path; the longest matching key wins and
//! the rest of the used path is appended to its target.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Collapses `.`, `..` and empty components of a relative `/`-separated path.
/// `None` for an absolute path or one whose `..` climbs above its start
/// (`paths::collapse`), and for `\\` or NUL: such a path is outside the
/// layout and matches no key.
pub fn collapse(path: &str) -> Option<Vec<&str>> {
    if path.contains('\\') || path.contains('\0') {
        return None;
    }
    crate::paths::collapse(path)
}

/// One matching key: its collapsed components and the real target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit<'a> {
    /// The key's components (collapsed).
    pub key: Vec<&'a str>,
    /// The key's target, unchanged.
    pub target: &'a Path,
    /// The used path resolved: the target with the rest of the path appended.
    pub path: PathBuf,
}

/// A redirection table. Keys are stored collapsed and `/`-joined, so two
/// spellings of one key (`a/b/`, `a/./b`) are the same entry and a later
/// insert replaces the earlier one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redirects {
    table: BTreeMap<String, PathBuf>,
}

impl Redirects {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Collapsed keys and their targets, sorted by key.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Path)> {
        self.table.iter().map(|(k, v)| (k.as_str(), v.as_path()))
    }

    /// Adds (or replaces) a redirection. The key must be relative, stay inside
    /// the layout and name at least one component.
    pub fn insert(&mut self, key: &str, target: PathBuf) -> Result<()> {
        let key = normal_key(key)?;
        self.table.insert(key, target);
        Ok(())
    }

    /// Adds every entry of `other`, replacing identical keys.
    pub fn extend(&mut self, other: &Redirects) {
        for (k, v) in &other.table {
            self.table.insert(k.clone(), v.clone());
        }
    }

    /// The longest key matching `used`, or `None` (no key matches, or `used`
    /// leaves the layout).
    pub fn lookup(&self, used: &str) -> Option<Hit<'_>> {
        let used = collapse(used)?;
        let mut best: Option<(Vec<&str>, &PathBuf)> = None;
        for (k, target) in &self.table {
            let key: Vec<&str> = k.split('/').collect();
            let longer = best.as_ref().is_none_or(|(b, _)| key.len() > b.len());
            if longer && key.len() <= used.len() && used[..key.len()] == key[..] {
                best = Some((key, target));
            }
        }
        let (key, target) = best?;
        let mut path = target.clone();
        for c in &used[key.len()..] {
            path.push(c);
        }
        Some(Hit {
            key,
            target: target.as_path(),
            path,
        })
    }

    /// The table as the peer's `--redirects` file: a JSON object from
    /// collapsed key to absolute target.
    pub fn to_json(&self) -> Result<String> {
        let mut map = BTreeMap::new();
        for (k, v) in &self.table {
            let v = v
                .to_str()
                .with_context(|| format!("redirect target of {k} is not UTF-8"))?;
            map.insert(k.as_str(), v);
        }
        Ok(serde_json::to_string_pretty(&map)?)
    }

    /// Parses a `--redirects` file. Targets must be absolute: the peer has no
    /// scenario folder to resolve them against.
    pub fn from_json(text: &str) -> Result<Self> {
        let map: BTreeMap<String, String> =
            serde_json::from_str(text).context("a redirect file is a JSON object of strings")?;
        let mut out = Self::new();
        for (k, v) in map {
            let target = PathBuf::from(&v);
            if !target.is_absolute() {
                bail!("redirect {k:?}: target {v:?} is not an absolute path");
            }
            out.insert(&k, target)
                .with_context(|| format!("redirect {k:?}"))?;
        }
        Ok(out)
    }
}

/// The stored form of a key: collapsed and `/`-joined.
pub fn normal_key(key: &str) -> Result<String> {
    let Some(comps) = collapse(key) else {
        bail!("key {key:?} is absolute or climbs out of the layout with `..`");
    };
    if comps.is_empty() {
        bail!("key {key:?} names no path");
    }
    Ok(comps.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "Path actually used" as the reference table shows it: the redirected
    /// path, or the collapsed path when no key matches.
    fn used(r: &Redirects, path: &str) -> String {
        match r.lookup(path) {
            Some(hit) => hit.path.to_string_lossy().into_owned(),
            None => collapse(path).map(|c| c.join("/")).unwrap_or_default(),
        }
    }

    #[test]
    fn reference_table_rows() -> Result<()> {
        // ["a/b/"] = "c/d/" in tests/scenario.lua: the checker resolves the
        // value against the scenario folder, so the target is tests/c/d.
        let mut r = Redirects::new();
        r.insert("a/b/", PathBuf::from("tests/c/d"))?;
        let rows = [
            ("a.txt", "a.txt"),                    // partial matches are ignored
            ("a/b.txt", "a/b.txt"),                // not the full redirect path
            ("a/b/z.txt", "tests/c/d/z.txt"),      // redirect performed
            ("c/a/b/z.txt", "c/a/b/z.txt"),        // not at the beginning
            ("e/../a/b/z.txt", "tests/c/d/z.txt"), // collapsed first
            ("c/d/../a/b/z.txt", "c/a/b/z.txt"),   // collapsed, still not at the start
        ];
        for (path, want) in rows {
            assert_eq!(used(&r, path), want, "{path}");
        }
        Ok(())
    }

    #[test]
    fn whole_components_only() -> Result<()> {
        let mut r = Redirects::new();
        r.insert("a/b", PathBuf::from("/t"))?;
        assert_eq!(used(&r, "a/b.txt"), "a/b.txt");
        assert_eq!(used(&r, "a/bc/z"), "a/bc/z");
        assert_eq!(used(&r, "c/a/b/z.txt"), "c/a/b/z.txt");
        assert_eq!(used(&r, "a/b/z.txt"), "/t/z.txt");
        // The key's own folder maps to the target itself.
        assert_eq!(used(&r, "a/b"), "/t");
        assert_eq!(used(&r, "a/b/"), "/t");
        assert_eq!(used(&r, "a"), "a");
        Ok(())
    }

    #[test]
    fn longest_key_wins_whatever_the_insert_order() -> Result<()> {
        for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0]] {
            let keys = [
                ("games/g/", "/root"),
                ("games/g/data/", "/data"),
                ("games/g/data/x.eti", "/x"),
            ];
            let mut r = Redirects::new();
            for i in order {
                r.insert(keys[i].0, PathBuf::from(keys[i].1))?;
            }
            assert_eq!(used(&r, "games/g/version.ini"), "/root/version.ini");
            assert_eq!(used(&r, "games/g/data/y.eti"), "/data/y.eti");
            assert_eq!(used(&r, "games/g/data/x.eti"), "/x");
            assert_eq!(used(&r, "games/g/data/x.eti.part"), "/data/x.eti.part");
            assert_eq!(used(&r, "games/h/x"), "games/h/x");
        }
        Ok(())
    }

    #[test]
    fn keys_are_collapsed_and_later_identical_keys_override() -> Result<()> {
        let mut r = Redirects::new();
        r.insert("games/./g/x/../", PathBuf::from("/one"))?;
        r.insert("games/g", PathBuf::from("/two"))?;
        assert_eq!(r.len(), 1);
        assert_eq!(used(&r, "games/g/f"), "/two/f");
        let mut later = Redirects::new();
        later.insert("games//g/", PathBuf::from("/three"))?;
        r.extend(&later);
        assert_eq!(used(&r, "games/g/f"), "/three/f");
        Ok(())
    }

    #[test]
    fn paths_leaving_the_layout_match_nothing() -> Result<()> {
        let mut r = Redirects::new();
        r.insert("a", PathBuf::from("/t"))?;
        assert_eq!(r.lookup("../a/x"), None);
        assert_eq!(r.lookup("a/../../a/x"), None);
        assert_eq!(r.lookup("/a/x"), None);
        assert_eq!(collapse("a/./b//c/.."), Some(vec!["a", "b"]));
        assert_eq!(collapse("a/.."), Some(vec![]));
        for bad in ["", ".", "a/..", "/abs", "../x", "a\\b"] {
            assert!(
                r.clone().insert(bad, PathBuf::from("/t")).is_err(),
                "{bad:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn json_round_trip_needs_absolute_targets() -> Result<()> {
        let mut r = Redirects::new();
        r.insert("game.db", PathBuf::from("/x/cat.db"))?;
        r.insert("games/g/", PathBuf::from("/x/g"))?;
        assert_eq!(Redirects::from_json(&r.to_json()?)?, r);
        assert!(Redirects::from_json(r#"{"game.db":"rel/cat.db"}"#).is_err());
        assert!(Redirects::from_json(r#"{"game.db":5}"#).is_err());
        assert!(Redirects::from_json(r#"{"../x":"/t"}"#).is_err());
        Ok(())
    }
}
