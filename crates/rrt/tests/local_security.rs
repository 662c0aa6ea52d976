//! End to end: no one in uninvited on the same host. Another user plants sockets, directories and
//! symbolic links where a daemon or a command of ours would use them; nothing of ours may reach
//! them, and nothing of ours may be overwritten.

mod common;

use std::{
    fs,
    io::Read,
    os::unix::fs::{PermissionsExt, symlink},
    path::PathBuf,
    process::Stdio,
};

use common::{Lab, wait_until};

fn lab_root(lab: &Lab) -> PathBuf {
    lab.runtime_dir()
        .parent()
        .expect("the lab's root")
        .to_owned()
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
