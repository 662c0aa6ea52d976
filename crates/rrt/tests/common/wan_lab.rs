//! The wide-area lab: sites behind NAT routers (`nat`), a relay (`rrt relay`) on the lab's
//! "internet", a daemon per host named after it, and what tests and benchmarks do with them —
//! pair two hosts by ticket, read a link's path, spread a copy.

use std::{
    io::{BufRead as _, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
};

use super::{
    Lab,
    nat::{Nat, NatNet, RELAY_ADDRESS},
    wait_until,
};

/// Which relay the lab runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum RelayKind {
    /// Plain HTTP: relaying only, no address discovery.
    Http,
    /// HTTPS with a self-signed certificate, and QUIC address discovery (hole punching).
    Tls,
}

pub struct Sites {
    labs: Vec<(String, Lab)>,
    relay: Option<Child>,
    relay_args: Vec<String>,
    pub net: NatNet,
    dir: PathBuf,
}

impl Drop for Sites {
    fn drop(&mut self) {
        self.kill_relay();
        if std::thread::panicking() {
            // The logs say more than the assertion: keep them in the test's output.
            for (host, lab) in &self.labs {
                eprintln!("===== {host}'s log =====\n{}", lab.log(host));
            }
            let relay = std::fs::read_to_string(self.dir.join("relay.log")).unwrap_or_default();
            eprintln!("===== the relay's log =====\n{relay}");
        }
        self.labs.clear();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Sites {
    /// Site A's `a_hosts` hosts and site B's `b1`, each running a daemon named after its host
    /// with the lab's relay; `extra(host)` adds arguments.
    pub fn start(
        test: &str,
        a_hosts: usize,
        (a, b): (Nat, Nat),
        relay: RelayKind,
        extra: impl Fn(&str) -> Vec<String>,
    ) -> Self {
        let net = NatNet::new(a_hosts, a, b);
        let dir = std::env::temp_dir().join(format!("rrt-wan-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("lab dir");
        let listen = format!("{RELAY_ADDRESS}:3340");
        let (relay_args, daemon_relay) = match relay {
            RelayKind::Http => (
                vec!["relay".to_owned(), "--listen".to_owned(), listen.clone()],
                vec!["--relay".to_owned(), format!("http://{listen}")],
            ),
            RelayKind::Tls => {
                let (cert, key) = (dir.join("relay.crt"), dir.join("relay.key"));
                let made = Command::new("openssl")
                    .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
                    .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
                    .args(["-subj", "/CN=rrt lab relay"])
                    .args(["-addext", "basicConstraints=critical,CA:FALSE", "-addext"])
                    .arg(format!("subjectAltName=IP:{RELAY_ADDRESS}"))
                    .arg("-keyout")
                    .arg(&key)
                    .arg("-out")
                    .arg(&cert)
                    .stderr(Stdio::null())
                    .status()
                    .expect("openssl");
                assert!(made.success(), "openssl made the relay's certificate");
                let path = |path: &PathBuf| path.to_str().expect("utf-8").to_owned();
                (
                    vec![
                        "relay".to_owned(),
                        "--listen".to_owned(),
                        listen.clone(),
                        "--cert".to_owned(),
                        path(&cert),
                        "--key".to_owned(),
                        path(&key),
                    ],
                    vec![
                        "--relay".to_owned(),
                        format!("https://{listen}"),
                        "--relay-ca".to_owned(),
                        path(&cert),
                    ],
                )
            }
        };
        let mut sites = Self {
            labs: Vec::new(),
            relay: None,
            relay_args,
            net,
            dir,
        };
        sites.start_relay();
        let hosts: Vec<String> = (1..=a_hosts)
            .map(|i| format!("a{i}"))
            .chain(["b1".to_owned()])
            .collect();
        for host in hosts {
            let mut args = vec!["--no-mdns".to_owned(), "--device".to_owned(), host.clone()];
            args.extend(daemon_relay.iter().cloned());
            args.extend(extra(&host));
            let mut lab = Lab::host(&format!("{test}-{host}"), &sites.net.ns(&host), &args);
            lab.start(&host);
            sites.labs.push((host, lab));
        }
        sites
    }

    pub fn start_relay(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("relay.log"))
            .expect("relay log");
        let relay = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.net.ns("inet"),
                env!("CARGO_BIN_EXE_rrt"),
            ])
            .args(&self.relay_args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the relay");
        self.relay = Some(relay);
    }

    pub fn kill_relay(&mut self) {
        if let Some(mut relay) = self.relay.take() {
            let _ = relay.kill();
            let _ = relay.wait();
        }
    }

    /// `rrt` with `host`'s state directory (its key, its trust store).
    pub fn cli(&self, host: &str, args: &[&str]) -> std::process::Output {
        let lab = self.lab(host);
        lab.rrt()
            .arg("--state-dir")
            .arg(lab.state_dir_of(host))
            .args(args)
            .output()
            .expect("run rrt")
    }

    /// Restarts `host`'s daemon with a new device key, drawn until `wanted` likes its id.
    pub fn new_identity(&mut self, host: &str, wanted: impl Fn(&String) -> bool) -> String {
        let index = self
            .labs
            .iter()
            .position(|(name, _)| name == host)
            .expect("a host of the lab");
        self.labs[index].1.kill(host);
        let state = self.labs[index].1.state_dir_of(host);
        let id = (0..64)
            .find_map(|_| {
                std::fs::remove_dir_all(state.join("identity")).expect("forget the key");
                let id = self.cli(host, &["id"]);
                let id = String::from_utf8_lossy(&id.stdout).trim().to_owned();
                wanted(&id).then_some(id)
            })
            .expect("an id to our liking within 64 draws");
        self.labs[index].1.start(host);
        id
    }

    /// Starts another daemon, `name`, on `host`: the same device (state directory), so one of
    /// the two runs the host's wide-area endpoint.
    pub fn start_another(&mut self, host: &str, name: &str) {
        let lab = &mut self
            .labs
            .iter_mut()
            .find(|(each, _)| each == host)
            .expect("a host of the lab")
            .1;
        lab.start(name);
    }

    pub fn lab(&self, host: &str) -> &Lab {
        &self
            .labs
            .iter()
            .find(|(name, _)| name == host)
            .expect("a host of the lab")
            .1
    }

    /// `rrt invite` on `host` (with `args`), running; returns it and the ticket it printed.
    pub fn invite(&self, host: &str, args: &[&str]) -> (Child, String) {
        let mut invite = self
            .lab(host)
            .rrt()
            .args(["--instance", host, "invite"])
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

    /// Pairs `inviter` and `joiner` (both confirm), and waits for their link.
    pub fn pair(&self, inviter: &str, joiner: &str) -> String {
        let (invite, ticket) = self.invite(inviter, &["--yes"]);
        let joined = self.lab(joiner).run(joiner, &["join", "--yes", &ticket]);
        assert!(
            joined.status.success(),
            "join: {}",
            String::from_utf8_lossy(&joined.stderr)
        );
        let (invited, said) = finished(invite);
        assert!(invited, "invite: {said}");
        wait_until(&format!("{inviter} and {joiner} to link"), || {
            self.lab(inviter)
                .peers(inviter)
                .contains(&joiner.to_owned())
                && self.lab(joiner).peers(joiner).contains(&inviter.to_owned())
        });
        ticket
    }

    /// How `host`'s link to `peer` runs: `"relayed"` or `"direct"` over iroh.
    pub fn path(&self, host: &str, peer: &str) -> Option<String> {
        let output = self.lab(host).run(host, &["peers", "--json"]);
        let peers: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
        let link = peers["peers"]
            .as_array()?
            .iter()
            .find(|link| link["peer"]["name"] == peer)?;
        assert_eq!(link["transport"], "iroh");
        link["path"].as_str().map(str::to_owned)
    }

    /// Copies `text` on `from` and waits until every host has it.
    pub fn spread(&self, from: &str, text: &str) {
        self.lab(from).copy(from, text);
        for (host, lab) in &self.labs {
            wait_until(&format!("{host} to have {text:?}"), || {
                lab.paste(host).as_deref() == Some(text)
            });
        }
    }
}

pub fn finished(child: Child) -> (bool, String) {
    let output = child.wait_with_output().expect("wait");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A join secret for site A's LAN, in a file removed when dropped.
pub struct LanSecret(PathBuf);

impl LanSecret {
    pub fn new(test: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("rrt-wan-{test}-{}.secret", std::process::id()));
        super::write_secret(&path, "a join secret for site A's LAN");
        Self(path)
    }

    /// The daemon arguments that link site A's hosts over their LAN (TLS, this secret): a2
    /// dials a1; b1 gets none.
    pub fn site_a(&self) -> impl Fn(&str) -> Vec<String> {
        let secret = self.0.to_str().expect("utf-8").to_owned();
        move |host| match host {
            "a1" => vec!["--secret-file".to_owned(), secret.clone()],
            "a2" => vec![
                "--secret-file".to_owned(),
                secret.clone(),
                "--peer".to_owned(),
                format!("{}:47474", NatNet::address("a1")),
            ],
            _ => Vec::new(),
        }
    }
}

impl Drop for LanSecret {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
