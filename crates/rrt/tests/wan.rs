//! Beyond one LAN: hosts behind NAT routers, a relay (`rrt relay`) on the lab's "internet",
//! pairing by ticket from the terminal, then clipboard and documents over the wide-area
//! transport (iroh) — relayed, hole punched, through a relay outage, and in a mesh that mixes
//! LAN and WAN links. Nothing leaves the machine: the daemons use the lab's relay only.

mod common;

use std::sync::Mutex;

use common::{
    nat::{Nat, RELAY_ADDRESS},
    wait_until, wait_until_within,
    wan_lab::{LanSecret, RelayKind, Sites, finished},
};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn nothing(_: &str) -> Vec<String> {
    Vec::new()
}

#[test]
fn hosts_behind_two_nats_pair_by_ticket_and_sync_through_the_relay() {
    let _serial = serial();
    let sites = Sites::start("pair", 1, (Nat::Cone, Nat::Cone), RelayKind::Http, nothing);
    // Strangers: without a ticket, neither host links to the other.
    assert!(sites.lab("a1").peers("a1").is_empty());
    let status = sites.lab("a1").status("a1").expect("status");
    assert_eq!(status["wan"]["running"], true);
    assert_eq!(
        status["wan"]["address"]["relays"][0],
        format!("http://{RELAY_ADDRESS}:3340/"),
        "the lab's relay and no other"
    );
    assert_eq!(
        status["reactor_restarts"]["wide_area"], 0,
        "the wide-area transport's reactor is counted"
    );

    let ticket = sites.pair("a1", "b1");
    // A plain-HTTP relay offers no address discovery: behind two NATs the path stays relayed.
    assert_eq!(sites.path("b1", "a1").as_deref(), Some("relayed"));
    sites.spread("a1", "from behind NAT A");
    let appended = sites
        .lab("b1")
        .run("b1", &["scratch", "append", "notes", "a line from site B"]);
    assert!(appended.status.success());
    wait_until("a1 to have b1's document", || {
        sites
            .lab("a1")
            .cat("a1", "notes")
            .is_some_and(|text| text.contains("a line from site B"))
    });

    // The ticket was single-use.
    let again = sites.lab("b1").run("b1", &["join", "--yes", &ticket]);
    assert!(!again.status.success());
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(said.contains("used already"), "{said}");
}

