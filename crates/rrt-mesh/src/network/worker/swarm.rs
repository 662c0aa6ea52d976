//! The worker's side of a large mesh: what the swarm (`crate::proto::swarm`), the roster
//! (`crate::proto::roster`) and the mesh's shape (`network::spread`) decide, carried out on the
//! reactor's links — a link up or down told to them, their messages sent (on the tree or down
//! links), peers dialed on demand, deaths declared, the shape changed, and the chores of a
//! housekeeping tick. The rules are in those machines; this is the driving.

use std::{
    fs,
    time::{Duration, Instant},
};

use mio::Registry;

use rand::RngExt;
use rrt_reactor::Context;
use rrt_sync::{Arrival, Outgoing};
use uuid::Uuid;

use super::NetworkWorker;
use crate::{
    LinkMessage, Message,
    dir::is_alive,
    network::{
        api::{NetEvent, NetworkConfig, Reach, Shape},
        hub::Topology,
        spread::{Recipients, Spread, speaks_swarm},
    },
    proto::membership::{DownReason, LinkId, PeerInfo},
    proto::swarm::{PeerAddress, SwarmOutput},
    wall_clock::wall_ms,
};

/// How often an instance looks after its mesh: this host's members' processes looked at, a
/// swarm's lingering links closed, frames for peers that never came given up, an isolated swarm
/// instance bootstrapped.
pub(super) const HOUSEKEEPING: Duration = Duration::from_secs(2);
/// How long swarm frames wait for a peer being dialed.
const WAIT_FOR_PEER: Duration = Duration::from_secs(5);
/// The most swarm frames that wait for one peer.
const MAX_WAITING: usize = 64;
/// How long a full mesh waits for another host's member whose link broke to link again before
/// it takes the member for dead.
const REJOIN: Duration = Duration::from_secs(10);
/// How long after its link broke a same-host peer's process is looked at again.
const EXIT_GRACE: Duration = Duration::from_millis(200);
/// How many instances of the mesh directory an isolated swarm instance dials at once.
const BOOTSTRAP: usize = 3;

impl NetworkWorker {
    /// A peer is up on `link`: the swarm and the roster meet it, and frames waiting for it go.
    pub(super) fn linked(&mut self, link: LinkId, peer: &PeerInfo, registry: &Registry) {
        let now = Instant::now();
        self.spread.link_up(link, now);
        self.advertise(link, now);
        if let Some(pid) = self.links.get(link).and_then(|state| state.pid) {
            self.pids.insert(peer.id, pid);
        }
        if !speaks_swarm(peer) {
            return;
        }
        self.roster.peer_up(peer.id);
        if let Some((_, frames)) = self.waiting.remove(&peer.id) {
            for frame in frames {
                self.send(link, &gossip(frame), registry);
            }
        }
        // Joining through a peer sends random walks through the swarm that end in new
        // neighbours: once, to get in, not on every link (most are the swarm's own, brief).
        if self.swarm.neighbours().next().is_none() {
            self.swarm.join(vec![peer.id], now);
        }
    }

    /// Listening on every address and not yet telling other hosts which: the address the peer
    /// on TCP `link` reached this instance at, with the listening port, is the one to tell.
    fn advertise(&mut self, link: LinkId, now: Instant) {
        if self.address.tcp.is_some() {
            return;
        }
        let port = self
            .tcp_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
            .map(|address| address.port());
        let ip = self
            .links
            .get(link)
            .and_then(|state| state.stream.local_ip());
        if let (Some(ip), Some(port)) = (ip, port) {
            self.address.tcp = Some(std::net::SocketAddr::new(ip, port));
            tracing::debug!(address = ?self.address.tcp, "telling swarm peers where to dial");
            let address = self.address.clone();
            self.swarm.set_address(&address, now);
        }
    }

