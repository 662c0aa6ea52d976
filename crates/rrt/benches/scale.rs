//! What a mesh of N daemons on one host costs each of them, for N = 10, 25, 50 and 100 — the
//! numbers issue 14 sets goals for: links per node, idle wake-ups per second per daemon, resident
//! memory per daemon, copy → every other daemon's `watch` (p50/p99 of each arrival, and of
//! the last one per copy), and convergence after a heal: one daemon frozen (SIGSTOP) until
//! every other has declared it dead, a copy made meanwhile, then the time from SIGCONT until it
//! has the copy and counts every member (and every daemon counts it again). Writes the table to stdout and the rows as CSV to `--csv PATH`
//! (default `target/scale.csv` in the workspace), which `scripts/plot-scale.py` draws as the SVG embedded in
//! docs/PERFORMANCE.md.
//!
//! Run: `cargo bench -p rrt --bench scale` (`-- --seconds N --copies N --sizes 10,25`).

#[path = "../tests/common/mod.rs"]
mod common;

use std::{
    fmt::Write as _,
    thread,
    time::{Duration, Instant},
};

use common::{
    Lab,
    measure::{copy_to_all, percentile, sample},
    wait_until,
};
use rustix::process::{Pid, Signal, kill_process};

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
        "| daemons | shape | links per node | idle wake-ups/s per daemon | RSS per daemon MB | copy → each p50 / p99 ms | copy → all (last) p50 / p99 ms | heal → caught up ms |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|");
    let mut csv = String::from(
        "daemons,links,wakeups_per_s,rss_mb,each_p50,each_p99,last_p50,last_p99,heal_ms\n",
    );
    for size in sizes {
        let row = measure(size, seconds, copies);
        let numbers = [
            row.links,
            row.wake_ups,
            row.rss_mb,
            row.each.0,
            row.each.1,
            row.last.0,
            row.last.1,
            row.heal_ms,
        ];
        let [
            links,
            wake_ups,
            rss,
            each_50,
            each_99,
            last_50,
            last_99,
            heal,
        ] = numbers;
        println!(
            "| {size} | {} | {links:.1} | {wake_ups:.1} | {rss:.1} | {each_50:.3} / {each_99:.3} | {last_50:.3} / {last_99:.3} | {heal:.0} |",
            row.shape
        );
        let cells: Vec<String> = numbers.iter().map(|n| format!("{n:.3}")).collect();
        let _ = writeln!(csv, "{size},{}", cells.join(","));
    }
    std::fs::write(&csv_path, csv).expect("the CSV");
    println!("\n(rows written to {csv_path})");
}

struct Row {
    shape: String,
    links: f64,
    wake_ups: f64,
    rss_mb: f64,
    each: (f64, f64),
    last: (f64, f64),
    heal_ms: f64,
}

fn measure(size: usize, seconds: u64, copies: usize) -> Row {
    let mut lab = Lab::new(&format!("scale-{size}"));
    let names: Vec<String> = (0..size).map(|i| format!("n{i:03}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    lab.start_all(&refs);
    let shape = lab.status(refs[0]).map_or_else(String::new, |status| {
        status["shape"].as_str().unwrap_or_default().to_owned()
    });
    // Start-up links a swarm no longer uses linger for 5 s.
    thread::sleep(Duration::from_secs(7));
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
    let heal_ms = heal(&lab, &refs);
    Row {
        shape,
        links,
        wake_ups,
        rss_mb,
        each: (percentile(&each, 50.0), percentile(&each, 99.0)),
        last: (percentile(&last, 50.0), percentile(&last, 99.0)),
        heal_ms,
    }
}

/// Freezes one daemon until every other counts it dead, copies meanwhile, thaws it: the
/// milliseconds until it has the copy and counts every member (then every other daemon must
/// count it again; that is checked, not timed — asking 100 daemons takes a while).
fn heal(lab: &Lab, names: &[&str]) -> f64 {
    let members = |name: &str| {
        lab.status(name)
            .and_then(|status| status["members"].as_u64())
    };
    let frozen = names[names.len() / 2];
    let others: Vec<&str> = names.iter().copied().filter(|n| *n != frozen).collect();
    let pid = Pid::from_raw(lab.pid(frozen) as i32).expect("a pid");
    kill_process(pid, Signal::STOP).expect("SIGSTOP");
    for name in &others {
        wait_until(&format!("{name} to count {frozen} out"), || {
            members(name) == Some(others.len() as u64)
        });
    }
    let text = format!("while {frozen} was away");
    lab.copy(others[0], &text);
    for name in &others {
        wait_until(&format!("{name} to have the copy"), || {
            lab.paste(name).as_deref() == Some(text.as_str())
        });
    }
    kill_process(pid, Signal::CONT).expect("SIGCONT");
    let thawed = Instant::now();
    wait_until(&format!("{frozen} to catch up"), || {
        lab.paste(frozen).as_deref() == Some(text.as_str())
            && members(frozen) == Some(names.len() as u64)
    });
    let caught_up = thawed.elapsed().as_secs_f64() * 1000.0;
    for name in &others {
        wait_until(&format!("{name} to count {frozen} again"), || {
            members(name) == Some(names.len() as u64)
        });
    }
    caught_up
}
