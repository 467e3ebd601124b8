//! The discovery beacon: what one UDP multicast datagram says.
//!
//! ```text
//! lanspread-discovery/1\n{"peer_id":"9bbd49754eff0d46b4a535639d4e4c63","port":47338}
//! ```
//!
//! The first line names the format and its version, so a peer can tell a
//! newer beacon from garbage without parsing it; the JSON body carries the
//! peer ID and its QUIC listener port. The listener's IP is not in it: a peer
//! listening on 0.0.0.0 does not know its LAN address, so the receiver takes
//! the datagram's source address.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The header line of every beacon of this version.
pub const HEADER: &str = "lanspread-discovery/1";
/// Family prefix of the header; another version after it is not garbage.
const FAMILY: &str = "lanspread-discovery/";
/// Larger datagrams are refused unread: ours are under 100 bytes.
pub const MAX_LEN: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Beacon {
    pub peer_id: String,
    /// The announcing peer's QUIC listener port.
    pub port: u16,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum BeaconError {
    #[error("datagram of {0} bytes is larger than a beacon ({MAX_LEN})")]
    TooLong(usize),
    #[error("not a lanspread discovery beacon")]
    NotABeacon,
    #[error("beacon of another version ({0:?})")]
    OtherVersion(String),
    #[error("beacon body: {0}")]
    BadBody(String),
    #[error("beacon peer_id {0:?} is not 32 hex digits")]
    BadPeerId(String),
    #[error("beacon names port 0")]
    ZeroPort,
}

impl Beacon {
    pub fn encode(&self) -> Vec<u8> {
        let body = serde_json::json!({ "peer_id": self.peer_id, "port": self.port });
        format!("{HEADER}\n{body}").into_bytes()
    }

    /// Parses one datagram; anything but a well-formed beacon of this
    /// version is an error saying what was wrong.
    pub fn parse(datagram: &[u8]) -> Result<Beacon, BeaconError> {
        if datagram.len() > MAX_LEN {
            return Err(BeaconError::TooLong(datagram.len()));
        }
        let text = std::str::from_utf8(datagram).map_err(|_| BeaconError::NotABeacon)?;
        let (header, body) = text.split_once('\n').unwrap_or((text, ""));
        if header != HEADER {
            return match header.strip_prefix(FAMILY) {
                Some(version) => Err(BeaconError::OtherVersion(
                    version.chars().take(16).collect(),
                )),
                None => Err(BeaconError::NotABeacon),
            };
        }
        let beacon: Beacon =
            serde_json::from_str(body).map_err(|e| BeaconError::BadBody(e.to_string()))?;
        // The same rule as identity::load_or_create applies to its own ID.
        if beacon.peer_id.len() != 32 || !beacon.peer_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            let shown: String = beacon.peer_id.chars().take(40).collect();
            return Err(BeaconError::BadPeerId(shown));
        }
        if beacon.port == 0 {
            return Err(BeaconError::ZeroPort);
        }
        Ok(beacon)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "9bbd49754eff0d46b4a535639d4e4c63";

    #[test]
    fn encoded_beacon_parses_back() -> Result<(), BeaconError> {
        let b = Beacon {
            peer_id: ID.into(),
            port: 47338,
        };
        let bytes = b.encode();
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            format!("lanspread-discovery/1\n{{\"peer_id\":\"{ID}\",\"port\":47338}}")
        );
        assert_eq!(Beacon::parse(&bytes)?, b);
        Ok(())
    }

    #[test]
    fn garbage_is_refused_with_its_reason() {
        let body = |s: &str| format!("{HEADER}\n{s}").into_bytes();
        type Expect = fn(&BeaconError) -> bool;
        let cases: Vec<(Vec<u8>, Expect)> = vec![
            (b"".to_vec(), |e| *e == BeaconError::NotABeacon),
            (vec![0xff, 0xfe, 0x00], |e| *e == BeaconError::NotABeacon),
            (b"hello world".to_vec(), |e| *e == BeaconError::NotABeacon),
            (b"lanspread-discovery/2\n{}".to_vec(), |e| {
                *e == BeaconError::OtherVersion("2".into())
            }),
            (vec![b'x'; MAX_LEN + 1], |e| {
                *e == BeaconError::TooLong(MAX_LEN + 1)
            }),
            (body("not json"), |e| matches!(e, BeaconError::BadBody(_))),
            (
                body(&format!(r#"{{"peer_id":"{ID}"}}"#)),
                |e| matches!(e, BeaconError::BadBody(m) if m.contains("port")),
            ),
            (
                body(&format!(r#"{{"peer_id":"{ID}","port":70000}}"#)),
                |e| matches!(e, BeaconError::BadBody(_)),
            ),
            (
                body(&format!(r#"{{"peer_id":"{ID}","port":1,"x":1}}"#)),
                |e| matches!(e, BeaconError::BadBody(m) if m.contains("unknown field")),
            ),
            (body(r#"{"peer_id":"abc","port":1}"#), |e| {
                matches!(e, BeaconError::BadPeerId(_))
            }),
            (
                body(r#"{"peer_id":"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz","port":1}"#),
                |e| matches!(e, BeaconError::BadPeerId(_)),
            ),
            (body(&format!(r#"{{"peer_id":"{ID}","port":0}}"#)), |e| {
                *e == BeaconError::ZeroPort
            }),
        ];
        for (bytes, expected) in cases {
            match Beacon::parse(&bytes) {
                Ok(b) => panic!("{:?} parsed as {b:?}", String::from_utf8_lossy(&bytes)),
                Err(e) => assert!(
                    expected(&e),
                    "{:?}: unexpected error {e:?}",
                    String::from_utf8_lossy(&bytes)
                ),
            }
        }
    }

    #[test]
    fn largest_allowed_datagram_is_still_read() {
        // Padding inside the JSON body keeps it well-formed at MAX_LEN bytes.
        let head = format!("{HEADER}\n{{\"peer_id\":\"{ID}\",\"port\":1}}");
        let padded = format!("{head}{}", " ".repeat(MAX_LEN - head.len()));
        assert_eq!(padded.len(), MAX_LEN);
        assert!(Beacon::parse(padded.as_bytes()).is_ok());
    }
}
