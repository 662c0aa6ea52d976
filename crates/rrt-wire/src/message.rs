//! The messages peers exchange, with exactly the JSON shapes of the design document:
//!
//! ```json
//! {"type":"hello","instance_id":"550e8400-e29b-41d4-a716-446655440000","capabilities":["clipboard","state_sync"]}
//! {"type":"clipboard_update","data":"Hello, world!","timestamp":1702834567890,"source_instance":"550e8400-e29b-41d4-a716-446655440000"}
//! {"type":"ping","timestamp":1702834567890}
//! ```
//!
//! Schema evolution: unknown fields are ignored, and a message whose `type` this version does not
//! know is reported and skipped (see [`PayloadError::UnknownType`](crate::PayloadError)), so a
//! newer peer can add messages and fields without breaking an older one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One protocol message. Serialized with a `type` field naming the variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Message {
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
    /// secret over this TLS session's exporter, the sender's certificate fingerprint and its
    /// name — worthless on any other connection.
    Join {
        /// The sender's device name (pinned to its key once it joins).
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
    /// A heartbeat; answered with a [`Message::Pong`] carrying the same timestamp.
    Ping {
        /// The sender's clock, milliseconds since the Unix epoch.
        timestamp: u64,
    },
    /// The answer to a [`Message::Ping`].
    Pong {
        /// The timestamp of the ping answered.
        timestamp: u64,
    },
    /// A new clipboard value.
    ClipboardUpdate {
        /// The clipboard text.
        data: String,
        /// When it was copied, milliseconds since the Unix epoch.
        timestamp: u64,
        /// The hybrid-logical-clock counter that orders copies within one millisecond (added
        /// after the design document; 0 and omitted when unused).
        #[serde(default, skip_serializing_if = "is_zero")]
        counter: u32,
        /// The instance it was copied on.
        source_instance: Uuid,
    },
    /// The stamps of the sender's clipboard history, sent on connect in place of the history
    /// itself to a peer whose `hello` lists the capability `clipboard_have`: the peer answers with
    /// the entries the sender lacks, so a reconnect over a slow link does not carry again what
    /// both sides have.
    ClipboardHave {
        /// One per history entry.
        stamps: Vec<ClipStamp>,
    },
    /// A hub coordinator's list of the other instances connected to it, sent to each leaf
    /// whenever it changes (the recipient is not in its own list).
    Members {
        /// The instances.
        peers: Vec<Member>,
    },
    /// Replicated-state operations and the sender's version of the state.
    StateDelta {
        /// The operations.
        crdt_ops: Vec<CrdtOperation>,
        /// The sender's vector clock: operations seen per instance.
        vector_clock: BTreeMap<Uuid, u64>,
    },
}

fn is_zero(counter: &u32) -> bool {
    *counter == 0
}

/// The `type` tag of every message this version knows, for telling an unknown message from a
/// malformed known one.
pub const MESSAGE_TYPES: &[&str] = &[
    "hello",
    "join",
    "refused",
    "goodbye",
    "ping",
    "pong",
    "clipboard_update",
    "clipboard_have",
    "members",
    "state_delta",
];

/// A clipboard entry's stamp, as a [`Message::ClipboardUpdate`] carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClipStamp {
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// The counter within the millisecond (0 and omitted when unused).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub counter: u32,
    /// The instance it was copied on.
    pub source_instance: Uuid,
}

/// An instance in a [`Message::Members`] list.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Member {
    /// Its instance id.
    pub instance_id: Uuid,
    /// Its name.
    pub name: String,
}

/// One update to a replicated document, or a request for what the sender lacks of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrdtOperation {
    /// The document it applies to.
    pub document: String,
    /// The encoded update (empty when this only carries a version): base64 in JSON, raw bytes in
    /// MessagePack.
    #[serde(with = "bytes_as_base64")]
    pub update: Vec<u8>,
    /// The sender's version of the document (its encoded state vector), asking for what it
    /// lacks; omitted when empty.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        with = "bytes_as_base64"
    )]
    pub state_vector: Vec<u8>,
    /// Set when a large update travels in parts: which part of which batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<Part>,
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

