//! The join secret's proof: pure functions of the secret, the session's keying material (TLS on
//! the LAN, QUIC across networks), the prover's key and name. The streams export the keying
//! material under [`EXPORTER_LABEL`], the admission checks proofs; `docs/PROTOCOL.md` ("Across
//! hosts") specifies the bytes, so other implementations can prove and check the same.

use ring::hmac;

use crate::identity::DeviceId;

/// The label of the keying material join proofs are made over (TLS 1.3's exporter, RFC 8446
/// § 7.5; QUIC's the same way).
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-rrt-join-secret";

/// The proof that the holder of the certificate `id`, named `device`, knows `secret`:
/// the lowercase hex of HMAC-SHA256(`secret`, `exporter` ‖ the id's 32 bytes ‖ the
/// device name in UTF-8), where `exporter` is 32 bytes of the session's TLS keying material for
/// the label `EXPORTER-rrt-join-secret` (docs/PROTOCOL.md, "Across hosts").
pub fn join_proof(secret: &[u8], exporter: &[u8; 32], id: DeviceId, device: &str) -> String {
    let message = join_message(exporter, id, device);
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), &message);
    tag.as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Whether `proof` is [`join_proof`] of these inputs (compared in constant time).
pub fn verify_join(
    secret: &[u8],
    exporter: &[u8; 32],
    id: DeviceId,
    device: &str,
    proof: &str,
) -> bool {
    let Some(tag) = decode_hex(proof) else {
        return false;
    };
    let message = join_message(exporter, id, device);
    hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, secret), &message, &tag).is_ok()
}

fn join_message(exporter: &[u8; 32], id: DeviceId, device: &str) -> Vec<u8> {
    [exporter, id.as_bytes(), device.as_bytes()].concat()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}
