//! The wire's message: the link's own ([`LinkMessage`]) and each sync machine's
//! ([`ClipMessage`], [`DocMessage`], [`BlobMessage`]), composed without a wrapper — each keeps its JSON exactly,
//! a `type`-tagged object, so the design document's examples and PROTOCOL.md's hold byte for byte.
//!
//! ```json
//! {"type":"hello","instance_id":"550e8400-e29b-41d4-a716-446655440000","capabilities":["clipboard","state_sync"]}
//! {"type":"clipboard_update","data":"Hello, world!","timestamp":1702834567890,"source_instance":"550e8400-e29b-41d4-a716-446655440000"}
//! {"type":"ping","timestamp":1702834567890}
//! ```
//!
//! The wire decodes by reading the `type` first and handing the object to the machine whose
//! message it is ([`Protocol`]); a `type` no machine knows is a newer peer's message, skipped,
//! and a known one that does not decode is reported as malformed. Unknown fields are ignored. So
//! a newer peer can add messages and fields without breaking an older one. `Message` also
//! implements `Deserialize` (trying each machine's type in turn), for tools and tests that read
//! a message from JSON directly; its errors say less.

use rrt_sync::{BlobMessage, ClipMessage, DocMessage, PresenceMessage};
use rrt_wire::Protocol;
use serde::{Deserialize, Deserializer, Serialize};

use crate::link_message::LinkMessage;

/// One protocol message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Message {
    /// About the link: hello, heartbeats, admission, goodbye, hub members.
    Link(LinkMessage),
    /// The clipboard's sync.
    Clipboard(ClipMessage),
    /// The documents' sync.
    Document(DocMessage),
    /// Blobs' transfer: large clipboard representations, by hash.
    Blob(BlobMessage),
    /// Where editors' cursors are (never stored).
    Presence(PresenceMessage),
}

/// The `type` tag of every message this version knows.
pub fn message_types() -> impl Iterator<Item = &'static str> {
    [
        LinkMessage::TYPES,
        ClipMessage::TYPES,
        DocMessage::TYPES,
        BlobMessage::TYPES,
        PresenceMessage::TYPES,
    ]
    .into_iter()
    .flatten()
    .copied()
}

impl Protocol for Message {
    fn knows(kind: &str) -> bool {
        message_types().any(|known| known == kind)
    }

    fn deserialize_kind<'de, D: Deserializer<'de>>(
        kind: &str,
        deserializer: D,
    ) -> Result<Self, D::Error> {
        if LinkMessage::TYPES.contains(&kind) {
            LinkMessage::deserialize(deserializer).map(Self::Link)
        } else if ClipMessage::TYPES.contains(&kind) {
            ClipMessage::deserialize(deserializer).map(Self::Clipboard)
        } else if BlobMessage::TYPES.contains(&kind) {
            BlobMessage::deserialize(deserializer).map(Self::Blob)
        } else if PresenceMessage::TYPES.contains(&kind) {
            PresenceMessage::deserialize(deserializer).map(Self::Presence)
        } else {
            DocMessage::deserialize(deserializer).map(Self::Document)
        }
    }
}

impl From<LinkMessage> for Message {
    fn from(message: LinkMessage) -> Self {
        Self::Link(message)
    }
}

impl From<ClipMessage> for Message {
    fn from(message: ClipMessage) -> Self {
        Self::Clipboard(message)
    }
}

impl From<BlobMessage> for Message {
    fn from(message: BlobMessage) -> Self {
        Self::Blob(message)
    }
}

impl From<PresenceMessage> for Message {
    fn from(message: PresenceMessage) -> Self {
        Self::Presence(message)
    }
}

