//! Generations through the document sync machine: what peers that know them and peers that do
//! not send and receive, in `crdt_ops`, without sockets.

use std::time::{Duration, Instant};

use rrt_sync::{Change, DocMessage, DocPeer, DocSync, Document, Generation, Neighbour};
use uuid::Uuid;

const WINDOW: Duration = Duration::from_millis(20);
const CHUNK: usize = 64 * 1024;

struct Replica {
    id: Uuid,
    sync: DocSync,
    /// Stands for a peer from before generations: it ignores operations carrying `lineage`,
    /// as that code does (their `update` and `state_vector` are empty).
    legacy: bool,
}

impl Replica {
    fn new(n: u64) -> Self {
        Self {
            id: Uuid::from_u128(n.into()),
            sync: DocSync::new(n, WINDOW, CHUNK),
            legacy: false,
        }
    }

    /// A local edit, stored at once.
    fn edit(&mut self, name: &str, change: impl FnOnce(&Document) -> Vec<u8>) {
        let update = self.sync.edit(name, change);
        self.sync.saved(name, update, Instant::now());
    }

    fn text(&self, name: &str) -> String {
        self.sync
            .document(name)
            .map(Document::text)
            .unwrap_or_default()
    }

    fn generation(&self, name: &str) -> Generation {
        self.sync
            .lineage(name)
            .map(|lineage| lineage.generation())
            .unwrap_or_default()
    }
}

fn link(replicas: &mut [Replica], a: usize, b: usize, knows: [DocPeer; 2]) {
    let (a_id, b_id) = (replicas[a].id, replicas[b].id);
    replicas[a].sync.peer_up(b_id, Neighbour::Other, knows[1]);
    replicas[b].sync.peer_up(a_id, Neighbour::Other, knows[0]);
}

/// Flushes batches and delivers every message until nothing moves; the changes each replica
/// saw, and the bytes each one sent. Carried edits are stored at once, as a driver would.
fn settle(replicas: &mut [Replica]) -> (Vec<Vec<Change>>, Vec<usize>) {
    let mut changes: Vec<Vec<Change>> = replicas.iter().map(|_| Vec::new()).collect();
    let mut sent = vec![0; replicas.len()];
    let later = Instant::now() + WINDOW * 2;
    for _ in 0..50 {
        let mut moved = false;
        for from in 0..replicas.len() {
            replicas[from].sync.handle_timeout(later);
            while let Some(outgoing) = replicas[from].sync.poll_outgoing() {
                let from_id = replicas[from].id;
                sent[from] += bytes(outgoing.message());
                for to in 0..replicas.len() {
                    if to == from || !outgoing.is_for(replicas[to].id) {
                        continue;
                    }
                    moved = true;
                    let DocMessage::StateDelta { mut crdt_ops, .. } = outgoing.message().clone()
                    else {
                        unreachable!("one kind of message")
                    };
                    if replicas[to].legacy {
                        crdt_ops.retain(|operation| operation.lineage.is_empty());
                    }
                    let arrived = replicas[to]
                        .sync
                        .handle(from_id, DocMessage::delta(crdt_ops));
                    for change in &arrived {
                        if let Change::Lineage {
                            document, carried, ..
                        } = change
                        {
                            for update in carried {
                                replicas[to]
                                    .sync
                                    .saved(document, update.clone(), Instant::now());
                            }
                        }
                    }
                    changes[to].extend(arrived);
                }
            }
        }
        if !moved {
            break;
        }
    }
    (changes, sent)
}

fn bytes(message: &DocMessage) -> usize {
    serde_json::to_vec(message).map_or(0, |json| json.len())
}

/// Types a word backwards at the start one character per edit, then deletes it, `rounds`
/// times: tombstones without content.
fn churn(replica: &mut Replica, name: &str, rounds: usize) {
    for _ in 0..rounds {
        for c in "scratch".chars().rev() {
            replica.edit(name, |d| d.insert(0, &c.to_string()));
        }
        replica.edit(name, |d| d.delete(0, 7));
    }
}

/// Starts a new generation of `name` at `replica` (it must be outgrown), stored at once.
fn renew(replica: &mut Replica, name: &str) {
    let whole = replica.sync.renew(name).expect("outgrown");
    replica.sync.saved(name, whole, Instant::now());
}

#[test]
fn a_new_generation_reaches_every_peer_and_a_newcomer_gets_only_it() {
    let mut replicas: Vec<Replica> = (1..=3).map(Replica::new).collect();
    link(&mut replicas, 0, 1, [DocPeer::Generations; 2]);
    replicas[0].edit("notes", |d| d.append("keep this\n"));
    settle(&mut replicas);
    churn(&mut replicas[0], "notes", 2_000);
    settle(&mut replicas);
    renew(&mut replicas[0], "notes");
    let started = replicas[0].generation("notes");
    assert_eq!(started.number, 1);
    let (changes, _) = settle(&mut replicas);
    assert_eq!(replicas[1].generation("notes"), started);
    assert_eq!(replicas[1].text("notes"), "keep this\n");
    assert!(
        changes[1]
            .iter()
            .any(|change| matches!(change, Change::Lineage { changed: true, .. })),
        "the peer is told to store its lineage: {changes:?}"
    );
    // Edits of the new generation flow both ways.
    replicas[1].edit("notes", |d| d.append("from b\n"));
    replicas[0].edit("notes", |d| d.insert(0, "from a\n"));
    settle(&mut replicas);
    assert_eq!(replicas[0].text("notes"), replicas[1].text("notes"));
    assert_eq!(replicas[0].text("notes"), "from a\nkeep this\nfrom b\n");
    // A newcomer gets the current generation, not the history it replaced.
    let old_size = Document::new(9).snapshot().len()
        + replicas[0]
            .sync
            .lineage("notes")
            .expect("lineage")
            .retired()
            .map(|(_, document)| document.snapshot().len())
            .sum::<usize>();
    link(&mut replicas, 0, 2, [DocPeer::Generations; 2]);
    let (_, sent) = settle(&mut replicas);
    assert_eq!(replicas[2].text("notes"), replicas[0].text("notes"));
    assert_eq!(replicas[2].generation("notes"), started);
    assert!(
        sent[0] * 10 < old_size,
        "sent {} bytes to a newcomer; the old generation is {old_size}",
        sent[0]
    );
}

