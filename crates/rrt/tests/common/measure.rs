//! Measurements the benchmarks share: a copy's way to every other daemon's `watch` stream, and
//! what a daemon process costs (CPU, wake-ups, memory) from `/proc`.

use std::{
    collections::BTreeMap,
    fs,
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::PathBuf,
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use super::{Lab, wait_until};

/// Copies `copies` values on `names[0]` and returns every other daemon's latency until its
/// `watch` stream reported each, and per copy the latency of the last one, in milliseconds.
pub fn copy_to_all(lab: &Lab, names: &[&str], copies: usize) -> (Vec<f64>, Vec<f64>) {
    let control = |name: &str| -> PathBuf {
        PathBuf::from(
            lab.status(name).expect("status")["mesh_dir"]
                .as_str()
                .expect("dir"),
        )
        .join(format!("control-{}.sock", lab.pid(name)))
    };
    // A first value, so that each watch starts with a line: proof that it is subscribed.
    let ready = format!("ready {}", names.len());
    lab.copy(names[0], &ready);
    for name in &names[1..] {
        wait_until("the first value everywhere", || {
            lab.paste(name).as_deref() == Some(ready.as_str())
        });
    }
    let (arrivals, arrived) = mpsc::channel::<(String, Instant)>();
    for name in &names[1..] {
        watch_into(control(name), arrivals.clone());
    }
    for _ in 1..names.len() {
        let (text, _) = arrived
            .recv_timeout(Duration::from_secs(10))
            .expect("a first line");
        assert_eq!(text, ready);
    }

    let source = control(names[0]);
    let (mut each, mut last) = (Vec::new(), Vec::new());
    for copy in 0..copies {
        let text = format!("sample {copy} of {}", names.len());
        let request = serde_json::json!({"op": "copy", "text": text}).to_string() + "\n";
        let start = Instant::now();
        let mut client = UnixStream::connect(&source).expect("control connection");
        client.write_all(request.as_bytes()).expect("copy request");
        let mut seen = 0;
        let mut slowest = Duration::ZERO;
        while seen < names.len() - 1 {
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

/// Watches the clipboard of the daemon at `control` (its control socket) on a thread of its
/// own: each value it reports goes to `arrivals` with the instant it was read.
pub fn watch_into(control: PathBuf, arrivals: mpsc::Sender<(String, Instant)>) {
    let mut watch = UnixStream::connect(control).expect("watch connection");
    watch
        .write_all(b"{\"op\":\"watch\"}\n")
        .expect("watch request");
    thread::spawn(move || {
        for line in BufReader::new(watch).lines() {
            let Ok(line) = line else { return };
            let entry: serde_json::Value = serde_json::from_str(&line).expect("JSON");
            let text = entry["ok"]["entry"]["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if arrivals.send((text, Instant::now())).is_err() {
                return;
            }
        }
    });
}

/// What process `pid` costs over `seconds` of idleness, as a row of the idle tables: CPU time,
/// wake-ups in all and per thread, resident memory.
pub fn idle_row(setup: &str, pid: u32, seconds: u64) -> String {
    let before = sample(pid);
    thread::sleep(Duration::from_secs(seconds));
    let after = sample(pid);
    let per_thread: Vec<String> = after
        .switches
        .iter()
        .map(|(name, count)| {
            let delta = count - before.switches.get(name).copied().unwrap_or(0);
            format!("{name} {:.1}/s", delta as f64 / seconds as f64)
        })
        .collect();
    let total = after.wake_ups() - before.wake_ups();
    format!(
        "| {setup} | {:.1} ms | {total} ({:.1}/s) | {} | {:.1} MB |",
        (after.cpu_ns - before.cpu_ns) as f64 / 1e6,
        total as f64 / seconds as f64,
        per_thread.join(", "),
        after.rss_kb as f64 / 1024.0,
    )
}

/// The `p`th percentile of `samples`.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// A process's CPU time, context switches per thread name and resident memory, at one moment.
pub struct Sample {
    /// CPU time of all threads, nanoseconds.
    pub cpu_ns: u64,
    /// Context switches per thread name (threads of one name summed).
    pub switches: BTreeMap<String, u64>,
    /// Resident memory, KiB.
    pub rss_kb: u64,
}

impl Sample {
    /// Context switches of all threads.
    pub fn wake_ups(&self) -> u64 {
        self.switches.values().sum()
    }
}

/// Process `pid` now, from `/proc`.
pub fn sample(pid: u32) -> Sample {
    let mut cpu_ns = 0;
    let mut switches = BTreeMap::new();
    for task in fs::read_dir(format!("/proc/{pid}/task"))
        .expect("tasks")
        .flatten()
    {
        let path = task.path();
        let name = fs::read_to_string(path.join("comm"))
            .unwrap_or_default()
            .trim()
            .to_owned();
        let schedstat = fs::read_to_string(path.join("schedstat")).unwrap_or_default();
        cpu_ns += schedstat
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        let status = fs::read_to_string(path.join("status")).unwrap_or_default();
        let count: u64 = status
            .lines()
            .filter(|line| line.contains("ctxt_switches"))
            .filter_map(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        *switches.entry(name).or_insert(0) += count;
    }
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let rss_kb = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    Sample {
        cpu_ns,
        switches,
        rss_kb,
    }
}
