//! One run: the scenario in virtual time, and the event loop that plays it.
//!
//! ```text
//! 0 s      nodes join, one by one at random times, each asking up to 3 live nodes
//! 60 s     copies every 1–5 s at a random live node; faults on links (delays, breaks)
//! 60–360 s churn: each minute 10 % of the live nodes crash and as many new ones join,
//!          at random times within the minute
//! 150 s    partition: the nodes split in two random halves, for 30 s
//! 360 s    faults stop
//! 365 s    a last copy, whose broadcast is lost (the tree never carries it): only the catch-up
//!          on links opened later can spread it
//!          ──▶ converged and quiet? (probed each second) ──▶ the report
//!              └ not within 300 s of the faults' end: the run fails its check
//! ```
//!
//! Everything random comes from one RNG seeded with the run's seed, and virtual time is an
//! `Instant` base plus offsets: a run is a function of its seed and size.

use std::time::{Duration, Instant};

use uuid::Uuid;

use super::{
    check::{self, Verdict},
    network::{Connected, Faults, Network},
    node::{Action, Node},
    queue::{Event, Queue},
    report::{Report, Run},
    stats::Observer,
};

/// The nodes all start within this.
const JOINING: Duration = Duration::from_secs(60);
/// Churn and copies start when the joining ends, and last this many minutes.
const CHURN_MINUTES: u32 = 5;
/// The share of live nodes that crash each minute of churn (and of new nodes that join).
const CHURN: f64 = 0.10;
/// When the partition starts, and how long it lasts.
const PARTITION_AT: Duration = Duration::from_secs(150);
const PARTITION_FOR: Duration = Duration::from_secs(30);
/// The time between copies, in milliseconds.
const COPY_EVERY_MS: std::ops::RangeInclusive<u64> = 1000..=5000;
/// When, after the faults stop, a copy is made whose broadcast is lost: only anti-entropy (the
/// catch-up on links HyParView opens, its shuffles' included) can carry it.
const LOST_COPY_AFTER: Duration = Duration::from_secs(5);
/// How many live nodes a new node asks to join.
const CONTACTS: usize = 3;
/// How long the mesh may take to converge and go quiet once the faults stop.
const SETTLE_DEADLINE: Duration = Duration::from_secs(300);
/// How long a node may be without neighbours before it joins again.
const REJOIN_AFTER: Duration = Duration::from_secs(5);
/// How long without a broadcast counts as quiet.
const QUIET: Duration = Duration::from_secs(10);
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// The wall clock at virtual time zero, in milliseconds since the Unix epoch.
const WALL_BASE_MS: u64 = 1_700_000_000_000;
const FAULTS: Faults = Faults {
    retransmit: 0.10,
    retransmit_delay: Duration::from_millis(200),
    break_link: 0.001,
};

/// A run's world.
pub(crate) struct World {
    rng: fastrand::Rng,
    base: Instant,
    now: Instant,
    queue: Queue,
    net: Network,
    /// Every node ever started, by index; `None` once crashed.
    nodes: Vec<Option<Node>>,
    started: Vec<Instant>,
    crashed: Vec<Option<Instant>>,
    /// The timer event scheduled for each node.
    timers: Vec<Option<Instant>>,
    /// Whether a node's check for an empty active view is scheduled.
    rejoin: Vec<bool>,
    observer: Observer,
    actions: Vec<Action>,
    faults_ended: Option<Instant>,
    /// When the last probe saw the machines send something.
    last_work: (u64, Instant),
    done: Option<Instant>,
    copies: u64,
    /// When the mesh was first seen converged since the faults stopped (and stayed so).
    converged_at: Option<Instant>,
    /// Nodes at the start.
    size: usize,
    verbose: bool,
}

/// Runs seed `seed` with `nodes` nodes at the start.
pub(crate) fn run(seed: u64, nodes: usize, verbose: bool) -> (Report, Verdict) {
    let mut world = World::new(seed, nodes, verbose);
    world.schedule(nodes);
    while let Some((at, event)) = world.queue.pop() {
        world.now = at;
        world.handle(event);
        if world.done.is_some() {
            break;
        }
    }
    let verdict = check::converged(world.live());
    let report = world.report(&verdict);
    (report, verdict)
}

fn uuid(node: usize) -> Uuid {
    Uuid::from_u128(node as u128 + 1)
}

fn index(id: Uuid) -> usize {
    (id.as_u128() - 1) as usize
}

impl World {
    fn new(seed: u64, size: usize, verbose: bool) -> Self {
        let base = Instant::now();
        Self {
            rng: fastrand::Rng::with_seed(seed),
            base,
            now: base,
            queue: Queue::default(),
            net: Network::default(),
            nodes: Vec::new(),
            started: Vec::new(),
            crashed: Vec::new(),
            timers: Vec::new(),
            rejoin: Vec::new(),
            observer: Observer::default(),
            actions: Vec::new(),
            faults_ended: None,
            last_work: (0, base),
            done: None,
            copies: 0,
            converged_at: None,
            size,
            verbose,
        }
    }

