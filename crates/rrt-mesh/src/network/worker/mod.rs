//! The network reactor's worker: the driver of the components beside it. It owns the sockets
//! (listeners, the directory watch, every link through [`Links`]) and turns each readiness,
//! command and deadline into calls on the sans-IO machines — [`Dialer`], [`Admission`],
//! [`Membership`] — then carries out what their `poll_*` return, as quinn's driver drains
//! quinn-proto. It decides nothing itself.
//!
//! One peer's error closes its connection only; a slow peer's unwritten bytes wait in its own
//! session buffer while the thread serves the others. The thread never blocks on a peer: host
//! names are resolved and pins written on helper threads.

use std::{collections::HashMap, fs, io, net::SocketAddr, os::fd::OwnedFd, time::Instant};

use mio::{
    Registry, Token,
    event::Event,
    net::{TcpListener, UnixListener},
};
use rand::{SeedableRng, rngs::StdRng};
use rrt_reactor::{Context, Control, Worker};
use rrt_sync::Arrival;
use rrt_wire::{Compression, Received as Frame, Session, WireConfig};
use rustix::process::getuid;
use uuid::Uuid;

use super::{
    admission::{self, Admission, Established, PeerKey, Settings, Taken},
    api::{NetCommand, NetEvent, NetStatus, NetworkConfig, Reach, Shape, TcpSecurity},
    dialer::{Action, Dialer, UnixDialed},
    fanout::Frames,
    hub::{COORDINATOR, Hub, Reached, Role, Topology},
    links::{Links, Read},
    resolver::Resolver,
    sockets::{
        LISTENER, RESOLVER, TCP_LISTENER, WATCH, accept_tcp, accept_unix, dial_tcp, dial_unix,
        listen_tcp, listen_unix, read_watch,
    },
    spread::{Recipients, Spread},
    stream::{Stream, WanStream},
    tls::TlsContext,
};
use crate::{
    LinkMessage, Message,
    dir::is_alive,
    proto::membership::{Direction, DownReason, LinkId, Membership, Output, Received, Route},
    proto::roster::{Roster, RosterEntry},
    proto::swarm::{PeerAddress, Swarm},
    registry::{Registry as PeerRegistry, RegistryEntry},
    wall_clock::wall_ms,
    wan::WanLink,
};

mod swarm;

use swarm::{HOUSEKEEPING, count_host, host_id};

/// The worker. Create it with [`NetworkWorker::new`] inside an [`Rrt`](rrt_reactor::Rrt)
/// factory.
pub struct NetworkWorker {
    config: NetworkConfig,
    listener: UnixListener,
    watch: OwnedFd,
    tcp_listener: Option<TcpListener>,
    tls: Option<TlsContext>,
    links: Links,
    membership: Membership,
    dialer: Dialer,
    admission: Admission,
    hub: Hub,
    resolver: Resolver,
    registry: PeerRegistry,
    uid: u32,
    swarm: Swarm,
    roster: Roster,
    spread: Spread,
    /// This host (its boot id): a swarm peer on it is dialed at its peer socket.
    host: String,
    /// The instances of this host's mesh directory, this one included: the member count until
    /// a peer's roster arrives.
    host_members: usize,
    /// Whether a peer's roster has arrived.
    roster_heard: bool,
    /// Swarm frames for peers being dialed: since when, and the frames.
    waiting: HashMap<Uuid, (Instant, Vec<Vec<u8>>)>,
    /// Other hosts' members whose link broke in a full mesh, and when.
    unlinked_at: HashMap<Uuid, Instant>,
    /// The process of each up same-host peer.
    pids: HashMap<Uuid, u32>,
    /// What this instance tells swarm peers of itself.
    address: PeerAddress,
    housekeeping: Instant,
    rng: StdRng,
}

