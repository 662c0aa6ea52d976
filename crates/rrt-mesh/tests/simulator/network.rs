//! The virtual network: edges (who can reach whom) and the links (connections) over them.
//!
//! A link is modelled as a stream connection, honestly:
//! - frames arrive in order after the edge's latency plus jitter; jitter differs per edge, so
//!   what travels by two paths arrives in any order;
//! - a lost frame is a broken connection, not a gap: both ends learn it is closed, and what was
//!   in flight on it is gone — the machines must recover through a new link's catch-up;
//! - during faults, a frame after the hello may also be duplicated, or overtake the frames before
//!   it (never the hello: membership drops what comes before it, and no stream reorders its first
//!   bytes); the machines must be idempotent and commutative for that;
//! - a cut edge is silent: frames wait (as TCP retransmits) and arrive after the heal if the
//!   connection survived; a closure sent meanwhile is lost, so each end learns of a dead
//!   connection by its own heartbeat timeout;
//! - a closed end does not come back: the dialer (the lower-numbered node of the edge) connects
//!   again after a random delay, and retries while the other end is down or the edge is cut.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use rrt_mesh::Message;

use super::{
    queue::{Event, Queue},
    topology::Graph,
};

/// End 0 of a link is its dialer, end 1 its acceptor.
const DIALER: usize = 0;

/// The per-frame faults while faults are on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LinkFaults {
    /// The chance a frame breaks its connection.
    pub(crate) loss: f64,
    /// The chance a frame arrives twice.
    pub(crate) duplicate: f64,
    /// The chance a frame may overtake the ones sent before it.
    pub(crate) reorder: f64,
}

/// What the network counted.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct NetworkCounters {
    pub(crate) links_opened: u64,
    pub(crate) links_broken: u64,
    pub(crate) duplicated: u64,
    pub(crate) reordered: u64,
}

#[derive(Debug)]
struct Edge {
    /// Dialer, acceptor.
    nodes: [usize; 2],
    latency: Duration,
    jitter: Duration,
    /// How many partitions cut it now.
    cuts: u32,
    /// The dialer's current link.
    link: Option<usize>,
    /// Joins two instances of one host: never cut by a partition.
    same_host: bool,
}

#[derive(Debug)]
struct Link {
    edge: usize,
    open: [bool; 2],
    /// Lost a frame, or an end crashed: nothing more crosses it.
    broken: bool,
    /// Frames sent towards each end.
    sent: [u64; 2],
    /// When the first frame (the hello) towards each end arrives: nothing overtakes it.
    first_arrival: [Option<Instant>; 2],
    /// When the latest in-order frame towards each end arrives.
    last_arrival: [Instant; 2],
    /// Frames towards an end held while the edge is cut.
    stalled: Vec<(usize, Message)>,
}

/// Edges, links and the faults on them.
#[derive(Debug)]
pub(crate) struct Network {
    edges: Vec<Edge>,
    links: BTreeMap<usize, Link>,
    next_link: usize,
    faults: Option<LinkFaults>,
    counters: NetworkCounters,
}

impl Network {
    /// The network of `graph`, with random latencies (short within a host).
    pub(crate) fn new(graph: &Graph, rng: &mut fastrand::Rng) -> Self {
        let edges = graph
            .edges
            .iter()
            .enumerate()
            .map(|(edge, &(a, b))| {
                let same_host = graph.same_host(edge);
                let (latency, jitter) = if same_host {
                    (1..3, 0..2)
                } else {
                    (1..40, 0..20)
                };
                Edge {
                    nodes: [a, b],
                    latency: Duration::from_millis(rng.u64(latency)),
                    jitter: Duration::from_millis(rng.u64(jitter)),
                    cuts: 0,
                    link: None,
                    same_host,
                }
            })
            .collect();
        Self {
            edges,
            links: BTreeMap::new(),
            next_link: 0,
            faults: None,
            counters: NetworkCounters::default(),
        }
    }

    pub(crate) fn set_faults(&mut self, faults: Option<LinkFaults>) {
        self.faults = faults;
    }

    pub(crate) fn counters(&self) -> NetworkCounters {
        self.counters
    }

    pub(crate) fn edge_count(&self) -> usize {
        self.edges.len()
    }

    /// The dialer and acceptor of `edge`.
    pub(crate) fn nodes(&self, edge: usize) -> [usize; 2] {
        self.edges[edge].nodes
    }