    /// A peer is down: the swarm and the roster hear of it, and of its death if that is what
    /// its link's end says — it went silent and nobody vouched for it, it said goodbye, or its
    /// process is gone.
    pub(super) fn unlinked(&mut self, peer: &PeerInfo, reason: &DownReason) {
        let now = Instant::now();
        let pid = self.pids.remove(&peer.id);
        if !speaks_swarm(peer) {
            return;
        }
        self.roster.peer_down(peer.id);
        self.swarm.link_closed(peer.id, now);
        let dead = match (reason, pid) {
            (DownReason::TimedOut | DownReason::Goodbye, _) => true,
            (DownReason::Closed | DownReason::Error(_), Some(pid)) if is_alive(pid) => {
                // It may be exiting (a process closes its sockets before it is gone): the
                // next look at this host's members is brought forward.
                self.housekeeping = self.housekeeping.min(now + EXIT_GRACE);
                false
            }
            (DownReason::Closed | DownReason::Error(_), Some(_)) => true,
            // Another host's: in a full mesh every live member links to every other, so one
            // whose link broke and that has none again within `REJOIN` is taken for dead (a
            // live one says otherwise when it is back). A swarm releases links all the time.
            (DownReason::Closed | DownReason::Error(_), None) => {
                if self.spread.shape() == Shape::FullMesh {
                    self.unlinked_at.insert(peer.id, now);
                }
                false
            }
            (DownReason::GoneFromHub | DownReason::Released, _) => false,
        };
        if dead {
            tracing::info!(peer = %peer.name, id = %peer.id, %reason, "member declared dead");
            self.roster.declare_dead(peer.id, now);
        }
    }

    /// A message from `from`: the swarm's and the roster's are theirs, the rest is published.
    pub(super) fn receive(
        &mut self,
        from: Uuid,
        message: Message,
        arrival: Arrival,
        ctx: &Context<'_, NetEvent>,
        now: Instant,
    ) {
        match message {
            Message::Link(LinkMessage::Gossip { frame }) if arrival == Arrival::Direct => {
                if let Err(error) = self.swarm.handle_frame(from, &frame, now) {
                    tracing::debug!(%error, %from, "dropped a swarm frame");
                }
            }
            Message::Link(LinkMessage::Roster { members }) => {
                self.roster_heard = true;
                self.roster.handle(from, members, arrival, wall_ms(), now);
            }
            Message::Link(_) => {
                tracing::debug!(%from, "dropped a link message the swarm delivered");
            }
            message => ctx.emit(NetEvent::Message {
                from,
                message,
                arrival,
            }),
        }
    }

    /// Carries out what the swarm decided.
    pub(super) fn apply_swarm(&mut self, ctx: &Context<'_, NetEvent>) {
        let now = Instant::now();
        while let Some(output) = self.swarm.poll_output() {
            match output {
                SwarmOutput::Send { to, frame, .. } => match self.membership.link_of(to) {
                    Some(link) => self.send(link, &gossip(frame), ctx.registry()),
                    None => self.wait_for(to, frame, ctx.registry(), now),
                },
                // Not closed at once: an unused link lingers (`spread`), so that the brief
                // links of joins and shuffles carry the machines' catch-up both ways, which
                // repairs a replica that missed a broadcast (the gossip simulator found it).
                SwarmOutput::Disconnect(peer) => tracing::debug!(%peer, "the swarm let a peer go"),
                SwarmOutput::NeighbourUp(peer) => tracing::debug!(%peer, "swarm neighbour up"),
                SwarmOutput::NeighbourDown(peer) => {
                    tracing::debug!(%peer, "swarm neighbour down");
                }
                SwarmOutput::Delivered { from, content } => {
                    match serde_json::from_slice::<Message>(&content) {
                        Ok(message) => self.receive(from, message, Arrival::Spread, ctx, now),
                        Err(error) => {
                            tracing::debug!(%error, %from, "dropped a broadcast this version does not read");
                        }
                    }
                }
            }
        }
    }

    /// Carries out what the roster decided, and sees whether the mesh changed shape.
    pub(super) fn apply_roster(&mut self, ctx: &Context<'_, NetEvent>) {
        while let Some(outgoing) = self.roster.poll_outgoing() {
            match outgoing.map(|members| Message::Link(LinkMessage::Roster { members })) {
                Outgoing::To(peer, message) => {
                    if let Some(link) = self.membership.link_of(peer) {
                        self.send(link, &message, ctx.registry());
                    }
                }
                Outgoing::Broadcast { message, except } => {
                    self.spread_message(&message, Recipients::AllBut(except), ctx);
                }
                Outgoing::Multicast { to, message } => {
                    self.spread_message(&message, Recipients::Only(&to), ctx);
                }
            }
        }
        self.reshape(ctx);
    }