/// Only the tag of a message, to name what could not be decoded.
#[derive(Deserialize)]
pub(crate) struct Envelope {
    #[serde(rename = "type")]
    pub(crate) kind: String,
}

/// Bytes as a base64 string in human-readable formats (JSON stays printable and `jq`-friendly)
/// and as raw bytes in binary ones; either is accepted when reading.
mod bytes_as_base64 {
    use std::fmt;

    use base64::{Engine, engine::general_purpose::STANDARD};
    use serde::{Deserializer, Serializer, de};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&STANDARD.encode(bytes))
        } else {
            serializer.serialize_bytes(bytes)
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        deserializer.deserialize_any(BytesVisitor)
    }

    struct BytesVisitor;

    impl<'de> de::Visitor<'de> for BytesVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("base64 text or bytes")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Vec<u8>, E> {
            STANDARD.decode(text).map_err(E::custom)
        }

        fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
            Ok(bytes.to_vec())
        }

        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(byte) = seq.next_element()? {
                bytes.push(byte);
            }
            Ok(bytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_EXAMPLES: [&str; 3] = [
        r#"{"type":"hello","instance_id":"550e8400-e29b-41d4-a716-446655440000","capabilities":["clipboard","state_sync"]}"#,
        r#"{"type":"clipboard_update","data":"Hello, world!","timestamp":1702834567890,"source_instance":"550e8400-e29b-41d4-a716-446655440000"}"#,
        r#"{"type":"ping","timestamp":1702834567890}"#,
    ];

    #[test]
    fn the_design_documents_examples_parse_and_print_back_byte_for_byte() {
        for line in SEED_EXAMPLES {
            let message: Message = serde_json::from_str(line).expect(line);
            assert_eq!(serde_json::to_string(&message).expect("serializes"), line);
        }
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let message: Message =
            serde_json::from_str(r#"{"type":"pong","timestamp":5,"added_in_v9":[1,2]}"#)
                .expect("parses");
        assert_eq!(message, Message::Pong { timestamp: 5 });
    }

    #[test]
    fn known_types_match_the_enum() {
        let id = Uuid::nil();
        let every_variant = [
            Message::Hello {
                instance_id: id,
                capabilities: vec![],
                name: String::new(),
            },
            Message::Join {
                device: String::new(),
                proof: String::new(),
            },
            Message::Refused {
                reason: String::new(),
            },
            Message::Goodbye { instance_id: id },
            Message::Ping { timestamp: 0 },
            Message::Pong { timestamp: 0 },
            Message::ClipboardUpdate {
                data: String::new(),
                timestamp: 0,
                counter: 0,
                source_instance: id,
            },
            Message::ClipboardHave { stamps: vec![] },
            Message::Members { peers: vec![] },
            Message::StateDelta {
                crdt_ops: vec![],
                vector_clock: BTreeMap::new(),
            },
        ];
        let tags: Vec<String> = every_variant
            .iter()
            .map(|message| {
                let json = serde_json::to_value(message).expect("serializes");
                json["type"].as_str().expect("tagged").to_owned()
            })
            .collect();
        assert_eq!(tags, MESSAGE_TYPES);
    }

    #[test]
    fn crdt_updates_are_base64_in_json() {
        let op = CrdtOperation {
            document: "notes".into(),
            update: vec![0, 1, 254, 255],
            state_vector: Vec::new(),
            part: None,
        };
        let json = serde_json::to_string(&op).expect("serializes");
        assert_eq!(json, r#"{"document":"notes","update":"AAH+/w=="}"#);
        assert_eq!(
            serde_json::from_str::<CrdtOperation>(&json).expect("parses"),
            op
        );
    }
}
