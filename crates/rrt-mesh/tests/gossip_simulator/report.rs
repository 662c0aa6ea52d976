//! The run's numbers as a markdown table.

use std::{
    fmt,
    time::{Duration, Instant},
};

use uuid::Uuid;

use super::{
    check::Verdict,
    network::Counters,
    node::Node,
    stats::{Broadcasts, CopyTrace, Observer},
};

/// What a run cost and how it ended.
#[derive(Debug)]
pub(crate) struct Report {
    nodes: usize,
    mean_live: f64,
    node_seconds: f64,
    live: usize,
    clip: Broadcasts,
    roster: Broadcasts,
    distinct: u64,
    control_frames: u64,
    direct_frames: u64,
    direct_roster_entries: u64,
    links_mean: f64,
    links_max: usize,
    depth_mean: f64,
    depth_max: u32,
    /// Copies made outside the partition, during it, and the one whose broadcast was lost.
    outside: Spreads,
    partitioned: Spreads,
    lost: Spreads,
    copies: usize,
    counters: Counters,
    settled: Option<Duration>,
    verdict: String,
    converged: bool,
}

/// How long copies took to reach every live node.
#[derive(Debug)]
struct Spreads {
    /// Sorted.
    times: Vec<Duration>,
    /// Copies some live node never held.
    unreached: usize,
}

impl Spreads {
    fn of(spreads: impl Iterator<Item = Option<Duration>>) -> Self {
        let (mut times, mut unreached) = (Vec::new(), 0);
        for spread in spreads {
            match spread {
                Some(time) => times.push(time),
                None => unreached += 1,
            }
        }
        times.sort();
        Self { times, unreached }
    }

    fn percentile(&self, p: f64) -> String {
        let rank = (self.times.len() as f64 * p).ceil() as usize;
        ms(self.times.get(rank.max(1) - 1).copied())
    }

    fn count(&self) -> String {
        let copies = self.times.len() + self.unreached;
        let noun = if copies == 1 { "copy" } else { "copies" };
        match self.unreached {
            0 => format!("{copies} {noun}"),
            unreached => format!("{copies} {noun}, **{unreached} never reached all**"),
        }
    }
}

/// The run's size and length.
#[derive(Debug)]
pub(crate) struct Run {
    /// Nodes at the start.
    pub(crate) nodes: usize,
    /// When the partition started and healed.
    pub(crate) partition: (Instant, Instant),
    /// Seconds each node was alive, summed.
    pub(crate) node_seconds: f64,
    /// The run's length in virtual seconds.
    pub(crate) seconds: f64,
    /// From the end of the faults until the nodes agreed.
    pub(crate) settled: Option<Duration>,
}

impl Report {
    pub(crate) fn new(
        run: &Run,
        observer: &Observer,
        counters: Counters,
        live: &[&Node],
        started: impl Fn(Uuid) -> Instant,
        verdict: &Verdict,
    ) -> Self {
        let Run {
            nodes,
            partition,
            node_seconds,
            seconds,
            settled,
        } = *run;
        let mean_live = node_seconds / seconds;
        let links: Vec<usize> = live.iter().map(|node| node.links()).collect();
        let depths: Vec<u32> = observer
            .copies
            .values()
            .filter_map(|trace| trace.hops.values().max().copied())
            .collect();
        // Each copy's time to reach every node alive at its making and at the end: `None` if one
        // of them never held it.
        let spread = |trace: &CopyTrace| -> Option<Duration> {
            live.iter()
                .map(|node| node.id())
                .filter(|id| started(*id) <= trace.made)
                .map(|id| trace.held.get(&id).map(|held| *held - trace.made))
                .try_fold(Duration::ZERO, |last, time| Some(last.max(time?)))
        };
        let during = |trace: &CopyTrace| (partition.0..partition.1).contains(&trace.made);
        let spreads = |keep: &dyn Fn(&CopyTrace) -> bool| {
            Spreads::of(
                observer
                    .copies
                    .values()
                    .filter(|trace| keep(trace))
                    .map(spread),
            )
        };
        let outside = spreads(&|trace| !trace.lost && !during(trace));
        let partitioned = spreads(&|trace| !trace.lost && during(trace));
        let lost = spreads(&|trace| trace.lost);
        Self {
            nodes,
            mean_live,
            node_seconds,
            live: live.len(),
            clip: observer.clip,
            roster: observer.roster,
            distinct: observer.distinct_broadcasts(),
            control_frames: observer.control_frames,
            direct_frames: observer.direct_frames,
            direct_roster_entries: observer.direct_roster_entries,
            links_mean: links.iter().sum::<usize>() as f64 / links.len().max(1) as f64,
            links_max: links.iter().copied().max().unwrap_or(0),
            depth_mean: depths.iter().sum::<u32>() as f64 / depths.len().max(1) as f64,
            depth_max: depths.iter().copied().max().unwrap_or(0),
            outside,
            partitioned,
            lost,
            copies: observer.copies.len(),
            counters,
            settled,
            verdict: verdict.to_string(),
            converged: verdict.converged(),
        }
    }
}

