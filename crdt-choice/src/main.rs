//! Replays an editing trace in rrt's stack, and shows why its documents are yrs: the same
//! generated trace made locally (edit by UTF-16 position, one update per edit, as the node does),
//! applied update by update on a second replica and from one diff on a third, in rrt's
//! `Document` (yrs) and in loro, with the bytes each update costs and the slowest local edits.
//! (The crdt-benchmarks B4 trace is not packaged in any registry this machine reaches.)
//!
//! The last line of the replay is `rrt: <seconds> s to make <n> edits locally`, for scripts.
//!
//! `compaction [EDITS]` instead edits a text kept near 1 KB a million times (by default) and
//! prints what a newcomer would be sent, and what a snapshot holds — in one yrs document, then in
//! generations (`Lineage`: a fresh document seeded with the text once deletions outweigh it).
//!
//! Run: `cargo run --release --manifest-path crdt-choice/Cargo.toml [EDITS]`
//! or `cargo run --release --manifest-path crdt-choice/Cargo.toml compaction [EDITS]`

use std::time::{Duration, Instant};

use loro::{ExportMode, LoroDoc};
use rrt_sync::{Document, Lineage, LineageMessage};

/// One step of the trace, positions in UTF-16 code units.
#[derive(Clone, Copy)]
enum Step {
    Insert(usize, char),
    Delete(usize),
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

/// A human-like trace: mostly typing at a cursor, sometimes backspacing, sometimes moving the
/// cursor (nine moves in ten stay within 100 characters).
fn trace(edits: usize) -> Vec<Step> {
    bounded_trace(edits, usize::MAX)
}

/// The same, in a text that stays under `max_length`: at the limit, typing deletes the
/// character after the cursor instead (or the one before, at the end).
fn bounded_trace(edits: usize, max_length: usize) -> Vec<Step> {
    let mut rng = Rng(0x5eed);
    let (mut length, mut cursor) = (0usize, 0usize);
    let mut steps = Vec::with_capacity(edits);
    while steps.len() < edits {
        match rng.below(100) {
            0..=84 if length >= max_length => {
                if cursor == length {
                    cursor -= 1;
                }
                steps.push(Step::Delete(cursor));
                length -= 1;
            }
            0..=84 => {
                steps.push(Step::Insert(cursor, (b'a' + rng.below(26) as u8) as char));
                cursor += 1;
                length += 1;
            }
            85..=96 if cursor > 0 => {
                steps.push(Step::Delete(cursor - 1));
                cursor -= 1;
                length -= 1;
            }
            _ if rng.below(10) == 0 => cursor = rng.below(length + 1),
            _ => cursor = (cursor + rng.below(201)).saturating_sub(100).min(length),
        }
    }
    steps
}

struct Run {
    local: Duration,
    slowest_local: Duration,
    remote: Duration,
    catch_up: Duration,
    update_bytes: usize,
    snapshot_bytes: usize,
}

fn percentile_999(mut times: Vec<Duration>) -> Duration {
    times.sort_unstable();
    times[times.len() * 999 / 1000]
}

/// rrt's own document (yrs inside): edits by UTF-16 position, each returning its update.
fn run_rrt(steps: &[Step]) -> Run {
    let document = Document::new(1);
    let mut updates = Vec::with_capacity(steps.len());
    let mut times = Vec::with_capacity(steps.len());
    let start = Instant::now();
    for step in steps {
        let edit = Instant::now();
        updates.push(match *step {
            Step::Insert(at, c) => document.insert(at, c.encode_utf8(&mut [0; 4])),
            Step::Delete(at) => document.delete(at, 1),
        });
        times.push(edit.elapsed());
    }
    let local = start.elapsed();
    let second = Document::new(2);
    let start = Instant::now();
    for update in &updates {
        second.apply(update).expect("valid update");
    }
    let remote = start.elapsed();
    assert_eq!(second.text(), document.text());
    let third = Document::new(3);
    let start = Instant::now();
    let diff = document.diff(&third.state_vector()).expect("diff");
    third.apply(&diff).expect("valid diff");
    let catch_up = start.elapsed();
    assert_eq!(third.text(), document.text());
    Run {
        local,
        slowest_local: percentile_999(times),
        remote,
        catch_up,
        update_bytes: updates.iter().map(Vec::len).sum(),
        snapshot_bytes: document.snapshot().len(),
    }
}

fn run_loro(steps: &[Step]) -> Run {
    let doc = LoroDoc::new();
    doc.set_peer_id(1).expect("peer id");
    let text = doc.get_text("text");
    let mut updates = Vec::with_capacity(steps.len());
    let mut times = Vec::with_capacity(steps.len());
    let start = Instant::now();
    for step in steps {
        let edit = Instant::now();
        let version = doc.oplog_vv();
        match *step {
            Step::Insert(at, c) => text.insert_utf16(at, c.encode_utf8(&mut [0; 4])),
            Step::Delete(at) => text.delete_utf16(at, 1),
        }
        .expect("in range");
        doc.commit();
        updates.push(doc.export(ExportMode::updates(&version)).expect("export"));
        times.push(edit.elapsed());
    }
    let local = start.elapsed();
    let second = LoroDoc::new();
    second.set_peer_id(2).expect("peer id");
    let start = Instant::now();
    for update in &updates {
        second.import(update).expect("applies");
    }
    let remote = start.elapsed();
    assert_eq!(second.get_text("text").to_string(), text.to_string());
    let third = LoroDoc::new();
    let start = Instant::now();
    let diff = doc
        .export(ExportMode::updates(&third.oplog_vv()))
        .expect("diff");
    third.import(&diff).expect("applies");
    let catch_up = start.elapsed();
    assert_eq!(third.get_text("text").to_string(), text.to_string());
    Run {
        local,
        slowest_local: percentile_999(times),
        remote,
        catch_up,
        update_bytes: updates.iter().map(Vec::len).sum(),
        snapshot_bytes: doc.export(ExportMode::Snapshot).expect("snapshot").len(),
    }
}

/// A text of about 1 KB edited `edits` times: what compaction leaves to store and to send.
fn compaction(edits: usize) {
    let steps = bounded_trace(edits, 1024);
    let document = Document::new(1);
    let start = Instant::now();
    for step in &steps {
        match *step {
            Step::Insert(at, c) => document.insert(at, c.encode_utf8(&mut [0; 4])),
            Step::Delete(at) => document.delete(at, 1),
        };
    }
    let elapsed = start.elapsed();
    let newcomer = document
        .diff(&Document::new(2).state_vector())
        .expect("diff");
    println!(
        "{edits} edits to a text kept under 1 KiB ({} bytes now), made in {:.2} s",
        document.text().len(),
        elapsed.as_secs_f64()
    );
    println!("snapshot: {} bytes", document.snapshot().len());
    println!("a newcomer's diff: {} bytes", newcomer.len());
    with_generations(&steps);
}

/// How often (in edits) the generations run asks whether the document is outgrown: each ask
/// encodes a snapshot, so not every edit (the node asks when its store folds the log).
const CHECK_EVERY: usize = 1000;

/// The same edits in generations ([`Lineage`]): what is left to store and to send.
fn with_generations(steps: &[Step]) {
    let mut lineage = Lineage::new(1);
    let mut starts = 0;
    let start = Instant::now();
    for (done, step) in steps.iter().enumerate() {
        match *step {
            Step::Insert(at, c) => lineage.edit(|d| d.insert(at, c.encode_utf8(&mut [0; 4]))),
            Step::Delete(at) => lineage.edit(|d| d.delete(at, 1)),
        };
        if done % CHECK_EVERY == CHECK_EVERY - 1 && lineage.outgrown() {
            lineage.start();
            starts += 1;
        }
    }
    let elapsed = start.elapsed();
    let current = lineage.document().snapshot().len();
    let kept: usize = lineage
        .retired()
        .map(|(_, document)| document.snapshot().len())
        .sum();
    let eras = match lineage.receive(LineageMessage::Versions(Lineage::new(2).versions())) {
        Ok(received) => match received.reply {
            Some(LineageMessage::Lineage(eras)) => eras,
            _ => Vec::new(),
        },
        Err(_) => Vec::new(),
    };
    let newcomer: usize = eras.iter().map(|era| era.update.len()).sum();
    // The header goes with the generation whole: its seed text and map, the parent's ids it had
    // seen, and the parent ids of the seed's characters.
    let headers = eras.iter().filter_map(|era| era.header.as_ref());
    let (header, origins) = headers.fold((0, 0), |(all, origins), header| {
        let map: usize = header.map.iter().map(|(k, v)| k.len() + v.len()).sum();
        (
            all + header.base.len() + header.text.len() + header.origins.len() + map,
            origins + header.origins.len(),
        )
    });
    println!(
        "\nwith generations (outgrown checked every {CHECK_EVERY} edits): {starts} generations started, {:.2} s",
        elapsed.as_secs_f64()
    );
    println!("current generation's snapshot: {current} bytes");
    println!("a newcomer's lineage: {newcomer} bytes");
    println!("its header: {header} bytes, {origins} of them the seed's parent ids");
    println!(
        "on disk with the {} generations kept for peers behind: {} bytes",
        lineage.retired().count(),
        current + kept
    );
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    if args.next_if_eq("compaction").is_some() {
        compaction(
            args.next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(1_000_000),
        );
        return;
    }
    let edits = args.next().and_then(|n| n.parse().ok()).unwrap_or(260_000);
    let steps = trace(edits);
    println!("{edits} edits (85 % typing, 12 % backspace, 3 % cursor moves)\n");
    println!(
        "| library | make locally | p99.9 local edit | apply each update remotely | catch up from one diff | bytes per edit's update | snapshot |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let rrt = run_rrt(&steps);
    let local = rrt.local;
    for (name, run) in [
        ("rrt Document (yrs 0.28)", rrt),
        ("loro 1.17", run_loro(&steps)),
    ] {
        println!(
            "| {name} | {:.2} s | {:.0} µs | {:.2} s | {:.3} s | {:.1} | {} KiB |",
            run.local.as_secs_f64(),
            run.slowest_local.as_secs_f64() * 1e6,
            run.remote.as_secs_f64(),
            run.catch_up.as_secs_f64(),
            run.update_bytes as f64 / edits as f64,
            run.snapshot_bytes / 1024,
        );
    }
    println!();
    println!(
        "rrt: {:.3} s to make {edits} edits locally",
        local.as_secs_f64()
    );
}
