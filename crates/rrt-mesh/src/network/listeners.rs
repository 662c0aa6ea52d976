//! The worker's passive sources: the Unix and TCP listeners and the mesh directory's inotify
//! watch, each drained until `WouldBlock` into plain values (accepted sockets, appeared peer
//! sockets) that the worker turns into links and dials.
//!
//! ```text
//!  peer-<pid>.sock / coordinator.sock listener ─▶ accept_unix (same uid only) ─▶ (stream, pid)
//!  TCP listener ─────────────────────────────────▶ accept_tcp ─────────────────▶ stream
//!  inotify on the mesh directory ────────────────▶ read_watch ─────────────────▶ Appeared
//! ```
//!
//! A listener error that a retry cannot fix asks the reactor to restart the worker; running out
//! of file descriptors does not (the listener is fine, the backlog waits).

use std::{io, mem::MaybeUninit, net::SocketAddr, os::fd::OwnedFd};

use mio::{
    Interest, Registry, Token,
    net::{TcpListener, TcpStream, UnixListener, UnixStream},
};
use rrt_reactor::Control;
use rustix::{fs::inotify, io::Errno, net::sockopt::socket_peercred};

use super::api::{TcpConfig, TcpSecurity};
use crate::dir::peer_socket_pid;

/// The token of this instance's `peer-<pid>.sock` listener.
pub(super) const LISTENER: Token = Token(0);
/// The token of the mesh directory's watch.
pub(super) const WATCH: Token = Token(1);
/// The token of the TCP listener.
pub(super) const TCP_LISTENER: Token = Token(3);
/// The token of the resolver's wake-ups.
pub(super) const RESOLVER: Token = Token(4);

/// What appeared in the mesh directory.
#[derive(Debug, Default)]
pub(super) struct Appeared {
    /// Processes whose peer socket appeared.
    pub(super) pids: Vec<u32>,
    /// Whether `coordinator.sock` appeared.
    pub(super) coordinator: bool,
}

/// Binds the TCP listener (on any free port if asked and the configured one is taken).
pub(super) fn listen_tcp(tcp: &TcpConfig, registry: &Registry) -> io::Result<TcpListener> {
    let mut listener = match TcpListener::bind(tcp.listen) {
        Err(error) if error.kind() == io::ErrorKind::AddrInUse && tcp.fall_back_to_any_port => {
            let any = SocketAddr::new(tcp.listen.ip(), 0);
            tracing::info!(
                port = tcp.listen.port(),
                "the TCP port is taken; using any free port"
            );
            TcpListener::bind(any)?
        }
        bound => bound?,
    };
    registry.register(&mut listener, TCP_LISTENER, Interest::READABLE)?;
    let address = listener.local_addr()?;
    match &tcp.security {
        TcpSecurity::Insecure => tracing::warn!(
            %address,
            "listening for peers on PLAIN TCP (--insecure): anyone who can reach this port can join"
        ),
        TcpSecurity::Tls(tls) => tracing::info!(
            %address,
            fingerprint = %tls.identity.fingerprint(),
            "listening for peers on TLS"
        ),
    }
    Ok(listener)
}

/// Accepts every waiting connection of user `uid`, with the process behind each; refuses
/// (drops) those of other users.
pub(super) fn accept_unix(listener: &UnixListener, uid: u32) -> (Vec<(UnixStream, u32)>, Control) {
    let mut accepted = Vec::new();
    loop {
        match listener.accept() {
            Ok((stream, _)) => match socket_peercred(&stream) {
                Ok(credentials) if credentials.uid.as_raw() == uid => {
                    let pid = credentials.pid.as_raw_nonzero().get().unsigned_abs();
                    accepted.push((stream, pid));
                }
                Ok(credentials) => tracing::warn!(
                    uid = credentials.uid.as_raw(),
                    pid = credentials.pid.as_raw_nonzero().get(),
                    "refused a peer connection from another user"
                ),
                Err(error) => tracing::warn!(%error, "refused a peer connection: no credentials"),
            },
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                return (accepted, Control::Continue);
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) if is_out_of_descriptors(&error) => {
                tracing::error!(%error, "cannot accept peer connections now");
                return (accepted, Control::Continue);
            }
            Err(error) => {
                tracing::error!(%error, "the peer listener failed");
                return (accepted, Control::Restart);
            }
        }
    }
}

/// Accepts every waiting TCP connection (with `TCP_NODELAY`: frames are small and latency
/// matters more than packet count).
pub(super) fn accept_tcp(listener: &TcpListener) -> (Vec<TcpStream>, Control) {
    let mut accepted = Vec::new();
    let control = loop {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%error, "TCP_NODELAY");
                }
                accepted.push(stream);
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => break Control::Continue,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) if is_out_of_descriptors(&error) => {
                tracing::error!(%error, "cannot accept TCP connections now");
                break Control::Continue;
            }
            Err(error) => {
                tracing::error!(%error, "the TCP listener failed");
                break Control::Restart;
            }
        }
    };
    (accepted, control)
}

/// Reads every pending event of the mesh directory's watch.
pub(super) fn read_watch(watch: &OwnedFd) -> (Appeared, Control) {
    let mut buffer = [MaybeUninit::<u8>::uninit(); 4096];
    let mut reader = inotify::Reader::new(watch, &mut buffer);
    let mut appeared = Appeared::default();
    loop {
        match reader.next() {
            Ok(event) => {
                let Some(name) = event.file_name().map(|name| name.to_string_lossy()) else {
                    continue;
                };
                if let Some(pid) = peer_socket_pid(&name) {
                    appeared.pids.push(pid);
                }
                appeared.coordinator |= name == "coordinator.sock";
            }
            Err(Errno::AGAIN) => return (appeared, Control::Continue),
            Err(Errno::INTR) => continue,
            Err(error) => {
                tracing::error!(%error, "the mesh directory watch failed");
                return (appeared, Control::Restart);
            }
        }
    }
}

fn is_out_of_descriptors(error: &io::Error) -> bool {
    [Errno::MFILE, Errno::NFILE]
        .iter()
        .any(|errno| error.raw_os_error() == Some(errno.raw_os_error()))
}
