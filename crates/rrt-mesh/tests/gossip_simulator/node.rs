//! One node: the real machines — `Swarm` (HyParView + Plumtree), `ClipSync`, `Roster` — wired by
//! the rule the daemon applies in gossip mode. This file *is* that rule; the rest of the
//! simulator only carries frames and faults.
//!
//! ```text
//! Swarm  Send { to }          ─▶ over the link to `to`, dialed first if there is none
//!        Disconnect(peer)     ─▶ the link closes (this end at once: peer_down, link_closed)
//!        Delivered { from }   ─▶ decoded: ClipSync::handle_spread / Roster::handle(Spread)
//! link   opened               ─▶ peer_up on ClipSync and Roster (each sends its catch-up)
//!        closed (either end)  ─▶ peer_down on both, Swarm::link_closed;
//!                                 Roster::declare_dead if the peer crashed
//!        dial failed          ─▶ Swarm::link_closed;
//!                                 Roster::declare_dead if refused (the peer's process is gone)
//!        machine message      ─▶ ClipSync::handle / Roster::handle(Direct)
//! ClipSync, Roster  To(peer)  ─▶ over the link, dropped if there is none
//!        Broadcast, Multicast ─▶ encoded, into the tree: Swarm::broadcast
//! start                       ─▶ Swarm::join(a few live nodes, from discovery)
//! active view empty for 5 s   ─▶ Swarm::join again, with a few others (see below)
//! ```
//!
//! A link opening sends the machines' catch-up before the gossip frames that waited for the
//! dial (both ends call `peer_up` first).
//!
//! The last line is this simulator's addition to the rule, for a gap it found: HyParView sends a
//! join once. A node that starts during a partition and whose contacts are all on the other side
//! gets no answer, keeps an empty active view, and is never found — nobody has heard of it; after
//! the heal, only a later newcomer picking it as a contact by chance brings it in. So the daemon
//! must join again while its active view is empty (`world.rs`, `REJOIN_AFTER`; the contacts
//! come from discovery, as the first join's do).

use std::{collections::BTreeSet, time::Instant};

use rrt_mesh::{
    proto::roster::{Roster, RosterEntry},
    proto::swarm::{PeerAddress, Swarm, SwarmOutput},
};
use rrt_sync::{
    Arrival, CLIPBOARD_HAVE, ClipEntry, ClipMessage, ClipSync, Clipboard, Neighbour, Outgoing,
    Stamp, Timestamp,
};
use uuid::Uuid;

use super::{
    stats::Observer,
    wire::{Frame, Spread},
};

/// The mesh's name: its swarm's topic.
const MESH: &str = "gossip-simulator";
/// The frame limit the daemon negotiates.
pub(crate) const MAX_FRAME: usize = 10 * 1024 * 1024;
/// The daemon's clipboard history.
const HISTORY: usize = 50;

/// What a node asks of the network.
#[derive(Debug)]
pub(crate) enum Action {
    /// `frame` to `to`: over their link; `dial`: dial one if there is none.
    Send {
        to: Uuid,
        frame: Box<Frame>,
        dial: bool,
    },
    /// Close the link to `peer` (this end has let go already).
    Close { peer: Uuid },
}

/// One instance.
pub(crate) struct Node {
    id: Uuid,
    swarm: Swarm,
    clip: ClipSync,
    roster: Roster,
    /// The peers whose link is open at this end: the machines have them up.
    up: BTreeSet<Uuid>,
}

impl Node {
    /// Instance `id`, started at virtual `now` (wall clock `now_ms`).
    pub(crate) fn new(id: Uuid, seed: u64, now: Instant, now_ms: u64) -> Self {
        let address = PeerAddress {
            host: format!("host-{id}"),
            pid: 1,
            tcp: None,
        };
        Self {
            id,
            swarm: Swarm::new(id, &address, MESH, MAX_FRAME, seed),
            clip: ClipSync::new(Clipboard::new(id, HISTORY)),
            roster: Roster::new(
                RosterEntry {
                    instance_id: id,
                    name: format!("node {id}"),
                    incarnation: now_ms,
                    alive: true,
                    host: None,
                    pid: None,
                },
                now,
            ),
            up: BTreeSet::new(),
        }
    }

