//! A whole connection as a sans-IO state machine, for a non-blocking driver (the reactor).
//!
//! The driver feeds what it read ([`Session::handle_input`]), takes decoded messages
//! ([`Session::poll_received`]), writes what the session queued ([`Session::write_to`], which
//! keeps whatever a `WouldBlock` left unwritten), sleeps until [`Session::poll_timeout`] and then
//! calls [`Session::handle_timeout`]. The session never touches a socket or a clock.
//!
//! ```text
//!            bytes in                          messages out
//! socket ──▶ handle_input ─▶ [handshake] ─▶ poll_received ──▶ worker
//! socket ◀── write_to ◀──── output buffer ◀── send ◀───────── worker
//!                     poll_timeout / handle_timeout: handshake and frame deadlines
//! ```

use std::{
    io::{self, Write},
    time::Instant,
};

use bytes::{Buf, BytesMut};

use crate::{
    codec::{MessageCodec, Received},
    config::WireConfig,
    error::WireError,
    handshake::{self, Negotiated, Role},
    payload::{EncodeError, EncodedFrame, Encoding},
    preamble::PREAMBLE_LEN,
    protocol::Protocol,
};

/// One connection's protocol state: handshake, framing, and the bytes waiting to be written.
/// It carries messages `M`.
#[derive(Debug)]
pub struct Session<M> {
    role: Role,
    config: WireConfig,
    phase: Phase<M>,
    input: BytesMut,
    output: BytesMut,
    /// Messages sent before the handshake finished, encoded once it has.
    pending: Vec<M>,
    handshake_deadline: Instant,
}

#[derive(Debug)]
enum Phase<M> {
    Handshaking,
    Open(Negotiated, MessageCodec<M>),
}

impl<M: Protocol + Clone> Session<M> {
    /// The side that opened the connection; its preamble is queued at once.
    pub fn dial(config: WireConfig, now: Instant) -> Self {
        let mut session = Self::new(Role::Dialer, config, now);
        session
            .output
            .extend_from_slice(&session.config.preamble().encode());
        session
    }

    /// The side that accepted the connection; it answers the dialer's preamble.
    pub fn accept(config: WireConfig, now: Instant) -> Self {
        Self::new(Role::Acceptor, config, now)
    }

    fn new(role: Role, config: WireConfig, now: Instant) -> Self {
        Self {
            role,
            handshake_deadline: now + config.handshake_timeout,
            config,
            phase: Phase::Handshaking,
            input: BytesMut::new(),
            output: BytesMut::new(),
            pending: Vec::new(),
        }
    }

    /// What the handshake agreed, once it is done.
    pub fn negotiated(&self) -> Option<Negotiated> {
        match &self.phase {
            Phase::Open(negotiated, _) => Some(*negotiated),
            Phase::Handshaking => None,
        }
    }

    /// Bytes read from the socket. An error ends the connection (after writing any queued
    /// output, such as the answer that tells a peer of another version why).
    pub fn handle_input(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        self.input.extend_from_slice(bytes);
        if matches!(self.phase, Phase::Handshaking) && self.input.len() >= PREAMBLE_LEN {
            let mut theirs = [0; PREAMBLE_LEN];
            self.input.copy_to_slice(&mut theirs);
            let negotiated = match self.role {
                Role::Dialer => handshake::conclude(&self.config, &theirs)?,
                Role::Acceptor => {
                    let (answer, negotiated) = handshake::accept(&self.config, &theirs);
                    if let Some(answer) = answer {
                        self.output.extend_from_slice(&answer);
                    }
                    negotiated?
                }
            };
            self.open(negotiated)?;
        }
        Ok(())
    }

    fn open(&mut self, negotiated: Negotiated) -> Result<(), EncodeError> {
        let codec = MessageCodec::new(negotiated, &self.config);
        for message in std::mem::take(&mut self.pending) {
            codec.encode_message(&message, &mut self.output)?;
        }
        self.phase = Phase::Open(negotiated, codec);
        Ok(())
    }

    /// The next message received, if a whole frame is in. Call until `Ok(None)` after each
    /// [`Session::handle_input`].
    pub fn poll_received(&mut self, now: Instant) -> Result<Option<Received<M>>, WireError> {
        match &mut self.phase {
            Phase::Open(_, codec) => Ok(codec.decode_frame(&mut self.input, now)?),
            Phase::Handshaking => Ok(None),
        }
    }

    /// Queues a message. Before the handshake is done it waits, and is encoded when it is.
    pub fn send(&mut self, message: &M) -> Result<(), EncodeError> {
        match &self.phase {
            Phase::Open(_, codec) => codec.encode_message(message, &mut self.output),
            Phase::Handshaking => {
                self.pending.push(message.clone());
                Ok(())
            }
        }
    }

    /// What this connection's frames depend on, once the handshake agreed on it: sessions of
    /// equal encodings take the same [`EncodedFrame`] ([`Session::send_encoded`]).
    pub fn encoding(&self) -> Option<Encoding> {
        match &self.phase {
            Phase::Open(_, codec) => Some(codec.encoding()),
            Phase::Handshaking => None,
        }
    }

    /// Queues a message encoded once for many connections ([`Encoding::encode`]). The peer's
    /// frame limit is checked as [`Session::send`] checks it; a frame of another encoding, or one
    /// offered before the handshake is done, is refused ([`EncodeError::WrongEncoding`]) and
    /// nothing is queued.
    pub fn send_encoded(&mut self, frame: &EncodedFrame) -> Result<(), EncodeError> {
        match &self.phase {
            Phase::Open(_, codec) => codec.encode_shared(frame, &mut self.output),
            Phase::Handshaking => Err(EncodeError::WrongEncoding {
                frame: frame.encoding(),
                connection: None,
            }),
        }
    }

    /// Whether bytes wait to be written (register for writability while they do).
    pub fn wants_write(&self) -> bool {
        !self.output.is_empty()
    }

    /// How many bytes wait to be written: a peer that stops reading makes this grow, and a
    /// driver caps it.
    pub fn unsent(&self) -> usize {
        self.output.len()
    }

    /// Writes queued bytes until done or the socket would block; what is left stays queued.
    pub fn write_to(&mut self, socket: &mut impl Write) -> io::Result<()> {
        while !self.output.is_empty() {
            match socket.write(&self.output) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => self.output.advance(written),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// When [`Session::handle_timeout`] must be called: the handshake deadline, or the deadline
    /// of a frame under way.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Handshaking => Some(self.handshake_deadline),
            Phase::Open(_, codec) => codec.deadline(),
        }
    }

    /// Fails if a deadline has passed at `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), WireError> {
        match &self.phase {
            Phase::Handshaking if now >= self.handshake_deadline => {
                Err(WireError::HandshakeTimedOut(self.config.handshake_timeout))
            }
            Phase::Handshaking => Ok(()),
            Phase::Open(_, codec) => Ok(codec.check_deadline(now)?),
        }
    }

    /// The peer closed its side: [`WireError::Closed`] when that was clean, a truncation or
    /// handshake error otherwise.
    pub fn handle_eof(&self) -> WireError {
        match &self.phase {
            Phase::Open(_, codec) => match codec.finish(&self.input) {
                Ok(()) => WireError::Closed,
                Err(error) => error.into(),
            },
            Phase::Handshaking => WireError::Closed,
        }
    }
}