impl NetworkWorker {
    /// Binds `peer-<pid>.sock`, watches the mesh directory, registers in `peers.json` (with a
    /// control socket only), and plans a dial to every live peer with a higher pid (stale sockets
    /// of dead pids are removed).
    pub fn new(registry: &Registry, config: NetworkConfig) -> io::Result<Self> {
        config.dir.prepare().map_err(io::Error::other)?;
        let (listener, watch) = listen_unix(&config.dir, config.pid, registry)?;
        let path = config.dir.peer_socket(config.pid);
        let peers = PeerRegistry::new(config.dir.clone());
        if let Some(control_socket) = &config.control_socket {
            peers.register(RegistryEntry {
                pid: config.pid,
                instance_id: config.me.id,
                name: config.me.name.clone(),
                peer_socket: path.clone(),
                control_socket: control_socket.clone(),
                started_ms: wall_ms(),
            })?;
        }
        let tcp_listener = match &config.tcp {
            Some(tcp) => Some(listen_tcp(tcp, registry)?),
            None => None,
        };
        let (tls, settings) = match config.tcp.as_ref().map(|tcp| &tcp.security) {
            Some(TcpSecurity::Tls(tls)) => (
                Some(TlsContext::new(tls)?),
                Some(Settings::new(tls, config.wire.handshake_timeout)),
            ),
            _ => (None, None),
        };
        let now = Instant::now();
        let targets = config.tcp.as_ref().map_or(&[][..], |tcp| &tcp.peers);
        let mesh = config.topology == Topology::Mesh;
        let host = host_id();
        // Listening on every address, this instance learns which one other hosts reach from
        // its first TCP link (`advertise`).
        let address = PeerAddress {
            host: host.clone(),
            pid: config.pid,
            tcp: tcp_listener
                .as_ref()
                .and_then(|listener| listener.local_addr().ok())
                .filter(|address| !address.ip().is_unspecified()),
        };
        let seed = wall_ms() ^ u64::from(config.pid);
        // Room for the frame's base64 in JSON, and the message around it.
        let max_gossip = (config.wire.max_frame as usize / 4) * 3;
        let swarm = Swarm::new(config.me.id, &address, &config.dir.mesh(), max_gossip, seed);
        let roster = Roster::new(
            RosterEntry {
                instance_id: config.me.id,
                name: config.me.name.clone(),
                incarnation: wall_ms(),
                alive: true,
                host: Some(host.clone()),
                pid: Some(config.pid),
            },
            now,
        );
        let host_members = count_host(&config);
        let mut worker = Self {
            membership: Membership::new(config.me.clone(), config.heartbeat, now, wall_ms()),
            dialer: Dialer::new(config.pid, mesh, targets, now),
            admission: Admission::new(settings),
            hub: Hub::new(config.topology, &config.dir, registry, now)?,
            resolver: Resolver::new(RESOLVER),
            links: Links::new(),
            listener,
            watch,
            tcp_listener,
            tls,
            registry: peers,
            uid: getuid().as_raw(),
            spread: Spread::new(config.topology, config.swarm_above, host_members),
            swarm,
            roster,
            host,
            host_members,
            roster_heard: false,
            waiting: HashMap::new(),
            unlinked_at: HashMap::new(),
            pids: HashMap::new(),
            address,
            housekeeping: now + HOUSEKEEPING,
            rng: StdRng::seed_from_u64(seed),
            config,
        };
        if worker.hub.role() == Role::Coordinator {
            worker.membership.coordinate();
        }
        if mesh {
            worker
                .dialer
                .dial_every_peer(worker.spread.shape() == Shape::FullMesh);
            for pid in worker.config.dir.peer_pids()? {
                worker.dialer.handle_peer_socket(pid, is_alive(pid), now);
            }
            worker.bootstrap(now);
        }
        worker.run_dialer(registry, now);
        tracing::info!(socket = %path.display(), "listening for peers");
        Ok(worker)
    }

    /// Watches a new connection and introduces it to the machines: a TLS link meets the
    /// membership (and hears our hello) only once admitted.
    fn open_link(
        &mut self,
        stream: Stream,
        session: Session<Message>,
        pid: Option<u32>,
        direction: Direction,
        registry: &Registry,
        now: Instant,
    ) -> Option<LinkId> {
        // TLS and wide-area links prove a key: they meet the admission first.
        let keyed = matches!(stream, Stream::Tls(_) | Stream::Wan(_));
        match self.links.add(stream, session, pid, direction, registry) {
            Ok(link) => {
                self.dialer.link_opened(link, pid);
                if keyed {
                    self.admission.link_opened(link, now);
                } else {
                    self.membership.link_opened(link, direction, now);
                }
                Some(link)
            }
            Err(error) => {
                tracing::warn!(%error, "could not watch a peer connection");
                None
            }
        }
    }

    /// Closes a link (after a last write of what is queued) and tells every machine.
    fn close(&mut self, link: LinkId, reason: DownReason) {
        self.close_link(link, reason, false);
    }

