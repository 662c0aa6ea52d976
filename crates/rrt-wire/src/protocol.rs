//! What the wire carries: any set of messages that serializes as one object (or map) with a
//! `type` tag naming the message — what `#[serde(tag = "type")]` derives. The framing knows no
//! message; the application composes its machines' messages into one type and implements
//! [`Protocol`] for it (rrt's is `rrt_mesh::Message`).
//!
//! Decoding reads the tag first, then hands the payload to the message type the tag belongs to,
//! so a tag this side does not know is told apart from a known message that is malformed: the
//! first is a newer peer's message, skipped ([`PayloadError::UnknownType`](crate::PayloadError)),
//! the second is reported as malformed. Either way only that frame is skipped.

use serde::{Deserialize, Deserializer, Serialize};

/// A set of messages the wire can carry.
///
/// ```
/// use rrt_wire::Protocol;
/// use serde::{Deserialize, Deserializer, Serialize};
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// #[serde(tag = "type", rename_all = "snake_case")]
/// enum Chat {
///     Say { text: String },
/// }
///
/// impl Protocol for Chat {
///     fn knows(kind: &str) -> bool {
///         kind == "say"
///     }
///
///     fn deserialize_kind<'de, D: Deserializer<'de>>(_: &str, from: D) -> Result<Self, D::Error> {
///         Chat::deserialize(from)
///     }
/// }
/// ```
pub trait Protocol: Serialize + Sized {
    /// Whether `kind`, a message's `type` tag, names one of these messages.
    fn knows(kind: &str) -> bool;

    /// Decodes a message whose tag is `kind` (one this type [`knows`](Protocol::knows)).
    fn deserialize_kind<'de, D: Deserializer<'de>>(
        kind: &str,
        deserializer: D,
    ) -> Result<Self, D::Error>;
}

/// Only the tag of a message.
#[derive(Deserialize)]
pub(crate) struct Envelope {
    #[serde(rename = "type")]
    pub(crate) kind: String,
}

/// A small protocol for this crate's own tests, shaped like a few of rrt's messages.
#[cfg(test)]
pub(crate) mod testing {
    use serde::{Deserialize, Deserializer, Serialize};
    use uuid::Uuid;

    use super::Protocol;

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    pub(crate) enum Message {
        Ping {
            timestamp: u64,
        },
        ClipboardUpdate {
            data: String,
            timestamp: u64,
            #[serde(default)]
            counter: u32,
            source_instance: Uuid,
        },
    }

    impl Protocol for Message {
        fn knows(kind: &str) -> bool {
            matches!(kind, "ping" | "clipboard_update")
        }

        fn deserialize_kind<'de, D: Deserializer<'de>>(
            _: &str,
            deserializer: D,
        ) -> Result<Self, D::Error> {
            Self::deserialize(deserializer)
        }
    }
}
