//! The fetch machine against itself: replicas and their stores passing messages by hand.

use std::collections::HashMap;

use super::*;
use crate::outline::{OutlineBuilder, PART};

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// Replicas and their stores, passing messages by hand: each step delivers every queued
/// message, unless its link is cut.
#[derive(Default)]
struct Lab {
    nodes: BTreeMap<Uuid, Node>,
    /// Peers whose parts come out with a flipped byte.
    liars: BTreeSet<Uuid>,
    /// Messages to deliver: (from, to, message).
    wire: VecDeque<(Uuid, Uuid, BlobMessage)>,
    /// Blobs each replica has heard of (it would fetch them for a peer).
    known: HashMap<BlobHash, u64>,
    most_in_flight: u64,
    corrupt_seen: Vec<(Uuid, Uuid)>,
    stalled: Vec<Uuid>,
    wrong_size: Vec<Uuid>,
}

#[derive(Default)]
struct Node {
    sync: BlobSync,
    whole: HashMap<BlobHash, Vec<u8>>,
    partial: HashMap<BlobHash, BTreeMap<u64, Vec<u8>>>,
    peers: BTreeSet<Uuid>,
}

fn caps() -> Vec<String> {
    vec![BLOBS.to_owned()]
}

impl Lab {
    fn node(&mut self, n: u128) {
        self.nodes.insert(id(n), Node::default());
    }

    fn link(&mut self, a: u128, b: u128) {
        for (x, y) in [(a, b), (b, a)] {
            let node = self.nodes.get_mut(&id(x)).expect("a node");
            node.peers.insert(id(y));
            node.sync.peer_up(id(y), &caps(), 0);
        }
    }

    fn cut(&mut self, a: u128, b: u128) {
        for (x, y) in [(a, b), (b, a)] {
            let node = self.nodes.get_mut(&id(x)).expect("a node");
            node.peers.remove(&id(y));
            node.sync.peer_down(id(y), 0);
        }
        self.wire
            .retain(|(from, to, _)| ![(id(a), id(b)), (id(b), id(a))].contains(&(*from, *to)));
    }

    fn holds(&mut self, n: u128, bytes: &[u8]) -> BlobHash {
        let hash = BlobHash::of(bytes);
        self.known.insert(hash, bytes.len() as u64);
        let node = self.nodes.get_mut(&id(n)).expect("a node");
        node.whole.insert(hash, bytes.to_vec());
        hash
    }

    /// Runs the drivers until nothing moves, or `steps` messages went by.
    fn run(&mut self, steps: usize) {
        for _ in 0..steps {
            self.drain();
            let Some((from, to, message)) = self.wire.pop_front() else {
                return;
            };
            if let Some(node) = self.nodes.get_mut(&to)
                && node.peers.contains(&from)
            {
                node.sync.handle(from, message, 0);
            }
        }
    }

    fn drain(&mut self) {
        let ids: Vec<Uuid> = self.nodes.keys().copied().collect();
        for me in ids {
            loop {
                let node = self.nodes.get_mut(&me).expect("a node");
                let Some(event) = node.sync.poll_event() else {
                    break;
                };
                self.carry_out(me, event);
            }
            let node = self.nodes.get_mut(&me).expect("a node");
            for fetch in node.sync.fetches.values() {
                self.most_in_flight = self.most_in_flight.max(fetch.in_flight.len() as u64);
            }
            while let Some(outgoing) = node.sync.poll_outgoing() {
                match outgoing {
                    Outgoing::To(to, message) => self.wire.push_back((me, to, message)),
                    other => panic!("blobs are only sent to one peer: {other:?}"),
                }
            }
        }
    }

