//! Across hosts, in the namespace lab (root needed): how long until a new daemon is seen (mDNS
//! and manual `--peer`), until a silent cut is detected, until a healed host converges (a
//! clipboard value; a document with 10,000 edits pending on each side), and what a copy costs
//! over TLS to another host against over Unix on the same host, in the same run.
//!
//! Run: `cargo bench -p rrt --bench hosts` (`-- --rounds N --edits N`). Times come from polling
//! every 10 ms, so each has that much resolution.

#[path = "../tests/common/mod.rs"]
mod common;

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use common::{Lab, measure::percentile, net::Net};

const POLL: Duration = Duration::from_millis(10);

fn main() {
    let rounds = common::flag("--rounds", 5);
    let edits = common::flag("--edits", 10_000);
    let secret =
        std::env::temp_dir().join(format!("rrt-bench-hosts-{}.secret", std::process::id()));
    common::write_secret(&secret, "a join secret for the benchmark lab");
    let mut rows: Vec<(&str, Vec<f64>)> = vec![
        ("discovery by mDNS (start → seen)", vec![]),
        ("discovery by --peer (start → seen)", vec![]),
        ("failure detection (silent cut → down)", vec![]),
        ("convergence (heal → same value)", vec![]),
        ("document convergence (heal → same text)", vec![]),
    ];
    for round in 0..rounds {
        for (row, mdns) in [(0, true), (1, false)] {
            rows[row].1.push(discovery(round, mdns, &secret));
        }
        let (detect, converge) = partition(round, &secret);
        rows[2].1.push(detect);
        rows[3].1.push(converge);
        rows[4].1.push(document_heal(round, edits, &secret));
    }
    println!(
        "{rounds} rounds each (ms; polled every 10 ms; documents: {edits} edits pending per side)\n"
    );
    println!("| measure | median | max |");
    println!("|---|---:|---:|");
    for (name, mut samples) in rows {
        samples.sort_by(f64::total_cmp);
        println!(
            "| {name} | {:.0} | {:.0} |",
            samples[samples.len() / 2],
            samples[samples.len() - 1]
        );
    }
    let copies = 200;
    let Propagation {
        arrivals,
        cpu_per_copy,
    } = propagation(&secret, copies);
    println!(
        "\ncopy on h1a → watch event, {copies} copies (ms; h1 and h3 blocked from each other)\n"
    );
    println!("| path | p50 | p99 |");
    println!("|---|---:|---:|");
    let paths = [
        "Unix on the same host (h1b)",
        "TLS, one hop (h2)",
        "TLS, two hops through h2 (h3)",
    ];
    for (name, samples) in paths.into_iter().zip(arrivals) {
        println!(
            "| {name} | {:.3} | {:.3} |",
            percentile(&samples, 50.0),
            percentile(&samples, 99.0)
        );
    }
    println!("\nCPU per copy (ms, user + system, 10 ms ticks over {copies} copies)\n");
    println!("| daemon | CPU ms per copy |");
    println!("|---|---:|");
    for (name, cpu) in ["h1a (copies)", "h1b", "h2 (forwards)", "h3"]
        .into_iter()
        .zip(cpu_per_copy)
    {
        println!("| {name} | {cpu:.3} |");
    }
    let _ = std::fs::remove_file(secret);
}

fn args(host: usize, secret: &Path, mdns: bool) -> Vec<String> {
    let mut args = vec![
        "--secret-file".to_owned(),
        secret.display().to_string(),
        "--device".to_owned(),
        format!("h{host}"),
    ];
    if !mdns {
        args.push("--no-mdns".to_owned());
        for other in (1..=3).filter(|other| *other != host) {
            args.push("--peer".to_owned());
            args.push(format!("{}:47474", Net::address(other)));
        }
    }
    args
}

fn labs(name: &str, net: &Net, secret: &Path, mdns: bool) -> Vec<Lab> {
    (1..=3)
        .map(|host| {
            Lab::host(
                &format!("{name}-h{host}"),
                &net.host(host),
                &args(host, secret, mdns),
            )
        })
        .collect()
}

fn millis_until(mut condition: impl FnMut() -> bool) -> f64 {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < common::DEADLINE, "gave up waiting");
        thread::sleep(POLL);
    }
    start.elapsed().as_secs_f64() * 1e3
}

