//! The tokio side: an async handshake that hands back a `Framed` stream of messages.
//!
//! ```no_run
//! use futures_util::{SinkExt, StreamExt};
//! use rrt_mesh::{LinkMessage, Message};
//! use rrt_wire::{Received, Role, WireConfig, framed};
//!
//! # async fn run() -> Result<(), rrt_wire::WireError> {
//! let stream = tokio::net::UnixStream::connect("/run/user/1000/rrt/default/peer-42.sock").await?;
//! let mut connection =
//!     framed::handshake::<_, Message>(stream, Role::Dialer, &WireConfig::default()).await?;
//! connection.send(Message::Link(LinkMessage::Ping { timestamp: 1 })).await?;
//! while let Some(received) = connection.next().await {
//!     if let Received::Message(message) = received? {
//!         println!("{message:?}");
//!     }
//! }
//! # Ok(()) }
//! ```

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::Framed;

use crate::{
    codec::MessageCodec,
    config::WireConfig,
    error::WireError,
    handshake::{self, Role},
    preamble::PREAMBLE_LEN,
    protocol::Protocol,
};

/// Exchanges preambles over `io` as `role`, within the configured deadline, and returns the open
/// connection as a `Stream` of [`Received`](crate::Received) and a `Sink` of messages `M`.
pub async fn handshake<IO, M>(
    mut io: IO,
    role: Role,
    config: &WireConfig,
) -> Result<Framed<IO, MessageCodec<M>>, WireError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
    M: Protocol,
{
    let exchange = async {
        match role {
            Role::Dialer => {
                io.write_all(&config.preamble().encode()).await?;
                io.flush().await?;
                Ok::<_, WireError>(handshake::conclude(config, &read_preamble(&mut io).await?)?)
            }
            Role::Acceptor => {
                let proposal = read_preamble(&mut io).await?;
                let (answer, negotiated) = handshake::accept(config, &proposal);
                if let Some(answer) = answer {
                    io.write_all(&answer).await?;
                    io.flush().await?;
                }
                Ok(negotiated?)
            }
        }
    };
    let negotiated = tokio::time::timeout(config.handshake_timeout, exchange)
        .await
        .map_err(|_| WireError::HandshakeTimedOut(config.handshake_timeout))??;
    Ok(Framed::new(io, MessageCodec::new(negotiated, config)))
}

async fn read_preamble(io: &mut (impl AsyncRead + Unpin)) -> Result<[u8; PREAMBLE_LEN], WireError> {
    let mut preamble = [0; PREAMBLE_LEN];
    match io.read_exact(&mut preamble).await {
        Ok(_) => Ok(preamble),
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => Err(WireError::Closed),
        Err(error) => Err(error.into()),
    }
}
