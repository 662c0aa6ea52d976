//! The network reactor's worker: one thread owns the peer listener, every peer connection and
//! the watch on the mesh directory, and drives the wire sessions and the membership machine.
//!
//! ```text
//!  listener ──accept (same uid only)──┐
//!  inotify: peer-<pid>.sock created ──┼─▶ dial (lower pid dials)      ┌▶ NetEvent::PeerUp/Down
//!  connection readable ─▶ Session ─▶ Membership ─(app messages)─────────┼▶ NetEvent::Message
//!  deadline: heartbeats, handshake/frame deadlines, dial retries      └◀ NetCommand::Send/Broadcast
//! ```
//!
//! One peer's error closes its connection only; a slow peer's unwritten bytes wait in its own
//! session buffer while the thread serves the others. The thread never blocks on a peer.

use std::{
    collections::{BTreeMap, HashMap},
    fs,
    io::{self, Read},
    mem::MaybeUninit,
    os::{fd::OwnedFd, unix::fs::PermissionsExt},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use mio::{
    Interest, Registry, Token,
    event::Event,
    net::{UnixListener, UnixStream},
    unix::SourceFd,
};
use rrt_reactor::{Context, Control, Worker};
use rrt_wire::{Member, Message, Received as Frame, Session, WireConfig, WireError};
use rustix::{fs::inotify, io::Errno, net::sockopt::socket_peercred, process::getuid};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::hub::{COORDINATOR, Coordinator, HubAttempt, Role, Topology};
use crate::{
    dir::{MeshDir, is_alive, peer_socket_pid},
    membership::{
        DownReason, HeartbeatConfig, LinkId, LinkStatus, Membership, Output, PeerInfo, Received,
    },
    registry::{Registry as PeerRegistry, RegistryEntry},
};

const LISTENER: Token = Token(0);
const WATCH: Token = Token(1);
const FIRST_LINK: usize = 16;
const READ_BUFFER: usize = 64 * 1024;
/// A peer's socket can appear a moment before it listens: retry refused dials this many times.
const DIAL_ATTEMPTS: u32 = 20;
const DIAL_BACKOFF: Duration = Duration::from_millis(25);
/// A peer that lets this much pile up unread is too slow to keep: its link is closed rather than
/// let it hold memory (it catches up by anti-entropy when it reconnects).
const MAX_UNSENT: usize = 64 * 1024 * 1024;

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
    /// Say goodbye to every peer and stop.
    Leave,
}

/// The network reactor's view, for status displays.
#[derive(Debug, Clone)]
pub struct NetStatus {
    /// This instance's role in its topology.
    pub role: Role,
    /// Every up peer.
    pub links: Vec<LinkStatus>,
    /// Hub leaves: the other leaves, as the coordinator lists them.
    pub relayed: Vec<PeerInfo>,
}

struct Link {
    stream: UnixStream,
    session: Session,
    /// The peer's process, from `SO_PEERCRED` or the socket we dialed.
    pid: u32,
    writable: bool,
}

struct Dial {
    pid: u32,
    at: Instant,
    attempt: u32,
}

