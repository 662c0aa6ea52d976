//! Talk to a running rrt daemon: the control protocol's typed requests and answers, and a
//! client that speaks it — blocking ([`Client`]) or async ([`AsyncClient`], tokio). The `rrt`
//! command line and TUI use nothing else; an editor plugin or a script's helper can do the same.
//!
//! The protocol is JSON lines on the daemon's Unix socket (`control-<pid>.sock` in the mesh
//! directory, served to its own user only): a request per line, each answered in order by
//! `{"ok": …}` or `{"error": {"kind": …, "message": …}}`. `docs/CONTROL.md` in the repository
//! is its reference; [`PROTOCOL_VERSION`] says which one this crate speaks, and a daemon too old
//! to know a request answers [`ErrorKind::UnknownRequest`] rather than guessing.
//!
//! ```no_run
//! use rrt_control::{Client, Mesh};
//!
//! # fn main() -> Result<(), rrt_control::ControlError> {
//! // The daemon of mesh "default" under $XDG_RUNTIME_DIR/rrt (any of them: no instance named).
//! let mut client = Client::connect(&Mesh::new("default", None), None)?;
//! println!("protocol {}", client.version()?.protocol);
//! client.copy("shared with every device".to_owned())?;
//! for entry in client.history()? {
//!     println!("{}{}", if entry.pinned { "📌 " } else { "" }, entry.entry.text);
//! }
//! # Ok(()) }
//! ```

mod answer;
mod async_client;
mod calls;
mod client;
mod error;
mod locate;
mod request;
pub mod upload;

pub use answer::{
    Answer, ClipboardEvent, DocumentEditors, DocumentText, DocumentUpdate, Editor, ErrorKind,
    HistoryEntry, PeerTraffic, RawHeader, Refusal, ReplicaEvent, StateSnapshot, Status, Version,
};
pub use async_client::{AsyncClient, AsyncEvents, ReplicaEdits, ReplicaUpdates};
pub use client::{Client, Events};
pub use error::ControlError;
pub use locate::Mesh;
pub use request::{Item, OPS, PROTOCOL_VERSION, Request};
/// The types answers are made of.
pub use rrt_mesh;
/// The clipboard's and documents' types answers are made of.
pub use rrt_sync;

/// The README's example, compiled with the docs.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
