//! The examples of `docs/PROTOCOL.md`, checked against the reference codec so the specification
//! and the code cannot drift apart.
//!
//! The conventions the document follows, defined here:
//!
//! * Every line of a `json` block is one message written exactly as the reference implementation
//!   writes it: it parses as a [`Message`] and serialises back to the same JSON value (key order
//!   aside). So a field the codec omits (a zero `counter`, an empty `name` or `state_vector`) must
//!   not be written out, and every field the codec writes must be. A `json pairing` block holds
//!   the pairing stream's messages ([`PairMessage`]) under the same rule.
//! * A `text` block whose line before the opening fence is `<!-- example: KIND [JSON] -->` is
//!   checked according to KIND:
//!   - `preamble {"format": …, "compression": …, "max_frame": …}`: 16 bytes that decode to those
//!     values and that encoding those values gives back;
//!   - `frame json|msgpack [lz4] MESSAGE`: exactly one frame, which decodes under that format and
//!     compression to MESSAGE, and which encoding MESSAGE gives back byte for byte;
//!   - `join-proof`: `name = value` lines giving the inputs and output of the join proof, checked
//!     by `crates/rrt-mesh/tests/protocol_join_proof.rs` against the daemon's own proof;
//!   - `ticket`: `name = value` lines giving a ticket's fields, bytes and text, checked by
//!     `crates/rrt-mesh/tests/protocol_ticket.rs` against the daemon's own encoding.
//! * In a marked block, a line made only of two-digit hex tokens carries bytes; any other line is
//!   an annotation for people. In a frame example, every annotation `len N` must be the length
//!   prefix and every `size N` the compressed payload's announced size.
//! * In an example's JSON, `{"repeat": S, "times": N}` stands for the string S repeated N times.
//! * Every `text` block holding a byte line is marked, every marker is followed by a `text` block,
//!   every message type has a `json` example, and the messages table lists exactly the types the
//!   code knows.

use std::{collections::BTreeSet, path::Path, time::Instant};

use bytes::BytesMut;
use rrt_mesh::{Message, PAIR_MESSAGE_TYPES, PairMessage, message_types};
use rrt_wire::{
    Compression, Format, MessageCodec, Negotiated, PREAMBLE_LEN, Preamble, Received, WireConfig,
};
use serde_json::Value;

/// One fenced block of the document.
struct Block {
    /// What follows the opening fence: `json`, `text`, `bash`…
    info: String,
    /// The example marker on the line before the opening fence, between `example:` and `-->`.
    marker: Option<String>,
    /// The line of the opening fence (1-based), to point at a failing example.
    line: usize,
    /// The lines between the fences.
    body: Vec<String>,
}

fn specification() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/PROTOCOL.md");
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn marker(line: &str) -> Option<&str> {
    let inner = line
        .trim()
        .strip_prefix("<!-- example:")?
        .strip_suffix("-->")?;
    Some(inner.trim())
}

fn blocks(document: &str) -> Vec<Block> {
    let lines: Vec<&str> = document.lines().collect();
    let mut blocks = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let line = lines[index];
        if marker(line).is_some() {
            let next = lines.get(index + 1).map_or("", |next| next.trim());
            assert_eq!(
                next,
                "```text",
                "PROTOCOL.md:{}: an example marker must come right before a ```text block",
                index + 1
            );
        }
        let Some(info) = line.trim_start().strip_prefix("```") else {
            index += 1;
            continue;
        };
        let close = (index + 1..lines.len())
            .find(|&i| lines[i].trim_start().starts_with("```"))
            .unwrap_or_else(|| panic!("PROTOCOL.md:{}: a block that never closes", index + 1));
        blocks.push(Block {
            info: info.trim().to_owned(),
            marker: index
                .checked_sub(1)
                .and_then(|previous| marker(lines[previous]))
                .map(str::to_owned),
            line: index + 1,
            body: lines[index + 1..close]
                .iter()
                .map(|line| (*line).to_owned())
                .collect(),
        });
        index = close + 1;
    }
    blocks
}

/// The bytes of a line made only of two-digit hex tokens; `None` for an annotation.
fn byte_line(line: &str) -> Option<Vec<u8>> {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    if tokens.is_empty() {
        return None;
    }
    tokens
        .iter()
        .map(|token| {
            let hex = token.len() == 2 && token.bytes().all(|byte| byte.is_ascii_hexdigit());
            hex.then(|| u8::from_str_radix(token, 16).ok()).flatten()
        })
        .collect()
}

/// A marked block's bytes and its annotation lines.
fn bytes_and_annotations(block: &Block) -> (Vec<u8>, Vec<&str>) {
    let mut bytes = Vec::new();
    let mut annotations = Vec::new();
    for line in &block.body {
        match byte_line(line) {
            Some(line_bytes) => bytes.extend(line_bytes),
            None => annotations.push(line.as_str()),
        }
    }
    (bytes, annotations)
}

