//! Who is up, as a sans-IO state machine over links (connections), driven with `now`.
//!
//! ```text
//! link_opened ─▶ [unknown] ──hello──▶ [up] ──goodbye / closed / silent > timeout──▶ removed
//!                   │                    ▲ every message refreshes "last heard";
//!                   └── silent > timeout ┘ a ping goes to every up link each interval
//! ```
//!
//! The driver feeds link events and messages, sleeps until [`Membership::poll_timeout`], calls
//! [`Membership::handle_timeout`], and carries out what [`Membership::poll_output`] returns.
//!
//! A silent peer is not declared down on one link's word when others can speak for it (as
//! SWIM's indirect probes and Lifeguard do): a link lossy enough to stall TCP for the timeout
//! would otherwise take a live peer down and up again, over and over. At the timeout, up to
//! [`VOUCHERS`] other up peers are asked (`probe`) whether they have heard from it; one `vouch`
//! within a third of the timeout keeps it up for another timeout, on their word. Nobody
//! vouching — or nobody to ask — closes the link, as before: a peer that went silent for
//! everyone is down everywhere within the timeout and a third (4 s by default). Others' word
//! counts for at most [`MAX_VOUCHED`] timeouts of direct silence (15 s): past that the link
//! itself is broken (a firewall between two hosts that both reach a third), and is closed so
//! that it is dialed again. A stall of a lossy TCP link that long takes seven lost
//! retransmissions of one segment in a row (0.2 + 0.4 + … + 6.4 s), about 1 in 80,000 segments
//! at 20 % loss.
//!
//! ```text
//! silent ≥ timeout ──probe──▶ [suspect] ──vouch──▶ [vouched for a timeout] ──▶ silent again …
//!                                │ no vouch within timeout / 3
//!                                └──────────────▶ closed, peer down
//! ```
//!
//! In the hub topology the machine also keeps the hub's view of who is up: a coordinator
//! ([`Membership::coordinate`]) tells every leaf who else is up whenever that changes, once per
//! batch of changes; a leaf ([`Membership::follow`]) turns the coordinator's lists into the other
//! leaves' ups and downs, and loses them all with the coordinator.
//!
//! ```text
//! coordinator: Up / Down ──(queue drained)──▶ Send members (each leaf: everyone else)
//! leaf:        members from the followed link ──diff──▶ RelayedUp / Down(GoneFromHub)
//!              followed link closed ──────────────────▶ Down(GoneFromHub) for every relayed peer
//! ```

use std::{
    collections::{BTreeMap, VecDeque},
    fmt,
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    link_message::{LinkMessage, Member},
    message::Message,
};

/// A link: one connection, named by its driver.
pub type LinkId = usize;

/// Heartbeat timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatConfig {
    /// How often every up link is pinged.
    pub interval: Duration,
    /// How long a link may stay silent before it is declared down.
    pub timeout: Duration,
}

impl Default for HeartbeatConfig {
    /// A ping a second, down after 3 s of silence: a silent peer is detected within
    /// `timeout` + the time to the next check, under memberlist's ≈ 4 s.
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(3),
        }
    }
}

/// Who an instance is, as its hello says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// The instance id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// What it supports.
    pub capabilities: Vec<String>,
}

/// Why a peer went down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum DownReason {
    /// It said goodbye: a clean exit.
    Goodbye,
    /// Its connection closed without a goodbye (a crash, `kill -9`).
    Closed,
    /// Nothing arrived from it within the heartbeat timeout.
    TimedOut,
    /// It broke the protocol, or its connection failed; the detail says how.
    Error(String),
    /// Hub leaves only: the coordinator no longer lists it, or this leaf lost the coordinator.
    GoneFromHub,
    /// In a swarm: this instance no longer needs the link (the peer left its partial view).
    Released,
}

impl fmt::Display for DownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Goodbye => f.write_str("said goodbye"),
            Self::Closed => f.write_str("connection closed"),
            Self::TimedOut => f.write_str("heartbeat timed out"),
            Self::Error(detail) => write!(f, "error: {detail}"),
            Self::GoneFromHub => f.write_str("gone from the hub"),
            Self::Released => f.write_str("link released by the swarm"),
        }
    }
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send `message` on `link`.
    Send {
        /// The link.
        link: LinkId,
        /// The message.
        message: LinkMessage,
    },
    /// Close `link`; the peer (if it had said hello) is reported down separately.
    Close {
        /// The link.
        link: LinkId,
        /// Why, for the log.
        reason: DownReason,
    },
    /// A peer said hello on `link`.
    Up {
        /// The link.
        link: LinkId,
        /// The peer.
        peer: PeerInfo,
    },
    /// A peer is gone (hub leaves: also a relayed one, [`DownReason::GoneFromHub`]).
    Down {
        /// The peer.
        peer: PeerInfo,
        /// Why.
        reason: DownReason,
    },
    /// A peer that was up on another link is now up on `link`, the one both sides keep: the
    /// other is closed, and what was in flight on it may be lost, so whatever a peer's arrival
    /// starts (catch-up) must start again on this link. Not a down and an up: the peer never
    /// left.
    Relinked {
        /// The link it is up on now.
        link: LinkId,
        /// The peer.
        peer: PeerInfo,
    },
    /// Hub leaves: the coordinator lists a peer this leaf has no link to.
    RelayedUp {
        /// The peer.
        peer: PeerInfo,
    },
}

/// How a received message was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A membership message (hello, goodbye, ping, pong): handled here.
    Handled,
    /// An application message from the peer with this id: for the layer above.
    Deliver(Uuid),
    /// An application message on a link whose peer has not said hello: dropped.
    Dropped,
}

/// A link's liveness, for status displays.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkStatus {
    /// The peer.
    pub peer: PeerInfo,
    /// The last measured ping round trip.
    pub rtt: Option<Duration>,
    /// How long ago anything arrived.
    pub silent_for: Duration,
    /// How long the peer has been up without a break (across a move to another link).
    pub up_for: Duration,
}

