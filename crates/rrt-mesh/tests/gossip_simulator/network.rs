//! The virtual network: links (stream connections) dialed on demand between nodes, with their
//! faults.
//!
//! A link is modelled as TCP behaves, not as a datagram service:
//! - frames arrive in order, each after 1–5 ms; a frame that needs a retransmission (see the
//!   crate docs: that is what "10 % loss" means here) arrives 200 ms late, and holds up the frames
//!   behind it (head-of-line blocking);
//! - a link that breaks (a fault, a partition, a crashed peer) loses what was in flight, and each
//!   end learns it is gone only after a detection delay (1 ms – 4 s: a reset at once, or the
//!   heartbeat timeout of a silent peer);
//! - a link an end closes delivers what was sent before the close, then the close;
//! - a dial connects after a round trip, or fails: refused at once if the peer is dead (a crash
//!   is a process's: its host refuses the connection, and the dialer can tell its peer is gone),
//!   after a 3 s connect timeout if a partition is in the way (nothing to tell);
//! - one link per pair of nodes: a node sending to a peer that is dialing it joins that dial (a
//!   daemon keeps one connection per peer); a new link replaces an older one an end still holds.

use std::{
    collections::{BTreeMap, btree_map::Entry},
    time::{Duration, Instant},
};

use super::{
    queue::{Event, Queue},
    wire::Frame,
};

/// A link's name, never reused.
pub(crate) type LinkId = u64;

/// End 0 of a link is its dialer, end 1 its acceptor.
const DIALER: usize = 0;
/// How long after a failed dial across a partition the dialer gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The faults on links while faults are on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Faults {
    /// The chance a frame is lost once and retransmitted.
    pub(crate) retransmit: f64,
    /// How late a retransmitted frame arrives.
    pub(crate) retransmit_delay: Duration,
    /// The chance a frame breaks its link (TCP gives up, or the heartbeat times out).
    pub(crate) break_link: f64,
}

/// What the network counted.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counters {
    pub(crate) dials: u64,
    pub(crate) links_opened: u64,
    pub(crate) dials_failed: u64,
    pub(crate) links_broken: u64,
    pub(crate) frames_sent: u64,
    pub(crate) frames_retransmitted: u64,
    /// Frames sent into a link that was broken or gone, or sent with no link.
    pub(crate) frames_dropped: u64,
    /// Frames sent whose link closed or broke before they arrived.
    pub(crate) frames_lost: u64,
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    Dialing,
    Open,
}

#[derive(Debug)]
struct Link {
    /// Dialer, acceptor.
    ends: [usize; 2],
    state: State,
    /// Which ends still hold the link (dialing, or open at that end).
    held: [bool; 2],
    /// Nothing crosses it any more.
    broken: bool,
    /// Frames waiting for the dial, from end 0 or 1.
    queued: Vec<(usize, Frame)>,
    /// When the latest frame towards each end arrives.
    last_arrival: [Instant; 2],
}

impl Link {
    fn end_of(&self, node: usize) -> usize {
        usize::from(self.ends[DIALER] != node)
    }
}

/// How a connection attempt ended.
pub(crate) enum Connected {
    /// The link is open at both ends (an older link of the pair an end still held is let go).
    Open { ends: [usize; 2] },
    /// It failed, or was given up: each end still holding it is told (a `Closed` event).
    Failed,
}

/// Links, and who may reach whom.
#[derive(Debug, Default)]
pub(crate) struct Network {
    links: BTreeMap<LinkId, Link>,
    /// The link each node's end holds towards a peer: (node, peer).
    ends: BTreeMap<(usize, usize), LinkId>,
    next: LinkId,
    alive: Vec<bool>,
    /// Each node's group in a partition.
    side: Vec<bool>,
    split: bool,
    faults: Option<Faults>,
    counters: Counters,
}

impl Network {
    pub(crate) fn set_faults(&mut self, faults: Option<Faults>) {
        self.faults = faults;
    }

    pub(crate) fn counters(&self) -> Counters {
        self.counters
    }

    /// A new node, in group `side` of any partition.
    pub(crate) fn add_node(&mut self, node: usize, side: bool) {
        if self.alive.len() <= node {
            self.alive.resize(node + 1, false);
            self.side.resize(node + 1, false);
        }
        self.alive[node] = true;
        self.side[node] = side;
    }

    fn reachable(&self, a: usize, b: usize) -> bool {
        self.alive[a] && self.alive[b] && (!self.split || self.side[a] == self.side[b])
    }

    fn latency(rng: &mut fastrand::Rng) -> Duration {
        Duration::from_millis(rng.u64(1..=5))
    }

    fn detection_delay(rng: &mut fastrand::Rng) -> Duration {
        Duration::from_millis(rng.u64(1..=4000))
    }

