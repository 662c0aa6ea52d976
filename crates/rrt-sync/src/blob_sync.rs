//! Fetching blobs by hash as a sans-IO machine: which peer to ask, how much to ask for, what to
//! believe, and what to do when a peer goes, lacks the blob or lies. The driver feeds it wants,
//! peers' arrivals and departures, messages and the time, and carries out what
//! [`BlobSync::poll_outgoing`] and [`BlobSync::poll_event`] return: reading parts from its store
//! to serve them ([`BlobEvent::Serve`]), writing verified parts ([`BlobEvent::Write`]), making a
//! whole blob visible ([`BlobEvent::Complete`]).
//!
//! ```text
//! fetch(hash) ─▶ ask one peer: blob_want 0..8 (+ outline) ─▶ outline checked against the hash
//!                                 ▲                          part checked against the outline
//!                                 │                            ├ good: Write, ask for the next
//!   another peer, in turn ◀───────┴── bad bytes / missing /    └ all: Complete, blob_have to
//!   (hinted holders first)            link lost / 30 s silent        peers that waited
//! peer's blob_want ─▶ Serve (at most 16 parts per want) | cannot_serve ─▶ blob_missing
//!                                                         (fetching, if the blob is known)
//! ```
//!
//! * **Bounded in flight**: a fetch has at most [`WINDOW`] parts (8 MiB) asked for and not yet
//!   received, so neither side holds more than that for it, whatever the blob's size.
//! * **Resumes where it was**: parts already received stay; a lost link, a peer that lacks the
//!   blob or stays silent sends the parts in flight to the next peer — or, when none is up, to
//!   whichever peer comes up next.
//! * **Verified parts only**: a part that is not what the outline says — or an outline that does
//!   not hash to the blob's hash — is refused ([`BlobEvent::Corrupt`]), its sender is not asked
//!   for this blob again, and the part is asked of another peer.
//! * **Across hops**: a peer asked for a blob it has heard of but lacks starts fetching it and
//!   says so (`fetching`); the asker tries others meanwhile and comes back on `blob_have`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use uuid::Uuid;

use crate::{
    blob_message::BlobMessage,
    content::BlobHash,
    outgoing::Outgoing,
    outline::{Outline, part_count},
};

/// The capability of a peer that serves and fetches blobs.
pub const BLOBS: &str = "blobs";
/// The most parts of one fetch asked for and not yet received.
pub const WINDOW: u64 = 8;
/// The most parts one `blob_want` is answered with.
pub const MAX_SERVED: u64 = 2 * WINDOW;
/// How long a peer may leave a fetch without a part before it is asked of another.
pub const STALL_MS: u64 = 30_000;
/// The largest blob fetched at all (a size is a peer's word: what a fetch allocates per part
/// must stay bounded whatever it says); drivers set their own, smaller limits.
pub const MAX_BLOB: u64 = 1 << 40;

/// What the driver must do or know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobEvent {
    /// Send parts `from..to` of `hash` to `peer` from the store (its outline first, if
    /// `outline`); a blob not in the store is [`BlobSync::cannot_serve`].
    Serve {
        /// Who asked.
        peer: Uuid,
        /// The blob.
        hash: BlobHash,
        /// The first part.
        from: u64,
        /// One past the last part.
        to: u64,
        /// Whether to send the outline first.
        outline: bool,
    },
    /// Store a verified part.
    Write {
        /// The blob.
        hash: BlobHash,
        /// Its size.
        size: u64,
        /// Which part.
        index: u64,
        /// Its bytes.
        data: Vec<u8>,
    },
    /// Every part is written: the blob is whole.
    Complete {
        /// The blob's outline (its hash and size), to keep beside it.
        outline: Outline,
    },
    /// A peer sent bytes that are not the blob's; they were refused, and that peer is not asked
    /// for this blob again.
    Corrupt {
        /// The peer.
        from: Uuid,
        /// The blob.
        hash: BlobHash,
    },
    /// No peer up can serve the blob now; the fetch waits for one (reported once per wait).
    Stalled {
        /// The blob.
        hash: BlobHash,
    },
}