    fn close_link(&mut self, link: LinkId, reason: DownReason, by_peer: bool) {
        if self.links.remove(link) {
            self.membership.link_closed(link, reason);
        }
        self.admission.link_closed(link, by_peer);
        self.link_gone(link, Instant::now());
    }

    /// A link is gone: how links come to be may have to start again.
    fn link_gone(&mut self, link: LinkId, now: Instant) {
        self.spread.link_down(link);
        self.dialer.link_closed(link, now);
        self.hub.link_closed(link, now);
    }

    fn send(&mut self, link: LinkId, message: &Message, registry: &Registry) {
        if let Err(reason) = self.links.send(link, message, registry) {
            self.close(link, reason);
        }
    }

    /// Sends `message` on every link of `links`, encoded once per encoding among them.
    fn send_to_many(&mut self, links: &[LinkId], message: &Message, registry: &Registry) {
        let mut frames = Frames::new(message);
        for &link in links {
            let encoding = self.links.get(link).and_then(|l| l.session.encoding());
            let sent = match encoding.map(|encoding| frames.get(encoding)) {
                Some(Ok(frame)) => self.links.send_encoded(link, frame, registry),
                Some(Err(error)) => {
                    tracing::warn!(%error, link, "a message could not be sent to a peer");
                    continue;
                }
                // Still handshaking: the session encodes it once its format is agreed.
                None => self.links.send(link, message, registry),
            };
            if let Err(reason) = sent {
                self.close(link, reason);
            }
        }
    }

    fn flush(&mut self, link: LinkId, registry: &Registry) {
        if let Err(reason) = self.links.flush(link, registry) {
            self.close(link, reason);
        }
    }

    /// Reads the link until it would block, handing its frames on after each read.
    fn read_link(&mut self, link: LinkId, ctx: &Context<'_, NetEvent>, now: Instant) {
        loop {
            match self.links.read(link) {
                Read::Bytes => {
                    self.membership.handle_bytes(link, now);
                    if !self.take_frames(link, ctx, now) {
                        return;
                    }
                }
                Read::Drained => return,
                Read::Eof(reason) => return self.close_link(link, reason, true),
                Read::Failed(reason) => return self.close(link, reason),
            }
        }
    }

    /// Hands every whole frame to the admission, then the membership; `false` if the link was
    /// closed.
    fn take_frames(&mut self, link: LinkId, ctx: &Context<'_, NetEvent>, now: Instant) -> bool {
        self.authorize(link, now);
        loop {
            let Some(state) = self.links.get_mut(link) else {
                return false;
            };
            match state.session.poll_received(now) {
                Ok(Some(Frame::Message(message))) => {
                    state.traffic.messages_in += 1;
                    if self.admission.handle_message(link, &message) == Taken::Consumed {
                        self.apply_admission(now);
                        continue;
                    }
                    if let Received::Deliver(from) =
                        self.membership.handle_message(link, &message, now)
                    {
                        self.receive(from, message, Arrival::Direct, ctx, now);
                    }
                }
                Ok(Some(Frame::Skipped(_))) => {}
                Ok(None) => return true,
                Err(error) => {
                    tracing::warn!(%error, pid = state.pid, "closing a peer connection");
                    self.close(link, DownReason::Error(error.to_string()));
                    return false;
                }
            }
        }
    }

    /// Once a TLS link's handshake is over, hands the admission the peer's key and the trust
    /// store's verdict on it.
    fn authorize(&mut self, link: LinkId, now: Instant) {
        if !self.admission.is_handshaking(link) {
            return;
        }
        let (Some(tls), Some(state)) = (&self.tls, self.links.get(link)) else {
            return;
        };
        let established = match &state.stream {
            Stream::Tls(stream) => stream.established(&tls.trust),
            // QUIC proved the key before the link was attached.
            Stream::Wan(wan) => Some(Established::Key {
                key: PeerKey {
                    id: wan.device,
                    exporter: wan.exporter,
                },
                trust: tls.trust.judge(wan.device),
            }),
            _ => None,
        };
        if let Some(established) = established {
            self.admission.handle_established(link, established);
        }
        self.apply_admission(now);
    }

