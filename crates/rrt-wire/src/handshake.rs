//! The handshake as a pure function of the preambles: who sends what, and what was agreed.
//!
//! ```text
//! dialer                               acceptor
//!   ── preamble (proposal) ──────────▶   check magic, version; answer
//!   ◀──────────── preamble (answer) ──   (sent even on a version mismatch, so both sides
//!   check the answer                      log the same clear error)
//! ```
//!
//! The drivers (blocking, tokio, and the reactor's [`Session`](crate::Session)) only move the 16
//! bytes each way and keep the deadline.

use crate::{
    config::WireConfig,
    preamble::{Compression, Format, PREAMBLE_LEN, Preamble, PreambleError},
};

/// Which side of the connection this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Opened the connection; proposes format and compression.
    Dialer,
    /// Accepted it; follows the proposal within what it allows.
    Acceptor,
}

/// What both sides agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The payload format.
    pub format: Format,
    /// The compression in use.
    pub compression: Compression,
    /// The largest payload the peer accepts: never send more.
    pub peer_max_frame: u32,
}

/// The acceptor's reply to a proposal: the answer to send, and the outcome. On a version
/// mismatch the answer is still sent (carrying our version) so the dialer can report it too.
pub(crate) fn accept(
    config: &WireConfig,
    proposal: &[u8; PREAMBLE_LEN],
) -> (
    Option<[u8; PREAMBLE_LEN]>,
    Result<Negotiated, PreambleError>,
) {
    let ours = config.preamble();
    match Preamble::decode(proposal) {
        Ok(theirs) => {
            let answer = theirs.answer(config.max_frame, config.accept_compression);
            let negotiated = Negotiated {
                format: answer.format,
                compression: answer.compression,
                peer_max_frame: theirs.max_frame,
            };
            (Some(answer.encode()), Ok(negotiated))
        }
        Err(error @ PreambleError::BadMagic { .. }) => {
            tracing::warn!(%error, "refusing a connection: not an rrt peer");
            (None, Err(error))
        }
        Err(error) => {
            tracing::warn!(%error, "refusing a connection's preamble");
            (Some(ours.encode()), Err(error))
        }
    }
}

/// The dialer's check of the acceptor's answer.
pub(crate) fn conclude(
    config: &WireConfig,
    answer: &[u8; PREAMBLE_LEN],
) -> Result<Negotiated, PreambleError> {
    let answer = Preamble::decode(answer)
        .and_then(|answer| config.preamble().check_answer(&answer).map(|()| answer))
        .inspect_err(|error| tracing::warn!(%error, "the peer's handshake answer was refused"))?;
    Ok(Negotiated {
        format: answer.format,
        compression: answer.compression,
        peer_max_frame: answer.max_frame,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_agree_on_the_dialers_format_and_the_allowed_compression() {
        let dialer = WireConfig {
            format: Format::MessagePack,
            compression: Compression::Lz4,
            ..WireConfig::default()
        };
        let acceptor = WireConfig {
            max_frame: 4096,
            ..WireConfig::default()
        };
        let (answer, accepted) = accept(&acceptor, &dialer.preamble().encode());
        let accepted = accepted.expect("accepted");
        let concluded = conclude(&dialer, &answer.expect("answered")).expect("concluded");
        assert_eq!(accepted.format, Format::MessagePack);
        assert_eq!(accepted.compression, Compression::Lz4);
        assert_eq!(concluded.format, accepted.format);
        assert_eq!(concluded.compression, accepted.compression);
        assert_eq!(concluded.peer_max_frame, 4096);
        assert_eq!(accepted.peer_max_frame, dialer.max_frame);
    }

    #[test]
    fn an_acceptor_that_refuses_compression_answers_none_and_the_dialer_goes_on() {
        let dialer = WireConfig {
            compression: Compression::Lz4,
            ..WireConfig::default()
        };
        let acceptor = WireConfig {
            accept_compression: false,
            ..WireConfig::default()
        };
        let (answer, accepted) = accept(&acceptor, &dialer.preamble().encode());
        assert_eq!(accepted.expect("accepted").compression, Compression::None);
        let concluded = conclude(&dialer, &answer.expect("answered")).expect("concluded");
        assert_eq!(concluded.compression, Compression::None);
    }

    #[test]
    fn an_uncompressed_proposal_stays_uncompressed() {
        let (answer, accepted) = accept(
            &WireConfig::default(),
            &WireConfig::default().preamble().encode(),
        );
        assert_eq!(accepted.expect("accepted").compression, Compression::None);
        assert_eq!(answer.expect("answered")[11], 0);
    }

    #[test]
    fn a_version_mismatch_is_answered_and_reported_on_both_sides() {
        let config = WireConfig::default();
        let mut proposal = config.preamble().encode();
        proposal[8..10].copy_from_slice(&2u16.to_be_bytes());
        let (answer, accepted) = accept(&config, &proposal);
        assert_eq!(
            accepted,
            Err(PreambleError::UnsupportedVersion { ours: 1, theirs: 2 })
        );
        assert_eq!(answer, Some(config.preamble().encode()));
    }

    #[test]
    fn a_stranger_gets_no_answer() {
        let (answer, accepted) = accept(&WireConfig::default(), b"GET / HTTP/1.1\r\n");
        assert_eq!(answer, None);
        assert!(matches!(accepted, Err(PreambleError::BadMagic { .. })));
    }
}
