//! End to end: the daemon's control socket under clients that misbehave — more of them than it
//! has file descriptors — and the join secret file it refuses when others may read it.

mod common;

use std::{
    io::{Read, Write},
    os::unix::{fs::PermissionsExt, net::UnixStream},
    path::PathBuf,
    process::Stdio,
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
fn a_secret_file_others_may_read_is_refused() {
    let mut lab = Lab::new("secretmode");
    let secret = lab.state_dir().with_file_name("secret");
    common::write_secret(&secret, "a join secret long enough to count");
    for mode in [0o644, 0o640, 0o604] {
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(mode)).expect("chmod");
        let mut daemon = lab
            .rrt()
            .args(["--instance", "a", "daemon", "--state-dir"])
            .arg(lab.state_dir())
            .args(["--no-mdns", "--listen", "127.0.0.1:0", "--secret-file"])
            .arg(&secret)
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
                panic!("the daemon runs with a secret file of mode {mode:04o}");
            }
            thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        daemon
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut stderr)
            .expect("read stderr");
        assert!(!status.success(), "{stderr}");
        for needed in [path_str(&secret), &format!("{mode:04o}"), "chmod 600"] {
            assert!(stderr.contains(needed), "{needed:?} not in {stderr}");
        }
    }
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    lab.start_with(
        "a",
        &[
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--secret-file".to_owned(),
            path_str(&secret).to_owned(),
        ],
    );
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
