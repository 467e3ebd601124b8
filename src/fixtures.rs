//! The checked-in fixture game folders, generated deterministically
//! (`lanspread-checker fixtures build`). Every game root is `version.ini`
//! (the catalog version) plus `<id>.eti`, a real RAR5 archive of small
//! payload files. A test checks the checked-in bytes equal what this writes.
//!
//! `alienswarm` (a >100 MB `.eti` in the reference lab) is not generated;
//! scenarios that need a large archive build one at run time.

use crate::catalog;
use crate::rar::{self, Entry, Options};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// Which catalog games each fixture folder holds. alpha and bravo share
/// `ggoo`, bravo and charlie share `cnc4` (identical bytes in both).
const FOLDERS: &[(&str, &[&str])] = &[
    ("fixture-alpha", &["bf1942", "cod5", "ggoo"]),
    ("fixture-bravo", &["cnc4", "cnctw", "ggoo"]),
    ("fixture-charlie", &["bfbc2", "cnc4", "coh"]),
];

/// The launch-settings file `play` stamps, CRLF as shipped by the game.
pub const PERSONA_INI: &str = "engine/bin/win64/steam_settings/SmartSteamEmu.ini";
const PERSONA_INI_TEXT: &str =
    "[Settings]\r\nAppId = 240\r\nPersonaName = stubplayer\r\nLanguage = english\r\n";

/// Text of the one file in `archives/fixture-payload.eti`, the archive S33
/// swaps into a downloaded root before installing.
pub const MUTATED_PAYLOAD: &str = "mutated archive: installed from the current root bytes\n";

/// Size of each game's `bin/<id>-payload.bin`.
const PAYLOAD_BYTES: usize = 48 << 10;

/// Every fixture file: path relative to the fixtures folder → bytes.
pub fn all() -> Result<BTreeMap<String, Vec<u8>>> {
    let games = catalog::parse_source(catalog::BUILTIN_SOURCE)?;
    let version = |id: &str| -> Result<String> {
        games
            .iter()
            .find(|g| g.id == id)
            .map(|g| g.version.clone())
            .with_context(|| format!("fixture game {id} is not in fixtures/catalog.json"))
    };
    let mut out = BTreeMap::new();
    for (folder, ids) in FOLDERS {
        for id in *ids {
            out.insert(
                format!("{folder}/{id}/version.ini"),
                format!("{}\n", version(id)?).into_bytes(),
            );
            out.insert(format!("{folder}/{id}/{id}.eti"), game_archive(id)?);
        }
    }

    let mut css = payload_entries("css");
    css.extend([
        Entry::dir("engine"),
        Entry::dir("engine/bin"),
        Entry::dir("engine/bin/win64"),
        Entry::dir("engine/bin/win64/steam_settings"),
        Entry::file(PERSONA_INI, PERSONA_INI_TEXT),
        Entry::dir("profiles"),
        Entry::dir("profiles/local"),
        Entry::file("profiles/local/account_name.txt", "stubplayer"),
        Entry::file("profiles/local/language.txt", "english"),
    ]);
    out.insert(
        "fixture-persona/css/version.ini".into(),
        format!("{}\n", version("css")?).into_bytes(),
    );
    out.insert(
        "fixture-persona/css/css.eti".into(),
        rar::build(&css, &Options::default())?,
    );

    // Archives scenarios copy into roots: a different valid archive (S33)
    // and a valid archive cut in half (the bad-archive scenario).
    out.insert(
        "archives/fixture-payload.eti".into(),
        rar::build(
            &[Entry::file("fixture-payload.txt", MUTATED_PAYLOAD)],
            &Options::default(),
        )?,
    );
    let whole = game_archive("cnc4")?;
    out.insert(
        "archives/truncated.eti".into(),
        whole[..whole.len() / 2].to_vec(),
    );
    Ok(out)
}

/// A game's `.eti`: a solid archive, like the real ones.
fn game_archive(id: &str) -> Result<Vec<u8>> {
    rar::build(
        &payload_entries(id),
        &Options {
            solid: true,
            ..Options::default()
        },
    )
}

fn payload_entries(id: &str) -> Vec<Entry> {
    let assets: String = (0..64).map(|i| format!("{id} asset {i:03}\n")).collect();
    vec![
        Entry::dir("bin"),
        Entry::file(&format!("bin/{id}-payload.bin"), noise(id, PAYLOAD_BYTES)),
        Entry::dir("data"),
        Entry::file(&format!("data/{id}-assets.dat"), assets),
    ]
}

/// Deterministic bytes seeded by the game ID (xorshift64 over an FNV-1a seed).
fn noise(id: &str, len: usize) -> Vec<u8> {
    let mut x = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    }) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Writes every fixture file below `out` (existing files are replaced).
pub fn build(out: &Path) -> Result<usize> {
    let files = all()?;
    for (rel, bytes) in &files {
        let path = out.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(files.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn checked_in() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
    }

    /// `fixtures build` reproduces the checked-in fixtures byte for byte,
    /// and nothing else lives in the generated folders.
    #[test]
    fn build_reproduces_the_checked_in_fixtures() -> Result<()> {
        let tmp = tempfile::tempdir()?;
        build(tmp.path())?;
        let generated = all()?;
        let mut total = 0;
        for (rel, want) in &generated {
            let built = std::fs::read(tmp.path().join(rel))?;
            assert_eq!(&built, want, "{rel}: build wrote other bytes");
            let have = std::fs::read(checked_in().join(rel))
                .with_context(|| format!("{rel} is not checked in; run `fixtures build`"))?;
            assert!(
                have == *want,
                "fixtures/{rel} differs from `fixtures build`"
            );
            total += have.len();
        }
        let mut folders: Vec<&str> = FOLDERS.iter().map(|(f, _)| *f).collect();
        folders.extend(["fixture-persona", "archives"]);
        for folder in folders {
            for entry in walkdir::WalkDir::new(checked_in().join(folder)) {
                let entry = entry?;
                if entry.file_type().is_file() {
                    let rel = entry.path().strip_prefix(checked_in())?;
                    let rel = rel.to_string_lossy().replace('\\', "/");
                    assert!(generated.contains_key(&rel), "stray fixture file {rel}");
                }
            }
        }
        assert!(total < 5 << 20, "fixtures weigh {total} bytes");
        Ok(())
    }

    #[test]
    fn shared_games_are_identical_and_archives_extract() -> Result<()> {
        let files = all()?;
        assert_eq!(
            files["fixture-alpha/ggoo/ggoo.eti"],
            files["fixture-bravo/ggoo/ggoo.eti"]
        );
        assert_eq!(
            files["fixture-bravo/cnc4/cnc4.eti"],
            files["fixture-charlie/cnc4/cnc4.eti"]
        );
        let tmp = tempfile::tempdir()?;
        let arc = tmp.path().join("css.eti");
        std::fs::write(&arc, &files["fixture-persona/css/css.eti"])?;
        let mut archive = unrar::Archive::new(&arc).open_for_processing()?;
        while let Some(h) = archive.read_header()? {
            archive = h.extract_with_base(tmp.path().join("out"))?;
        }
        let ini = std::fs::read_to_string(tmp.path().join("out").join(PERSONA_INI))?;
        assert_eq!(ini, PERSONA_INI_TEXT);
        assert_eq!(
            std::fs::read(tmp.path().join("out/bin/css-payload.bin"))?.len(),
            PAYLOAD_BYTES
        );
        Ok(())
    }
}
