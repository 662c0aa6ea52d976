//! End to end across hosts: real daemons in network namespaces, linked over TLS (each host its
//! own key, admitted by a shared join secret), through partitions, outages, loss and strangers.

mod common;

use std::{
    process::{Command, Stdio},
    sync::Mutex,
};

use common::{Lab, net::Net, wait_until, wait_until_within};

/// Namespace set-up is kept one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Three hosts; host 1 runs two instances (`h1a`, `h1b`), hosts 2 and 3 one each.
struct Hosts {
    labs: Vec<Lab>,
    net: Net,
    secret: std::path::PathBuf,
}

impl Drop for Hosts {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.secret);
    }
}

const NAMES: [&str; 4] = ["h1a", "h1b", "h2", "h3"];

/// How the hosts find each other.
#[derive(Clone, Copy, PartialEq)]
enum Discovery {
    /// `--peer` addresses.
    Manual,
    /// mDNS only.
    Mdns,
}

/// What the hosts call themselves.
#[derive(Clone, Copy, PartialEq)]
enum Naming {
    /// `--device h1`, `h2`, `h3`.
    Distinct,
    /// The default `--device`: the host name, which namespaces share — as a fleet of
    /// `raspberrypi`s does.
    HostName,
}

impl Hosts {
    fn start(test: &str) -> Self {
        Self::start_with(test, Discovery::Manual, Naming::Distinct)
    }

    fn start_with(test: &str, discovery: Discovery, naming: Naming) -> Self {
        let net = Net::new(3);
        let secret =
            std::env::temp_dir().join(format!("rrt-e2e-{test}-{}.secret", std::process::id()));
        common::write_secret(&secret, "a join secret long enough to count");
        let mut labs = Vec::new();
        for host in 1..=3 {
            let mut args = vec!["--secret-file".to_owned(), secret.display().to_string()];
            if naming == Naming::Distinct {
                args.extend(["--device".to_owned(), format!("h{host}")]);
            }
            if discovery == Discovery::Manual {
                for other in (1..=3).filter(|other| *other != host) {
                    args.push("--peer".to_owned());
                    args.push(format!("{}:47474", Net::address(other)));
                }
            }
            labs.push(Lab::host(
                &format!("{test}-h{host}"),
                &net.host(host),
                &args,
            ));
        }
        let mut hosts = Self { labs, net, secret };
        for name in NAMES {
            let lab = hosts.lab_index(name);
            hosts.labs[lab].start(name);
        }
        for name in NAMES {
            wait_until(&format!("{name} to see the three others"), || {
                hosts.lab(name).peers(name).len() == 3
            });
        }
        hosts
    }

    fn lab_index(&self, name: &str) -> usize {
        match name {
            "h1a" | "h1b" => 0,
            "h2" => 1,
            _ => 2,
        }
    }

    fn lab(&self, name: &str) -> &Lab {
        &self.labs[self.lab_index(name)]
    }

    fn history(&self, name: &str) -> Vec<String> {
        let output = self.lab(name).run(name, &["clip", "history", "--json"]);
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter_map(|entry| entry["text"].as_str().map(str::to_owned))
            .collect()
    }

    fn converge_on(&self, text: &str) {
        for name in NAMES {
            wait_until(&format!("{name} to paste {text:?}"), || {
                self.lab(name).paste(name).as_deref() == Some(text)
            });
        }
    }
}

