//! The 16-byte preamble each side sends before any frame, and how the two are reconciled.
//!
//! ```text
//! offset  size  field
//!  0      8     magic 0xACED_FACE_BABE_CAFE, big-endian
//!  8      2     protocol version, big-endian (1)
//! 10      1     payload format: 1 = JSON, 2 = MessagePack
//! 11      1     compression: 0 = none, 1 = LZ4
//! 12      4     largest frame payload the sender accepts, big-endian
//! ```
//!
//! The dialer proposes; the acceptor answers with the format it was asked for and the
//! compression if it allows it (none otherwise), and each side then sends frames no larger than
//! the other accepts.

use std::fmt;

/// The magic number that opens every connection.
pub const MAGIC: u64 = 0xACED_FACE_BABE_CAFE;

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// Bytes of a preamble.
pub const PREAMBLE_LEN: usize = 16;

/// How message payloads are serialized on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// UTF-8 JSON, the design document's shapes: readable with `jq`, writable with `socat`.
    #[default]
    Json,
    /// MessagePack with named fields: smaller and faster, still self-describing.
    MessagePack,
}

/// Whether frame payloads may be compressed on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// Payloads are the serialized message as is.
    #[default]
    None,
    /// Payloads carry a one-byte tag; those above the size threshold are LZ4 blocks.
    Lz4,
}

impl Format {
    fn code(self) -> u8 {
        match self {
            Self::Json => 1,
            Self::MessagePack => 2,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Json),
            2 => Some(Self::MessagePack),
            _ => None,
        }
    }
}

impl Compression {
    fn code(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Lz4 => 1,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::None),
            1 => Some(Self::Lz4),
            _ => None,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Json => "json",
            Self::MessagePack => "msgpack",
        })
    }
}

/// A preamble that cannot start a connection. Nothing was sent or decoded after it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreambleError {
    /// The first 8 bytes are not our magic: the peer does not speak this protocol.
    #[error("not an rrt peer: magic {found:#018x}, expected {MAGIC:#018x}")]
    BadMagic {
        /// The 8 bytes received, as a big-endian number.
        found: u64,
    },
    /// The peer speaks another version of the protocol.
    #[error("protocol version {theirs} is not supported (this side speaks {ours})")]
    UnsupportedVersion {
        /// Ours.
        ours: u16,
        /// The peer's.
        theirs: u16,
    },
    /// The format byte names no format this version knows.
    #[error("unknown payload format {0}")]
    UnknownFormat(u8),
    /// The compression byte names no compression this version knows.
    #[error("unknown compression {0}")]
    UnknownCompression(u8),
    /// The acceptor answered with another format than the one proposed.
    #[error("proposed {proposed} payloads, the peer answered {answered}")]
    FormatRefused {
        /// What the dialer proposed.
        proposed: Format,
        /// What the acceptor answered.
        answered: Format,
    },
    /// The acceptor answered with compression the dialer did not propose.
    #[error("the peer chose compression {0:?} that was not proposed")]
    CompressionRefused(Compression),
    /// The peer accepts no frame large enough for a useful message.
    #[error("the peer's frame limit of {0} bytes is below the minimum of {MIN_FRAME_LIMIT}")]
    FrameLimitTooSmall(u32),
}

/// The smallest frame limit a peer may announce (a handshake-sized message must fit).
pub const MIN_FRAME_LIMIT: u32 = 1024;

/// One side's preamble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preamble {
    /// The payload format.
    pub format: Format,
    /// The compression.
    pub compression: Compression,
    /// The largest frame payload the sender accepts.
    pub max_frame: u32,
}

impl Preamble {
    /// The 16 bytes on the wire.
    pub fn encode(&self) -> [u8; PREAMBLE_LEN] {
        let mut bytes = [0; PREAMBLE_LEN];
        bytes[..8].copy_from_slice(&MAGIC.to_be_bytes());
        bytes[8..10].copy_from_slice(&PROTOCOL_VERSION.to_be_bytes());
        bytes[10] = self.format.code();
        bytes[11] = self.compression.code();
        bytes[12..].copy_from_slice(&self.max_frame.to_be_bytes());
        bytes
    }

    /// Parses and checks a peer's 16 bytes: magic first, then version, then the fields.
    pub fn decode(bytes: &[u8; PREAMBLE_LEN]) -> Result<Self, PreambleError> {
        let [
            m0,
            m1,
            m2,
            m3,
            m4,
            m5,
            m6,
            m7,
            v0,
            v1,
            format,
            compression,
            l0,
            l1,
            l2,
            l3,
        ] = *bytes;
        let magic = u64::from_be_bytes([m0, m1, m2, m3, m4, m5, m6, m7]);
        if magic != MAGIC {
            return Err(PreambleError::BadMagic { found: magic });
        }
        let version = u16::from_be_bytes([v0, v1]);
        if version != PROTOCOL_VERSION {
            return Err(PreambleError::UnsupportedVersion {
                ours: PROTOCOL_VERSION,
                theirs: version,
            });
        }
        let max_frame = u32::from_be_bytes([l0, l1, l2, l3]);
        if max_frame < MIN_FRAME_LIMIT {
            return Err(PreambleError::FrameLimitTooSmall(max_frame));
        }
        Ok(Self {
            format: Format::from_code(format).ok_or(PreambleError::UnknownFormat(format))?,
            compression: Compression::from_code(compression)
                .ok_or(PreambleError::UnknownCompression(compression))?,
            max_frame,
        })
    }

