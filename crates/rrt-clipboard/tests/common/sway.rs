//! Headless Wayland compositors (sway), and wl-clipboard's `wl-copy` / `wl-paste` to act as a
//! user's programs. sway refuses to run as root, so it runs as `nobody` in a directory of its own;
//! root's clients reach its socket by path.

use std::{
    os::unix::fs::{PermissionsExt, chown},
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
};

use super::{Running, run, wait_until};

/// A headless sway, killed (and its directory removed) on drop.
pub struct Sway {
    child: Child,
    dir: PathBuf,
}

/// The `nobody` user and group.
const NOBODY: u32 = 65534;

impl Sway {
    pub fn start(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("rrt-clipboard-sway-{name}-{}", std::process::id()));
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

    /// Copies `data` as `mime`, as a user's program would (`wl-copy` forks a child that serves
    /// it until replaced).
    pub fn copy(&self, mime: &str, data: Vec<u8>) {
        let mut command = self.command("wl-copy");
        command.args(["--type", mime]);
        let copied = Running::spawn_quiet(&mut command, Some(data));
        assert!(copied.finish().status.success(), "wl-copy");
    }

    fn paste_command(&self, mime: Option<&str>) -> Command {
        let mut command = self.command("wl-paste");
        command.arg("--no-newline");
        if let Some(mime) = mime {
            command.args(["--type", mime]);
        }
        command
    }

    /// What a program pasting `mime` (or text) now would get.
    pub fn paste(&self, mime: Option<&str>) -> Output {
        run(&mut self.paste_command(mime), None)
    }

    /// Starts pasting `mime`, for a paste that waits.
    pub fn start_paste(&self, mime: &str) -> Running {
        Running::spawn(&mut self.paste_command(Some(mime)), None)
    }

    /// The types the clipboard offers now.
    pub fn types(&self) -> Vec<String> {
        let output = run(self.command("wl-paste").arg("--list-types"), None);
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Sway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