#[test]
fn three_hosts_share_and_converge_after_a_silent_partition() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let hosts = Hosts::start("partition");
    hosts.lab("h2").copy("h2", "before the cut");
    hosts.converge_on("before the cut");

    hosts.net.cut(3);
    wait_until("h3 to lose everyone", || {
        hosts.lab("h3").peers("h3").is_empty()
    });
    for name in ["h1a", "h1b", "h2"] {
        wait_until(&format!("{name} to report h3 down"), || {
            !hosts.lab(name).peers(name).contains(&"h3".to_owned())
        });
    }
    assert!(hosts.labs[0].log("h1a").contains("peer=h3"));
    assert!(
        hosts.labs[0]
            .log("h1a")
            .contains("reason=heartbeat timed out")
    );
    // Both sides keep working, and write: the clipboard, and a shared document.
    hosts.lab("h3").copy("h3", "written alone on h3");
    hosts.lab("h1b").copy("h1b", "written by the majority");
    for (name, line) in [
        ("h3", "h3 wrote this alone\n"),
        ("h2", "the majority wrote this\n"),
    ] {
        let output = hosts
            .lab(name)
            .run(name, &["scratch", "append", "notes", line]);
        assert!(output.status.success(), "{output:?}");
    }
    for name in ["h1a", "h2"] {
        wait_until(&format!("{name} to have the majority's copy"), || {
            hosts.lab(name).paste(name).as_deref() == Some("written by the majority")
        });
    }

    hosts.net.heal(3);
    wait_until("h3 to rejoin", || hosts.lab("h3").peers("h3").len() == 3);
    hosts.converge_on("written by the majority");
    for name in NAMES {
        wait_until(&format!("{name} to have both sides' notes"), || {
            let output = hosts.lab(name).run(name, &["scratch", "cat", "notes"]);
            let text = String::from_utf8_lossy(&output.stdout);
            text.contains("h3 wrote this alone\n") && text.contains("the majority wrote this\n")
        });
    }
    for name in NAMES {
        let history = hosts.history(name);
        for acknowledged in [
            "before the cut",
            "written alone on h3",
            "written by the majority",
        ] {
            assert!(
                history.contains(&acknowledged.to_owned()),
                "{name} lost {acknowledged:?}"
            );
        }
    }

    // A restarted daemon keeps its documents.
    let notes = |hosts: &Hosts| {
        let output = hosts.lab("h3").run("h3", &["scratch", "cat", "notes"]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let before = notes(&hosts);
    let mut hosts = hosts;
    hosts.labs[2].stop("h3");
    hosts.labs[2].start("h3");
    assert_eq!(notes(&hosts), before);
}

#[test]
fn with_h1_and_h3_blocked_from_each_other_everything_crosses_h2() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let hosts = Hosts::start("partial");
    hosts.net.block(1, 3);
    // h2 vouches for each to the other (it hears from both), which keeps a silent link for at
    // most MAX_VOUCHED peer timeouts (15 s) before it is taken for broken.
    wait_until_within(
        "h1a and h3 to lose each other",
        std::time::Duration::from_secs(40),
        || {
            !hosts.lab("h1a").peers("h1a").contains(&"h3".to_owned())
                && !hosts.lab("h3").peers("h3").contains(&"h1a".to_owned())
        },
    );
    // Both ways, the clipboard and a document.
    hosts.lab("h1a").copy("h1a", "from h1 to h3 through h2");
    hosts.converge_on("from h1 to h3 through h2");
    hosts.lab("h3").copy("h3", "from h3 to h1 through h2");
    hosts.converge_on("from h3 to h1 through h2");
    let output = hosts
        .lab("h3")
        .run("h3", &["scratch", "append", "notes", "written on h3\n"]);
    assert!(output.status.success(), "{output:?}");
    for name in ["h1a", "h1b"] {
        wait_until(&format!("{name} to have h3's note"), || {
            hosts.lab(name).cat(name, "notes").as_deref() == Some("written on h3\n")
        });
    }

    // Cut h2 too: h1 and h3 write alone; when h2 comes back, everything meets again.
    hosts.net.cut(2);
    wait_until("h3 to be alone", || hosts.lab("h3").peers("h3").is_empty());
    hosts.lab("h1b").copy("h1b", "h1 alone");
    let output = hosts.lab("h1a").run(
        "h1a",
        &["scratch", "append", "notes", "written on h1 alone\n"],
    );
    assert!(output.status.success(), "{output:?}");
    hosts.lab("h3").copy("h3", "h3 alone, later");
    hosts.net.heal(2);
    hosts.converge_on("h3 alone, later");
    for name in NAMES {
        wait_until(&format!("{name} to have every note"), || {
            hosts.lab(name).cat(name, "notes").is_some_and(|text| {
                text.contains("written on h3\n") && text.contains("written on h1 alone\n")
            })
        });
        let history = hosts.history(name);
        assert!(
            history.contains(&"h1 alone".to_owned()),
            "{name}: {history:?}"
        );
    }
}

