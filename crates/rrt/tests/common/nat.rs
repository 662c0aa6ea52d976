//! Two sites behind NAT routers and a relay on the "internet" (TESTING.md's recipe): namespace
//! `inet` holds a bridge (the internet, 198.18.0.0/24, the relay at .1); routers `rA` (.2) and
//! `rB` (.3) masquerade their sites 198.18.1.0/24 and 198.18.2.0/24, each with one host (`a1`
//! at 198.18.1.2, `b1` at 198.18.2.2). The hosts cannot reach each other directly; both reach
//! the relay, which sees only the routers. Dropping a `NatNet` deletes every namespace.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::net::run;

static NETS: AtomicUsize = AtomicUsize::new(0);

pub struct NatNet {
    prefix: String,
}

/// The relay's address on the internet bridge.
pub const RELAY_ADDRESS: &str = "198.18.0.1";

impl NatNet {
    /// The lab; `symmetric` makes site B's router a symmetric NAT (`masquerade random`).
    pub fn new(symmetric: bool) -> Self {
        let prefix = format!(
            "rrtnat{}n{}",
            std::process::id(),
            NETS.fetch_add(1, Ordering::SeqCst)
        );
        let net = Self { prefix };
        for name in ["inet", "rA", "rB", "a1", "b1"] {
            run(&["ip", "netns", "add", &net.ns(name)]);
            net.exec(name, &["ip", "link", "set", "lo", "up"]);
        }
        net.exec("inet", &["ip", "link", "add", "br0", "type", "bridge"]);
        net.exec("inet", &["ip", "link", "set", "br0", "up"]);
        net.exec(
            "inet",
            &["ip", "addr", "add", "198.18.0.1/24", "dev", "br0"],
        );
        for (site, wan, lan, host) in [
            ("A", "198.18.0.2", "1", "a1"),
            ("B", "198.18.0.3", "2", "b1"),
        ] {
            let router = format!("r{site}");
            let up = format!("up{site}");
            run(&[
                "ip",
                "link",
                "add",
                "wan",
                "netns",
                &net.ns(&router),
                "type",
                "veth",
                "peer",
                "name",
                &up,
                "netns",
                &net.ns("inet"),
            ]);
            net.exec("inet", &["ip", "link", "set", &up, "master", "br0"]);
            net.exec("inet", &["ip", "link", "set", &up, "up"]);
            net.exec(&router, &["ip", "link", "set", "wan", "up"]);
            net.exec(
                &router,
                &["ip", "addr", "add", &format!("{wan}/24"), "dev", "wan"],
            );
            run(&[
                "ip",
                "link",
                "add",
                "lan",
                "netns",
                &net.ns(&router),
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &net.ns(host),
            ]);
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
            net.exec(
                host,
                &[
                    "ip",
                    "addr",
                    "add",
                    &format!("198.18.{lan}.2/24"),
                    "dev",
                    "eth0",
                ],
            );
            net.exec(host, &["ip", "link", "set", "eth0", "up"]);
            net.exec(
                host,
                &[
                    "ip",
                    "route",
                    "add",
                    "default",
                    "via",
                    &format!("198.18.{lan}.1"),
                ],
            );
            net.exec(&router, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
            let masquerade = if symmetric && site == "B" {
                "masquerade random"
            } else {
                "masquerade"
            };
            let rules = format!(
                "table ip nat {{\n  chain nat_postrouting {{\n    type nat hook postrouting priority 100;\n    oifname \"wan\" {masquerade}\n  }}\n}}\n\
                 table inet fw {{\n  chain filter_forward {{\n    type filter hook forward priority 0; policy drop;\n    iifname \"lan\" accept\n    ct state established,related accept\n  }}\n}}\n"
            );
            let file = std::env::temp_dir().join(format!("{}-{router}.nft", net.prefix));
            std::fs::write(&file, rules).expect("nft rules");
            net.exec(&router, &["nft", "-f", file.to_str().expect("utf-8 path")]);
            let _ = std::fs::remove_file(file);
        }
        net
    }

    /// The namespace of `name` (`inet`, `rA`, `rB`, `a1`, `b1`).
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
        for name in ["a1", "b1", "rA", "rB", "inet"] {
            let _ = std::process::Command::new("ip")
                .args(["netns", "delete", &self.ns(name)])
                .status();
        }
    }
}