/// Which side opened a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// This instance dialed.
    Dialed,
    /// The peer dialed.
    Accepted,
}

/// What a link runs over. Of two links to one peer, both sides keep the one on the better
/// route: the LAN's (a Unix socket, TCP) over the wide-area transport's (QUIC through iroh,
/// perhaps relayed), as nearer, cheaper and independent of a relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Route {
    /// A Unix socket or a TCP connection.
    Lan,
    /// A QUIC connection of the wide-area transport.
    Wan,
}

#[derive(Debug)]
struct Link {
    peer: Option<PeerInfo>,
    direction: Direction,
    route: Route,
    last_heard: Instant,
    rtt: Option<Duration>,
    /// The timestamp and send time of the ping awaiting its pong.
    ping: Option<(u64, Instant)>,
    /// Silent for the timeout: others were asked about the peer.
    suspect: Option<Suspect>,
    /// Others vouched for the silent peer: up until then on their word.
    vouched_until: Option<Instant>,
    /// When its peer came up.
    up_since: Option<Instant>,
}

/// A probe about a silent peer, awaiting a vouch.
#[derive(Debug, Clone, Copy)]
struct Suspect {
    nonce: u64,
    /// When, unless someone vouched, the link is closed.
    until: Instant,
}

/// How many other peers are asked about a silent one.
pub const VOUCHERS: usize = 3;
/// For how many timeouts of direct silence others' word keeps a peer up.
pub const MAX_VOUCHED: u32 = 5;

impl Link {
    /// Something arrived from the peer itself: whatever others said, it is alive.
    fn heard(&mut self, now: Instant) {
        self.last_heard = now;
        self.suspect = None;
        self.vouched_until = None;
    }

    /// When the link must be looked at: the end of a probe's wait, of others' word, or of the
    /// timeout since the peer was last heard.
    fn deadline(&self, timeout: Duration) -> Instant {
        match (self.suspect, self.vouched_until) {
            (Some(suspect), _) => suspect.until,
            (None, Some(vouched)) => vouched,
            (None, None) => self.last_heard + timeout,
        }
    }
}

/// The membership of one instance: its links and what it knows of the peers behind them.
#[derive(Debug)]
pub struct Membership {
    me: PeerInfo,
    config: HeartbeatConfig,
    links: BTreeMap<LinkId, Link>,
    outputs: VecDeque<Output>,
    next_ping: Instant,
    /// An instant and the wall clock then, for ping timestamps in Unix milliseconds.
    epoch: (Instant, u64),
    /// Hub: this instance is the coordinator, and tells the leaves who is up.
    coordinating: bool,
    /// Hub coordinator: who is up changed since the leaves were last told.
    members_changed: bool,
    /// Hub leaf: the link to the coordinator.
    followed: Option<LinkId>,
    /// Hub leaf: the other leaves, as the coordinator last listed them.
    relayed: BTreeMap<Uuid, PeerInfo>,
    /// The last probe's nonce.
    nonce: u64,
    /// Links replaced by the preferred link to the same peer, and when to close them: see
    /// [`Output::Relinked`].
    retired: BTreeMap<LinkId, Instant>,
}

impl Membership {
    /// The membership of `me`, at `now`, when the wall clock reads `wall_ms`.
    pub fn new(me: PeerInfo, config: HeartbeatConfig, now: Instant, wall_ms: u64) -> Self {
        Self {
            me,
            config,
            links: BTreeMap::new(),
            outputs: VecDeque::new(),
            next_ping: now + config.interval,
            epoch: (now, wall_ms),
            coordinating: false,
            members_changed: false,
            followed: None,
            relayed: BTreeMap::new(),
            nonce: 0,
            retired: BTreeMap::new(),
        }
    }

    /// This instance is the hub's coordinator from now on: whenever who is up changes, every
    /// up leaf is sent the list of the others (once the outputs of the change are drained, so a
    /// burst of changes sends one list).
    pub fn coordinate(&mut self) {
        self.coordinating = true;
    }

    /// `link` leads to the hub's coordinator: its member lists are the other leaves, reported as
    /// [`Output::RelayedUp`] and [`Output::Down`]; when it closes they are all down.
    pub fn follow(&mut self, link: LinkId) {
        self.followed = Some(link);
    }

    /// Hub leaves: the other leaves, as the coordinator last listed them.
    pub fn relayed(&self) -> impl Iterator<Item = &PeerInfo> {
        self.relayed.values()
    }

    /// A new connection: say hello, and expect one back within the timeout.
    pub fn link_opened(&mut self, link: LinkId, direction: Direction, now: Instant) {
        self.link_opened_over(link, direction, Route::Lan, now);
    }

    /// A new connection over `route`: as [`Membership::link_opened`].
    pub fn link_opened_over(
        &mut self,
        link: LinkId,
        direction: Direction,
        route: Route,
        now: Instant,
    ) {
        self.links.insert(
            link,
            Link {
                peer: None,
                direction,
                route,
                last_heard: now,
                rtt: None,
                ping: None,
                suspect: None,
                vouched_until: None,
                up_since: None,
            },
        );
        let hello = LinkMessage::Hello {
            instance_id: self.me.id,
            capabilities: self.me.capabilities.clone(),
            name: self.me.name.clone(),
        };
        self.outputs.push_back(Output::Send {
            link,
            message: hello,
        });
    }

    /// The connection is gone (closed by either side, or failed).
    pub fn link_closed(&mut self, link: LinkId, reason: DownReason) {
        // A retired link's peer is up on its replacement.
        self.retired.remove(&link);
        if let Some(Link {
            peer: Some(peer), ..
        }) = self.links.remove(&link)
        {
            self.outputs.push_back(Output::Down { peer, reason });
            self.members_changed |= self.coordinating;
        }
        self.unfollow(link);
    }