fn ms(duration: Option<Duration>) -> String {
    duration.map_or_else(|| "–".to_owned(), |d| format!("{}", d.as_millis()))
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counters;
        let per_node_second = |n: u64| n as f64 / self.node_seconds;
        let payload_frames = self.clip.payload_frames + self.roster.payload_frames;
        let payload_bytes = self.clip.payload_bytes + self.roster.payload_bytes;
        let row = |f: &mut fmt::Formatter<'_>, what: &str, value: String| {
            writeln!(f, "| {what} | {value} |")
        };
        writeln!(f, "| | |")?;
        writeln!(f, "|---|---:|")?;
        row(
            f,
            "nodes: at the start / live at the end / mean live",
            format!("{} / {} / {:.0}", self.nodes, self.live, self.mean_live),
        )?;
        let per_delivery = |b: &Broadcasts| b.payload_frames as f64 / b.deliveries.max(1) as f64;
        row(
            f,
            "payload gossip frames per node per broadcast (sent ÷ delivered): all / clipboard / roster",
            format!(
                "{:.2} / {:.2} / {:.2}",
                payload_frames as f64
                    / (self.clip.deliveries + self.roster.deliveries).max(1) as f64,
                per_delivery(&self.clip),
                per_delivery(&self.roster)
            ),
        )?;
        let per_copy = |n: u64| n as f64 / self.copies.max(1) as f64 / self.mean_live;
        row(
            f,
            "per copy and node, its re-broadcasts included: payload frames / deliveries",
            format!(
                "{:.2} / {:.2}",
                per_copy(self.clip.payload_frames),
                per_copy(self.clip.deliveries)
            ),
        )?;
        row(
            f,
            "broadcasts: clipboard own / forwarded, roster own / forwarded (distinct)",
            format!(
                "{} / {}, {} / {} ({})",
                self.clip.own,
                self.clip.forwarded,
                self.roster.own,
                self.roster.forwarded,
                self.distinct
            ),
        )?;
        row(
            f,
            "payload bytes per node per second: clipboard / roster",
            format!(
                "{:.0} / {:.0} (total {:.0})",
                per_node_second(self.clip.payload_bytes),
                per_node_second(self.roster.payload_bytes),
                per_node_second(payload_bytes)
            ),
        )?;
        row(
            f,
            "control gossip frames per node per second",
            format!("{:.2}", per_node_second(self.control_frames)),
        )?;
        row(
            f,
            "machines' frames over links (catch-up) per node per second; roster entries in them",
            format!(
                "{:.2}; {:.0}",
                per_node_second(self.direct_frames),
                per_node_second(self.direct_roster_entries)
            ),
        )?;
        row(
            f,
            "links per node at the end, mean / max",
            format!("{:.2} / {}", self.links_mean, self.links_max),
        )?;
        row(
            f,
            "tree depth of a copy, hops: mean / max",
            format!("{:.1} / {}", self.depth_mean, self.depth_max),
        )?;
        row(
            f,
            &format!(
                "copy → all live nodes, ms, p50 / p99 ({})",
                self.outside.count()
            ),
            format!(
                "{} / {}",
                self.outside.percentile(0.50),
                self.outside.percentile(0.99)
            ),
        )?;
        row(
            f,
            &format!(
                "… copies made during the partition, waiting for the heal: p50 / max ({})",
                self.partitioned.count()
            ),
            format!(
                "{} / {}",
                self.partitioned.percentile(0.50),
                self.partitioned.percentile(1.0)
            ),
        )?;
        row(
            f,
            &format!(
                "… a copy whose broadcast was lost, by anti-entropy alone ({})",
                self.lost.count()
            ),
            self.lost.percentile(1.0),
        )?;
        row(
            f,
            "dials / failed / links broken",
            format!("{} / {} / {}", c.dials, c.dials_failed, c.links_broken),
        )?;
        row(
            f,
            "frames sent / retransmitted (+200 ms) / lost in flight / dropped (no link)",
            format!(
                "{} / {} / {} / {}",
                c.frames_sent, c.frames_retransmitted, c.frames_lost, c.frames_dropped
            ),
        )?;
        row(
            f,
            "converged, ms after the faults stopped",
            ms(self.settled),
        )?;
        row(
            f,
            "all converged",
            format!(
                "{} ({})",
                if self.converged { "yes" } else { "**no**" },
                self.verdict
            ),
        )
    }
}