    /// Asks `contacts` to take this node into the swarm.
    pub(crate) fn join(&mut self, contacts: Vec<Uuid>, now: Instant) {
        self.swarm.join(contacts, now);
    }

    /// A link to `peer` opened. One replacing a link this end still held (its close not seen
    /// yet) is a new link for the machines — a new catch-up — and nothing for the swarm, which
    /// knows peers, not links.
    pub(crate) fn link_up(&mut self, peer: Uuid) {
        if !self.up.insert(peer) {
            self.clip.peer_down(peer);
            self.roster.peer_down(peer);
        }
        self.clip
            .peer_up(peer, Neighbour::Other, &[CLIPBOARD_HAVE.into()]);
        self.roster.peer_up(peer);
    }

    /// The link to (or the dial of) `peer` is gone; `peer_died`: because it crashed.
    pub(crate) fn link_down(&mut self, peer: Uuid, peer_died: bool, now: Instant) {
        if self.up.remove(&peer) {
            self.clip.peer_down(peer);
            self.roster.peer_down(peer);
        }
        self.swarm.link_closed(peer, now);
        if peer_died {
            self.roster.declare_dead(peer, now);
        }
    }

    /// A frame from `from` over their link.
    pub(crate) fn receive(
        &mut self,
        from: Uuid,
        frame: Frame,
        (now, now_ms): (Instant, u64),
        observer: &mut Observer,
    ) {
        match frame {
            Frame::Gossip(frame) => self
                .swarm
                .handle_frame(from, &frame, now)
                .expect("a gossip frame from a simulated node"),
            Frame::Clip(message) => {
                let stamp = stamp_of(&message);
                self.clip.handle(from, message, now_ms);
                self.observe_clip(stamp, now, observer);
            }
            Frame::Roster(entries) => {
                self.roster
                    .handle(from, entries, Arrival::Direct, now_ms, now);
            }
        }
    }

    /// A local copy of `text`, saved at once (the simulator has no disk); `lost`: its broadcast
    /// is lost.
    pub(crate) fn copy(&mut self, text: String, now_ms: u64, lost: bool) -> ClipEntry {
        let staged = self
            .clip
            .stage_copy(text.into(), now_ms, MAX_FRAME as u32)
            .expect("a small copy fits a frame")
            .expect("every copy's text is new");
        let entry = self.clip.commit(staged);
        if lost {
            while self.clip.poll_outgoing().is_some() {}
        }
        entry
    }

