//! One run: a seeded world of nodes on a random graph, a workload and faults over a stretch of
//! virtual time, then the faults end and the mesh must settle and agree.
//!
//! ```text
//! 0 ─── copies, appends, crashes, partitions, lost / duplicated / reordered frames ───▶ WORK
//!       EndFaults: every edge heals, every node runs ──▶ quiescent? ──▶ check
//!                                                        └ not by the deadline: failure
//! ```
//!
//! Everything random comes from one RNG seeded with the run's seed, and virtual time is an
//! `Instant` base plus offsets, so a run is a function of its seed: a failure is reproduced by
//! running its seed alone.

use std::{
    collections::VecDeque,
    time::{Duration, Instant},
};

use rrt_mesh::proto::membership::Direction;
use uuid::Uuid;

use super::{
    check::{self, Expected},
    driver::{Action, Driver, Outcome},
    network::{LinkFaults, Network},
    queue::{Event, Queue},
    report::Report,
    routing,
    topology::{self, Shape},
    writer::Written,
};

/// How long the workload and the faults last.
const WORK: Duration = Duration::from_secs(30);
/// How long the mesh may take to settle once faults end.
const SETTLE_DEADLINE: Duration = Duration::from_secs(120);
/// How often a settling mesh is checked for quiescence.
const PROBE_EVERY: Duration = Duration::from_millis(250);
/// The documents appended to.
const DOCUMENTS: usize = 3;
/// How many trace lines a failure shows.
const TRACE_TAIL: usize = 60;
/// The chance that a local write (a copy's save, an edit's append) fails.
const WRITE_FAILURE: f64 = 0.02;
/// The longest a writer's job takes, in milliseconds.
const WRITE_MS: u64 = 30;
/// The longest a writer's result takes to reach its node, in milliseconds.
const WRITTEN_MS: u64 = 3;
const FAULTS: LinkFaults = LinkFaults {
    loss: 0.003,
    duplicate: 0.02,
    reorder: 0.05,
};

/// Why a run failed, with the end of its trace.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) reason: String,
    pub(crate) trace: Vec<String>,
}

/// Runs seed `seed` with `nodes` nodes; `verbose` prints the trace as it goes.
pub(crate) fn run(seed: u64, nodes: usize, verbose: bool) -> Result<Report, Failure> {
    let mut world = World::new(seed, nodes, verbose);
    world.schedule_workload_and_faults();
    let outcome = world
        .run_to_quiescence()
        .and_then(|()| check::converged(&world.drivers, &world.expected));
    match outcome {
        Ok(()) => Ok(world.finish_report()),
        Err(reason) => Err(world.fail(reason)),
    }
}

struct World {
    seed: u64,
    rng: fastrand::Rng,
    base: Instant,
    now: Instant,
    queue: Queue,
    network: Network,
    drivers: Vec<Driver>,
    /// The earliest timer event queued for each node.
    timers: Vec<Option<Instant>>,
    /// When each node's latest writer result arrives: results arrive in order.
    results_at: Vec<Instant>,
    expected: Expected,
    report: Report,
    /// When faults ended, once they have.
    faults_ended: Option<Instant>,
    next_token: u64,
    next_copy: u64,
    trace: VecDeque<String>,
    verbose: bool,
}

