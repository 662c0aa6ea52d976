//! Clipboard propagation latency: a copy on one daemon until the `watch` stream of every other
//! daemon reports it, for 2, 5, 10 and 25 real daemon processes, mesh and hub.
//!
//! The copy is sent straight to the first daemon's control socket and the watch streams are read
//! from every other daemon's control socket, so each sample also contains those two local
//! socket hops — the same path `rrt clip copy` / `rrt clip watch` take.
//!
//! Run: `cargo bench -p rrt --bench propagation` (`-- --copies N` to change the sample count).

#[path = "../tests/common/mod.rs"]
mod common;

use common::{
    Lab,
    measure::{copy_to_all, percentile},
};

const SIZES: [usize; 4] = [2, 5, 10, 25];

fn main() {
    let copies = common::flag("--copies", 200);
    println!("copy on one daemon → `watch` event on every other, {copies} copies (ms)\n");
    println!("| topology | instances | p50 | p99 | p50 last | p99 last |");
    println!("|---|---:|---:|---:|---:|---:|");
    for hub in [false, true] {
        for size in SIZES {
            let (each, last) = measure(hub, size, copies);
            println!(
                "| {} | {size} | {:.3} | {:.3} | {:.3} | {:.3} |",
                if hub { "hub" } else { "mesh" },
                percentile(&each, 50.0),
                percentile(&each, 99.0),
                percentile(&last, 50.0),
                percentile(&last, 99.0),
            );
        }
    }
}

/// Every receiver's latency, and per copy the latency of the last receiver.
fn measure(hub: bool, size: usize, copies: usize) -> (Vec<f64>, Vec<f64>) {
    let name = format!("bench-{}-{size}", if hub { "hub" } else { "mesh" });
    let mut lab = if hub {
        Lab::hub(&name)
    } else {
        Lab::new(&name)
    };
    let names: Vec<String> = (0..size).map(|i| format!("n{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    if hub {
        for name in &refs {
            lab.start(name);
        }
        lab.wait_for_hub(&refs);
    } else {
        lab.start_all(&refs);
    }
    copy_to_all(&lab, &refs, copies)
}
