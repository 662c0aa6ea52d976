//! One message to many links, encoded once per [`Encoding`] among them rather than once per
//! link: a clipboard copy broadcast to twenty peers that all speak JSON is serialized once.
//!
//! ```text
//!  message ─▶ Frames ──encoding of link 1 ─▶ encode (first time) ─▶ frame ─▶ link 1's session
//!                    ├─encoding of link 2 ─▶ (same encoding: the same frame) ─▶ link 2's session
//!                    └─…
//! ```

use rrt_wire::{EncodeError, EncodedFrame, Encoding};

use crate::Message;

/// A message's frames, each encoding's made the first time a link of it asks.
pub(super) struct Frames<'a> {
    message: &'a Message,
    encoded: Vec<(Encoding, Result<EncodedFrame, EncodeError>)>,
}

impl<'a> Frames<'a> {
    pub(super) fn new(message: &'a Message) -> Self {
        Self {
            message,
            encoded: Vec::new(),
        }
    }

    /// The message's frame for links of `encoding` (or why it cannot be encoded so), encoded on
    /// the first call for that encoding only. A handful of encodings at most: a list does.
    pub(super) fn get(&mut self, encoding: Encoding) -> Result<&EncodedFrame, &EncodeError> {
        let index = match self
            .encoded
            .iter()
            .position(|(known, _)| *known == encoding)
        {
            Some(index) => index,
            None => {
                self.encoded.push((encoding, encoding.encode(self.message)));
                self.encoded.len() - 1
            }
        };
        self.encoded[index].1.as_ref()
    }

    /// How many times the message was encoded.
    #[cfg(test)]
    fn encodings(&self) -> usize {
        self.encoded.len()
    }
}

#[cfg(test)]
mod tests {
    use rrt_wire::{Compression, Format};

    use super::*;

    fn encoding(format: Format, compression: Compression) -> Encoding {
        Encoding {
            format,
            compression,
            threshold: 512,
        }
    }

    #[test]
    fn a_message_to_many_links_is_encoded_once_per_encoding() {
        let message = Message::Link(crate::LinkMessage::Ping { timestamp: 1 });
        let json = encoding(Format::Json, Compression::None);
        let packed = encoding(Format::MessagePack, Compression::Lz4);
        let mut frames = Frames::new(&message);
        let mut sent = Vec::new();
        for link in 0..20 {
            let encoding = if link % 10 == 9 { packed } else { json };
            let frame = frames.get(encoding).expect("encodes");
            sent.push(frame.as_bytes().to_vec());
        }
        assert_eq!(frames.encodings(), 2, "twenty links, two encodings");
        assert_eq!(sent[0], sent[8]);
        assert_ne!(sent[0], sent[9]);
        assert_eq!(sent[9], sent[19]);
    }
}
