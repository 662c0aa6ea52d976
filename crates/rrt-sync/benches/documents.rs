//! What documents cost on the wire: bytes per typed character, one message per keystroke and
//! batched. (Replaying an editing trace, against loro too, is `crdt-choice/` at the repository
//! root: it needs loro, which rrt does not ship.)
//!
//! Run: `cargo bench -p rrt-sync --bench documents`

use std::collections::BTreeMap;

use rrt_sync::{CrdtOperation, DocMessage, Document};

const TYPED: usize = 10_000;

fn main() {
    per_character();
}

fn delta(update: Vec<u8>) -> DocMessage {
    DocMessage::StateDelta {
        crdt_ops: vec![CrdtOperation {
            document: "notes".into(),
            update,
            state_vector: Vec::new(),
            part: None,
        }],
        vector_clock: BTreeMap::new(),
    }
}

/// Frame bytes (4-byte prefix + payload) of a message in JSON and in MessagePack.
fn frame_sizes(message: &DocMessage) -> (usize, usize) {
    let json = serde_json::to_vec(message).expect("json").len();
    let msgpack = rmp_serde::to_vec_named(message).expect("msgpack").len();
    (4 + json, 4 + msgpack)
}

fn per_character() {
    let document = Document::new(1);
    let (mut update_bytes, mut json, mut msgpack) = (0, 0, 0);
    let mut updates = Vec::new();
    for i in 0..TYPED {
        let character = (b'a' + (i % 26) as u8) as char;
        let update = document.append(&character.to_string());
        update_bytes += update.len();
        let (j, m) = frame_sizes(&delta(update.clone()));
        json += j;
        msgpack += m;
        updates.push(update);
    }
    let merged = yrs::merge_updates_v1(&updates).expect("merge");
    let (batched_json, batched_msgpack) = frame_sizes(&delta(merged.clone()));
    println!("bytes per typed character, {TYPED} characters appended one at a time\n");
    println!("| what | bytes per character |");
    println!("|---|---:|");
    let per = |bytes: usize| bytes as f64 / TYPED as f64;
    println!(
        "| yrs update, one per keystroke | {:.1} |",
        per(update_bytes)
    );
    println!("| frame per keystroke, JSON (base64) | {:.1} |", per(json));
    println!("| frame per keystroke, MessagePack | {:.1} |", per(msgpack));
    println!(
        "| all keystrokes merged into one update | {:.2} |",
        per(merged.len())
    );
    println!("| merged, one JSON frame | {:.2} |", per(batched_json));
    println!(
        "| merged, one MessagePack frame | {:.2} |",
        per(batched_msgpack)
    );
}
