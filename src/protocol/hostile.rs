//! The lies a hostile test peer can tell (`peer --hostile LIE`, the
//! checker's `hostilePeer{ behaviour = … }`): their names only, shared by
//! both halves. What each lie does is `peer::hostile`; what a receiver does
//! against it is docs/PROTOCOL.md, "Hostile sources".

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// One way a hostile peer breaks the wire protocol while speaking it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Lie {
    /// Right sizes and digests, wrong bytes in every chunk.
    WrongBytes,
    /// Digests that do not match its own (good) bytes.
    WrongDigests,
    /// Announces a chunk's full length, sends half of it and ends the stream.
    ShortChunk,
    /// Announces a chunk's length and sends more bytes than that.
    LongChunk,
    /// Sends part of a chunk, then nothing, keeping the stream and the
    /// connection open.
    Stall,
    /// File lists with `../`, absolute and `local/` paths.
    EscapePaths,
    /// File lists with sizes near 2^63 (first answer), then with more
    /// descriptors than a receiver takes (every later answer).
    HugeSizes,
    /// Malformed frames after its hello: in every answer, then on its
    /// announce stream.
    Garbage,
    /// Claims another peer's ID in its hello (`--impersonate ID`).
    Impersonate,
}

impl Lie {
    pub const ALL: &[Lie] = &[
        Lie::WrongBytes,
        Lie::WrongDigests,
        Lie::ShortChunk,
        Lie::LongChunk,
        Lie::Stall,
        Lie::EscapePaths,
        Lie::HugeSizes,
        Lie::Garbage,
        Lie::Impersonate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Lie::WrongBytes => "wrong-bytes",
            Lie::WrongDigests => "wrong-digests",
            Lie::ShortChunk => "short-chunk",
            Lie::LongChunk => "long-chunk",
            Lie::Stall => "stall",
            Lie::EscapePaths => "escape-paths",
            Lie::HugeSizes => "huge-sizes",
            Lie::Garbage => "garbage",
            Lie::Impersonate => "impersonate",
        }
    }

    /// Parses a lie's name (the `--hostile` value).
    pub fn parse(name: &str) -> Result<Lie> {
        match Lie::ALL.iter().find(|l| l.as_str() == name) {
            Some(l) => Ok(*l),
            None => bail!(
                "unknown hostile behaviour {name:?} (one of {})",
                Lie::ALL
                    .iter()
                    .map(|l| l.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

impl std::fmt::Display for Lie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_agree_with_serde() -> Result<()> {
        for lie in Lie::ALL {
            assert_eq!(Lie::parse(lie.as_str())?, *lie);
            assert_eq!(serde_json::to_value(lie)?, lie.as_str());
        }
        let err = Lie::parse("polite").expect_err("not a lie");
        assert!(err.to_string().contains("wrong-bytes"), "{err}");
        Ok(())
    }
}