    /// `from` sends `frame` to `to`: over their link, or — `dial` — over a link dialed for it.
    pub(crate) fn send(
        &mut self,
        now: Instant,
        rng: &mut fastrand::Rng,
        queue: &mut Queue,
        (from, to): (usize, usize),
        frame: Frame,
        dial: bool,
    ) {
        if let Some(&id) = self.ends.get(&(from, to)) {
            let link = self.links.get_mut(&id).expect("an end's link exists");
            let end = link.end_of(from);
            match link.state {
                State::Open => self.transmit(now, rng, queue, id, end, frame),
                State::Dialing if dial => link.queued.push((end, frame)),
                State::Dialing => self.counters.frames_dropped += 1,
            }
            return;
        }
        if !dial {
            self.counters.frames_dropped += 1;
            return;
        }
        // The peer is dialing this node right now: one connection for both.
        if let Some(&id) = self.ends.get(&(to, from)) {
            let link = self.links.get_mut(&id).expect("an end's link exists");
            if link.state == State::Dialing {
                let end = link.end_of(from);
                link.held[end] = true;
                link.queued.push((end, frame));
                self.ends.insert((from, to), id);
                return;
            }
        }
        self.counters.dials += 1;
        let id = self.next;
        self.next += 1;
        self.links.insert(
            id,
            Link {
                ends: [from, to],
                state: State::Dialing,
                held: [true, false],
                broken: false,
                queued: vec![(DIALER, frame)],
                last_arrival: [now; 2],
            },
        );
        self.ends.insert((from, to), id);
        let round_trip = Self::latency(rng) + Self::latency(rng);
        queue.push(now + round_trip, Event::Connect { link: id });
    }

    fn transmit(
        &mut self,
        now: Instant,
        rng: &mut fastrand::Rng,
        queue: &mut Queue,
        id: LinkId,
        from_end: usize,
        frame: Frame,
    ) {
        let faults = self.faults;
        let link = self.links.get_mut(&id).expect("a link to transmit on");
        if link.broken {
            self.counters.frames_dropped += 1;
            return;
        }
        if faults.is_some_and(|faults| rng.f64() < faults.break_link) {
            self.counters.frames_dropped += 1;
            self.break_link(now, rng, queue, id, [false; 2]);
            return;
        }
        self.counters.frames_sent += 1;
        let mut delay = Self::latency(rng);
        if let Some(faults) = faults
            && rng.f64() < faults.retransmit
        {
            self.counters.frames_retransmitted += 1;
            delay += faults.retransmit_delay;
        }
        let to_end = 1 - from_end;
        let at = (now + delay).max(link.last_arrival[to_end]);
        link.last_arrival[to_end] = at;
        let to = link.ends[to_end];
        queue.push(
            at,
            Event::Deliver {
                link: id,
                to,
                frame,
            },
        );
    }

    /// Nothing crosses link `id` any more; each end holding it learns so after a detection delay
    /// (`peer_died[e]`: end e's peer crashed).
    fn break_link(
        &mut self,
        now: Instant,
        rng: &mut fastrand::Rng,
        queue: &mut Queue,
        id: LinkId,
        peer_died: [bool; 2],
    ) {
        let link = self.links.get_mut(&id).expect("a link to break");
        if link.broken {
            return;
        }
        link.broken = true;
        self.counters.links_broken += 1;
        for end in 0..2 {
            if link.held[end] {
                let to = link.ends[end];
                let at = now + Self::detection_delay(rng);
                let peer_died = peer_died[end];
                queue.push(
                    at,
                    Event::Closed {
                        link: id,
                        to,
                        peer_died,
                    },
                );
            }
        }
    }

    /// Whether a frame over `id` reaches `to` — the link is not broken and `to` still holds it —
    /// and from whom.
    pub(crate) fn deliverable(&mut self, id: LinkId, to: usize) -> Option<usize> {
        let peer = self.links.get(&id).and_then(|link| {
            let end = link.end_of(to);
            let open = !link.broken && link.held[end] && link.state == State::Open;
            open.then_some(link.ends[1 - end])
        });
        if peer.is_none() {
            self.counters.frames_lost += 1;
        }
        peer
    }

    /// A dial's connection attempt ends.
    pub(crate) fn connect(
        &mut self,
        now: Instant,
        rng: &mut fastrand::Rng,
        queue: &mut Queue,
        id: LinkId,
    ) -> Option<Connected> {
        let link = self.links.get(&id)?;
        let [dialer, acceptor] = link.ends;
        if !self.reachable(dialer, acceptor) {
            self.counters.dials_failed += 1;
            // A dead peer's host resets the connection; a partition lets it time out.
            let partitioned = self.alive[dialer] && self.alive[acceptor];
            let at = if partitioned {
                now + CONNECT_TIMEOUT
            } else {
                now
            };
            let link = self.links.get_mut(&id).expect("just seen");
            link.broken = true;
            link.queued.clear();
            for end in 0..2 {
                if link.held[end] {
                    let to = link.ends[end];
                    let peer_died = !self.alive[link.ends[1 - end]];
                    queue.push(
                        at,
                        Event::Closed {
                            link: id,
                            to,
                            peer_died,
                        },
                    );
                }
            }
            return Some(Connected::Failed);
        }
        self.counters.links_opened += 1;
        for (node, peer) in [(dialer, acceptor), (acceptor, dialer)] {
            match self.ends.entry((node, peer)) {
                Entry::Occupied(mut entry) if *entry.get() != id => {
                    let old = entry.insert(id);
                    self.release(now, rng, queue, old, node);
                }
                Entry::Occupied(_) => {}
                Entry::Vacant(entry) => {
                    entry.insert(id);
                }
            }
        }
        let link = self.links.get_mut(&id).expect("just seen");
        link.state = State::Open;
        link.held = [true, true];
        Some(Connected::Open {
            ends: [dialer, acceptor],
        })
    }

