//! How links come to be: same-host peers found in the mesh directory (the lower pid dials),
//! connections accepted on the Unix and TCP listeners, and manual `HOST:PORT` peers dialed over
//! TCP and redialed with backoff for as long as they are configured.

use std::{
    io,
    mem::MaybeUninit,
    net::{SocketAddr, ToSocketAddrs},
    time::{Duration, Instant},
};

use mio::{
    Registry, Token,
    net::{TcpStream, UnixStream},
};
use rrt_reactor::Control;
use rrt_wire::{Compression, Session, WireConfig};
use rustix::{fs::inotify, io::Errno, net::sockopt::socket_peercred};
use uuid::Uuid;

use super::{
    hub::{COORDINATOR, HubAttempt, Topology},
    stream::Stream,
    tls::TlsStream,
    worker::{DIAL_ATTEMPTS, DIAL_BACKOFF, NetworkWorker},
};
use crate::{
    dir::{is_alive, peer_socket_pid},
    membership::{Direction, LinkId},
    same_user,
};

/// The first and the longest wait between attempts to reach a manual peer.
const MANUAL_BACKOFF: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(5));

pub(super) struct Dial {
    pub(super) pid: u32,
    pub(super) at: Instant,
    pub(super) attempt: u32,
}

impl NetworkWorker {
    /// A peer socket exists for `pid`: clean it if its process is dead, plan a dial if ours to
    /// make.
    pub(super) fn consider(&mut self, pid: u32, now: Instant) {
        if self.config.topology == Topology::Hub {
            return;
        }
        if pid == self.config.pid || self.is_linked(pid) || self.dials.iter().any(|d| d.pid == pid)
        {
            return;
        }
        if !is_alive(pid) {
            self.config.dir.remove_sockets_of(pid);
        } else if self.config.pid < pid {
            self.dials.push(Dial {
                pid,
                at: now,
                attempt: 0,
            });
        }
    }

    pub(super) fn is_linked(&self, pid: u32) -> bool {
        self.links.values().any(|link| link.pid == Some(pid))
    }

    pub(super) fn dial(&mut self, dial: Dial, registry: &Registry, now: Instant) {
        let path = self.config.dir.peer_socket(dial.pid);
        match UnixStream::connect(&path) {
            Ok(stream) => {
                // A Unix connect completes at once (or fails): who listens is known already.
                if let Err(error) = same_user::verify(&path, &stream) {
                    tracing::warn!(%error, pid = dial.pid, "not dialing a peer socket");
                    return;
                }
                let session = Session::dial(self.config.wire.clone(), now);
                let stream = Stream::Unix(stream);
                self.add_link(
                    stream,
                    session,
                    Some(dial.pid),
                    Direction::Dialed,
                    registry,
                    now,
                );
            }
            Err(error) if !is_alive(dial.pid) => {
                tracing::debug!(%error, pid = dial.pid, "peer is gone");
                self.config.dir.remove_sockets_of(dial.pid);
            }
            Err(error) if dial.attempt + 1 < DIAL_ATTEMPTS => {
                tracing::debug!(%error, pid = dial.pid, attempt = dial.attempt, "dial failed; retrying");
                self.dials.push(Dial {
                    pid: dial.pid,
                    at: now + DIAL_BACKOFF * (dial.attempt + 1),
                    attempt: dial.attempt + 1,
                });
            }
            Err(error) => tracing::warn!(%error, pid = dial.pid, "giving up dialing a peer"),
        }
    }