#[test]
fn a_host_that_lost_every_link_recovers_on_its_own() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let hosts = Hosts::start("outage");
    hosts.net.unplug(2);
    wait_until("h2 to lose everyone", || {
        hosts.lab("h2").peers("h2").is_empty()
    });
    hosts.lab("h1a").copy("h1a", "copied during the outage");
    hosts.net.plug(2);
    wait_until("h2 to reconnect by itself", || {
        hosts.lab("h2").peers("h2").len() == 3
    });
    hosts.converge_on("copied during the outage");
}

#[test]
fn twenty_percent_loss_on_one_link_still_converges() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let hosts = Hosts::start("loss");
    hosts.net.lose(3, 20);
    for i in 0..10 {
        hosts.lab("h3").copy("h3", &format!("lossy copy {i}"));
    }
    hosts.converge_on("lossy copy 9");
    hosts.lab("h2").copy("h2", "back the other way");
    hosts.converge_on("back the other way");
}

#[test]
fn a_lossy_link_between_two_hosts_takes_neither_down() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let hosts = Hosts::start("lossy-link");
    // Up to 5 minutes for the full run: RRT_LOSS_SECONDS=300.
    let seconds: u64 = std::env::var("RRT_LOSS_SECONDS")
        .ok()
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or(60);
    hosts.net.lose_between(2, 3, 20);
    let start = std::time::Instant::now();
    let mut copies = 0;
    while start.elapsed() < std::time::Duration::from_secs(seconds) {
        hosts
            .lab("h3")
            .copy("h3", &format!("over a lossy link {copies}"));
        copies += 1;
        std::thread::sleep(std::time::Duration::from_secs(5));
    }
    hosts.converge_on(&format!("over a lossy link {}", copies - 1));
    // A stall of the h2–h3 link is vouched for by h1a and h1b: it never went down either way.
    for (name, other) in [("h2", "h3"), ("h3", "h2")] {
        let up_ms = hosts.lab(name).up_ms(name, other);
        assert!(
            up_ms.is_some_and(|ms| ms >= seconds * 1000),
            "{name} saw {other} up for {up_ms:?} ms of the {seconds} s"
        );
    }
}

#[test]
fn a_large_value_crosses_a_slow_link_and_the_link_stays_up() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let hosts = Hosts::start("slow");
    hosts.net.limit_rate(3, "8mbit");
    // 5 MB that LZ4 cannot shrink: 5 s at 8 Mbit/s, beyond the 3 s peer timeout.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let large: String = (0..5_000_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[(state % 36) as usize])
        })
        .collect();
    let copied = hosts.lab("h1a").copy_stdin("h1a", large.as_bytes());
    assert!(copied.status.success(), "{copied:?}");
    wait_until_within(
        "h3 to paste the large value over the slow link",
        std::time::Duration::from_secs(90),
        || hosts.lab("h3").paste("h3").as_deref() == Some(large.as_str()),
    );
    // What comes after it is not stuck behind reconnects.
    hosts.lab("h1a").copy("h1a", "small, after the large one");
    wait_until("h3 to paste the small value", || {
        hosts.lab("h3").paste("h3").as_deref() == Some("small, after the large one")
    });
    assert_eq!(hosts.lab("h3").peers("h3").len(), 3);
}

