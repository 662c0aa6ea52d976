//! What one side of a connection wants and accepts.

use std::time::Duration;

use crate::{
    frame::DEFAULT_MAX_FRAME,
    preamble::{Compression, Format, Preamble},
};

/// One side's settings for a connection; [`WireConfig::default`] dials with JSON and no
/// compression, accepts whatever compression a dialer proposes, and allows 10 MiB frames, 5 s for
/// the handshake and 10 s to finish a started frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireConfig {
    /// The payload format a dialer proposes (an acceptor follows the dialer).
    pub format: Format,
    /// The compression a dialer proposes.
    pub compression: Compression,
    /// Whether an acceptor agrees to the compression a dialer proposes (any this version knows);
    /// when not, it answers "none". Compression costs the sender, so the dialer — which knows
    /// what the link is — decides whether it pays; an acceptor has no reason to refuse.
    pub accept_compression: bool,
    /// The largest frame payload this side accepts (and the largest decompressed payload).
    pub max_frame: u32,
    /// Payloads smaller than this are never compressed.
    pub compression_threshold: usize,
    /// The time allowed for both preambles to be exchanged.
    pub handshake_timeout: Duration,
    /// The time allowed between a frame's first byte and its last.
    pub frame_timeout: Duration,
}

impl Default for WireConfig {
    fn default() -> Self {
        Self {
            format: Format::Json,
            compression: Compression::None,
            accept_compression: true,
            max_frame: DEFAULT_MAX_FRAME,
            compression_threshold: 512,
            handshake_timeout: Duration::from_secs(5),
            frame_timeout: Duration::from_secs(10),
        }
    }
}

impl WireConfig {
    /// This side's preamble.
    pub fn preamble(&self) -> Preamble {
        Preamble {
            format: self.format,
            compression: self.compression,
            max_frame: self.max_frame,
        }
    }
}
