//! What crosses a link, and what the broadcast tree carries.
//!
//! A link carries the swarm's gossip frames (bytes, as `Swarm` made them) and the machines'
//! direct messages (their catch-up on a new link). Those are handed over as values: encoding
//! them would cost time and prove nothing the wire's own tests do not.
//!
//! What goes into the tree must be bytes: a machine's broadcast is encoded as [`Spread`] in JSON
//! — deterministic, so the same message broadcast twice is the same content, which Plumtree
//! recognises by its hash and does not deliver twice (within its id retention, 90 s).

use bytes::Bytes;
use rrt_mesh::proto::roster::RosterEntry;
use rrt_sync::ClipMessage;
use serde::{Deserialize, Serialize};

/// One frame over a link.
#[derive(Debug, Clone)]
pub(crate) enum Frame {
    /// A gossip frame of the swarm.
    Gossip(Vec<u8>),
    /// A clipboard message sent to this peer alone.
    Clip(ClipMessage),
    /// A roster message sent to this peer alone.
    Roster(Vec<RosterEntry>),
}

/// A machine's message, as a broadcast's content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Spread {
    Clip(ClipMessage),
    Roster(Vec<RosterEntry>),
}

impl Spread {
    pub(crate) fn encode(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).expect("a spread message serializes"))
    }

    pub(crate) fn decode(content: &[u8]) -> Spread {
        serde_json::from_slice(content).expect("only the simulator's nodes broadcast")
    }
}