/// Hosts 1 and 2 run; host 3 starts: how long until host 1 lists it?
fn discovery(round: usize, mdns: bool, secret: &Path) -> f64 {
    let net = Net::new(3);
    let mut labs = labs(&format!("bench-disc-{mdns}-{round}"), &net, secret, mdns);
    labs[0].start("h1");
    labs[1].start("h2");
    common::wait_until("h1 and h2", || labs[0].peers("h1").len() == 1);
    let start = Instant::now();
    labs[2].start("h3");
    // From the spawn, including the daemon's own start-up.
    millis_until(|| labs[0].peers("h1").len() == 2);
    start.elapsed().as_secs_f64() * 1e3
}

/// Cut host 3 silently: how long until host 1 reports it down; then write on both sides, heal,
/// and how long until host 3 has the newer value?
fn partition(round: usize, secret: &Path) -> (f64, f64) {
    let net = Net::new(3);
    let mut labs = labs(&format!("bench-cut-{round}"), &net, secret, false);
    for (lab, name) in labs.iter_mut().zip(["h1", "h2", "h3"]) {
        lab.start(name);
    }
    common::wait_until("a full mesh", || labs[2].peers("h3").len() == 2);
    net.cut(3);
    let detect = millis_until(|| labs[0].peers("h1").len() == 1);
    labs[2].copy("h3", &format!("isolated {round}"));
    labs[0].copy("h1", &format!("majority {round}"));
    common::wait_until("h3 to notice", || labs[2].peers("h3").is_empty());
    net.heal(3);
    let converge = millis_until(|| labs[2].paste("h3") == Some(format!("majority {round}")));
    (detect, converge)
}

/// The control socket of instance `name`.
fn control(lab: &Lab, name: &str) -> PathBuf {
    lab.mesh_dir()
        .join(format!("control-{}.sock", lab.pid(name)))
}

/// One control request, answered.
fn ask(lab: &Lab, name: &str, request: &serde_json::Value) -> serde_json::Value {
    let mut client = UnixStream::connect(control(lab, name)).expect("control");
    client
        .write_all(format!("{request}\n").as_bytes())
        .expect("request");
    let mut answer = String::new();
    BufReader::new(client)
        .read_line(&mut answer)
        .expect("answer");
    serde_json::from_str(&answer).expect("a JSON answer")
}

fn notes(lab: &Lab, name: &str) -> String {
    let answer = ask(
        lab,
        name,
        &serde_json::json!({"op": "scratch_cat", "name": "notes"}),
    );
    answer["ok"].as_str().unwrap_or_default().to_owned()
}

/// Cut host 3; append `edits` lines to one document on host 1 and on host 3 (each its own edit,
/// acknowledged on disk); heal, and how long until the three hosts have the same text, with every
/// line?
fn document_heal(round: usize, edits: usize, secret: &Path) -> f64 {
    let net = Net::new(3);
    let mut labs = labs(&format!("bench-doc-{round}"), &net, secret, false);
    for (lab, name) in labs.iter_mut().zip(["h1", "h2", "h3"]) {
        lab.start(name);
    }
    common::wait_until("a full mesh", || labs[2].peers("h3").len() == 2);
    net.cut(3);
    common::wait_until("the cut seen on both sides", || {
        labs[2].peers("h3").is_empty() && labs[0].peers("h1").len() == 1
    });
    thread::scope(|scope| {
        for (lab, name) in [(&labs[0], "h1"), (&labs[2], "h3")] {
            scope.spawn(move || {
                for edit in 0..edits {
                    let text = format!("{name} edit {edit}\n");
                    let request =
                        serde_json::json!({"op": "scratch_append", "name": "notes", "text": text});
                    assert!(ask(lab, name, &request).get("ok").is_some());
                }
            });
        }
    });
    common::wait_until("h2 to have h1's edits", || {
        notes(&labs[1], "h2").lines().count() == edits
    });
    net.heal(3);
    millis_until(|| {
        let texts: Vec<String> = labs
            .iter()
            .zip(["h1", "h2", "h3"])
            .map(|(lab, name)| notes(lab, name))
            .collect();
        texts[0].lines().count() == 2 * edits && texts.iter().all(|text| text == &texts[0])
    })
}