    /// The acceptor's answer to a dialer's proposal: the format proposed, the compression
    /// proposed if the acceptor allows compression (none otherwise), and the acceptor's own
    /// frame limit.
    pub fn answer(&self, max_frame: u32, allow_compression: bool) -> Preamble {
        Preamble {
            format: self.format,
            compression: if allow_compression {
                self.compression
            } else {
                Compression::None
            },
            max_frame,
        }
    }

    /// The dialer checks the acceptor's answer to its proposal `self`.
    pub fn check_answer(&self, answer: &Preamble) -> Result<(), PreambleError> {
        if answer.format != self.format {
            return Err(PreambleError::FormatRefused {
                proposed: self.format,
                answered: answer.format,
            });
        }
        if answer.compression != Compression::None && answer.compression != self.compression {
            return Err(PreambleError::CompressionRefused(answer.compression));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preamble(format: Format, compression: Compression) -> Preamble {
        Preamble {
            format,
            compression,
            max_frame: 10 * 1024 * 1024,
        }
    }

    #[test]
    fn the_documented_bytes() {
        let bytes = preamble(Format::Json, Compression::None).encode();
        assert_eq!(
            bytes,
            [
                0xAC, 0xED, 0xFA, 0xCE, 0xBA, 0xBE, 0xCA, 0xFE, 0x00, 0x01, 0x01, 0x00, 0x00, 0xA0,
                0x00, 0x00
            ]
        );
        assert_eq!(
            Preamble::decode(&bytes),
            Ok(preamble(Format::Json, Compression::None))
        );
    }

    #[test]
    fn bad_magic_is_named() {
        let mut bytes = preamble(Format::Json, Compression::None).encode();
        bytes[..8].copy_from_slice(b"GET / HT");
        assert!(matches!(
            Preamble::decode(&bytes),
            Err(PreambleError::BadMagic { .. })
        ));
    }

    #[test]
    fn another_version_is_named_with_both_numbers() {
        let mut bytes = preamble(Format::Json, Compression::None).encode();
        bytes[8..10].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(
            Preamble::decode(&bytes),
            Err(PreambleError::UnsupportedVersion { ours: 1, theirs: 7 })
        );
    }

    #[test]
    fn unknown_codes_and_tiny_limits_are_refused() {
        let mut bytes = preamble(Format::Json, Compression::None).encode();
        bytes[10] = 9;
        assert_eq!(
            Preamble::decode(&bytes),
            Err(PreambleError::UnknownFormat(9))
        );
        bytes[10] = 1;
        bytes[11] = 9;
        assert_eq!(
            Preamble::decode(&bytes),
            Err(PreambleError::UnknownCompression(9))
        );
        let mut tiny = preamble(Format::Json, Compression::None);
        tiny.max_frame = 10;
        assert_eq!(
            Preamble::decode(&tiny.encode()),
            Err(PreambleError::FrameLimitTooSmall(10))
        );
    }

    #[test]
    fn the_acceptor_grants_compression_only_when_it_allows_it() {
        let proposal = preamble(Format::MessagePack, Compression::Lz4);
        let answer = proposal.answer(4096, false);
        assert_eq!(answer.format, Format::MessagePack);
        assert_eq!(answer.compression, Compression::None);
        assert_eq!(answer.max_frame, 4096);
        assert_eq!(proposal.check_answer(&answer), Ok(()));
        let granted = proposal.answer(4096, true);
        assert_eq!(granted.compression, Compression::Lz4);
        assert_eq!(proposal.check_answer(&granted), Ok(()));
        let plain = preamble(Format::Json, Compression::None);
        assert_eq!(plain.answer(4096, true).compression, Compression::None);
    }

    #[test]
    fn the_dialer_refuses_an_answer_it_did_not_ask_for() {
        let proposal = preamble(Format::Json, Compression::None);
        assert!(matches!(
            proposal.check_answer(&preamble(Format::MessagePack, Compression::None)),
            Err(PreambleError::FormatRefused { .. })
        ));
        assert_eq!(
            proposal.check_answer(&preamble(Format::Json, Compression::Lz4)),
            Err(PreambleError::CompressionRefused(Compression::Lz4))
        );
    }
}