    /// The edges `node` dials.
    pub(crate) fn dialed_by(&self, node: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.edges.len()).filter(move |edge| self.edges[*edge].nodes[DIALER] == node)
    }

    /// The links with an end at `node` open, and that end.
    pub(crate) fn open_ends(&self, node: usize) -> Vec<(usize, usize)> {
        self.links
            .iter()
            .flat_map(|(id, link)| {
                let nodes = self.edges[link.edge].nodes;
                (0..2)
                    .filter(move |end| nodes[*end] == node && link.open[*end])
                    .map(move |end| (*id, end))
            })
            .collect()
    }

    /// The node at `end` of `link`, if that end is still open.
    pub(crate) fn open_end(&self, link: usize, end: usize) -> Option<usize> {
        let link = self.links.get(&link)?;
        link.open[end].then(|| self.edges[link.edge].nodes[end])
    }

    /// The dialer's link on `edge`, if it is open at both ends.
    pub(crate) fn established(&self, edge: usize) -> Option<usize> {
        let id = self.edges[edge].link?;
        let link = self.links.get(&id)?;
        (link.open == [true, true] && !link.broken).then_some(id)
    }

    /// Whether `edge` joins two instances of one host.
    pub(crate) fn same_host(&self, edge: usize) -> bool {
        self.edges[edge].same_host
    }

    pub(crate) fn is_cut(&self, edge: usize) -> bool {
        self.edges[edge].cuts > 0
    }

    /// A new connection on `edge`; the world tells both ends.
    pub(crate) fn open(&mut self, edge: usize, now: Instant) -> usize {
        let id = self.next_link;
        self.next_link += 1;
        self.links.insert(
            id,
            Link {
                edge,
                open: [true, true],
                broken: false,
                sent: [0, 0],
                first_arrival: [None, None],
                last_arrival: [now, now],
                stalled: Vec::new(),
            },
        );
        self.edges[edge].link = Some(id);
        self.counters.links_opened += 1;
        id
    }

    /// The node at `from` sends `message` on `link`.
    pub(crate) fn send(
        &mut self,
        link_id: usize,
        from: usize,
        message: Message,
        now: Instant,
        queue: &mut Queue,
        rng: &mut fastrand::Rng,
    ) {
        let Some(link) = self.links.get_mut(&link_id) else {
            return;
        };
        let edge = &self.edges[link.edge];
        let from_end = if edge.nodes[DIALER] == from { 0 } else { 1 };
        let to = 1 - from_end;
        if link.broken || !link.open[from_end] {
            return;
        }
        if edge.cuts > 0 {
            link.stalled.push((to, message));
            return;
        }
        let first = link.sent[to] == 0;
        link.sent[to] += 1;
        let faults = self.faults.filter(|_| !first);
        if faults.is_some_and(|faults| rng.f64() < faults.loss) {
            self.break_link(link_id, now, queue);
            return;
        }
        let (latency, jitter) = (edge.latency, edge.jitter);
        let arrival = |rng: &mut fastrand::Rng| now + latency + jitter.mul_f64(rng.f64());
        let in_order = arrival(rng).max(link.last_arrival[to]);
        link.last_arrival[to] = in_order;
        let first_arrival = *link.first_arrival[to].get_or_insert(in_order);
        let at = if faults.is_some_and(|faults| rng.f64() < faults.reorder) {
            self.counters.reordered += 1;
            arrival(rng).max(first_arrival)
        } else {
            in_order
        };
        if faults.is_some_and(|faults| rng.f64() < faults.duplicate) {
            self.counters.duplicated += 1;
            let again = arrival(rng).max(first_arrival);
            queue.push(
                again,
                Event::Deliver {
                    link: link_id,
                    to,
                    message: message.clone(),
                },
            );
        }
        queue.push(
            at,
            Event::Deliver {
                link: link_id,
                to,
                message,
            },
        );
    }

    /// Whether a frame towards `to` on `link` may be handed to its node.
    pub(crate) fn deliverable(&self, link: usize, to: usize) -> bool {
        self.links
            .get(&link)
            .is_some_and(|link| !link.broken && link.open[to])
    }

    /// A lost frame: the connection is reset, both ends learn it after the latency.
    fn break_link(&mut self, link_id: usize, now: Instant, queue: &mut Queue) {
        let Some(link) = self.links.get_mut(&link_id) else {
            return;
        };
        link.broken = true;
        link.stalled.clear();
        self.counters.links_broken += 1;
        let latency = self.edges[link.edge].latency;
        for end in 0..2 {
            if link.open[end] {
                queue.push(now + latency, Event::Closed { link: link_id, end });
            }
        }
    }

    /// The node at `end` closes its end (its membership said so, or the connection is gone). The
    /// other end hears of it after the latency, unless the edge is cut or the link broken.
    pub(crate) fn close(
        &mut self,
        link_id: usize,
        end: usize,
        now: Instant,
        queue: &mut Queue,
        rng: &mut fastrand::Rng,
    ) {
        let Some(link) = self.links.get_mut(&link_id) else {
            return;
        };
        if !std::mem::replace(&mut link.open[end], false) {
            return;
        }
        let edge = &mut self.edges[link.edge];
        let other = 1 - end;
        if link.open[other] && !link.broken && edge.cuts == 0 {
            // After the frames already on their way, as a FIN follows the data.
            let at = (now + edge.latency).max(link.last_arrival[other]);
            queue.push(
                at,
                Event::Closed {
                    link: link_id,
                    end: other,
                },
            );
        }
        if end == DIALER && edge.link == Some(link_id) {
            edge.link = None;
            queue.push(now + backoff(rng), Event::Dial { edge: link.edge });
        }
        if link.open == [false, false] {
            self.links.remove(&link_id);
        }
    }

    /// `node` crashed: its ends are gone without a word; each peer learns of it at once (a reset)
    /// or only by its heartbeat timeout (the host vanished).
    pub(crate) fn crash(
        &mut self,
        node: usize,
        now: Instant,
        queue: &mut Queue,
        rng: &mut fastrand::Rng,
    ) {
        for (link_id, end) in self.open_ends(node) {
            let Some(link) = self.links.get_mut(&link_id) else {
                continue;
            };
            link.open[end] = false;
            link.broken = true;
            link.stalled.clear();
            let edge = &mut self.edges[link.edge];
            if end == DIALER && edge.link == Some(link_id) {
                // Dialed again when the node restarts.
                edge.link = None;
            }
            let other = 1 - end;
            if link.open[other] && rng.bool() {
                queue.push(
                    now + edge.latency,
                    Event::Closed {
                        link: link_id,
                        end: other,
                    },
                );
            }
            if link.open == [false, false] {
                self.links.remove(&link_id);
            }
        }
    }

    /// Whether the dialer of `edge` should connect now; when its peer is unreachable
    /// (`reachable` false) or the edge is cut, it tries again later.
    pub(crate) fn dial_due(
        &self,
        edge: usize,
        reachable: bool,
        now: Instant,
        queue: &mut Queue,
        rng: &mut fastrand::Rng,
    ) -> bool {
        if self.edges[edge].link.is_some() {
            return false;
        }
        if !reachable || self.is_cut(edge) {
            queue.push(now + backoff(rng) * 2, Event::Dial { edge });
            return false;
        }
        true
    }

    /// Dials `node`'s edges (it just started).
    pub(crate) fn dial_from(
        &self,
        node: usize,
        now: Instant,
        queue: &mut Queue,
        rng: &mut fastrand::Rng,
    ) {
        for edge in self.dialed_by(node) {
            queue.push(now + backoff(rng), Event::Dial { edge });
        }
    }

    /// Cuts these edges; a same-host edge is never in a partition (its link can still break,
    /// and its ends crash).
    pub(crate) fn cut(&mut self, edges: &[usize]) {
        for &edge in edges {
            debug_assert!(!self.edges[edge].same_host, "a partition within a host");
            self.edges[edge].cuts += 1;
        }
    }

    /// Undoes one cut of each edge; frames held on an edge that is whole again go on their way,
    /// in order, if their connection is still there.
    pub(crate) fn heal(&mut self, edges: &[usize], now: Instant, queue: &mut Queue) {
        for &edge in edges {
            self.edges[edge].cuts -= 1;
        }
        for (link_id, link) in &mut self.links {
            let edge = &self.edges[link.edge];
            if edge.cuts > 0 || link.stalled.is_empty() {
                continue;
            }
            for (to, message) in std::mem::take(&mut link.stalled) {
                let at = (now + edge.latency).max(link.last_arrival[to]);
                link.last_arrival[to] = at;
                link.first_arrival[to].get_or_insert(at);
                link.sent[to] += 1;
                queue.push(
                    at,
                    Event::Deliver {
                        link: *link_id,
                        to,
                        message,
                    },
                );
            }
        }
    }

    /// Every cut undone.
    pub(crate) fn heal_all(&mut self, now: Instant, queue: &mut Queue) {
        let cut: Vec<usize> = (0..self.edges.len())
            .flat_map(|edge| std::iter::repeat_n(edge, self.edges[edge].cuts as usize))
            .collect();
        self.heal(&cut, now, queue);
    }
}

/// How long a dialer waits before connecting again.
fn backoff(rng: &mut fastrand::Rng) -> Duration {
    Duration::from_millis(rng.u64(50..1000))
}
