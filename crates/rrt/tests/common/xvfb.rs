//! Virtual X servers for the system clipboard tests, and `xclip` to act as a user's program.

use std::{
    io::Write,
    path::Path,
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
};

use super::wait_until;

/// Display numbers handed out in this process, above any a developer's desktop uses.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// An `Xvfb` server, killed on drop.
pub struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    pub fn start() -> Self {
        loop {
            let number = 200 + (std::process::id() % 500) * 8 + NEXT.fetch_add(1, Ordering::SeqCst);
            if Path::new(&format!("/tmp/.X{number}-lock")).exists() {
                continue;
            }
            if let Some(server) = Self::serve(&format!(":{number}")) {
                return server;
            }
        }
    }

    /// An Xvfb on `display`, once it listens; `None` if it exited instead.
    fn serve(display: &str) -> Option<Self> {
        let child = Command::new("Xvfb")
            .arg(display)
            .args(["-nolisten", "tcp", "-screen", "0", "64x64x24"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb (apt-get install xvfb)");
        let socket = format!("/tmp/.X11-unix/X{}", &display[1..]);
        let mut server = Self {
            child,
            display: display.to_owned(),
        };
        wait_until(&format!("Xvfb {display} to listen"), || {
            Path::new(&socket).exists() || server.child.try_wait().ok().flatten().is_some()
        });
        server
            .child
            .try_wait()
            .ok()
            .flatten()
            .is_none()
            .then_some(server)
    }

    /// Stops this server and starts a new one on the same display, as after a desktop restart.
    pub fn restart(&mut self) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("a pid");
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let _ = self.child.wait();
        let display = self.display.clone();
        wait_until("the old server to clean up", || {
            !Path::new(&format!("/tmp/.X{}-lock", &display[1..])).exists()
        });
        // The old child is reaped, so dropping it signals nothing.
        *self = Self::serve(&display).expect("a new server on the same display");
    }

    pub fn display(&self) -> &str {
        &self.display
    }

    /// Copies `text` as a user's program would: `xclip` owns the clipboard until replaced.
    pub fn copy(&self, text: &str) {
        let mut xclip = Command::new("xclip")
            .args(["-selection", "clipboard", "-i"])
            .env("DISPLAY", &self.display)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("xclip (apt-get install xclip)");
        xclip
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write to xclip");
        // xclip forks a child that serves the selection; the parent exits once it owns it.
        assert!(xclip.wait().expect("xclip").success());
    }

    /// What a program pasting now would get.
    pub fn paste(&self) -> Option<String> {
        let output = Command::new("xclip")
            .args(["-selection", "clipboard", "-o"])
            .env("DISPLAY", &self.display)
            .stderr(Stdio::null())
            .output()
            .expect("xclip");
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
