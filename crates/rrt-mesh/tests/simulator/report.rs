//! What runs cost, summed over seeds: messages by kind, deliveries, faults — the numbers for
//! `docs/PERFORMANCE.md`.

use std::{fmt, time::Duration};

use super::{network::NetworkCounters, routing::Kind};

/// The counters of one run, or of many added up.
#[derive(Debug, Default, Clone)]
pub(crate) struct Report {
    pub(crate) runs: u64,
    /// Node-runs: nodes × runs, for per-node averages.
    pub(crate) nodes: u64,
    pub(crate) edges: u64,
    /// Edges within a host (a clique's).
    pub(crate) same_host_edges: u64,
    pub(crate) copies_saved: u64,
    pub(crate) copies_acknowledged: u64,
    pub(crate) copies_failed: u64,
    pub(crate) appends_acknowledged: u64,
    pub(crate) appends_refused: u64,
    pub(crate) sent_link: u64,
    pub(crate) sent_clipboard_updates: u64,
    pub(crate) sent_clipboard_haves: u64,
    pub(crate) sent_documents: u64,
    pub(crate) deliveries: u64,
    pub(crate) crashes: u64,
    pub(crate) partitions: u64,
    pub(crate) dropped_before_hello: u64,
    pub(crate) network: NetworkCounters,
    /// From the end of faults to quiescence, summed; and the longest.
    pub(crate) settle_total: Duration,
    pub(crate) settle_max: Duration,
}

impl Report {
    pub(crate) fn count_sent(&mut self, kind: Kind) {
        match kind {
            Kind::Link => self.sent_link += 1,
            Kind::ClipboardUpdate => self.sent_clipboard_updates += 1,
            Kind::ClipboardHave => self.sent_clipboard_haves += 1,
            Kind::Document => self.sent_documents += 1,
            Kind::Other => {}
        }
    }

    pub(crate) fn add(&mut self, other: &Report) {
        self.runs += other.runs;
        self.nodes += other.nodes;
        self.edges += other.edges;
        self.same_host_edges += other.same_host_edges;
        self.copies_saved += other.copies_saved;
        self.copies_acknowledged += other.copies_acknowledged;
        self.appends_acknowledged += other.appends_acknowledged;
        self.copies_failed += other.copies_failed;
        self.appends_refused += other.appends_refused;
        self.sent_link += other.sent_link;
        self.sent_clipboard_updates += other.sent_clipboard_updates;
        self.sent_clipboard_haves += other.sent_clipboard_haves;
        self.sent_documents += other.sent_documents;
        self.deliveries += other.deliveries;
        self.crashes += other.crashes;
        self.partitions += other.partitions;
        self.dropped_before_hello += other.dropped_before_hello;
        self.network.links_opened += other.network.links_opened;
        self.network.links_broken += other.network.links_broken;
        self.network.duplicated += other.network.duplicated;
        self.network.reordered += other.network.reordered;
        self.settle_total += other.settle_total;
        self.settle_max = self.settle_max.max(other.settle_max);
    }
}

fn ratio(numerator: u64, denominator: u64) -> f64 {
    numerator as f64 / denominator.max(1) as f64
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nodes_per_run = ratio(self.nodes, self.runs);
        writeln!(
            f,
            "{} runs, {nodes_per_run:.0} nodes and {:.1} edges per run ({:.1} within a host)",
            self.runs,
            ratio(self.edges, self.runs),
            ratio(self.same_host_edges, self.runs)
        )?;
        writeln!(
            f,
            "copies: {} saved, {} acknowledged, {} failed to save; appends: {} acknowledged, {} refused (a failed write, or built on one)",
            self.copies_saved,
            self.copies_acknowledged,
            self.copies_failed,
            self.appends_acknowledged,
            self.appends_refused
        )?;
        writeln!(
            f,
            "clipboard_update sent per copy per node: {:.2} (catch-ups after reconnects included); clipboard_have sent: {}",
            ratio(self.sent_clipboard_updates, self.copies_saved) / nodes_per_run.max(1.0),
            self.sent_clipboard_haves
        )?;
        writeln!(
            f,
            "state_delta sent per append per node: {:.2}",
            ratio(self.sent_documents, self.appends_acknowledged) / nodes_per_run.max(1.0)
        )?;
        writeln!(
            f,
            "frames: {} link (hello, ping, pong), {} deliveries in all",
            self.sent_link, self.deliveries
        )?;
        writeln!(
            f,
            "faults: {} crashes, {} partitions, {} links broken by a lost frame, {} frames duplicated, {} reordered; {} links opened",
            self.crashes,
            self.partitions,
            self.network.links_broken,
            self.network.duplicated,
            self.network.reordered,
            self.network.links_opened
        )?;
        writeln!(
            f,
            "application frames before a hello (dropped by membership): {}",
            self.dropped_before_hello
        )?;
        write!(
            f,
            "settling after the faults end: mean {:.2?}, max {:.2?}",
            self.settle_total / u32::try_from(self.runs.max(1)).unwrap_or(u32::MAX),
            self.settle_max
        )
    }
}
