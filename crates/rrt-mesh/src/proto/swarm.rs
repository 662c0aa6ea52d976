//! Membership by partial views and broadcast on a tree, for meshes too large to link everyone to
//! everyone: iroh-gossip's IO-free HyParView + Plumtree (`iroh_gossip::proto`) behind the shape
//! of rrt's other machines — inputs with the time, outputs polled, one deadline — so the network
//! reactor drives it over rrt's own links like [`Membership`](crate::proto::membership::Membership),
//! and a simulator drives it in virtual time.
//!
//! ```text
//!  frames from peers ─▶ handle_frame ─┐                ┌▶ Send { to, frame }        a link's gossip frame
//!  broadcast(content) ────────────────┤                ├▶ Disconnect(peer)          a link HyParView let go
//!  join(peers), link_closed(peer) ────┼─▶ Swarm ───────┼▶ NeighbourUp / Down(peer)  the active view
//!  handle_timeout(now) ───────────────┘                └▶ Delivered { from, content } new, from the tree
//! ```
//!
//! * **HyParView** keeps a small *active view* (5 peers, each linked) and a larger *passive view*
//!   (30 addresses, refreshed by shuffles): a node's links and heartbeats stay at 5 however large
//!   the mesh grows, and a lost neighbour is replaced from the passive view.
//! * **Plumtree** pushes each broadcast eagerly along a spanning tree of the active views and
//!   announces it lazily (`IHave`) on the other links, so a lost branch is grafted back: about
//!   1.4–1.8 payload messages per node per broadcast (DESIGN.md, "Scale").
//!
//! What a peer needs to dial this instance travels as HyParView's opaque peer data: a
//! [`PeerAddress`] in JSON. The frames are iroh-gossip's own wire messages in postcard, as
//! PROTOCOL.md describes; all instances of a mesh share one topic, named by the mesh.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    net::SocketAddr,
    time::Instant,
};

use bytes::Bytes;
use iroh_gossip::proto::{
    Command, Config, Event, InEvent, Message, OutEvent, PeerData, Scope, State, Timer, TopicId,
};
use rand::{SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The room a gossip frame needs beyond its content (topic, ids, lengths), with margin.
const FRAME_OVERHEAD: usize = 256;

/// How a peer of the swarm is dialed, as it says itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerAddress {
    /// The host it runs on (its boot id): a peer of this host is dialed at its peer socket.
    pub host: String,
    /// Its process, whose peer socket is `peer-<pid>.sock` in the mesh directory.
    pub pid: u32,
    /// Where it listens for other hosts, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<SocketAddr>,
}

/// What the driver must do for the swarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwarmOutput {
    /// Send `frame` (a `gossip` message's bytes) to `to`, dialing it first if it has no link.
    Send {
        /// The peer.
        to: Uuid,
        /// The frame.
        frame: Vec<u8>,
        /// Whether it carries a broadcast's content (rather than a control message).
        payload: bool,
    },
    /// HyParView let `peer` go: close its link unless something else needs it.
    Disconnect(Uuid),
    /// `peer` joined this instance's active view.
    NeighbourUp(Uuid),
    /// `peer` left this instance's active view.
    NeighbourDown(Uuid),
    /// A broadcast reached this instance for the first time, from the neighbour `from`.
    Delivered {
        /// The neighbour it came from (not its origin).
        from: Uuid,
        /// What was broadcast.
        content: Bytes,
    },
}

/// Why a frame or a broadcast was refused.
#[derive(Debug, thiserror::Error)]
pub enum SwarmError {
    /// A peer's frame is not an iroh-gossip message.
    #[error("not a gossip frame: {0}")]
    Malformed(#[from] postcard::Error),
    /// A broadcast larger than a frame may carry.
    #[error("a broadcast of {size} bytes is larger than the {max} a gossip frame carries")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The largest content.
        max: usize,
    },
}