    /// Carries out what the admission decided.
    fn apply_admission(&mut self, now: Instant) {
        while let Some(output) = self.admission.poll_output() {
            match output {
                admission::Output::Send { link, message } => {
                    // Queued only: the link is flushed (or closed, which writes) right after.
                    if let Some(state) = self.links.get_mut(link)
                        && let Err(error) = state.session.send(&message.into())
                    {
                        tracing::debug!(%error, "could not tell a peer about its admission");
                    }
                }
                admission::Output::Admit { link } => {
                    if let Some(state) = self.links.get(link) {
                        let route = match state.stream {
                            Stream::Wan(_) => Route::Wan,
                            _ => Route::Lan,
                        };
                        let direction = state.direction;
                        self.membership
                            .link_opened_over(link, direction, route, now);
                    }
                }
                admission::Output::Close { link, reason } => self.close(link, reason),
                admission::Output::Pin { id, name } => {
                    if let Some(tls) = &mut self.tls {
                        tls.pins.pin(id, name);
                    }
                }
            }
        }
    }

    /// How the peer on `link` is reached.
    fn reach(&self, link: LinkId) -> Reach {
        match self.links.get(link).map(|link| &link.stream) {
            Some(Stream::Unix(_)) => Reach::SameHost,
            _ => Reach::Network,
        }
    }

    /// Carries out what the membership decided.
    fn apply_membership(&mut self, ctx: &Context<'_, NetEvent>) {
        while let Some(output) = self.membership.poll_output() {
            match output {
                Output::Send { link, message } => self.send(link, &message.into(), ctx.registry()),
                Output::Close { link, reason } => {
                    tracing::debug!(link, %reason, "closing a link");
                    self.links.remove(link);
                    self.admission.link_closed(link, false);
                    self.link_gone(link, Instant::now());
                }
                Output::Up { link, peer } => {
                    tracing::info!(peer = %peer.name, id = %peer.id, "peer up");
                    self.dialer.peer_up(link, peer.id);
                    let reach = self.reach(link);
                    self.linked(link, &peer, ctx.registry());
                    let clique = self.spread.clique(reach, self.config.topology, &peer);
                    ctx.emit(NetEvent::PeerUp {
                        peer,
                        reach,
                        clique,
                    });
                }
                Output::Relinked { link, peer } => {
                    tracing::debug!(peer = %peer.name, id = %peer.id, link, "peer moved to the preferred link");
                    self.dialer.peer_up(link, peer.id);
                    self.spread.link_up(link, Instant::now());
                    let reach = self.reach(link);
                    let clique = self.spread.clique(reach, self.config.topology, &peer);
                    ctx.emit(NetEvent::Relinked {
                        peer,
                        reach,
                        clique,
                    });
                }
                Output::RelayedUp { peer } => {
                    tracing::info!(peer = %peer.name, id = %peer.id, "peer up (through the hub)");
                    let reach = Reach::Relayed;
                    let clique = false;
                    ctx.emit(NetEvent::PeerUp {
                        peer,
                        reach,
                        clique,
                    });
                }
                Output::Down { peer, reason } => {
                    tracing::info!(peer = %peer.name, id = %peer.id, %reason, "peer down");
                    self.dialer.peer_down(peer.id);
                    self.unlinked(&peer, &reason);
                    ctx.emit(NetEvent::PeerDown { peer, reason });
                }
            }
        }
        self.apply_swarm(ctx);
        self.apply_roster(ctx);
    }

    /// Performs what the dialer asks.
    fn run_dialer(&mut self, registry: &Registry, now: Instant) {
        while let Some(action) = self.dialer.poll_action() {
            match action {
                Action::DialUnix { pid } => {
                    let dialed = dial_unix(&self.config.dir, pid).and_then(|stream| {
                        let session = Session::dial(self.config.wire.clone(), now);
                        let stream = Stream::Unix(stream);
                        let link = self.open_link(
                            stream,
                            session,
                            Some(pid),
                            Direction::Dialed,
                            registry,
                            now,
                        );
                        link.ok_or(UnixDialed::Abandoned)
                    });
                    let dialed = dialed.map_or_else(|failed| failed, UnixDialed::Linked);
                    self.dialer.handle_unix_dialed(pid, dialed, now);
                }
                Action::Clean { pid } => {
                    tracing::debug!(pid, "peer is gone");
                    self.config.dir.remove_sockets_of(pid);
                }
                Action::Resolve { address } => {
                    if let Err(error) = self.resolver.resolve(address.clone(), registry) {
                        let error = error.to_string();
                        self.dialer.handle_resolved(&address, Err(error), now);
                    }
                }
                Action::DialTcp { address, to } => {
                    let dialed = self.dial_tcp(to, registry, now);
                    self.dialer.handle_tcp_dialed(&address, dialed, now);
                }
            }
        }
    }

