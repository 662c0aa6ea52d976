//! A pairing ticket: everything a device needs to reach the inviting one across networks and
//! prove it was invited — the inviter's device id (its iroh endpoint id), its relays, its
//! direct addresses, a one-time secret and when the invitation expires.
//!
//! Text form: `rrt1` followed by the unpadded base32 (RFC 4648, lowercase) of the ticket's
//! postcard encoding (PROTOCOL.md, section 9). Base32 so that it survives a terminal, a chat
//! window and a QR code's alphanumeric mode alike.

use std::{fmt, net::SocketAddr, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::identity::DeviceId;

/// What every ticket's text starts with (`1`: this version of the encoding).
pub(crate) const PREFIX: &str = "rrt1";
/// The alphabet of the text after the prefix.
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
/// The longest ticket text accepted (one with a relay and an address is about 200 characters).
const MAX_TEXT: usize = 4096;

/// A one-time invitation to pair with a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// The inviting device (its 32 key bytes on the wire, not the 64 hex digits).
    #[serde(with = "key_bytes")]
    pub device: DeviceId,
    /// Relay URLs the inviter is reachable through.
    pub relays: Vec<String>,
    /// Addresses the inviter's wide-area endpoint listens on.
    pub addrs: Vec<SocketAddr>,
    /// The one-time secret the joiner proves it holds.
    pub secret: [u8; 16],
    /// When the invitation expires, milliseconds since the Unix epoch.
    pub expires_ms: u64,
}

/// A ticket text that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadTicket {
    /// It does not start with `rrt1`.
    #[error("a ticket starts with `{PREFIX}` (as `rrt invite` prints it)")]
    Prefix,
    /// It is longer than any ticket.
    #[error("a ticket is at most {MAX_TEXT} characters")]
    TooLong,
    /// A character outside base32, or a cut-off text.
    #[error("the ticket is damaged: not base32 after `{PREFIX}` (copied in part?)")]
    Encoding,
    /// The bytes do not make a ticket.
    #[error("the ticket is damaged: its contents do not decode ({0})")]
    Contents(String),
}

impl fmt::Display for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Serializing owned, plain data to a Vec cannot fail.
        let bytes = postcard::to_allocvec(self).map_err(|_| fmt::Error)?;
        f.write_str(PREFIX)?;
        f.write_str(&base32(&bytes))
    }
}

impl FromStr for Ticket {
    type Err = BadTicket;

    fn from_str(text: &str) -> Result<Self, BadTicket> {
        let text = text.trim();
        if text.len() > MAX_TEXT {
            return Err(BadTicket::TooLong);
        }
        let body = text
            .get(..PREFIX.len())
            .filter(|prefix| prefix.eq_ignore_ascii_case(PREFIX))
            .and_then(|_| text.get(PREFIX.len()..))
            .ok_or(BadTicket::Prefix)?;
        let bytes = from_base32(body).ok_or(BadTicket::Encoding)?;
        postcard::from_bytes(&bytes).map_err(|error| BadTicket::Contents(error.to_string()))
    }
}

/// A device id as its 32 raw bytes, which keeps a ticket short.
mod key_bytes {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::identity::DeviceId;

    pub(super) fn serialize<S: Serializer>(id: &DeviceId, to: S) -> Result<S::Ok, S::Error> {
        id.as_bytes().serialize(to)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(from: D) -> Result<DeviceId, D::Error> {
        <[u8; 32]>::deserialize(from).map(DeviceId::from_bytes)
    }
}

fn base32(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            text.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        text.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    text
}

fn from_base32(text: &str) -> Option<Vec<u8>> {
    let mut bytes = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for character in text.bytes() {
        let value = BASE32
            .iter()
            .position(|&c| c == character.to_ascii_lowercase())?;
        buffer = (buffer << 5) | value as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            bytes.push((buffer >> bits) as u8);
        }
        buffer &= (1 << bits) - 1;
    }
    // Leftover bits are padding: fewer than 5, and zero.
    (bits < 5 && buffer == 0).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket() -> Ticket {
        Ticket {
            device: DeviceId::from_bytes([7; 32]),
            relays: vec!["https://relay.example:443/".to_owned()],
            addrs: vec!["198.18.1.2:4000".parse().expect("address")],
            secret: [9; 16],
            expires_ms: 1_800_000_000_000,
        }
    }

    #[test]
    fn a_ticket_round_trips_through_its_text_in_either_case() {
        let text = ticket().to_string();
        assert!(text.starts_with(PREFIX));
        assert!(text.len() < 160, "{} characters", text.len());
        assert_eq!(text.parse::<Ticket>(), Ok(ticket()));
        assert_eq!(text.to_uppercase().parse::<Ticket>(), Ok(ticket()));
        assert_eq!(format!("  {text}\n").parse::<Ticket>(), Ok(ticket()));
    }

    #[test]
    fn damaged_tickets_get_typed_errors() {
        let text = ticket().to_string();
        assert_eq!("hello".parse::<Ticket>(), Err(BadTicket::Prefix));
        assert_eq!(
            format!("{text}!").parse::<Ticket>(),
            Err(BadTicket::Encoding)
        );
        assert!(matches!(
            text[..text.len() / 2].parse::<Ticket>(),
            Err(BadTicket::Encoding | BadTicket::Contents(_))
        ));
        assert_eq!(
            format!("{PREFIX}{}", "a".repeat(MAX_TEXT)).parse::<Ticket>(),
            Err(BadTicket::TooLong)
        );
    }

    #[test]
    fn base32_matches_rfc_4648() {
        // RFC 4648 § 10, lowercase, without padding.
        for (plain, encoded) in [
            ("", ""),
            ("f", "my"),
            ("fo", "mzxq"),
            ("foo", "mzxw6"),
            ("foob", "mzxw6yq"),
            ("fooba", "mzxw6ytb"),
            ("foobar", "mzxw6ytboi"),
        ] {
            assert_eq!(base32(plain.as_bytes()), encoded);
            assert_eq!(from_base32(encoded).as_deref(), Some(plain.as_bytes()));
        }
    }
}
