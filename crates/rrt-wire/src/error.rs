//! The error of a connection as a whole, for the drivers.

use std::{io, time::Duration};

use crate::{frame::FrameError, payload::EncodeError, preamble::PreambleError};

/// Why a connection failed. Every variant ends the connection, except [`WireError::Encode`]
/// (only that message was refused).
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The peer's preamble was refused.
    #[error("handshake refused: {0}")]
    Preamble(#[from] PreambleError),
    /// The preambles were not exchanged within the deadline.
    #[error("handshake not completed within {0:?}")]
    HandshakeTimedOut(Duration),
    /// The stream broke the framing (oversize, stalled, truncated).
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A message to send could not be encoded; nothing was sent.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The peer closed the connection cleanly (between frames).
    #[error("the peer closed the connection")]
    Closed,
    /// The socket failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}
