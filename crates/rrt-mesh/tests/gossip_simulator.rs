//! A deterministic, seeded, virtual-time simulator of a large mesh in gossip mode (issue 14,
//! "Scale"): the real `Swarm` (iroh-gossip's HyParView + Plumtree), `ClipSync` and `Roster` of
//! each of N nodes, wired by the daemon's gossip-mode rule (`gossip_simulator/node.rs`), on a
//! virtual network of stream links dialed on demand — while nodes join, crash and join anew,
//! copies are made, links are slow and break, and a partition splits the mesh for 30 s. Once the
//! faults stop, every live node must hold the same clipboard value and count exactly the live
//! nodes in its roster.
//!
//! ```text
//! gossip_simulator/world.rs    the scenario and the event loop
//! gossip_simulator/node.rs     one node: the machines wired by the gossip-mode rule
//! gossip_simulator/network.rs  links as streams, with their faults
//! gossip_simulator/wire.rs     what a link and the tree carry
//! gossip_simulator/queue.rs    virtual time
//! gossip_simulator/stats.rs    frames, broadcasts, each copy's hops and arrivals
//! gossip_simulator/check.rs    what must hold at the end
//! gossip_simulator/report.rs   the table
//! ```
//!
//! **What "10 % loss" means here.** A link is a stream (TCP, or QUIC's streams): it never loses
//! one frame and delivers the next. A lost segment is retransmitted — after TCP's minimum
//! retransmission timeout, 200 ms — and everything behind it on the stream waits. So 10 % loss is
//! modelled as 10 % of frames arriving 200 ms late, holding up the frames after them. Loss that
//! goes on (a retransmission lost again and again, a peer silent past the heartbeat timeout) ends
//! with the connection closed: separately, 0.1 % of frames break their link, which both ends
//! learn after a detection delay (up to 4 s), losing what was in flight. The machines never see a
//! gap in a stream; they see late frames and closed links, as the daemon does.
//!
//! **What it found**, each kept in the rule (`gossip_simulator/node.rs`) so the daemon applies it
//! too:
//! - HyParView sends a join once. A node that starts during the partition with every contact
//!   across it gets no answer and stays alone for good — nobody has heard of it (4 of seeds 1–8
//!   failed so at 200 nodes). The rule joins again, with fresh contacts from discovery, while
//!   the active view has been empty for 5 s.
//! - A node that crashed 0.7 s after the partition had broken all its links was counted alive
//!   by every roster for good (seed 2): its neighbours had seen only the partition's silence.
//!   Nodes did dial it later, and were refused: the rule takes a dial refused by the peer's host
//!   (its process is gone) as the verdict, as it takes a reset link; a dial that times out says
//!   nothing.
//! - Anti-entropy is there: the catch-up on the transient links of HyParView's shuffles carries
//!   a copy whose broadcast was lost to a node, which passes it on to the tree — within about one
//!   shuffle interval (60 s), since only the shuffle's origin gets its answer out before it
//!   closes the link (roster tables, sent unasked, cross both ways).
//! - The end that closes a link calls `Swarm::link_closed` too, as the other end does
//!   (iroh-gossip's own network layer does not report a close it was asked for). Without it,
//!   HyParView keeps each peer it let go marked as closing until some later close of that peer,
//!   which then fails to drop it from the passive view even if it is dead: links per node fell
//!   from 4.5 to 3.2, pairs of nodes were left as islands after the partition, and seeds 1–3 all
//!   failed.
//!
//! **Costs seen, not fixed** (numbers in the report; seed 1):
//! - A newcomer passes on, into the tree, what its first catch-ups taught it: nodes under 10 s
//!   old made 98 % of the clipboard's forwarded broadcasts and 97 % of the roster's forwarded
//!   bytes (200 nodes). Plumtree drops a repeat it saw within 90 s; older history entries are
//!   delivered to every node again — 0.6–0.7 extra deliveries per node per copy here, each a
//!   whole entry (a clipboard value of megabytes would cross the whole mesh on every join).
//! - Every new link, the shuffles' transient ones included, carries both roster tables whole,
//!   and whatever differs goes into the tree: at 1,000 nodes, 23,000 forwarded roster
//!   broadcasts (5,000 distinct contents) and 26 control frames per node per second, most of
//!   them the IHave / prune traffic of those (at 200 nodes, not forwarding them took control
//!   frames from 3.6 to 1.5 per node per second — and left a death unknown: they are needed).
//! - Frames arriving 200 ms late make the tree costlier: 2.8 clipboard payload frames per node
//!   per copy against 1.2 with no late frames (200 nodes; with a graft timeout of 250 ms rather
//!   than 80, 2.4 and slower copies).
//!
//! Sizes come from the environment: `RRT_GSIM_NODES` (default 200 in a debug build, for CI;
//! 1,000 in a release build) and `RRT_GSIM_SEED` (default 1). The full run:
//!
//! ```text
//! RRT_GSIM_NODES=1000 cargo test --release -p rrt-mesh --test gossip_simulator -- --nocapture
//! ```

use std::time::Instant;

mod support {
    #[path = "../support/env.rs"]
    pub(crate) mod env;
    #[path = "../support/timeline.rs"]
    pub(crate) mod timeline;
}

mod gossip_simulator {
    pub(crate) mod check;
    pub(crate) mod network;
    pub(crate) mod node;
    pub(crate) mod queue;
    pub(crate) mod report;
    pub(crate) mod stats;
    pub(crate) mod wire;
    pub(crate) mod world;
}

use gossip_simulator::world;
use support::env::env_number;

/// The nodes of a default run: a debug build's (CI's) run takes well under a minute on two
/// cores; a release build runs the full size.
const DEFAULT_NODES: usize = if cfg!(debug_assertions) { 200 } else { 1000 };
const DEFAULT_SEED: u64 = 1;

#[test]
fn a_churning_partitioned_gossip_mesh_agrees_on_the_clipboard_and_its_members() {
    let nodes = env_number("RRT_GSIM_NODES").unwrap_or(DEFAULT_NODES);
    let seed = env_number("RRT_GSIM_SEED").unwrap_or(DEFAULT_SEED);
    let started = Instant::now();
    let (report, verdict) = world::run(seed, nodes, true);
    println!(
        "gossip simulator: seed {seed}, {nodes} nodes, in {:.1?}\n\n{report}",
        started.elapsed()
    );
    assert!(
        verdict.converged(),
        "seed {seed} with {nodes} nodes did not converge: {verdict}\n\
         reproduce: RRT_GSIM_SEED={seed} RRT_GSIM_NODES={nodes} cargo test --release -p rrt-mesh \
         --test gossip_simulator -- --nocapture"
    );
}

#[test]
fn a_seed_replays_exactly() {
    // What makes a failing seed worth reporting: the same seed, the same run, frame for frame.
    let run = || format!("{:?}", world::run(3, 50, false));
    assert_eq!(run(), run());
}
