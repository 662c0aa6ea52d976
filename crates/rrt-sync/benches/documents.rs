//! What documents cost on the wire: bytes per typed character, one message per keystroke and
//! batched; and what a heal costs in the document itself (two replicas that each typed 10,000
//! characters apart exchange one diff each way), with the first local edit after it, which
//! rebuilds the position index the remote edits made stale. (Replaying an editing trace, against loro too, is `crdt-choice/` at the repository
//! root: it needs loro, which rrt does not ship.)
//!
//! Run: `cargo bench -p rrt-sync --bench documents`

use std::{collections::BTreeMap, time::Instant};

use rrt_sync::{CrdtOperation, DocMessage, Document};

const TYPED: usize = 10_000;

fn main() {
    per_character();
    heal();
}

/// Two replicas type `TYPED` characters each, apart, then catch up from one diff each way.
fn heal() {
    let sides = [Document::new(1), Document::new(2)];
    let shared = sides[0].append("a shared line\n");
    sides[1].apply(&shared).expect("valid");
    for (n, side) in sides.iter().enumerate() {
        // Typing at a cursor, a new line every 40 characters; a new place every 1,000.
        let mut cursor = 0;
        for i in 0..TYPED {
            if i % 1000 == 0 {
                cursor = side.len() / (2 + n);
            }
            let character = if i % 40 == 39 {
                '\n'
            } else {
                (b'a' + (i % 26) as u8) as char
            };
            side.insert(cursor, &character.to_string());
            cursor += 1;
        }
    }
    let start = Instant::now();
    let to_second = sides[0].diff(&sides[1].state_vector()).expect("diff");
    let to_first = sides[1].diff(&sides[0].state_vector()).expect("diff");
    sides[1].apply(&to_second).expect("valid");
    sides[0].apply(&to_first).expect("valid");
    let heal = start.elapsed();
    assert_eq!(sides[0].text(), sides[1].text());
    let start = Instant::now();
    sides[0].insert(sides[0].len() / 2, "x");
    let first_edit = start.elapsed();
    let start = Instant::now();
    sides[0].insert(sides[0].len() / 2, "y");
    let next_edit = start.elapsed();
    println!("\nheal: {TYPED} characters typed on each side apart\n");
    println!("| what | time |");
    println!("|---|---:|");
    println!(
        "| one diff each way, made and applied | {:.1} ms |",
        heal.as_secs_f64() * 1e3
    );
    println!(
        "| diff bytes ({} + {}) per character | {:.2} |",
        to_second.len(),
        to_first.len(),
        (to_second.len() + to_first.len()) as f64 / (2 * TYPED) as f64
    );
    println!(
        "| first local edit after it (rebuilds the position index) | {:.0} µs |",
        first_edit.as_secs_f64() * 1e6
    );
    println!(
        "| the edit after that | {:.0} µs |",
        next_edit.as_secs_f64() * 1e6
    );
}

fn delta(update: Vec<u8>) -> DocMessage {
    DocMessage::StateDelta {
        crdt_ops: vec![CrdtOperation {
            document: "notes".into(),
            update,
            ..CrdtOperation::default()
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
