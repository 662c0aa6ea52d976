//! The one place that names the wire message's variants.
//!
//! Everywhere else a message is opaque: machines produce it, the network carries it, a driver
//! hands it back. Only here is a message sorted — into the machine that owns it, and into a kind
//! for the counters and the quiescence check. When the wire enum is split into one message type
//! per machine (a link message, a clipboard message, a document message) composed into one
//! envelope, this file is what changes.

use rrt_sync::{Change, ClipSync, DocSync};
use rrt_wire::Message;
use uuid::Uuid;

/// What a message is about, for counting and for telling heartbeats from work in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Hello, goodbye, ping, pong: the membership machine's own.
    Link,
    /// A clipboard entry.
    ClipboardUpdate,
    /// The stamps a clipboard replica has, sent on connect.
    ClipboardHave,
    /// Document versions and updates.
    Document,
    /// Anything else (join, refused, members): never sent by these machines.
    Other,
}

impl Kind {
    /// Whether a message of this kind in flight means the sync layer is still at work (a ping is
    /// not: heartbeats never stop).
    pub(crate) fn is_work(self) -> bool {
        !matches!(self, Kind::Link)
    }
}

/// The kind of `message`.
pub(crate) fn kind(message: &Message) -> Kind {
    match message {
        Message::Hello { .. }
        | Message::Goodbye { .. }
        | Message::Ping { .. }
        | Message::Pong { .. } => Kind::Link,
        Message::ClipboardUpdate { .. } => Kind::ClipboardUpdate,
        Message::ClipboardHave { .. } => Kind::ClipboardHave,
        Message::StateDelta { .. } => Kind::Document,
        _ => Kind::Other,
    }
}

/// Hands an application message from `from` to the machine that owns it, as the daemon's
/// `Node::receive` does; returns what it did to documents (the driver stores what was applied).
pub(crate) fn deliver(
    clipboard: &mut ClipSync,
    documents: &mut DocSync,
    from: Uuid,
    message: Message,
    now_ms: u64,
) -> Vec<Change> {
    match message {
        Message::ClipboardUpdate { .. } | Message::ClipboardHave { .. } => {
            clipboard.handle(from, message, now_ms);
            Vec::new()
        }
        Message::StateDelta { crdt_ops, .. } => documents.handle(from, crdt_ops),
        _ => Vec::new(),
    }
}
