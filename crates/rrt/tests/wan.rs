//! Beyond one LAN: two hosts behind two NAT routers, a relay (`rrt relay`) on the lab's
//! "internet", pairing by ticket from the terminal, then clipboard and documents over the
//! wide-area transport (iroh). Nothing leaves the machine: the daemons use the lab's relay only.

mod common;

use std::{
    io::{BufRead as _, BufReader},
    process::{Child, Command, Stdio},
    sync::Mutex,
};

use common::{
    Lab,
    nat::{NatNet, RELAY_ADDRESS},
    wait_until,
};

static SERIAL: Mutex<()> = Mutex::new(());

/// The relay, killed when dropped.
struct Relay(Child);

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Sites {
    a: Lab,
    b: Lab,
    _relay: Relay,
    _net: NatNet,
}

impl Sites {
    fn start(test: &str) -> Self {
        let net = NatNet::new(false);
        let relay = Relay(
            Command::new("ip")
                .args(["netns", "exec", &net.ns("inet"), env!("CARGO_BIN_EXE_rrt")])
                .args(["relay", "--listen", &format!("{RELAY_ADDRESS}:3340")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start the relay"),
        );
        let relay_url = format!("http://{RELAY_ADDRESS}:3340");
        let site = |name: &str, ns: &str| {
            let mut lab = Lab::host(
                &format!("{test}-{name}"),
                &net.ns(ns),
                &[
                    "--no-mdns".to_owned(),
                    "--device".to_owned(),
                    name.to_owned(),
                    "--relay".to_owned(),
                    relay_url.clone(),
                ],
            );
            lab.start(name);
            lab
        };
        let (a, b) = (site("a", "a1"), site("b", "b1"));
        Self {
            a,
            b,
            _relay: relay,
            _net: net,
        }
    }

    /// `rrt invite` on a (with `args`), running; returns it and the ticket it printed.
    fn invite(&self, args: &[&str]) -> (Child, String) {
        let mut invite = self
            .a
            .rrt()
            .args(["--instance", "a", "invite"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("rrt invite");
        let mut line = String::new();
        BufReader::new(invite.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .expect("the ticket line");
        assert!(line.starts_with("rrt1"), "a ticket, not {line:?}");
        (invite, line.trim().to_owned())
    }
}

fn stderr_of(child: Child) -> (bool, String) {
    let output = child.wait_with_output().expect("wait");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn hosts_behind_two_nats_pair_by_ticket_and_sync_through_the_relay() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let sites = Sites::start("wan-pair");

    // Strangers: without a ticket, neither host links to the other.
    assert!(sites.a.peers("a").is_empty());

    let (invite, ticket) = sites.invite(&["--yes"]);
    let joined = sites.b.run("b", &["join", "--yes", &ticket]);
    assert!(
        joined.status.success(),
        "join: {}",
        String::from_utf8_lossy(&joined.stderr)
    );
    let (invited, said) = stderr_of(invite);
    assert!(invited, "invite: {said}");

    wait_until("a and b to link across the NATs", || {
        sites.a.peers("a") == ["b"] && sites.b.peers("b") == ["a"]
    });
    let peers = sites.b.run("b", &["peers", "--json"]);
    let peers: serde_json::Value = serde_json::from_slice(&peers.stdout).expect("JSON");
    let link = &peers["peers"][0];
    assert_eq!(link["transport"], "iroh");
    // A plain-HTTP relay offers no address discovery: behind two NATs the path stays relayed.
    eprintln!("path between the sites: {}", link["host"]);
    assert!(matches!(link["host"].as_str(), Some("relayed" | "direct")));

    sites.a.copy("a", "from behind NAT A");
    wait_until("b to have a's copy", || {
        sites.b.paste("b").as_deref() == Some("from behind NAT A")
    });
    let appended = sites
        .b
        .run("b", &["scratch", "append", "notes", "a line from site B"]);
    assert!(appended.status.success());
    wait_until("a to have b's document", || {
        sites
            .a
            .cat("a", "notes")
            .is_some_and(|text| text.contains("a line from site B"))
    });

    // The ticket was single-use.
    let again = sites.b.run("b", &["join", "--yes", &ticket]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("used already"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

#[test]
fn a_wrong_code_or_an_expired_ticket_trusts_nothing() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let sites = Sites::start("wan-refuse");

    // The person at b says the codes differ.
    let (invite, ticket) = sites.invite(&["--yes"]);
    let joined = sites.b.run_with_stdin("b", &["join", &ticket], b"n\n");
    assert!(!joined.status.success());
    assert!(String::from_utf8_lossy(&joined.stderr).contains("nothing was trusted"));
    let (invited, said) = stderr_of(invite);
    assert!(!invited);
    assert!(said.contains("nothing was trusted"), "{said}");
    for (lab, name) in [(&sites.a, "a"), (&sites.b, "b")] {
        let trusted = lab.run(name, &["trust", "list"]);
        assert!(
            String::from_utf8_lossy(&trusted.stdout).trim().is_empty(),
            "{name} trusts nothing"
        );
    }

    // A ticket past its time.
    let made = std::time::Instant::now();
    let (mut invite, ticket) = sites.invite(&["--yes", "--ttl", "1"]);
    wait_until("the ticket's second to pass", || {
        made.elapsed() > std::time::Duration::from_millis(1100)
    });
    let joined = sites.b.run("b", &["join", "--yes", &ticket]);
    assert!(!joined.status.success());
    assert!(
        String::from_utf8_lossy(&joined.stderr).contains("expired"),
        "{}",
        String::from_utf8_lossy(&joined.stderr)
    );
    let _ = invite.kill();
    let _ = invite.wait();
    assert_eq!(sites.a.peers("a"), Vec::<String>::new());
    assert_eq!(sites.b.peers("b"), Vec::<String>::new());
}
