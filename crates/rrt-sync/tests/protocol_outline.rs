//! PROTOCOL.md's worked outline example: a blob of three parts whose hash, part chaining values
//! and outline are given in hex — what this crate computes and checks, so a client written from
//! the spec alone can check it has BLAKE3's tree right.

use std::collections::BTreeMap;

use rrt_sync::{
    BlobHash,
    outline::{Outline, OutlineBuilder, PART},
};

/// The `name = value` lines of the example after `<!-- example: outline -->`.
fn example() -> BTreeMap<String, String> {
    let spec = include_str!("../../../docs/PROTOCOL.md");
    let start = spec
        .find("<!-- example: outline -->")
        .expect("PROTOCOL.md has the outline example");
    let block = spec[start..]
        .split("```")
        .nth(1)
        .expect("a fenced block")
        .trim_start_matches("text");
    block
        .lines()
        .filter_map(|line| line.split_once(" = "))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[test]
fn the_documented_outline_is_what_a_blob_of_three_parts_hashes_to() {
    let example = example();
    let field = |name: &str| {
        example
            .get(name)
            .unwrap_or_else(|| panic!("no `{name} =`"))
            .clone()
    };
    let size: u64 = field("size").parse().expect("a size");
    // "byte i is i mod 251"
    let blob: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let mut builder = OutlineBuilder::default();
    builder.update(&blob);
    let outline = builder.finish();
    assert_eq!(outline.hash().to_string(), field("hash"));
    assert_eq!(outline.hash(), BlobHash::of(&blob), "the plain BLAKE3 hash");
    let values = outline.to_bytes();
    for (index, value) in values.chunks(32).enumerate() {
        assert_eq!(hex(value), field(&format!("part {index}")), "part {index}");
    }
    assert_eq!(values.len() as u64, 32 * size.div_ceil(PART));
    // The documented values, sent as an outline, are checked against the hash.
    let sent: Vec<u8> = (0..3)
        .flat_map(|index| {
            let text = field(&format!("part {index}"));
            (0..64)
                .step_by(2)
                .map(move |at| u8::from_str_radix(&text[at..at + 2], 16).expect("hex"))
        })
        .collect();
    let hash: BlobHash = field("hash").parse().expect("a hash");
    let verified = Outline::verified(hash, size, &sent).expect("the outline checks");
    assert!(verified.check_part(2, &blob[2 * PART as usize..]));
}

#[test]
fn the_documented_representations_are_what_they_say() {
    let spec = include_str!("../../../docs/PROTOCOL.md");
    let mut checked = 0;
    for line in spec
        .lines()
        .filter(|line| line.starts_with("{\"type\":\"clipboard_update\""))
    {
        let message: rrt_sync::ClipMessage = serde_json::from_str(line).expect(line);
        let rrt_sync::ClipMessage::ClipboardUpdate { content, .. } = message else {
            unreachable!("a clipboard_update");
        };
        rrt_sync::check_content(&content).unwrap_or_else(|error| panic!("{line}: {error}"));
        checked += content.len();
    }
    assert!(checked >= 2, "the examples have representations");
}
