//! The network reactor's worker: one thread owns the peer listener, every peer connection and
//! the watch on the mesh directory, and drives the wire sessions and the membership machine.
//!
//! ```text
//!  Unix listener ──accept (same uid only)──┐
//!  TCP listener ──accept───────────────────┤
//!  inotify: peer-<pid>.sock created ───────┼─▶ dial       ┌▶ NetEvent::PeerUp/Down
//!  link readable ─▶ Session ─▶ Membership ─(app messages)──┼▶ NetEvent::Message
//!  deadline: heartbeats, handshake/frame deadlines,        └◀ NetCommand::Send/Broadcast
//!            dial retries, manual peers, hub attempts
//! ```
//!
//! One peer's error closes its connection only; a slow peer's unwritten bytes wait in its own
//! session buffer while the thread serves the others. The thread never blocks on a peer.
//! The pieces live beside this file: `links` (a link's I/O), `dial` (how links come to be),
//! `hub` (the hub topology), `stream` (Unix or TCP).

use std::{
    collections::HashMap,
    fs, io,
    net::SocketAddr,
    os::{fd::OwnedFd, unix::fs::PermissionsExt},
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use mio::{
    Interest, Registry, Token,
    event::Event,
    net::{TcpListener, UnixListener},
    unix::SourceFd,
};
use rrt_reactor::{Context, Control, Worker};
use rrt_wire::{Compression, Message, WireConfig, WireError};
use rustix::{fs::inotify, process::getuid};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::{
    dial::{Dial, ManualPeer},
    hub::{COORDINATOR, Coordinator, HubAttempt, Role, Topology},
    links::Link,
    tls::TlsSetup,
};
use crate::{
    dir::MeshDir,
    identity::{Device, Identity},
    membership::{DownReason, HeartbeatConfig, LinkId, LinkStatus, Membership, Output, PeerInfo},
    registry::{Registry as PeerRegistry, RegistryEntry},
    trust::TrustStore,
};

const LISTENER: Token = Token(0);
const WATCH: Token = Token(1);
pub(super) const TCP_LISTENER: Token = Token(3);
const FIRST_LINK: usize = 16;
const READ_BUFFER: usize = 64 * 1024;
/// A peer's socket can appear a moment before it listens: retry refused dials this many times.
pub(super) const DIAL_ATTEMPTS: u32 = 20;
pub(super) const DIAL_BACKOFF: Duration = Duration::from_millis(25);
/// A peer that lets this much pile up unread is too slow to keep: its link is closed rather than
/// let it hold memory (it catches up by anti-entropy when it reconnects).
pub(super) const MAX_UNSENT: usize = 64 * 1024 * 1024;

/// TCP links to other hosts.
#[derive(Debug, Clone)]
pub struct TcpConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// If `listen`'s port is taken, listen on any free port instead.
    pub fall_back_to_any_port: bool,
    /// `HOST:PORT`s to dial and keep dialing.
    pub peers: Vec<String>,
    /// TLS, or plain TCP for a lab.
    pub security: TcpSecurity,
    /// The compression this side proposes when it dials another host. LZ4 pays across a
    /// network (text and CRDT updates shrink several-fold for microseconds of CPU); on a Unix
    /// socket it would only cost, so same-host links never propose it. Accepted links follow the
    /// dialer, whatever this says.
    pub compression: Compression,
}

/// How TCP links are protected.
#[derive(Debug, Clone)]
pub enum TcpSecurity {
    /// Plain TCP: anyone who reaches the port joins. For labs only.
    Insecure,
    /// TLS 1.3 with this device's identity; peers must be trusted or prove the join secret.
    Tls(TlsConfig),
}

/// A device's TLS settings.
#[derive(Clone)]
pub struct TlsConfig {
    /// This device's key and certificate.
    pub identity: Identity,
    /// This device's name (pinned to its key by the devices it joins with the secret).
    pub device: String,
    /// Which devices are trusted.
    pub trust: TrustStore,
    /// The mesh's join secret, if this device uses one.
    pub secret: Option<Vec<u8>>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("fingerprint", &self.identity.fingerprint())
            .field("device", &self.device)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// TLS configured for the worker: the rustls configurations and the settings they came from.
pub(super) struct TlsContext {
    pub(super) setup: TlsSetup,
    pub(super) config: TlsConfig,
}

/// Everything the network worker needs to know about its instance and mesh.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// The mesh directory.
    pub dir: MeshDir,
    /// This instance, as its hello introduces it.
    pub me: PeerInfo,
    /// This process's id (names its socket; the lower pid of two dials the other).
    pub pid: u32,
    /// This instance's control socket, for the registry.
    pub control_socket: std::path::PathBuf,
    /// How instances connect.
    pub topology: Topology,
    /// TCP links to other hosts, if any.
    pub tcp: Option<TcpConfig>,
    /// Heartbeat timing.
    pub heartbeat: HeartbeatConfig,
    /// Wire settings.
    pub wire: WireConfig,
}

