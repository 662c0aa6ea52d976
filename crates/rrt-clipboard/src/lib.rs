#![doc = include_str!("../README.md")]
//!
//! # The adapters
//!
//! The clipboard of the desktop the daemon runs in follows the mesh, and the mesh follows it —
//! text, and also what text cannot say: images, rich text, files.
//!
//! * [`X11Clipboard`]: a [`Worker`](rrt_reactor::Worker) owning the X connection — XFixes change
//!   events (no polling), selection ownership to serve values from the mesh, secrets marked by
//!   password managers left alone.
//! * [`WaylandClipboard`]: the same for Wayland compositors with the wlr data-control protocol,
//!   transfers through pipes in the worker's own poll.
//! * [`osc52()`]: the escape sequence that sets a terminal's clipboard, also over SSH.
//! * [`Backend`]: which adapter to use, chosen from the environment or by the user.
//!
//! ```text
//!   desktop programs          adapter (reactor thread)              subscribers (the mesh)
//!   ────────────────          ───────────────────────               ──────────────────────
//!   someone copies ─────────▶ read each wanted type ──Copied{reps}──▶
//!   someone pastes ─────────▶ serve Bytes / File    ◀──Set(offers)───
//!                             Later: ask for it     ───Wanted───────▶
//!                             serve, or refuse      ◀──Provide──────
//! ```
//!
//! # What is read
//!
//! A value someone copies is offered in many types; an adapter reads the few that say something
//! the others do not ([`ClipboardEvent::Copied`], text first): plain text (as [`TEXT`], valid
//! UTF-8 only), `text/html`, `text/uri-list`, `x-special/gnome-copied-files`, and **one** image
//! type — `image/png` if offered, else the first other `image/*`. Programs that copy images make
//! each type on request (a screenshot converted to PNG, then again to JPEG, BMP, TIFF …), so
//! reading every image type would cost the program seconds and the mesh the same picture several
//! times. Each type is read up to [`ReadLimits::max_bytes`]; a larger one is skipped (and logged)
//! while the others are still read. A value a password manager marks as secret is never read.
//!
//! # What is served
//!
//! [`ClipboardCommand::Set`] makes the adapter own the clipboard with a list of [`Offer`]s. Each
//! comes from memory, from a file (read a chunk at a time while a program pastes it, so a large
//! file is never held whole), or [`Source::Later`]: the adapter only announces the type, and when
//! a program pastes it asks its subscribers ([`ClipboardEvent::Wanted`]) and keeps the program
//! waiting — at most 30 s — for [`ClipboardCommand::Provide`]. So the mesh can offer
//! a large value without fetching it until someone really pastes it.
//!
//! An adapter never reports a value it set itself, so a value from the mesh is not sent back as
//! new. Nothing a program or the display server sends can make an adapter panic; a transfer that
//! fails ends alone.

mod later;
mod osc52;
mod read;
mod source;
mod wayland;
mod x11;

use std::{path::PathBuf, sync::Arc};

pub use osc52::osc52;
pub use wayland::{WaylandClipboard, WaylandClipboardError};
pub use x11::{X11Clipboard, X11Error};

/// The MIME type of plain text.
pub const TEXT: &str = "text/plain;charset=utf-8";

/// One representation of a value someone copied: its MIME type and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Representation {
    /// The MIME type ([`TEXT`] for text, whatever type the program offered it as).
    pub mime: String,
    /// The bytes (for [`TEXT`], valid UTF-8).
    pub data: Vec<u8>,
}

/// Where the bytes of an offered representation come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// In memory.
    Bytes(Arc<[u8]>),
    /// A file (read incrementally while serving, never whole into memory). It is opened when a
    /// program asks for it; one that cannot be opened then is refused to that program.
    File(PathBuf),
    /// Not here yet: when a program asks for it the adapter publishes
    /// [`ClipboardEvent::Wanted`] and waits (at most 30 s) for
    /// [`ClipboardCommand::Provide`].
    Later,
}

/// One representation the adapter offers to the desktop's programs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// Its MIME type; [`TEXT`] is also offered under the other names programs ask text by.
    pub mime: String,
    /// Where its bytes come from.
    pub source: Source,
}

/// What a clipboard adapter saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClipboardEvent {
    /// Someone copied outside rrt: every representation read (text first, as [`TEXT`], when
    /// there is text; never empty), and the application it was copied in, when the display
    /// server says: on X11 the class of the owner's window (`WM_CLASS`, its second string —
    /// `Firefox`, `KeePassXC` — from the owner or its nearest ancestor that has one). Wayland
    /// never says which client offers a value (clients are kept apart on purpose), so there
    /// it is `None`.
    Copied {
        /// What was read.
        representations: Vec<Representation>,
        /// The application, if known.
        application: Option<String>,
    },
    /// A program asks for a representation offered as [`Source::Later`]; answer with
    /// [`ClipboardCommand::Provide`] and the same `request`. Programs asking for the same type
    /// while one request is open wait for its answer, and a source provided for it serves every
    /// later paste of that type until the next [`ClipboardCommand::Set`].
    Wanted {
        /// Names this request in [`ClipboardCommand::Provide`]; unique within the process.
        request: u64,
        /// The MIME type asked for, as offered.
        mime: String,
    },
}

/// What a clipboard adapter is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClipboardCommand {
    /// Own the clipboard with these representations (in order of preference). Requests still
    /// waiting for a [`Source::Later`] of the previous value are refused. Offers no display
    /// server would take are left out, with a log line: a MIME type empty, over 255 bytes or not
    /// printable ASCII, a type offered again, offers past the 64th.
    Set(Vec<Offer>),
    /// The bytes for a [`ClipboardEvent::Wanted`] request; `None` when they cannot be had (the
    /// program's request is refused at once). An unknown, expired or cancelled request is
    /// ignored.
    Provide {
        /// The `request` of the [`ClipboardEvent::Wanted`] answered.
        request: u64,
        /// Where the bytes are (a [`Source::Later`] here counts as `None`).
        source: Option<Source>,
    },
}

/// What the adapters read when someone copies.
#[derive(Debug, Clone)]
pub struct ReadLimits {
    /// The largest representation read (bigger ones are skipped, with a log line).
    pub max_bytes: usize,
}

impl Default for ReadLimits {
    /// 64 MiB: a large screenshot as PNG, well past any text.
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024 * 1024,
        }
    }
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
