//! The join-proof example of `docs/PROTOCOL.md` (section 2), checked against the daemon's own
//! proof ([`rrt_mesh::proto::join::join_proof`], the function a live session calls with its TLS
//! exporter) and against HMAC-SHA256 over the byte layout the document gives:
//! `exporter ‖ device id (32 raw bytes) ‖ device (UTF-8)`, keyed with the secret file's bytes
//! trimmed of surrounding ASCII whitespace.
//!
//! The block is `name = value` lines (quoted values are JSON strings, the others hex, spaces
//! ignored; a line without `=` continues the value above it), right after the line
//! `<!-- example: join-proof -->`.

use std::{collections::BTreeMap, path::Path};

use ring::hmac;
use rrt_mesh::{
    DeviceId,
    proto::join::{join_proof, verify_join},
};

fn join_proof_example() -> BTreeMap<String, Vec<u8>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/PROTOCOL.md");
    let document = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let mut lines = document
        .lines()
        .skip_while(|line| line.trim() != "<!-- example: join-proof -->");
    assert!(lines.next().is_some(), "no `<!-- example: join-proof -->`");
    assert_eq!(lines.next().map(str::trim), Some("```text"));
    let mut raw: Vec<(String, String)> = Vec::new();
    for line in lines.take_while(|line| !line.trim_start().starts_with("```")) {
        match line.split_once('=') {
            Some((name, value)) => raw.push((name.trim().to_owned(), value.trim().to_owned())),
            None => {
                let (_, value) = raw.last_mut().expect("a name before a continuation line");
                value.push(' ');
                value.push_str(line.trim());
            }
        }
    }
    raw.into_iter()
        .map(|(name, value)| {
            let bytes = if value.starts_with('"') {
                serde_json::from_str::<String>(&value)
                    .unwrap_or_else(|error| panic!("{name}: {error}"))
                    .into_bytes()
            } else {
                let digits: String = value.split_whitespace().collect();
                assert!(
                    digits.len().is_multiple_of(2),
                    "{name}: an odd number of hex digits"
                );
                (0..digits.len())
                    .step_by(2)
                    .map(|at| {
                        u8::from_str_radix(&digits[at..at + 2], 16)
                            .unwrap_or_else(|error| panic!("{name}: {error}"))
                    })
                    .collect()
            };
            (name, bytes)
        })
        .collect()
}

#[test]
fn the_documented_join_proof_is_the_hmac_of_exporter_device_id_and_device() {
    let example = join_proof_example();
    let field = |name: &str| {
        example
            .get(name)
            .unwrap_or_else(|| panic!("the example has no `{name} = …`"))
            .as_slice()
    };
    let secret = field("secret file").trim_ascii();
    assert_eq!(secret, field("HMAC key"));
    assert!(secret.len() >= 16, "a daemon refuses a shorter secret");
    assert_eq!(field("exporter").len(), 32);
    assert_eq!(field("id").len(), 32, "the raw key, not hex text");

    let message = [field("exporter"), field("id"), field("device")].concat();
    assert_eq!(message, field("message"));
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, &message);
    assert_eq!(tag.as_ref(), field("proof"), "the documented proof");
    assert!(hmac::verify(&key, &message, field("proof")).is_ok());

    // The daemon computes exactly that.
    let hex = |bytes: &[u8]| -> String { bytes.iter().map(|byte| format!("{byte:02x}")).collect() };
    let exporter: [u8; 32] = field("exporter").try_into().expect("32 bytes");
    let id: DeviceId = hex(field("id")).parse().expect("a device id");
    let device = std::str::from_utf8(field("device")).expect("UTF-8");
    let proof = join_proof(secret, &exporter, id, device);
    assert_eq!(proof, hex(field("proof")));
    assert!(verify_join(secret, &exporter, id, device, &proof));
    assert!(!verify_join(secret, &exporter, id, "another name", &proof));
}