    /// A leaf that lost its coordinator loses sight of the other leaves too.
    fn unfollow(&mut self, link: LinkId) {
        if self.followed != Some(link) {
            return;
        }
        self.followed = None;
        for peer in std::mem::take(&mut self.relayed).into_values() {
            self.outputs.push_back(Output::Down {
                peer,
                reason: DownReason::GoneFromHub,
            });
        }
    }

    /// A leaf's view of the other leaves, from its coordinator's list.
    fn relay(&mut self, link: LinkId, members: &[Member]) {
        if self.followed != Some(link) {
            tracing::debug!(link, "ignoring a member list not from our coordinator");
            return;
        }
        let listed: BTreeMap<Uuid, PeerInfo> = members
            .iter()
            .filter(|member| member.instance_id != self.me.id)
            .map(|member| {
                let peer = PeerInfo {
                    id: member.instance_id,
                    name: member.name.clone(),
                    capabilities: Vec::new(),
                };
                (peer.id, peer)
            })
            .collect();
        let previous = std::mem::replace(&mut self.relayed, listed);
        for (id, peer) in &previous {
            if !self.relayed.contains_key(id) {
                self.outputs.push_back(Output::Down {
                    peer: peer.clone(),
                    reason: DownReason::GoneFromHub,
                });
            }
        }
        for (id, peer) in &self.relayed {
            if !previous.contains_key(id) {
                self.outputs
                    .push_back(Output::RelayedUp { peer: peer.clone() });
            }
        }
    }

