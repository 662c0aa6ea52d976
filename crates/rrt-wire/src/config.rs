//! What one side of a connection wants and accepts.

use std::time::Duration;

use crate::{
    frame::DEFAULT_MAX_FRAME,
    preamble::{Compression, Format, Preamble},
};

/// One side's settings for a connection; [`WireConfig::default`] is JSON, uncompressed, 10 MiB
/// frames, 5 s for the handshake and 10 s to finish a started frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireConfig {
    /// The payload format a dialer proposes (an acceptor follows the dialer).
    pub format: Format,
    /// The compression a dialer proposes, or an acceptor allows.
    pub compression: Compression,
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
