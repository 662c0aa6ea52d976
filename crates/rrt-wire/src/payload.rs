//! Frame payloads: a message serialized in the connection's format, optionally compressed.
//!
//! With compression negotiated, every payload starts with a tag byte:
//!
//! ```text
//! 0x00 <serialized message>
//! 0x01 <u32 BE decompressed length> <LZ4 block>
//! ```
//!
//! Only payloads of at least the threshold are compressed, and only when that makes them smaller.
//! A large payload is first judged by a sample from its middle: one that LZ4 cannot shrink by a
//! twentieth (an image's or an archive's bytes) is sent raw without compressing the rest, which
//! on two cores cost more than the TLS stream it crosses.
//! The announced decompressed length is checked against the frame maximum before a byte is
//! allocated for it, so a small frame cannot expand into a decompression bomb.

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::{
    frame::HEADER_LEN,
    preamble::{Compression, Format},
    protocol::{Envelope, Protocol},
};

const RAW: u8 = 0x00;
const LZ4: u8 = 0x01;
const LZ4_HEADER_LEN: usize = 5;

/// A message that could not be serialized; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// JSON serialization failed (a map with non-string keys, say).
    #[error("could not serialize to JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// MessagePack serialization failed.
    #[error("could not serialize to MessagePack: {0}")]
    MessagePack(#[from] rmp_serde::encode::Error),
    /// The payload is larger than the peer accepts.
    #[error("message of {len} bytes exceeds the peer's frame limit of {max}")]
    TooLarge {
        /// The payload's size.
        len: usize,
        /// The peer's limit.
        max: u32,
    },
    /// An [`EncodedFrame`] made for another [`Encoding`] than the connection's (or before its
    /// handshake agreed on one): nothing was queued.
    #[error("a frame encoded as {frame:?} cannot go on a connection that uses {connection:?}")]
    WrongEncoding {
        /// The frame's encoding.
        frame: Encoding,
        /// The connection's, if its handshake is over.
        connection: Option<Encoding>,
    },
}

/// Everything a frame's bytes depend on besides the message: two connections with equal
/// encodings carry byte-identical frames for a message, so a message sent to many peers is
/// encoded once per distinct encoding ([`Encoding::encode`]) rather than once per peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoding {
    /// The payload format.
    pub format: Format,
    /// The compression in use.
    pub compression: Compression,
    /// Payloads smaller than this are never compressed.
    pub threshold: usize,
}

impl Encoding {
    /// `message` as one whole frame (length prefix included) for every connection of this
    /// encoding. No peer's limit is checked yet: each connection checks its own when the frame is
    /// queued ([`Session::send_encoded`](crate::Session::send_encoded)).
    pub fn encode(&self, message: &impl Serialize) -> Result<EncodedFrame, EncodeError> {
        let mut out = BytesMut::new();
        let plain_len = self.write_frame(message, &mut out)?;
        Ok(EncodedFrame {
            encoding: *self,
            bytes: out.freeze(),
            plain_len,
        })
    }

    /// Appends `message` as one frame to `out` and returns the length of its serialized form
    /// (before compression); on an error `out` is as it was.
    fn write_frame(
        &self,
        message: &impl Serialize,
        out: &mut BytesMut,
    ) -> Result<usize, EncodeError> {
        let start = out.len();
        out.put_u32(0);
        let written = match self.compression {
            Compression::None => {
                serialize_into(self.format, message, out).map(|()| out.len() - start - HEADER_LEN)
            }
            // Serialized in place after a raw tag, and compressed only if worth it: a large
            // payload that is sent raw (most are images' bytes) is not copied once more.
            Compression::Lz4 => {
                let body = out.len() + 1;
                out.put_u8(RAW);
                serialize_into(self.format, message, out).map(|()| {
                    let plain_len = out.len() - body;
                    if let Some(compressed) = compressed(&out[body..], self.threshold) {
                        out.truncate(body - 1);
                        out.put_u8(LZ4);
                        out.put_u32(u32::try_from(plain_len).unwrap_or(u32::MAX));
                        out.put_slice(&compressed);
                    }
                    plain_len
                })
            }
        };
        let plain_len = match written {
            Ok(plain_len) => plain_len,
            Err(error) => {
                out.truncate(start);
                return Err(error);
            }
        };
        let len = out.len() - start - HEADER_LEN;
        // Over u32::MAX it is over every frame limit, and refused when queued.
        let prefix = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
        out[start..start + HEADER_LEN].copy_from_slice(&prefix);
        Ok(plain_len)
    }
}

