//! A link's socket: a Unix stream on one host, TLS (or, in a lab, plain TCP) across hosts, and
//! the wide-area transport's end of a socket pair whose other end is a QUIC stream. One type, so
//! the rest of the worker moves bytes the same way over all of them — the wire protocol is
//! identical.

use std::io::{self, Read, Write};

use mio::{
    Interest, Registry, Token,
    event::Source,
    net::{TcpStream, UnixStream},
};

use super::{api::Transport, tls::TlsStream};
use crate::{
    identity::DeviceId,
    wan::{PathCell, WanLink},
};

pub(super) enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
    Tls(Box<TlsStream>),
    Wan(WanStream),
}

/// A link of the wide-area transport: the bridge's socket, and what QUIC proved of the peer.
pub(super) struct WanStream {
    pub(super) socket: UnixStream,
    pub(super) device: DeviceId,
    pub(super) exporter: Option<[u8; 32]>,
    pub(super) path: PathCell,
}

impl WanStream {
    pub(super) fn new(link: WanLink) -> Self {
        Self {
            socket: UnixStream::from_std(link.socket),
            device: link.device,
            exporter: link.exporter,
            path: link.path,
        }
    }
}

impl Stream {
    /// What `rrt peers` calls this transport.
    pub(super) fn transport(&self) -> Transport {
        match self {
            Self::Unix(_) => Transport::Unix,
            Self::Tcp(_) => Transport::Tcp,
            Self::Tls(_) => Transport::Tls,
            Self::Wan(_) => Transport::Iroh,
        }
    }

    /// Where the peer is: `"local"` on this host, else its address.
    pub(super) fn host(&self) -> String {
        let tcp = match self {
            Self::Unix(_) => return "local".to_owned(),
            // The peer's addresses are iroh's to choose among; the device id names it.
            Self::Wan(wan) => return format!("device {}", wan.device.short()),
            Self::Tcp(tcp) => tcp,
            Self::Tls(tls) => &tls.tcp,
        };
        tcp.peer_addr()
            .map_or_else(|_| "unknown".to_owned(), |address| address.ip().to_string())
    }

    /// This end's address on a TCP link: the one the peer reached it at.
    pub(super) fn local_ip(&self) -> Option<std::net::IpAddr> {
        let tcp = match self {
            Self::Unix(_) | Self::Wan(_) => return None,
            Self::Tcp(tcp) => tcp,
            Self::Tls(tls) => &tls.tcp,
        };
        tcp.local_addr().ok().map(|address| address.ip())
    }

    /// Whether bytes below the protocol (TLS records) wait for the socket.
    pub(super) fn wants_write(&self) -> bool {
        matches!(self, Self::Tls(tls) if tls.wants_write())
    }

    /// Writes what waits below the protocol, as far as the socket takes it.
    pub(super) fn flush_pending(&mut self) -> io::Result<()> {
        match self {
            Self::Tls(tls) => Write::flush(tls.as_mut()),
            _ => Ok(()),
        }
    }

    /// For a TCP connect in progress: `Ok(true)` once connected, `Ok(false)` while pending, the
    /// error if it failed.
    pub(super) fn finish_connect(&self) -> io::Result<bool> {
        let stream = match self {
            Self::Unix(_) | Self::Wan(_) => return Ok(true),
            Self::Tcp(stream) => stream,
            Self::Tls(tls) => &tls.tcp,
        };
        if let Some(error) = stream.take_error()? {
            return Err(error);
        }
        match stream.peer_addr() {
            Ok(_) => Ok(true),
            Err(error) if error.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(error) => Err(error),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Unix(stream) => stream.read(buffer),
            Self::Tcp(stream) => stream.read(buffer),
            Self::Tls(tls) => tls.read(buffer),
            Self::Wan(wan) => wan.socket.read(buffer),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Self::Unix(stream) => stream.write(bytes),
            Self::Tcp(stream) => stream.write(bytes),
            Self::Tls(tls) => tls.write(bytes),
            Self::Wan(wan) => wan.socket.write(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Unix(stream) => stream.flush(),
            Self::Tcp(stream) => stream.flush(),
            Self::Tls(tls) => tls.flush(),
            Self::Wan(wan) => wan.socket.flush(),
        }
    }
}

impl Source for Stream {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        match self {
            Self::Unix(stream) => stream.register(registry, token, interest),
            Self::Tcp(stream) => stream.register(registry, token, interest),
            Self::Tls(tls) => tls.tcp.register(registry, token, interest),
            Self::Wan(wan) => wan.socket.register(registry, token, interest),
        }
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        match self {
            Self::Unix(stream) => stream.reregister(registry, token, interest),
            Self::Tcp(stream) => stream.reregister(registry, token, interest),
            Self::Tls(tls) => tls.tcp.reregister(registry, token, interest),
            Self::Wan(wan) => wan.socket.reregister(registry, token, interest),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Self::Unix(stream) => stream.deregister(registry),
            Self::Tcp(stream) => stream.deregister(registry),
            Self::Tls(tls) => tls.tcp.deregister(registry),
            Self::Wan(wan) => wan.socket.deregister(registry),
        }
    }
}
