//! End to end: the daemon's control socket under clients that misbehave — more of them than it
//! has file descriptors, requests that stall half-sent, requests too large to hold together —
//! and the join secret file it refuses when others may read it.

mod common;

use std::{
    io::{BufRead, BufReader, Read, Write},
    os::unix::{fs::PermissionsExt, net::UnixStream},
    path::PathBuf,
    sync::Arc,
    thread,
    time::{Duration, Instant},
};

use common::{DEADLINE, Lab, path_str, wait_until};
use rustix::process::{Pid, Resource, Rlimit, prlimit};

#[test]
fn out_of_descriptors_the_control_socket_waits_instead_of_spinning() {
    let mut lab = Lab::new("nofile");
    lab.start("a");
    let pid = lab.pid("a");
    // Lowered once it runs: at start the daemon raises its soft limit to the hard one.
    let limit = open_descriptors(pid).len() as u64 + 16;
    let rlimit = Rlimit {
        current: Some(limit),
        maximum: Some(limit),
    };
    let daemon = Pid::from_raw(pid as i32).expect("a pid");
    prlimit(Some(daemon), Resource::Nofile, rlimit).expect("prlimit");
    let lines_before = lab.log("a").lines().count();

    // Watch streams hold their connections (nothing cuts a stream for silence); the few beyond
    // the limit wait in the listen queue, which is what keeps `accept` failing.
    let socket = control_socket(&lab, "a");
    let held: Vec<UnixStream> = (0..limit + 4)
        .map(|_| {
            let mut stream = UnixStream::connect(&socket).expect("connect");
            stream.write_all(b"{\"op\":\"watch\"}\n").expect("watch");
            stream
        })
        .collect();
    let full = || descriptors_below(pid, limit) == limit;
    wait_until("a to use every descriptor it may", full);

    let cpu_before = cpu_time(pid);
    let start = Instant::now();
    keeps_holding(Duration::from_secs(3), "a to stay out of descriptors", full);
    let spent = cpu_time(pid) - cpu_before;
    let elapsed = start.elapsed();
    assert!(
        spent < elapsed / 5,
        "a spent {spent:?} of CPU in {elapsed:?} while out of descriptors"
    );
    let logged = lab.log("a").lines().count() - lines_before;
    assert!(
        logged <= 2,
        "{logged} log lines while out of descriptors:\n{}",
        lab.log("a")
    );

    drop(held);
    lab.copy("a", "after the flood");
    assert_eq!(lab.paste("a").as_deref(), Some("after the flood"));
    let logged = lab.log("a").lines().count() - lines_before;
    assert!(logged <= 4, "{logged} log lines for one episode");
}

