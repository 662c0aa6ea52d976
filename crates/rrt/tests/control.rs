//! End to end: the daemon's control socket and start-up under hostile conditions — for now, the
//! join secret file it refuses when others may read it.

mod common;

use std::{
    io::Read,
    os::unix::fs::PermissionsExt,
    process::Stdio,
    thread,
    time::{Duration, Instant},
};

use common::{DEADLINE, Lab, path_str};

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
