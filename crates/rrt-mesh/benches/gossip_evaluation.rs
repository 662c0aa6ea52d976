//! The evaluation behind issue 14's choice of engine: iroh-gossip's IO-free HyParView + Plumtree
//! (`iroh_gossip::proto`), run in its own seeded, virtual-time simulator, against what rrt does
//! today — every node linked to every other, a copy flooded to all — at the mesh sizes the issue
//! names. Per size: links per node, messages per node per broadcast, the broadcast tree's depth,
//! deliveries missed; then the same swarm with 10 % of the nodes leaving and 10 % joining between
//! rounds.
//!
//! Run: `cargo bench -p rrt-mesh --bench gossip_evaluation` (`-- --rounds N`).
//!
//! Today's full mesh, computed rather than simulated: n − 1 links per node; with the clique rule a
//! copy costs each node about one message (the origin sends n − 1, nobody forwards), without it
//! (nodes on different hosts) each receiver forwards to its n − 2 other links: n − 1 messages per
//! node per broadcast.

use bytes::Bytes;
use iroh_gossip::proto::sim::{
    BootstrapMode, NetworkHistograms, RoundStatsAvg, Simulator, SimulatorConfig,
};

const SIZES: [usize; 5] = [10, 25, 50, 100, 1000];

fn main() {
    let rounds = std::env::args()
        .skip_while(|arg| arg != "--rounds")
        .nth(1)
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(20);
    println!(
        "iroh-gossip proto (HyParView active 5 / passive 30, Plumtree), {rounds} broadcasts per row, one per round from a random node\n"
    );
    println!(
        "| nodes | links per node (mean / max) | payload msgs per node per broadcast | tree depth (max hops, mean / max) | missed deliveries | after 10 % churn: links mean / missed | full mesh: links per node | full mesh, flooding across hosts: msgs per node |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for nodes in SIZES {
        let row = evaluate(nodes, rounds);
        println!(
            "| {nodes} | {:.1} / {} | {:.2} | {:.1} / {:.0} | {:.0} | {:.1} / {:.0} | {} | {} |",
            row.links_mean,
            row.links_max,
            row.payload_per_node,
            row.stats.mean.ldh,
            row.stats.max.ldh,
            row.stats.mean.missed * rounds as f32,
            row.churn_links_mean,
            row.churn_missed,
            nodes - 1,
            nodes - 1,
        );
    }
}

struct Row {
    links_mean: f32,
    links_max: usize,
    payload_per_node: f32,
    stats: RoundStatsAvg,
    churn_links_mean: f32,
    churn_missed: f32,
}

fn evaluate(nodes: usize, rounds: usize) -> Row {
    let config = SimulatorConfig {
        rng_seed: 7,
        peers: nodes,
        ..SimulatorConfig::default()
    };
    let mut simulator = Simulator::new(config, iroh_gossip::proto::Config::default());
    let report = simulator.bootstrap(BootstrapMode::Set {
        count: nodes.min(5) as u64,
    });
    let (links_mean, links_max) = links(&report.histograms);
    for round in 0..rounds {
        let from = simulator.random_peer();
        simulator.gossip_round(vec![(from, Bytes::from(format!("copy {round}")))]);
    }
    let stats = simulator.round_stats_average();
    // Relative message redundancy is payload messages / (deliveries − 1) − 1; deliveries per
    // broadcast are n − 1, so payload messages per node per broadcast are about rmr + 1.
    let payload_per_node = (stats.mean.rmr + 1.0) * (nodes as f32 - 1.0) / nodes as f32;

    // Churn: a tenth leaves and a tenth joins (through random members), then broadcasts again.
    let churn = (nodes / 10).max(1);
    simulator.remove_peers(churn);
    let next_id = simulator.network.peer_ids().max().unwrap_or(0) + 1;
    for id in next_id..next_id + churn as u64 {
        let contact = simulator.random_peer();
        simulator.network.insert_and_join(id, TOPIC, vec![contact]);
    }
    simulator.network.run_trips(20);
    let report = simulator.report();
    let (churn_links_mean, _) = links(&report.histograms);
    let before = simulator.round_stats_average().len;
    let mut missed = 0.0;
    for round in 0..rounds {
        let from = simulator.random_peer();
        simulator.gossip_round(vec![(from, Bytes::from(format!("after churn {round}")))]);
    }
    let after = simulator.round_stats_average();
    if after.len > before {
        missed = after.mean.missed * after.len as f32 - stats.mean.missed * before as f32;
    }
    Row {
        links_mean,
        links_max,
        payload_per_node,
        stats,
        churn_links_mean,
        churn_missed: missed,
    }
}

const TOPIC: iroh_gossip::proto::TopicId = iroh_gossip::proto::TopicId::from_bytes([0; 32]);

/// Mean and max of the active-view sizes.
fn links(histograms: &NetworkHistograms) -> (f32, usize) {
    let (sum, count) = histograms
        .active
        .iter()
        .fold((0, 0), |(sum, count), (size, peers)| {
            (sum + size * peers, count + peers)
        });
    let max = histograms.active.keys().max().copied().unwrap_or(0);
    (sum as f32 / count.max(1) as f32, max)
}
