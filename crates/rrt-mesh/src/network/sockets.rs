//! The worker's socket operations, as plain functions over the sockets it owns: bind and
//! watch, accept (each source drained until `WouldBlock`), and dial. They return values — an
//! accepted or dialed stream, the peer sockets that appeared — which the worker turns into
//! links and hands to the machines; nothing here decides who is dialed or admitted.
//!
//! ```text
//!  peer-<pid>.sock / coordinator.sock listener ─▶ accept_unix (same uid only) ─▶ (stream, pid)
//!  TCP listener ─────────────────────────────────▶ accept_tcp (+ TLS server) ──▶ stream
//!  inotify on the mesh directory ────────────────▶ read_watch ─────────────────▶ Appeared
//!  Dialer's DialUnix / DialTcp ──────────────────▶ dial_unix / dial_tcp ───────▶ stream
//! ```
//!
//! A listener error that a retry cannot fix asks the reactor to restart the worker; running out
//! of file descriptors does not (the listener is fine, the backlog waits).

use std::{
    fs, io,
    mem::MaybeUninit,
    net::SocketAddr,
    os::{
        fd::{AsRawFd, OwnedFd},
        unix::fs::PermissionsExt,
    },
};

use mio::{
    Interest, Registry, Token,
    net::{TcpListener, TcpStream, UnixListener, UnixStream},
    unix::SourceFd,
};
use rrt_reactor::Control;
use rustix::{fs::inotify, io::Errno, net::sockopt::socket_peercred};

use super::{
    api::{TcpConfig, TcpSecurity},
    dialer::UnixDialed,
    stream::Stream,
    tls::{TlsSetup, TlsStream},
};
use crate::{
    dir::{MeshDir, is_alive, peer_socket_pid},
    same_user,
};

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

/// Binds `peer-<pid>.sock` (replacing a stale one) for this user only, and watches the mesh
/// directory for peer sockets and `coordinator.sock` appearing.
pub(super) fn listen_unix(
    dir: &MeshDir,
    pid: u32,
    registry: &Registry,
) -> io::Result<(UnixListener, OwnedFd)> {
    let path = dir.peer_socket(pid);
    match fs::remove_file(&path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    let mut listener = UnixListener::bind(&path)?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
    let watch = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)?;
    inotify::add_watch(
        &watch,
        dir.path(),
        inotify::WatchFlags::CREATE | inotify::WatchFlags::MOVED_TO,
    )?;
    registry.register(&mut listener, LISTENER, Interest::READABLE)?;
    registry.register(&mut SourceFd(&watch.as_raw_fd()), WATCH, Interest::READABLE)?;
    Ok((listener, watch))
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
            id = %tls.identity.id(),
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
/// matters more than packet count), under TLS if `tls` is given.
pub(super) fn accept_tcp(listener: &TcpListener, tls: Option<&TlsSetup>) -> (Vec<Stream>, Control) {
    let mut accepted = Vec::new();
    let control = loop {
        match listener.accept() {
            Ok((tcp, _)) => {
                if let Err(error) = tcp.set_nodelay(true) {
                    tracing::debug!(%error, "TCP_NODELAY");
                }
                match tls {
                    None => accepted.push(Stream::Tcp(tcp)),
                    Some(setup) => match TlsStream::server(tcp, setup) {
                        Ok(tls) => accepted.push(Stream::Tls(Box::new(tls))),
                        Err(error) => {
                            tracing::warn!(%error, "could not start TLS on a connection");
                        }
                    },
                }
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

/// Connects to `peer-<pid>.sock`. A Unix connect completes at once (or fails): who listens is
/// known already, and must be this user.
pub(super) fn dial_unix(dir: &MeshDir, pid: u32) -> Result<UnixStream, UnixDialed> {
    let path = dir.peer_socket(pid);
    match UnixStream::connect(&path) {
        Ok(stream) => match same_user::verify(&path, &stream) {
            Ok(_) => Ok(stream),
            Err(error) => {
                tracing::warn!(%error, pid, "not dialing a peer socket");
                Err(UnixDialed::Abandoned)
            }
        },
        Err(error) => {
            tracing::debug!(%error, pid, "dial failed");
            Err(UnixDialed::Failed {
                alive: is_alive(pid),
            })
        }
    }
}

/// Starts a TCP connect to `to` (it completes later, reported as writability), under TLS if
/// `tls` is given.
pub(super) fn dial_tcp(to: SocketAddr, tls: Option<&TlsSetup>) -> io::Result<Stream> {
    let tcp = TcpStream::connect(to)?;
    tcp.set_nodelay(true)?;
    Ok(match tls {
        Some(setup) => Stream::Tls(Box::new(TlsStream::client(tcp, setup)?)),
        None => Stream::Tcp(tcp),
    })
}

fn is_out_of_descriptors(error: &io::Error) -> bool {
    [Errno::MFILE, Errno::NFILE]
        .iter()
        .any(|errno| error.raw_os_error() == Some(errno.raw_os_error()))
}