#[test]
fn of_two_instances_on_a_host_the_one_running_the_endpoint_pairs_and_the_other_shares() {
    let _serial = serial();
    let mut sites = Sites::start(
        "instances",
        1,
        (Nat::Cone, Nat::Cone),
        RelayKind::Http,
        nothing,
    );
    wait_until("a1 to run the host's endpoint", || {
        sites
            .lab("a1")
            .status("a1")
            .is_some_and(|status| status["wan"]["running"] == true)
    });
    sites.start_another("a1", "a1b");
    wait_until("a1's two instances to link", || {
        sites.lab("a1").peers("a1b") == ["a1"]
    });
    assert_eq!(
        sites.lab("a1").status("a1b").expect("status")["wan"]["running"],
        false,
        "a1 holds the host's endpoint"
    );
    // No --instance: `rrt invite` finds the instance that runs the endpoint.
    let mut invite = sites
        .lab("a1")
        .rrt()
        .args(["invite", "--yes"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("rrt invite");
    let mut ticket = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(invite.stdout.as_mut().expect("stdout")),
        &mut ticket,
    )
    .expect("the ticket");
    let joined = sites.lab("b1").run("b1", &["join", "--yes", ticket.trim()]);
    assert!(joined.status.success());
    assert!(finished(invite).0);
    wait_until("b1 to link to a1", || {
        sites.lab("b1").peers("b1").contains(&"a1".to_owned())
    });
    // a1b reaches b1 through a1.
    sites.lab("a1").copy("a1b", "from the other instance");
    wait_until("b1 to have a1b's copy", || {
        sites.lab("b1").paste("b1").as_deref() == Some("from the other instance")
    });
}

#[test]
fn a_wrong_code_or_an_expired_ticket_trusts_nothing() {
    let _serial = serial();
    let sites = Sites::start(
        "refuse",
        1,
        (Nat::Cone, Nat::Cone),
        RelayKind::Http,
        nothing,
    );

    // The person at b1 says the codes differ.
    let (invite, ticket) = sites.invite("a1", &["--yes"]);
    let joined = sites
        .lab("b1")
        .run_with_stdin("b1", &["join", &ticket], b"n\n");
    assert!(!joined.status.success());
    assert!(String::from_utf8_lossy(&joined.stderr).contains("nothing was trusted"));
    let (invited, said) = finished(invite);
    assert!(!invited);
    assert!(said.contains("nothing was trusted"), "{said}");
    for host in ["a1", "b1"] {
        let trusted = sites.cli(host, &["trust", "list"]);
        assert!(
            String::from_utf8_lossy(&trusted.stdout).trim().is_empty(),
            "{host} trusts nothing"
        );
    }

    // A ticket past its time.
    let made = std::time::Instant::now();
    let (mut invite, ticket) = sites.invite("a1", &["--yes", "--ttl", "1"]);
    wait_until("the ticket's second to pass", || {
        made.elapsed() > std::time::Duration::from_millis(1100)
    });
    let joined = sites.lab("b1").run("b1", &["join", "--yes", &ticket]);
    assert!(!joined.status.success());
    let said = String::from_utf8_lossy(&joined.stderr);
    assert!(said.contains("expired"), "{said}");
    let _ = invite.kill();
    let _ = invite.wait();
    assert_eq!(sites.lab("a1").peers("a1"), Vec::<String>::new());
    assert_eq!(sites.lab("b1").peers("b1"), Vec::<String>::new());
}

#[test]
fn a_device_that_knows_the_address_but_holds_no_ticket_is_refused() {
    let _serial = serial();
    let mut sites = Sites::start(
        "stranger",
        1,
        (Nat::Cone, Nat::Cone),
        RelayKind::Http,
        nothing,
    );
    // Of two devices only the lower id dials, so the stranger gets an id below a1's: it dials.
    let a1 = sites.new_identity("a1", |id| id.as_bytes()[0] >= b'8');
    sites.new_identity("b1", |id| *id < a1);
    // The stranger trusts a1 and keeps dialing it: it knows a1's id and relay, as anyone who
    // saw a ticket or a log might. a1 has never heard of it.
    let relay = format!("http://{RELAY_ADDRESS}:3340");
    let added = sites.cli("b1", &["trust", "add", &a1, "--relay", &relay]);
    assert!(added.status.success());
    wait_until("a1 to refuse the stranger", || {
        sites
            .lab("a1")
            .log("a1")
            .contains("refused an untrusted device")
    });
    assert!(sites.lab("a1").peers("a1").is_empty());
    assert!(sites.lab("b1").peers("b1").is_empty());
    let trusted = sites.cli("a1", &["trust", "list"]);
    assert!(String::from_utf8_lossy(&trusted.stdout).trim().is_empty());
}

#[test]
fn behind_cone_nats_the_path_turns_direct_and_outlives_the_relay() {
    let _serial = serial();
    let mut sites = Sites::start("direct", 1, (Nat::Cone, Nat::Cone), RelayKind::Tls, nothing);
    sites.pair("a1", "b1");
    wait_until("the path to turn direct (hole punched)", || {
        sites.path("a1", "b1").as_deref() == Some("direct")
            && sites.path("b1", "a1").as_deref() == Some("direct")
    });
    sites.spread("a1", "over the punched hole");
    sites.kill_relay();
    sites.spread("b1", "with the relay gone");
    assert_eq!(sites.path("a1", "b1").as_deref(), Some("direct"));
}

#[test]
fn behind_a_symmetric_nat_the_link_stays_relayed_and_recovers_when_the_relay_returns() {
    let _serial = serial();
    let mut sites = Sites::start(
        "symmetric",
        1,
        (Nat::Cone, Nat::Symmetric),
        RelayKind::Tls,
        nothing,
    );
    sites.pair("a1", "b1");
    sites.spread("a1", "through a symmetric NAT");
    assert_eq!(sites.path("a1", "b1").as_deref(), Some("relayed"));
    sites.kill_relay();
    wait_until("the relayed link to be given up", || {
        sites.lab("a1").peers("a1").is_empty()
    });
    sites.start_relay();
    wait_until_within(
        "the link to come back through the relay",
        std::time::Duration::from_secs(90),
        || sites.lab("a1").peers("a1") == ["b1"] && sites.lab("b1").peers("b1") == ["a1"],
    );
    sites.spread("b1", "after the relay came back");
}

#[test]
fn a_mesh_of_lan_and_wan_links_carries_a_copy_everywhere() {
    let _serial = serial();
    let secret = LanSecret::new("mixed");
    // a1 and a2 share site A's LAN (TLS, the join secret); b1 is across the internet.
    let sites = Sites::start(
        "mixed",
        2,
        (Nat::Cone, Nat::Cone),
        RelayKind::Http,
        secret.site_a(),
    );
    wait_until("a1 and a2 to link on their LAN", || {
        sites.lab("a2").peers("a2") == ["a1"]
    });
    sites.pair("a1", "b1");
    // a2 reaches b1 only through a1, which forwards.
    assert_eq!(sites.lab("a2").peers("a2"), ["a1"]);
    sites.spread("a2", "from a2, over the LAN then the WAN");
    sites.spread("b1", "from b1, over the WAN then the LAN");
}
