//! The one place that sorts a wire message: into the machine that owns it, and into a kind for
//! the counters and the quiescence check. Everywhere else a message is opaque: machines produce
//! it, the network carries it, a driver hands it back.

use rrt_mesh::{LinkMessage, Message};
use rrt_sync::{Change, ClipMessage, ClipSync, DocSync};
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
        Message::Link(
            LinkMessage::Hello { .. }
            | LinkMessage::Goodbye { .. }
            | LinkMessage::Ping { .. }
            | LinkMessage::Pong { .. },
        ) => Kind::Link,
        Message::Clipboard(ClipMessage::ClipboardUpdate { .. }) => Kind::ClipboardUpdate,
        Message::Clipboard(ClipMessage::ClipboardHave { .. }) => Kind::ClipboardHave,
        Message::Document(_) => Kind::Document,
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
        Message::Clipboard(message) => {
            clipboard.handle(from, message, now_ms);
            Vec::new()
        }
        Message::Document(message) => documents.handle(from, message),
        _ => Vec::new(),
    }
}