#[test]
fn edits_crossing_a_start_arrive_once() {
    let mut replicas: Vec<Replica> = (1..=2).map(Replica::new).collect();
    link(&mut replicas, 0, 1, [DocPeer::Generations; 2]);
    replicas[0].edit("notes", |d| d.append("base\n"));
    settle(&mut replicas);
    churn(&mut replicas[0], "notes", 2_000);
    settle(&mut replicas);
    // b types on the old generation while a starts the new one; neither has heard the other.
    replicas[1].edit("notes", |d| d.append("typed meanwhile\n"));
    renew(&mut replicas[0], "notes");
    settle(&mut replicas);
    assert_eq!(replicas[0].generation("notes").number, 1);
    assert_eq!(replicas[1].generation("notes").number, 1);
    assert_eq!(replicas[0].text("notes"), "base\ntyped meanwhile\n");
    assert_eq!(replicas[1].text("notes"), "base\ntyped meanwhile\n");
}

#[test]
fn a_peer_that_does_not_know_generations_keeps_generation_zero_only() {
    let mut replicas: Vec<Replica> = (1..=2).map(Replica::new).collect();
    replicas[1].legacy = true;
    link(&mut replicas, 0, 1, [DocPeer::Generations, DocPeer::Legacy]);
    replicas[0].edit("notes", |d| d.append("shared\n"));
    replicas[0].edit("todo", |d| d.append("still generation 0\n"));
    settle(&mut replicas);
    assert_eq!(replicas[1].text("notes"), "shared\n");
    churn(&mut replicas[0], "notes", 2_000);
    renew(&mut replicas[0], "notes");
    settle(&mut replicas);
    // The legacy peer never moves, and what it writes to the old generation is not taken.
    assert_eq!(replicas[1].generation("notes"), Generation::default());
    replicas[1].edit("notes", |d| d.append("legacy\n"));
    replicas[1].edit("todo", |d| d.append("legacy todo\n"));
    replicas[0].edit("notes", |d| d.append("new\n"));
    let (changes, _) = settle(&mut replicas);
    assert_eq!(replicas[0].text("notes"), "shared\nnew\n");
    assert_eq!(replicas[1].text("notes"), "shared\nlegacy\n");
    // A document still in generation 0 syncs as before.
    assert_eq!(
        replicas[0].text("todo"),
        "still generation 0\nlegacy todo\n"
    );
    assert!(
        changes[0]
            .iter()
            .all(|change| !matches!(change, Change::Lineage { .. })),
        "{changes:?}"
    );
}

#[test]
fn what_a_peer_sends_about_generation_zero_is_the_wire_of_before() {
    let mut a = Replica::new(1);
    let peer = Uuid::from_u128(2);
    a.edit("notes", |d| d.append("x"));
    a.sync.peer_up(peer, Neighbour::Other, DocPeer::Generations);
    a.sync.handle_timeout(Instant::now() + WINDOW * 2);
    while let Some(outgoing) = a.sync.poll_outgoing() {
        let DocMessage::StateDelta { crdt_ops, .. } = outgoing.message().clone() else {
            unreachable!()
        };
        for operation in crdt_ops {
            assert!(operation.lineage.is_empty(), "{operation:?}");
        }
    }
}

/// PROTOCOL.md's example of a start, byte for byte.
const START_EXAMPLE: &str = r#"{"type":"state_delta","crdt_ops":[{"document":"notes","update":"","lineage":"gqRraW5kp3VwZGF0ZXOrZ2VuZXJhdGlvbnORg6pnZW5lcmF0aW9ugqZudW1iZXIBp3N0YXJ0ZXIqpnVwZGF0ZcQXAQEqAAQBBHRleHQKa2VlcCB0aGlzCgCmaGVhZGVyhaZwYXJlbnSCpm51bWJlcgCnc3RhcnRlcgCkYmFzZcQFASoBAAqkdGV4dKprZWVwIHRoaXMKp29yaWdpbnPEAxUqAKNtYXCA"}],"vector_clock":{}}"#;

#[test]
fn the_protocol_example_of_a_start_is_what_a_start_sends() {
    let mut lineage = rrt_sync::Lineage::new(42);
    lineage.edit(|d| d.append("keep this\n"));
    let start = lineage.start();
    let operation = rrt_sync::CrdtOperation {
        document: "notes".to_owned(),
        lineage: start.encode(),
        ..rrt_sync::CrdtOperation::default()
    };
    let json = serde_json::to_string(&DocMessage::delta(vec![operation])).expect("serializes");
    assert_eq!(json, START_EXAMPLE);
    // What the field holds, decoded.
    let decoded = rrt_sync::LineageMessage::decode(&start.encode()).expect("decodes");
    assert_eq!(decoded, start);
}