    /// When [`Node::timeout`] must run next.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        [self.swarm.poll_timeout(), self.roster.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    pub(crate) fn timeout(&mut self, now: Instant) {
        self.swarm.handle_timeout(now);
        self.roster.handle_timeout(now);
    }

    /// Carries out what the machines ask, until none asks anything: frames and closes for the
    /// network go to `actions`.
    pub(crate) fn pump(
        &mut self,
        (now, now_ms): (Instant, u64),
        actions: &mut Vec<Action>,
        observer: &mut Observer,
    ) {
        loop {
            let mut busy = false;
            while let Some(output) = self.swarm.poll_output() {
                busy = true;
                self.swarm_output(output, (now, now_ms), actions, observer);
            }
            while let Some(outgoing) = self.clip.poll_outgoing() {
                busy = true;
                match outgoing {
                    Outgoing::To(peer, message) => {
                        observer.direct_sent(0);
                        actions.push(Action::Send {
                            to: peer,
                            frame: Box::new(Frame::Clip(message)),
                            dial: false,
                        });
                    }
                    Outgoing::Broadcast { message, except } => {
                        let forwarded = except.is_some();
                        self.broadcast(Spread::Clip(message), forwarded, now, observer);
                    }
                    Outgoing::Multicast { message, .. } => {
                        self.broadcast(Spread::Clip(message), true, now, observer);
                    }
                }
            }
            while let Some(outgoing) = self.roster.poll_outgoing() {
                busy = true;
                match outgoing {
                    Outgoing::To(peer, entries) => {
                        observer.direct_sent(entries.len());
                        actions.push(Action::Send {
                            to: peer,
                            frame: Box::new(Frame::Roster(entries)),
                            dial: false,
                        });
                    }
                    Outgoing::Broadcast { message, except } => {
                        let forwarded = except.is_some();
                        self.broadcast(Spread::Roster(message), forwarded, now, observer);
                    }
                    Outgoing::Multicast { message, .. } => {
                        self.broadcast(Spread::Roster(message), true, now, observer);
                    }
                }
            }
            while self.clip.poll_event().is_some() {}
            if !busy {
                return;
            }
        }
    }

    fn swarm_output(
        &mut self,
        output: SwarmOutput,
        (now, now_ms): (Instant, u64),
        actions: &mut Vec<Action>,
        observer: &mut Observer,
    ) {
        match output {
            SwarmOutput::Send { to, frame, payload } => {
                observer.gossip_sent(payload, &frame);
                actions.push(Action::Send {
                    to,
                    frame: Box::new(Frame::Gossip(frame)),
                    dial: true,
                });
            }
            SwarmOutput::Disconnect(peer) => {
                self.link_down(peer, false, now);
                actions.push(Action::Close { peer });
            }
            SwarmOutput::NeighbourUp(_) | SwarmOutput::NeighbourDown(_) => {}
            SwarmOutput::Delivered { from, content } => {
                let spread = Spread::decode(&content);
                observer.delivered(self.id, from, &spread);
                match spread {
                    Spread::Clip(message) => {
                        let stamp = stamp_of(&message);
                        self.clip.handle_spread(from, message, now_ms);
                        self.observe_clip(stamp, now, observer);
                    }
                    Spread::Roster(entries) => {
                        self.roster
                            .handle(from, entries, Arrival::Spread, now_ms, now);
                    }
                }
            }
        }
    }

    /// `spread` into the tree; `forwarded`: what a catch-up over a link taught the machine.
    fn broadcast(
        &mut self,
        spread: Spread,
        forwarded: bool,
        now: Instant,
        observer: &mut Observer,
    ) {
        let content = spread.encode();
        observer.broadcast(self.id, &spread, &content, forwarded);
        self.swarm
            .broadcast(content, now)
            .expect("a broadcast fits a frame");
    }

    fn observe_clip(&self, stamp: Option<Stamp>, now: Instant, observer: &mut Observer) {
        if let Some(stamp) = stamp
            && self.clip.clipboard().contains(&stamp)
        {
            observer.holds(self.id, stamp, now);
        }
    }

    pub(crate) fn id(&self) -> Uuid {
        self.id
    }

    /// The current clipboard value's stamp.
    pub(crate) fn current(&self) -> Option<Stamp> {
        self.clip.clipboard().current().map(|entry| entry.stamp)
    }

    /// How many members the roster counts alive.
    pub(crate) fn members(&self) -> usize {
        self.roster.members()
    }

    /// The members the roster counts alive.
    pub(crate) fn alive_members(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.roster.alive().map(|entry| entry.instance_id)
    }

    /// How many links are open at this end.
    pub(crate) fn links(&self) -> usize {
        self.up.len()
    }

    /// The peers in the swarm's active view.
    pub(crate) fn neighbour_ids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.swarm.neighbours()
    }

    /// How many peers are in the swarm's active view.
    pub(crate) fn neighbours(&self) -> usize {
        self.swarm.neighbours().count()
    }
}

/// The stamp of a clipboard update.
fn stamp_of(message: &ClipMessage) -> Option<Stamp> {
    match message {
        ClipMessage::ClipboardUpdate {
            timestamp,
            counter,
            source_instance,
            ..
        } => Some(Stamp {
            time: Timestamp {
                wall_ms: *timestamp,
                counter: *counter,
            },
            origin: *source_instance,
        }),
        _ => None,
    }
}
