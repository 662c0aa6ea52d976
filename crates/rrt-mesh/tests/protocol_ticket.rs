//! PROTOCOL.md's worked ticket example, byte for byte: its fields encode to the documented bytes
//! and text, and the text decodes to the fields — so a client written from the spec alone makes
//! and reads the same tickets.

use std::collections::BTreeMap;

use rrt_mesh::{DeviceId, Ticket};

/// The `name = value` lines of the example after `<!-- example: ticket -->`, continuation lines
/// (indented) joined to the line before.
fn example() -> BTreeMap<String, String> {
    let spec = include_str!("../../../docs/PROTOCOL.md");
    let start = spec
        .find("<!-- example: ticket -->")
        .expect("PROTOCOL.md has the ticket example");
    let block = spec[start..]
        .split("```")
        .nth(1)
        .expect("a fenced block")
        .trim_start_matches("text");
    let mut fields = BTreeMap::new();
    let mut last = String::new();
    for line in block.lines().filter(|line| !line.trim().is_empty()) {
        match line.split_once(" = ") {
            Some((name, value)) if !line.starts_with(' ') => {
                last = name.trim().to_owned();
                fields.insert(last.clone(), value.trim().to_owned());
            }
            _ => {
                let value = fields.get_mut(&last).expect("a line to continue");
                value.push(' ');
                value.push_str(line.trim());
            }
        }
    }
    fields
}

fn hex(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .flat_map(|word| {
            (0..word.len())
                .step_by(2)
                .map(move |at| u8::from_str_radix(&word[at..at + 2], 16).expect("hex"))
        })
        .collect()
}

#[test]
fn the_documented_ticket_encodes_and_decodes_byte_for_byte() {
    let example = example();
    let field = |name: &str| example.get(name).unwrap_or_else(|| panic!("no `{name} =`"));
    let ticket = Ticket {
        device: field("device").parse::<DeviceId>().expect("a device id"),
        relays: vec![field("relays").clone()],
        addrs: vec![field("addrs").parse().expect("an address")],
        secret: hex(field("secret")).try_into().expect("16 bytes"),
        expires_ms: field("expires_ms").parse().expect("a number"),
    };
    assert_eq!(
        postcard::to_allocvec(&ticket).expect("encodes"),
        hex(field("bytes"))
    );
    assert_eq!(&ticket.to_string(), field("ticket"));
    assert_eq!(field("ticket").parse::<Ticket>(), Ok(ticket));
}