#[test]
fn garbage_plaintext_and_a_thousand_idle_connections_harm_no_one() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let hosts = Hosts::start("hostile");
    let target = format!("{}:47474", Net::address(1));
    // From host 2: garbage, an HTTP request, then 1,000 connections that never say a word.
    let script = "import socket,sys,time\n\
        host,port=sys.argv[1].split(':')\n\
        for junk in [bytes(range(256))*4, b'GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n']:\n\
        \x20   s=socket.create_connection((host,int(port)))\n\
        \x20   s.sendall(junk)\n\
        \x20   s.settimeout(10)\n\
        \x20   while s.recv(4096): pass\n\
        idle=[socket.create_connection((host,int(port))) for _ in range(1000)]\n\
        print('holding', len(idle), flush=True)\n\
        time.sleep(60)\n";
    let mut attacker = Command::new("ip")
        .args([
            "netns",
            "exec",
            &hosts.net.host(2),
            "python3",
            "-c",
            script,
            &target,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the attacker");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(attacker.stdout.as_mut().expect("stdout")),
        &mut line,
    )
    .expect("the attacker's report");
    assert_eq!(line.trim(), "holding 1000");
    hosts.lab("h3").copy("h3", "through the noise");
    hosts.converge_on("through the noise");
    assert_eq!(hosts.lab("h1a").peers("h1a").len(), 3);
    let _ = attacker.kill();
    let _ = attacker.wait();
}

#[test]
fn a_new_key_with_the_secret_joins_and_a_stranger_without_it_is_refused() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut hosts = Hosts::start("strangers");
    let key_of = |hosts: &Hosts, name: &str| {
        peer_devices(hosts.lab("h1a"), "h1a")
            .into_iter()
            .find(|(instance, _, _)| instance == name)
            .map(|(_, _, key)| key)
    };
    let old_key = key_of(&hosts, "h3").expect("h3's key");
    // Host 3 loses its key and comes back with a new one under the same device name: a new
    // device, which proves the secret and joins like any other.
    hosts.labs[2].kill("h3");
    std::fs::remove_dir_all(hosts.labs[2].state_dir().join("identity")).expect("forget the key");
    hosts.labs[2].start("h3");
    wait_until("h3 to rejoin with its new key", || {
        hosts.lab("h3").peers("h3").len() == 3
    });
    wait_until("h1a to see h3's new key", || {
        key_of(&hosts, "h3").is_some_and(|key| key != old_key)
    });
    hosts.lab("h3").copy("h3", "from the new key");
    hosts.converge_on("from the new key");

    // A device with neither the secret nor a trusted key.
    let mut stranger = Lab::host(
        "strangers-intruder",
        &hosts.net.host(3),
        &[
            "--device".to_owned(),
            "intruder".to_owned(),
            "--peer".to_owned(),
            format!("{}:47474", Net::address(1)),
        ],
    );
    stranger.start("intruder");
    wait_until("the stranger to be refused", || {
        stranger
            .log("intruder")
            .contains("refused an untrusted device")
    });
    assert!(stranger.peers("intruder").is_empty());
    assert_eq!(hosts.lab("h1a").peers("h1a"), ["h1b", "h2", "h3"]);
}

