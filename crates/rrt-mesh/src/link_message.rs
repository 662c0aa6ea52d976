//! What the two ends of a link say about the link itself: who is speaking (`hello`), a join
//! proof and a refusal (admission, over TLS), heartbeats, a goodbye, and a hub coordinator's
//! member list. These are the membership machine's and admission's messages; the sync machines'
//! travel beside them in the wire's [`Message`](crate::Message).
//!
//! ```json
//! {"type":"hello","instance_id":"550e8400-e29b-41d4-a716-446655440000","capabilities":["clipboard","state_sync"]}
//! {"type":"ping","timestamp":1702834567890}
//! ```

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::proto::roster::RosterEntry;

/// A message about the link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum LinkMessage {
    /// The first message on a connection: who is speaking and what it can do.
    Hello {
        /// The sender's instance id.
        instance_id: Uuid,
        /// Features the sender supports (`"clipboard"`, `"state_sync"`, …).
        capabilities: Vec<String>,
        /// A human-readable name for the instance (added after the design document; optional).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        name: String,
    },
    /// Over TLS, before `hello`, from a device that knows the mesh's join secret: an HMAC of the
    /// secret over this TLS session's exporter, the sender's device id (its certificate's key) and its
    /// name — worthless on any other connection.
    Join {
        /// The sender's device name (kept as a label for its key once it joins).
        device: String,
        /// The proof, hexadecimal.
        proof: String,
    },
    /// Over TLS, from a side that will not admit the peer, just before it closes the connection:
    /// why, so that both sides can say it (a refused device otherwise sees only a closed
    /// connection).
    Refused {
        /// Why, for people: what the refusing side knows, and what would let the peer in.
        reason: String,
    },
    /// The sender is leaving on purpose; not a failure.
    Goodbye {
        /// The leaving instance.
        instance_id: Uuid,
    },
    /// A heartbeat; answered with a [`LinkMessage::Pong`] carrying the same timestamp.
    Ping {
        /// The sender's clock, milliseconds since the Unix epoch.
        timestamp: u64,
    },
    /// The answer to a [`LinkMessage::Ping`].
    Pong {
        /// The timestamp of the ping answered.
        timestamp: u64,
    },
    /// A hub coordinator's list of the other instances connected to it, sent to each leaf
    /// whenever it changes (the recipient is not in its own list).
    Members {
        /// The instances.
        peers: Vec<Member>,
    },
    /// The sender heard nothing from `target` for the peer timeout and asks whether the
    /// recipient has: answered with a [`LinkMessage::Vouch`] if it has, by nothing otherwise.
    Probe {
        /// The silent instance.
        target: Uuid,
        /// Names the question; the answer repeats it.
        nonce: u64,
    },
    /// The answer to a [`LinkMessage::Probe`]: the sender heard from `target` within its peer
    /// timeout.
    Vouch {
        /// The instance asked about.
        target: Uuid,
        /// The probe's.
        nonce: u64,
    },
    /// A frame of the swarm that a large mesh spreads on (HyParView + Plumtree): iroh-gossip's
    /// wire message, in postcard (PROTOCOL.md, "The swarm").
    Gossip {
        /// The frame: base64 in JSON, raw bytes in MessagePack.
        #[serde(with = "rrt_sync::bytes_as_base64")]
        frame: Vec<u8>,
    },
    /// The sender's table of the mesh's members (when a link comes up), or what changed in it.
    Roster {
        /// The members.
        members: Vec<RosterEntry>,
    },
}

impl LinkMessage {
    /// The `type` tag of each message, in declaration order.
    pub const TYPES: &[&str] = &[
        "hello", "join", "refused", "goodbye", "ping", "pong", "members", "probe", "vouch",
        "gossip", "roster",
    ];
}

/// An instance in a [`LinkMessage::Members`] list.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Member {
    /// Its instance id.
    pub instance_id: Uuid,
    /// Its name.
    pub name: String,
}
