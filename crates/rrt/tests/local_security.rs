//! End to end: no one in uninvited on the same host. Another user (uid [`OTHER`], run with
//! `setpriv`) plants sockets, directories and symbolic links where a daemon or a command of ours
//! would use them; nothing of ours may reach them, and nothing of ours may be overwritten.

mod common;

use std::{
    fs,
    io::{Read, Write},
    os::unix::{
        fs::{PermissionsExt, symlink},
        net::UnixStream,
    },
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use common::{Lab, path_str, wait_until};

/// The other user: a uid no account on a test machine has.
const OTHER: u32 = 4242;

/// A Unix socket served by [`OTHER`], recording what every connection sent. It binds in a
/// directory of the other user's; the test then moves the socket wherever the attack puts it
/// (a listening socket keeps listening under its new name).
struct ForeignServer {
    child: Child,
    socket: PathBuf,
    record: PathBuf,
}

/// For each connection, one line in the record: how many bytes came, and what they were. With
/// `answer`, each request line gets `{"ok":null}`, as a daemon would answer a copy.
const SERVER: &str = r#"
import socket, sys
path, record, answer = sys.argv[1], sys.argv[2], sys.argv[3] == "answer"
server = socket.socket(socket.AF_UNIX)
server.bind(path)
server.listen(64)
open(record + ".ready", "w").close()
while True:
    connection, _ = server.accept()
    connection.settimeout(10)
    data = b""
    try:
        while True:
            chunk = connection.recv(65536)
            if not chunk:
                break
            data += chunk
            if answer and data.endswith(b"\n"):
                connection.sendall(b'{"ok":null}\n')
    except OSError:
        pass
    connection.close()
    with open(record, "a") as out:
        out.write("%d %r\n" % (len(data), data))
"#;

impl ForeignServer {
    fn start(lab: &Lab, name: &str, answer: bool) -> Self {
        let home = lab_root(lab).join(format!("other-{name}"));
        fs::create_dir_all(&home).expect("the other user's directory");
        std::os::unix::fs::chown(&home, Some(OTHER), Some(OTHER)).expect("chown");
        let socket = home.join("server.sock");
        let record = home.join("record");
        let script = home.join("server.py");
        fs::write(&script, SERVER).expect("server script");
        let child = as_other(python3())
            .arg(&script)
            .arg(&socket)
            .arg(&record)
            .arg(if answer { "answer" } else { "listen" })
            .stdin(Stdio::null())
            .spawn()
            .expect("python3 as the other user");
        let ready = record.with_extension("ready");
        wait_until("the other user's server to listen", || ready.exists());
        Self {
            child,
            socket,
            record,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Moves the listening socket to `path` (replacing whatever was there).
    fn move_to(&mut self, path: &Path) {
        fs::rename(&self.socket, path).expect("move the socket");
        self.socket = path.to_owned();
    }

    /// One line per finished connection.
    fn connections(&self) -> Vec<String> {
        fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Every connection made before this call, once the server has recorded them all: a probe
    /// connection of ours goes last, and the server handles connections one at a time, in order.
    fn connections_so_far(&self) -> Vec<String> {
        let mut probe = UnixStream::connect(&self.socket).expect("probe the server");
        probe.write_all(b"probe\n").expect("probe");
        drop(probe);
        let mut connections = Vec::new();
        wait_until("the server to record the probe", || {
            connections = self.connections();
            connections
                .last()
                .is_some_and(|line| line.contains("probe"))
        });
        connections.pop();
        connections
    }
}

impl Drop for ForeignServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A command run as [`OTHER`], without our groups.
fn as_other(program: &str) -> Command {
    let mut command = Command::new("setpriv");
    command.args([
        &format!("--reuid={OTHER}"),
        &format!("--regid={OTHER}"),
        "--clear-groups",
        program,
    ]);
    command
}

/// A python3 the other user can run (a user's pyenv shim lives in a home it cannot enter).
fn python3() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

fn lab_root(lab: &Lab) -> PathBuf {
    lab.runtime_dir()
        .parent()
        .expect("the lab's root")
        .to_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_mesh_directory_swapped_for_another_users_gets_no_secret() {
    let mut lab = Lab::new("swapped");
    lab.start("a");
    let mut server = ForeignServer::start(&lab, "swap", true);
    // The other user puts its own directory where ours was, with our registry in it and its
    // server under the daemon's control socket's name (as after a cleaner emptied /tmp).
    let mesh = lab.mesh_dir();
    let control = mesh.join(format!("control-{}.sock", lab.pid("a")));
    let registry = fs::read(mesh.join("peers.json")).expect("the registry");
    fs::rename(&mesh, mesh.with_extension("ours")).expect("move ours away");
    fs::create_dir(&mesh).expect("their directory");
    fs::write(mesh.join("peers.json"), registry).expect("their registry");
    server.move_to(&control);
    for path in [mesh.join("peers.json"), mesh.clone()] {
        std::os::unix::fs::lchown(&path, Some(OTHER), Some(OTHER)).expect("chown");
    }

    let output = lab.run("a", &["clip", "copy", "the secret"]);
    assert!(
        !output.status.success(),
        "the copy went through: {output:?}"
    );
    let error = stderr(&output);
    assert!(
        error.contains(path_str(&mesh)) && error.contains(&format!("uid {OTHER}")),
        "{error}"
    );
    assert_eq!(server.connections_so_far(), Vec::<String>::new());
}

#[test]
fn a_control_socket_served_by_another_user_gets_nothing() {
    let mut lab = Lab::new("foreigncontrol");
    lab.start("a");
    // The directory stays ours; only the socket under the daemon's name is the other user's —
    // as when a directory is swapped between a command's check of it and its connect.
    let mut server = ForeignServer::start(&lab, "control", true);
    let control = lab
        .mesh_dir()
        .join(format!("control-{}.sock", lab.pid("a")));
    server.move_to(&control);

    let output = lab.run("a", &["clip", "copy", "the secret"]);
    assert!(
        !output.status.success(),
        "the copy went through: {output:?}"
    );
    let error = stderr(&output);
    for part in [
        path_str(&control).to_owned(),
        format!("uid {OTHER}"),
        format!("uid {}", rustix::process::getuid().as_raw()),
    ] {
        assert!(error.contains(&part), "{part:?} not in {error}");
    }
    let connections = server.connections_so_far();
    assert!(
        connections.iter().all(|line| line.starts_with("0 ")),
        "the server was sent {connections:?}"
    );
}

#[test]
fn a_peer_socket_served_by_another_user_is_not_spoken_to() {
    let mut lab = Lab::new("foreignpeer");
    lab.start("a");
    // A peer socket named after a live process with a higher pid than a's: a dials it.
    let mut server = ForeignServer::start(&lab, "peer", false);
    assert!(server.pid() > lab.pid("a"), "pids wrapped around");
    let socket = lab.mesh_dir().join(format!("peer-{}.sock", server.pid()));
    server.move_to(&socket);
    wait_until("a to dial the planted socket", || {
        !server.connections().is_empty()
    });
    let connections = server.connections();
    assert!(
        connections.iter().all(|line| line.starts_with("0 ")),
        "a sent the other user {connections:?}"
    );
    assert_eq!(lab.peers("a"), Vec::<String>::new());
}

#[test]
fn a_coordinator_socket_served_by_another_user_is_not_spoken_to() {
    let mut lab = Lab::hub("foreigncoordinator");
    lab.start("a");
    wait_until("a to coordinate", || {
        lab.status("a")
            .is_some_and(|status| status["role"] == "coordinator")
    });
    let mut server = ForeignServer::start(&lab, "coordinator", false);
    server.move_to(&lab.mesh_dir().join("coordinator.sock"));
    // b cannot take the role (a holds the lock), so it dials whatever listens there.
    lab.start("b");
    wait_until("b to dial the planted socket", || {
        !server.connections().is_empty()
    });
    let connections = server.connections();
    assert!(
        connections.iter().all(|line| line.starts_with("0 ")),
        "b sent the other user {connections:?}"
    );
}

#[test]
fn a_planted_temporary_registry_link_is_not_followed() {
    let mut lab = Lab::new("registrylink");
    let victim = lab_root(&lab).join("victim");
    fs::write(&victim, "precious").expect("victim");
    fs::create_dir_all(lab.mesh_dir()).expect("mesh directory");
    fs::set_permissions(lab.runtime_dir(), fs::Permissions::from_mode(0o700)).expect("chmod");
    fs::set_permissions(lab.mesh_dir(), fs::Permissions::from_mode(0o700)).expect("chmod");
    symlink(&victim, lab.mesh_dir().join("peers.json.tmp")).expect("plant the link");

    lab.start("a");
    assert_eq!(fs::read_to_string(&victim).expect("victim"), "precious");
    let registry = lab.mesh_dir().join("peers.json");
    assert!(
        fs::symlink_metadata(&registry)
            .expect("the registry")
            .is_file()
    );
    lab.stop("a");
    assert_eq!(fs::read_to_string(&victim).expect("victim"), "precious");
}

#[test]
fn a_planted_lock_link_is_not_followed() {
    let lab = Lab::new("locklink");
    let target = lab_root(&lab).join("made-through-the-link");
    fs::create_dir_all(lab.mesh_dir()).expect("mesh directory");
    fs::set_permissions(lab.runtime_dir(), fs::Permissions::from_mode(0o700)).expect("chmod");
    fs::set_permissions(lab.mesh_dir(), fs::Permissions::from_mode(0o700)).expect("chmod");
    symlink(&target, lab.mesh_dir().join("peers.lock")).expect("plant the link");

    let mut daemon = lab
        .rrt()
        .args(["--instance", "a", "daemon", "--no-mdns", "--no-tcp"])
        .arg("--state-dir")
        .arg(lab.state_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a daemon");
    let mut exited = None;
    wait_until("the daemon to refuse the link or follow it", || {
        exited = daemon.try_wait().expect("wait");
        exited.is_some() || target.exists()
    });
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert!(
        !target.exists(),
        "the daemon created a file through the link"
    );
    let mut error = String::new();
    daemon
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut error)
        .expect("stderr");
    assert!(error.contains("peers.lock"), "{error}");
}

#[test]
fn scratch_edit_uses_a_private_file_and_follows_no_planted_link() {
    let mut lab = Lab::new("scratchedit");
    lab.start("a");
    let output = lab.run("a", &["scratch", "append", "notes", "hello"]);
    assert!(output.status.success(), "{output:?}");

    let root = lab_root(&lab);
    let tmp = root.join("tmp");
    fs::create_dir_all(&tmp).expect("temporary directory");
    let victim = root.join("victim");
    fs::write(&victim, "precious").expect("victim");
    let seen = root.join("seen");
    let editor = root.join("editor.sh");
    fs::write(
        &editor,
        format!(
            "#!/bin/sh\nstat -c '%a %n' \"$1\" > '{seen}'\nprintf ' edited' >> \"$1\"\n",
            seen = path_str(&seen)
        ),
    )
    .expect("editor");
    fs::set_permissions(&editor, fs::Permissions::from_mode(0o755)).expect("chmod");

    // The old predictable name, planted for the very process that edits: `exec` keeps the pid.
    let output = Command::new("sh")
        .arg("-c")
        .arg(r#"ln -s "$VICTIM" "$TMPDIR/rrt-scratch-$$-notes.txt" && exec "$@""#)
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_rrt"))
        .arg("--runtime-dir")
        .arg(lab.runtime_dir())
        .args(["--instance", "a", "scratch", "edit", "notes"])
        .env("VICTIM", &victim)
        .env("TMPDIR", &tmp)
        .env("EDITOR", &editor)
        .output()
        .expect("rrt scratch edit");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(fs::read_to_string(&victim).expect("victim"), "precious");
    let seen = fs::read_to_string(&seen).expect("the editor ran");
    let (mode, file) = seen.trim_end().split_once(' ').expect("mode and name");
    assert_eq!(mode, "600", "the file handed to the editor: {seen}");
    assert!(file.ends_with(".txt"), "{file}");
    assert!(!Path::new(file).exists(), "{file} was left behind");
    assert_eq!(lab.cat("a", "notes").as_deref(), Some("hello edited"));
    // Only the planted link is left in the temporary directory.
    let left: Vec<_> = fs::read_dir(&tmp)
        .expect("temporary directory")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
}
