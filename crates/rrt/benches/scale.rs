//! What a mesh of N daemons on one host costs each of them, for N = 10, 25, 50 and 100 — the
//! numbers issue 14 sets goals for: links per node, idle wake-ups per second per daemon, resident
//! memory per daemon, and copy → every other daemon's `watch` (p50/p99 of each arrival, and of
//! the last one per copy). Writes the table to stdout and the rows as CSV to `--csv PATH`
//! (default `target/scale.csv` in the workspace), which `scripts/plot-scale.py` draws as the SVG embedded in
//! docs/PERFORMANCE.md.
//!
//! Run: `cargo bench -p rrt --bench scale` (`-- --seconds N --copies N --sizes 10,25`).

#[path = "../tests/common/mod.rs"]
mod common;

use std::{fmt::Write as _, thread, time::Duration};

use common::{
    Lab,
    measure::{copy_to_all, percentile, sample},
};

fn main() {
    let seconds = common::flag("--seconds", 10);
    let copies = common::flag("--copies", 50);
    let csv_path = common::flag(
        "--csv",
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/scale.csv").to_owned(),
    );
    let sizes: Vec<usize> = common::flag("--sizes", "10,25,50,100".to_owned())
        .split(',')
        .filter_map(|size| size.trim().parse().ok())
        .collect();
    println!(
        "a mesh of N daemons on one host: idle over {seconds} s (means per daemon), then {copies} copies\n"
    );
    println!(
        "| daemons | links per node | idle wake-ups/s per daemon | RSS per daemon MB | copy → each p50 / p99 ms | copy → all (last) p50 / p99 ms |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    let mut csv =
        String::from("daemons,links,wakeups_per_s,rss_mb,each_p50,each_p99,last_p50,last_p99\n");
    for size in sizes {
        let row = measure(size, seconds, copies);
        println!(
            "| {size} | {:.1} | {:.1} | {:.1} | {:.3} / {:.3} | {:.3} / {:.3} |",
            row.links, row.wake_ups, row.rss_mb, row.each.0, row.each.1, row.last.0, row.last.1
        );
        let _ = writeln!(
            csv,
            "{size},{:.2},{:.2},{:.2},{:.3},{:.3},{:.3},{:.3}",
            row.links, row.wake_ups, row.rss_mb, row.each.0, row.each.1, row.last.0, row.last.1
        );
    }
    std::fs::write(&csv_path, csv).expect("the CSV");
    println!("\n(rows written to {csv_path})");
}

struct Row {
    links: f64,
    wake_ups: f64,
    rss_mb: f64,
    each: (f64, f64),
    last: (f64, f64),
}

fn measure(size: usize, seconds: u64, copies: usize) -> Row {
    let mut lab = Lab::new(&format!("scale-{size}"));
    let names: Vec<String> = (0..size).map(|i| format!("n{i:03}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    lab.start_all(&refs);
    let links = refs
        .iter()
        .map(|name| lab.peers(name).len() as f64)
        .sum::<f64>()
        / size as f64;
    // Let start-up work settle, then watch every daemon stay idle.
    thread::sleep(Duration::from_secs(5));
    let pids: Vec<u32> = refs.iter().map(|name| lab.pid(name)).collect();
    let before: Vec<_> = pids.iter().map(|pid| sample(*pid)).collect();
    thread::sleep(Duration::from_secs(seconds));
    let after: Vec<_> = pids.iter().map(|pid| sample(*pid)).collect();
    let wake_ups = before
        .iter()
        .zip(&after)
        .map(|(before, after)| (after.wake_ups() - before.wake_ups()) as f64)
        .sum::<f64>()
        / size as f64
        / seconds as f64;
    let rss_mb = after.iter().map(|s| s.rss_kb as f64).sum::<f64>() / size as f64 / 1024.0;
    let (each, last) = copy_to_all(&lab, &refs, copies);
    Row {
        links,
        wake_ups,
        rss_mb,
        each: (percentile(&each, 50.0), percentile(&each, 99.0)),
        last: (percentile(&last, 50.0), percentile(&last, 99.0)),
    }
}
