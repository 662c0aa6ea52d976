//! A deterministic, seeded simulator of the sync layer: the real sans-IO machines — membership,
//! the clipboard's `ClipSync`, the documents' `DocSync` — on a virtual network in virtual time.
//!
//! Each run builds a sparse random graph of nodes (most pairs cannot reach each other, so values
//! must be forwarded across many hops; some nodes share a host, whose instances form a clique),
//! runs a workload of copies and document appends — stored by each node's ordered writer a
//! little later, acknowledged only then, some failing and taken back — while
//! links lose, duplicate and reorder frames, edges are cut and healed and nodes crash and restart
//! from what they had on disk; then the faults end, and once nothing is left to do the nodes must
//! agree with each other and with what was acknowledged (`simulator/check.rs`).
//!
//! ```text
//! simulator/world.rs     a run: schedule, event loop, settling
//! simulator/driver.rs    one node: the machines wired as the daemon wires them
//! simulator/routing.rs   the only place that names wire message variants
//! simulator/network.rs   edges and stream links, with their faults
//! simulator/writer.rs    each node's ordered write queue, with failures
//! simulator/disk.rs      what survives a crash
//! simulator/topology.rs  random connected sparse graphs
//! simulator/queue.rs     virtual time
//! simulator/check.rs     what must hold at the end
//! simulator/report.rs    what it cost
//! ```
//!
//! Sizes come from the environment: `RRT_SIM_SEEDS` runs seeds 0..n (default 100, for CI: seconds in a debug build),
//! `RRT_SIM_NODES` nodes each (default 50); `RRT_SIM_SEED=n` runs seed n alone and prints its
//! trace. The full run:
//!
//! ```text
//! RRT_SIM_SEEDS=1000 cargo test --release -p rrt-mesh --test simulator -- --nocapture
//! ```

use std::{
    panic::{self, AssertUnwindSafe},
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

mod support {
    #[path = "../support/env.rs"]
    pub(crate) mod env;
    #[path = "../support/timeline.rs"]
    pub(crate) mod timeline;
}

mod simulator {
    pub(crate) mod check;
    pub(crate) mod disk;
    pub(crate) mod driver;
    pub(crate) mod network;
    pub(crate) mod queue;
    pub(crate) mod report;
    pub(crate) mod routing;
    pub(crate) mod topology;
    pub(crate) mod world;
    pub(crate) mod writer;
}

use simulator::{report::Report, world};
use support::env::env_number;

/// Seeds in a default run: well under a minute in a debug build on two cores.
const DEFAULT_SEEDS: u64 = 100;
const DEFAULT_NODES: usize = 50;

/// Runs one seed; a panic inside a machine is a failure of that seed, not of the process.
fn run_seed(seed: u64, nodes: usize, verbose: bool) -> Result<Report, String> {
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| world::run(seed, nodes, verbose)));
    let reproduce = format!(
        "reproduce: RRT_SIM_SEED={seed} RRT_SIM_NODES={nodes} cargo test -p rrt-mesh --test simulator -- --nocapture"
    );
    match outcome {
        Ok(Ok(report)) => Ok(report),
        Ok(Err(failure)) => Err(format!(
            "seed {seed} failed: {}\n{reproduce}\nthe run's last events:\n{}",
            failure.reason,
            failure.trace.join("\n")
        )),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-string panic".to_owned());
            Err(format!("seed {seed} panicked: {message}\n{reproduce}"))
        }
    }
}

#[test]
fn a_sparse_mesh_converges_on_every_acknowledged_write_under_faults() {
    let nodes = env_number("RRT_SIM_NODES").unwrap_or(DEFAULT_NODES);
    let single: Option<u64> = env_number("RRT_SIM_SEED");
    let seeds: Vec<u64> = match single {
        Some(seed) => vec![seed],
        None => (0..env_number("RRT_SIM_SEEDS").unwrap_or(DEFAULT_SEEDS)).collect(),
    };
    let started = Instant::now();
    let next = AtomicU64::new(0);
    let total = Mutex::new(Report::default());
    let failures = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&seed) = usize::try_from(index).ok().and_then(|i| seeds.get(i)) else {
                        return;
                    };
                    match run_seed(seed, nodes, single.is_some()) {
                        Ok(report) => total.lock().expect("no panic holds it").add(&report),
                        Err(failure) => failures.lock().expect("no panic holds it").push(failure),
                    }
                }
            });
        }
    });
    let total = total.into_inner().expect("no panic held it");
    println!(
        "simulated {} seeds of {nodes} nodes in {:.1?}\n{total}",
        seeds.len(),
        started.elapsed()
    );
    let failures = failures.into_inner().expect("no panic held it");
    assert!(
        failures.is_empty(),
        "{} of {} seeds failed:\n\n{}",
        failures.len(),
        seeds.len(),
        failures.join("\n\n")
    );
}

#[test]
fn a_seed_replays_exactly() {
    // What makes a failing seed worth printing: the same seed, the same run, event for event.
    let run = || format!("{:?}", run_seed(3, 12, false));
    assert_eq!(run(), run());
}
