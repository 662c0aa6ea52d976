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
//!   received, and at most [`ACTIVE`] fetches ask at once, so neither side holds more than that,
//!   whatever the blob's size or the number of files copied together.
//! * **Resumes where it was**: parts already received stay; a lost link, a peer that lacks the
//!   blob or stays silent sends the parts in flight to the next peer — or, when none is up, to
//!   whichever comes up next (a silent one again after [`STALL_MS`]).
//! * **A size is a claim**: the outline (or a blob's one part) proves the size; a fetch made for
//!   another size is given up ([`BlobEvent::WrongSize`]) without blaming the peer that served it.
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
/// The most fetches asking peers at once (the others wait their turn), so what one node has
/// asked for and not received stays under `ACTIVE × WINDOW` parts — far below what a link lets
/// pile up unsent — however many files a copy holds.
pub const ACTIVE: usize = 2;
/// The most parts one `blob_want` is answered with.
pub const MAX_SERVED: u64 = 2 * WINDOW;
/// The most parts promised to one peer and not yet sent (twice what an asker following these
/// rules has in flight): wants beyond are dropped, so a peer cannot queue reads without end.
pub const MAX_OWED: u64 = 2 * ACTIVE as u64 * WINDOW;
/// How long a peer may leave a fetch without a part before it is asked of another.
pub const STALL_MS: u64 = 30_000;
/// The largest blob fetched at all (a size is a peer's word: what a fetch allocates per part
/// must stay bounded whatever it says); drivers set their own, smaller limits.
pub const MAX_BLOB: u64 = 1 << 40;

