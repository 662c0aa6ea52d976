//! End to end: `rrt service` writes a systemd user unit that systemd itself accepts
//! (`systemd-analyze --user verify`), installs it where the user manager looks, and removes it;
//! and a real user manager (`systemd --user`, of the test's own) starts the unit, restarts the
//! daemon when it dies, reloads it and stops it.

mod common;

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::PathBuf,
    process::{Child, Command, Stdio},
};

use common::{Lab, wait_until};

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
        assert!(!installed.status.success(), "not started: {said}");
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

/// A user manager of the test's own: `systemd --user` in a private mount namespace whose `/run`
/// is a fresh tmpfs that says the system was booted with systemd (`/run/systemd/system`) — the
/// test machine's PID 1 is not systemd, and a user manager does not run without it. Its units
/// are under `config_home`; stopped with the test.
struct UserManager {
    manager: Child,
    config_home: PathBuf,
}

/// The user manager's runtime directory, inside its namespace.
const MANAGER_RUNTIME: &str = "/run/user/0";

impl UserManager {
    fn start(config_home: PathBuf) -> Self {
        let setup = format!(
            "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/system {MANAGER_RUNTIME} \
             && chmod 700 {MANAGER_RUNTIME} && exec /lib/systemd/systemd --user"
        );
        let manager = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &setup])
            .env("XDG_RUNTIME_DIR", MANAGER_RUNTIME)
            .env("XDG_CONFIG_HOME", &config_home)
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("unshare");
        let manager = Self {
            manager,
            config_home,
        };
        wait_until("the user manager to run", || {
            let state = manager
                .command("systemctl")
                .args(["--user", "is-system-running"])
                .output()
                .expect("systemctl");
            String::from_utf8_lossy(&state.stdout).trim() == "running"
        });
        manager
    }

    /// `program`, run in the manager's namespace and session.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg("--target")
            .arg(self.manager.id().to_string())
            .args(["--mount", "--", "env"])
            .arg(format!("XDG_RUNTIME_DIR={MANAGER_RUNTIME}"))
            .arg(format!("XDG_CONFIG_HOME={}", self.config_home.display()))
            .arg(program);
        command
    }

    fn systemctl(&self, args: &[&str]) {
        let done = self
            .command("systemctl")
            .arg("--user")
            .args(args)
            .output()
            .expect("systemctl");
        assert!(done.status.success(), "systemctl {args:?}: {done:?}");
    }
}

impl Drop for UserManager {
    fn drop(&mut self) {
        // SIGTERM: the manager stops its units, then exits (its namespace with it).
        let _ = Command::new("kill")
            .arg(self.manager.id().to_string())
            .status();
        let _ = self.manager.wait();
    }
}

fn daemon_pid(lab: &Lab) -> Option<u64> {
    lab.status("svc")?["pid"].as_u64()
}

#[test]
fn a_user_manager_starts_the_unit_restarts_a_dead_daemon_reloads_it_and_stops_it() {
    let lab = Lab::new("service-real");
    // The daemon the unit runs reads this lab's config file: nothing that leaves the machine.
    let config = lab.config_home().join("rrt");
    fs::create_dir_all(&config).expect("config dir");
    let settings = "no-tcp = true\nno-mdns = true\nsystem-clipboard = \"off\"\n";
    fs::write(
        config.join("config.toml"),
        format!("{settings}never-share = [\"off\"]\n"),
    )
    .expect("config");
    let manager = UserManager::start(lab.config_home());
    let installed = manager
        .command(env!("CARGO_BIN_EXE_rrt"))
        .arg("--runtime-dir")
        .arg(lab.runtime_dir())
        .arg("--state-dir")
        .arg(lab.state_dir())
        .args(["--instance", "svc", "service", "install"])
        .output()
        .expect("rrt");
    assert!(installed.status.success(), "{installed:?}");
    wait_until("the service's daemon to answer", || {
        daemon_pid(&lab).is_some()
    });

    // Killed, it is started again (Restart=on-failure).
    let first = daemon_pid(&lab).expect("running");
    Command::new("kill")
        .args(["-KILL", &first.to_string()])
        .status()
        .expect("kill");
    wait_until("the service's daemon to be started again", || {
        daemon_pid(&lab).is_some_and(|pid| pid != first)
    });

    // `systemctl --user reload` has it read its config file again.
    let card = "4111 1111 1111 1111";
    assert!(lab.copy_stdin("svc", card.as_bytes()).status.success());
    fs::write(
        config.join("config.toml"),
        format!("{settings}never-share = [\"card-numbers\"]\n"),
    )
    .expect("config");
    let before = daemon_pid(&lab);
    manager.systemctl(&["reload", "rrt.service"]);
    wait_until("the reloaded rules to refuse a card number", || {
        !lab.copy_stdin("svc", b"5500-0000-0000-0004")
            .status
            .success()
    });
    assert_eq!(daemon_pid(&lab), before, "reloaded, not restarted");

    manager.systemctl(&["stop", "rrt.service"]);
    wait_until("the daemon to be gone", || daemon_pid(&lab).is_none());
    let uninstalled = manager
        .command(env!("CARGO_BIN_EXE_rrt"))
        .args(["service", "uninstall"])
        .output()
        .expect("rrt");
    assert!(uninstalled.status.success(), "{uninstalled:?}");
    assert!(!lab.config_home().join("systemd/user/rrt.service").exists());
}