/// One instance's view of the swarm and its part in the broadcast tree.
#[derive(Debug)]
pub struct Swarm {
    state: State<Uuid, StdRng>,
    topic: TopicId,
    timers: BTreeMap<(Instant, u64), Timer<Uuid>>,
    timer_seq: u64,
    neighbours: BTreeSet<Uuid>,
    addresses: HashMap<Uuid, PeerAddress>,
    outputs: VecDeque<SwarmOutput>,
}

impl Swarm {
    /// Instance `me`, reached at `address`, in the swarm of mesh `mesh`; frames up to
    /// `max_frame` bytes; `seed` drives its random choices (a simulator's seed, or any).
    pub fn new(me: Uuid, address: &PeerAddress, mesh: &str, max_frame: usize, seed: u64) -> Self {
        let data = serde_json::to_vec(address).map_or_else(|_| PeerData::default(), PeerData::new);
        let config = Config {
            max_message_size: max_frame.max(iroh_gossip::proto::MIN_MAX_MESSAGE_SIZE),
            ..Config::default()
        };
        let state = State::new(me, data, config, StdRng::seed_from_u64(seed));
        let mut swarm = Self {
            state,
            topic: topic_of(mesh),
            timers: BTreeMap::new(),
            timer_seq: 0,
            neighbours: BTreeSet::new(),
            addresses: HashMap::new(),
            outputs: VecDeque::new(),
        };
        // Joined with nobody yet: ready for the join requests of others.
        swarm.join(Vec::new(), Instant::now());
        swarm
    }

    /// This instance is now reached at `address` (told to peers from now on).
    pub fn set_address(&mut self, address: &PeerAddress, now: Instant) {
        if let Ok(data) = serde_json::to_vec(address) {
            self.handle(InEvent::UpdatePeerData(PeerData::new(data)), now);
        }
    }

    /// Asks `peers` (already known members) to take this instance into the swarm.
    pub fn join(&mut self, peers: Vec<Uuid>, now: Instant) {
        self.handle(InEvent::Command(self.topic, Command::Join(peers)), now);
    }

    /// A `gossip` frame from `from`.
    pub fn handle_frame(
        &mut self,
        from: Uuid,
        frame: &[u8],
        now: Instant,
    ) -> Result<(), SwarmError> {
        let message: Message<Uuid> = postcard::from_bytes(frame)?;
        self.handle(InEvent::RecvMessage(from, message), now);
        Ok(())
    }

    /// Spreads `content` to every member, on the tree.
    pub fn broadcast(&mut self, content: Bytes, now: Instant) -> Result<(), SwarmError> {
        let max = self.max_content();
        if content.len() > max {
            return Err(SwarmError::TooLarge {
                size: content.len(),
                max,
            });
        }
        let command = Command::Broadcast(content, Scope::Swarm);
        self.handle(InEvent::Command(self.topic, command), now);
        Ok(())
    }

    /// The largest content [`Swarm::broadcast`] takes.
    pub fn max_content(&self) -> usize {
        self.state.max_message_size().saturating_sub(FRAME_OVERHEAD)
    }

    /// The link to `peer` is gone.
    pub fn link_closed(&mut self, peer: Uuid, now: Instant) {
        self.handle(InEvent::PeerDisconnected(peer), now);
    }