    /// Sends `message` by the mesh's shape: on the swarm's tree, down links, or both.
    pub(super) fn spread_message(
        &mut self,
        message: &Message,
        to: Recipients<'_>,
        ctx: &Context<'_, NetEvent>,
    ) {
        let mut route = self.spread.route(self.membership.up(), to);
        if route.tree {
            let spread = serde_json::to_vec(message)
                .map_err(|error| error.to_string())
                .and_then(|content| {
                    self.swarm
                        .broadcast(content.into(), Instant::now())
                        .map_err(|error| error.to_string())
                });
            if let Err(error) = spread {
                // Flooded down the links instead, as a full mesh does.
                tracing::warn!(%error, "a message could not go on the swarm's tree; sending it down every link");
                route = Spread::new(Topology::Mesh, usize::MAX, 0).route(self.membership.up(), to);
            }
            self.apply_swarm(ctx);
        }
        self.send_to_many(&route.links, message, ctx.registry());
    }

    /// Holds `frame` for `peer`, which has no link, and dials it as it told the swarm.
    pub(super) fn wait_for(
        &mut self,
        peer: Uuid,
        frame: Vec<u8>,
        registry: &Registry,
        now: Instant,
    ) {
        let address = self.swarm.address(peer).cloned();
        match address {
            Some(address) if address.host == self.host => {
                self.dialer.dial_on_demand(address.pid, now);
            }
            Some(PeerAddress { tcp: Some(tcp), .. }) => {
                if !self.waiting.contains_key(&peer) {
                    self.dialer.dial_address_once(tcp);
                }
            }
            _ => {
                tracing::debug!(%peer, "no way to reach a swarm peer");
                self.swarm.link_closed(peer, now);
                return;
            }
        }
        let (_, frames) = self
            .waiting
            .entry(peer)
            .or_insert_with(|| (now, Vec::new()));
        if frames.len() < MAX_WAITING {
            frames.push(frame);
        }
        self.run_dialer(registry, now);
    }

    /// The members this instance counts: its roster's — or, until a peer's roster arrived,
    /// this host's instances if more (so that an instance starting among a hundred starts in
    /// their swarm rather than dialing them all).
    pub(super) fn members(&self) -> usize {
        if self.roster_heard {
            self.roster.members()
        } else {
            self.roster.members().max(self.host_members)
        }
    }

    /// Counts the members again; a new shape changes how links are made, and which same-host
    /// peers are a clique (their machines are told, as for a new link).
    pub(super) fn reshape(&mut self, ctx: &Context<'_, NetEvent>) {
        let members = self.members();
        let Some(shape) = self.spread.count(members) else {
            return;
        };
        tracing::info!(?shape, members, "the mesh changed shape");
        let now = Instant::now();
        let full_mesh = shape == Shape::FullMesh;
        if self.config.topology == Topology::Mesh {
            self.dialer.dial_every_peer(full_mesh);
            if full_mesh {
                for pid in self.config.dir.peer_pids().unwrap_or_default() {
                    self.dialer.handle_peer_socket(pid, is_alive(pid), now);
                }
            }
        }
        let relinked: Vec<(LinkId, PeerInfo)> = self
            .membership
            .up()
            .filter(|(_, peer)| peer.capabilities.iter().any(|c| c == rrt_sync::FULL_MESH))
            .map(|(link, peer)| (link, peer.clone()))
            .collect();
        for (link, peer) in relinked {
            let reach = self.reach(link);
            if reach == Reach::SameHost {
                let clique = self.spread.clique(reach, self.config.topology, &peer);
                ctx.emit(NetEvent::Relinked {
                    peer,
                    reach,
                    clique,
                });
            }
        }
        self.bootstrap(now);
        self.run_dialer(ctx.registry(), now);
    }

