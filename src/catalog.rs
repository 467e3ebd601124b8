//! The catalog (`game.db`, SQLite): which game IDs exist, their names and the
//! one version this peer accepts. The receiver's catalog is authoritative.

use anyhow::{Context, Result, bail};
use rusqlite::Connection;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The checked-in catalog source, compiled in so that a peer started without
/// `--catalog` (and the checker, which writes `game.db` for its peers) needs no
/// file from the source tree at run time.
pub const BUILTIN_SOURCE: &str = include_str!("../fixtures/catalog.json");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogGame {
    pub id: String,
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    games: BTreeMap<String, CatalogGame>,
}

const SCHEMA: &str =
    "CREATE TABLE games (id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL)";

impl Catalog {
    /// Opens a `game.db` file.
    pub fn open(path: &Path) -> Result<Self> {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
        let conn = Connection::open_with_flags(path, flags)
            .with_context(|| format!("opening catalog {}", path.display()))?;
        Self::read(&conn).with_context(|| format!("reading catalog {}", path.display()))
    }

    /// The compiled-in catalog, loaded through SQLite like a real `game.db`.
    pub fn builtin() -> Result<Self> {
        let conn = Connection::open_in_memory()?;
        fill(&conn, &parse_source(BUILTIN_SOURCE)?)?;
        Self::read(&conn)
    }

    fn read(conn: &Connection) -> Result<Self> {
        let mut stmt = conn.prepare("SELECT id, name, version FROM games")?;
        let rows = stmt.query_map([], |r| {
            Ok(CatalogGame {
                id: r.get(0)?,
                name: r.get(1)?,
                version: r.get(2)?,
            })
        })?;
        let mut games = BTreeMap::new();
        for row in rows {
            let game = row?;
            games.insert(game.id.clone(), game);
        }
        Ok(Self { games })
    }

    pub fn get(&self, id: &str) -> Option<&CatalogGame> {
        self.games.get(id)
    }

    /// The version the catalog expects for `id`, if the ID is known.
    pub fn version(&self, id: &str) -> Option<&str> {
        self.games.get(id).map(|g| g.version.as_str())
    }

    pub fn len(&self) -> usize {
        self.games.len()
    }

    pub fn is_empty(&self) -> bool {
        self.games.is_empty()
    }
}

/// Parses a catalog source (JSON array of `{id, name, version}`).
pub fn parse_source(text: &str) -> Result<Vec<CatalogGame>> {
    let games: Vec<CatalogGame> = serde_json::from_str(text).context("parsing catalog source")?;
    for g in &games {
        if g.version.len() != 8 || !g.version.bytes().all(|b| b.is_ascii_digit()) {
            bail!(
                "catalog game {}: version {:?} is not YYYYMMDD",
                g.id,
                g.version
            );
        }
    }
    Ok(games)
}

fn fill(conn: &Connection, games: &[CatalogGame]) -> Result<()> {
    conn.execute(SCHEMA, [])?;
    let mut stmt = conn.prepare("INSERT INTO games (id, name, version) VALUES (?1, ?2, ?3)")?;
    for g in games {
        stmt.execute((&g.id, &g.name, &g.version))
            .with_context(|| format!("inserting catalog game {}", g.id))?;
    }
    Ok(())
}

/// Writes a fresh `game.db` at `out` from catalog source text.
pub fn write_db(source: &str, out: &Path) -> Result<()> {
    let games = parse_source(source)?;
    if out.exists() {
        std::fs::remove_file(out).with_context(|| format!("replacing {}", out.display()))?;
    }
    let conn = Connection::open(out).with_context(|| format!("creating {}", out.display()))?;
    fill(&conn, &games)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_holds_the_ten_reference_games() -> Result<()> {
        let c = Catalog::builtin()?;
        assert_eq!(c.len(), 10);
        assert_eq!(c.version("cnc4"), Some("20170204"));
        assert_eq!(c.version("css"), Some("20240623"));
        assert_eq!(c.version("mystery-game"), None);
        Ok(())
    }

    #[test]
    fn written_db_round_trips() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("game.db");
        write_db(BUILTIN_SOURCE, &db)?;
        let c = Catalog::open(&db)?;
        assert_eq!(c.version("ggoo"), Some("20200721"));
        assert_eq!(
            c.get("coh").map(|g| g.name.as_str()),
            Some("Company of Heroes")
        );
        Ok(())
    }

    #[test]
    fn bad_versions_are_rejected() {
        let err = parse_source(r#"[{"id":"x","name":"X","version":"2020"}]"#);
        assert!(err.is_err());
    }
}