    /// When [`Swarm::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.keys().next().map(|(at, _)| *at)
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let timer = entry.remove();
            self.handle(InEvent::TimerExpired(timer), now);
        }
    }

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<SwarmOutput> {
        self.outputs.pop_front()
    }

    /// The active view: the peers this instance keeps links to for the swarm.
    pub fn neighbours(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.neighbours.iter().copied()
    }

    /// Whether `peer` is in the active view.
    pub fn is_neighbour(&self, peer: Uuid) -> bool {
        self.neighbours.contains(&peer)
    }

    /// How to dial `peer`, as it told the swarm.
    pub fn address(&self, peer: Uuid) -> Option<&PeerAddress> {
        self.addresses.get(&peer)
    }

    fn handle(&mut self, event: InEvent<Uuid>, now: Instant) {
        let at = tokio::time::Instant::from_std(now);
        let outputs: Vec<OutEvent<Uuid>> = self.state.handle(event, at, None).collect();
        for output in outputs {
            self.apply(output, now);
        }
    }

    fn apply(&mut self, output: OutEvent<Uuid>, now: Instant) {
        match output {
            OutEvent::SendMessage(to, message) => {
                let payload =
                    matches!(message.kind(), iroh_gossip::proto::state::MessageKind::Data);
                match postcard::to_allocvec(&message) {
                    Ok(frame) => self
                        .outputs
                        .push_back(SwarmOutput::Send { to, frame, payload }),
                    Err(error) => tracing::warn!(%error, "could not encode a gossip frame"),
                }
            }
            OutEvent::EmitEvent(_, Event::NeighborUp(peer)) => {
                self.neighbours.insert(peer);
                self.outputs.push_back(SwarmOutput::NeighbourUp(peer));
            }
            OutEvent::EmitEvent(_, Event::NeighborDown(peer)) => {
                self.neighbours.remove(&peer);
                self.outputs.push_back(SwarmOutput::NeighbourDown(peer));
            }
            OutEvent::EmitEvent(_, Event::Received(event)) => {
                self.outputs.push_back(SwarmOutput::Delivered {
                    from: event.delivered_from,
                    content: event.content,
                });
            }
            OutEvent::ScheduleTimer(delay, timer) => {
                self.timer_seq += 1;
                self.timers.insert((now + delay, self.timer_seq), timer);
            }
            OutEvent::DisconnectPeer(peer) => self.outputs.push_back(SwarmOutput::Disconnect(peer)),
            OutEvent::PeerData(peer, data) => match serde_json::from_slice(data.as_bytes()) {
                Ok(address) => {
                    self.addresses.insert(peer, address);
                }
                Err(error) => tracing::debug!(%error, %peer, "a peer's address does not parse"),
            },
        }
    }
}