    /// The coordinator tells every up leaf who else is up.
    fn announce_members(&mut self) {
        let up: Vec<(LinkId, Member)> = self
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
            self.outputs.push_back(Output::Send {
                link: *link,
                message: LinkMessage::Members { peers },
            });
        }
    }

    /// Bytes arrived on `link` — perhaps a piece of a frame still under way. A link is alive
    /// while bytes flow, not only when frames complete: a large value crossing a slow link takes
    /// longer than the timeout, and the heartbeats queue behind it on the sender's side.
    /// Only a peer that said hello earns this: a connection that never does must not stay open
    /// by trickling frames that are skipped.
    pub fn handle_bytes(&mut self, link: LinkId, now: Instant) {
        if let Some(state) = self.links.get_mut(&link)
            && state.peer.is_some()
        {
            state.heard(now);
        }
    }

    /// A message arrived on `link`.
    pub fn handle_message(&mut self, link: LinkId, message: &Message, now: Instant) -> Received {
        let Some(state) = self.links.get_mut(&link) else {
            return Received::Dropped;
        };
        state.heard(now);
        let Message::Link(message) = message else {
            return match &state.peer {
                Some(peer) => Received::Deliver(peer.id),
                None => Received::Dropped,
            };
        };
        match message {
            LinkMessage::Hello {
                instance_id,
                capabilities,
                name,
            } => {
                let peer = PeerInfo {
                    id: *instance_id,
                    name: name.clone(),
                    capabilities: capabilities.clone(),
                };
                self.hello(link, peer, now);
                Received::Handled
            }
            LinkMessage::Goodbye { .. } => {
                self.outputs.push_back(Output::Close {
                    link,
                    reason: DownReason::Goodbye,
                });
                self.link_closed(link, DownReason::Goodbye);
                Received::Handled
            }
            LinkMessage::Ping { timestamp } => {
                self.outputs.push_back(Output::Send {
                    link,
                    message: LinkMessage::Pong {
                        timestamp: *timestamp,
                    },
                });
                Received::Handled
            }
            LinkMessage::Pong { timestamp } => {
                if let Some((sent, at)) = state.ping
                    && sent == *timestamp
                {
                    state.rtt = Some(now.saturating_duration_since(at));
                    state.ping = None;
                }
                Received::Handled
            }
            LinkMessage::Members { peers } => {
                if state.peer.is_none() {
                    return Received::Dropped;
                }
                self.relay(link, peers);
                Received::Handled
            }
            LinkMessage::Probe { target, nonce } => {
                if state.peer.is_none() {
                    return Received::Dropped;
                }
                let (target, nonce) = (*target, *nonce);
                if self.heard_lately(target, now) {
                    self.outputs.push_back(Output::Send {
                        link,
                        message: LinkMessage::Vouch { target, nonce },
                    });
                }
                Received::Handled
            }
            LinkMessage::Vouch { target, nonce } => {
                if state.peer.is_none() {
                    return Received::Dropped;
                }
                let timeout = self.config.timeout;
                if let Some(suspected) = self.links.values_mut().find(|state| {
                    state.peer.as_ref().is_some_and(|peer| peer.id == *target)
                        && state.suspect.is_some_and(|suspect| suspect.nonce == *nonce)
                }) {
                    suspected.suspect = None;
                    suspected.vouched_until = Some(now + timeout);
                }
                Received::Handled
            }
            // The swarm's and the roster's, for the worker once the peer said hello.
            LinkMessage::Gossip { .. } | LinkMessage::Roster { .. } => match &state.peer {
                Some(peer) => Received::Deliver(peer.id),
                None => Received::Dropped,
            },
            // Admission's, answered before the link reaches membership.
            _ => Received::Dropped,
        }
    }

    /// Whether `peer` is up here and was heard from directly within the timeout.
    fn heard_lately(&self, peer: Uuid, now: Instant) -> bool {
        self.links.values().any(|state| {
            state.peer.as_ref().is_some_and(|up| up.id == peer)
                && now.saturating_duration_since(state.last_heard) < self.config.timeout
        })
    }

    fn hello(&mut self, link: LinkId, peer: PeerInfo, now: Instant) {
        if peer.id == self.me.id {
            return self.refuse(link, "connected to itself");
        }
        if self
            .links
            .get(&link)
            .is_some_and(|state| state.peer.is_some())
        {
            // A repeated hello changes nothing.
            return;
        }
        let existing = self.links.iter().find_map(|(other, state)| {
            (*other != link && state.peer.as_ref().is_some_and(|p| p.id == peer.id))
                .then_some((*other, (state.route, state.direction)))
        });
        if let Some((existing, existing_kind)) = existing {
            // Two links to one peer (both dialed at once, or by two routes). Both sides keep the
            // one on the better route, and of two on one route the one the lower id dialed: each
            // side sees the same route and the same dialer, so they agree without talking; the
            // peer stays up.
            let preferred = if self.me.id < peer.id {
                Direction::Dialed
            } else {
                Direction::Accepted
            };
            let rank = |(route, direction): (Route, Direction)| (route, direction != preferred);
            let new_kind = self
                .links
                .get(&link)
                .map(|state| (state.route, state.direction));
            if new_kind.is_some_and(|new_kind| rank(new_kind) < rank(existing_kind)) {
                if let Some(mut old) = self.links.remove(&existing)
                    && let Some(state) = self.links.get_mut(&link)
                {
                    state.peer = old.peer.take();
                    state.rtt = old.rtt;
                    state.up_since = old.up_since;
                }
                // Not closed yet: the peer, which may not have read the new link's hello, would
                // take the close for its departure (a down and an up for a peer that never
                // left). It closes the old link itself when it moves; if it never does, the
                // old link is closed after the timeout.
                self.retired.insert(existing, now + self.config.timeout);
                self.outputs.push_back(Output::Relinked { link, peer });
                return;
            }
            return self.refuse(link, "a second link to a peer already up");
        }
        if let Some(state) = self.links.get_mut(&link) {
            state.peer = Some(peer.clone());
            state.up_since = Some(state.last_heard);
        }
        self.outputs.push_back(Output::Up { link, peer });
        self.members_changed |= self.coordinating;
    }

    fn refuse(&mut self, link: LinkId, why: &str) {
        self.links.remove(&link);
        self.unfollow(link);
        self.outputs.push_back(Output::Close {
            link,
            reason: DownReason::Error(why.to_owned()),
        });
    }

    /// When [`Membership::handle_timeout`] must run next: the next ping round, or the earliest
    /// link deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let earliest_deadline = self
            .links
            .values()
            .map(|state| state.deadline(self.config.timeout))
            .chain(self.retired.values().copied())
            .min();
        if self.links.is_empty() && self.retired.is_empty() {
            return None;
        }
        Some(earliest_deadline.map_or(self.next_ping, |d| d.min(self.next_ping)))
    }

    /// Pings when a round is due and closes links silent for the timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        let timeout = self.config.timeout;
        let (due, later): (BTreeMap<_, _>, BTreeMap<_, _>) = std::mem::take(&mut self.retired)
            .into_iter()
            .partition(|(_, at)| *at <= now);
        self.retired = later;
        for link in due.into_keys() {
            self.outputs.push_back(Output::Close {
                link,
                reason: DownReason::Error("replaced by the preferred link".to_owned()),
            });
        }
        let silent: Vec<LinkId> = self
            .links
            .iter()
            .filter(|(_, state)| now >= state.deadline(timeout))
            .map(|(link, _)| *link)
            .collect();
        for link in silent {
            if !self.probe(link, now) {
                self.outputs.push_back(Output::Close {
                    link,
                    reason: DownReason::TimedOut,
                });
                self.link_closed(link, DownReason::TimedOut);
            }
        }
        if now >= self.next_ping {
            self.next_ping = now + self.config.interval;
            let timestamp = self.wall_ms(now);
            for (link, state) in &mut self.links {
                if state.peer.is_some() {
                    state.ping = Some((timestamp, now));
                    self.outputs.push_back(Output::Send {
                        link: *link,
                        message: LinkMessage::Ping { timestamp },
                    });
                }
            }
        }
    }

    /// `link` is silent past its deadline: asks others about its peer, unless it is too late
    /// for that (no peer yet, a probe already unanswered, silent too long, nobody to ask).
    /// Whether it did.
    fn probe(&mut self, link: LinkId, now: Instant) -> bool {
        let timeout = self.config.timeout;
        let Some(state) = self.links.get(&link) else {
            return false;
        };
        let Some(target) = state.peer.as_ref().map(|peer| peer.id) else {
            return false;
        };
        if state.suspect.is_some()
            || now.saturating_duration_since(state.last_heard) >= timeout * MAX_VOUCHED
        {
            return false;
        }
        let vouchers: Vec<LinkId> = self
            .links
            .iter()
            .filter(|(other, state)| {
                **other != link
                    && state.peer.as_ref().is_some_and(|peer| peer.id != target)
                    && now.saturating_duration_since(state.last_heard) < timeout
            })
            .map(|(other, _)| *other)
            .take(VOUCHERS)
            .collect();
        if vouchers.is_empty() {
            return false;
        }
        self.nonce += 1;
        let nonce = self.nonce;
        for voucher in vouchers {
            self.outputs.push_back(Output::Send {
                link: voucher,
                message: LinkMessage::Probe { target, nonce },
            });
        }
        if let Some(state) = self.links.get_mut(&link) {
            state.suspect = Some(Suspect {
                nonce,
                until: now + timeout / 3,
            });
            state.vouched_until = None;
        }
        true
    }

    fn wall_ms(&self, now: Instant) -> u64 {
        let (instant, wall_ms) = self.epoch;
        let elapsed = now.saturating_duration_since(instant).as_millis();
        wall_ms.saturating_add(u64::try_from(elapsed).unwrap_or(u64::MAX))
    }

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<Output> {
        if self.outputs.is_empty() && self.members_changed {
            self.members_changed = false;
            self.announce_members();
        }
        self.outputs.pop_front()
    }

    /// Whether [`Membership::poll_output`] has anything left.
    pub fn has_output(&self) -> bool {
        !self.outputs.is_empty() || self.members_changed
    }

    /// The link to the peer with `id`, if it is up.
    pub fn link_of(&self, id: Uuid) -> Option<LinkId> {
        self.links
            .iter()
            .find(|(_, state)| state.peer.as_ref().is_some_and(|peer| peer.id == id))
            .map(|(link, _)| *link)
    }

    /// Every up peer and its link.
    pub fn up(&self) -> impl Iterator<Item = (LinkId, &PeerInfo)> {
        self.links
            .iter()
            .filter_map(|(link, state)| state.peer.as_ref().map(|peer| (*link, peer)))
    }

    /// The liveness of every up peer at `now`.
    pub fn status(&self, now: Instant) -> Vec<LinkStatus> {
        self.links
            .values()
            .filter_map(|state| {
                state.peer.as_ref().map(|peer| LinkStatus {
                    peer: peer.clone(),
                    rtt: state.rtt,
                    silent_for: now.saturating_duration_since(state.last_heard),
                    up_for: state
                        .up_since
                        .map_or(Duration::ZERO, |since| now.saturating_duration_since(since)),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(n: u128, name: &str) -> PeerInfo {
        PeerInfo {
            id: Uuid::from_u128(n),
            name: name.into(),
            capabilities: vec!["clipboard".into()],
        }
    }

    fn hello_from(peer: &PeerInfo) -> Message {
        LinkMessage::Hello {
            instance_id: peer.id,
            capabilities: peer.capabilities.clone(),
            name: peer.name.clone(),
        }
        .into()
    }

    fn drain(membership: &mut Membership) -> Vec<Output> {
        std::iter::from_fn(|| membership.poll_output()).collect()
    }

    fn setup() -> (Membership, Instant) {
        let now = Instant::now();
        (
            Membership::new(info(1, "me"), HeartbeatConfig::default(), now, 1_000_000),
            now,
        )
    }

    #[test]
    fn hello_both_ways_brings_a_peer_up() {
        let (mut membership, now) = setup();
        membership.link_opened(7, Direction::Accepted, now);
        assert!(matches!(
            drain(&mut membership).as_slice(),
            [Output::Send { link: 7, message: LinkMessage::Hello { name, .. } }] if name == "me"
        ));
        let peer = info(2, "other");
        assert_eq!(
            membership.handle_message(7, &hello_from(&peer), now),
            Received::Handled
        );
        assert_eq!(
            drain(&mut membership),
            [Output::Up {
                link: 7,
                peer: peer.clone()
            }]
        );
        assert_eq!(membership.link_of(peer.id), Some(7));
        let update = LinkMessage::Pong { timestamp: 0 }.into();
        assert_eq!(
            membership.handle_message(7, &update, now),
            Received::Handled
        );
        let clip = LinkMessage::Goodbye {
            instance_id: peer.id,
        }
        .into();
        assert_eq!(membership.handle_message(7, &clip, now), Received::Handled);
        assert_eq!(
            drain(&mut membership),
            [
                Output::Close {
                    link: 7,
                    reason: DownReason::Goodbye
                },
                Output::Down {
                    peer,
                    reason: DownReason::Goodbye
                }
            ]
        );
    }

    #[test]
    fn application_messages_need_a_hello_first() {
        let (mut membership, now) = setup();
        membership.link_opened(1, Direction::Accepted, now);
        let state = Message::Document(rrt_sync::DocMessage::delta(vec![]));
        assert_eq!(membership.handle_message(1, &state, now), Received::Dropped);
        membership.handle_message(1, &hello_from(&info(2, "b")), now);
        assert_eq!(
            membership.handle_message(1, &state, now),
            Received::Deliver(Uuid::from_u128(2))
        );
    }

    #[test]
    fn a_peer_whose_large_frame_is_still_arriving_stays_up() {
        let (mut membership, start) = setup();
        membership.link_opened(1, Direction::Accepted, start);
        membership.handle_message(1, &hello_from(&info(2, "sending 5 MB")), start);
        drain(&mut membership);
        // 20 s without a whole frame, but bytes every 100 ms.
        let mut now = start;
        for _ in 0..200 {
            now += Duration::from_millis(100);
            membership.handle_bytes(1, now);
            if membership.poll_timeout().is_some_and(|t| t <= now) {
                membership.handle_timeout(now);
            }
            assert!(
                !drain(&mut membership)
                    .iter()
                    .any(|output| matches!(output, Output::Down { .. })),
                "declared down while its bytes flow"
            );
        }
        // Once the bytes stop, the timeout applies as ever.
        let silent_from = now;
        now += Duration::from_secs(3);
        membership.handle_timeout(now);
        assert!(drain(&mut membership).iter().any(|output| matches!(
            output,
            Output::Down {
                reason: DownReason::TimedOut,
                ..
            }
        )));
        assert_eq!(now - silent_from, HeartbeatConfig::default().timeout);
    }

    #[test]
    fn bytes_before_hello_do_not_keep_a_link_open() {
        let (mut membership, start) = setup();
        membership.link_opened(1, Direction::Accepted, start);
        drain(&mut membership);
        let mut now = start;
        let mut closed = false;
        for _ in 0..50 {
            now += Duration::from_millis(100);
            membership.handle_bytes(1, now);
            membership.handle_timeout(now);
            closed |= drain(&mut membership)
                .iter()
                .any(|output| matches!(output, Output::Close { link: 1, .. }));
        }
        assert!(
            closed,
            "a link without a hello is closed at the timeout, bytes or not"
        );
    }

    #[test]
    fn a_silent_peer_nobody_vouches_for_is_down_a_third_of_a_timeout_after_the_timeout() {
        let (mut membership, start) = setup();
        membership.link_opened(1, Direction::Accepted, start);
        membership.link_opened(2, Direction::Accepted, start);
        membership.handle_message(1, &hello_from(&info(2, "silent")), start);
        membership.handle_message(2, &hello_from(&info(3, "chatty")), start);
        drain(&mut membership);
        let mut now = start;
        let mut downs = Vec::new();
        for _ in 0..100 {
            now += Duration::from_millis(100);
            membership.handle_message(2, &LinkMessage::Pong { timestamp: 0 }.into(), now);
            if membership.poll_timeout().is_some_and(|t| t <= now) {
                membership.handle_timeout(now);
            }
            for output in drain(&mut membership) {
                if let Output::Down { peer, reason } = output {
                    downs.push((peer.name, reason, now - start));
                }
            }
        }
        assert_eq!(
            downs,
            [(
                "silent".to_owned(),
                DownReason::TimedOut,
                Duration::from_secs(4)
            )],
            "asked chatty at 3 s, which did not vouch; chatty itself never down"
        );
    }

    #[test]
    fn pings_go_out_each_interval_and_pongs_measure_the_round_trip() {
        let (mut membership, start) = setup();
        membership.link_opened(1, Direction::Accepted, start);
        membership.handle_message(1, &hello_from(&info(2, "b")), start);
        drain(&mut membership);
        assert_eq!(
            membership.poll_timeout(),
            Some(start + Duration::from_secs(1))
        );
        let tick = start + Duration::from_secs(1);
        membership.handle_timeout(tick);
        let sent = drain(&mut membership);
        let [
            Output::Send {
                link: 1,
                message: LinkMessage::Ping { timestamp },
            },
        ] = sent.as_slice()
        else {
            panic!("expected one ping, got {sent:?}");
        };
        assert_eq!(*timestamp, 1_001_000, "wall-clock milliseconds");
        let answer = tick + Duration::from_micros(250);
        membership.handle_message(
            1,
            &LinkMessage::Pong {
                timestamp: *timestamp,
            }
            .into(),
            answer,
        );
        assert_eq!(
            membership.status(answer)[0].rtt,
            Some(Duration::from_micros(250))
        );
        membership.handle_message(1, &LinkMessage::Ping { timestamp: 5 }.into(), answer);
        assert_eq!(
            drain(&mut membership),
            [Output::Send {
                link: 1,
                message: LinkMessage::Pong { timestamp: 5 }
            }]
        );
    }

    #[test]
    fn duplicate_links_and_self_links_are_refused() {
        let (mut membership, now) = setup();
        let peer = info(2, "b");
        membership.link_opened(1, Direction::Accepted, now);
        membership.link_opened(2, Direction::Accepted, now);
        membership.link_opened(3, Direction::Accepted, now);
        membership.handle_message(1, &hello_from(&peer), now);
        membership.handle_message(2, &hello_from(&peer), now);
        membership.handle_message(3, &hello_from(&info(1, "me")), now);
        let closes: Vec<_> = drain(&mut membership)
            .into_iter()
            .filter_map(|output| match output {
                Output::Close { link, .. } => Some(link),
                _ => None,
            })
            .collect();
        assert_eq!(closes, [2, 3]);
        assert_eq!(membership.up().count(), 1);
    }

    #[test]
    fn of_two_links_to_a_peer_both_sides_keep_the_lans() {
        let now = Instant::now();
        let (low, high) = (info(1, "low"), info(2, "high"));
        let config = HeartbeatConfig::default();
        let mut sides = [
            Membership::new(low.clone(), config, now, 0),
            Membership::new(high.clone(), config, now, 0),
        ];
        // The low id dials over the WAN first (which the dialer rule alone would keep), then the
        // high id dials over the LAN: both keep the LAN link, 2.
        sides[0].link_opened_over(1, Direction::Dialed, Route::Wan, now);
        sides[1].link_opened_over(1, Direction::Accepted, Route::Wan, now);
        sides[0].handle_message(1, &hello_from(&high), now);
        sides[1].handle_message(1, &hello_from(&low), now);
        sides[0].link_opened_over(2, Direction::Accepted, Route::Lan, now);
        sides[1].link_opened_over(2, Direction::Dialed, Route::Lan, now);
        sides[0].handle_message(2, &hello_from(&high), now);
        sides[1].handle_message(2, &hello_from(&low), now);
        for side in &mut sides {
            let outputs = drain(side);
            assert!(
                outputs
                    .iter()
                    .any(|output| matches!(output, Output::Relinked { link: 2, .. })),
                "{outputs:?}"
            );
            assert!(
                !outputs
                    .iter()
                    .any(|output| matches!(output, Output::Close { link: 2, .. }))
            );
        }
        // A WAN link to a peer up on the LAN is refused, whoever dialed it.
        sides[0].link_opened_over(3, Direction::Dialed, Route::Wan, now);
        sides[0].handle_message(3, &hello_from(&high), now);
        assert!(
            drain(&mut sides[0])
                .iter()
                .any(|output| matches!(output, Output::Close { link: 3, .. }))
        );
    }

    /// Three peers up on links 1, 2, 3, everything drained, at `now`.
    fn three_up() -> (Membership, Instant, [PeerInfo; 3]) {
        let (mut membership, now) = setup();
        let peers = [info(2, "b"), info(3, "c"), info(4, "d")];
        for (link, peer) in (1..).zip(&peers) {
            membership.link_opened(link, Direction::Accepted, now);
            membership.handle_message(link, &hello_from(peer), now);
        }
        drain(&mut membership);
        (membership, now, peers)
    }

    /// Keeps links 2 and 3 heard from until `until`, each second, and runs the timeouts.
    fn others_talk(membership: &mut Membership, from: Instant, until: Instant) -> Vec<Output> {
        let mut outputs = Vec::new();
        let mut now = from;
        while now < until {
            now += Duration::from_millis(100);
            membership.handle_bytes(2, now);
            membership.handle_bytes(3, now);
            membership.handle_timeout(now);
            outputs.extend(drain(membership));
        }
        outputs
    }

    fn probes(outputs: &[Output]) -> Vec<(LinkId, Uuid, u64)> {
        outputs
            .iter()
            .filter_map(|output| match output {
                Output::Send {
                    link,
                    message: LinkMessage::Probe { target, nonce },
                } => Some((*link, *target, *nonce)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_silent_peer_others_vouch_for_stays_up_and_one_nobody_vouches_for_goes_down() {
        let (mut membership, start, peers) = three_up();
        let timeout = HeartbeatConfig::default().timeout;
        // Link 1 goes silent: at the timeout the others are asked, and nothing closes.
        let outputs = others_talk(&mut membership, start, start + timeout);
        let asked = probes(&outputs);
        assert_eq!(
            asked.iter().map(|(link, ..)| *link).collect::<Vec<_>>(),
            [2, 3]
        );
        assert!(asked.iter().all(|(_, target, _)| *target == peers[0].id));
        assert!(!outputs.iter().any(|o| matches!(o, Output::Close { .. })));
        // c vouches: up for another timeout on its word.
        let nonce = asked[0].2;
        let at = start + timeout + Duration::from_millis(200);
        membership.handle_message(
            2,
            &LinkMessage::Vouch {
                target: peers[0].id,
                nonce,
            }
            .into(),
            at,
        );
        let outputs = others_talk(
            &mut membership,
            at,
            at + timeout - Duration::from_millis(200),
        );
        assert!(
            !outputs
                .iter()
                .any(|o| matches!(o, Output::Close { .. } | Output::Down { .. }))
        );
        // Still silent, and this time nobody answers: down a third of a timeout after asking.
        let outputs = others_talk(&mut membership, at + timeout, at + timeout * 2);
        assert_eq!(probes(&outputs).len(), 2, "asked again");
        assert!(outputs.iter().any(|o| matches!(
            o,
            Output::Down { peer, reason: DownReason::TimedOut } if peer.id == peers[0].id
        )));
        assert_eq!(membership.up().count(), 2);
    }

    #[test]
    fn a_probe_is_answered_only_about_a_peer_heard_from_lately() {
        let (mut membership, start, peers) = three_up();
        let timeout = HeartbeatConfig::default().timeout;
        let probe = |target: &PeerInfo| -> Message {
            LinkMessage::Probe {
                target: target.id,
                nonce: 7,
            }
            .into()
        };
        membership.handle_message(2, &probe(&peers[2]), start);
        assert_eq!(
            drain(&mut membership),
            [Output::Send {
                link: 2,
                message: LinkMessage::Vouch {
                    target: peers[2].id,
                    nonce: 7
                }
            }]
        );
        // Heard from nobody but link 2 since: no word for d, nor for a stranger.
        let later = start + timeout;
        membership.handle_bytes(2, later);
        membership.handle_message(2, &probe(&peers[2]), later);
        membership.handle_message(2, &probe(&info(99, "stranger")), later);
        let answers = drain(&mut membership);
        assert!(
            !answers.iter().any(|o| matches!(
                o,
                Output::Send {
                    message: LinkMessage::Vouch { .. },
                    ..
                }
            )),
            "{answers:?}"
        );
    }

    #[test]
    fn a_peer_alone_or_silent_too_long_is_down_whatever_others_say() {
        // With nobody to ask, the timeout alone decides, as before.
        let (mut membership, start) = setup();
        membership.link_opened(1, Direction::Accepted, start);
        membership.handle_message(1, &hello_from(&info(2, "b")), start);
        drain(&mut membership);
        membership.handle_timeout(start + HeartbeatConfig::default().timeout);
        assert!(
            drain(&mut membership)
                .iter()
                .any(|o| matches!(o, Output::Down { .. }))
        );

        // Others' word counts for MAX_VOUCHED timeouts at most.
        let (mut membership, start, peers) = three_up();
        let timeout = HeartbeatConfig::default().timeout;
        let mut now = start;
        let mut down = false;
        while now < start + timeout * (MAX_VOUCHED + 2) && !down {
            now += Duration::from_millis(100);
            membership.handle_bytes(2, now);
            membership.handle_bytes(3, now);
            membership.handle_timeout(now);
            for output in drain(&mut membership) {
                match output {
                    Output::Send {
                        message: LinkMessage::Probe { target, nonce },
                        ..
                    } => {
                        membership.handle_message(
                            2,
                            &LinkMessage::Vouch { target, nonce }.into(),
                            now,
                        );
                    }
                    Output::Down { peer, .. } => down = peer.id == peers[0].id,
                    _ => {}
                }
            }
        }
        assert!(
            down,
            "closed after at most {MAX_VOUCHED} timeouts of silence"
        );
        assert!(now >= start + timeout * MAX_VOUCHED);
    }

    #[test]
    fn both_sides_keep_the_link_the_lower_id_dialed() {
        let now = Instant::now();
        let low = info(1, "low");
        let high = info(2, "high");
        let mut at_low = Membership::new(low.clone(), HeartbeatConfig::default(), now, 0);
        let mut at_high = Membership::new(high.clone(), HeartbeatConfig::default(), now, 0);
        // Link 10 is dialed by low, link 20 by high; each side hears the hellos in another order.
        at_low.link_opened(20, Direction::Accepted, now);
        at_low.link_opened(10, Direction::Dialed, now);
        at_high.link_opened(10, Direction::Accepted, now);
        at_high.link_opened(20, Direction::Dialed, now);
        at_low.handle_message(20, &hello_from(&high), now);
        at_low.handle_message(10, &hello_from(&high), now);
        at_high.handle_message(10, &hello_from(&low), now);
        at_high.handle_message(20, &hello_from(&low), now);
        for (membership, peer) in [(&mut at_low, &high), (&mut at_high, &low)] {
            let outputs = drain(membership);
            let ups = outputs
                .iter()
                .filter(|o| matches!(o, Output::Up { .. }))
                .count();
            let closed: Vec<_> = outputs
                .iter()
                .filter_map(|o| match o {
                    Output::Close { link, .. } => Some(*link),
                    _ => None,
                })
                .collect();
            assert_eq!(ups, 1, "up once, never down");
            assert!(!outputs.iter().any(|o| matches!(o, Output::Down { .. })));
            // High refuses 20 at once; low, which moved off it, leaves it for high to close
            // (closing it first, it would look to high like low leaving).
            let expected_closed: &[LinkId] = if peer.id == high.id { &[] } else { &[20] };
            assert_eq!(closed, expected_closed);
            assert_eq!(membership.link_of(peer.id), Some(10));
            // Low was up on 20 and moved to 10: what it sent on 20 may be lost, so it is told to
            // start again. High was up on 10 from the start and never read a frame on 20.
            let relinked: Vec<_> = outputs
                .iter()
                .filter_map(|o| match o {
                    Output::Relinked { link, peer } => Some((*link, peer.id)),
                    _ => None,
                })
                .collect();
            let expected = if peer.id == high.id {
                vec![(10, high.id)]
            } else {
                vec![]
            };
            assert_eq!(relinked, expected);
        }
        // High's close of 20 reaches low: nobody went down.
        at_low.link_closed(20, DownReason::Closed);
        assert_eq!(drain(&mut at_low), []);
    }

    #[test]
    fn a_replaced_link_the_peer_never_closes_is_closed_after_the_timeout_quietly() {
        let now = Instant::now();
        let (low, high) = (info(1, "low"), info(2, "high"));
        let mut at_low = Membership::new(low, HeartbeatConfig::default(), now, 0);
        at_low.link_opened(20, Direction::Accepted, now);
        at_low.link_opened(10, Direction::Dialed, now);
        at_low.handle_message(20, &hello_from(&high), now);
        at_low.handle_message(10, &hello_from(&high), now);
        drain(&mut at_low);
        let later = now + HeartbeatConfig::default().timeout;
        at_low.handle_bytes(10, later);
        at_low.handle_timeout(later);
        let outputs = drain(&mut at_low);
        assert!(
            outputs
                .iter()
                .any(|o| matches!(o, Output::Close { link: 20, .. }))
        );
        assert!(!outputs.iter().any(|o| matches!(o, Output::Down { .. })));
        assert_eq!(at_low.link_of(high.id), Some(10));
    }

    #[test]
    fn a_link_that_never_says_hello_times_out_quietly() {
        let (mut membership, start) = setup();
        membership.link_opened(1, Direction::Accepted, start);
        drain(&mut membership);
        membership.handle_timeout(start + Duration::from_secs(3));
        assert_eq!(
            drain(&mut membership),
            [Output::Close {
                link: 1,
                reason: DownReason::TimedOut
            }]
        );
        assert_eq!(membership.poll_timeout(), None, "no links, no wake-ups");
    }

    fn members(peers: &[&PeerInfo]) -> LinkMessage {
        LinkMessage::Members {
            peers: peers
                .iter()
                .map(|peer| Member {
                    instance_id: peer.id,
                    name: peer.name.clone(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_coordinator_tells_each_leaf_the_others_once_per_batch_of_changes() {
        let (mut membership, now) = setup();
        membership.coordinate();
        let (a, b) = (info(2, "a"), info(3, "b"));
        membership.link_opened(1, Direction::Accepted, now);
        membership.link_opened(2, Direction::Accepted, now);
        membership.handle_message(1, &hello_from(&a), now);
        membership.handle_message(2, &hello_from(&b), now);
        let lists: Vec<_> = drain(&mut membership)
            .into_iter()
            .filter(|output| {
                matches!(
                    output,
                    Output::Send {
                        message: LinkMessage::Members { .. },
                        ..
                    }
                )
            })
            .collect();
        assert_eq!(
            lists,
            [
                Output::Send {
                    link: 1,
                    message: members(&[&b])
                },
                Output::Send {
                    link: 2,
                    message: members(&[&a])
                },
            ],
            "two ups, one list to each leaf"
        );
        membership.link_closed(2, DownReason::Closed);
        assert_eq!(
            drain(&mut membership),
            [
                Output::Down {
                    peer: b,
                    reason: DownReason::Closed
                },
                Output::Send {
                    link: 1,
                    message: members(&[])
                },
            ]
        );
        membership.handle_timeout(now + Duration::from_secs(1));
        assert!(
            drain(&mut membership).iter().all(|output| !matches!(
                output,
                Output::Send {
                    message: LinkMessage::Members { .. },
                    ..
                }
            )),
            "no change, no list"
        );
    }

    #[test]
    fn a_leaf_diffs_its_coordinators_lists_and_loses_them_with_it() {
        let (mut membership, now) = setup();
        let coordinator = info(9, "coordinator");
        let (me, a, b) = (info(1, "me"), info(2, "a"), info(3, "b"));
        membership.link_opened(4, Direction::Dialed, now);
        membership.follow(4);
        membership.handle_message(4, &hello_from(&coordinator), now);
        drain(&mut membership);
        membership.handle_message(4, &members(&[&me, &a]).into(), now);
        assert_eq!(
            drain(&mut membership),
            [Output::RelayedUp {
                peer: PeerInfo {
                    capabilities: vec![],
                    ..a.clone()
                }
            }]
        );
        membership.handle_message(4, &members(&[&b]).into(), now);
        assert_eq!(
            drain(&mut membership),
            [
                Output::Down {
                    peer: PeerInfo {
                        capabilities: vec![],
                        ..a
                    },
                    reason: DownReason::GoneFromHub
                },
                Output::RelayedUp {
                    peer: PeerInfo {
                        capabilities: vec![],
                        ..b.clone()
                    }
                },
            ]
        );
        // A list from any other link decides nothing.
        membership.link_opened(5, Direction::Accepted, now);
        membership.handle_message(5, &hello_from(&info(7, "stray")), now);
        drain(&mut membership);
        assert_eq!(
            membership.handle_message(5, &members(&[]).into(), now),
            Received::Handled
        );
        assert!(drain(&mut membership).is_empty());
        assert_eq!(membership.relayed().count(), 1);
        membership.link_closed(4, DownReason::Closed);
        assert_eq!(
            drain(&mut membership),
            [
                Output::Down {
                    peer: coordinator,
                    reason: DownReason::Closed
                },
                Output::Down {
                    peer: PeerInfo {
                        capabilities: vec![],
                        ..b
                    },
                    reason: DownReason::GoneFromHub
                },
            ]
        );
        assert_eq!(membership.relayed().count(), 0);
    }
}