    /// Dials the target at `to` over TCP (with TLS if configured), proposing this side's
    /// cross-host compression.
    fn dial_tcp(
        &mut self,
        to: SocketAddr,
        registry: &Registry,
        now: Instant,
    ) -> Result<LinkId, String> {
        let tls = self.tls.as_ref().map(|tls| &tls.setup);
        let stream = dial_tcp(to, tls).map_err(|error| error.to_string())?;
        let session = Session::dial(self.dialing_across_hosts(), now);
        self.open_link(stream, session, None, Direction::Dialed, registry, now)
            .ok_or_else(|| "could not watch the connection".to_owned())
    }

    /// The wire settings of a link this instance dials to another host (TCP or the wide-area
    /// transport): it proposes the TCP links' compression.
    fn dialing_across_hosts(&self) -> WireConfig {
        WireConfig {
            compression: self
                .config
                .tcp
                .as_ref()
                .map_or(Compression::None, |tcp| tcp.compression),
            ..self.config.wire.clone()
        }
    }

    fn accept_unix(&mut self, token: Token, registry: &Registry, now: Instant) -> Control {
        let listener = match token {
            COORDINATOR => match self.hub.listener() {
                Some(listener) => listener,
                None => return Control::Continue,
            },
            _ => &self.listener,
        };
        let (accepted, control) = accept_unix(listener, self.uid);
        for (stream, pid) in accepted {
            let session = Session::accept(self.config.wire.clone(), now);
            let stream = Stream::Unix(stream);
            self.open_link(
                stream,
                session,
                Some(pid),
                Direction::Accepted,
                registry,
                now,
            );
        }
        control
    }

    /// A link of the wide-area transport: admitted at once by its QUIC-proven key (or by the
    /// join secret over QUIC's keying material), like a TLS link; refused without TLS settings,
    /// which hold the trust store.
    fn attach(&mut self, link: WanLink, registry: &Registry, now: Instant) {
        if self.tls.is_none() {
            tracing::warn!(device = %link.device, "refused a wide-area link: this instance has no TLS identity or trust store");
            return;
        }
        let session = match link.direction {
            // Across networks, as across hosts.
            Direction::Dialed => Session::dial(self.dialing_across_hosts(), now),
            Direction::Accepted => Session::accept(self.config.wire.clone(), now),
        };
        let direction = link.direction;
        let stream = Stream::Wan(WanStream::new(link));
        if let Some(id) = self.open_link(stream, session, None, direction, registry, now) {
            self.authorize(id, now);
            self.flush(id, registry);
        }
    }

    fn accept_tcp(&mut self, registry: &Registry, now: Instant) -> Control {
        let Some(listener) = &self.tcp_listener else {
            return Control::Continue;
        };
        let (accepted, control) = accept_tcp(listener, self.tls.as_ref().map(|tls| &tls.setup));
        for stream in accepted {
            let session = Session::accept(self.config.wire.clone(), now);
            self.open_link(stream, session, None, Direction::Accepted, registry, now);
        }
        control
    }

    fn read_watch(&mut self, registry: &Registry, now: Instant) -> Control {
        let (appeared, control) = read_watch(&self.watch);
        if control != Control::Continue {
            return control;
        }
        if !appeared.pids.is_empty() {
            self.host_members = count_host(&self.config);
        }
        for pid in appeared.pids {
            self.dialer.handle_peer_socket(pid, is_alive(pid), now);
        }
        if appeared.coordinator {
            self.hub.coordinator_appeared(now);
        }
        self.run_dialer(registry, now);
        Control::Continue
    }

    fn status(&self) -> NetStatus {
        let links = self
            .membership
            .status(Instant::now())
            .into_iter()
            .map(|status| {
                let id = self.membership.link_of(status.peer.id);
                let device = id.and_then(|id| self.admission.device(id)).cloned();
                self.links.view(id, status, device)
            })
            .collect();
        let listen = self
            .tcp_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok());
        NetStatus {
            role: self.hub.role(),
            listen,
            links,
            relayed: self.membership.relayed().cloned().collect(),
            shape: self.spread.shape(),
            members: self.members(),
            neighbours: self.swarm.neighbours().collect(),
        }
    }

    fn leave(&mut self, registry: &Registry) {
        let goodbye = Message::Link(LinkMessage::Goodbye {
            instance_id: self.config.me.id,
        });
        let links: Vec<LinkId> = self.membership.up().map(|(link, _)| link).collect();
        // Best effort: a peer that cannot take it now will see the connection close.
        self.send_to_many(&links, &goodbye, registry);
    }
}