/// The worker. Create it with [`NetworkWorker::new`] inside an [`Rrt`](rrt_reactor::Rrt)
/// factory.
pub struct NetworkWorker {
    config: NetworkConfig,
    listener: UnixListener,
    watch: OwnedFd,
    links: HashMap<LinkId, Link>,
    next_link: LinkId,
    membership: Membership,
    dials: Vec<Dial>,
    buffer: Box<[u8]>,
    registry: PeerRegistry,
    uid: u32,
    /// Hub: held while this instance coordinates.
    coordinator: Option<Coordinator>,
    /// Hub leaf: the link to the coordinator.
    hub_link: Option<LinkId>,
    /// Hub leaf without a coordinator: when to try again.
    hub_attempt: Option<HubAttempt>,
    /// Hub leaf: the other leaves, as the coordinator last listed them.
    relayed: BTreeMap<Uuid, PeerInfo>,
    /// Relayed peers lost with the coordinator, to report at the next chance.
    pending_relayed_downs: Vec<PeerInfo>,
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
        let now = Instant::now();
        let mut worker = Self {
            membership: Membership::new(config.me.clone(), config.heartbeat, now, wall_ms()),
            listener,
            watch,
            links: HashMap::new(),
            next_link: FIRST_LINK,
            dials: Vec::new(),
            buffer: vec![0; READ_BUFFER].into_boxed_slice(),
            registry: peers,
            uid: getuid().as_raw(),
            coordinator: None,
            hub_link: None,
            hub_attempt: None,
            relayed: BTreeMap::new(),
            pending_relayed_downs: Vec::new(),
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
                if worker.coordinator.is_none() {
                    worker.hub_attempt = Some(HubAttempt::now(now));
                }
            }
        }
        tracing::info!(socket = %path.display(), "listening for peers");
        Ok(worker)
    }

    fn role(&self) -> Role {
        match (self.config.topology, &self.coordinator) {
            (Topology::Mesh, _) => Role::Peer,
            (Topology::Hub, Some(_)) => Role::Coordinator,
            (Topology::Hub, None) => Role::Leaf,
        }
    }

    /// A hub leaf without a coordinator: take the role if it is free, else dial whoever has it.
    fn reach_coordinator(&mut self, registry: &Registry, now: Instant) {
        let attempt = self.hub_attempt.take().unwrap_or(HubAttempt::now(now));
        match Coordinator::try_acquire(&self.config.dir, registry) {
            Ok(Some(coordinator)) => {
                self.coordinator = Some(coordinator);
                return;
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "could not contend for the coordinator role"),
        }
        match UnixStream::connect(self.config.dir.coordinator_socket()) {
            Ok(stream) => {
                let pid = socket_peercred(&stream)
                    .map_or(0, |cred| cred.pid.as_raw_nonzero().get().unsigned_abs());
                let session = Session::dial(self.config.wire.clone(), now);
                self.hub_link = self.add_link(stream, session, pid, registry, now);
            }
            Err(error) => {
                tracing::debug!(%error, "the coordinator is not reachable yet");
                self.hub_attempt = Some(attempt.next(now));
            }
        }
    }

    /// A peer socket exists for `pid`: clean it if its process is dead, plan a dial if ours to
    /// make.
    fn consider(&mut self, pid: u32, now: Instant) {
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

    fn is_linked(&self, pid: u32) -> bool {
        self.links.values().any(|link| link.pid == pid)
    }

    fn dial(&mut self, dial: Dial, registry: &Registry, now: Instant) {
        let path = self.config.dir.peer_socket(dial.pid);
        match UnixStream::connect(&path) {
            Ok(stream) => {
                let session = Session::dial(self.config.wire.clone(), now);
                self.add_link(stream, session, dial.pid, registry, now);
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

    fn accept(&mut self, token: Token, registry: &Registry, now: Instant) -> Control {
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
                        self.add_link(stream, session, pid, registry, now);
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
                Err(error) if error.raw_os_error().is_some_and(|e| e == libc_emfile()) => {
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

    fn add_link(
        &mut self,
        mut stream: UnixStream,
        session: Session,
        pid: u32,
        registry: &Registry,
        now: Instant,
    ) -> Option<LinkId> {
        let id = self.next_link;
        self.next_link += 1;
        if let Err(error) = registry.register(&mut stream, Token(id), Interest::READABLE) {
            tracing::warn!(%error, "could not watch a peer connection");
            return None;
        }
        self.links.insert(
            id,
            Link {
                stream,
                session,
                pid,
                writable: false,
            },
        );
        self.membership.link_opened(id, now);
        Some(id)
    }

    fn read_watch(&mut self, now: Instant) -> Control {
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

    fn read_link(&mut self, id: LinkId, ctx: &Context<'_, NetEvent>, now: Instant) {
        loop {
            let Some(link) = self.links.get_mut(&id) else {
                return;
            };
            match link.stream.read(&mut self.buffer) {
                Ok(0) => {
                    let reason = match link.session.handle_eof() {
                        WireError::Closed => DownReason::Closed,
                        error => DownReason::Error(error.to_string()),
                    };
                    self.close(id, reason);
                    return;
                }
                Ok(read) => {
                    if let Err(error) = link.session.handle_input(&self.buffer[..read]) {
                        tracing::warn!(%error, pid = link.pid, "closing a peer connection");
                        self.close(id, DownReason::Error(error.to_string()));
                        return;
                    }
                    if !self.take_frames(id, ctx, now) {
                        return;
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    self.close(id, DownReason::Error(error.to_string()));
                    return;
                }
            }
        }
    }

    /// Hands every whole frame to the membership; `false` if the link was closed.
    fn take_frames(&mut self, id: LinkId, ctx: &Context<'_, NetEvent>, now: Instant) -> bool {
        loop {
            let Some(link) = self.links.get_mut(&id) else {
                return false;
            };
            match link.session.poll_received(now) {
                Ok(Some(Frame::Message(message))) => {
                    match (self.membership.handle_message(id, &message, now), message) {
                        (Received::Deliver(_), Message::Members { peers }) => {
                            self.relay_members(id, peers, ctx);
                        }
                        (Received::Deliver(from), message) => {
                            ctx.emit(NetEvent::Message { from, message });
                        }
                        (Received::Handled | Received::Dropped, _) => {}
                    }
                }
                Ok(Some(Frame::Skipped(_))) => {}
                Ok(None) => return true,
                Err(error) => {
                    tracing::warn!(%error, pid = link.pid, "closing a peer connection");
                    self.close(id, DownReason::Error(error.to_string()));
                    return false;
                }
            }
        }
    }

    fn send(&mut self, id: LinkId, message: &Message, registry: &Registry) {
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        if let Err(error) = link.session.send(message) {
            tracing::warn!(%error, pid = link.pid, "a message could not be sent to a peer");
        }
        self.flush(id, registry);
        if let Some(link) = self.links.get(&id)
            && link.session.unsent() > MAX_UNSENT
        {
            let unsent = link.session.unsent();
            tracing::warn!(
                pid = link.pid,
                unsent,
                "closing a peer that stopped reading"
            );
            self.close(
                id,
                DownReason::Error(format!("{unsent} bytes unread: too slow")),
            );
        }
    }

    /// Writes what the link's session has queued; keeps the rest for when it is writable.
    fn flush(&mut self, id: LinkId, registry: &Registry) {
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        if let Err(error) = link.session.write_to(&mut link.stream) {
            self.close(id, DownReason::Error(error.to_string()));
            return;
        }
        let wants_write = link.session.wants_write();
        if wants_write != link.writable {
            let interest = if wants_write {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            match registry.reregister(&mut link.stream, Token(id), interest) {
                Ok(()) => link.writable = wants_write,
                Err(error) => self.close(id, DownReason::Error(error.to_string())),
            }
        }
    }

    /// Closes a link after a last best-effort write of what is queued (the answer that tells a
    /// peer of another version why, a goodbye), then reports its peer down.
    fn close(&mut self, id: LinkId, reason: DownReason) {
        if let Some(mut link) = self.links.remove(&id) {
            let _ = link.session.write_to(&mut link.stream);
            // Dropping the stream closes it and removes it from the poll.
            self.membership.link_closed(id, reason);
        }
        self.forget_link(id);
    }

    /// A hub leaf that lost its coordinator loses sight of the other leaves too, and goes
    /// looking for the next coordinator at once.
    fn forget_link(&mut self, id: LinkId) {
        if self.hub_link == Some(id) {
            self.hub_link = None;
            self.hub_attempt = Some(HubAttempt::now(Instant::now()));
            self.pending_relayed_downs
                .extend(std::mem::take(&mut self.relayed).into_values());
        }
    }

    /// A hub leaf's view of the other leaves, from the coordinator's list.
    fn relay_members(&mut self, link: LinkId, peers: Vec<Member>, ctx: &Context<'_, NetEvent>) {
        if self.hub_link != Some(link) {
            tracing::debug!("ignoring a member list not from our coordinator");
            return;
        }
        let listed: BTreeMap<Uuid, PeerInfo> = peers
            .into_iter()
            .filter(|member| member.instance_id != self.config.me.id)
            .map(|member| {
                let peer = PeerInfo {
                    id: member.instance_id,
                    name: member.name,
                    capabilities: Vec::new(),
                };
                (peer.id, peer)
            })
            .collect();
        for (id, peer) in &self.relayed {
            if !listed.contains_key(id) {
                tracing::info!(peer = %peer.name, %id, "peer down (gone from the hub)");
                ctx.emit(NetEvent::PeerDown {
                    peer: peer.clone(),
                    reason: DownReason::GoneFromHub,
                });
            }
        }
        for (id, peer) in &listed {
            if !self.relayed.contains_key(id) {
                tracing::info!(peer = %peer.name, %id, "peer up (through the hub)");
                ctx.emit(NetEvent::PeerUp(peer.clone()));
            }
        }
        self.relayed = listed;
    }

    /// The coordinator tells every leaf who else is connected.
    fn announce_members(&mut self, registry: &Registry) {
        let up: Vec<(LinkId, Member)> = self
            .membership
            .up()
            .map(|(link, peer)| {
                let member = Member {
                    instance_id: peer.id,
                    name: peer.name.clone(),
                };
                (link, member)
            })
            .collect();
        for (link, recipient) in &up {
            let peers = up
                .iter()
                .filter(|(_, member)| member != recipient)
                .map(|(_, member)| member.clone())
                .collect();
            self.send(*link, &Message::Members { peers }, registry);
        }
    }

    /// Carries out what the membership decided.
    fn apply_membership(&mut self, ctx: &Context<'_, NetEvent>) {
        let mut changed = false;
        for peer in std::mem::take(&mut self.pending_relayed_downs) {
            tracing::info!(peer = %peer.name, id = %peer.id, "peer down (lost the coordinator)");
            ctx.emit(NetEvent::PeerDown {
                peer,
                reason: DownReason::GoneFromHub,
            });
        }
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
                Output::Up { peer, .. } => {
                    tracing::info!(peer = %peer.name, id = %peer.id, "peer up");
                    ctx.emit(NetEvent::PeerUp(peer));
                    changed = true;
                }
                Output::Down { peer, reason } => {
                    tracing::info!(peer = %peer.name, id = %peer.id, %reason, "peer down");
                    ctx.emit(NetEvent::PeerDown { peer, reason });
                    changed = true;
                }
            }
            if changed && self.role() == Role::Coordinator && self.membership_settled() {
                changed = false;
                self.announce_members(ctx.registry());
            }
        }
    }

    /// Whether the membership has no outputs left to carry out (announce once per batch).
    fn membership_settled(&self) -> bool {
        !self.membership.has_output()
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
            WATCH => self.read_watch(now),
            Token(id) => {
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
                let _ = reply.send(NetStatus {
                    role: self.role(),
                    links: self.membership.status(Instant::now()),
                    relayed: self.relayed.values().cloned().collect(),
                });
            }
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
        let dials = self.dials.iter().map(|dial| dial.at);
        sessions
            .chain(dials)
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
        let expired: Vec<(LinkId, WireError)> = self
            .links
            .iter_mut()
            .filter_map(|(id, link)| link.session.handle_timeout(now).err().map(|e| (*id, e)))
            .collect();
        for (id, error) in expired {
            tracing::warn!(%error, "closing a peer connection");
            self.close(id, DownReason::Error(error.to_string()));
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

fn libc_emfile() -> i32 {
    Errno::MFILE.raw_os_error()
}
