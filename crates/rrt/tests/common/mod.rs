//! A lab of real `rrt` daemons on this host: each test gets its own runtime and state
//! directories, starts and kills daemons as processes, and drives them with the real CLI. The
//! lab kills every daemon and removes its directories when dropped, even when a test fails.

#![allow(dead_code, unreachable_pub)]

pub mod measure;
pub mod nat;
pub mod net;
pub mod sway;
pub mod tmux;
pub mod wan_lab;
pub mod xvfb;

use std::{
    collections::BTreeMap,
    fs,
    io::Write,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

pub const DEADLINE: Duration = Duration::from_secs(20);

pub struct Lab {
    root: PathBuf,
    daemons: BTreeMap<String, Child>,
    daemon_args: Vec<String>,
    /// A network namespace the daemons run in (a lab host).
    netns: Option<String>,
    /// Daemons with a state directory of their own (as on another host).
    own_state: std::collections::BTreeSet<String>,
}

impl Lab {
    pub fn new(test: &str) -> Self {
        let root = std::env::temp_dir().join(format!("rrt-e2e-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).expect("lab directory");
        Self {
            root,
            daemons: BTreeMap::new(),
            // On this host's real network no test may multicast: mDNS only runs in a `Net`.
            daemon_args: vec!["--no-mdns".into()],
            netns: None,
            own_state: std::collections::BTreeSet::new(),
        }
    }

    /// A lab whose daemons run in network namespace `netns` with `daemon_args` — one host of
    /// a [`net::Net`]. Commands still run here: Unix sockets are reached by path.
    pub fn host(test: &str, netns: &str, daemon_args: &[String]) -> Self {
        let mut lab = Self::new(test);
        lab.netns = Some(netns.to_owned());
        lab.daemon_args = daemon_args.to_vec();
        lab
    }

    /// A lab whose daemons run the hub topology.
    pub fn hub(test: &str) -> Self {
        let mut lab = Self::new(test);
        lab.daemon_args.extend(["--topology".into(), "hub".into()]);
        lab
    }

    /// Adds `args` to every daemon this lab starts from now on.
    pub fn daemon_args(&mut self, args: &[&str]) {
        self.daemon_args
            .extend(args.iter().map(|arg| (*arg).to_owned()));
    }

    pub fn runtime_dir(&self) -> PathBuf {
        self.root.join("run")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.root.join("state")
    }

    /// Gives daemon `name` a state directory of its own, as if it ran on another host.
    pub fn own_state_dir(&mut self, name: &str) {
        self.own_state.insert(name.to_owned());
    }

    /// The state directory daemon `name` uses.
    pub fn state_dir_of(&self, name: &str) -> PathBuf {
        if self.own_state.contains(name) {
            self.root.join(format!("state-{name}"))
        } else {
            self.state_dir()
        }
    }

    /// A directory of the test's own under the lab (created; removed with the lab), for files
    /// a test makes — as a user's would be, outside any daemon's directories.
    pub fn dir(&self, name: &str) -> PathBuf {
        let dir = self.root.join(name);
        fs::create_dir_all(&dir).expect("a lab directory");
        dir
    }

    pub fn mesh_dir(&self) -> PathBuf {
        self.runtime_dir().join("default")
    }

    pub fn log(&self, name: &str) -> String {
        fs::read_to_string(self.root.join(format!("{name}.log"))).unwrap_or_default()
    }

    /// The `rrt` binary with this lab's directories.
    pub fn rrt(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rrt"));
        command.arg("--runtime-dir").arg(self.runtime_dir());
        command.env("XDG_CONFIG_HOME", self.config_home());
        command
    }

    /// The lab's `$XDG_CONFIG_HOME`: the config file is `<it>/rrt/config.toml` (none unless a
    /// test writes one; the machine's own never reaches a test).
    pub fn config_home(&self) -> PathBuf {
        self.root.join("config")
    }

    /// Starts a daemon and waits until it answers on its control socket.
    pub fn start(&mut self, name: &str) {
        self.start_with(name, &[]);
    }

    /// Starts a daemon with extra arguments.
    pub fn start_with(&mut self, name: &str, extra: &[String]) {
        self.start_with_env(name, extra, &[]);
    }

    /// Starts a daemon with extra arguments and environment. Daemons never see this process's
    /// `DISPLAY` or `WAYLAND_DISPLAY` (no test touches the desktop it runs in) unless given here.
    pub fn start_with_env(&mut self, name: &str, extra: &[String], env: &[(&str, &str)]) {
        let log = fs::File::create(self.root.join(format!("{name}.log"))).expect("log file");
        let mut command = match &self.netns {
            // `ip netns exec` execs the daemon: the child's pid is the daemon's.
            Some(netns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", netns, env!("CARGO_BIN_EXE_rrt")]);
                command.arg("--runtime-dir").arg(self.runtime_dir());
                command
            }
            None => self.rrt(),
        };
        let child = command
            .args(["--instance", name, "daemon", "--state-dir"])
            .arg(self.state_dir_of(name))
            .args(&self.daemon_args)
            .args(extra)
            .args(no_wan_unless_asked(&self.daemon_args, extra))
            .env("RUST_LOG", "info")
            .env("XDG_CONFIG_HOME", self.config_home())
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn a daemon");
        self.daemons.insert(name.to_owned(), child);
        wait_until(&format!("{name} to answer"), || self.status(name).is_some());
    }

    /// Runs daemon `name` with extra arguments where it must refuse to start: waits (with the
    /// deadline) for it to exit unsuccessfully, and returns what it said on stderr.
    pub fn start_refused(&self, name: &str, extra: &[String]) -> String {
        let mut daemon = self
            .rrt()
            .args(["--instance", name, "daemon", "--state-dir"])
            .arg(self.state_dir_of(name))
            .args(&self.daemon_args)
            .args(extra)
            .args(no_wan_unless_asked(&self.daemon_args, extra))
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn a daemon");
        let give_up = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(status) = daemon.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > give_up {
                let _ = daemon.kill();
                let _ = daemon.wait();
                panic!("{name} started instead of refusing to");
            }
            thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut daemon.stderr.take().expect("stderr"), &mut stderr)
            .expect("read stderr");
        assert!(!status.success(), "{name} exited successfully: {stderr}");
        stderr
    }

    pub fn start_all(&mut self, names: &[&str]) {
        for name in names {
            self.start(name);
        }
        self.wait_for_mesh(names);
    }

    /// Waits until each of `names` counts exactly them as the mesh's members — and, in a full
    /// mesh, has a link to every other.
    pub fn wait_for_mesh(&self, names: &[&str]) {
        let members = names.len();
        for name in names {
            wait_until(&format!("{name} to count {members} members"), || {
                self.status(name).is_some_and(|status| {
                    status["members"] == members
                        && (status["shape"] == "swarm" || status["peers"] == members - 1)
                })
            });
        }
    }

    /// Waits until `names` form a hub: one coordinator, which every other instance reaches
    /// directly, and through which each sees all the others. Returns the coordinator.
    pub fn wait_for_hub(&self, names: &[&str]) -> String {
        let mut coordinator = String::new();
        wait_until("the hub to form", || {
            let coordinators: Vec<String> = names
                .iter()
                .filter(|name| {
                    self.status(name)
                        .is_some_and(|status| status["role"] == "coordinator")
                })
                .map(|name| (*name).to_owned())
                .collect();
            let [hub] = coordinators.as_slice() else {
                return false;
            };
            coordinator = hub.clone();
            names.iter().all(|name| {
                let mut expected: Vec<String> = names
                    .iter()
                    .filter(|other| *other != name)
                    .map(|other| (*other).to_owned())
                    .collect();
                expected.sort();
                self.peers(name) == expected
            })
        });
        coordinator
    }

    /// SIGKILL: no goodbye, no cleanup.
    pub fn kill(&mut self, name: &str) {
        let mut child = self.daemons.remove(name).expect("a running daemon");
        child.kill().expect("kill -9");
        child.wait().expect("reap");
    }

    /// SIGTERM: goodbye and a clean exit.
    pub fn stop(&mut self, name: &str) {
        let mut child = self.daemons.remove(name).expect("a running daemon");
        let pid = rustix::process::Pid::from_child(&child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
        let status = child.wait().expect("reap");
        assert!(status.success(), "{name} exited with {status}");
    }

    pub fn pid(&self, name: &str) -> u32 {
        self.daemons[name].id()
    }

    /// A hand-driven peer on `name`'s Unix socket: handshake with `config`, then a `hello` as
    /// `peer_name`. What the daemon sends back (its hello, history, versions) is left unread.
    pub fn fake_peer(
        &self,
        name: &str,
        peer_name: &str,
        config: &rrt_wire::WireConfig,
    ) -> rrt_wire::BlockingTransport<std::os::unix::net::UnixStream, rrt_mesh::Message> {
        self.fake_peer_with(name, peer_name, config, &["clipboard", "state_sync"])
    }

    /// [`Lab::fake_peer`] saying it has `capabilities`.
    pub fn fake_peer_with(
        &self,
        name: &str,
        peer_name: &str,
        config: &rrt_wire::WireConfig,
        capabilities: &[&str],
    ) -> rrt_wire::BlockingTransport<std::os::unix::net::UnixStream, rrt_mesh::Message> {
        use rrt_wire::Transport as _;
        let socket = self
            .mesh_dir()
            .join(format!("peer-{}.sock", self.pid(name)));
        let stream = std::os::unix::net::UnixStream::connect(&socket).expect("connect");
        stream
            .set_read_timeout(Some(DEADLINE))
            .expect("a read deadline");
        let mut peer =
            rrt_wire::BlockingTransport::handshake(stream, rrt_wire::Role::Dialer, config)
                .expect("handshake");
        peer.send_message(&rrt_mesh::Message::Link(rrt_mesh::LinkMessage::Hello {
            instance_id: uuid::Uuid::new_v4(),
            capabilities: capabilities.iter().map(|c| (*c).to_owned()).collect(),
            name: peer_name.to_owned(),
        }))
        .expect("hello");
        peer
    }

    pub fn run(&self, name: &str, args: &[&str]) -> Output {
        self.rrt()
            .args(["--instance", name])
            .args(args)
            .output()
            .expect("run rrt")
    }

    pub fn status(&self, name: &str) -> Option<serde_json::Value> {
        let output = self.run(name, &["status", "--json"]);
        output
            .status
            .success()
            .then(|| serde_json::from_slice(&output.stdout).expect("status JSON"))
    }

    pub fn peers(&self, name: &str) -> Vec<String> {
        let output = self.run(name, &["peers", "--json"]);
        if !output.status.success() {
            return Vec::new();
        }
        let peers: serde_json::Value = serde_json::from_slice(&output.stdout).expect("peers JSON");
        let mut names: Vec<String> = peers["peers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|peer| peer["peer"]["name"].as_str().map(str::to_owned))
            .collect();
        names.sort();
        names
    }

    /// How long `name` has seen `peer` up without a break, in milliseconds (`rrt peers --json`).
    pub fn up_ms(&self, name: &str, peer: &str) -> Option<u64> {
        let output = self.run(name, &["peers", "--json"]);
        let peers: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
        peers["peers"]
            .as_array()?
            .iter()
            .find(|status| status["peer"]["name"] == peer)?["up_ms"]
            .as_u64()
    }

    /// A document's text on `name`, if it has the document.
    pub fn cat(&self, name: &str, document: &str) -> Option<String> {
        let output = self.run(name, &["scratch", "cat", document]);
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }

    pub fn copy(&self, name: &str, text: &str) {
        let output = self.run(name, &["clip", "copy", text]);
        assert!(
            output.status.success(),
            "copy on {name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    pub fn copy_stdin(&self, name: &str, text: &[u8]) -> Output {
        self.run_with_stdin(name, &["clip", "copy"], text)
    }

    /// Runs a command on `name` with `input` as its standard input (for texts too long to be
    /// one argument: Linux caps one at 128 KiB).
    pub fn run_with_stdin(&self, name: &str, args: &[&str], input: &[u8]) -> Output {
        let mut child = self
            .rrt()
            .args(["--instance", name])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rrt");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
        child.wait_with_output().expect("rrt finished")
    }

    pub fn paste(&self, name: &str) -> Option<String> {
        let output = self.run(name, &["clip", "paste"]);
        output
            .status
            .success()
            .then(|| String::from_utf8(output.stdout).expect("UTF-8 paste"))
    }
}

/// A running `rrt clip watch`, read line by line with a deadline.
pub struct Watch {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Watch {
    /// The next JSON line, failing the test after [`DEADLINE`].
    pub fn next(&self) -> serde_json::Value {
        let line = self
            .lines
            .recv_timeout(DEADLINE)
            .expect("a watch line within the deadline");
        serde_json::from_str(&line).expect("a JSON line")
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Lab {
    pub fn watch(&self, name: &str) -> Watch {
        let mut child = self
            .rrt()
            .args(["--instance", name, "clip", "watch"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn watch");
        let stdout = child.stdout.take().expect("stdout");
        let (send, lines) = std::sync::mpsc::channel();
        thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
                let Ok(line) = line else { return };
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        Watch { child, lines }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in self.daemons.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// Polls `condition` until it holds, failing the test after [`DEADLINE`].
pub fn wait_until(what: &str, condition: impl FnMut() -> bool) {
    wait_until_within(what, DEADLINE, condition);
}

/// [`wait_until`] with a deadline of its own, for what a slow link makes slow.
pub fn wait_until_within(what: &str, deadline: Duration, mut condition: impl FnMut() -> bool) {
    let give_up = Instant::now() + deadline;
    while !condition() {
        assert!(Instant::now() < give_up, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `command` to its end, reading what it writes; fails the test if it has not ended within
/// [`DEADLINE`] (a program that pastes waits for its answer, however long that takes).
pub fn output_within(command: &mut Command) -> Output {
    let what = format!("{:?}", command.get_program());
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("{what}: {error}"));
    let read_all = |mut pipe: Box<dyn std::io::Read + Send>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().expect("stdout")));
    let stderr = read_all(Box::new(child.stderr.take().expect("stderr")));
    let give_up = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > give_up {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {DEADLINE:?}");
        }
        thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout read"),
        stderr: stderr.join().expect("stderr read"),
    }
}

/// Bytes that do not compress, the same for a seed.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend(state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A `len`-byte PNG as far as anyone looking at its header can tell: the signature, an IHDR of
/// `width`x`height`, then noise.
pub fn fake_png(len: usize, width: u32, height: u32, seed: u64) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    png.extend(width.to_be_bytes());
    png.extend(height.to_be_bytes());
    png.extend(noise(len - png.len(), seed));
    png
}

/// The files under `dir`, by path relative to it, with their contents (directories as `None`).
pub fn tree(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    fn walk(root: &Path, dir: &Path, into: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) {
        for entry in fs::read_dir(dir).expect("read a directory") {
            let path = entry.expect("a directory entry").path();
            let relative = path.strip_prefix(root).expect("under the root").to_owned();
            if path.is_dir() {
                into.insert(relative, None);
                walk(root, &path, into);
            } else {
                into.insert(relative, Some(fs::read(&path).expect("read a file")));
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(dir, dir, &mut files);
    files
}

/// [`wait_until`] for a condition that says, when it does not hold, what holds instead — said
/// when the deadline passes.
pub fn wait_for(what: &str, mut condition: impl FnMut() -> Result<(), String>) {
    let give_up = Instant::now() + DEADLINE;
    loop {
        let Err(instead) = condition() else { return };
        assert!(
            Instant::now() < give_up,
            "timed out waiting for {what}; instead: {instead}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// The number after `name` on the command line (`--copies 50`), for the benchmarks.
/// The number in environment variable `name`, or `default`.
pub fn flag_env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

pub fn flag<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::args()
        .skip_while(|arg| arg != name)
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// Writes a join secret file as a user should: readable by its owner only (the daemon refuses
/// one that others may read).
pub fn write_secret(path: &Path, text: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = fs::remove_file(path);
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .expect("a secret file");
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// `--no-wan`, unless the arguments set up the wide-area transport (`--relay`, `--no-relay`):
/// a daemon's default is iroh's public relays, and tests never reach outside the machine.
fn no_wan_unless_asked(daemon_args: &[String], extra: &[String]) -> Option<&'static str> {
    let asked = daemon_args
        .iter()
        .chain(extra)
        .any(|arg| arg == "--relay" || arg == "--no-relay" || arg.starts_with("--relay="));
    (!asked).then_some("--no-wan")
}
