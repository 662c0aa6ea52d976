//! Messages in, messages out: frames plus payloads under a connection's negotiated settings.
//!
//! [`MessageCodec`] is the one place bytes become messages; the reactor's
//! [`Session`](crate::Session), the blocking [`Transport`](crate::Transport) and tokio's
//! `Framed` (through the [`Decoder`]/[`Encoder`] impls) all use it.

use std::time::Instant;

use std::marker::PhantomData;

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::{
    config::WireConfig,
    error::WireError,
    frame::{FrameDecoder, FrameError},
    handshake::Negotiated,
    payload::{EncodeError, EncodedFrame, Encoding, PayloadCodec, PayloadError},
    protocol::Protocol,
};

/// What one frame held.
#[derive(Debug)]
pub enum Received<M> {
    /// A message.
    Message(M),
    /// A frame whose payload held no usable message (an unknown type, malformed data). The
    /// stream is intact; the frame was skipped.
    Skipped(PayloadError),
}

/// Encodes and decodes the messages `M` of one open connection.
#[derive(Debug, Clone)]
pub struct MessageCodec<M> {
    frames: FrameDecoder,
    payloads: PayloadCodec,
    messages: PhantomData<fn() -> M>,
}

impl<M: Protocol> MessageCodec<M> {
    /// A codec for a connection that agreed on `negotiated`, with this side's `config`.
    pub fn new(negotiated: Negotiated, config: &WireConfig) -> Self {
        Self {
            frames: FrameDecoder::new(config.max_frame, config.frame_timeout),
            payloads: PayloadCodec {
                format: negotiated.format,
                compression: negotiated.compression,
                threshold: config.compression_threshold,
                peer_max: negotiated.peer_max_frame,
                max: config.max_frame,
            },
            messages: PhantomData,
        }
    }

    /// Appends `message` to `out` as one frame.
    pub fn encode_message(&self, message: &M, out: &mut BytesMut) -> Result<(), EncodeError> {
        self.payloads.encode(message, out)
    }

    /// What this connection's frames depend on: connections of equal encodings can share one
    /// [`EncodedFrame`].
    pub fn encoding(&self) -> Encoding {
        self.payloads.encoding()
    }

    /// Appends a frame encoded once for many connections to `out`, checked against this peer's
    /// limit as [`MessageCodec::encode_message`] checks; on an error nothing is appended.
    pub fn encode_shared(
        &self,
        frame: &EncodedFrame,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        self.payloads.append(frame, out)
    }

    /// Takes the next frame off `buffer`, if complete, and decodes it. A [`FrameError`] means
    /// the stream is broken and must be closed.
    pub fn decode_frame(
        &mut self,
        buffer: &mut BytesMut,
        now: Instant,
    ) -> Result<Option<Received<M>>, FrameError> {
        let Some(payload) = self.frames.decode(buffer, now)? else {
            return Ok(None);
        };
        Ok(Some(match self.payloads.decode(&payload) {
            Ok(message) => Received::Message(message),
            Err(error) => {
                tracing::warn!(%error, "skipping a frame");
                Received::Skipped(error)
            }
        }))
    }

    /// When an unfinished frame must be complete, if one is under way.
    pub fn deadline(&self) -> Option<Instant> {
        self.frames.deadline()
    }

    /// Fails if an unfinished frame is past its deadline at `now`.
    pub fn check_deadline(&self, now: Instant) -> Result<(), FrameError> {
        self.frames.check_deadline(now)
    }

    /// The stream ended: an error if it ended inside a frame.
    pub fn finish(&self, buffer: &BytesMut) -> Result<(), FrameError> {
        self.frames.finish(buffer)
    }
}

impl<M: Protocol> Decoder for MessageCodec<M> {
    type Item = Received<M>;
    type Error = WireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Received<M>>, WireError> {
        Ok(self.decode_frame(src, Instant::now())?)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Received<M>>, WireError> {
        match self.decode(src)? {
            Some(received) => Ok(Some(received)),
            None => {
                self.finish(src)?;
                Ok(None)
            }
        }
    }
}

impl<M: Protocol> Encoder<&M> for MessageCodec<M> {
    type Error = WireError;

    fn encode(&mut self, message: &M, dst: &mut BytesMut) -> Result<(), WireError> {
        Ok(self.encode_message(message, dst)?)
    }
}

impl<M: Protocol> Encoder<M> for MessageCodec<M> {
    type Error = WireError;

    fn encode(&mut self, message: M, dst: &mut BytesMut) -> Result<(), WireError> {
        Ok(self.encode_message(&message, dst)?)
    }
}