    fn schedule(&mut self, nodes: usize) {
        let base = self.base;
        for i in 0..nodes {
            let at = if i == 0 {
                Duration::ZERO
            } else {
                JOINING.mul_f64(self.rng.f64())
            };
            self.queue.push(base + at, Event::Join);
        }
        let churn_start = base + JOINING;
        let minute = Duration::from_secs(60);
        let per_minute = (nodes as f64 * CHURN).round() as u32;
        for m in 0..CHURN_MINUTES {
            let start = churn_start + minute * m;
            for _ in 0..per_minute {
                let crash = start + minute.mul_f64(self.rng.f64());
                self.queue.push(crash, Event::Crash);
                let join = start + minute.mul_f64(self.rng.f64());
                self.queue.push(join, Event::Join);
            }
        }
        let end = churn_start + minute * CHURN_MINUTES;
        let mut copy = churn_start;
        loop {
            copy += Duration::from_millis(self.rng.u64(COPY_EVERY_MS));
            if copy >= end {
                break;
            }
            self.queue.push(copy, Event::Copy { lost: false });
        }
        self.queue.push(base + PARTITION_AT, Event::Partition);
        self.queue
            .push(base + PARTITION_AT + PARTITION_FOR, Event::Heal);
        self.queue.push(churn_start, Event::StartFaults);
        self.queue.push(end, Event::EndFaults);
        for m in 1..=(CHURN_MINUTES + 1 + SETTLE_DEADLINE.as_secs() as u32 / 60) * 6 {
            self.queue.push(base + minute * m / 6, Event::Minute);
        }
    }

    fn clock(&self) -> (Instant, u64) {
        let since = self.now - self.base;
        (self.now, WALL_BASE_MS + since.as_millis() as u64)
    }

    fn live(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().flatten()
    }