/// One blob being fetched.
#[derive(Debug)]
struct Fetch {
    size: u64,
    outline: Option<Outline>,
    /// Parts received and checked.
    done: Vec<bool>,
    remaining: u64,
    /// The first part never asked for.
    next: u64,
    /// Parts asked for and lost with their peer: asked again first.
    again: BTreeSet<u64>,
    in_flight: BTreeSet<u64>,
    source: Option<Uuid>,
    /// Whether the source was asked for the outline.
    outline_asked: bool,
    /// Peers said to hold it (the ones it was announced by), asked first.
    hints: Vec<Uuid>,
    /// Peers that lack it, on their current link.
    lacking: BTreeSet<Uuid>,
    /// Peers fetching it themselves: asked again when they say they have it.
    fetching: BTreeSet<Uuid>,
    /// Peers that sent bytes that were not the blob's: never asked again.
    corrupt: BTreeSet<Uuid>,
    /// Peers told we are fetching it, to be told when we have it.
    waiting: BTreeSet<Uuid>,
    last_progress: u64,
    stalled: bool,
}

impl Fetch {
    fn new(hash: BlobHash, size: u64, hints: &[Uuid], now_ms: u64) -> Self {
        let parts = part_count(size);
        Self {
            size,
            // A blob of one part needs no outline: the part is checked against the hash.
            outline: (parts == 1)
                .then(|| Outline::verified(hash, size, &[]).ok())
                .flatten(),
            done: vec![false; usize::try_from(parts).unwrap_or(usize::MAX)],
            remaining: parts,
            next: 0,
            again: BTreeSet::new(),
            in_flight: BTreeSet::new(),
            source: None,
            outline_asked: false,
            hints: hints.to_vec(),
            lacking: BTreeSet::new(),
            fetching: BTreeSet::new(),
            corrupt: BTreeSet::new(),
            waiting: BTreeSet::new(),
            last_progress: now_ms,
            stalled: false,
        }
    }

    fn can_ask(&self, peer: &Uuid) -> bool {
        !self.lacking.contains(peer)
            && !self.fetching.contains(peer)
            && !self.corrupt.contains(peer)
    }

    /// The source is gone or useless: what it was sending is asked of the next one.
    fn drop_source(&mut self) {
        self.source = None;
        self.outline_asked = false;
        self.again.append(&mut self.in_flight);
    }
}

/// The blobs this replica fetches, and its answers to peers' wants.
#[derive(Debug, Default)]
pub struct BlobSync {
    /// Peers up that serve blobs.
    peers: BTreeSet<Uuid>,
    fetches: BTreeMap<BlobHash, Fetch>,
    outgoing: VecDeque<Outgoing<BlobMessage>>,
    events: VecDeque<BlobEvent>,
}

impl BlobSync {
    /// Starts fetching the blob `hash` of `size` bytes (nothing if already fetching it, or if
    /// it is over [`MAX_BLOB`]; the driver knows what its store holds), asking the `hints` first.
    pub fn fetch(&mut self, hash: BlobHash, size: u64, hints: &[Uuid], now_ms: u64) {
        if size > MAX_BLOB {
            return;
        }
        if let Some(fetch) = self.fetches.get_mut(&hash) {
            for hint in hints {
                if !fetch.hints.contains(hint) {
                    fetch.hints.push(*hint);
                }
            }
            return;
        }
        self.fetches
            .insert(hash, Fetch::new(hash, size, hints, now_ms));
        self.advance(hash, now_ms);
    }

    /// Whether the blob is being fetched.
    pub fn is_fetching(&self, hash: &BlobHash) -> bool {
        self.fetches.contains_key(hash)
    }