impl World {
    fn new(seed: u64, nodes: usize, verbose: bool) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let base = Instant::now();
        let shape = Shape::pick(&mut rng);
        let graph = topology::graph(shape, nodes, &mut rng);
        let network = Network::new(&graph, &mut rng);
        let edges = graph.edges.clone();
        let drivers = (0..nodes)
            .map(|_| {
                // Clocks a little off, as hosts' are; far within the bound on peers' stamps.
                Driver::new(base, rng.i64(-300..=300))
            })
            .collect();
        let mut world = Self {
            seed,
            rng,
            base,
            now: base,
            queue: Queue::default(),
            network,
            drivers,
            timers: vec![None; nodes],
            results_at: vec![base; nodes],
            expected: Expected::default(),
            report: Report {
                runs: 1,
                nodes: nodes as u64,
                edges: edges.len() as u64,
                same_host_edges: (0..edges.len())
                    .filter(|edge| graph.same_host(*edge))
                    .count() as u64,
                ..Report::default()
            },
            faults_ended: None,
            next_token: 0,
            next_copy: 0,
            trace: VecDeque::new(),
            verbose,
        };
        world.note(format!(
            "{shape:?} graph of {nodes} nodes on hosts {:?}: {edges:?}",
            graph.host
        ));
        world.network.set_faults(Some(FAULTS));
        for node in 0..nodes {
            world.start(node);
        }
        world
    }

    fn schedule_workload_and_faults(&mut self) {
        let nodes = self.drivers.len();
        let base = self.base;
        let at = |rng: &mut fastrand::Rng| base + WORK.mul_f64(rng.f64());
        for _ in 0..nodes / 2 {
            let when = at(&mut self.rng);
            let node = self.rng.usize(0..nodes);
            let crash_after_save = self.rng.u32(0..20) == 0;
            self.queue.push(
                when,
                Event::Copy {
                    node,
                    crash_after_save,
                },
            );
        }
        let mut appends = 0;
        while appends < nodes {
            let when = at(&mut self.rng);
            let node = self.rng.usize(0..nodes);
            let document = self.rng.usize(0..DOCUMENTS);
            // Bursts within the batching window are merged into one update.
            for burst in 0..self.rng.usize(1..4) {
                let when = when + Duration::from_millis(5 * burst as u64);
                self.queue.push(when, Event::Append { node, document });
                appends += 1;
            }
        }
        for _ in 0..self.rng.usize(3..8) {
            let when = at(&mut self.rng);
            let node = self.rng.usize(0..nodes);
            let down = Duration::from_millis(self.rng.u64(200..6000));
            self.queue.push(when, Event::Crash { node });
            self.queue.push(when + down, Event::Restart { node });
        }
        for _ in 0..self.rng.usize(2..6) {
            let when = at(&mut self.rng);
            let lasting = Duration::from_millis(self.rng.u64(300..8000));
            let edges = self.partition();
            self.queue.push(
                when,
                Event::Cut {
                    edges: edges.clone(),
                },
            );
            self.queue.push(when + lasting, Event::Heal { edges });
        }
        self.queue.push(
            self.base + WORK + Duration::from_millis(500),
            Event::EndFaults,
        );
    }

    /// Edges to cut: a random set of them, or every edge around a random group of nodes.
    fn partition(&mut self) -> Vec<usize> {
        let edges = self.network.edge_count();
        if self.rng.bool() {
            let share = 0.1 + 0.3 * self.rng.f64();
            return (0..edges)
                .filter(|edge| self.rng.f64() < share && !self.network.same_host(*edge))
                .collect();
        }
        let nodes = self.drivers.len();
        let group: Vec<bool> = {
            let size = self.rng.usize(1..=nodes.div_ceil(3));
            let mut group = vec![false; nodes];
            for node in self.rng.choose_multiple(0..nodes, size) {
                group[node] = true;
            }
            group
        };
        (0..edges)
            .filter(|edge| {
                let [a, b] = self.network.nodes(*edge);
                group[a] != group[b] && !self.network.same_host(*edge)
            })
            .collect()
    }

    fn run_to_quiescence(&mut self) -> Result<(), String> {
        while let Some((at, event)) = self.queue.pop() {
            self.now = at;
            if let Some(done) = self.handle(event)? {
                let settle = self.now - done;
                self.report.settle_total = settle;
                self.report.settle_max = settle;
                return Ok(());
            }
        }
        Err("the event queue ran dry before the mesh settled".to_owned())
    }

    /// Carries out one event; `Some(when faults ended)` once the mesh is quiescent.
    fn handle(&mut self, event: Event) -> Result<Option<Instant>, String> {
        match event {
            Event::Deliver { link, to, message } => {
                if self.network.deliverable(link, to)
                    && let Some(node) = self.network.open_end(link, to)
                {
                    self.report.deliveries += 1;
                    self.drivers[node].receive(link, message, self.now);
                    self.perform(node);
                }
            }
            Event::Closed { link, end } => {
                if let Some(node) = self.network.open_end(link, end) {
                    self.network
                        .close(link, end, self.now, &mut self.queue, &mut self.rng);
                    self.drivers[node].link_closed(link);
                    self.perform(node);
                }
            }
            Event::Dial { edge } => self.dial(edge),
            Event::Timer { node } => {
                if self.timers[node] == Some(self.now) {
                    self.timers[node] = None;
                }
                self.drivers[node].handle_timeout(self.now);
                self.perform(node);
            }
            Event::WriterStep { node, incarnation } => {
                if self.drivers[node].incarnation() == incarnation {
                    self.write_next(node, incarnation);
                }
            }
            Event::Written {
                node,
                incarnation,
                written,
            } => {
                if self.drivers[node].incarnation() == incarnation {
                    self.written(node, written);
                }
            }
            Event::Crash { node } => self.crash(node),
            Event::Restart { node } => {
                if !self.drivers[node].is_running() {
                    self.start(node);
                }
            }
            Event::Cut { edges } => {
                self.note(format!("cut edges {edges:?}"));
                self.report.partitions += 1;
                self.network.cut(&edges);
            }
            // A partition lasting past the end of faults was healed with all the others.
            Event::Heal { edges } if self.faults_ended.is_none() => {
                self.note(format!("heal edges {edges:?}"));
                self.network.heal(&edges, self.now, &mut self.queue);
            }
            Event::Heal { .. } => {}
            Event::Copy {
                node,
                crash_after_save,
            } => self.copy(node, crash_after_save),
            Event::Append { node, document } => self.append(node, document),
            Event::EndFaults => {
                self.note("faults end: every edge heals, every node runs".to_owned());
                self.faults_ended = Some(self.now);
                self.network.set_faults(None);
                self.network.heal_all(self.now, &mut self.queue);
                for node in 0..self.drivers.len() {
                    if !self.drivers[node].is_running() {
                        self.start(node);
                    }
                }
                self.queue.push(self.now + PROBE_EVERY, Event::Probe);
            }
            Event::Probe => {
                let ended = self.faults_ended.expect("probes start when faults end");
                if self.quiescent() {
                    return Ok(Some(ended));
                }
                if self.now - ended > SETTLE_DEADLINE {
                    return Err(format!(
                        "not quiescent {SETTLE_DEADLINE:?} after the faults ended: {}",
                        self.unsettled()
                    ));
                }
                self.queue.push(self.now + PROBE_EVERY, Event::Probe);
            }
        }
        Ok(None)
    }

    /// Starts `node` from its disk under a new instance id, and dials its edges.
    fn start(&mut self, node: usize) {
        let id = Uuid::from_u128(self.rng.u128(..));
        self.note(format!("start node {node} as {id}"));
        self.drivers[node].start(id, format!("node-{node}"), self.now);
        self.network
            .dial_from(node, self.now, &mut self.queue, &mut self.rng);
        self.perform(node);
    }

    fn crash(&mut self, node: usize) {
        if !self.drivers[node].is_running() {
            return;
        }
        self.note(format!("crash node {node}"));
        self.report.crashes += 1;
        self.network
            .crash(node, self.now, &mut self.queue, &mut self.rng);
        self.drivers[node].crash();
        self.timers[node] = None;
    }

    fn dial(&mut self, edge: usize) {
        let [dialer, acceptor] = self.network.nodes(edge);
        // A dialer that is down dials again when it starts.
        if !self.drivers[dialer].is_running() {
            return;
        }
        let reachable = self.drivers[acceptor].is_running();
        if !self
            .network
            .dial_due(edge, reachable, self.now, &mut self.queue, &mut self.rng)
        {
            return;
        }
        let link = self.network.open(edge, self.now);
        let same_host = self.network.same_host(edge);
        self.drivers[dialer].link_opened(link, Direction::Dialed, same_host, self.now);
        self.perform(dialer);
        self.drivers[acceptor].link_opened(link, Direction::Accepted, same_host, self.now);
        self.perform(acceptor);
    }

    fn copy(&mut self, node: usize, crash_after_save: bool) {
        let text = format!("copy {} of seed {}", self.next_copy, self.seed);
        self.next_copy += 1;
        if let Some(entry) = self.drivers[node].copy(text, crash_after_save, self.now) {
            self.note(format!("node {node} stages {entry:?}"));
            self.perform(node);
        }
    }

    fn append(&mut self, node: usize, document: usize) {
        let name = format!("doc-{document}");
        self.next_token += 1;
        let token = format!("<{}>", self.next_token);
        if self.drivers[node].append(&name, &token) {
            self.note(format!("node {node} edits {name}: {token}"));
            self.perform(node);
        }
    }

    /// `node`'s writer carries out its next job; a local write fails now and then.
    fn write_next(&mut self, node: usize, incarnation: u64) {
        let fail = self.rng.f64() < WRITE_FAILURE;
        if let Some(written) = self.drivers[node].write_next(fail, self.now) {
            if let Written::Copy {
                staged,
                saved: true,
                ..
            } = &written
            {
                self.expected.saved.push(staged.entry().clone());
                self.report.copies_saved += 1;
            }
            let at = (self.now + Duration::from_millis(self.rng.u64(0..=WRITTEN_MS)))
                .max(self.results_at[node]);
            self.results_at[node] = at;
            self.queue.push(
                at,
                Event::Written {
                    node,
                    incarnation,
                    written,
                },
            );
        }
        self.perform(node);
    }

    /// A writer's result reaches `node`: the write is acknowledged, or refused.
    fn written(&mut self, node: usize, written: Written) {
        if let Written::Copy {
            staged,
            crash_after_save: true,
            saved: true,
        } = &written
        {
            self.note(format!(
                "node {node} saved {:?} and crashes before acknowledging it",
                staged.entry()
            ));
            self.crash(node);
            let back = self.now + Duration::from_millis(self.rng.u64(200..3000));
            self.queue.push(back, Event::Restart { node });
            return;
        }
        match self.drivers[node].written(written, self.now) {
            Outcome::Copied(entry) => {
                self.note(format!("node {node} copies {entry:?}"));
                self.expected.acknowledged.push(entry.stamp);
                self.report.copies_acknowledged += 1;
            }
            Outcome::CopyFailed(entry) => {
                self.note(format!("node {node} failed to save {entry:?}"));
                self.report.copies_failed += 1;
            }
            Outcome::Appended { name, token } => {
                self.note(format!("node {node} appends {token} to {name}"));
                self.expected.tokens.entry(name).or_default().push(token);
                self.report.appends_acknowledged += 1;
            }
            Outcome::Refused { name, token } => {
                self.note(format!("node {node} refuses {token} of {name}"));
                self.expected.refused.entry(name).or_default().push(token);
                self.report.appends_refused += 1;
            }
        }
        self.perform(node);
    }

    /// Carries out what `node`'s driver asks, and keeps its timer queued.
    fn perform(&mut self, node: usize) {
        for action in self.drivers[node].take_actions() {
            match action {
                Action::Send { link, message } => {
                    self.report.count_sent(routing::kind(&message));
                    self.network.send(
                        link,
                        node,
                        message,
                        self.now,
                        &mut self.queue,
                        &mut self.rng,
                    );
                }
                Action::Close { link } => {
                    for end in 0..2 {
                        if self.network.open_end(link, end) == Some(node) {
                            self.network
                                .close(link, end, self.now, &mut self.queue, &mut self.rng);
                        }
                    }
                }
            }
        }
        if self.drivers[node].writer_due() {
            let at = self.now + Duration::from_millis(self.rng.u64(0..=WRITE_MS));
            let incarnation = self.drivers[node].incarnation();
            self.queue.push(at, Event::WriterStep { node, incarnation });
        }
        if let Some(at) = self.drivers[node].poll_timeout()
            && self.timers[node].is_none_or(|queued| at < queued)
        {
            let at = at.max(self.now);
            self.timers[node] = Some(at);
            self.queue.push(at, Event::Timer { node });
        }
    }

    /// Nothing left to do but heartbeats: every node runs with no batch waiting, every edge has
    /// a link both ends see the other up on, and no work is in flight.
    fn quiescent(&self) -> bool {
        !self.queue.has_work()
            && self
                .drivers
                .iter()
                .all(|d| d.is_running() && !d.has_batch())
            && (0..self.network.edge_count()).all(|edge| self.linked(edge))
    }

    fn linked(&self, edge: usize) -> bool {
        let [a, b] = self.network.nodes(edge);
        self.network.established(edge).is_some_and(|link| {
            let (a, b) = (&self.drivers[a], &self.drivers[b]);
            a.peer_on(link).is_some() && a.peer_on(link) == b.id() && b.peer_on(link) == a.id()
        })
    }

    /// Why the mesh is not quiescent, for a failure.
    fn unsettled(&self) -> String {
        let unlinked: Vec<usize> = (0..self.network.edge_count())
            .filter(|edge| !self.linked(*edge))
            .collect();
        let batching: Vec<usize> = (0..self.drivers.len())
            .filter(|node| self.drivers[*node].has_batch())
            .collect();
        format!(
            "work in flight: {}; edges without a link up at both ends: {unlinked:?}; nodes with a batch waiting: {batching:?}",
            self.queue.has_work()
        )
    }

    fn note(&mut self, line: String) {
        let line = format!("{:>9.3?} {line}", self.now - self.base);
        if self.verbose {
            eprintln!("{line}");
        }
        if self.trace.len() == TRACE_TAIL {
            self.trace.pop_front();
        }
        self.trace.push_back(line);
    }

    fn finish_report(mut self) -> Report {
        self.report.network = self.network.counters();
        self.report.dropped_before_hello =
            self.drivers.iter().map(Driver::dropped_before_hello).sum();
        self.report
    }

    fn fail(&mut self, reason: String) -> Failure {
        Failure {
            reason,
            trace: std::mem::take(&mut self.trace).into(),
        }
    }
}