    fn carry_out(&mut self, me: Uuid, event: BlobEvent) {
        let liar = self.liars.contains(&me);
        let known = &self.known;
        let node = self.nodes.get_mut(&me).expect("a node");
        match event {
            BlobEvent::Serve {
                peer,
                hash,
                from,
                to,
                outline,
            } => {
                let Some(bytes) = node.whole.get(&hash) else {
                    node.sync
                        .cannot_serve(peer, hash, known.get(&hash).copied(), 0);
                    return;
                };
                if outline {
                    let mut builder = OutlineBuilder::default();
                    builder.update(bytes);
                    let values = builder.finish().to_bytes();
                    let size = bytes.len() as u64;
                    self.wire.push_back((
                        me,
                        peer,
                        BlobMessage::BlobOutline { hash, size, values },
                    ));
                }
                for index in from..to.min(part_count(bytes.len() as u64)) {
                    let start = (index * PART) as usize;
                    let end = (start + PART as usize).min(bytes.len());
                    let mut data = bytes[start..end].to_vec();
                    if liar && !data.is_empty() {
                        data[0] ^= 1;
                    }
                    self.wire
                        .push_back((me, peer, BlobMessage::BlobPart { hash, index, data }));
                }
            }
            BlobEvent::Write {
                hash, index, data, ..
            } => {
                let parts = node.partial.entry(hash).or_default();
                assert!(
                    parts.insert(index, data).is_none(),
                    "part {index} written twice"
                );
                node.sync.written(&hash, 0);
            }
            BlobEvent::Complete { outline } => {
                let parts = node.partial.remove(&outline.hash()).expect("parts");
                let bytes: Vec<u8> = parts.into_values().flatten().collect();
                assert_eq!(bytes.len() as u64, outline.size());
                node.whole.insert(outline.hash(), bytes);
            }
            BlobEvent::Corrupt { from, .. } => self.corrupt_seen.push((me, from)),
            BlobEvent::Stalled { .. } => self.stalled.push(me),
            BlobEvent::WrongSize { .. } => self.wrong_size.push(me),
        }
    }

    fn fetch(&mut self, n: u128, hash: BlobHash, hints: &[u128]) {
        let size = self.known[&hash];
        let hints: Vec<Uuid> = hints.iter().map(|h| id(*h)).collect();
        let node = self.nodes.get_mut(&id(n)).expect("a node");
        node.sync.fetch(hash, size, &hints, 0);
    }

    fn whole(&self, n: u128, hash: &BlobHash) -> Option<&Vec<u8>> {
        self.nodes[&id(n)].whole.get(hash)
    }
}