impl Worker for NetworkWorker {
    type Event = NetEvent;
    type Command = NetCommand;

    fn on_ready(&mut self, event: &Event, ctx: &mut Context<'_, NetEvent>) -> Control {
        let now = Instant::now();
        let control = match event.token() {
            LISTENER | COORDINATOR => self.accept_unix(event.token(), ctx.registry(), now),
            TCP_LISTENER => self.accept_tcp(ctx.registry(), now),
            WATCH => self.read_watch(ctx.registry(), now),
            RESOLVER => {
                for (address, resolved) in self.resolver.drain() {
                    self.dialer.handle_resolved(&address, resolved, now);
                }
                self.run_dialer(ctx.registry(), now);
                Control::Continue
            }
            Token(link) => {
                if (event.is_writable() || event.is_error())
                    && let Err(reason) = self.links.check_connect(link)
                {
                    self.close(link, reason);
                }
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    self.read_link(link, ctx, now);
                }
                self.flush(link, ctx.registry());
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
                self.spread_message(&message, Recipients::AllBut(except), ctx);
            }
            NetCommand::Multicast { to, message } => {
                self.spread_message(&message, Recipients::Only(&to), ctx);
            }
            NetCommand::Status(reply) => {
                let _ = reply.send(self.status());
            }
            NetCommand::Discovered { address } => {
                self.dialer.handle_discovered(address, Instant::now());
            }
            NetCommand::Forget { address } => self.dialer.handle_forget(address),
            NetCommand::SetPeers { addresses } => {
                self.dialer.set_configured(&addresses, Instant::now());
            }
            NetCommand::Attach(link) => self.attach(link, ctx.registry(), Instant::now()),
            NetCommand::Leave => {
                self.leave(ctx.registry());
                self.hub.stop();
                return Control::Stop;
            }
        }
        self.apply_membership(ctx);
        Control::Continue
    }

    fn deadline(&self) -> Option<Instant> {
        [
            self.links.poll_timeout(),
            self.admission.poll_timeout(),
            self.dialer.poll_timeout(),
            self.membership.poll_timeout(),
            self.hub.deadline(),
            self.swarm.poll_timeout(),
            self.roster.poll_timeout(),
            Some(self.housekeeping),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn on_deadline(&mut self, now: Instant, ctx: &mut Context<'_, NetEvent>) -> Control {
        let registry = ctx.registry();
        if self.dialer.poll_timeout().is_some_and(|at| at <= now) {
            self.dialer.handle_timeout(now);
        }
        self.run_dialer(registry, now);
        match self.hub.reach(&self.config.dir, registry, now) {
            Reached::Coordinator => self.membership.coordinate(),
            Reached::Leaf(stream, pid) => {
                let session = Session::dial(self.config.wire.clone(), now);
                let stream = Stream::Unix(stream);
                let link =
                    self.open_link(stream, session, Some(pid), Direction::Dialed, registry, now);
                self.hub.linked(link, now);
                if let Some(link) = link {
                    self.membership.follow(link);
                }
            }
            Reached::Nobody => {}
        }
        for (link, error) in self.links.handle_timeout(now) {
            tracing::warn!(%error, "closing a peer connection");
            self.close(link, DownReason::Error(error.to_string()));
        }
        if self.admission.poll_timeout().is_some_and(|at| at <= now) {
            self.admission.handle_timeout(now);
            self.apply_admission(now);
        }
        if self.membership.poll_timeout().is_some_and(|at| at <= now) {
            self.membership.handle_timeout(now);
        }
        if self.swarm.poll_timeout().is_some_and(|at| at <= now) {
            self.swarm.handle_timeout(now);
        }
        if self.roster.poll_timeout().is_some_and(|at| at <= now) {
            self.roster.handle_timeout(now);
        }
        if self.housekeeping <= now {
            self.keep_house(now);
        }
        self.run_dialer(registry, now);
        for link in self.links.ids() {
            self.flush(link, registry);
        }
        self.apply_membership(ctx);
        Control::Continue
    }
}

impl Drop for NetworkWorker {
    fn drop(&mut self) {
        if self.config.control_socket.is_some()
            && let Err(error) = self.registry.unregister(self.config.pid)
        {
            tracing::warn!(%error, "could not remove this instance from peers.json");
        }
        let _ = fs::remove_file(self.config.dir.peer_socket(self.config.pid));
    }
}
