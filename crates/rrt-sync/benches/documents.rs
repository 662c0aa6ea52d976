//! What documents cost: bytes on the wire per typed character (one message per keystroke, and
//! batched), and replaying a generated editing trace (the crdt-benchmarks B4 trace is not
//! packaged anywhere this machine can reach) through one replica and on to a second.
//!
//! Run: `cargo bench -p rrt-sync --bench documents`

use std::{collections::BTreeMap, time::Instant};

use rrt_sync::Document;
use rrt_wire::{CrdtOperation, Message};

const TYPED: usize = 10_000;
const TRACE: usize = 260_000;

fn main() {
    per_character();
    replay();
}

fn delta(update: Vec<u8>) -> Message {
    Message::StateDelta {
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
fn frame_sizes(message: &Message) -> (usize, usize) {
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

/// xorshift64*.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1) as u64) as usize
    }
}

/// A human-like trace: mostly typing at a cursor, sometimes backspacing, sometimes jumping.
fn replay() {
    let mut rng = Rng(0x5eed);
    let document = Document::new(1);
    let mut length = 0usize;
    let mut cursor = 0usize;
    let mut updates = Vec::with_capacity(TRACE);
    let start = Instant::now();
    for _ in 0..TRACE {
        match rng.below(100) {
            0..=84 => {
                let character = (b'a' + rng.below(26) as u8) as char;
                updates.push(document.insert(cursor, &character.to_string()));
                cursor += 1;
                length += 1;
            }
            85..=96 if cursor > 0 => {
                updates.push(document.delete(cursor - 1, 1));
                cursor -= 1;
                length -= 1;
            }
            _ => cursor = rng.below(length + 1),
        }
    }
    let local = start.elapsed();
    let second = Document::new(2);
    let start = Instant::now();
    for update in &updates {
        second.apply(update).expect("valid");
    }
    let remote = start.elapsed();
    let start = Instant::now();
    let third = Document::new(3);
    third
        .apply(&document.diff(&third.state_vector()).expect("diff"))
        .expect("valid");
    let catch_up = start.elapsed();
    assert_eq!(second.text(), document.text());
    assert_eq!(third.text(), document.text());
    println!(
        "\nreplay of a generated trace of {TRACE} edits (85 % typing, 12 % deleting, 3 % jumps)\n"
    );
    println!("| step | time | note |");
    println!("|---|---:|---|");
    println!(
        "| make the edits on one replica | {:.2} s | {} characters remain |",
        local.as_secs_f64(),
        length
    );
    println!(
        "| apply the {} updates one by one on a second | {:.2} s | |",
        updates.len(),
        remote.as_secs_f64()
    );
    println!(
        "| catch a third up from one diff | {:.3} s | diff of {} bytes |",
        catch_up.as_secs_f64(),
        document.snapshot().len()
    );
}