#[test]
fn hosts_that_share_a_host_name_all_join_and_links_across_hosts_are_compressed() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // Every host runs under the default device name — the one host name they share.
    let hosts = Hosts::start_with("samename", Discovery::Manual, Naming::HostName);
    hosts.lab("h2").copy("h2", "one name, three devices");
    hosts.converge_on("one name, three devices");

    let devices = peer_devices(hosts.lab("h1a"), "h1a");
    let of = |name: &str| {
        devices
            .iter()
            .find(|(instance, _, _)| instance == name)
            .unwrap_or_else(|| panic!("{name} in {devices:?}"))
            .clone()
    };
    let (_, h2_name, h2_key) = of("h2");
    let (_, h3_name, h3_key) = of("h3");
    assert_eq!(h2_name, h3_name, "the same device name");
    assert_ne!(h2_key, h3_key, "told apart by their keys");
    // Across hosts the dialer proposes LZ4 and the acceptor agrees; on one host, no compression.
    let compression = |name: &str| {
        let output = hosts.lab("h1a").run("h1a", &["peers", "--json"]);
        let peers: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
        peers["peers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|peer| peer["peer"]["name"] == name)
            .and_then(|peer| peer["compression"].as_str().map(str::to_owned))
    };
    assert_eq!(compression("h2").as_deref(), Some("lz4"));
    assert_eq!(compression("h3").as_deref(), Some("lz4"));
    assert_eq!(compression("h1b").as_deref(), Some("none"));
    // The table tells the two apart by a short device id.
    let table = hosts.lab("h1a").run("h1a", &["peers"]);
    let table = String::from_utf8_lossy(&table.stdout);
    for key in [&h2_key, &h3_key] {
        assert!(table.contains(&format!("({})", &key[..8])), "{table}");
    }
}

