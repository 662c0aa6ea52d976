//! Across networks, in the NAT lab (root needed): a copy's way to another daemon over LAN TLS,
//! over iroh hole punched (direct) and over iroh through a relay, in one run; how long from
//! `rrt join` to the first value synced; and what the wide-area transport costs an idle daemon
//! (CPU, wake-ups per thread, memory) against one without it.
//!
//! Run: `cargo bench -p rrt --bench wan` (`-- --copies N --rounds N --seconds N`).

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

use common::{
    Lab,
    measure::{idle_row, percentile, watch_into},
    nat::Nat,
    wait_until,
    wan_lab::{LanSecret, RelayKind, Sites, finished},
};

/// Start-up work (and tokio's blocking-pool threads) settles before an idle measurement.
const SETTLE: Duration = Duration::from_secs(12);

fn main() {
    let copies = common::flag("--copies", 200);
    let rounds = common::flag("--rounds", 5);
    let seconds = common::flag("--seconds", 20);

    println!("copy on one daemon → watch event on another, {copies} copies (ms)\n");
    println!("| path | p50 | p90 | p99 | max |");
    println!("|---|---:|---:|---:|---:|");
    let secret = LanSecret::new("bench");
    {
        let sites = Sites::start(
            "bench-direct",
            2,
            (Nat::Cone, Nat::Cone),
            RelayKind::Tls,
            secret.site_a(),
        );
        wait_until("a1 and a2 to link", || {
            sites.lab("a2").peers("a2") == ["a1"]
        });
        sites.pair("a1", "b1");
        wait_until("the path to turn direct", || {
            sites.path("a1", "b1").as_deref() == Some("direct")
        });
        row(
            "LAN, TLS (a1 → a2)",
            &latencies((sites.lab("a1"), "a1"), (sites.lab("a2"), "a2"), copies),
        );
        row(
            "iroh, direct: hole punched (a1 → b1)",
            &latencies((sites.lab("a1"), "a1"), (sites.lab("b1"), "b1"), copies),
        );
    }
    {
        let sites = Sites::start(
            "bench-relayed",
            1,
            (Nat::Cone, Nat::Symmetric),
            RelayKind::Tls,
            |_| Vec::new(),
        );
        sites.pair("a1", "b1");
        assert_eq!(sites.path("a1", "b1").as_deref(), Some("relayed"));
        row(
            "iroh, relayed (a1 → b1)",
            &latencies((sites.lab("a1"), "a1"), (sites.lab("b1"), "b1"), copies),
        );
    }
    drop(secret);

    println!(
        "\n`rrt join` started → the inviter's current value on the joiner, {rounds} rounds (ms)\n"
    );
    println!("| relay | path after | p50 | max |");
    println!("|---|---|---:|---:|");
    for (kind, name) in [
        (RelayKind::Tls, "HTTPS, cone NATs"),
        (RelayKind::Http, "plain HTTP"),
    ] {
        let mut samples = Vec::new();
        let mut path = String::new();
        for round in 0..rounds {
            let sites = Sites::start(
                &format!("bench-join-{round}"),
                1,
                (Nat::Cone, Nat::Cone),
                kind,
                |_| Vec::new(),
            );
            let value = format!("there before the pairing, round {round}");
            sites.lab("a1").copy("a1", &value);
            let (invite, ticket) = sites.invite("a1", &["--yes"]);
            let started = Instant::now();
            let joined = sites.lab("b1").run("b1", &["join", "--yes", &ticket]);
            assert!(joined.status.success());
            wait_until("the first value", || {
                sites.lab("b1").paste("b1").as_deref() == Some(value.as_str())
            });
            samples.push(started.elapsed().as_secs_f64() * 1e3);
            assert!(finished(invite).0);
            path = sites.path("b1", "a1").unwrap_or_default();
        }
        println!(
            "| {name} | {path} | {:.0} | {:.0} |",
            percentile(&samples, 50.0),
            percentile(&samples, 100.0)
        );
    }

    println!("\nan idle daemon over {seconds} s (after 12 s to settle)\n");
    println!("| setup | CPU time | wake-ups (all threads) | per thread | RSS |");
    println!("|---|---:|---:|---|---:|");
    for (setup, wan, paired) in [
        ("no wide-area transport (--no-wan), alone", false, false),
        ("wide-area transport on (HTTPS relay), alone", true, false),
        (
            "wide-area transport on, one peer over iroh (direct)",
            true,
            true,
        ),
    ] {
        let sites = Sites::start(
            &format!("bench-idle-{wan}-{paired}"),
            1,
            (Nat::Cone, Nat::Cone),
            RelayKind::Tls,
            |_| Vec::new(),
        );
        let pid = if wan {
            if paired {
                sites.pair("a1", "b1");
                wait_until("the path to turn direct", || {
                    sites.path("a1", "b1").as_deref() == Some("direct")
                });
            }
            sites.lab("a1").pid("a1")
        } else {
            // A daemon of its own beside a1, without the transport (the lab adds --no-wan).
            let mut lab = Lab::host(
                "bench-idle-nowan",
                &sites.net.ns("a1"),
                &[
                    "--no-mdns".to_owned(),
                    "--listen".to_owned(),
                    "0.0.0.0:47475".to_owned(),
                ],
            );
            lab.start("plain");
            thread::sleep(SETTLE);
            println!("{}", idle_row(setup, lab.pid("plain"), seconds));
            continue;
        };
        thread::sleep(SETTLE);
        println!("{}", idle_row(setup, pid, seconds));
    }
}

fn row(name: &str, samples: &[f64]) {
    println!(
        "| {name} | {:.2} | {:.2} | {:.2} | {:.2} |",
        percentile(samples, 50.0),
        percentile(samples, 90.0),
        percentile(samples, 99.0),
        percentile(samples, 100.0)
    );
}

fn control(lab: &Lab, name: &str) -> PathBuf {
    PathBuf::from(
        lab.status(name).expect("status")["mesh_dir"]
            .as_str()
            .expect("dir"),
    )
    .join(format!("control-{}.sock", lab.pid(name)))
}

/// Copies `copies` values on `from` (over its control socket) and times each until `to`'s watch
/// stream reports it.
fn latencies(from: (&Lab, &str), to: (&Lab, &str), copies: usize) -> Vec<f64> {
    let (arrivals, arrived) = mpsc::channel::<(String, Instant)>();
    watch_into(control(to.0, to.1), arrivals);
    let copier = UnixStream::connect(control(from.0, from.1)).expect("control");
    let mut answers = BufReader::new(copier.try_clone().expect("clone"));
    let mut copier = copier;
    let mut samples = Vec::with_capacity(copies);
    for i in 0..copies {
        let text = format!("copy {i} at {:?}", Instant::now());
        let request = serde_json::json!({"op": "copy", "text": text});
        let sent = Instant::now();
        copier
            .write_all(format!("{request}\n").as_bytes())
            .expect("copy request");
        let mut answer = String::new();
        answers.read_line(&mut answer).expect("copy answer");
        loop {
            let (seen, at) = arrived
                .recv_timeout(Duration::from_secs(10))
                .expect("the copy arrives");
            if seen == text {
                samples.push(at.duration_since(sent).as_secs_f64() * 1e3);
                break;
            }
        }
        thread::sleep(Duration::from_millis(10));
    }
    samples
}