    pub(super) fn accept(&mut self, token: Token, registry: &Registry, now: Instant) -> Control {
        loop {
            let listener = match (token, &self.coordinator) {
                (COORDINATOR, Some(coordinator)) => &coordinator.listener,
                (COORDINATOR, None) => return Control::Continue,
                _ => &self.listener,
            };
            match listener.accept() {
                Ok((stream, _)) => match socket_peercred(&stream) {
                    Ok(credentials) if credentials.uid.as_raw() == self.uid => {
                        let pid = credentials.pid.as_raw_nonzero().get().unsigned_abs();
                        let session = Session::accept(self.config.wire.clone(), now);
                        let stream = Stream::Unix(stream);
                        self.add_link(
                            stream,
                            session,
                            Some(pid),
                            Direction::Accepted,
                            registry,
                            now,
                        );
                    }
                    Ok(credentials) => tracing::warn!(
                        uid = credentials.uid.as_raw(),
                        pid = credentials.pid.as_raw_nonzero().get(),
                        "refused a peer connection from another user"
                    ),
                    Err(error) => {
                        tracing::warn!(%error, "refused a peer connection: no credentials")
                    }
                },
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    return Control::Continue;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                // Out of file descriptors, say: the listener is fine, the backlog waits.
                Err(error) if is_out_of_descriptors(&error) => {
                    tracing::error!(%error, "cannot accept peer connections now");
                    return Control::Continue;
                }
                Err(error) => {
                    tracing::error!(%error, "the peer listener failed");
                    return Control::Restart;
                }
            }
        }
    }

    pub(super) fn read_watch(&mut self, now: Instant) -> Control {
        let mut buffer = [MaybeUninit::<u8>::uninit(); 4096];
        let mut reader = inotify::Reader::new(&self.watch, &mut buffer);
        let mut appeared = Vec::new();
        let mut coordinator_appeared = false;
        loop {
            match reader.next() {
                Ok(event) => {
                    let Some(name) = event.file_name().map(|name| name.to_string_lossy()) else {
                        continue;
                    };
                    if let Some(pid) = peer_socket_pid(&name) {
                        appeared.push(pid);
                    }
                    coordinator_appeared |= name == "coordinator.sock";
                }
                Err(Errno::AGAIN) => break,
                Err(Errno::INTR) => continue,
                Err(error) => {
                    tracing::error!(%error, "the mesh directory watch failed");
                    return Control::Restart;
                }
            }
        }
        for pid in appeared {
            self.consider(pid, now);
        }
        if coordinator_appeared && self.hub_attempt.is_some() {
            self.hub_attempt = Some(HubAttempt::now(now));
        }
        Control::Continue
    }
}

/// A `--peer HOST:PORT`, or an address discovery found: redialed whenever it has no link, for as
/// long as it is configured (or discovery still lists it).
#[derive(Debug)]
pub(super) struct ManualPeer {
    address: String,
    discovered: bool,
    /// Discovered, then no longer listed: dropped once its link (if any) ends.
    withdrawn: bool,
    link: Option<LinkId>,
    /// Who answered last time, to avoid dialing a peer already linked another way.
    peer: Option<Uuid>,
    next: Option<Instant>,
    backoff: Duration,
}

impl ManualPeer {
    pub(super) fn new(address: String, now: Instant) -> Self {
        Self {
            address,
            discovered: false,
            withdrawn: false,
            link: None,
            peer: None,
            next: Some(now),
            backoff: MANUAL_BACKOFF.0,
        }
    }

    pub(super) fn next_attempt(&self) -> Option<Instant> {
        self.next
    }

    fn retry_later(&mut self, now: Instant) {
        self.next = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(MANUAL_BACKOFF.1);
    }
}

impl NetworkWorker {
    /// A discovery hint: dial the address unless it is already known.
    pub(super) fn discovered(&mut self, address: SocketAddr, now: Instant) {
        let text = address.to_string();
        if self.manual.iter().any(|peer| peer.address == text) {
            return;
        }
        let mut peer = ManualPeer::new(text, now);
        peer.discovered = true;
        self.manual.push(peer);
    }

    /// Discovery no longer lists the address: stop redialing it (a live link stays).
    pub(super) fn forget_address(&mut self, address: SocketAddr) {
        let text = address.to_string();
        self.manual
            .retain(|peer| !(peer.discovered && peer.address == text && peer.link.is_none()));
        for peer in &mut self.manual {
            if peer.discovered && peer.address == text {
                peer.discovered = false;
            }
        }
    }