/// Every number that follows `word` and one space in the annotations (`len 41` → 41).
fn numbers_after(annotations: &[&str], word: &str) -> Vec<u64> {
    let pattern = format!("{word} ");
    annotations
        .iter()
        .flat_map(|line| line.match_indices(&pattern).map(|(at, _)| &line[at..]))
        .filter_map(|rest| {
            let digits: String = rest[pattern.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `{"repeat": S, "times": N}` anywhere in `value` becomes S repeated N times.
fn expand(value: Value) -> Value {
    match value {
        Value::Object(map) if map.len() == 2 && map.contains_key("repeat") => {
            let text = map["repeat"].as_str().expect("`repeat` is a string");
            let times = map["times"].as_u64().expect("`times` is a count");
            Value::String(text.repeat(usize::try_from(times).expect("a sane count")))
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| (key, expand(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(expand).collect()),
        other => other,
    }
}

/// The message `value` holds, which must be exactly what the reference implementation writes.
fn canonical_message(value: &Value, place: &str) -> Message {
    let message: Message = serde_json::from_value(value.clone())
        .unwrap_or_else(|error| panic!("{place}: not a message: {error}"));
    let written = serde_json::to_value(&message).expect("a message serialises");
    assert_eq!(
        &written, value,
        "{place}: the reference implementation writes this message otherwise"
    );
    message
}

fn check_preamble(place: &str, expected: &Value, bytes: &[u8]) {
    let format = match expected["format"].as_str() {
        Some("json") => Format::Json,
        Some("msgpack") => Format::MessagePack,
        other => panic!("{place}: unknown format {other:?} in the marker"),
    };
    let compression = match expected["compression"].as_str() {
        Some("none") => Compression::None,
        Some("lz4") => Compression::Lz4,
        other => panic!("{place}: unknown compression {other:?} in the marker"),
    };
    let max_frame = expected["max_frame"]
        .as_u64()
        .and_then(|max| u32::try_from(max).ok())
        .unwrap_or_else(|| panic!("{place}: the marker needs a u32 max_frame"));
    let expected = Preamble {
        format,
        compression,
        max_frame,
    };
    let bytes: [u8; PREAMBLE_LEN] = bytes.try_into().unwrap_or_else(|_| {
        panic!(
            "{place}: {} bytes; a preamble is {PREAMBLE_LEN}",
            bytes.len()
        )
    });
    assert_eq!(
        Preamble::decode(&bytes),
        Ok(expected),
        "{place}: decodes otherwise"
    );
    assert_eq!(
        hex(&expected.encode()),
        hex(&bytes),
        "{place}: the reference implementation writes this preamble otherwise"
    );
}

fn check_frame(
    place: &str,
    negotiated: Negotiated,
    message: &Message,
    bytes: &[u8],
    annotations: &[&str],
) {
    let config = WireConfig::default();
    let mut codec = MessageCodec::<Message>::new(negotiated, &config);
    let mut buffer = BytesMut::from(bytes);
    match codec.decode_frame(&mut buffer, Instant::now()) {
        Ok(Some(Received::Message(decoded))) => {
            assert_eq!(
                &decoded, message,
                "{place}: the frame holds another message"
            );
        }
        other => panic!("{place}: not a whole frame holding a message: {other:?}"),
    }
    assert!(
        buffer.is_empty(),
        "{place}: {} bytes after the frame",
        buffer.len()
    );
    let mut encoded = BytesMut::new();
    codec
        .encode_message(message, &mut encoded)
        .unwrap_or_else(|error| panic!("{place}: {error}"));
    assert_eq!(
        hex(&encoded),
        hex(bytes),
        "{place}: the reference implementation frames this message otherwise"
    );

    let length = u64::from(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]));
    let lengths = numbers_after(annotations, "len");
    assert!(!lengths.is_empty(), "{place}: no `len N` annotation");
    for annotated in lengths {
        assert_eq!(annotated, length, "{place}: annotated `len {annotated}`");
    }
    for annotated in numbers_after(annotations, "size") {
        assert_eq!(
            bytes[4], 0x01,
            "{place}: `size` annotated on an uncompressed payload"
        );
        let size = u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]);
        assert_eq!(
            annotated,
            u64::from(size),
            "{place}: annotated `size {annotated}`"
        );
    }
}

/// Every non-empty line of the blocks whose info is `info`, parsed as JSON, with its place.
fn json_lines(document: &str, info: &str) -> Vec<(String, Value)> {
    let mut lines = Vec::new();
    for block in blocks(document).iter().filter(|block| block.info == info) {
        for (offset, line) in block.body.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let place = format!("PROTOCOL.md:{}", block.line + 1 + offset);
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("{place}: not JSON: {error}"));
            lines.push((place, value));
        }
    }
    lines
}

