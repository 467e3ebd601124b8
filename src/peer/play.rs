//! `play`: on the first play of an installed game, stamp the launch settings
//! (account name, language, the emulator's `PersonaName`) into `local/`,
//! then record that in a marker so later plays never rewrite them.

use crate::peer::{Node, Operation};
use crate::protocol::control::CommandError;
use crate::protocol::control::ErrorCode;
use anyhow::{Context, Result};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const ACCOUNT_NAME: &str = "profiles/local/account_name.txt";
const LANGUAGE: &str = "profiles/local/language.txt";
/// The Steam emulator's settings file, found anywhere below `local/`.
const PERSONA_INI: &str = "SmartSteamEmu.ini";

/// What a play changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    pub already_applied: bool,
    pub account_name_written: bool,
    pub language_written: bool,
    pub persona_name_written: bool,
}

pub fn marker_path(state_dir: &Path, game_id: &str) -> PathBuf {
    crate::protocol::layout::first_play_marker(state_dir, game_id)
}

/// The `play` command.
pub fn play(
    node: &Node,
    game_id: &str,
    username: &str,
    language: &str,
) -> Result<Value, CommandError> {
    crate::protocol::layout::check_game_id(game_id)
        .map_err(|e| CommandError::new(ErrorCode::BadRequest, e.to_string()))?;
    for (what, value) in [("username", username), ("language", language)] {
        // One line of a settings file: no line breaks, nothing empty.
        if value.trim().is_empty() || value.contains(['\r', '\n', '\0']) {
            return Err(CommandError::new(
                ErrorCode::BadRequest,
                format!("{what} must be non-empty text on one line"),
            ));
        }
    }
    // Claimed first, so an uninstall cannot remove local/ under the walk;
    // the walk and writes run off the async workers.
    let claim = node.begin_operation(game_id, Operation::Launching)?;
    let result = tokio::task::block_in_place(|| {
        let local = crate::peer::install::installed_local_dir(node, game_id)?;
        apply_once(
            &local,
            &marker_path(&node.state_dir, game_id),
            username,
            language,
        )
        .map_err(|e| CommandError::new(ErrorCode::PlayFailed, format!("{e:#}")))
    });
    drop(claim);
    let outcome = result?;
    Ok(json!({
        "game_id": game_id,
        "outcome": {
            "already_applied": outcome.already_applied,
            "account_name_written": outcome.account_name_written,
            "language_written": outcome.language_written,
            "persona_name_written": outcome.persona_name_written,
        }
    }))
}

/// Applies the launch settings unless `marker` exists, then writes it.
/// Only files the game ships are stamped; none is created.
pub fn apply_once(local: &Path, marker: &Path, username: &str, language: &str) -> Result<Outcome> {
    if marker.exists() {
        return Ok(Outcome {
            already_applied: true,
            ..Outcome::default()
        });
    }
    let account_name_written = overwrite_if_present(&local.join(ACCOUNT_NAME), username)?;
    let language_written = overwrite_if_present(&local.join(LANGUAGE), language)?;
    let mut persona_name_written = false;
    for entry in walkdir::WalkDir::new(local).sort_by_file_name() {
        let entry = entry.with_context(|| format!("walking {}", local.display()))?;
        if entry.file_type().is_file() && entry.file_name().eq_ignore_ascii_case(PERSONA_INI) {
            persona_name_written |= stamp_persona(entry.path(), username)?;
        }
    }
    if let Some(dir) = marker.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(marker, b"").with_context(|| format!("writing marker {}", marker.display()))?;
    Ok(Outcome {
        already_applied: false,
        account_name_written,
        language_written,
        persona_name_written,
    })
}

fn overwrite_if_present(path: &Path, value: &str) -> Result<bool> {
    if !path.is_file() {
        return Ok(false);
    }
    std::fs::write(path, value).with_context(|| format!("writing {}", path.display()))?;
    Ok(true)
}

/// Replaces the value of every `PersonaName = …` line, keeping each line's
/// ending (CRLF or LF) and every other line byte for byte.
fn stamp_persona(path: &Path, username: &str) -> Result<bool> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let (stamped, changed) = set_persona(&text, username);
    if changed {
        std::fs::write(path, stamped).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(changed)
}

fn set_persona(text: &str, username: &str) -> (String, bool) {
    let mut out = String::with_capacity(text.len() + username.len());
    let mut changed = false;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        let ending = &line[body.len()..];
        let is_persona = body
            .split_once('=')
            .is_some_and(|(key, _)| key.trim().eq_ignore_ascii_case("PersonaName"));
        if is_persona {
            let (key, _) = body.split_once('=').unwrap_or((body, ""));
            out.push_str(key.trim_end());
            out.push_str(" = ");
            out.push_str(username);
            out.push_str(ending);
            changed = true;
        } else {
            out.push_str(line);
        }
    }
    (out, changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persona_line_is_replaced_with_crlf_and_siblings_kept() {
        let ini = "[Settings]\r\nAppId = 240\r\nPersonaName = stubplayer\r\nLanguage = english\r\n";
        let (out, changed) = set_persona(ini, "alice");
        assert!(changed);
        assert_eq!(
            out,
            "[Settings]\r\nAppId = 240\r\nPersonaName = alice\r\nLanguage = english\r\n"
        );
        let (same, changed) = set_persona("[S]\nName = x\n", "alice");
        assert!(!changed);
        assert_eq!(same, "[S]\nName = x\n");
    }

    #[test]
    fn settings_are_applied_once() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let local = dir.path().join("local");
        std::fs::create_dir_all(local.join("profiles/local"))?;
        std::fs::create_dir_all(local.join("a/b"))?;
        std::fs::write(local.join(ACCOUNT_NAME), "stub")?;
        std::fs::write(
            local.join("a/b/SmartSteamEmu.ini"),
            "PersonaName = stub\r\n",
        )?;
        let marker = dir.path().join("state/games/g/launch_settings_applied");
        let first = apply_once(&local, &marker, "alice", "german")?;
        assert_eq!(
            first,
            Outcome {
                already_applied: false,
                account_name_written: true,
                language_written: false,
                persona_name_written: true,
            }
        );
        assert_eq!(std::fs::read_to_string(local.join(ACCOUNT_NAME))?, "alice");
        assert!(
            !local.join(LANGUAGE).exists(),
            "a missing stub is not created"
        );
        std::fs::write(local.join(ACCOUNT_NAME), "stub")?;
        let second = apply_once(&local, &marker, "bob", "french")?;
        assert!(second.already_applied);
        assert_eq!(std::fs::read_to_string(local.join(ACCOUNT_NAME))?, "stub");
        Ok(())
    }
}
