//! The design document's blocking `Transport`, for any `Read + Write` (a `UnixStream`, a
//! `TcpStream`, a TLS stream), negotiated by a handshake first.
//!
//! Deadlines here come from the stream: set `set_read_timeout` on a socket and a silent peer
//! surfaces as an I/O error; a slow one is cut off by the frame deadline when its next bytes
//! arrive late.

use std::{
    io::{self, Read, Write},
    time::Instant,
};

use bytes::BytesMut;

use crate::{
    codec::{MessageCodec, Received},
    config::WireConfig,
    error::WireError,
    handshake::{self, Negotiated, Role},
    preamble::PREAMBLE_LEN,
    protocol::Protocol,
};

const READ_CHUNK: usize = 16 * 1024;

/// Sends and receives whole messages `M`, blocking.
pub trait Transport<M> {
    /// Sends one message and flushes it.
    fn send_message(&mut self, message: &M) -> Result<(), WireError>;
    /// Receives the next message, skipping (and logging) frames that hold no usable message.
    fn recv_message(&mut self) -> Result<M, WireError>;
}

/// A handshaken connection over a blocking stream, carrying messages `M`.
#[derive(Debug)]
pub struct BlockingTransport<T, M> {
    io: T,
    negotiated: Negotiated,
    codec: MessageCodec<M>,
    input: BytesMut,
    output: BytesMut,
}

impl<T: Read + Write, M: Protocol> BlockingTransport<T, M> {
    /// Exchanges preambles over `io` as `role` and returns the open connection.
    pub fn handshake(mut io: T, role: Role, config: &WireConfig) -> Result<Self, WireError> {
        let negotiated = match role {
            Role::Dialer => {
                io.write_all(&config.preamble().encode())?;
                io.flush()?;
                handshake::conclude(config, &read_preamble(&mut io)?)?
            }
            Role::Acceptor => {
                let (answer, negotiated) = handshake::accept(config, &read_preamble(&mut io)?);
                if let Some(answer) = answer {
                    io.write_all(&answer)?;
                    io.flush()?;
                }
                negotiated?
            }
        };
        Ok(Self {
            io,
            negotiated,
            codec: MessageCodec::new(negotiated, config),
            input: BytesMut::new(),
            output: BytesMut::new(),
        })
    }

    /// What the handshake agreed.
    pub fn negotiated(&self) -> Negotiated {
        self.negotiated
    }

    /// The stream, for setting timeouts or shutting it down.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// Receives the next frame, whatever it held.
    pub fn recv(&mut self) -> Result<Received<M>, WireError> {
        let mut chunk = [0; READ_CHUNK];
        loop {
            if let Some(received) = self.codec.decode_frame(&mut self.input, Instant::now())? {
                return Ok(received);
            }
            match self.io.read(&mut chunk) {
                Ok(0) => {
                    self.codec.finish(&self.input)?;
                    return Err(WireError::Closed);
                }
                Ok(read) => self.input.extend_from_slice(&chunk[..read]),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error.into()),
            }
        }
    }
}

impl<T: Read + Write, M: Protocol> Transport<M> for BlockingTransport<T, M> {
    fn send_message(&mut self, message: &M) -> Result<(), WireError> {
        self.output.clear();
        self.codec.encode_message(message, &mut self.output)?;
        self.io.write_all(&self.output)?;
        Ok(self.io.flush()?)
    }

    fn recv_message(&mut self) -> Result<M, WireError> {
        loop {
            if let Received::Message(message) = self.recv()? {
                return Ok(message);
            }
        }
    }
}

fn read_preamble(io: &mut impl Read) -> Result<[u8; PREAMBLE_LEN], WireError> {
    let mut preamble = [0; PREAMBLE_LEN];
    match io.read_exact(&mut preamble) {
        Ok(()) => Ok(preamble),
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => Err(WireError::Closed),
        Err(error) => Err(error.into()),
    }
}