/// What the network reactor publishes.
#[derive(Debug, Clone)]
pub enum NetEvent {
    /// A peer said hello.
    PeerUp(PeerInfo),
    /// A peer is gone.
    PeerDown {
        /// The peer.
        peer: PeerInfo,
        /// Why.
        reason: DownReason,
    },
    /// An application message (clipboard, state) from an up peer.
    Message {
        /// The sender.
        from: Uuid,
        /// The message.
        message: Message,
    },
}

/// What the async layer asks of the network reactor.
#[derive(Debug)]
pub enum NetCommand {
    /// Send to one peer (dropped, with a log line, if it is not up).
    Send {
        /// The peer.
        to: Uuid,
        /// The message.
        message: Message,
    },
    /// Send to every up peer but `except`.
    Broadcast {
        /// The message.
        message: Message,
        /// A peer to leave out (the one a relayed message came from).
        except: Option<Uuid>,
    },
    /// Report this instance's role and every up peer's liveness.
    Status(oneshot::Sender<NetStatus>),
    /// A peer was discovered at `address`: dial it, and keep trying while the hint stands.
    Discovered {
        /// Where it listens.
        address: SocketAddr,
    },
    /// A discovered address is gone from discovery: stop trying it (a link stays until it fails).
    Forget {
        /// The address.
        address: SocketAddr,
    },
    /// Say goodbye to every peer and stop.
    Leave,
}

/// The network reactor's view, for status displays.
#[derive(Debug, Clone)]
pub struct NetStatus {
    /// This instance's role in its topology.
    pub role: Role,
    /// Where this instance listens for TCP peers.
    pub listen: Option<SocketAddr>,
    /// Every up peer with a direct link.
    pub links: Vec<LinkView>,
    /// Hub leaves: the other leaves, as the coordinator lists them.
    pub relayed: Vec<PeerInfo>,
}

/// An up peer's direct link, for status displays.
#[derive(Debug, Clone)]
pub struct LinkView {
    /// The peer and its liveness.
    pub status: LinkStatus,
    /// `"unix"`, `"tls"` or `"tcp"`.
    pub transport: &'static str,
    /// `"local"`, or the peer's address.
    pub host: String,
    /// The compression the link's handshake agreed on.
    pub compression: Compression,
    /// Over TLS: the device behind the link.
    pub device: Option<Device>,
}

/// The worker. Create it with [`NetworkWorker::new`] inside an [`Rrt`](rrt_reactor::Rrt)
/// factory.
pub struct NetworkWorker {
    pub(super) config: NetworkConfig,
    pub(super) listener: UnixListener,
    pub(super) watch: OwnedFd,
    pub(super) tcp_listener: Option<TcpListener>,
    pub(super) tls: Option<Arc<TlsContext>>,
    pub(super) links: HashMap<LinkId, Link>,
    pub(super) next_link: LinkId,
    pub(super) membership: Membership,
    pub(super) dials: Vec<Dial>,
    pub(super) manual: Vec<ManualPeer>,
    pub(super) buffer: Box<[u8]>,
    pub(super) registry: PeerRegistry,
    pub(super) uid: u32,
    /// Hub: held while this instance coordinates.
    pub(super) coordinator: Option<Coordinator>,
    /// Hub leaf: the link to the coordinator.
    pub(super) hub_link: Option<LinkId>,
    /// Hub leaf without a coordinator: when to try again.
    pub(super) hub_attempt: Option<HubAttempt>,
}

