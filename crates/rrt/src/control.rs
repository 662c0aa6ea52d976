//! The control protocol between `rrt` commands and a running daemon: JSON requests, one per line,
//! on the daemon's `control-<pid>.sock`, each answered in order by one JSON line, until the client
//! closes or asks for a stream (`watch`: a line per change, until either side goes away). Plain
//! enough to use with `socat`:
//!
//! ```text
//! echo '{"op":"paste"}' | socat - UNIX-CONNECT:$XDG_RUNTIME_DIR/rrt/default/control-1234.sock
//! ```
//!
//! Three requests carry raw bytes besides their line: `copy_content` is followed by each item's
//! bytes in length-prefixed chunks (`upload`), and `paste_type` and `blob` are answered by a
//! header line (`{"ok":{"mime":…,"size":N}}`) followed by exactly N raw bytes
//! (`content_requests`).
//!
//! A request must arrive without a pause of 10 s and fit the daemon's budget for requests (see
//! `request_reader`); a stream ends when the client closes its side.

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

/// The longest request line accepted: a clipboard value at the frame limit, JSON-escaped.
pub(crate) const MAX_REQUEST: usize = 64 * 1024 * 1024;

/// What a command asks of the daemon.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Request {
    Peers,
    Status,
    Copy {
        text: String,
    },
    /// Copies a value of any kind: each item's bytes follow the request (see `upload`).
    CopyContent {
        items: Vec<Item>,
    },
    /// Copies files and directories (recursively), by path on the daemon's host.
    CopyFiles {
        paths: Vec<std::path::PathBuf>,
    },
    Paste,
    /// Answers with a header line, then the raw bytes of the current value's representation of
    /// type `mime` (fetched from a peer first if need be).
    PasteType {
        mime: String,
    },
    /// The same for a blob by hash (a file of a copied file list).
    Blob {
        hash: rrt_sync::BlobHash,
        size: u64,
    },
    History,
    /// Copies the history entry with this stamp again, every representation of it.
    CopyAgain {
        stamp: rrt_sync::Stamp,
    },
    /// Pins (`pinned: false`: unpins) the history entry with this stamp.
    Pin {
        stamp: rrt_sync::Stamp,
        pinned: bool,
    },
    Watch,
    ScratchList,
    ScratchCat {
        name: String,
    },
    ScratchAppend {
        name: String,
        text: String,
    },
    /// Makes the text `text`; given `base`, the text the client started from, only what differs
    /// between the two is applied, so edits made meanwhile survive.
    ScratchReplace {
        name: String,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base: Option<String>,
    },
    /// Inserts at a position in UTF-16 code units (into `base`, the text the client saw, when
    /// given); answers with the text after.
    ScratchInsert {
        name: String,
        at: usize,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base: Option<String>,
    },
    /// Deletes UTF-16 code units at a position (into `base`, when given); answers with the text
    /// after.
    ScratchDelete {
        name: String,
        at: usize,
        len: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base: Option<String>,
    },
    ScratchWatch {
        name: String,
    },
    StateList,
    StateSet {
        key: String,
        value: String,
    },
    StateDel {
        key: String,
    },
    StateWatch,
    /// Invites a device to pair: a stream of pairing events (the ticket first), answered by one
    /// `confirm` line once the code is shown.
    Invite {
        ttl_s: u64,
    },
    /// Pairs with the device that made `ticket`: a stream of pairing events, answered by one
    /// `confirm` line once the code is shown.
    Join {
        ticket: String,
    },
    /// The person's answer during `invite` or `join`.
    Confirm {
        accepted: bool,
    },
}

/// The daemon's answer: `{"ok": …}` or `{"error": "…"}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Response {
    Ok(serde_json::Value),
    Error(String),
}

/// One representation of a `copy_content` request; its bytes follow the request.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Item {
    pub(crate) mime: String,
}

/// What a raw answer's line says before the bytes.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RawHeader {
    pub(crate) mime: String,
    pub(crate) size: u64,
}

/// Writes one JSON line (an answer, an event of a stream) and flushes it.
pub(crate) async fn write_line(
    writer: &mut (impl AsyncWriteExt + Unpin),
    value: &impl serde::Serialize,
) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    line.push(b'\n');
    writer.write_all(&line).await?;
    writer.flush().await
}