/// `(instance name, device name, device key)` of every peer `name` has a TLS link to.
fn peer_devices(lab: &Lab, name: &str) -> Vec<(String, String, String)> {
    let output = lab.run(name, &["peers", "--json"]);
    let peers: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
    peers["peers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|peer| {
            Some((
                peer["peer"]["name"].as_str()?.to_owned(),
                peer["device"]["name"].as_str()?.to_owned(),
                peer["device"]["id"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

#[test]
fn a_one_sided_secret_is_refused_and_both_sides_say_why() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let net = Net::new(2);
    let secret =
        std::env::temp_dir().join(format!("rrt-e2e-onesided-{}.secret", std::process::id()));
    common::write_secret(&secret, "a join secret long enough to count");
    let mut with_secret = Lab::host(
        "onesided-h1",
        &net.host(1),
        &["--secret-file".to_owned(), secret.display().to_string()],
    );
    let mut without = Lab::host(
        "onesided-h2",
        &net.host(2),
        &["--peer".to_owned(), format!("{}:47474", Net::address(1))],
    );
    with_secret.start("h1");
    without.start("h2");
    let key_of = |lab: &Lab| {
        let output = lab
            .rrt()
            .arg("--state-dir")
            .arg(lab.state_dir())
            .arg("id")
            .output()
            .expect("rrt id");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    let h1_key = key_of(&with_secret);
    // h2, which has no secret and does not trust h1, refuses h1 and says so; h1 is told why, and
    // says it too, naming its own key.
    wait_until("both sides to say why", || {
        without.log("h2").contains(&h1_key)
            && with_secret
                .log("h1")
                .lines()
                .any(|line| line.contains("refused this device") && line.contains(&h1_key))
    });
    assert!(with_secret.peers("h1").is_empty());
    assert!(without.peers("h2").is_empty());
    let _ = std::fs::remove_file(secret);
}

#[test]
fn hosts_find_each_other_by_mdns_and_a_stale_record_brings_nobody_back() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut hosts = Hosts::start_with("mdns", Discovery::Mdns, Naming::Distinct);
    hosts.lab("h2").copy("h2", "found by mDNS");
    hosts.converge_on("found by mDNS");

    // A standard browser (python-zeroconf) on host 2 sees the service and its TXT record.
    let browse = "import time,zeroconf\n\
        found={}\n\
        class L:\n\
        \x20   def add_service(self,z,t,n):\n\
        \x20       i=z.get_service_info(t,n,3000)\n\
        \x20       if i: found[n]=i.properties.get(b'mesh')\n\
        \x20   def update_service(self,*a): pass\n\
        \x20   def remove_service(self,*a): pass\n\
        z=zeroconf.Zeroconf()\n\
        zeroconf.ServiceBrowser(z,'_rrt._tcp.local.',L())\n\
        deadline=time.time()+15\n\
        while time.time()<deadline and not any(n.startswith('h1-') for n in found): time.sleep(0.1)\n\
        print(sorted(found.items()))\n\
        z.close()\n";
    let output = Command::new("ip")
        .args(["netns", "exec", &hosts.net.host(2), "python3", "-c", browse])
        .output()
        .expect("python-zeroconf");
    let seen = String::from_utf8_lossy(&output.stdout);
    assert!(
        seen.contains("'h1-") && seen.contains("b'default'"),
        "{seen} {output:?}"
    );

    // h3 dies without a goodbye: its record stays in caches a while, and must not revive it.
    hosts.labs[2].kill("h3");
    for name in ["h1a", "h1b", "h2"] {
        wait_until(&format!("{name} to report h3 down"), || {
            hosts.lab(name).peers(name).len() == 2
        });
    }
    // …and the mesh no longer counts it (its link broke and it did not come back).
    for name in ["h1a", "h1b", "h2"] {
        wait_until(&format!("{name} to count 3 members"), || {
            hosts
                .lab(name)
                .status(name)
                .is_some_and(|status| status["members"] == 3)
        });
    }
    hosts.lab("h1a").copy("h1a", "after h3 died");
    for name in ["h1a", "h1b", "h2"] {
        wait_until(&format!("{name} to paste"), || {
            hosts.lab(name).paste(name).as_deref() == Some("after h3 died")
        });
        assert!(!hosts.lab(name).peers(name).contains(&"h3".to_owned()));
    }
}

/// Three hosts of three instances each, above `--swarm-above 5`: one swarm across hosts over
/// TLS, its members dialing each other on demand at the addresses they learned to advertise.
#[test]
fn a_swarm_spans_three_hosts_and_sees_a_death_on_another() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let net = Net::new(3);
    let secret = std::env::temp_dir().join(format!("rrt-e2e-swarm-{}.secret", std::process::id()));
    common::write_secret(&secret, "a join secret long enough to count");
    let mut labs: Vec<Lab> = (1..=3)
        .map(|host| {
            let mut args = vec![
                "--secret-file".to_owned(),
                secret.display().to_string(),
                "--device".to_owned(),
                format!("h{host}"),
                "--swarm-above".to_owned(),
                "5".to_owned(),
            ];
            for other in (1..=3).filter(|other| *other != host) {
                args.push("--peer".to_owned());
                args.push(format!("{}:47474", Net::address(other)));
            }
            Lab::host(&format!("swarm-h{host}"), &net.host(host), &args)
        })
        .collect();
    let name = |host: usize, i: usize| format!("h{host}{}", ["a", "b", "c"][i]);
    for host in 1..=3 {
        for i in 0..3 {
            labs[host - 1].start(&name(host, i));
        }
    }
    let everyone: Vec<(usize, String)> = (1..=3)
        .flat_map(|host| (0..3).map(move |i| (host, name(host, i))))
        .collect();
    let members = |labs: &[Lab], host: usize, daemon: &str| {
        labs[host - 1]
            .status(daemon)
            .and_then(|status| status["members"].as_u64())
    };
    for (host, daemon) in &everyone {
        wait_until(&format!("{daemon} to count 9 members in a swarm"), || {
            members(&labs, *host, daemon) == Some(9)
                && labs[host - 1]
                    .status(daemon)
                    .is_some_and(|status| status["shape"] == "swarm")
        });
    }
    labs[0].copy("h1b", "across a swarm of hosts");
    for (host, daemon) in &everyone {
        wait_until(&format!("{daemon} to paste the copy"), || {
            labs[host - 1].paste(daemon).as_deref() == Some("across a swarm of hosts")
        });
    }
    // kill -9 on host 3: its siblings see the process gone, and say so to every host.
    labs[2].kill("h3c");
    for (host, daemon) in everyone.iter().filter(|(_, daemon)| daemon != "h3c") {
        wait_until(&format!("{daemon} to count h3c out"), || {
            members(&labs, *host, daemon) == Some(8)
        });
    }
    let _ = std::fs::remove_file(&secret);
}