impl NetworkWorker {
    /// Binds `peer-<pid>.sock`, watches the mesh directory, registers in `peers.json`, and plans
    /// a dial to every live peer with a higher pid (stale sockets of dead pids are removed).
    pub fn new(registry: &Registry, config: NetworkConfig) -> io::Result<Self> {
        config.dir.prepare().map_err(io::Error::other)?;
        let path = config.dir.peer_socket(config.pid);
        match fs::remove_file(&path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
            _ => {}
        }
        let mut listener = UnixListener::bind(&path)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
        let watch = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)?;
        inotify::add_watch(
            &watch,
            config.dir.path(),
            inotify::WatchFlags::CREATE | inotify::WatchFlags::MOVED_TO,
        )?;
        registry.register(&mut listener, LISTENER, Interest::READABLE)?;
        registry.register(
            &mut SourceFd(&std::os::fd::AsRawFd::as_raw_fd(&watch)),
            WATCH,
            Interest::READABLE,
        )?;
        let peers = PeerRegistry::new(config.dir.clone());
        peers.register(RegistryEntry {
            pid: config.pid,
            instance_id: config.me.id,
            name: config.me.name.clone(),
            peer_socket: path.clone(),
            control_socket: config.control_socket.clone(),
            started_ms: wall_ms(),
        })?;
        let tcp_listener = match &config.tcp {
            Some(tcp) => Some(listen_tcp(tcp, registry)?),
            None => None,
        };
        let tls = match config.tcp.as_ref().map(|tcp| &tcp.security) {
            Some(TcpSecurity::Tls(tls)) => Some(Arc::new(TlsContext {
                setup: TlsSetup::new(&tls.identity).map_err(io::Error::other)?,
                config: tls.clone(),
            })),
            _ => None,
        };
        let now = Instant::now();
        let manual = config
            .tcp
            .iter()
            .flat_map(|tcp| tcp.peers.iter())
            .map(|address| ManualPeer::new(address.clone(), now))
            .collect();
        let mut worker = Self {
            membership: Membership::new(config.me.clone(), config.heartbeat, now, wall_ms()),
            listener,
            watch,
            tcp_listener,
            tls,
            links: HashMap::new(),
            next_link: FIRST_LINK,
            dials: Vec::new(),
            manual,
            buffer: vec![0; READ_BUFFER].into_boxed_slice(),
            registry: peers,
            uid: getuid().as_raw(),
            coordinator: None,
            hub_link: None,
            hub_attempt: None,
            config,
        };
        match worker.config.topology {
            Topology::Mesh => {
                for pid in worker.config.dir.peer_pids()? {
                    worker.consider(pid, now);
                }
            }
            Topology::Hub => {
                worker.coordinator = Coordinator::try_acquire(&worker.config.dir, registry)?;
                match worker.coordinator {
                    Some(_) => worker.membership.coordinate(),
                    None => worker.hub_attempt = Some(HubAttempt::now(now)),
                }
            }
        }
        tracing::info!(socket = %path.display(), "listening for peers");
        Ok(worker)
    }

    /// Carries out what the membership decided.
    fn apply_membership(&mut self, ctx: &Context<'_, NetEvent>) {
        while let Some(output) = self.membership.poll_output() {
            match output {
                Output::Send { link, message } => self.send(link, &message, ctx.registry()),
                Output::Close { link, reason } => {
                    tracing::debug!(link, %reason, "closing a link");
                    if let Some(mut removed) = self.links.remove(&link) {
                        let _ = removed.session.write_to(&mut removed.stream);
                    }
                    self.forget_link(link);
                }
                Output::Up { link, peer } => {
                    tracing::info!(peer = %peer.name, id = %peer.id, "peer up");
                    self.manual_link_up(link, peer.id);
                    ctx.emit(NetEvent::PeerUp(peer));
                }
                Output::RelayedUp { peer } => {
                    tracing::info!(peer = %peer.name, id = %peer.id, "peer up (through the hub)");
                    ctx.emit(NetEvent::PeerUp(peer));
                }
                Output::Down { peer, reason } => {
                    tracing::info!(peer = %peer.name, id = %peer.id, %reason, "peer down");
                    ctx.emit(NetEvent::PeerDown { peer, reason });
                }
            }
        }
    }

    fn leave(&mut self, registry: &Registry) {
        let goodbye = Message::Goodbye {
            instance_id: self.config.me.id,
        };
        let links: Vec<LinkId> = self.membership.up().map(|(link, _)| link).collect();
        for link in links {
            // Best effort: a peer that cannot take it now will see the connection close.
            self.send(link, &goodbye, registry);
        }
    }
}

impl Worker for NetworkWorker {
    type Event = NetEvent;
    type Command = NetCommand;

