//! What the daemon answers: `{"ok": <answer>}` or `{"error": {"kind": …, "message": …}}`, and
//! the typed answers and stream events of each request.

use std::collections::BTreeMap;

use rrt_mesh::{NodeStatus, WanStatus};
use rrt_sync::ClipEntry;
use serde::{Deserialize, Serialize};

/// One answer line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer<T> {
    /// The request was done; what it answers.
    Ok(T),
    /// It was not; why.
    Error(Refusal),
}

/// Why the daemon did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// What kind of failure: what a program decides on.
    pub kind: ErrorKind,
    /// What a person reads.
    pub message: String,
}

impl Refusal {
    /// A refusal of this kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// The kinds of [`Refusal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The daemon does not know the request's `op` (it is older than the client).
    UnknownRequest,
    /// Not a request: not JSON, no `op`, or fields missing, mistyped or unknown.
    BadRequest,
    /// Over the daemon's bounds for requests (too long, too slow, too many at once); the
    /// connection is closed after this answer.
    Refused,
    /// What the request names is not there (a history entry, a document, a key).
    NotFound,
    /// The request was understood but could not be done; the message says why.
    Failed,
}

/// The answer to `version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// The control protocol's version ([`crate::PROTOCOL_VERSION`] of the daemon's build).
    pub protocol: u32,
    /// The daemon's version.
    pub rrt: String,
}

/// The answer to `status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// The node.
    #[serde(flatten)]
    pub node: NodeStatus,
    /// The wide-area endpoint: `None` without one; `running: false` when another instance of
    /// the host holds it.
    pub wan: Option<WanStatus>,
    /// What crossed each direct link since it came up.
    #[serde(default)]
    pub traffic: Vec<PeerTraffic>,
}

/// What crossed the link to one peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerTraffic {
    /// The peer's instance id.
    pub id: uuid::Uuid,
    /// Its name.
    pub name: String,
    /// Messages and bytes, each way.
    #[serde(flatten)]
    pub traffic: rrt_mesh::Traffic,
}

/// A history entry, as `history` lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The entry.
    #[serde(flatten)]
    pub entry: ClipEntry,
    /// Whether it is pinned (kept when the history or the content store is full).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pinned: bool,
}

/// An event of a `watch` stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClipboardEvent {
    /// The current value (first) or a new one.
    Entry(ClipEntry),
    /// The stream fell behind and skipped this many changes; the next entry is current.
    Lagged {
        /// How many.
        missed: u64,
    },
}

/// An event of a `scratch_watch` stream: the document's text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentText {
    /// The document.
    pub document: String,
    /// Its text.
    pub text: String,
}

/// An event of an `open` stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ReplicaEvent {
    /// What the client's replica lacks.
    Update(DocumentUpdate),
    /// Where the document's other editors are.
    Editors(DocumentEditors),
}

/// What a replica lacks. Applying it may bring back the client's own updates too, which changes
/// nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentUpdate {
    /// A CRDT update (base64 in JSON; PROTOCOL.md "Documents" says what it holds).
    #[serde(with = "rrt_sync::bytes_as_base64")]
    pub update: Vec<u8>,
    /// The generation of the document it is of; omitted for the first. When it is not the
    /// replica's, the document moved on: `update` is the new generation whole, and the replica
    /// starts over from it (a new CRDT document), sending its edits with this generation.
    #[serde(default, skip_serializing_if = "crate::request::is_first")]
    pub generation: rrt_sync::Generation,
}

/// The other editors of an open document (the client's own left out), sent whenever one moves,
/// comes or goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentEditors {
    /// Each editor.
    pub editors: Vec<Editor>,
}

/// Another editor of an open document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Editor {
    /// Who, for people.
    pub name: String,
    /// The character its cursor stands before (`null`: the end of the text).
    pub cursor: Option<rrt_sync::Cursor>,
}

/// An event of a `state_watch` stream: the app state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateSnapshot {
    /// Every key and value.
    pub state: BTreeMap<String, String>,
}

/// What a raw answer's line says before its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawHeader {
    /// The bytes' MIME type.
    pub mime: String,
    /// How many bytes follow.
    pub size: u64,
}