    /// Dials every manual peer whose time has come.
    pub(super) fn dial_manual_peers(&mut self, registry: &Registry, now: Instant) {
        for index in 0..self.manual.len() {
            let peer = &self.manual[index];
            if peer.link.is_some() || peer.next.is_none_or(|at| at > now) {
                continue;
            }
            if peer
                .peer
                .is_some_and(|id| self.membership.link_of(id).is_some())
            {
                // Already linked another way (it dialed us): look again later.
                self.manual[index].next = Some(now + MANUAL_BACKOFF.1);
                continue;
            }
            match self.dial_tcp(&self.manual[index].address.clone(), registry, now) {
                Ok(link) => {
                    self.manual[index].link = Some(link);
                    self.manual[index].next = None;
                }
                Err(error) => {
                    tracing::debug!(%error, address = %self.manual[index].address, "dial failed");
                    self.manual[index].retry_later(now);
                }
            }
        }
    }

    fn dial_tcp(&mut self, address: &str, registry: &Registry, now: Instant) -> io::Result<LinkId> {
        // An IP literal resolves without a lookup; a host name costs one getaddrinfo here.
        let target: SocketAddr = address
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::other(format!("{address} resolves to no address")))?;
        let tcp = TcpStream::connect(target)?;
        tcp.set_nodelay(true)?;
        let stream = match &self.tls {
            Some(tls) => Stream::Tls(Box::new(TlsStream::client(tcp, &tls.setup)?)),
            None => Stream::Tcp(tcp),
        };
        let wire = WireConfig {
            compression: self
                .config
                .tcp
                .as_ref()
                .map_or(Compression::None, |tcp| tcp.compression),
            ..self.config.wire.clone()
        };
        let session = Session::dial(wire, now);
        self.add_link(stream, session, None, Direction::Dialed, registry, now)
            .ok_or_else(|| io::Error::other("could not watch the connection"))
    }

    /// A manual peer's link said hello: remember who it is, and start backoff afresh.
    pub(super) fn manual_link_up(&mut self, link: LinkId, peer: Uuid) {
        if let Some(manual) = self.manual.iter_mut().find(|m| m.link == Some(link)) {
            manual.peer = Some(peer);
            manual.backoff = MANUAL_BACKOFF.0;
        }
    }

    /// A manual peer's link is gone: dial again after the backoff.
    pub(super) fn manual_link_closed(&mut self, link: LinkId) {
        let now = Instant::now();
        if let Some(manual) = self.manual.iter_mut().find(|m| m.link == Some(link)) {
            manual.link = None;
            manual.retry_later(now);
        }
        self.manual
            .retain(|peer| !(peer.withdrawn && peer.link.is_none()));
    }

    pub(super) fn accept_tcp(&mut self, registry: &Registry, now: Instant) -> Control {
        let Some(listener) = &self.tcp_listener else {
            return Control::Continue;
        };
        let mut accepted = Vec::new();
        let control = loop {
            match listener.accept() {
                Ok((stream, _)) => accepted.push(stream),
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
        for tcp in accepted {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "TCP_NODELAY");
            }
            let stream = match &self.tls {
                Some(tls) => match TlsStream::server(tcp, &tls.setup) {
                    Ok(tls) => Stream::Tls(Box::new(tls)),
                    Err(error) => {
                        tracing::warn!(%error, "could not start TLS on a connection");
                        continue;
                    }
                },
                None => Stream::Tcp(tcp),
            };
            let session = Session::accept(self.config.wire.clone(), now);
            self.add_link(stream, session, None, Direction::Accepted, registry, now);
        }
        control
    }
}

fn is_out_of_descriptors(error: &io::Error) -> bool {
    [Errno::MFILE, Errno::NFILE]
        .iter()
        .any(|errno| error.raw_os_error() == Some(errno.raw_os_error()))
}
