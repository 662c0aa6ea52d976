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

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::PathBuf,
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use common::Lab;

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
    let control = |name: &str| -> PathBuf {
        PathBuf::from(
            lab.status(name).expect("status")["mesh_dir"]
                .as_str()
                .expect("dir"),
        )
        .join(format!("control-{}.sock", lab.pid(name)))
    };

    // A first value, so that each watch starts with a line: proof that it is subscribed.
    let ready = format!("ready {name}");
    lab.copy(refs[0], &ready);
    for name in &refs[1..] {
        common::wait_until("the first value everywhere", || {
            lab.paste(name).as_deref() == Some(ready.as_str())
        });
    }
    let (arrivals, arrived) = mpsc::channel::<(String, Instant)>();
    for name in &refs[1..] {
        let mut watch = UnixStream::connect(control(name)).expect("watch connection");
        watch
            .write_all(b"{\"op\":\"watch\"}\n")
            .expect("watch request");
        let arrivals = arrivals.clone();
        thread::spawn(move || {
            for line in BufReader::new(watch).lines() {
                let Ok(line) = line else { return };
                let entry: serde_json::Value = serde_json::from_str(&line).expect("JSON");
                let text = entry["text"].as_str().unwrap_or_default().to_owned();
                if arrivals.send((text, Instant::now())).is_err() {
                    return;
                }
            }
        });
    }
    for _ in 1..size {
        let (text, _) = arrived
            .recv_timeout(Duration::from_secs(10))
            .expect("a first line");
        assert_eq!(text, ready);
    }

    let source = control(refs[0]);
    let (mut each, mut last) = (Vec::new(), Vec::new());
    for copy in 0..copies {
        let text = format!("sample {copy} of {name}");
        let request = serde_json::json!({"op": "copy", "text": text}).to_string() + "\n";
        let start = Instant::now();
        let mut client = UnixStream::connect(&source).expect("control connection");
        client.write_all(request.as_bytes()).expect("copy request");
        let mut seen = 0;
        let mut slowest = Duration::ZERO;
        while seen < size - 1 {
            let (got, at) = arrived
                .recv_timeout(Duration::from_secs(10))
                .expect("every daemon reports the copy");
            if got == text {
                seen += 1;
                slowest = slowest.max(at - start);
                each.push(millis(at - start));
            }
        }
        last.push(millis(slowest));
        let mut answer = String::new();
        BufReader::new(client)
            .read_line(&mut answer)
            .expect("copy answered");
    }
    (each, last)
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}
