//! Why an operation of a [`Node`](super::Node) failed: one error type per operation, each with
//! only the variants that operation can produce, so a caller matches on what can really happen.
//!
//! Every request goes through the node's actor, so every operation but starting can also find the
//! node stopped (after [`Node::leave`](super::Node::leave), or once its last handle is dropped);
//! an operation that can fail in no other way returns [`Stopped`].

use std::path::PathBuf;

use rrt_reactor::ReactorError;
use rrt_store::{BlobStoreError, ClipboardStoreError, DocumentStoreError};

use crate::dir::DirError;

/// The node has stopped: nothing was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the node has stopped; start a new one")]
pub struct Stopped;

/// Why a node could not start. What had started by then (the network thread, the wide-area
/// transport) stops as its handles are dropped.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No state directory was given ([`NodeBuilder::state_dir`](super::NodeBuilder::state_dir)).
    #[error(
        "a node needs a state directory for its clipboard and documents; set one with NodeBuilder::state_dir"
    )]
    NoStateDir,
    /// The mesh directory (where instances of a host find each other) is unusable.
    #[error(transparent)]
    MeshDir(#[from] DirError),
    /// The stored clipboard could not be read.
    #[error("the stored clipboard could not be read: {0}")]
    ClipboardStore(#[from] ClipboardStoreError),
    /// The stored documents could not be read.
    #[error("the stored documents could not be read: {0}")]
    DocumentStore(#[from] DocumentStoreError),
    /// The blob store could not be opened.
    #[error("the blob store could not be opened: {0}")]
    BlobStore(#[from] BlobStoreError),
    /// The network reactor could not start (its socket could not be bound, usually).
    #[error("the network reactor could not start: {0}")]
    Network(ReactorError),
    /// The trusted devices (whose clipboard pauses the node applies) could not be read.
    #[error("the trusted devices could not be read: {0}")]
    TrustStore(std::io::Error),
    /// A thread of the node (the writer, the blob worker) could not be started.
    #[error("a thread of the node could not start: {0}")]
    Thread(std::io::Error),
    /// Loading the stored clipboard was cut short (its thread panicked or the runtime is
    /// shutting down).
    #[error("loading the stored clipboard was cut short; is the runtime shutting down?")]
    Interrupted,
}

/// Why a copy failed. Nothing was copied: the clipboard is as it was, here and on every peer.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The value is larger than a frame can carry.
    #[error("{len} bytes is too large to share (the limit is {max} bytes); share it as a file")]
    TooLarge {
        /// The value's encoded size.
        len: usize,
        /// The frame limit.
        max: u32,
    },
    /// A representation peers would refuse (too many, a bad type name, inline bytes that are not
    /// what they say).
    #[error("this value cannot be shared: {0}")]
    Content(#[from] rrt_sync::ContentError),
    /// The value could not be stored.
    #[error("the value could not be stored, so it was not shared: {0}")]
    Store(#[from] ClipboardStoreError),
    /// Its text matches a rule of what is never shared ([`NodeBuilder::never_share`](crate::NodeBuilder::never_share)):
    /// nothing was stored or sent.
    #[error("not shared: the text matches the never-share rule {rule}")]
    NeverShared {
        /// The rule, by name.
        rule: String,
    },
    /// The node has stopped.
    #[error(transparent)]
    Stopped(#[from] Stopped),
}

/// Why pinning (or unpinning) a history entry failed. The pins are as they were.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// No history entry has that stamp (it may have aged out).
    #[error("no clipboard entry has that stamp; it may have left the history")]
    NoSuchEntry,
    /// The pin could not be stored.
    #[error("the pin could not be stored: {0}")]
    Store(#[from] ClipboardStoreError),
    /// The node has stopped.
    #[error(transparent)]
    Stopped(#[from] Stopped),
}

/// Why the peers to dial could not be set. They are as they were.
#[derive(Debug, thiserror::Error)]
pub enum PeersError {
    /// The node has no TCP: it dials no host.
    #[error("this node has no TCP (it was started without it), so it dials no peer")]
    NoTcp,
    /// The node has stopped.
    #[error(transparent)]
    Stopped(#[from] Stopped),
}

/// Why the clipboard's pauses could not be read again. The pauses are as they were.
#[derive(Debug, thiserror::Error)]
pub enum PausesError {
    /// The trust store could not be read.
    #[error("the trusted devices could not be read: {0}")]
    TrustStore(#[from] std::io::Error),
    /// The node has stopped.
    #[error(transparent)]
    Stopped(#[from] Stopped),
}

/// Why the bytes of a representation could not be had.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Its type is not fetched here, or it is over its type's cap.
    #[error(
        "{mime} of {size} bytes is not fetched here (its limit is {limit} bytes); raise the limit in the node's content settings"
    )]
    NotFetched {
        /// Its type.
        mime: String,
        /// Its size.
        size: u64,
        /// The limit for its type (0: the type is off).
        limit: u64,
    },
    /// No peer that is up holds it, or it could not be stored.
    #[error("the value's bytes could not be fetched ({0}); try again once its owner is up")]
    Unavailable(String),
    /// The node has stopped.
    #[error(transparent)]
    Stopped(#[from] Stopped),
}

/// Why a value or files could not be read into the blob store. Nothing was copied.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A file or directory could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// What was being read.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A path has no file name that can be shared (`..`, `/`, or one that is not UTF-8).
    #[error("{} has no file name that can be shared", .0.display())]
    NoName(PathBuf),
    /// More files and directories than a file list may hold.
    #[error("more than {max} files and directories; share an archive instead")]
    TooManyFiles {
        /// The limit.
        max: usize,
    },
    /// The list of imported files could not be encoded.
    #[error("the list of files could not be encoded: {0}")]
    Manifest(serde_json::Error),
    /// The blob store failed, or the value is over this node's limit for its type.
    #[error(transparent)]
    Store(#[from] BlobStoreError),
    /// The node has stopped.
    #[error(transparent)]
    Stopped(#[from] Stopped),
}

/// Why a document's text could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// No document has this name (yet: it is made by its first edit, here or on a peer).
    #[error("no document named {0:?}")]
    NotFound(String),
    /// The node has stopped.
    #[error(transparent)]
    Stopped(#[from] Stopped),
}

/// Why pairing could not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PairError {
    /// Pairing needs the wide-area transport, which this node does not run.
    #[error(
        "this node runs no wide-area transport (it needs TCP with TLS and the wide-area options)"
    )]
    NoWan,
    /// The wide-area transport stopped (its restarts ran out); the rest of the node runs on.
    #[error("the wide-area transport has stopped (see the log); restart the node")]
    WanStopped,
}
