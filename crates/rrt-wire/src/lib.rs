#![doc = include_str!("../README.md")]
//!
//! # Layers
//!
//! ```text
//! connection := preamble(dialer→) preamble(←acceptor) frame*
//! frame      := u32 BE length, payload            (length ≤ the receiver's maximum)
//! payload    := message as JSON | MessagePack      (format chosen by the dialer)
//!             | tag + maybe-LZ4(message)           (when compression was negotiated)
//! ```
//!
//! The core is sans-IO — [`frame::FrameDecoder`], [`Preamble`], [`MessageCodec`] turn bytes into
//! messages and back without touching a socket or a clock — and three drivers move the bytes:
//!
//! | driver | for |
//! |---|---|
//! | [`Session`] | a non-blocking socket in a reactor thread (mio); survives partial writes |
//! | [`BlockingTransport`] / [`Transport`] | any blocking `Read + Write` |
//! | [`framed::handshake`] → `Framed<IO, MessageCodec>` | tokio |
//!
//! Every failure is typed: [`WireError`] ends a connection; a [`PayloadError`] (an unknown
//! message type from a newer peer, a malformed payload) skips one frame and the connection goes
//! on.

mod blocking;
mod codec;
mod config;
mod error;
pub mod frame;
pub mod framed;
mod handshake;
mod payload;
mod preamble;
mod protocol;
mod session;

pub use blocking::{BlockingTransport, Transport};
pub use codec::{MessageCodec, Received};
pub use config::WireConfig;
pub use error::WireError;
pub use handshake::{Negotiated, Role};
pub use payload::{
    EncodeError, EncodedFrame, Encoding, PayloadError, compress_payload, decompress_payload,
};
pub use preamble::{
    Compression, Format, MAGIC, MIN_FRAME_LIMIT, PREAMBLE_LEN, PROTOCOL_VERSION, Preamble,
    PreambleError,
};
pub use protocol::Protocol;
pub use session::Session;