impl From<DocMessage> for Message {
    fn from(message: DocMessage) -> Self {
        Self::Document(message)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use uuid::Uuid;

    use super::*;

    const SEED_EXAMPLES: [&str; 3] = [
        r#"{"type":"hello","instance_id":"550e8400-e29b-41d4-a716-446655440000","capabilities":["clipboard","state_sync"]}"#,
        r#"{"type":"clipboard_update","data":"Hello, world!","timestamp":1702834567890,"source_instance":"550e8400-e29b-41d4-a716-446655440000"}"#,
        r#"{"type":"ping","timestamp":1702834567890}"#,
    ];

    /// `json` as the wire decodes it, checked against the plain `Deserialize`.
    fn parse(json: &str) -> Message {
        let kind: serde_json::Value = serde_json::from_str(json).expect("json");
        let kind = kind["type"].as_str().expect("tagged");
        assert!(Message::knows(kind), "{kind}");
        let message =
            Message::deserialize_kind(kind, &mut serde_json::Deserializer::from_str(json))
                .expect(json);
        assert_eq!(
            serde_json::from_str::<Message>(json).ok().as_ref(),
            Some(&message)
        );
        message
    }

    #[test]
    fn the_design_documents_examples_parse_and_print_back_byte_for_byte() {
        for line in SEED_EXAMPLES {
            assert_eq!(
                serde_json::to_string(&parse(line)).expect("serializes"),
                line
            );
        }
    }

    #[test]
    fn unknown_fields_are_ignored() {
        assert_eq!(
            parse(r#"{"type":"pong","timestamp":5,"added_in_v9":[1,2]}"#),
            Message::Link(LinkMessage::Pong { timestamp: 5 })
        );
    }

    #[test]
    fn every_variant_is_tagged_as_its_machine_says() {
        let id = Uuid::nil();
        let every_variant: Vec<Message> = vec![
            LinkMessage::Hello {
                instance_id: id,
                capabilities: vec![],
                name: String::new(),
            }
            .into(),
            LinkMessage::Join {
                device: String::new(),
                proof: String::new(),
            }
            .into(),
            LinkMessage::Refused {
                reason: String::new(),
            }
            .into(),
            LinkMessage::Goodbye { instance_id: id }.into(),
            LinkMessage::Ping { timestamp: 0 }.into(),
            LinkMessage::Pong { timestamp: 0 }.into(),
            LinkMessage::Members { peers: vec![] }.into(),
            LinkMessage::Probe {
                target: id,
                nonce: 0,
            }
            .into(),
            LinkMessage::Vouch {
                target: id,
                nonce: 0,
            }
            .into(),
            LinkMessage::Gossip { frame: vec![1, 2] }.into(),
            LinkMessage::Roster {
                members: vec![crate::proto::roster::RosterEntry {
                    instance_id: id,
                    name: "a".into(),
                    incarnation: 7,
                    alive: true,
                    host: None,
                    pid: None,
                }],
            }
            .into(),
            ClipMessage::ClipboardUpdate {
                data: String::new(),
                content: vec![],
                timestamp: 0,
                counter: 0,
                source_instance: id,
                provenance: None,
                withheld_from: Vec::new(),
            }
            .into(),
            ClipMessage::ClipboardHave { stamps: vec![] }.into(),
            DocMessage::StateDelta {
                crdt_ops: vec![],
                vector_clock: BTreeMap::new(),
            }
            .into(),
            BlobMessage::BlobWant {
                hash: rrt_sync::BlobHash([1; 32]),
                from: 0,
                to: 8,
                outline: true,
            }
            .into(),
            BlobMessage::BlobOutline {
                hash: rrt_sync::BlobHash([1; 32]),
                size: 1,
                values: vec![],
            }
            .into(),
            BlobMessage::BlobPart {
                hash: rrt_sync::BlobHash([1; 32]),
                index: 0,
                data: vec![1],
            }
            .into(),
            BlobMessage::BlobMissing {
                hash: rrt_sync::BlobHash([1; 32]),
                fetching: true,
            }
            .into(),
            BlobMessage::BlobHave {
                hash: rrt_sync::BlobHash([1; 32]),
            }
            .into(),
            PresenceMessage::Presence(rrt_sync::Presence {
                document: "notes".into(),
                editor: 1,
                name: "a".into(),
                cursor: Some(rrt_sync::Cursor {
                    client: 2,
                    clock: 3,
                }),
                at_ms: 4,
                gone: true,
            })
            .into(),
        ];
        let tags: Vec<String> = every_variant
            .iter()
            .map(|message| {
                let json = serde_json::to_value(message).expect("serializes");
                json["type"].as_str().expect("tagged").to_owned()
            })
            .collect();
        assert_eq!(tags, message_types().collect::<Vec<_>>());
        for message in every_variant {
            let json = serde_json::to_string(&message).expect("serializes");
            assert_eq!(parse(&json), message, "{json}");
        }
    }
}