/// What a copy costs to reach each kind of receiver, and the CPU it costs each daemon.
struct Propagation {
    /// Milliseconds per copy until h1b (Unix, same host), h2 (TLS, one hop) and h3 (TLS, two
    /// hops: h1 and h3 are blocked from each other, so it crosses h2).
    arrivals: [Vec<f64>; 3],
    /// CPU time per copy, in milliseconds, of h1a, h1b, h2 and h3.
    cpu_per_copy: [f64; 4],
}

/// Copies on h1a, watched on h1b (same host), h2 (one hop) and h3 (two hops, through h2).
fn propagation(secret: &Path, copies: usize) -> Propagation {
    let net = Net::new(3);
    let mut labs = labs("bench-prop", &net, secret, false);
    labs[0].start("h1a");
    labs[0].start("h1b");
    labs[1].start("h2");
    labs[2].start("h3");
    common::wait_until("h2 to see every other", || labs[1].peers("h2").len() == 3);
    net.block(1, 3);
    common::wait_until("h1 and h3 to lose each other", || {
        labs[2].peers("h3") == ["h2"]
    });
    let ready = "ready";
    labs[0].copy("h1a", ready);
    common::wait_until("ready everywhere", || {
        [(&labs[0], "h1b"), (&labs[1], "h2"), (&labs[2], "h3")]
            .iter()
            .all(|(lab, name)| lab.paste(name).as_deref() == Some(ready))
    });
    let (send, arrived) = mpsc::channel::<(usize, String, Instant)>();
    let watched = [
        control(&labs[0], "h1b"),
        control(&labs[1], "h2"),
        control(&labs[2], "h3"),
    ];
    for (index, path) in watched.into_iter().enumerate() {
        let mut watch = UnixStream::connect(path).expect("watch");
        watch
            .write_all(b"{\"op\":\"watch\"}\n")
            .expect("watch request");
        let send = send.clone();
        thread::spawn(move || {
            for line in BufReader::new(watch).lines().map_while(Result::ok) {
                let entry: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                let text = entry["ok"]["entry"]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                if send.send((index, text, Instant::now())).is_err() {
                    return;
                }
            }
        });
    }
    for _ in 0..3 {
        arrived
            .recv_timeout(Duration::from_secs(10))
            .expect("first lines");
    }
    let pids = [
        labs[0].pid("h1a"),
        labs[0].pid("h1b"),
        labs[1].pid("h2"),
        labs[2].pid("h3"),
    ];
    let cpu_before = pids.map(cpu_ms);
    let source = control(&labs[0], "h1a");
    let mut arrivals: [Vec<f64>; 3] = Default::default();
    for copy in 0..copies {
        let text = format!("sample {copy}");
        let request = serde_json::json!({"op": "copy", "text": text}).to_string() + "\n";
        let start = Instant::now();
        let mut client = UnixStream::connect(&source).expect("control");
        client.write_all(request.as_bytes()).expect("copy");
        let mut seen = 0;
        while seen < 3 {
            let (index, got, at) = arrived
                .recv_timeout(Duration::from_secs(10))
                .expect("arrival");
            if got == text {
                seen += 1;
                arrivals[index].push((at - start).as_secs_f64() * 1e3);
            }
        }
        let mut answer = String::new();
        BufReader::new(client)
            .read_line(&mut answer)
            .expect("answer");
    }
    let cpu_after = pids.map(cpu_ms);
    let cpu_per_copy = [0, 1, 2, 3].map(|i| (cpu_after[i] - cpu_before[i]) / copies as f64);
    Propagation {
        arrivals,
        cpu_per_copy,
    }
}

/// User and system CPU time a process has used, in milliseconds (`/proc/PID/stat`, in clock
/// ticks of 10 ms).
fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the daemon runs");
    // The command name, in parentheses, may hold spaces: the fields start after its `)`.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15, the 12th and 13th after the name.
    let ticks: u64 = fields[11..13]
        .iter()
        .map(|field| field.parse::<u64>().expect("clock ticks"))
        .sum();
    ticks as f64 * 10.0
}