/// One message encoded as a whole frame for the connections of one [`Encoding`].
#[derive(Debug, Clone)]
pub struct EncodedFrame {
    encoding: Encoding,
    bytes: Bytes,
    /// The serialized message's length before compression: what the receiver holds.
    plain_len: usize,
}

impl EncodedFrame {
    /// The encoding it was made for.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The frame's bytes, length prefix included.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether a peer whose largest payload is `peer_max` takes it.
    fn check_limit(&self, peer_max: u32) -> Result<(), EncodeError> {
        check_limit(self.plain_len, self.bytes.len() - HEADER_LEN, peer_max)
    }
}

/// A well-framed payload that holds no message this side can use. The frame was consumed and the
/// stream is intact: the connection may go on.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// A message type this version does not know (a newer peer's): skipped.
    #[error("skipped a message of unknown type {kind:?}")]
    UnknownType {
        /// Its `type` tag.
        kind: String,
    },
    /// Not valid JSON, or not a valid message of a known type.
    #[error("malformed JSON message: {0}")]
    Json(#[from] serde_json::Error),
    /// Not valid MessagePack, or not a valid message of a known type.
    #[error("malformed MessagePack message: {0}")]
    MessagePack(#[from] rmp_serde::decode::Error),
    /// The compression tag byte is not one this version knows.
    #[error("unknown compression tag {0:#04x}")]
    UnknownCompressionTag(u8),
    /// A compressed payload too short to hold its length header.
    #[error("compressed payload of {0} bytes is shorter than its header")]
    ShortCompressedPayload(usize),
    /// The announced decompressed size is over the frame maximum (a decompression bomb).
    #[error("payload would decompress to {len} bytes, over the maximum of {max}")]
    DecompressedTooLarge {
        /// The announced size.
        len: u32,
        /// The maximum.
        max: u32,
    },
    /// The LZ4 block is corrupt or does not decompress to the announced size.
    #[error("corrupt compressed payload: {0}")]
    Decompress(String),
}

/// Serializes and deserializes payloads under a connection's negotiated settings.
#[derive(Debug, Clone)]
pub(crate) struct PayloadCodec {
    pub(crate) format: Format,
    pub(crate) compression: Compression,
    pub(crate) threshold: usize,
    /// The largest payload the peer accepts.
    pub(crate) peer_max: u32,
    /// The largest payload, decompressed, this side accepts.
    pub(crate) max: u32,
}

impl PayloadCodec {
    /// What this connection's frames depend on.
    pub(crate) fn encoding(&self) -> Encoding {
        Encoding {
            format: self.format,
            compression: self.compression,
            threshold: self.threshold,
        }
    }

    /// Appends `message` as one frame to `out`.
    pub(crate) fn encode(
        &self,
        message: &impl Serialize,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let start = out.len();
        let plain_len = self.encoding().write_frame(message, out)?;
        let payload = out.len() - start - HEADER_LEN;
        if let Err(error) = check_limit(plain_len, payload, self.peer_max) {
            out.truncate(start);
            return Err(error);
        }
        Ok(())
    }

    /// Appends a frame encoded for many connections to `out`, if it suits this one.
    pub(crate) fn append(
        &self,
        frame: &EncodedFrame,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let encoding = self.encoding();
        if frame.encoding != encoding {
            return Err(EncodeError::WrongEncoding {
                frame: frame.encoding,
                connection: Some(encoding),
            });
        }
        frame.check_limit(self.peer_max)?;
        out.extend_from_slice(&frame.bytes);
        Ok(())
    }

    /// The message in one frame's payload: its tag first, then the message of that tag.
    pub(crate) fn decode<M: Protocol>(&self, payload: &[u8]) -> Result<M, PayloadError> {
        let body = match self.compression {
            Compression::None => Cow::Borrowed(payload),
            Compression::Lz4 => self.decompress(payload)?,
        };
        match self.format {
            Format::Json => {
                let kind = match leading_tag(Format::Json, &body) {
                    Some(kind) => kind.to_owned(),
                    None => serde_json::from_slice::<Envelope>(&body)?.kind,
                };
                known::<M>(kind).and_then(|kind| {
                    let mut deserializer = serde_json::Deserializer::from_slice(&body);
                    let message = M::deserialize_kind(&kind, &mut deserializer)?;
                    deserializer.end()?;
                    Ok(message)
                })
            }
            Format::MessagePack => {
                let kind = match leading_tag(Format::MessagePack, &body) {
                    Some(kind) => kind.to_owned(),
                    None => rmp_serde::from_slice::<Envelope>(&body)?.kind,
                };
                known::<M>(kind).and_then(|kind| {
                    let mut deserializer = rmp_serde::Deserializer::from_read_ref(&body);
                    Ok(M::deserialize_kind(&kind, &mut deserializer)?)
                })
            }
        }
    }

    fn decompress<'a>(&self, payload: &'a [u8]) -> Result<Cow<'a, [u8]>, PayloadError> {
        decompress_payload(payload, self.max)
    }
}