    fn on_ready(&mut self, event: &Event, ctx: &mut Context<'_, NetEvent>) -> Control {
        let now = Instant::now();
        let control = match event.token() {
            LISTENER | COORDINATOR => self.accept(event.token(), ctx.registry(), now),
            TCP_LISTENER => self.accept_tcp(ctx.registry(), now),
            WATCH => self.read_watch(now),
            Token(id) => {
                if event.is_writable() || event.is_error() {
                    self.check_connect(id);
                }
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    self.read_link(id, ctx, now);
                }
                self.flush(id, ctx.registry());
                Control::Continue
            }
        };
        self.apply_membership(ctx);
        control
    }

    fn on_command(&mut self, command: NetCommand, ctx: &mut Context<'_, NetEvent>) -> Control {
        match command {
            NetCommand::Send { to, message } => match self.membership.link_of(to) {
                Some(link) => self.send(link, &message, ctx.registry()),
                None => tracing::debug!(%to, "not sending to a peer that is not up"),
            },
            NetCommand::Broadcast { message, except } => {
                let links: Vec<LinkId> = self
                    .membership
                    .up()
                    .filter(|(_, peer)| Some(peer.id) != except)
                    .map(|(link, _)| link)
                    .collect();
                for link in links {
                    self.send(link, &message, ctx.registry());
                }
            }
            NetCommand::Status(reply) => {
                let links = self
                    .membership
                    .status(Instant::now())
                    .into_iter()
                    .map(|status| {
                        let link = self
                            .membership
                            .link_of(status.peer.id)
                            .and_then(|link| self.links.get(&link));
                        LinkView {
                            transport: link.map_or("unknown", |link| link.stream.transport()),
                            host: link
                                .map_or_else(|| "unknown".to_owned(), |link| link.stream.host()),
                            compression: link
                                .and_then(|link| link.session.negotiated())
                                .map_or(Compression::None, |negotiated| negotiated.compression),
                            device: link.and_then(|link| link.device.clone()),
                            status,
                        }
                    })
                    .collect();
                let listen = self
                    .tcp_listener
                    .as_ref()
                    .and_then(|listener| listener.local_addr().ok());
                let _ = reply.send(NetStatus {
                    role: self.role(),
                    listen,
                    links,
                    relayed: self.membership.relayed().cloned().collect(),
                });
            }
            NetCommand::Discovered { address } => self.discovered(address, Instant::now()),
            NetCommand::Forget { address } => self.forget_address(address),
            NetCommand::Leave => {
                self.leave(ctx.registry());
                // Leaving: no successor search for a coordinator we are about to drop.
                self.hub_attempt = None;
                return Control::Stop;
            }
        }
        self.apply_membership(ctx);
        Control::Continue
    }

    fn deadline(&self) -> Option<Instant> {
        let sessions = self
            .links
            .values()
            .filter_map(|link| link.session.poll_timeout());
        let admissions = self.links.values().filter_map(|link| link.admit_by);
        let dials = self.dials.iter().map(|dial| dial.at);
        let manual = self.manual.iter().filter_map(ManualPeer::next_attempt);
        sessions
            .chain(admissions)
            .chain(dials)
            .chain(manual)
            .chain(self.membership.poll_timeout())
            .chain(self.hub_attempt.map(|attempt| attempt.at))
            .min()
    }

    fn on_deadline(&mut self, now: Instant, ctx: &mut Context<'_, NetEvent>) -> Control {
        let (due, later): (Vec<Dial>, Vec<Dial>) = std::mem::take(&mut self.dials)
            .into_iter()
            .partition(|dial| dial.at <= now);
        self.dials = later;
        for dial in due {
            if !self.is_linked(dial.pid) {
                self.dial(dial, ctx.registry(), now);
            }
        }
        if self.hub_attempt.is_some_and(|attempt| attempt.at <= now) {
            self.reach_coordinator(ctx.registry(), now);
        }
        self.dial_manual_peers(ctx.registry(), now);
        let expired: Vec<(LinkId, WireError)> = self
            .links
            .iter_mut()
            .filter_map(|(id, link)| link.session.handle_timeout(now).err().map(|e| (*id, e)))
            .collect();
        for (id, error) in expired {
            tracing::warn!(%error, "closing a peer connection");
            self.close(id, DownReason::Error(error.to_string()));
        }
        let unadmitted: Vec<LinkId> = self
            .links
            .iter()
            .filter(|(_, link)| link.admit_by.is_some_and(|by| by <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in unadmitted {
            tracing::warn!("closing a TLS connection whose peer did not prove itself in time");
            self.close(
                id,
                DownReason::Error("not admitted within the handshake timeout".to_owned()),
            );
        }
        if self.membership.poll_timeout().is_some_and(|at| at <= now) {
            self.membership.handle_timeout(now);
        }
        let links: Vec<LinkId> = self.links.keys().copied().collect();
        for id in links {
            self.flush(id, ctx.registry());
        }
        self.apply_membership(ctx);
        Control::Continue
    }
}

impl Drop for NetworkWorker {
    fn drop(&mut self) {
        if let Err(error) = self.registry.unregister(self.config.pid) {
            tracing::warn!(%error, "could not remove this instance from peers.json");
        }
        let _ = fs::remove_file(self.config.dir.peer_socket(self.config.pid));
    }
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

fn listen_tcp(tcp: &TcpConfig, registry: &Registry) -> io::Result<TcpListener> {
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
