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
    stats::{Broadcasts, Observer},
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
    copies: usize,
    copy_to_all_p50: Option<Duration>,
    copy_to_all_p99: Option<Duration>,
    copies_unreached: usize,
    counters: Counters,
    settled: Option<Duration>,
    verdict: String,
    converged: bool,
}

/// The run's size and length.
#[derive(Debug)]
pub(crate) struct Run {
    /// Nodes at the start.
    pub(crate) nodes: usize,
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
        let mut copy_to_all = Vec::new();
        let mut unreached = 0;
        for trace in observer.copies.values() {
            let expected: Vec<Uuid> = live
                .iter()
                .map(|node| node.id())
                .filter(|id| started(*id) <= trace.made)
                .collect();
            let arrivals: Option<Vec<Instant>> = expected
                .iter()
                .map(|id| trace.held.get(id).copied())
                .collect();
            match arrivals.and_then(|arrivals| arrivals.into_iter().max()) {
                Some(last) => copy_to_all.push(last - trace.made),
                None => unreached += 1,
            }
        }
        copy_to_all.sort();
        let percentile = |p: f64| {
            (!copy_to_all.is_empty()).then(|| {
                let rank = ((copy_to_all.len() as f64 * p).ceil() as usize).max(1);
                copy_to_all[rank.min(copy_to_all.len()) - 1]
            })
        };
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
            copies: observer.copies.len(),
            copy_to_all_p50: percentile(0.50),
            copy_to_all_p99: percentile(0.99),
            copies_unreached: unreached,
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
        row(
            f,
            "payload gossip frames per node per broadcast (distinct contents)",
            format!(
                "{:.2}",
                payload_frames as f64 / self.distinct.max(1) as f64 / self.mean_live
            ),
        )?;
        row(
            f,
            "clipboard payload frames per node per copy (its re-broadcasts included)",
            format!(
                "{:.2}",
                self.clip.payload_frames as f64 / self.copies.max(1) as f64 / self.mean_live
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
                "copy → all live nodes, ms: p50 / p99 ({} copies, {} never reached all)",
                self.copies, self.copies_unreached
            ),
            format!(
                "{} / {}",
                ms(self.copy_to_all_p50),
                ms(self.copy_to_all_p99)
            ),
        )?;
        row(
            f,
            "dials / failed / links broken",
            format!("{} / {} / {}", c.dials, c.dials_failed, c.links_broken),
        )?;
        row(
            f,
            "frames sent / retransmitted (+200 ms) / dropped",
            format!(
                "{} / {} / {}",
                c.frames_sent, c.frames_retransmitted, c.frames_dropped
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