/// The `type` of each of `lines`.
fn types(lines: &[(String, Value)]) -> BTreeSet<String> {
    lines
        .iter()
        .map(|(place, value)| {
            value["type"]
                .as_str()
                .unwrap_or_else(|| panic!("{place}: no type"))
                .to_owned()
        })
        .collect()
}

#[test]
fn every_json_line_is_a_message_as_the_reference_implementation_writes_it() {
    let lines = json_lines(&specification(), "json");
    for (place, value) in &lines {
        canonical_message(value, place);
    }
    assert!(!lines.is_empty(), "no json examples found");
}

#[test]
fn every_pairing_message_is_written_as_the_reference_writes_it_and_each_has_an_example() {
    let lines = json_lines(&specification(), "json pairing");
    for (place, value) in &lines {
        let message: PairMessage = serde_json::from_value(value.clone())
            .unwrap_or_else(|error| panic!("{place}: not a pairing message: {error}"));
        let written = serde_json::to_value(&message).expect("a message serialises");
        assert_eq!(
            &written, value,
            "{place}: the reference writes it otherwise"
        );
    }
    let known: BTreeSet<String> = PAIR_MESSAGE_TYPES.map(str::to_owned).into();
    assert_eq!(types(&lines), known, "the pairing examples' types");
}

#[test]
fn every_message_type_has_an_example_and_a_row_in_the_table() {
    let document = specification();
    let examples = types(&json_lines(&document, "json"));
    let known: BTreeSet<String> = message_types().map(str::to_owned).collect();
    assert_eq!(examples, known, "the json examples' types");

    let mut table = document
        .lines()
        .skip_while(|line| !line.starts_with("| `type` |"));
    assert!(table.next().is_some(), "no messages table (`| `type` | …`)");
    let rows: BTreeSet<String> = table
        .skip(1)
        .take_while(|line| line.starts_with('|'))
        .map(|row| {
            let cell = row.split('|').nth(1).expect("a first cell").trim();
            cell.trim_matches('`').to_owned()
        })
        .collect();
    assert_eq!(rows, known, "the messages table's rows");
}

#[test]
fn marked_hex_examples_are_what_the_codec_reads_and_writes() {
    let document = specification();
    let mut kinds = BTreeSet::new();
    for block in blocks(&document) {
        let place = format!("PROTOCOL.md:{}", block.line);
        let (bytes, annotations) = bytes_and_annotations(&block);
        let Some(marker) = &block.marker else {
            assert!(
                bytes.is_empty(),
                "{place}: a block with hex bytes but no `<!-- example: … -->` marker"
            );
            continue;
        };
        let (kind, json) = match marker.find('{') {
            Some(at) => {
                let value: Value = serde_json::from_str(&marker[at..])
                    .unwrap_or_else(|error| panic!("{place}: the marker's JSON: {error}"));
                (marker[..at].trim(), Some(expand(value)))
            }
            None => (marker.as_str(), None),
        };
        let expected = || {
            json.as_ref()
                .unwrap_or_else(|| panic!("{place}: `{kind}` needs JSON in its marker"))
        };
        let negotiated = |format, compression| Negotiated {
            format,
            compression,
            peer_max_frame: WireConfig::default().max_frame,
        };
        match kind {
            "preamble" => check_preamble(&place, expected(), &bytes),
            "frame json" | "frame msgpack" | "frame json lz4" | "frame msgpack lz4" => {
                let format = if kind.starts_with("frame json") {
                    Format::Json
                } else {
                    Format::MessagePack
                };
                let compression = if kind.ends_with("lz4") {
                    Compression::Lz4
                } else {
                    Compression::None
                };
                let message = canonical_message(expected(), &place);
                check_frame(
                    &place,
                    negotiated(format, compression),
                    &message,
                    &bytes,
                    &annotations,
                );
            }
            // The proof is an HMAC: `rrt-mesh`'s `protocol_join_proof` test checks this block
            // against the daemon's own `join_proof`; `protocol_ticket` checks the ticket;
            // `rrt-sync`'s `protocol_outline` checks the outline.
            "join-proof" | "ticket" | "outline" => {}
            other => panic!("{place}: unknown example kind {other:?}"),
        }
        kinds.insert(kind.to_owned());
    }
    let expected: BTreeSet<String> = [
        "preamble",
        "frame json",
        "frame msgpack",
        "frame json lz4",
        "join-proof",
        "ticket",
        "outline",
    ]
    .map(str::to_owned)
    .into();
    assert!(
        kinds.is_superset(&expected),
        "examples missing: {:?}",
        expected.difference(&kinds).collect::<Vec<_>>()
    );
}
