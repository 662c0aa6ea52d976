//! The document machine's messages ([`DocSync`](crate::DocSync)'s): operations on replicated
//! documents — updates, and versions asking for what the sender lacks. One JSON object (or
//! MessagePack map) with a `type` tag; the wire composes it with the other machines' messages.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A message of the documents' sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DocMessage {
    /// Replicated-state operations and the sender's version of the state.
    StateDelta {
        /// The operations.
        crdt_ops: Vec<CrdtOperation>,
        /// The sender's vector clock: operations seen per instance (always empty from rrt:
        /// versions are per document, in the operations).
        vector_clock: BTreeMap<Uuid, u64>,
    },
}

impl DocMessage {
    /// The `type` tag of each message, in declaration order.
    pub const TYPES: &[&str] = &["state_delta"];

    /// A `state_delta` of `crdt_ops`.
    pub fn delta(crdt_ops: Vec<CrdtOperation>) -> Self {
        Self::StateDelta {
            crdt_ops,
            vector_clock: BTreeMap::new(),
        }
    }
}

/// One update to a replicated document, or a request for what the sender lacks of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrdtOperation {
    /// The document it applies to.
    pub document: String,
    /// The encoded update (empty when this only carries a version): base64 in JSON, raw bytes in
    /// MessagePack.
    #[serde(with = "crate::bytes_as_base64")]
    pub update: Vec<u8>,
    /// The sender's version of the document (its encoded state vector), asking for what it
    /// lacks; omitted when empty.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        with = "crate::bytes_as_base64"
    )]
    pub state_vector: Vec<u8>,
    /// A message about the document's generations past the first
    /// ([`LineageMessage`](crate::LineageMessage), encoded by its `encode`), when `update` and
    /// `state_vector` are empty: a peer that does not know generations ignores the operation.
    /// Omitted when empty.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        with = "crate::bytes_as_base64"
    )]
    pub lineage: Vec<u8>,
    /// Set when a large update (or lineage message) travels in parts: which part of which
    /// batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<Part>,
}

impl CrdtOperation {
    /// The same, about `document`.
    pub(crate) fn named(self, document: &str) -> Self {
        Self {
            document: document.to_owned(),
            ..self
        }
    }
}

/// One part of an update split to fit under the frame limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// Names the batch among the sender's.
    pub batch: u64,
    /// 0-based.
    pub index: u32,
    /// How many parts the batch has.
    pub count: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crdt_updates_are_base64_in_json() {
        let op = CrdtOperation {
            document: "notes".into(),
            update: vec![0, 1, 254, 255],
            state_vector: Vec::new(),
            lineage: Vec::new(),
            part: None,
        };
        let json = serde_json::to_string(&op).expect("serializes");
        assert_eq!(json, r#"{"document":"notes","update":"AAH+/w=="}"#);
        assert_eq!(
            serde_json::from_str::<CrdtOperation>(&json).expect("parses"),
            op
        );
    }

    #[test]
    fn crdt_updates_are_raw_bytes_in_messagepack() {
        let message = DocMessage::delta(vec![CrdtOperation {
            document: "notes".into(),
            update: vec![0, 1, 254, 255],
            state_vector: vec![7],
            lineage: Vec::new(),
            part: None,
        }]);
        let packed = rmp_serde::to_vec_named(&message).expect("serializes");
        assert!(packed.windows(4).any(|bytes| bytes == [0, 1, 254, 255]));
        assert_eq!(
            rmp_serde::from_slice::<DocMessage>(&packed).expect("parses"),
            message
        );
    }

    #[test]
    fn known_types_match_the_enum() {
        let tag = serde_json::to_value(DocMessage::delta(vec![])).expect("serializes")["type"]
            .as_str()
            .map(str::to_owned);
        assert_eq!(tag.as_deref(), DocMessage::TYPES.first().copied());
    }
}
