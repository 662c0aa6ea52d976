//! Headless Wayland compositors (sway) for the system clipboard tests, and wl-clipboard's
//! `wl-copy` / `wl-paste` to act as a user's programs. sway refuses to run as root, so it runs as
//! `nobody` in a directory of its own; root's clients reach its socket by path.

use std::{
    io::Write,
    os::unix::fs::{PermissionsExt, chown},
    path::PathBuf,
    process::{Child, Command, Stdio},
};

use super::wait_until;

/// A headless sway, killed (and its directory removed) on drop.
pub struct Sway {
    child: Child,
    dir: PathBuf,
}

/// The `nobody` user and group.
const NOBODY: u32 = 65534;

impl Sway {
    pub fn start(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("rrt-sway-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("sway's directory");
        chown(&dir, Some(NOBODY), Some(NOBODY)).expect("chown");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let child = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .args(["sway", "-c", "/dev/null"])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", &dir)
            .env("XDG_RUNTIME_DIR", &dir)
            .env("WLR_BACKENDS", "headless")
            .env("WLR_LIBINPUT_NO_DEVICES", "1")
            .env("WLR_RENDERER", "pixman")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sway (apt-get install sway)");
        let sway = Self { child, dir };
        wait_until("sway to listen", || sway.socket().exists());
        sway
    }

    /// The compositor's socket, for `WAYLAND_DISPLAY`.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("wayland-1")
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .env("WAYLAND_DISPLAY", self.socket())
            .env_remove("DISPLAY");
        command
    }

    /// Copies `text` (as `mime`, or text) as a user's program would.
    pub fn copy(&self, text: &str, mime: Option<&str>) {
        let mut command = self.command("wl-copy");
        if let Some(mime) = mime {
            command.args(["--type", mime]);
        }
        let status = command
            .arg("--")
            .arg(text)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("wl-copy (apt-get install wl-clipboard)");
        assert!(status.success());
    }

    /// Copies `bytes` as type `mime`, from standard input, as `wl-copy --type` does.
    pub fn copy_type(&self, mime: &str, bytes: &[u8]) {
        let mut wl_copy = self
            .command("wl-copy")
            .args(["--type", mime])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("wl-copy (apt-get install wl-clipboard)");
        wl_copy
            .stdin
            .take()
            .expect("stdin")
            .write_all(bytes)
            .expect("write to wl-copy");
        // wl-copy forks a child that serves the value; the parent exits once it is offered.
        assert!(wl_copy.wait().expect("wl-copy").success());
    }

    /// What a program pasting type `mime` now would get (`None`: not offered). Fails the test
    /// if the paste has not ended within the deadline.
    pub fn paste_type(&self, mime: &str) -> Option<Vec<u8>> {
        let output =
            super::output_within(
                self.command("wl-paste")
                    .args(["--no-newline", "--type", mime]),
            );
        output.status.success().then_some(output.stdout)
    }

    /// The types the clipboard offers now (`wl-paste --list-types`).
    pub fn list_types(&self) -> Vec<String> {
        let output = super::output_within(self.command("wl-paste").arg("--list-types"));
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// What a program pasting now would get.
    pub fn paste(&self) -> Option<String> {
        let output = self
            .command("wl-paste")
            .arg("--no-newline")
            .stderr(Stdio::null())
            .output()
            .expect("wl-paste");
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

impl Drop for Sway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
