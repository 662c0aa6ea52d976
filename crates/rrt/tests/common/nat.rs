//! Sites behind NAT routers and a relay on the "internet" (TESTING.md's recipe): namespace
//! `inet` holds a bridge (the internet, 198.18.0.0/24, the relay at .1); routers `rA` (.2) and
//! `rB` (.3) masquerade their sites' LANs, 198.18.1.0/24 and 198.18.2.0/24, each a bridge in its
//! router with the site's hosts on it (`a1` at 198.18.1.2, `a2` at .3, …; `b1` at 198.18.2.2).
//! Hosts of different sites cannot reach each other directly; all reach the relay, which sees
//! only the routers. Dropping a `NatNet` deletes every namespace.
//!
//! Each router drops unsolicited packets to itself from the internet, as home routers do. Not
//! only for realism: without it Linux confirms a conntrack entry for a peer's hole-punching
//! packet that arrives before the host's own first packet to that peer, and that entry takes the
//! very port mapping the host's packet needs — masquerade then picks another port, and the hole
//! never opens (seen in this lab before the rule).

use std::sync::atomic::{AtomicUsize, Ordering};

use super::net::run;

static NETS: AtomicUsize = AtomicUsize::new(0);

/// The relay's address on the internet bridge.
pub const RELAY_ADDRESS: &str = "198.18.0.1";

/// How a site's router maps addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nat {
    /// Linux's default masquerade: it keeps a flow's source port where it can (endpoint-
    /// independent mapping), so hole punching can work.
    Cone,
    /// `masquerade random`: a new port per destination, as a symmetric NAT does.
    Symmetric,
}

pub struct NatNet {
    prefix: String,
    hosts: Vec<String>,
}

impl NatNet {
    /// Site A with `a_hosts` hosts behind a `a` NAT, site B with one host behind a `b` NAT.
    pub fn new(a_hosts: usize, a: Nat, b: Nat) -> Self {
        let prefix = format!(
            "rrtnat{}n{}",
            std::process::id(),
            NETS.fetch_add(1, Ordering::SeqCst)
        );
        let mut net = Self {
            prefix,
            hosts: Vec::new(),
        };
        for name in ["inet", "rA", "rB"] {
            net.add(name);
        }
        net.exec("inet", &["ip", "link", "add", "br0", "type", "bridge"]);
        net.exec("inet", &["ip", "link", "set", "br0", "up"]);
        net.exec(
            "inet",
            &["ip", "addr", "add", "198.18.0.1/24", "dev", "br0"],
        );
        for (site, wan, lan, hosts, nat) in [
            ("A", "198.18.0.2", 1, a_hosts, a),
            ("B", "198.18.0.3", 2, 1, b),
        ] {
            let router = format!("r{site}");
            let up = format!("up{site}");
            net.veth(("wan", &router), (&up, "inet"));
            net.exec("inet", &["ip", "link", "set", &up, "master", "br0"]);
            net.exec("inet", &["ip", "link", "set", &up, "up"]);
            net.exec(&router, &["ip", "link", "set", "wan", "up"]);
            net.exec(
                &router,
                &["ip", "addr", "add", &format!("{wan}/24"), "dev", "wan"],
            );
            net.exec(&router, &["ip", "link", "add", "lan", "type", "bridge"]);
            net.exec(
                &router,
                &[
                    "ip",
                    "addr",
                    "add",
                    &format!("198.18.{lan}.1/24"),
                    "dev",
                    "lan",
                ],
            );
            net.exec(&router, &["ip", "link", "set", "lan", "up"]);
            for i in 1..=hosts {
                let host = format!("{}{i}", site.to_ascii_lowercase());
                let port = format!("p{i}");
                net.add(&host);
                net.veth((&port, &router), ("eth0", &host));
                net.exec(&router, &["ip", "link", "set", &port, "master", "lan"]);
                net.exec(&router, &["ip", "link", "set", &port, "up"]);
                let address = format!("198.18.{lan}.{}/24", i + 1);
                net.exec(&host, &["ip", "addr", "add", &address, "dev", "eth0"]);
                net.exec(&host, &["ip", "link", "set", "eth0", "up"]);
                net.exec(
                    &host,
                    &[
                        "ip",
                        "route",
                        "add",
                        "default",
                        "via",
                        &format!("198.18.{lan}.1"),
                    ],
                );
            }
            net.exec(&router, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
            let masquerade = match nat {
                Nat::Cone => "masquerade",
                Nat::Symmetric => "masquerade random",
            };
            let rules = format!(
                "table ip nat {{\n  chain nat_postrouting {{\n    type nat hook postrouting priority 100;\n    oifname \"wan\" {masquerade}\n  }}\n}}\n\
                 table inet fw {{\n  chain filter_forward {{\n    type filter hook forward priority 0; policy drop;\n    iifname \"lan\" accept\n    ct state established,related accept\n  }}\n  chain filter_input {{\n    type filter hook input priority 0; policy accept;\n    iifname \"wan\" ct state new drop\n  }}\n}}\n"
            );
            let file = std::env::temp_dir().join(format!("{}-{router}.nft", net.prefix));
            std::fs::write(&file, rules).expect("nft rules");
            net.exec(&router, &["nft", "-f", file.to_str().expect("utf-8 path")]);
            let _ = std::fs::remove_file(file);
        }
        net
    }

    /// A host's address on its site's LAN (`a1` → 198.18.1.2).
    pub fn address(host: &str) -> String {
        let (site, index) = host.split_at(1);
        let lan = if site == "a" { 1 } else { 2 };
        let index: u32 = index.parse().expect("a host like a1");
        format!("198.18.{lan}.{}", index + 1)
    }

    /// A veth pair: `one.0` in namespace `one.1`, `other.0` in `other.1`.
    fn veth(&self, one: (&str, &str), other: (&str, &str)) {
        let (one_ns, other_ns) = (self.ns(one.1), self.ns(other.1));
        run(&[
            "ip", "link", "add", one.0, "netns", &one_ns, "type", "veth", "peer", "name", other.0,
            "netns", &other_ns,
        ]);
    }

    fn add(&mut self, name: &str) {
        run(&["ip", "netns", "add", &self.ns(name)]);
        self.hosts.push(name.to_owned());
        self.exec(name, &["ip", "link", "set", "lo", "up"]);
    }

    /// The namespace of `name` (`inet`, `rA`, `rB`, `a1`, `a2`, `b1`).
    pub fn ns(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub fn exec(&self, name: &str, command: &[&str]) {
        let ns = self.ns(name);
        let mut full = vec!["ip", "netns", "exec", &ns];
        full.extend_from_slice(command);
        run(&full);
    }
}

impl Drop for NatNet {
    fn drop(&mut self) {
        for name in self.hosts.iter().rev() {
            let _ = std::process::Command::new("ip")
                .args(["netns", "delete", &self.ns(name)])
                .status();
        }
    }
}