/// The topic of mesh `mesh`: SHA-256 of `rrt mesh ` and its name.
fn topic_of(mesh: &str) -> TopicId {
    let digest = ring::digest::digest(&ring::digest::SHA256, format!("rrt mesh {mesh}").as_bytes());
    let mut bytes = [0; 32];
    bytes.copy_from_slice(digest.as_ref());
    TopicId::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Swarms on a perfect network: every frame delivered at once, timers fired in order.
    struct Net {
        swarms: BTreeMap<Uuid, Swarm>,
        now: Instant,
        delivered: BTreeMap<Uuid, Vec<Bytes>>,
    }

    impl Net {
        fn new(n: u128) -> Self {
            let swarms = (1..=n)
                .map(|i| {
                    let id = Uuid::from_u128(i);
                    let address = PeerAddress {
                        host: "test".into(),
                        pid: i as u32,
                        tcp: None,
                    };
                    (id, Swarm::new(id, &address, "home", 64 * 1024, i as u64))
                })
                .collect();
            Self {
                swarms,
                now: Instant::now(),
                delivered: BTreeMap::new(),
            }
        }

        fn id(i: u128) -> Uuid {
            Uuid::from_u128(i)
        }

        /// Runs until nothing is left to send, at most `until` of virtual time.
        fn run(&mut self, seconds: u64) {
            let end = self.now + std::time::Duration::from_secs(seconds);
            loop {
                let mut frames = Vec::new();
                for (id, swarm) in &mut self.swarms {
                    while let Some(output) = swarm.poll_output() {
                        match output {
                            SwarmOutput::Send { to, frame, .. } => frames.push((*id, to, frame)),
                            SwarmOutput::Delivered { content, .. } => {
                                self.delivered.entry(*id).or_default().push(content);
                            }
                            _ => {}
                        }
                    }
                }
                if !frames.is_empty() {
                    for (from, to, frame) in frames {
                        if let Some(swarm) = self.swarms.get_mut(&to) {
                            swarm
                                .handle_frame(from, &frame, self.now)
                                .expect("a gossip frame");
                        }
                    }
                    continue;
                }
                let next = self.swarms.values().filter_map(Swarm::poll_timeout).min();
                match next {
                    Some(at) if at <= end => {
                        self.now = self.now.max(at);
                        for swarm in self.swarms.values_mut() {
                            swarm.handle_timeout(self.now);
                        }
                    }
                    _ => return,
                }
            }
        }
    }

    #[test]
    fn twenty_swarms_keep_small_views_and_a_broadcast_reaches_all_once() {
        let mut net = Net::new(20);
        let now = net.now;
        for i in 2..=20 {
            let bootstrap = Net::id(1 + (i * 7) % (i - 1));
            net.swarms
                .get_mut(&Net::id(i))
                .expect("swarm")
                .join(vec![bootstrap], now);
            net.run(1);
        }
        net.run(5);
        for swarm in net.swarms.values() {
            let links = swarm.neighbours().count();
            assert!((1..=5).contains(&links), "{links} neighbours");
        }
        let origin = net.swarms.get_mut(&Net::id(3)).expect("swarm");
        origin
            .broadcast(Bytes::from_static(b"hello, swarm"), now)
            .expect("fits");
        net.run(5);
        for i in (1..=20).filter(|i| *i != 3) {
            assert_eq!(
                net.delivered.get(&Net::id(i)).map(Vec::len),
                Some(1),
                "instance {i} got it exactly once"
            );
        }
        assert!(
            !net.delivered.contains_key(&Net::id(3)),
            "not back to its origin"
        );
    }

    #[test]
    fn addresses_travel_with_joins() {
        let mut net = Net::new(2);
        let now = net.now;
        net.swarms
            .get_mut(&Net::id(2))
            .expect("swarm")
            .join(vec![Net::id(1)], now);
        net.run(1);
        let one = &net.swarms[&Net::id(1)];
        assert_eq!(one.address(Net::id(2)).map(|a| a.pid), Some(2));
        assert!(one.is_neighbour(Net::id(2)));
    }

    /// PROTOCOL.md, "The swarm", spells these bytes out for clients in other languages.
    #[test]
    fn a_join_frame_is_laid_out_as_the_protocol_says() {
        let address = PeerAddress {
            host: "b".into(),
            pid: 7,
            tcp: None,
        };
        let mut swarm = Swarm::new(Net::id(1), &address, "default", 64 * 1024, 1);
        swarm.join(vec![Net::id(2)], Instant::now());
        let frame = std::iter::from_fn(|| swarm.poll_output())
            .find_map(|output| match output {
                SwarmOutput::Send { to, frame, payload } if to == Net::id(2) => {
                    assert!(!payload);
                    Some(frame)
                }
                _ => None,
            })
            .expect("a join for peer 2");
        let data = br#"{"host":"b","pid":7}"#;
        let mut expected = hex("529a6012543f95b109968ded488c4e1d0f75da32037e29a975b9a25bdb717d49");
        // swarm, join, some, the peer data's length and bytes
        expected.extend([0x00, 0x00, 0x01, data.len() as u8]);
        expected.extend(data);
        assert_eq!(frame, expected);
        // A prune: the topic, then gossip (01), prune (01).
        let mut prune = hex("529a6012543f95b109968ded488c4e1d0f75da32037e29a975b9a25bdb717d49");
        prune.extend([0x01, 0x01]);
        swarm
            .handle_frame(Net::id(2), &prune, Instant::now())
            .expect("a prune decodes");
        // An instance id: its 16 bytes, after their length.
        let id = postcard::to_allocvec(&Net::id(1)).expect("encodes");
        assert_eq!(id.len(), 17);
        assert_eq!((id[0], id[16]), (16, 1));
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
            .collect()
    }

    #[test]
    fn garbage_and_oversized_broadcasts_are_refused() {
        let mut net = Net::new(1);
        let swarm = net.swarms.get_mut(&Net::id(1)).expect("swarm");
        assert!(matches!(
            swarm.handle_frame(Net::id(2), &[0xff; 7], Instant::now()),
            Err(SwarmError::Malformed(_))
        ));
        let too_big = Bytes::from(vec![0; swarm.max_content() + 1]);
        assert!(matches!(
            swarm.broadcast(too_big, Instant::now()),
            Err(SwarmError::TooLarge { .. })
        ));
    }
}
