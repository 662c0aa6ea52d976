//! Several hosts on this machine: network namespaces on a bridge that itself lives in a
//! namespace, so nothing touches the machine's own network (TESTING.md's recipe). Addresses come
//! from 198.18.0.0/15, reserved for network tests. Links are cut silently (the bridge port stops
//! forwarding, the host's interface stays up) or visibly (the port goes down), and lossy through
//! nftables in the switch. Dropping a `Net` deletes every namespace, even when a test fails.

use std::{
    process::{Command, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
};

static NETS: AtomicUsize = AtomicUsize::new(0);

pub struct Net {
    prefix: String,
    hosts: usize,
}

impl Net {
    pub fn new(hosts: usize) -> Self {
        let prefix = format!(
            "rrtlab{}n{}",
            std::process::id(),
            NETS.fetch_add(1, Ordering::SeqCst)
        );
        let net = Self { prefix, hosts: 0 };
        let switch = net.switch();
        run(&["ip", "netns", "add", &switch]);
        let mut net = net;
        net.in_switch(&["ip", "link", "add", "br0", "type", "bridge"]);
        net.in_switch(&["ip", "link", "set", "br0", "up"]);
        for i in 1..=hosts {
            let host = net.host(i);
            let port = format!("p{i}");
            run(&["ip", "netns", "add", &host]);
            net.hosts = i;
            run(&[
                "ip", "link", "add", "eth0", "netns", &host, "type", "veth", "peer", "name", &port,
                "netns", &switch,
            ]);
            net.in_switch(&["ip", "link", "set", &port, "master", "br0"]);
            net.in_switch(&["ip", "link", "set", &port, "up"]);
            let address = format!("{}/24", Self::address(i));
            for command in [
                &["ip", "link", "set", "lo", "up"][..],
                &["ip", "link", "set", "eth0", "up"],
                &["ip", "addr", "add", &address, "dev", "eth0"],
                &["ip", "route", "add", "224.0.0.0/4", "dev", "eth0"],
            ] {
                net.in_host(i, command);
            }
        }
        net
    }

    pub fn host(&self, i: usize) -> String {
        format!("{}h{i}", self.prefix)
    }

    fn switch(&self) -> String {
        format!("{}sw", self.prefix)
    }

    pub fn address(i: usize) -> String {
        format!("198.18.0.{i}")
    }

    pub fn in_host(&self, i: usize, command: &[&str]) {
        let host = self.host(i);
        let mut full = vec!["ip", "netns", "exec", &host];
        full.extend_from_slice(command);
        run(&full);
    }

    fn in_switch(&self, command: &[&str]) {
        let switch = self.switch();
        let mut full = vec!["ip", "netns", "exec", &switch];
        full.extend_from_slice(command);
        run(&full);
    }

    /// What host `i` sends goes out at most at `rate` (a `tc` rate such as `1gbit`), with a
    /// bucket deep enough for that rate (a tenth of a second's worth) — a wire of that speed.
    pub fn shape_sending(&self, i: usize, rate: &str) {
        self.in_host(
            i,
            &[
                "tc", "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", rate, "burst", "12mb",
                "latency", "50ms",
            ],
        );
    }

    /// Undoes [`Net::shape_sending`].
    pub fn clear_shaping(&self, i: usize) {
        self.in_host(i, &["tc", "qdisc", "del", "dev", "eth0", "root"]);
    }

    /// Host `i`'s link carries at most `rate` (a `tc` rate such as `8mbit`) each way.
    pub fn limit_rate(&self, i: usize, rate: &str) {
        let shape = ["tc", "qdisc", "add", "dev"];
        let tbf = [
            "root", "tbf", "rate", rate, "burst", "32kbit", "latency", "400ms",
        ];
        self.in_host(i, &[&shape[..], &["eth0"], &tbf[..]].concat());
        let port = format!("p{i}");
        self.in_switch(&[&shape[..], &[port.as_str()], &tbf[..]].concat());
    }

    /// Host `i`'s packets vanish; its interface stays up, nobody is told.
    pub fn cut(&self, i: usize) {
        self.in_switch(&[
            "bridge",
            "link",
            "set",
            "dev",
            &format!("p{i}"),
            "state",
            "0",
        ]);
    }

    pub fn heal(&self, i: usize) {
        self.in_switch(&[
            "bridge",
            "link",
            "set",
            "dev",
            &format!("p{i}"),
            "state",
            "3",
        ]);
    }

    /// Host `i`'s link goes down and comes back up: a visible outage.
    pub fn unplug(&self, i: usize) {
        self.in_switch(&["ip", "link", "set", &format!("p{i}"), "down"]);
    }

    pub fn plug(&self, i: usize) {
        self.in_switch(&["ip", "link", "set", &format!("p{i}"), "up"]);
    }

    /// Hosts `i` and `j` can no longer reach each other (a firewall between them); each still
    /// reaches every other host.
    pub fn block(&self, i: usize, j: usize) {
        self.in_switch(&["nft", "add", "table", "bridge", "lab"]);
        self.in_switch(&[
            "nft",
            "add chain bridge lab block { type filter hook forward priority 0; policy accept; }",
        ]);
        for (from, to) in [(i, j), (j, i)] {
            let rule = format!("add rule bridge lab block iifname p{from} oifname p{to} drop");
            self.in_switch(&["nft", &rule]);
        }
    }

    /// Drops `percent` % of the frames between hosts `i` and `j`, both ways, at random; their
    /// links to other hosts are left alone.
    pub fn lose_between(&self, i: usize, j: usize, percent: u32) {
        self.in_switch(&["nft", "add", "table", "bridge", "lab"]);
        self.in_switch(&[
            "nft",
            "add chain bridge lab lossy { type filter hook forward priority 0; policy accept; }",
        ]);
        for (from, to) in [(i, j), (j, i)] {
            let rule = format!(
                "add rule bridge lab lossy iifname p{from} oifname p{to} numgen random mod 100 < {percent} drop"
            );
            self.in_switch(&["nft", &rule]);
        }
    }

    /// Drops `percent` % of the frames host `i` sends, at random.
    pub fn lose(&self, i: usize, percent: u32) {
        self.in_switch(&["nft", "add", "table", "bridge", "lab"]);
        self.in_switch(&[
            "nft",
            "add chain bridge lab cut { type filter hook forward priority 0; policy accept; }",
        ]);
        self.in_switch(&[
            "nft",
            "add",
            "rule",
            "bridge",
            "lab",
            "cut",
            "iifname",
            &format!("p{i}"),
            "numgen",
            "random",
            "mod",
            "100",
            "<",
            &percent.to_string(),
            "drop",
        ]);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for i in 1..=self.hosts {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.host(i)])
                .status();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.switch()])
            .status();
    }
}

pub fn run(command: &[&str]) {
    let output = Command::new(command[0])
        .args(&command[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("{command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
