//! Which scenario files a folder run runs: `--filter`, `--tags`,
//! `--skip-tags` and `--partition K/N`. Pure functions of the file names
//! (and the tags their files declare), so every rule has a unit test.

use std::path::{Path, PathBuf};

/// `--partition K/N`: shard K (1-based) of N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub shard: u64,
    pub of: u64,
}

impl std::str::FromStr for Partition {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}`: expected K/N, e.g. 1/3"))?;
        let num = |x: &str| {
            x.trim()
                .parse::<u64>()
                .map_err(|_| format!("`{s}`: `{x}` is not a whole number"))
        };
        let (shard, of) = (num(k)?, num(n)?);
        if of == 0 || shard == 0 || shard > of {
            return Err(format!("`{s}`: K must be 1..=N and N at least 1"));
        }
        Ok(Self { shard, of })
    }
}

impl Partition {
    /// Whether `file` belongs to this shard: by a hash of its file name
    /// alone (not its folder), so a shard's files do not depend on where
    /// the checkout is or on which other files exist.
    pub fn holds(&self, file: &Path) -> bool {
        let name = file
            .file_name()
            .map(|n| n.as_encoded_bytes())
            .unwrap_or(b"");
        fnv1a(name) % self.of == self.shard - 1
    }
}

/// FNV-1a, 64 bit: stable across versions and platforms (std's hasher is not).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The command line's selection.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// `--filter`: a substring of the file name, or a glob (`*`, `?`) that
    /// must match the whole file name.
    pub filter: Option<String>,
    /// `--tags`: run only files having any of these.
    pub tags: Vec<String>,
    /// `--skip-tags`: never run files having any of these.
    pub skip_tags: Vec<String>,
    pub partition: Option<Partition>,
}

impl Selection {
    /// Whether the selection asks for the files' tags (which means loading them).
    pub fn needs_tags(&self) -> bool {
        !self.tags.is_empty() || !self.skip_tags.is_empty()
    }

    /// Whether `file`, declaring `tags` (`None`: the file did not load, so
    /// its tags are unknown), is run. A file that does not load is kept by
    /// the tag rules so its error is reported rather than silently skipped.
    pub fn selects(&self, file: &Path, tags: Option<&[String]>) -> bool {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(f) = &self.filter
            && !name_matches(f, &name)
        {
            return false;
        }
        if let Some(tags) = tags {
            let has = |wanted: &[String]| wanted.iter().any(|w| tags.contains(w));
            if !self.tags.is_empty() && !has(&self.tags) {
                return false;
            }
            if has(&self.skip_tags) {
                return false;
            }
        }
        self.partition.is_none_or(|p| p.holds(file))
    }
}

/// `--filter`: a glob when it holds `*` or `?`, else a substring.
pub fn name_matches(pattern: &str, name: &str) -> bool {
    if pattern.contains(['*', '?']) {
        glob(pattern.as_bytes(), name.as_bytes())
    } else {
        name.contains(pattern)
    }
}

/// Whole-string glob with `*` (any run) and `?` (any one byte).
fn glob(p: &[u8], s: &[u8]) -> bool {
    // Iterative with one backtrack point: linear enough for file names.
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(c) if *c == b'?' || *c == s[si] => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == b'*')
}

/// Folders become their `*.lua` files (sorted, not recursive); files stay
/// as given; a file named twice runs once.
pub fn expand(
    inputs: &[PathBuf],
    read_dir: impl Fn(&Path) -> std::io::Result<Vec<PathBuf>>,
) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = read_dir(input)
                .map_err(|e| format!("{}: cannot read the folder: {e}", input.display()))?
                .into_iter()
                .filter(|p| p.extension().is_some_and(|x| x == "lua") && !p.is_dir())
                .collect();
            if found.is_empty() {
                return Err(format!("{}: no .lua files in the folder", input.display()));
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(input.clone());
        }
    }
    let mut seen = std::collections::HashSet::new();
    files.retain(|f| seen.insert(f.clone()));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<PathBuf> {
        (0..n)
            .map(|i| PathBuf::from(format!("scenarios/s{i:02}_case.lua")))
            .collect()
    }

    fn shard(files: &[PathBuf], k: u64, n: u64) -> Vec<PathBuf> {
        let p = Partition { shard: k, of: n };
        files.iter().filter(|f| p.holds(f)).cloned().collect()
    }

    #[test]
    fn shards_are_disjoint_and_cover_every_file() {
        let mut files = names(200);
        files.sort();
        for n in 1..=7 {
            let mut all: Vec<PathBuf> = (1..=n).flat_map(|k| shard(&files, k, n)).collect();
            assert_eq!(
                all.len(),
                files.len(),
                "N={n}: a file in two shards or none"
            );
            all.sort();
            assert_eq!(all, files, "N={n}");
        }
        // Not everything in one shard: the hash spreads.
        let sizes: Vec<usize> = (1..=3).map(|k| shard(&files, k, 3).len()).collect();
        assert!(sizes.iter().all(|s| *s > 30), "{sizes:?}");
    }

    #[test]
    fn adding_a_file_moves_no_other_file() {
        let before = names(50);
        let mut after = before.clone();
        after.push(PathBuf::from("scenarios/s99_new.lua"));
        after.push(PathBuf::from("scenarios/a_first.lua"));
        for k in 1..=4 {
            let old = shard(&before, k, 4);
            let new = shard(&after, k, 4);
            assert!(old.iter().all(|f| new.contains(f)), "shard {k} lost a file");
            assert!(new.len() - old.len() <= 2);
        }
    }

    #[test]
    fn the_shard_depends_on_the_file_name_not_its_folder() {
        for f in names(30) {
            let elsewhere = Path::new("/ci/checkout/other").join(f.file_name().unwrap_or_default());
            for k in 1..=3 {
                let p = Partition { shard: k, of: 3 };
                assert_eq!(p.holds(&f), p.holds(&elsewhere), "{}", f.display());
            }
        }
    }

    #[test]
    fn partition_parses_k_of_n() {
        assert_eq!("2/3".parse(), Ok(Partition { shard: 2, of: 3 }));
        for bad in ["0/3", "4/3", "1/0", "3", "a/b", "1/-2"] {
            assert!(bad.parse::<Partition>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn filter_is_a_substring_or_a_whole_name_glob() {
        assert!(name_matches("s15", "s15_skew.lua"));
        assert!(!name_matches("s16", "s15_skew.lua"));
        assert!(name_matches("s1?_*.lua", "s15_skew.lua"));
        assert!(name_matches("*stream*", "s39_stream_install.lua"));
        assert!(!name_matches("s1?_*", "s150_x.lua"));
        assert!(
            !name_matches("*.lu", "s15_skew.lua"),
            "a glob matches the whole name"
        );
        assert!(name_matches("*", ""));
    }

    #[test]
    fn tags_select_any_and_skip_tags_win() {
        let f = Path::new("x/s1.lua");
        let tags = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let sel = Selection {
            tags: tags(&["slow", "lan"]),
            skip_tags: tags(&["flaky"]),
            ..Default::default()
        };
        assert!(sel.selects(f, Some(&tags(&["lan"]))));
        assert!(!sel.selects(f, Some(&tags(&["fast"]))));
        assert!(!sel.selects(f, Some(&[])));
        assert!(!sel.selects(f, Some(&tags(&["slow", "flaky"]))));
        // Unknown tags (the file does not load): kept, so its error shows.
        assert!(sel.selects(f, None));
        let none = Selection::default();
        assert!(none.selects(f, Some(&[])));
        let filtered = Selection {
            filter: Some("s2".into()),
            ..Default::default()
        };
        assert!(!filtered.selects(f, None));
    }

    #[test]
    fn folders_expand_to_their_lua_files_once() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        for n in ["b.lua", "a.lua", "notes.md"] {
            std::fs::write(dir.path().join(n), "").unwrap_or_else(|e| panic!("{e}"));
        }
        let read = |p: &Path| -> std::io::Result<Vec<PathBuf>> {
            std::fs::read_dir(p)?.map(|e| e.map(|e| e.path())).collect()
        };
        let a = dir.path().join("a.lua");
        let got =
            expand(&[dir.path().to_path_buf(), a.clone()], read).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got, vec![a, dir.path().join("b.lua")]);
        let empty = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        assert!(expand(&[empty.path().to_path_buf()], read).is_err());
    }
}
