//! End to end: `rrt service` writes a systemd user unit that systemd itself accepts
//! (`systemd-analyze --user verify`), installs it where the user manager looks, and removes it.
//! Starting it for real needs a running user manager, which this test machine has not (no
//! systemd as PID 1): there `install` must say the unit is written but not started.

mod common;

use std::{fs, os::unix::fs::PermissionsExt, process::Command};

use common::Lab;

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    let lab = Lab::new("service-verify");
    let printed = lab
        .rrt()
        .args(["--mesh", "home", "service", "install", "--print"])
        .output()
        .expect("rrt");
    assert!(printed.status.success(), "{printed:?}");
    let dir = lab.dir("unit");
    let unit = dir.join("rrt.service");
    fs::write(&unit, &printed.stdout).expect("unit written");
    let unit_text = String::from_utf8_lossy(&printed.stdout);
    let exec = unit_text
        .lines()
        .find(|line| line.starts_with("ExecStart="))
        .expect("ExecStart");
    assert!(
        exec.contains("\"--mesh\" \"home\"") && exec.ends_with(" \"daemon\""),
        "{exec}"
    );
    // systemd-analyze wants a runtime directory of the user's own.
    let runtime = lab.dir("xdg-runtime");
    fs::set_permissions(&runtime, fs::Permissions::from_mode(0o700)).expect("chmod");
    let verified = Command::new("systemd-analyze")
        .args(["--user", "verify"])
        .arg(&unit)
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .expect("systemd-analyze");
    assert!(
        verified.status.success() && verified.stderr.is_empty(),
        "systemd-analyze: {}",
        String::from_utf8_lossy(&verified.stderr)
    );
}

#[test]
fn install_puts_the_unit_where_the_user_manager_looks_and_uninstall_removes_it() {
    let lab = Lab::new("service-install");
    let unit = lab.config_home().join("systemd/user/rrt.service");
    let installed = lab
        .rrt()
        .args(["service", "install"])
        .output()
        .expect("rrt");
    let said = String::from_utf8_lossy(&installed.stderr);
    let printed = lab
        .rrt()
        .args(["service", "install", "--print"])
        .output()
        .expect("rrt");
    assert_eq!(fs::read(&unit).expect("installed"), printed.stdout);
    // Started where a user manager runs; here, none does, and install says so.
    let manager = Command::new("systemctl")
        .args(["--user", "is-system-running"])
        .output()
        .is_ok_and(|ran| !ran.stdout.is_empty());
    if !manager {
        assert!(!installed.status.success());
        assert!(
            said.contains("installed but could not be started"),
            "{said}"
        );
    }
    let status = lab.rrt().args(["service", "status"]).output().expect("rrt");
    assert!(String::from_utf8_lossy(&status.stdout).starts_with("installed: "));
    let removed = lab
        .rrt()
        .args(["service", "uninstall"])
        .output()
        .expect("rrt");
    assert!(removed.status.success(), "{removed:?}");
    assert!(!unit.exists());
}