/// What the driver must do or know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobEvent {
    /// Send parts `from..to` of `hash` to `peer` from the store (its outline first, if
    /// `outline`); a blob not in the store is [`BlobSync::cannot_serve`]. Say when done
    /// ([`BlobSync::served`]).
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
    /// Store a verified part, then say so ([`BlobSync::written`]).
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
    /// The fetch was given up: the blob is not the size it was announced with (its outline, or
    /// its one part, proves another). Whoever announced it was wrong, not the peer that served
    /// it; a fetch with the right size may start again.
    WrongSize {
        /// The blob.
        hash: BlobHash,
        /// The size it was fetched for.
        announced: u64,
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
    /// Parts received and handed to the driver to write, not yet written: they count against
    /// the window, so a disk slower than the link holds back the asking, not memory.
    unwritten: u64,
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
    /// Peers that left it without a part for [`STALL_MS`]: not asked again until then.
    silent: BTreeMap<Uuid, u64>,
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
            unwritten: 0,
            next: 0,
            again: BTreeSet::new(),
            in_flight: BTreeSet::new(),
            source: None,
            outline_asked: false,
            hints: hints.to_vec(),
            lacking: BTreeSet::new(),
            silent: BTreeMap::new(),
            fetching: BTreeSet::new(),
            corrupt: BTreeSet::new(),
            waiting: BTreeSet::new(),
            last_progress: now_ms,
            stalled: false,
        }
    }

    fn can_ask(&self, peer: &Uuid, now_ms: u64) -> bool {
        !self.lacking.contains(peer)
            && !self.fetching.contains(peer)
            && !self.corrupt.contains(peer)
            && self.silent.get(peer).is_none_or(|until| *until <= now_ms)
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
    /// Parts promised to each peer ([`BlobEvent::Serve`]) the driver has not said it sent.
    owed: BTreeMap<Uuid, u64>,
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
            // Asked again: a fetch that waits for a peer looks once more.
            return self.advance(hash, now_ms);
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
    pub fn cancel(&mut self, hash: &BlobHash, now_ms: u64) {
        if self.fetches.remove(hash).is_some() {
            self.advance_waiting(now_ms);
        }
    }

    /// The blobs being fetched.
    pub fn hashes(&self) -> impl Iterator<Item = &BlobHash> {
        self.fetches.keys()
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
        self.owed.remove(&peer);
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
                let owed = self.owed.entry(from).or_default();
                if *owed + (to.saturating_sub(first)) > MAX_OWED {
                    return;
                }
                if first < to || outline {
                    *owed += to.saturating_sub(first);
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

    /// The driver served a [`BlobEvent::Serve`] of `parts` parts to `peer` (sent, or given up).
    pub fn served(&mut self, peer: Uuid, parts: u64) {
        if let Some(owed) = self.owed.get_mut(&peer) {
            *owed = owed.saturating_sub(parts);
        }
    }

    /// The driver wrote a part of `hash` ([`BlobEvent::Write`]): the window has room again.
    pub fn written(&mut self, hash: &BlobHash, now_ms: u64) {
        if let Some(fetch) = self.fetches.get_mut(hash) {
            fetch.unwritten = fetch.unwritten.saturating_sub(1);
            self.advance(*hash, now_ms);
        }
    }

    /// When [`BlobSync::on_deadline`] is next due: the earliest time a source may be judged
    /// silent.
    pub fn deadline(&self) -> Option<u64> {
        let stalls = self
            .fetches
            .values()
            .filter(|fetch| fetch.source.is_some() && !fetch.in_flight.is_empty())
            .map(|fetch| fetch.last_progress.saturating_add(STALL_MS));
        // A fetch waiting for a peer whose silence is over looks again then.
        let silences = self
            .fetches
            .values()
            .filter(|fetch| fetch.source.is_none())
            .flat_map(|fetch| fetch.silent.values().copied());
        stalls.chain(silences).min()
    }

    /// Sources silent for [`STALL_MS`] with parts in flight are left for others.
    pub fn on_deadline(&mut self, now_ms: u64) {
        let stalled: Vec<BlobHash> = self
            .fetches
            .iter()
            .filter(|(_, fetch)| {
                fetch.source.is_some()
                    && !fetch.in_flight.is_empty()
                    && now_ms >= fetch.last_progress.saturating_add(STALL_MS)
            })
            .map(|(hash, _)| *hash)
            .collect();
        for hash in stalled {
            if let Some(fetch) = self.fetches.get_mut(&hash)
                && let Some(source) = fetch.source
            {
                fetch.silent.insert(source, now_ms.saturating_add(STALL_MS));
                fetch.drop_source();
                fetch.last_progress = now_ms;
            }
        }
        self.advance_waiting(now_ms);
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
        match Outline::verified(hash, size, values) {
            Ok(outline) if size == fetch.size => {
                fetch.outline = Some(outline);
                fetch.last_progress = now_ms;
            }
            // The outline proves another size: the announcement was wrong.
            Ok(_) => self.wrong_size(hash, now_ms),
            Err(_) => self.corrupt(from, hash, now_ms),
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
            // A blob of one part is its part: if that is the blob, its size was announced wrong.
            if fetch.done.len() == 1 && BlobHash::of(&data) == hash {
                return self.wrong_size(hash, now_ms);
            }
            return self.corrupt(from, hash, now_ms);
        }
        if let Some(slot) = slot.and_then(|slot| fetch.done.get_mut(slot)) {
            *slot = true;
        }
        fetch.in_flight.remove(&index);
        fetch.again.remove(&index);
        fetch.remaining -= 1;
        fetch.unwritten += 1;
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
            self.advance_waiting(now_ms);
        } else {
            self.advance(hash, now_ms);
        }
    }

    fn wrong_size(&mut self, hash: BlobHash, now_ms: u64) {
        if let Some(fetch) = self.fetches.remove(&hash) {
            let announced = fetch.size;
            self.events
                .push_back(BlobEvent::WrongSize { hash, announced });
            self.advance_waiting(now_ms);
        }
    }

    /// Lets fetches without a source look for one (one ended, or a silence is over).
    fn advance_waiting(&mut self, now_ms: u64) {
        let waiting: Vec<BlobHash> = self
            .fetches
            .iter()
            .filter(|(_, fetch)| fetch.source.is_none())
            .map(|(hash, _)| *hash)
            .collect();
        for hash in waiting {
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
        let active = self
            .fetches
            .values()
            .filter(|fetch| fetch.source.is_some())
            .count();
        let Some(fetch) = self.fetches.get_mut(&hash) else {
            return;
        };
        if fetch.source.is_none() {
            if active >= ACTIVE {
                // Its turn comes when another ends.
                return;
            }
            let askable = |peer: &&Uuid| self.peers.contains(*peer) && fetch.can_ask(peer, now_ms);
            let pick = fetch
                .hints
                .iter()
                .find(askable)
                .or_else(|| self.peers.iter().find(askable))
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
        while (fetch.in_flight.len() as u64) + fetch.unwritten < WINDOW {
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
mod tests;