    /// Sends the frames that waited for link `id` to open.
    pub(crate) fn flush(
        &mut self,
        now: Instant,
        rng: &mut fastrand::Rng,
        queue: &mut Queue,
        id: LinkId,
    ) {
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        for (end, frame) in std::mem::take(&mut link.queued) {
            self.transmit(now, rng, queue, id, end, frame);
        }
    }

    /// `node` lets go of its end of link `id` (closed it, or learnt it closed); the other end,
    /// if it holds the link, learns of the close after what was sent before it.
    fn release(
        &mut self,
        now: Instant,
        rng: &mut fastrand::Rng,
        queue: &mut Queue,
        id: LinkId,
        node: usize,
    ) {
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        let end = link.end_of(node);
        link.held[end] = false;
        let other = 1 - end;
        if link.held[other] {
            if !link.broken {
                let at = (now + Self::latency(rng)).max(link.last_arrival[other]);
                let to = link.ends[other];
                queue.push(
                    at,
                    Event::Closed {
                        link: id,
                        to,
                        peer_died: false,
                    },
                );
            }
        } else {
            self.links.remove(&id);
        }
    }

    /// `node` closes its link to `peer` (a `Disconnect` of its swarm), if it has one.
    pub(crate) fn close(
        &mut self,
        now: Instant,
        rng: &mut fastrand::Rng,
        queue: &mut Queue,
        (node, peer): (usize, usize),
    ) {
        if let Some(id) = self.ends.remove(&(node, peer)) {
            self.release(now, rng, queue, id, node);
        }
    }

    /// `to` learns that its end of `id` is gone: its peer, and whether the link was open at its
    /// end, if it still held it (else it closed it itself, or a newer link replaced it).
    pub(crate) fn closed(&mut self, id: LinkId, to: usize) -> Option<(usize, bool)> {
        let link = self.links.get(&id)?;
        let end = link.end_of(to);
        if !link.held[end] {
            return None;
        }
        let peer = link.ends[1 - end];
        let open = link.state == State::Open;
        self.ends.remove(&(to, peer));
        let link = self.links.get_mut(&id).expect("just seen");
        link.held[end] = false;
        if !link.held[1 - end] {
            self.links.remove(&id);
        }
        Some((peer, open))
    }

    /// `node` crashes: its links break, its peers learn so after a detection delay.
    pub(crate) fn crash(
        &mut self,
        now: Instant,
        rng: &mut fastrand::Rng,
        queue: &mut Queue,
        node: usize,
    ) {
        self.alive[node] = false;
        let held: Vec<((usize, usize), LinkId)> = self
            .ends
            .range((node, 0)..(node + 1, 0))
            .map(|(key, id)| (*key, *id))
            .collect();
        for (key, id) in held {
            self.ends.remove(&key);
            let link = self.links.get_mut(&id).expect("an end's link exists");
            let end = link.end_of(node);
            link.held[end] = false;
            if link.state == State::Open {
                let mut peer_died = [false; 2];
                peer_died[1 - end] = true;
                self.break_link(now, rng, queue, id, peer_died);
            }
            // A dial with the crashed node fails when it would have connected.
            let link = self.links.get(&id).expect("still there");
            if !link.held[0] && !link.held[1] {
                self.links.remove(&id);
            }
        }
    }

    /// The nodes split into the groups of `side`: links across break, dials across fail.
    pub(crate) fn partition(
        &mut self,
        now: Instant,
        rng: &mut fastrand::Rng,
        queue: &mut Queue,
        side: impl Fn(usize) -> bool,
    ) {
        for (node, slot) in self.side.iter_mut().enumerate() {
            *slot = side(node);
        }
        self.split = true;
        let across: Vec<LinkId> = self
            .links
            .iter()
            .filter(|(_, link)| {
                link.state == State::Open && side(link.ends[0]) != side(link.ends[1])
            })
            .map(|(id, _)| *id)
            .collect();
        for id in across {
            self.break_link(now, rng, queue, id, [false; 2]);
        }
    }

    /// The partition heals (a node starting meanwhile picks its group).
    pub(crate) fn heal(&mut self) {
        self.split = false;
    }
}