    fn random_live(&mut self, except: Option<usize>) -> Option<usize> {
        let live: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.nodes[*i].is_some() && Some(*i) != except)
            .collect();
        (!live.is_empty()).then(|| live[self.rng.usize(..live.len())])
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Join => self.join(),
            Event::Crash => {
                if let Some(node) = self.random_live(None) {
                    self.nodes[node] = None;
                    self.crashed[node] = Some(self.now);

                    self.net
                        .crash(self.now, &mut self.rng, &mut self.queue, node);
                }
            }
            Event::Copy { lost } => {
                if let Some(node) = self.random_live(None) {
                    self.copies += 1;
                    let text = format!("copy {} at node {node}", self.copies);
                    let (now, now_ms) = self.clock();
                    let entry = self.node(node).copy(text, now_ms, lost);
                    self.observer.copy_made(uuid(node), entry.stamp, lost, now);
                    self.pump(node);
                }
            }
            Event::Connect { link } => {
                let (now, rng, queue) = (self.now, &mut self.rng, &mut self.queue);
                if let Some(Connected::Open { ends }) = self.net.connect(now, rng, queue, link) {
                    let [a, b] = ends;
                    self.node(a).link_up(uuid(b));
                    self.node(b).link_up(uuid(a));
                    self.pump(a);
                    self.pump(b);
                    self.net
                        .flush(self.now, &mut self.rng, &mut self.queue, link);
                }
            }
            Event::Deliver { link, to, frame } => {
                if let Some(peer) = self.net.deliverable(link, to) {
                    let clock = self.clock();
                    let observer = &mut self.observer;
                    let node = self.nodes[to]
                        .as_mut()
                        .expect("a node holding a link is alive");
                    node.receive(uuid(peer), frame, clock, observer);
                    self.pump(to);
                }
            }
            Event::Closed {
                link,
                to,
                peer_died,
            } => {
                if let Some((peer, _)) = self.net.closed(link, to) {
                    let now = self.now;
                    self.node(to).link_down(uuid(peer), peer_died, now);
                    self.pump(to);
                }
            }
            Event::Timer { node } => {
                if self.timers[node] == Some(self.now)
                    && let Some(live) = self.nodes[node].as_mut()
                {
                    self.timers[node] = None;
                    live.timeout(self.now);
                    self.pump(node);
                }
            }
            Event::Partition => {
                let sides: Vec<bool> = (0..self.nodes.len()).map(|_| self.rng.bool()).collect();
                let side = move |node: usize| sides.get(node).copied().unwrap_or(false);
                self.net
                    .partition(self.now, &mut self.rng, &mut self.queue, side);
            }
            Event::Heal => self.net.heal(),
            Event::StartFaults => self.net.set_faults(Some(FAULTS)),
            Event::EndFaults => {
                self.net.set_faults(None);
                self.faults_ended = Some(self.now);
                self.queue.push(self.now + PROBE_EVERY, Event::Probe);
                self.queue
                    .push(self.now + LOST_COPY_AFTER, Event::Copy { lost: true });
            }
            Event::Rejoin { node } => {
                self.rejoin[node] = false;
                if self.nodes[node]
                    .as_ref()
                    .is_some_and(|live| live.neighbours() == 0)
                {
                    let contacts = self.contacts(node);
                    let now = self.now;
                    self.node(node).join(contacts, now);
                    self.pump(node);
                }
            }
            Event::Probe => self.probe(),
            Event::Minute => self.progress(),
        }
    }

    fn node(&mut self, node: usize) -> &mut Node {
        self.nodes[node].as_mut().expect("a live node")
    }

    /// Discovery: up to [`CONTACTS`] random live nodes other than `node`.
    fn contacts(&mut self, node: usize) -> Vec<Uuid> {
        let mut live: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.nodes[*i].is_some() && *i != node)
            .collect();
        let mut contacts = Vec::new();
        while contacts.len() < CONTACTS && !live.is_empty() {
            let pick = live.swap_remove(self.rng.usize(..live.len()));
            contacts.push(uuid(pick));
        }
        contacts
    }

    fn join(&mut self) {
        let node = self.nodes.len();
        let contacts = self.contacts(node);
        let (now, now_ms) = self.clock();
        let seed = self.rng.u64(..);
        let mut new = Node::new(uuid(node), seed, now, now_ms);
        new.join(contacts, now);
        self.nodes.push(Some(new));
        self.started.push(now);
        self.crashed.push(None);
        self.timers.push(None);
        self.rejoin.push(false);
        let side = self.rng.bool();
        self.net.add_node(node, side);
        self.pump(node);
    }

    /// Carries out what node `node` asks, and wakes it when its machines want.
    fn pump(&mut self, node: usize) {
        let clock = self.clock();
        let Some(live) = self.nodes[node].as_mut() else {
            return;
        };
        live.pump(clock, &mut self.actions, &mut self.observer);
        let deadline = live.deadline();
        let alone = live.neighbours() == 0;
        for action in std::mem::take(&mut self.actions) {
            let (now, rng, queue) = (self.now, &mut self.rng, &mut self.queue);
            match action {
                Action::Send { to, frame, dial } => {
                    self.net
                        .send(now, rng, queue, (node, index(to)), *frame, dial);
                }
                Action::Close { peer } => self.net.close(now, rng, queue, (node, index(peer))),
            }
        }
        if let Some(at) = deadline
            && self.timers[node].is_none_or(|scheduled| at < scheduled)
        {
            let at = at.max(self.now);
            self.timers[node] = Some(at);
            self.queue.push(at, Event::Timer { node });
        }
        if alone && !self.rejoin[node] {
            self.rejoin[node] = true;
            self.queue
                .push(self.now + REJOIN_AFTER, Event::Rejoin { node });
        }
    }

    fn probe(&mut self) {
        let work = self.observer.work();
        if work != self.last_work.0 {
            self.last_work = (work, self.now);
        }
        let quiet = self.now - self.last_work.1 >= QUIET;
        let ended = self.faults_ended.expect("probes start when faults end");
        let verdict = check::converged(self.live());
        if !verdict.converged() {
            self.converged_at = None;
        } else if self.converged_at.is_none() {
            self.converged_at = Some(self.now);
        }
        if (verdict.converged() && quiet) || self.now - ended >= SETTLE_DEADLINE {
            self.done = Some(self.now);
        } else {
            self.queue.push(self.now + PROBE_EVERY, Event::Probe);
        }
    }

    fn progress(&self) {
        if !self.verbose {
            return;
        }
        let live: Vec<&Node> = self.live().collect();
        let links: usize = live.iter().map(|node| node.links()).sum();
        let verdict = check::converged(live.iter().copied());
        println!(
            "t={:>4}s live={} links/node={:.2} {verdict}",
            (self.now - self.base).as_secs(),
            live.len(),
            links as f64 / live.len().max(1) as f64,
        );
    }

    fn report(&self, verdict: &Verdict) -> Report {
        let end = self.done.unwrap_or(self.now);
        let node_seconds: f64 = (0..self.nodes.len())
            .map(|i| (self.crashed[i].unwrap_or(end) - self.started[i]).as_secs_f64())
            .sum();
        let live: Vec<(usize, &Node)> = (0..self.nodes.len())
            .filter_map(|i| self.nodes[i].as_ref().map(|node| (i, node)))
            .collect();
        let run = Run {
            nodes: self.size,
            partition: (
                self.base + PARTITION_AT,
                self.base + PARTITION_AT + PARTITION_FOR,
            ),
            node_seconds,
            seconds: (end - self.base).as_secs_f64(),
            settled: self
                .faults_ended
                .zip(self.converged_at)
                .map(|(ended, converged)| converged - ended),
        };
        let started = |id: Uuid| self.started[index(id)];
        Report::new(
            &run,
            &self.observer,
            self.net.counters(),
            &live.iter().map(|(_, node)| *node).collect::<Vec<_>>(),
            started,
            verdict,
        )
    }
}