/// Whether a peer whose largest payload is `peer_max` takes a frame whose message serializes to
/// `plain_len` bytes and whose payload is `payload` bytes. The receiver holds the message
/// decompressed, up to its limit: a message that only fits compressed would be refused there, so
/// it is refused here, where it is known.
fn check_limit(plain_len: usize, payload: usize, peer_max: u32) -> Result<(), EncodeError> {
    for len in [plain_len, payload] {
        if len > peer_max as usize {
            return Err(EncodeError::TooLarge { len, max: peer_max });
        }
    }
    Ok(())
}

fn serialize_into(
    format: Format,
    message: &impl Serialize,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let mut writer = out.writer();
    match format {
        Format::Json => serde_json::to_writer(&mut writer, message)?,
        Format::MessagePack => rmp_serde::encode::write_named(&mut writer, message)?,
    }
    Ok(())
}

/// Appends a serialized message as the payload of an LZ4-negotiated connection: tag `00` and the
/// bytes as they are when they are shorter than `threshold` or would not shrink, else tag `01`,
/// the length (u32, big-endian) and one LZ4 block. For tools that handle payloads themselves
/// (`rrt frame`); a [`MessageCodec`](crate::MessageCodec) does this on its own.
pub fn compress_payload(plain: &[u8], threshold: usize, out: &mut BytesMut) {
    match compressed(plain, threshold) {
        Some(compressed) => {
            out.put_u8(LZ4);
            // Over u32::MAX it is over every frame limit, and refused by the caller.
            out.put_u32(u32::try_from(plain.len()).unwrap_or(u32::MAX));
            out.put_slice(&compressed);
        }
        None => {
            out.put_u8(RAW);
            out.put_slice(plain);
        }
    }
}

/// `plain` as one LZ4 block, if it is at least `threshold` long and that makes it smaller.
fn compressed(plain: &[u8], threshold: usize) -> Option<Vec<u8>> {
    if plain.len() < threshold || !worth_compressing(plain) {
        return None;
    }
    let compressed = lz4_flex::block::compress(plain);
    (compressed.len() + LZ4_HEADER_LEN < plain.len()).then_some(compressed)
}

