//! What a client asks: one JSON object per line, `{"op": "<name>", …fields}`.
//!
//! The daemon reads a line in two steps so that a client learns *why* it was not understood: an
//! `op` it does not know is [`ErrorKind::UnknownRequest`] (a newer client, an older daemon), a
//! known `op` with missing or mistyped fields is [`ErrorKind::BadRequest`].

use std::path::PathBuf;

use rrt_sync::{BlobHash, Stamp};
use serde::{Deserialize, Serialize};

use crate::answer::{ErrorKind, Refusal};

/// The version of the control protocol this crate speaks: answered by [`Request::Version`], and
/// raised when a request or answer changes in a way an older peer would misread.
pub const PROTOCOL_VERSION: u32 = 3;

/// A request. Each is answered by one line (`{"ok": …}` or `{"error": …}`), except the streams
/// (`watch`, `scratch_watch`, `state_watch`, `open`, `invite`, `join`), which answer with a line
/// per event until either side closes, and the raw ones (`paste_type`, `blob`: a header line,
/// then the bytes; `copy_content`: the bytes follow the request). CONTROL.md has every answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The protocol version and the daemon's.
    Version,
    /// The mesh as the daemon sees it.
    Peers,
    /// What the daemon is.
    Status,
    /// Copies a text.
    Copy {
        /// The text.
        text: String,
    },
    /// Copies a value of any kind: each item's bytes follow the request (see
    /// [`crate::upload`]).
    CopyContent {
        /// One per representation, in the order their bytes follow.
        items: Vec<Item>,
    },
    /// Copies files and directories (recursively), by path on the daemon's host.
    CopyFiles {
        /// The paths.
        paths: Vec<PathBuf>,
    },
    /// The current value.
    Paste,
    /// Where the current value came from: who copied it, where and how, and which peer passed
    /// it on.
    Why,
    /// A header line, then the raw bytes of the current value's representation of type `mime`
    /// (fetched from a peer first if need be).
    PasteType {
        /// The MIME type.
        mime: String,
    },
    /// The same for a blob by hash (a file of a copied file list).
    Blob {
        /// Its BLAKE3 hash.
        hash: BlobHash,
        /// Its size.
        size: u64,
    },
    /// The history, newest first.
    History,
    /// Copies the history entry with this stamp again, every representation of it.
    CopyAgain {
        /// The entry's stamp.
        stamp: Stamp,
    },
    /// Pins (`pinned: false`: unpins) the history entry with this stamp.
    Pin {
        /// The entry's stamp.
        stamp: Stamp,
        /// Pin or unpin.
        pinned: bool,
    },
    /// A stream: the current value, then every change.
    Watch,
    /// Reads this device's clipboard pauses from its trust store again (`rrt trust pause`
    /// changed them) and applies them; answered with the pauses in effect.
    ReadPauses,
    /// The documents' names.
    ScratchList,
    /// A document's text.
    ScratchCat {
        /// The document.
        name: String,
    },
    /// Appends to a document, creating it if new.
    ScratchAppend {
        /// The document.
        name: String,
        /// The text.
        text: String,
    },
    /// Makes the text `text`; given `base`, the text the client started from, only what differs
    /// between the two is applied, so edits made meanwhile survive.
    ScratchReplace {
        /// The document.
        name: String,
        /// The new text.
        text: String,
        /// The text the client started from.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base: Option<String>,
    },
    /// Inserts at a position in UTF-16 code units (into `base`, the text the client saw, when
    /// given); answers with the text after.
    ScratchInsert {
        /// The document.
        name: String,
        /// Where, in UTF-16 code units.
        at: usize,
        /// What.
        text: String,
        /// The text the client saw.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base: Option<String>,
    },
    /// Deletes UTF-16 code units at a position (into `base`, when given); answers with the text
    /// after.
    ScratchDelete {
        /// The document.
        name: String,
        /// Where, in UTF-16 code units.
        at: usize,
        /// How many UTF-16 code units.
        len: usize,
        /// The text the client saw.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base: Option<String>,
    },
    /// A stream: a document's text now and after every change.
    ScratchWatch {
        /// The document.
        name: String,
    },
    /// The app state's keys and values.
    StateList,
    /// Sets a key of the app state.
    StateSet {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Removes a key of the app state.
    StateDel {
        /// The key.
        key: String,
    },
    /// A stream: the app state now and after every change.
    StateWatch,
    /// A stream: keeps a replica of a document — the client's own CRDT copy — in step with the
    /// daemon's. The daemon sends what the replica lacks (the whole document first) and then
    /// every change; the client sends its own edits as [`Request::Update`] lines.
    Open {
        /// The document (created by the first update if new).
        name: String,
    },
    /// Within an `open` stream: an update the client's replica made, applied as a local edit
    /// of the daemon (stored, then sent to its peers). Answered only if refused.
    Update {
        /// The update, base64 in JSON.
        #[serde(with = "rrt_sync::bytes_as_base64")]
        update: Vec<u8>,
        /// The generation of the document the replica edited (the last
        /// [`DocumentUpdate::generation`](crate::DocumentUpdate) it had); omitted for the
        /// first. One older than the daemon's current generation is applied as the change of
        /// text it made.
        #[serde(default, skip_serializing_if = "is_first")]
        generation: rrt_sync::Generation,
    },
    /// Within an `open` stream: where the client's cursor is, for the other editors of the
    /// document to see (the daemon repeats it to its peers while the stream is open and says
    /// the editor is gone when it closes). Answered only if refused.
    Presence {
        /// The character the cursor stands before, by its CRDT id; `null` at the end of the
        /// text.
        cursor: Option<rrt_sync::Cursor>,
        /// Who is editing, for people; the daemon's instance name when left out.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// A stream: invites a device to pair (the ticket first), answered by one `confirm` line
    /// once the code is shown.
    Invite {
        /// How long the ticket is good for, in seconds.
        ttl_s: u64,
    },
    /// A stream: pairs with the device that made `ticket`, answered by one `confirm` line once
    /// the code is shown.
    Join {
        /// The ticket.
        ticket: String,
    },
    /// The person's answer during `invite` or `join`.
    Confirm {
        /// Whether the codes matched.
        accepted: bool,
    },
}

/// Every `op` this crate knows, so that an unknown one is told apart from a malformed one.
pub const OPS: &[&str] = &[
    "version",
    "peers",
    "status",
    "copy",
    "copy_content",
    "copy_files",
    "paste",
    "why",
    "paste_type",
    "blob",
    "history",
    "copy_again",
    "pin",
    "watch",
    "read_pauses",
    "scratch_list",
    "scratch_cat",
    "scratch_append",
    "scratch_replace",
    "scratch_insert",
    "scratch_delete",
    "scratch_watch",
    "state_list",
    "state_set",
    "state_del",
    "state_watch",
    "open",
    "update",
    "presence",
    "invite",
    "join",
    "confirm",
];

impl Request {
    /// Reads one request line: an unknown `op` and a malformed request are refused with
    /// different kinds.
    pub fn parse(line: &[u8]) -> Result<Self, Refusal> {
        let value: serde_json::Value = serde_json::from_slice(line).map_err(|error| {
            Refusal::new(ErrorKind::BadRequest, format!("not a JSON object: {error}"))
        })?;
        let op = match value.get("op") {
            Some(serde_json::Value::String(op)) => op.clone(),
            _ => {
                return Err(Refusal::new(
                    ErrorKind::BadRequest,
                    "a request names its operation in the string field \"op\"",
                ));
            }
        };
        if !OPS.contains(&op.as_str()) {
            return Err(Refusal::new(
                ErrorKind::UnknownRequest,
                format!(
                    "unknown request {op:?}: this daemon speaks control protocol \
                     {PROTOCOL_VERSION} (`rrt --version`); a newer rrt may know it"
                ),
            ));
        }
        serde_json::from_value(value).map_err(|error| {
            Refusal::new(
                ErrorKind::BadRequest,
                format!("bad {op:?} request: {error}"),
            )
        })
    }

    /// Whether the answer is a stream of lines rather than one.
    pub fn is_stream(&self) -> bool {
        matches!(
            self,
            Self::Watch
                | Self::ScratchWatch { .. }
                | Self::StateWatch
                | Self::Open { .. }
                | Self::Invite { .. }
                | Self::Join { .. }
        )
    }
}

/// One representation of a `copy_content` request; its bytes follow the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// Its MIME type.
    pub mime: String,
}

