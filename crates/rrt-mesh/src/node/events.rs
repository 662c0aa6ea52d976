//! What happens to the mesh, as one stream for a program that follows everything (the `rrt`
//! daemon's log, a status view). A program that follows only the clipboard or one document uses
//! that handle's stream instead.
//!
//! Every stream reads from one bounded broadcast channel the actor writes to without waiting, so
//! a slow reader never slows the node: it falls behind, and its stream says so once
//! ([`NodeEvent::Lagged`]) and goes on with the events that are still there.

use rrt_sync::ClipEntry;
use serde::Serialize;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::{
    document_handle::Origin,
    proto::membership::{DownReason, PeerInfo},
};

/// Something that happened to the mesh, as seen from this node.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum NodeEvent {
    /// A peer joined.
    PeerUp {
        /// The peer.
        peer: PeerInfo,
    },
    /// A peer left or failed.
    PeerDown {
        /// The peer.
        peer: PeerInfo,
        /// Why.
        reason: DownReason,
    },
    /// The clipboard has a new value (copied here or arriving from the mesh).
    Clipboard {
        /// The value.
        entry: ClipEntry,
    },
    /// A document changed (edited here or by a peer).
    Document {
        /// Its name ([`STATE`](crate::STATE) for the app state).
        name: String,
        /// Who changed it.
        origin: Origin,
    },
    /// The editors of a document moved, came or went
    /// ([`DocumentHandle::editors`](crate::DocumentHandle::editors) says where they are).
    Presence {
        /// The document.
        document: String,
    },
    /// This stream fell behind and skipped `missed` events; what it reports next is current
    /// again. (Only a stream says this; the node never sends it.)
    Lagged {
        /// How many events were skipped.
        missed: u64,
    },
}

/// Every event of a node, from [`Node::events`](super::Node::events).
#[derive(Debug)]
pub struct NodeEvents {
    events: broadcast::Receiver<NodeEvent>,
}

impl NodeEvents {
    pub(super) fn new(events: broadcast::Receiver<NodeEvent>) -> Self {
        Self { events }
    }

    /// The next event; `None` once the node has stopped.
    pub async fn next(&mut self) -> Option<NodeEvent> {
        match self.events.recv().await {
            Ok(event) => Some(event),
            Err(RecvError::Lagged(missed)) => Some(NodeEvent::Lagged { missed }),
            Err(RecvError::Closed) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stream_that_fell_behind_says_how_far_and_goes_on() {
        let (events, receiver) = broadcast::channel(1);
        let mut stream = NodeEvents::new(receiver);
        for name in ["a", "b"] {
            let event = NodeEvent::Document {
                name: name.to_owned(),
                origin: Origin::Local,
            };
            events.send(event).expect("a receiver");
        }
        assert!(matches!(
            stream.next().await,
            Some(NodeEvent::Lagged { missed: 1 })
        ));
        assert!(matches!(
            stream.next().await,
            Some(NodeEvent::Document { name, .. }) if name == "b"
        ));
        drop(events);
        assert!(stream.next().await.is_none());
    }
}
