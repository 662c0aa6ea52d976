//! The blob machine's messages ([`BlobSync`](crate::BlobSync)'s): asking a peer for parts of a
//! blob by hash, and its answers. Each is one JSON object (or MessagePack map) with a `type` tag,
//! composed by the wire with the other machines' messages; bytes are base64 in JSON and raw in
//! MessagePack.
//!
//! ```json
//! {"type":"blob_want","hash":"6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85","from":0,"to":8,"outline":true}
//! {"type":"blob_part","hash":"6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85","index":0,"data":"YWJj"}
//! ```

use serde::{Deserialize, Serialize};

use crate::content::BlobHash;

/// A message of the blobs' transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum BlobMessage {
    /// Send me parts `from..to` of this blob (and first its outline, if `outline`).
    BlobWant {
        /// The blob.
        hash: BlobHash,
        /// The first part wanted.
        from: u64,
        /// One past the last part wanted.
        to: u64,
        /// Whether to send the outline first (the asker has not got it yet).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        outline: bool,
    },
    /// A blob's outline: the chaining values of its parts.
    BlobOutline {
        /// The blob.
        hash: BlobHash,
        /// Its size in bytes.
        size: u64,
        /// 32 bytes per part (none for a blob of one part).
        #[serde(with = "crate::bytes_as_base64")]
        values: Vec<u8>,
    },
    /// One part of a blob.
    BlobPart {
        /// The blob.
        hash: BlobHash,
        /// Which part.
        index: u64,
        /// Its bytes.
        #[serde(with = "crate::bytes_as_base64")]
        data: Vec<u8>,
    },
    /// I do not hold this blob. `fetching`: but I am fetching it, and will say `blob_have` when
    /// I do.
    BlobMissing {
        /// The blob.
        hash: BlobHash,
        /// Whether the sender is fetching it now.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        fetching: bool,
    },
    /// I hold this blob now (to a peer that was told `fetching`).
    BlobHave {
        /// The blob.
        hash: BlobHash,
    },
}

impl BlobMessage {
    /// The `type` tag of each message, in declaration order.
    pub const TYPES: &[&str] = &[
        "blob_want",
        "blob_outline",
        "blob_part",
        "blob_missing",
        "blob_have",
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_types_match_the_enum() {
        let hash = BlobHash([0; 32]);
        let every_variant = [
            BlobMessage::BlobWant {
                hash,
                from: 0,
                to: 1,
                outline: false,
            },
            BlobMessage::BlobOutline {
                hash,
                size: 0,
                values: vec![],
            },
            BlobMessage::BlobPart {
                hash,
                index: 0,
                data: vec![],
            },
            BlobMessage::BlobMissing {
                hash,
                fetching: false,
            },
            BlobMessage::BlobHave { hash },
        ];
        let tags: Vec<String> = every_variant
            .iter()
            .map(|message| serde_json::to_value(message).expect("serializes")["type"].to_string())
            .map(|tag| tag.trim_matches('"').to_owned())
            .collect();
        assert_eq!(tags, BlobMessage::TYPES);
    }
}