fn blob(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

#[test]
fn a_blob_arrives_whole_with_a_bounded_window() {
    let mut lab = Lab::default();
    lab.node(1);
    lab.node(2);
    lab.link(1, 2);
    let bytes = blob(20 * PART as usize + 5, 1);
    let hash = lab.holds(1, &bytes);
    lab.fetch(2, hash, &[1]);
    lab.run(10_000);
    assert!(lab.whole(2, &hash) == Some(&bytes), "not whole");
    assert!(!lab.nodes[&id(2)].sync.is_fetching(&hash));
    assert_eq!(lab.most_in_flight, WINDOW);
}

#[test]
fn a_transfer_cut_halfway_goes_on_from_another_peer_without_fetching_twice() {
    let mut lab = Lab::default();
    for n in 1..=3 {
        lab.node(n);
    }
    lab.link(1, 3);
    lab.link(2, 3);
    let bytes = blob(30 * PART as usize, 2);
    let hash = lab.holds(1, &bytes);
    lab.holds(2, &bytes);
    lab.fetch(3, hash, &[1]);
    lab.run(20);
    let (received, parts) = lab.nodes[&id(3)].sync.progress(&hash).expect("fetching");
    assert!(received > 0 && received < parts, "{received} of {parts}");
    lab.cut(1, 3);
    // Part writes assert that no part is written twice.
    lab.run(10_000);
    assert!(lab.whole(3, &hash) == Some(&bytes), "not whole");
}

#[test]
fn with_no_peer_left_the_fetch_waits_and_resumes_when_one_returns() {
    let mut lab = Lab::default();
    lab.node(1);
    lab.node(2);
    lab.link(1, 2);
    let bytes = blob(12 * PART as usize, 3);
    let hash = lab.holds(1, &bytes);
    lab.fetch(2, hash, &[1]);
    lab.run(15);
    lab.cut(1, 2);
    lab.run(100);
    assert_eq!(lab.stalled, [id(2)]);
    assert!(lab.whole(2, &hash).is_none());
    lab.link(1, 2);
    lab.run(10_000);
    assert!(lab.whole(2, &hash) == Some(&bytes), "not whole");
}

#[test]
fn a_peer_serving_corrupted_parts_is_refused_and_the_bytes_come_from_another() {
    let mut lab = Lab::default();
    for n in 1..=3 {
        lab.node(n);
    }
    lab.link(1, 3);
    lab.link(2, 3);
    let bytes = blob(5 * PART as usize, 4);
    let hash = lab.holds(1, &bytes);
    lab.holds(2, &bytes);
    lab.liars.insert(id(1));
    lab.fetch(3, hash, &[1]);
    lab.run(10_000);
    assert!(lab.whole(3, &hash) == Some(&bytes), "not whole");
    assert_eq!(lab.corrupt_seen, [(id(3), id(1))]);
}

#[test]
fn a_small_blob_from_a_liar_is_checked_against_its_hash() {
    let mut lab = Lab::default();
    for n in 1..=3 {
        lab.node(n);
    }
    lab.link(1, 3);
    lab.link(2, 3);
    let bytes = blob(1000, 5);
    let hash = lab.holds(1, &bytes);
    lab.holds(2, &bytes);
    lab.liars.insert(id(1));
    lab.fetch(3, hash, &[1]);
    lab.run(1_000);
    assert!(lab.whole(3, &hash) == Some(&bytes), "not whole");
    assert_eq!(lab.corrupt_seen, [(id(3), id(1))]);
}

#[test]
fn an_outline_that_does_not_hash_to_the_blob_is_refused() {
    let bytes = blob(3 * PART as usize, 6);
    let hash = BlobHash::of(&bytes);
    let mut sync = BlobSync::default();
    sync.peer_up(id(1), &caps(), 0);
    sync.fetch(hash, bytes.len() as u64, &[id(1)], 0);
    let values = vec![7; 96];
    let size = bytes.len() as u64;
    sync.handle(id(1), BlobMessage::BlobOutline { hash, size, values }, 0);
    assert_eq!(
        sync.poll_event(),
        Some(BlobEvent::Corrupt { from: id(1), hash })
    );
    assert_eq!(sync.poll_event(), Some(BlobEvent::Stalled { hash }));
}

#[test]
fn across_a_hop_the_middle_peer_fetches_for_the_asker() {
    // 1 holds the blob, 3 reaches it only through 2, which has heard of it but lacks it.
    let mut lab = Lab::default();
    for n in 1..=3 {
        lab.node(n);
    }
    lab.link(1, 2);
    lab.link(2, 3);
    let bytes = blob(4 * PART as usize + 1, 7);
    let hash = lab.holds(1, &bytes);
    lab.fetch(3, hash, &[2]);
    lab.run(10_000);
    assert!(lab.whole(2, &hash) == Some(&bytes), "not whole");
    assert!(lab.whole(3, &hash) == Some(&bytes), "not whole");
}

#[test]
fn a_silent_source_is_left_for_another_after_the_stall_time() {
    let bytes = blob(2 * PART as usize, 8);
    let hash = BlobHash::of(&bytes);
    let mut sync = BlobSync::default();
    sync.peer_up(id(1), &caps(), 0);
    sync.peer_up(id(2), &caps(), 0);
    sync.fetch(hash, bytes.len() as u64, &[id(1)], 0);
    let asked = |sync: &mut BlobSync| {
        std::iter::from_fn(|| sync.poll_outgoing())
            .map(|outgoing| match outgoing {
                Outgoing::To(to, _) => to,
                other => panic!("{other:?}"),
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(asked(&mut sync), [id(1)]);
    assert_eq!(sync.deadline(), Some(STALL_MS));
    sync.on_deadline(STALL_MS - 1);
    assert!(asked(&mut sync).is_empty());
    sync.on_deadline(STALL_MS);
    assert_eq!(asked(&mut sync), [id(2)]);
}

#[test]
fn a_want_is_answered_with_a_bounded_number_of_parts() {
    let mut sync = BlobSync::default();
    let hash = BlobHash([1; 32]);
    let want = BlobMessage::BlobWant {
        hash,
        from: 5,
        to: u64::MAX,
        outline: false,
    };
    sync.handle(id(1), want, 0);
    assert_eq!(
        sync.poll_event(),
        Some(BlobEvent::Serve {
            peer: id(1),
            hash,
            from: 5,
            to: 5 + MAX_SERVED,
            outline: false
        })
    );
}

#[test]
fn a_size_beyond_any_blob_starts_no_fetch() {
    let mut sync = BlobSync::default();
    sync.peer_up(id(1), &caps(), 0);
    sync.fetch(BlobHash([3; 32]), u64::MAX, &[id(1)], 0);
    assert!(!sync.is_fetching(&BlobHash([3; 32])));
    sync.cannot_serve(id(1), BlobHash([3; 32]), Some(u64::MAX), 0);
    assert_eq!(
        sync.poll_outgoing(),
        Some(Outgoing::To(
            id(1),
            BlobMessage::BlobMissing {
                hash: BlobHash([3; 32]),
                fetching: false
            }
        ))
    );
}

#[test]
fn a_peer_without_the_capability_is_never_asked() {
    let mut sync = BlobSync::default();
    sync.peer_up(id(1), &[], 0);
    let hash = BlobHash([2; 32]);
    sync.fetch(hash, 10, &[id(1)], 0);
    assert_eq!(sync.poll_outgoing(), None);
    assert_eq!(sync.poll_event(), Some(BlobEvent::Stalled { hash }));
}

#[test]
fn a_lone_holder_that_went_silent_is_asked_again_after_the_stall_time() {
    let hash = BlobHash([4; 32]);
    let mut sync = BlobSync::default();
    sync.peer_up(id(1), &caps(), 0);
    sync.fetch(hash, 2 * PART, &[id(1)], 0);
    let asked = |sync: &mut BlobSync| std::iter::from_fn(|| sync.poll_outgoing()).count();
    assert_eq!(asked(&mut sync), 1);
    sync.on_deadline(STALL_MS);
    assert_eq!(asked(&mut sync), 0, "silent: not asked again at once");
    assert_eq!(sync.poll_event(), Some(BlobEvent::Stalled { hash }));
    assert_eq!(sync.deadline(), Some(2 * STALL_MS), "it looks again then");
    sync.on_deadline(2 * STALL_MS);
    assert_eq!(asked(&mut sync), 1, "the same peer, asked again");
}

#[test]
fn a_wrong_announced_size_fails_the_fetch_not_the_peer_and_the_right_one_completes() {
    for len in [3 * PART as usize + 10, 1000] {
        let mut lab = Lab::default();
        lab.node(1);
        lab.node(2);
        lab.link(1, 2);
        let bytes = blob(len, 9);
        let hash = lab.holds(1, &bytes);
        let node = lab.nodes.get_mut(&id(2)).expect("a node");
        node.sync.fetch(hash, len as u64 + PART, &[id(1)], 0);
        lab.run(1_000);
        assert_eq!(lab.wrong_size, [id(2)], "{len} bytes");
        assert!(lab.corrupt_seen.is_empty(), "the holder did not lie");
        lab.fetch(2, hash, &[1]);
        lab.run(1_000);
        assert!(lab.whole(2, &hash) == Some(&bytes), "not whole");
    }
}

#[test]
fn many_fetches_take_turns_and_all_complete() {
    let mut lab = Lab::default();
    lab.node(1);
    lab.node(2);
    lab.link(1, 2);
    let blobs: Vec<Vec<u8>> = (0..6).map(|seed| blob(3 * PART as usize, seed)).collect();
    let hashes: Vec<BlobHash> = blobs.iter().map(|bytes| lab.holds(1, bytes)).collect();
    for hash in &hashes {
        lab.fetch(2, *hash, &[1]);
    }
    let asking = |lab: &Lab| {
        lab.nodes[&id(2)]
            .sync
            .fetches
            .values()
            .filter(|fetch| fetch.source.is_some())
            .count()
    };
    assert_eq!(asking(&lab), ACTIVE);
    lab.run(10_000);
    for (hash, bytes) in hashes.iter().zip(&blobs) {
        assert!(lab.whole(2, hash) == Some(bytes), "not whole");
    }
}

#[test]
fn parts_not_yet_written_hold_back_the_asking() {
    let mut sync = BlobSync::default();
    sync.peer_up(id(1), &caps(), 0);
    let bytes = blob(20 * PART as usize, 11);
    let hash = BlobHash::of(&bytes);
    sync.fetch(hash, bytes.len() as u64, &[id(1)], 0);
    let mut builder = OutlineBuilder::default();
    builder.update(&bytes);
    let values = builder.finish().to_bytes();
    let size = bytes.len() as u64;
    sync.handle(id(1), BlobMessage::BlobOutline { hash, size, values }, 0);
    std::iter::from_fn(|| sync.poll_outgoing()).for_each(drop);
    for index in 0..WINDOW {
        let data = bytes[(index * PART) as usize..((index + 1) * PART) as usize].to_vec();
        sync.handle(id(1), BlobMessage::BlobPart { hash, index, data }, 0);
    }
    assert_eq!(
        sync.poll_outgoing(),
        None,
        "a window of parts not yet written"
    );
    sync.written(&hash, 0);
    assert!(
        matches!(
            sync.poll_outgoing(),
            Some(Outgoing::To(_, BlobMessage::BlobWant { .. }))
        ),
        "one written: asking again"
    );
}

#[test]
fn a_peer_cannot_queue_more_reads_than_an_honest_asker_has_in_flight() {
    let mut sync = BlobSync::default();
    let hash = BlobHash([6; 32]);
    let want = |from| BlobMessage::BlobWant {
        hash,
        from,
        to: from + MAX_SERVED,
        outline: false,
    };
    for round in 0..10 {
        sync.handle(id(1), want(round * MAX_SERVED), 0);
    }
    let served = std::iter::from_fn(|| sync.poll_event()).count() as u64;
    assert_eq!(served, MAX_OWED / MAX_SERVED, "the rest dropped");
    // Once sent, more may be asked for.
    sync.served(id(1), MAX_SERVED);
    sync.handle(id(1), want(0), 0);
    assert!(matches!(sync.poll_event(), Some(BlobEvent::Serve { .. })));
}