/// Payloads this large are judged by a sample before they are compressed.
const SAMPLE_FROM: usize = 256 * 1024;
/// The sample's size.
const SAMPLE: usize = 64 * 1024;

/// Whether LZ4 shrinks a sample from the middle of `plain` by at least a twentieth (always, for a
/// payload too small to sample).
fn worth_compressing(plain: &[u8]) -> bool {
    if plain.len() < SAMPLE_FROM {
        return true;
    }
    let start = (plain.len() - SAMPLE) / 2;
    let sample = &plain[start..start + SAMPLE];
    lz4_flex::block::compress(sample).len() < SAMPLE - SAMPLE / 20
}

/// The serialized message in a payload of an LZ4-negotiated connection, refusing to inflate to
/// more than `max` bytes before allocating anything.
pub fn decompress_payload(payload: &[u8], max: u32) -> Result<Cow<'_, [u8]>, PayloadError> {
    match payload {
        [RAW, body @ ..] => Ok(Cow::Borrowed(body)),
        [LZ4, l0, l1, l2, l3, block @ ..] => {
            let len = u32::from_be_bytes([*l0, *l1, *l2, *l3]);
            if len > max {
                return Err(PayloadError::DecompressedTooLarge { len, max });
            }
            let mut body = vec![0; len as usize];
            let written = lz4_flex::block::decompress_into(block, &mut body)
                .map_err(|error| PayloadError::Decompress(error.to_string()))?;
            if written != body.len() {
                return Err(PayloadError::Decompress(format!(
                    "{written} bytes decompressed, {len} announced"
                )));
            }
            Ok(Cow::Owned(body))
        }
        [LZ4, ..] => Err(PayloadError::ShortCompressedPayload(payload.len())),
        [tag, ..] => Err(PayloadError::UnknownCompressionTag(*tag)),
        [] => Err(PayloadError::ShortCompressedPayload(0)),
    }
}

