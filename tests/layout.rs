//! The house rules that the compiler does not enforce: the checker and the
//! peer never import each other, and `protocol/` and the leaf modules import
//! neither. What both halves speak lives in `protocol/` (DESIGN.md).

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
    out
}

/// Lines of `files` that name a path starting with one of `forbidden`.
fn offending(files: &[PathBuf], forbidden: &[&str]) -> Vec<String> {
    let mut bad = Vec::new();
    for file in files {
        let text =
            std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if forbidden.iter().any(|f| code.contains(f)) {
                bad.push(format!("{}:{}: {}", file.display(), i + 1, line.trim()));
            }
        }
    }
    bad
}

fn src(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(rel)
}

#[test]
fn the_checker_never_imports_the_peer() {
    let bad = offending(&rust_files(&src("checker")), &["crate::peer"]);
    assert!(
        bad.is_empty(),
        "checker/ imports peer/:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_peer_never_imports_the_checker() {
    let bad = offending(&rust_files(&src("peer")), &["crate::checker"]);
    assert!(
        bad.is_empty(),
        "peer/ imports checker/:\n{}",
        bad.join("\n")
    );
}

#[test]
fn protocol_and_leaves_import_neither_half() {
    let mut files = rust_files(&src("protocol"));
    files.extend(rust_files(&src("rar")));
    for leaf in [
        "catalog.rs",
        "manifest.rs",
        "redirect.rs",
        "units.rs",
        "fixtures.rs",
    ] {
        files.push(src(leaf));
    }
    let bad = offending(&files, &["crate::peer", "crate::checker"]);
    assert!(
        bad.is_empty(),
        "a shared module imports a half:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_rule_sees_an_import() {
    // The scan must be able to fail: a file that imports across is caught.
    let dir = std::env::temp_dir().join(format!("layout-rule-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let file = dir.join("x.rs");
    std::fs::write(
        &file,
        "use crate::peer::Node; // a leak\n// crate::peer in a comment\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let bad = offending(&[file], &["crate::peer"]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(bad.len(), 1, "{bad:?}");
}