/// Whether `generation` is a document's first (omitted on the wire).
pub(crate) fn is_first(generation: &rrt_sync::Generation) -> bool {
    *generation == rrt_sync::Generation::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_is_read_back_as_written_and_its_op_is_listed() {
        let stamp = Stamp {
            time: rrt_sync::Timestamp {
                wall_ms: 1,
                counter: 2,
            },
            origin: uuid::Uuid::nil(),
        };
        let requests = [
            Request::Version,
            Request::ReadPauses,
            Request::Copy { text: "x".into() },
            Request::Pin {
                stamp,
                pinned: true,
            },
            Request::ScratchInsert {
                name: "notes".into(),
                at: 3,
                text: "y".into(),
                base: None,
            },
            Request::Invite { ttl_s: 60 },
            Request::Presence {
                cursor: Some(rrt_sync::Cursor {
                    client: 7,
                    clock: 3,
                }),
                name: None,
            },
            Request::Presence {
                cursor: None,
                name: Some("alice".into()),
            },
        ];
        for request in requests {
            let line = serde_json::to_vec(&request).expect("serialize");
            let op = serde_json::from_slice::<serde_json::Value>(&line).expect("json")["op"]
                .as_str()
                .expect("op")
                .to_owned();
            assert!(OPS.contains(&op.as_str()), "{op} is listed");
            assert_eq!(Request::parse(&line), Ok(request));
        }
    }

    #[test]
    fn an_unknown_op_and_a_malformed_request_are_told_apart() {
        let unknown = Request::parse(br#"{"op":"teleport","to":"mars"}"#).expect_err("unknown");
        assert_eq!(unknown.kind, ErrorKind::UnknownRequest);
        for malformed in [
            &br#"{"op":"copy"}"#[..],
            br#"{"op":"copy","text":3}"#,
            br#"{"op":"copy","text":"x","extra":1}"#,
            br#"{"text":"x"}"#,
            b"not json",
        ] {
            let refusal = Request::parse(malformed).expect_err("malformed");
            assert_eq!(
                refusal.kind,
                ErrorKind::BadRequest,
                "{}",
                String::from_utf8_lossy(malformed)
            );
        }
    }
}
