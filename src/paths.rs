//! The one rule for a relative path a scenario or a redirect table writes:
//! it stays inside the folder it is relative to. Shared by the checker (its
//! load-time checks and the joins at run time) and by `redirect`, which the
//! peer uses too, so it lives in a leaf both may import.

use std::path::{Path, PathBuf};

/// The components of a relative `/`-separated path with `.`, `..` and empty
/// components collapsed; `None` for an absolute path or one whose `..`
/// climbs above its start.
pub fn collapse(rel: &str) -> Option<Vec<&str>> {
    if rel.starts_with('/') {
        return None;
    }
    let mut out: Vec<&str> = Vec::new();
    for comp in rel.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            c => out.push(c),
        }
    }
    Some(out)
}

/// `rel` joined to `base`, or `None` when it would leave `base`.
pub fn join_inside(base: &Path, rel: &str) -> Option<PathBuf> {
    let mut out = base.to_path_buf();
    out.extend(collapse(rel)?);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapses_and_refuses_what_leaves() {
        assert_eq!(collapse("a/./b//c/.."), Some(vec!["a", "b"]));
        assert_eq!(collapse("a/.."), Some(vec![]));
        assert_eq!(collapse(""), Some(vec![]));
        assert_eq!(collapse(".."), None);
        assert_eq!(collapse("a/../../b"), None);
        assert_eq!(collapse("/etc"), None);
    }

    #[test]
    fn joins_below_the_base_only() {
        let base = Path::new("/w");
        assert_eq!(join_inside(base, "x/../y"), Some(PathBuf::from("/w/y")));
        assert_eq!(join_inside(base, "."), Some(PathBuf::from("/w")));
        assert_eq!(join_inside(base, "../w/y"), None);
    }
}