    /// A swarm instance with no swarm peer dials a few instances of its host to join through.
    pub(super) fn bootstrap(&mut self, now: Instant) {
        if self.spread.shape() != Shape::Swarm
            || self.config.topology != Topology::Mesh
            || !self.waiting.is_empty()
            || self.membership.up().any(|(_, peer)| speaks_swarm(peer))
        {
            return;
        }
        let mut pids: Vec<u32> = self
            .config
            .dir
            .peer_pids()
            .unwrap_or_default()
            .into_iter()
            .filter(|pid| *pid != self.config.pid && is_alive(*pid))
            .collect();
        for _ in 0..BOOTSTRAP.min(pids.len()) {
            let pid = pids.swap_remove(self.rng.random_range(0..pids.len()));
            self.dialer.dial_on_demand(pid, now);
        }
    }

    /// A swarm's chores, once a [`HOUSEKEEPING`]: links it lets go, frames it gives up on, an
    /// isolated instance's bootstrap.
    pub(super) fn keep_house(&mut self, now: Instant) {
        self.housekeeping = now + HOUSEKEEPING;
        let rejoined: Vec<Uuid> = self
            .unlinked_at
            .keys()
            .filter(|peer| self.membership.link_of(**peer).is_some())
            .copied()
            .collect();
        for peer in rejoined {
            self.unlinked_at.remove(&peer);
        }
        let gone: Vec<Uuid> = self
            .unlinked_at
            .iter()
            .filter(|(_, at)| now.saturating_duration_since(**at) >= REJOIN)
            .map(|(peer, _)| *peer)
            .collect();
        for peer in gone {
            self.unlinked_at.remove(&peer);
            tracing::info!(%peer, "member declared dead: its link broke and it did not come back");
            self.roster.declare_dead(peer, now);
        }
        // This host's members are looked at directly: a death only the dead's last neighbours
        // saw must not be lost with them.
        let gone: Vec<(Uuid, u32)> = self
            .roster
            .on_host(&self.host)
            .filter(|(_, pid)| !is_alive(*pid))
            .collect();
        for (peer, pid) in gone {
            tracing::info!(%peer, pid, "member declared dead: its process is gone");
            self.roster.declare_dead(peer, now);
        }
        let up = self
            .membership
            .up()
            .map(|(link, peer)| (link, peer, self.dialer.is_configured(link)));
        let lingering = self
            .spread
            .lingering(up, |peer| self.swarm.is_neighbour(peer), now);
        for link in lingering {
            tracing::debug!(link, "closing a link the swarm does not use");
            self.close(link, DownReason::Released);
        }
        let given_up: Vec<Uuid> = self
            .waiting
            .iter()
            .filter(|(_, (since, _))| now.saturating_duration_since(*since) >= WAIT_FOR_PEER)
            .map(|(peer, _)| *peer)
            .collect();
        for peer in given_up {
            tracing::debug!(%peer, "a swarm peer could not be reached");
            self.waiting.remove(&peer);
            self.swarm.link_closed(peer, now);
        }
        // HyParView joins once: an instance left with links but no neighbour (its contacts
        // answered before a partition healed, say) joins again through them.
        if self.spread.shape() == Shape::Swarm && self.swarm.neighbours().next().is_none() {
            let contacts: Vec<Uuid> = self
                .membership
                .up()
                .filter(|(_, peer)| speaks_swarm(peer))
                .map(|(_, peer)| peer.id)
                .take(BOOTSTRAP)
                .collect();
            if !contacts.is_empty() {
                self.swarm.join(contacts, now);
            }
        }
        self.bootstrap(now);
    }
}

/// A swarm frame as the wire carries it.
pub(super) fn gossip(frame: Vec<u8>) -> Message {
    Message::Link(LinkMessage::Gossip { frame })
}

/// This host, as its swarm peers tell it from others: its boot id (its host name if none).
pub(super) fn host_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .or_else(|_| fs::read_to_string("/etc/hostname"))
        .map(|id| id.trim().to_owned())
        .unwrap_or_default()
}

/// The live instances of the mesh directory, this one included.
pub(super) fn count_host(config: &NetworkConfig) -> usize {
    let others = config
        .dir
        .peer_pids()
        .unwrap_or_default()
        .into_iter()
        .filter(|pid| *pid != config.pid && is_alive(*pid))
        .count();
    others + 1
}