#[test]
fn a_stalled_request_is_cut_after_the_idle_deadline_and_nothing_else_is() {
    let mut lab = Lab::new("stalled");
    lab.start("a");
    let socket = control_socket(&lab, "a");
    let watch = lab.watch("a");
    // A client between requests, as the TUI keeps one for its edits.
    let mut between = BufReader::new(UnixStream::connect(&socket).expect("connect"));
    assert!(ask(&mut between, r#"{"op":"status"}"#).get("ok").is_some());
    // A request this daemon does not know is answered as such, and the connection goes on.
    let unknown = ask(&mut between, r#"{"op":"teleport"}"#);
    assert_eq!(unknown["error"]["kind"], "unknown_request", "{unknown}");
    let malformed = ask(&mut between, r#"{"op":"copy"}"#);
    assert_eq!(malformed["error"]["kind"], "bad_request", "{malformed}");
    let version = ask(&mut between, r#"{"op":"version"}"#);
    assert_eq!(
        version["ok"]["protocol"],
        rrt_control::PROTOCOL_VERSION,
        "{version}"
    );
    let mut half = UnixStream::connect(&socket).expect("connect");
    half.write_all(br#"{"op":"paste""#).expect("half a request");
    let silent = UnixStream::connect(&socket).expect("connect");

    for (what, stream) in [("half a request", half), ("nothing", silent)] {
        let answer = read_until_closed(stream, what);
        let answer: serde_json::Value = serde_json::from_slice(&answer)
            .unwrap_or_else(|error| panic!("a JSON answer to {what}: {error}"));
        assert_eq!(answer["error"]["kind"], "refused", "{what}: {answer}");
    }
    // The deadline has passed for the others too, and they were not cut.
    assert!(ask(&mut between, r#"{"op":"status"}"#).get("ok").is_some());
    lab.copy("a", "after the deadline");
    while watch.next()["text"] != "after the deadline" {}
}

#[test]
fn large_unfinished_requests_share_one_memory_budget() {
    /// The daemon's budget for requests being read and answered, and what else may come with
    /// them (allocator slack, the copy a growing buffer makes).
    const BUDGET_KIB: u64 = 128 * 1024;
    const MARGIN_KIB: u64 = 64 * 1024;
    let mut lab = Lab::new("budget");
    lab.start("a");
    let pid = lab.pid("a");
    let before = status_kib(pid, "VmRSS");
    let socket = control_socket(&lab, "a");
    // Six clients each send 60 MB of a copy and stop short of its end; at most two fit the
    // budget, and those are cut at the idle deadline.
    let mut line = br#"{"op":"copy","text":""#.to_vec();
    line.resize(60_000_000, b'x');
    let line = Arc::new(line);
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let (socket, line) = (socket.clone(), Arc::clone(&line));
            thread::spawn(move || {
                let mut stream = UnixStream::connect(&socket).expect("connect");
                // A refused client may find the connection closed before it has sent it all.
                let _ = stream.write_all(&line);
                stream
            })
        })
        .collect();
    lab.copy("a", "small and whole");
    assert_eq!(lab.paste("a").as_deref(), Some("small and whole"));
    let clients: Vec<UnixStream> = clients
        .into_iter()
        .map(|client| client.join().expect("a client"))
        .collect();
    let peak = status_kib(pid, "VmHWM");
    assert!(
        peak < before + BUDGET_KIB + MARGIN_KIB,
        "a peaked at {peak} KiB from {before} KiB"
    );
    for client in clients {
        let answer = read_until_closed(client, "60 MB of a request");
        let answer: serde_json::Value = serde_json::from_slice(&answer).expect("a JSON answer");
        assert_eq!(answer["error"]["kind"], "refused", "{answer}");
    }
    lab.copy("a", "after the flood");
    assert_eq!(lab.paste("a").as_deref(), Some("after the flood"));
}

#[test]
fn a_request_refused_while_it_is_sent_reports_the_daemons_reason() {
    let mut lab = Lab::new("refusedmidway");
    lab.start("a");
    // Over the longest request: the daemon stops reading, answers why and closes, while the
    // command is still sending.
    let output = lab.copy_stdin("a", &vec![b'x'; 70_000_000]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("a request over"), "{stderr}");
}

#[test]
fn a_secret_file_others_may_read_is_refused() {
    let mut lab = Lab::new("secretmode");
    let secret = lab.state_dir().with_file_name("secret");
    common::write_secret(&secret, "a join secret long enough to count");
    for mode in [0o644, 0o640, 0o604] {
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(mode)).expect("chmod");
        let stderr = lab.start_refused(
            "a",
            &[
                "--listen".to_owned(),
                "127.0.0.1:0".to_owned(),
                "--secret-file".to_owned(),
                path_str(&secret).to_owned(),
            ],
        );
        for needed in [path_str(&secret), &format!("{mode:04o}"), "chmod 600"] {
            assert!(stderr.contains(needed), "{needed:?} not in {stderr}");
        }
    }
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let args = [
        "--listen".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--secret-file".to_owned(),
        path_str(&secret).to_owned(),
    ];
    // Private, but another user's: theirs to read and to change.
    std::os::unix::fs::chown(&secret, Some(4242), None).expect("chown");
    let stderr = lab.start_refused("a", &args);
    assert!(stderr.contains("4242"), "{stderr}");
    std::os::unix::fs::chown(&secret, Some(rustix::process::getuid().as_raw()), None)
        .expect("chown back");
    lab.start_with("a", &args);
}

fn control_socket(lab: &Lab, name: &str) -> PathBuf {
    lab.mesh_dir()
        .join(format!("control-{}.sock", lab.pid(name)))
}

/// Checks `condition` through `period`, failing the test as soon as it does not hold.
fn keeps_holding(period: Duration, what: &str, condition: impl Fn() -> bool) {
    let end = Instant::now() + period;
    while Instant::now() < end {
        assert!(condition(), "{what}");
        thread::sleep(Duration::from_millis(100));
    }
}

fn open_descriptors(pid: u32) -> Vec<u64> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc/<pid>/fd")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// How many of the descriptor numbers a process may use (those under its limit) are taken.
fn descriptors_below(pid: u32, limit: u64) -> u64 {
    open_descriptors(pid)
        .into_iter()
        .filter(|fd| *fd < limit)
        .count() as u64
}

/// User and system CPU time of a process so far.
fn cpu_time(pid: u32) -> Duration {
    /// `/proc` counts in USER_HZ, which is 100 on every Linux.
    const TICKS_PER_SECOND: u64 = 100;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/<pid>/stat");
    // Fields 14 and 15 (utime, stime), counted after the command name, which may hold spaces.
    let after_name = &stat[stat.rfind(')').expect("a command name") + 2..];
    let fields: Vec<u64> = after_name
        .split(' ')
        .skip(11)
        .take(2)
        .map(|field| field.parse().expect("a number"))
        .collect();
    Duration::from_millis((fields[0] + fields[1]) * 1000 / TICKS_PER_SECOND)
}

/// Sends one request line and reads its answer.
fn ask(connection: &mut BufReader<UnixStream>, request: &str) -> serde_json::Value {
    let stream = connection.get_mut();
    stream.write_all(request.as_bytes()).expect("send");
    stream.write_all(b"\n").expect("send");
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut answer = String::new();
    connection.read_line(&mut answer).expect("an answer");
    serde_json::from_str(&answer).expect("a JSON answer")
}

/// Everything the daemon sends until it closes the connection (an end with unread bytes on its
/// side is a reset here), failing the test if it does not within a generous deadline.
fn read_until_closed(mut stream: UnixStream, what: &str) -> Vec<u8> {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut answer = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return answer,
            Ok(read) => answer.extend_from_slice(&buffer[..read]),
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => return answer,
            Err(error) => panic!("the daemon did not close a client that sent {what}: {error}"),
        }
    }
}

/// A `VmRSS`-like line of `/proc/<pid>/status`, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/<pid>/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}