    /// The blobs being fetched: (hash, parts received, parts).
    pub fn transfers(&self) -> impl Iterator<Item = (BlobHash, u64, u64)> + '_ {
        self.fetches.iter().map(|(hash, fetch)| {
            let parts = fetch.done.len() as u64;
            (*hash, parts - fetch.remaining, parts)
        })
    }

    /// How much of a blob being fetched is here: (parts received, parts).
    pub fn progress(&self, hash: &BlobHash) -> Option<(u64, u64)> {
        self.fetches.get(hash).map(|fetch| {
            let parts = fetch.done.len() as u64;
            (parts - fetch.remaining, parts)
        })
    }

    /// Stops fetching a blob (no longer wanted). Parts already written stay the driver's to
    /// clean up.
    pub fn cancel(&mut self, hash: &BlobHash) {
        self.fetches.remove(hash);
    }

    /// A peer came up; if it serves blobs, fetches without a source ask it.
    pub fn peer_up(&mut self, peer: Uuid, capabilities: &[String], now_ms: u64) {
        if !capabilities.iter().any(|c| c == BLOBS) {
            return;
        }
        self.peers.insert(peer);
        let hashes: Vec<BlobHash> = self.fetches.keys().copied().collect();
        for hash in hashes {
            if let Some(fetch) = self.fetches.get_mut(&hash) {
                // A new link: what it lacked then it may hold now.
                fetch.lacking.remove(&peer);
                fetch.fetching.remove(&peer);
                fetch.waiting.remove(&peer);
            }
            self.advance(hash, now_ms);
        }
    }

    /// A peer went down: fetches it served go on with another.
    pub fn peer_down(&mut self, peer: Uuid, now_ms: u64) {
        self.peers.remove(&peer);
        let hashes: Vec<BlobHash> = self.fetches.keys().copied().collect();
        for hash in hashes {
            if let Some(fetch) = self.fetches.get_mut(&hash) {
                fetch.waiting.remove(&peer);
                if fetch.source == Some(peer) {
                    fetch.drop_source();
                }
            }
            self.advance(hash, now_ms);
        }
    }

    /// A message from `from`.
    pub fn handle(&mut self, from: Uuid, message: BlobMessage, now_ms: u64) {
        match message {
            BlobMessage::BlobWant {
                hash,
                from: first,
                to,
                outline,
            } => {
                let to = to.min(first.saturating_add(MAX_SERVED));
                if first < to || outline {
                    self.events.push_back(BlobEvent::Serve {
                        peer: from,
                        hash,
                        from: first,
                        to,
                        outline,
                    });
                }
            }
            BlobMessage::BlobOutline { hash, size, values } => {
                self.outline(from, hash, size, &values, now_ms);
            }
            BlobMessage::BlobPart { hash, index, data } => {
                self.part(from, hash, index, data, now_ms)
            }
            BlobMessage::BlobMissing { hash, fetching } => {
                if let Some(fetch) = self.fetches.get_mut(&hash) {
                    if fetching {
                        fetch.fetching.insert(from);
                    } else {
                        fetch.lacking.insert(from);
                    }
                    if fetch.source == Some(from) {
                        fetch.drop_source();
                    }
                    self.advance(hash, now_ms);
                }
            }
            BlobMessage::BlobHave { hash } => {
                if let Some(fetch) = self.fetches.get_mut(&hash) {
                    fetch.fetching.remove(&from);
                    fetch.lacking.remove(&from);
                    self.advance(hash, now_ms);
                }
            }
        }
    }

    /// The driver could not serve `hash` to `peer`: not in its store. With `known` — the size of
    /// a blob this replica has heard of — it fetches the blob itself and tells the peer so.
    pub fn cannot_serve(&mut self, peer: Uuid, hash: BlobHash, known: Option<u64>, now_ms: u64) {
        let fetching = match known {
            Some(size) => {
                self.fetch(hash, size, &[], now_ms);
                if let Some(fetch) = self.fetches.get_mut(&hash) {
                    fetch.waiting.insert(peer);
                    // It lacks the blob: asking it would only bring another `blob_missing`.
                    fetch.fetching.insert(peer);
                }
                self.is_fetching(&hash)
            }
            None => false,
        };
        self.send(peer, BlobMessage::BlobMissing { hash, fetching });
    }

    /// When [`BlobSync::on_deadline`] is next due: the earliest time a source may be judged
    /// silent.
    pub fn deadline(&self) -> Option<u64> {
        self.fetches
            .values()
            .filter(|fetch| fetch.source.is_some() && !fetch.in_flight.is_empty())
            .map(|fetch| fetch.last_progress.saturating_add(STALL_MS))
            .min()
    }

    /// Sources silent for [`STALL_MS`] with parts in flight are left for others.
    pub fn on_deadline(&mut self, now_ms: u64) {
        let silent: Vec<BlobHash> = self
            .fetches
            .iter()
            .filter(|(_, fetch)| {
                fetch.source.is_some()
                    && !fetch.in_flight.is_empty()
                    && now_ms >= fetch.last_progress.saturating_add(STALL_MS)
            })
            .map(|(hash, _)| *hash)
            .collect();
        for hash in silent {
            if let Some(fetch) = self.fetches.get_mut(&hash)
                && let Some(source) = fetch.source
            {
                fetch.lacking.insert(source);
                fetch.drop_source();
                fetch.last_progress = now_ms;
            }
            self.advance(hash, now_ms);
        }
    }

    /// The next message to send.
    pub fn poll_outgoing(&mut self) -> Option<Outgoing<BlobMessage>> {
        self.outgoing.pop_front()
    }

    /// The next thing the driver must do or know.
    pub fn poll_event(&mut self) -> Option<BlobEvent> {
        self.events.pop_front()
    }

    fn outline(&mut self, from: Uuid, hash: BlobHash, size: u64, values: &[u8], now_ms: u64) {
        let Some(fetch) = self.fetches.get_mut(&hash) else {
            return;
        };
        if fetch.outline.is_some() || fetch.source != Some(from) {
            return;
        }
        match Outline::verified(hash, fetch.size, values) {
            Ok(outline) if size == fetch.size => {
                fetch.outline = Some(outline);
                fetch.last_progress = now_ms;
            }
            _ => self.corrupt(from, hash, now_ms),
        }
    }

    fn part(&mut self, from: Uuid, hash: BlobHash, index: u64, data: Vec<u8>, now_ms: u64) {
        let Some(fetch) = self.fetches.get_mut(&hash) else {
            return;
        };
        let slot = usize::try_from(index).ok();
        let wanted = slot.is_some_and(|slot| fetch.done.get(slot) == Some(&false));
        // Parts of a source left behind (or unasked for) are dropped, as is any part before the
        // outline that checks it.
        if !wanted || fetch.source != Some(from) || !fetch.in_flight.contains(&index) {
            return;
        }
        let Some(outline) = &fetch.outline else {
            return self.corrupt(from, hash, now_ms);
        };
        if !outline.check_part(index, &data) {
            return self.corrupt(from, hash, now_ms);
        }
        if let Some(slot) = slot.and_then(|slot| fetch.done.get_mut(slot)) {
            *slot = true;
        }
        fetch.in_flight.remove(&index);
        fetch.again.remove(&index);
        fetch.remaining -= 1;
        fetch.last_progress = now_ms;
        let size = fetch.size;
        self.events.push_back(BlobEvent::Write {
            hash,
            size,
            index,
            data,
        });
        if fetch.remaining == 0 {
            let waiting = std::mem::take(&mut fetch.waiting);
            let outline = fetch.outline.take();
            self.fetches.remove(&hash);
            if let Some(outline) = outline {
                self.events.push_back(BlobEvent::Complete { outline });
            }
            for peer in waiting {
                self.send(peer, BlobMessage::BlobHave { hash });
            }
        } else {
            self.advance(hash, now_ms);
        }
    }

    fn corrupt(&mut self, from: Uuid, hash: BlobHash, now_ms: u64) {
        if let Some(fetch) = self.fetches.get_mut(&hash) {
            fetch.corrupt.insert(from);
            if fetch.source == Some(from) {
                fetch.drop_source();
            }
            self.events.push_back(BlobEvent::Corrupt { from, hash });
        }
        self.advance(hash, now_ms);
    }

    /// Picks a source if the fetch has none, and keeps [`WINDOW`] parts in flight from it.
    fn advance(&mut self, hash: BlobHash, now_ms: u64) {
        let Some(fetch) = self.fetches.get_mut(&hash) else {
            return;
        };
        if fetch.source.is_none() {
            let hinted = fetch.hints.iter().find(|peer| self.peers.contains(peer));
            let pick = hinted
                .filter(|peer| fetch.can_ask(peer))
                .or_else(|| self.peers.iter().find(|peer| fetch.can_ask(peer)))
                .copied();
            match pick {
                Some(peer) => {
                    fetch.source = Some(peer);
                    fetch.stalled = false;
                    fetch.last_progress = now_ms;
                }
                None => {
                    if !fetch.stalled {
                        fetch.stalled = true;
                        self.events.push_back(BlobEvent::Stalled { hash });
                    }
                    return;
                }
            }
        }
        let Some(source) = fetch.source else {
            return;
        };
        let parts = fetch.done.len() as u64;
        let mut asking = Vec::new();
        while (fetch.in_flight.len() as u64) < WINDOW {
            let index = match fetch.again.pop_first() {
                Some(index) => index,
                None if fetch.next < parts => {
                    fetch.next += 1;
                    fetch.next - 1
                }
                None => break,
            };
            fetch.in_flight.insert(index);
            asking.push(index);
        }
        let outline = fetch.outline.is_none() && !fetch.outline_asked;
        fetch.outline_asked |= outline;
        if asking.is_empty() && !outline {
            return;
        }
        // One want per run of consecutive parts.
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for index in asking {
            match runs.last_mut() {
                Some((_, end)) if *end == index => *end += 1,
                _ => runs.push((index, index + 1)),
            }
        }
        if runs.is_empty() {
            runs.push((0, 0));
        }
        for (i, (from, to)) in runs.into_iter().enumerate() {
            let outline = outline && i == 0;
            self.send(
                source,
                BlobMessage::BlobWant {
                    hash,
                    from,
                    to,
                    outline,
                },
            );
        }
    }

    fn send(&mut self, to: Uuid, message: BlobMessage) {
        self.outgoing.push_back(Outgoing::To(to, message));
    }
}

#[cfg(test)]
mod tests {
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
                        self.wire.push_back((
                            me,
                            peer,
                            BlobMessage::BlobPart { hash, index, data },
                        ));
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
                }
                BlobEvent::Complete { outline } => {
                    let parts = node.partial.remove(&outline.hash()).expect("parts");
                    let bytes: Vec<u8> = parts.into_values().flatten().collect();
                    assert_eq!(bytes.len() as u64, outline.size());
                    node.whole.insert(outline.hash(), bytes);
                }
                BlobEvent::Corrupt { from, .. } => self.corrupt_seen.push((me, from)),
                BlobEvent::Stalled { .. } => self.stalled.push(me),
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
        assert_eq!(lab.whole(2, &hash), Some(&bytes));
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
        assert_eq!(lab.whole(3, &hash), Some(&bytes));
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
        assert_eq!(lab.whole(2, &hash), Some(&bytes));
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
        assert_eq!(lab.whole(3, &hash), Some(&bytes));
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
        assert_eq!(lab.whole(3, &hash), Some(&bytes));
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
        assert_eq!(lab.whole(2, &hash), Some(&bytes));
        assert_eq!(lab.whole(3, &hash), Some(&bytes));
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
}
