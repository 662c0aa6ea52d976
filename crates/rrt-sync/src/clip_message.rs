//! The clipboard machine's messages ([`ClipSync`](crate::ClipSync)'s): a new value, and on
//! connect the stamps of a history. Each is one JSON object (or MessagePack map) with a `type`
//! tag; the wire composes them with the other machines' messages and adds nothing.
//!
//! ```json
//! {"type":"clipboard_update","data":"Hello, world!","timestamp":1702834567890,"source_instance":"550e8400-e29b-41d4-a716-446655440000"}
//! ```

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{content::Representation, provenance::Provenance};

/// A message of the clipboard's sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClipMessage {
    /// A new clipboard value.
    ClipboardUpdate {
        /// The clipboard text (empty when the value has none: an older peer sees an empty
        /// clipboard for an image).
        data: String,
        /// The value's other representations — HTML, images, files — inline when small,
        /// announced by hash otherwise (added after the design document; omitted when empty, and
        /// ignored by older peers, which keep the text).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        content: Vec<Representation>,
        /// When it was copied, milliseconds since the Unix epoch.
        timestamp: u64,
        /// The hybrid-logical-clock counter that orders copies within one millisecond (added
        /// after the design document; 0 and omitted when unused).
        #[serde(default, skip_serializing_if = "is_zero")]
        counter: u32,
        /// The instance it was copied on.
        source_instance: Uuid,
        /// Where it was copied: the instance's and device's names and how (added after the
        /// design document; omitted when unknown, and ignored by older peers).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provenance: Option<Provenance>,
        /// The devices (by id) the copier withheld it from: they relay it but never show it
        /// (added after the design document; omitted when empty, and ignored by older peers).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        withheld_from: Vec<String>,
    },
    /// The stamps of the sender's clipboard history, sent on connect in place of the history
    /// itself to a peer whose `hello` lists the capability `clipboard_have`: the peer answers with
    /// the entries the sender lacks, so a reconnect over a slow link does not carry again what
    /// both sides have.
    ClipboardHave {
        /// One per history entry.
        stamps: Vec<ClipStamp>,
    },
}

impl ClipMessage {
    /// The `type` tag of each message, in declaration order.
    pub const TYPES: &[&str] = &["clipboard_update", "clipboard_have"];
}

/// A clipboard entry's stamp, as a [`ClipMessage::ClipboardUpdate`] carries it.
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

fn is_zero(counter: &u32) -> bool {
    *counter == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_design_documents_example_parses_and_prints_back_byte_for_byte() {
        let line = r#"{"type":"clipboard_update","data":"Hello, world!","timestamp":1702834567890,"source_instance":"550e8400-e29b-41d4-a716-446655440000"}"#;
        let message: ClipMessage = serde_json::from_str(line).expect(line);
        assert_eq!(serde_json::to_string(&message).expect("serializes"), line);
    }

    #[test]
    fn a_peer_that_knows_only_text_reads_an_update_with_content_as_its_text() {
        /// A `clipboard_update` as a version before content read it.
        #[derive(Deserialize)]
        struct OlderUpdate {
            data: String,
            timestamp: u64,
        }
        let update = ClipMessage::ClipboardUpdate {
            data: "bold".into(),
            content: vec![Representation::new(
                "text/html",
                b"<b>bold</b>",
                crate::INLINE_MAX,
            )],
            timestamp: 7,
            counter: 0,
            source_instance: Uuid::nil(),
            provenance: None,
            withheld_from: Vec::new(),
        };
        let json = serde_json::to_string(&update).expect("serializes");
        let older: OlderUpdate = serde_json::from_str(&json).expect("unknown fields are ignored");
        assert_eq!((older.data.as_str(), older.timestamp), ("bold", 7));
    }

    #[test]
    fn known_types_match_the_enum() {
        let every_variant = [
            ClipMessage::ClipboardUpdate {
                data: String::new(),
                content: Vec::new(),
                timestamp: 0,
                counter: 0,
                source_instance: Uuid::nil(),
                provenance: None,
                withheld_from: Vec::new(),
            },
            ClipMessage::ClipboardHave { stamps: vec![] },
        ];
        let tags: Vec<String> = every_variant
            .iter()
            .map(|message| serde_json::to_value(message).expect("serializes")["type"].to_string())
            .map(|tag| tag.trim_matches('"').to_owned())
            .collect();
        assert_eq!(tags, ClipMessage::TYPES);
    }
}
