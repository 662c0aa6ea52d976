//! rrt's system clipboard adapters: the clipboard of the desktop the daemon runs in follows the
//! mesh, and the mesh follows it.
//!
//! * [`X11Clipboard`]: a [`Worker`](rrt_reactor::Worker) owning the X connection — XFixes change
//!   events (no polling), selection ownership to serve values from the mesh, secrets marked by
//!   password managers left alone.
//! * [`WaylandClipboard`]: the same for Wayland compositors with the wlr data-control protocol,
//!   transfers through pipes in the worker's own poll.
//! * [`osc52`]: the escape sequence that sets a terminal's clipboard, also over SSH.
//! * [`Backend`]: which adapter to use, chosen from the environment or by the user.
//!
//! An adapter publishes [`ClipboardEvent::Copied`] when someone copies text outside rrt and takes
//! [`ClipboardCommand::Set`] for values that came from the mesh. It never reports a value it set
//! itself, so a value from the mesh is not sent back as new.

mod osc52;
mod wayland;
mod x11;

pub use osc52::osc52;
pub use wayland::{WaylandClipboard, WaylandClipboardError};
pub use x11::{X11Clipboard, X11Error};

/// The largest value read from the system clipboard (the mesh's frame limit is 10 MiB).
pub const MAX_TEXT: usize = 10 * 1024 * 1024;

/// What a clipboard adapter saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClipboardEvent {
    /// Someone copied this text in the system clipboard.
    Copied(String),
}

/// What a clipboard adapter is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClipboardCommand {
    /// Make this the system clipboard's value.
    Set(String),
}

/// Which system clipboard to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The Wayland clipboard at `$WAYLAND_DISPLAY` (wlr data-control).
    Wayland,
    /// The X11 `CLIPBOARD` selection at `$DISPLAY`.
    X11,
    /// OSC 52 to the daemon's terminal (setting only: a terminal never says what was copied).
    Osc52,
}

impl Backend {
    /// The backend for this environment: Wayland when `$WAYLAND_DISPLAY` is set, else X11 when
    /// `$DISPLAY` is, else OSC 52 when standard output is a terminal, else none.
    pub fn detect() -> Option<Self> {
        let set = |name: &str| std::env::var_os(name).is_some_and(|value| !value.is_empty());
        if set("WAYLAND_DISPLAY") {
            Some(Self::Wayland)
        } else if set("DISPLAY") {
            Some(Self::X11)
        } else if rustix::termios::isatty(std::io::stdout()) {
            Some(Self::Osc52)
        } else {
            None
        }
    }
}