/// The `type` tag when it is the payload's first field, as every serializer that writes the tag
/// first (serde's `tag = "type"`, rrt) puts it, read without parsing the rest: a large message
/// would otherwise be parsed twice, once for its tag. `None` sends the caller to a full parse of
/// the envelope, which finds the tag wherever it is. Only tags of the letters and `_` every
/// message type is made of are read here; anything else is left to the full parse.
fn leading_tag(format: Format, body: &[u8]) -> Option<&str> {
    let (rest, len) = match format {
        Format::Json => {
            let rest = body.strip_prefix(br#"{"type":""#)?;
            (rest, rest.iter().position(|&byte| byte == b'"')?)
        }
        // A map (fixmap), the key "type" (fixstr of 4), the tag (fixstr of up to 31 bytes).
        Format::MessagePack => match body {
            [
                0x81..=0x8f,
                0xa4,
                b't',
                b'y',
                b'p',
                b'e',
                tag @ 0xa0..=0xbf,
                rest @ ..,
            ] => (rest, usize::from(tag - 0xa0)),
            _ => return None,
        },
    };
    let tag = rest.get(..len)?;
    tag.iter()
        .all(|byte| byte.is_ascii_lowercase() || *byte == b'_')
        .then(|| std::str::from_utf8(tag).ok())
        .flatten()
}

/// `kind` if `M` knows it; a message of another is a newer peer's, to be skipped.
fn known<M: Protocol>(kind: String) -> Result<String, PayloadError> {
    if M::knows(&kind) {
        Ok(kind)
    } else {
        Err(PayloadError::UnknownType { kind })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::Message;

    fn codec(format: Format, compression: Compression) -> PayloadCodec {
        PayloadCodec {
            format,
            compression,
            threshold: 64,
            peer_max: 1 << 20,
            max: 1 << 20,
        }
    }

    fn payload_of(codec: &PayloadCodec, message: &Message) -> Vec<u8> {
        let mut out = BytesMut::new();
        codec.encode(message, &mut out).expect("encodes");
        out[HEADER_LEN..].to_vec()
    }

    #[test]
    fn a_leading_tag_is_read_without_a_parse_and_any_other_layout_falls_back() {
        assert_eq!(
            leading_tag(Format::Json, br#"{"type":"ping","timestamp":1}"#),
            Some("ping")
        );
        assert_eq!(
            leading_tag(Format::Json, br#"{"timestamp":1,"type":"ping"}"#),
            None
        );
        assert_eq!(leading_tag(Format::Json, br#"{"type":"p\u0069ng"}"#), None);
        let packed = rmp_serde::to_vec_named(&Message::Ping { timestamp: 1 }).expect("packs");
        assert_eq!(leading_tag(Format::MessagePack, &packed), Some("ping"));
        assert_eq!(leading_tag(Format::MessagePack, &packed[..7]), None);
        // Either way the message decodes the same.
        let codec = codec(Format::Json, Compression::None);
        for json in [
            br#"{"type":"ping","timestamp":1}"#.as_slice(),
            br#"{"timestamp":1,"type":"ping"}"#.as_slice(),
        ] {
            assert_eq!(
                codec.decode::<Message>(json).expect("decodes"),
                Message::Ping { timestamp: 1 }
            );
        }
    }

    #[test]
    fn uncompressed_json_frames_are_plain_json() {
        let payload = payload_of(
            &codec(Format::Json, Compression::None),
            &Message::Ping { timestamp: 1 },
        );
        assert_eq!(payload, br#"{"type":"ping","timestamp":1}"#);
    }

    #[test]
    fn only_large_compressible_payloads_are_compressed() {
        let codec = codec(Format::Json, Compression::Lz4);
        let small = payload_of(&codec, &Message::Ping { timestamp: 1 });
        assert_eq!(small[0], RAW);
        let big = Message::ClipboardUpdate {
            data: "abc".repeat(1000),
            timestamp: 1,
            counter: 0,
            source_instance: uuid::Uuid::nil(),
        };
        let payload = payload_of(&codec, &big);
        assert_eq!(payload[0], LZ4);
        assert!(payload.len() < 500);
        assert_eq!(codec.decode::<Message>(&payload).expect("decodes"), big);
    }

    #[test]
    fn a_large_payload_that_does_not_compress_is_sent_raw_and_one_that_does_is_compressed() {
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let noise: Vec<u8> = (0..1 << 20)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let mut out = BytesMut::new();
        compress_payload(&noise, 512, &mut out);
        assert_eq!(out[0], RAW, "incompressible: raw, not compressed in vain");
        assert_eq!(&out[1..], &noise[..]);
        let text = b"All work and no play makes Jack a dull boy. ".repeat(30_000);
        let mut out = BytesMut::new();
        compress_payload(&text, 512, &mut out);
        assert_eq!(out[0], LZ4);
        assert!(out.len() < text.len() / 10);
    }

    #[test]
    fn a_decompression_bomb_is_refused_before_allocating() {
        let codec = PayloadCodec {
            max: 1000,
            ..codec(Format::Json, Compression::Lz4)
        };
        let bomb = [LZ4, 0xff, 0xff, 0xff, 0xff, 0x00];
        assert!(matches!(
            codec.decode::<Message>(&bomb),
            Err(PayloadError::DecompressedTooLarge {
                len: u32::MAX,
                max: 1000
            })
        ));
    }

    #[test]
    fn corrupt_compressed_payloads_are_typed_errors() {
        let codec = codec(Format::Json, Compression::Lz4);
        assert!(matches!(
            codec.decode::<Message>(&[LZ4, 0, 0, 0, 10, 0xff, 0xff]),
            Err(PayloadError::Decompress(_))
        ));
        assert!(matches!(
            codec.decode::<Message>(&[LZ4, 0, 0]),
            Err(PayloadError::ShortCompressedPayload(3))
        ));
        assert!(matches!(
            codec.decode::<Message>(&[7]),
            Err(PayloadError::UnknownCompressionTag(7))
        ));
    }

    #[test]
    fn unknown_types_are_told_apart_from_malformed_known_ones() {
        let json = codec(Format::Json, Compression::None);
        assert!(matches!(
            json.decode::<Message>(br#"{"type":"teleport","to":"mars"}"#),
            Err(PayloadError::UnknownType { kind }) if kind == "teleport"
        ));
        assert!(matches!(
            json.decode::<Message>(br#"{"type":"ping","timestamp":"soon"}"#),
            Err(PayloadError::Json(_))
        ));
        assert!(matches!(
            json.decode::<Message>(b"\xff\x00garbage"),
            Err(PayloadError::Json(_))
        ));
    }

    #[test]
    fn deeply_nested_json_is_an_error_not_a_stack_overflow() {
        let json = codec(Format::Json, Compression::None);
        let nested = format!(
            r#"{{"type":"ping","timestamp":1,"x":{}{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(matches!(
            json.decode::<Message>(nested.as_bytes()),
            Err(PayloadError::Json(_))
        ));
    }

    #[test]
    fn a_message_over_the_peers_limit_is_refused_and_nothing_written() {
        let json = PayloadCodec {
            peer_max: 1024,
            ..codec(Format::Json, Compression::None)
        };
        let mut out = BytesMut::from(&b"earlier"[..]);
        let big = Message::ClipboardUpdate {
            data: "x".repeat(2000),
            timestamp: 1,
            counter: 0,
            source_instance: uuid::Uuid::nil(),
        };
        assert!(matches!(
            json.encode(&big, &mut out),
            Err(EncodeError::TooLarge { max: 1024, .. })
        ));
        assert_eq!(&out[..], b"earlier");
        // Compressed it would fit the frame, but the peer would refuse it decompressed.
        let lz4 = PayloadCodec {
            peer_max: 1024,
            ..codec(Format::Json, Compression::Lz4)
        };
        assert!(matches!(
            lz4.encode(&big, &mut out),
            Err(EncodeError::TooLarge { max: 1024, .. })
        ));
        assert_eq!(&out[..], b"earlier");
    }

    #[test]
    fn a_shared_frame_is_the_frame_each_connection_would_encode_and_keeps_its_limits() {
        let big = Message::ClipboardUpdate {
            data: "abc".repeat(1000),
            timestamp: 1,
            counter: 0,
            source_instance: uuid::Uuid::nil(),
        };
        for (format, compression) in [
            (Format::Json, Compression::None),
            (Format::MessagePack, Compression::Lz4),
        ] {
            let codec = codec(format, compression);
            let frame = codec.encoding().encode(&big).expect("encodes");
            let mut own = BytesMut::new();
            codec.encode(&big, &mut own).expect("encodes");
            let mut shared = BytesMut::new();
            codec.append(&frame, &mut shared).expect("suits");
            assert_eq!(shared, own);
            // A peer that takes less refuses it, compressed or not, and nothing is appended.
            let small = PayloadCodec {
                peer_max: 1024,
                ..codec.clone()
            };
            let mut out = BytesMut::from(&b"earlier"[..]);
            assert!(matches!(
                small.append(&frame, &mut out),
                Err(EncodeError::TooLarge { max: 1024, .. })
            ));
            assert_eq!(&out[..], b"earlier");
        }
        let json = codec(Format::Json, Compression::None)
            .encoding()
            .encode(&big);
        let lz4 = codec(Format::Json, Compression::Lz4);
        assert!(matches!(
            lz4.append(&json.expect("encodes"), &mut BytesMut::new()),
            Err(EncodeError::WrongEncoding { .. })
        ));
    }
}
