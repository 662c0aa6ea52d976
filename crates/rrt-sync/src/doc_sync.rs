//! Keeping documents in sync with peers, as a sans-IO state machine.
//!
//! ```text
//! peer up ──▶ send our version (state vector) of every document
//! version in ──▶ reply with the diff it lacks (+ our version, if it has not had it on this link)
//! local edit ──▶ batched for `window`, merged, broadcast          ┐ as `state_delta`, split
//! update in ──▶ applied (untrusted: refused, reported, dropped)   │ into parts over `chunk`
//!           └─▶ forwarded to the peers that need it              ┘
//! ```
//!
//! The driver feeds peers' arrivals, departures and messages, calls [`DocSync::handle_timeout`]
//! at [`DocSync::poll_timeout`], and sends what [`DocSync::poll_outgoing`] returns. Versions make
//! catch-up exact after any partition: each side sends only what the other lacks.
//!
//! Every replica forwards each peer update it applies to its other peers, by the rule all the
//! sync machines share (`outgoing`'s module docs: every peer but the sender, and no member of the
//! sender's clique). The machine decides this, rather than offering a `forward` method for its
//! driver to call after each applied update: the rule — what goes, to whom, in what parts — is
//! then tested here without sockets, and the driver has nothing to decide. A forward is split like
//! a local update, in this replica's own batches (a receiver keys parts by sender and batch, so
//! the originator's batch numbers could collide with ours), and only once it has been reassembled
//! and applied, so nothing refused here is passed on. An update is forwarded only if it brought
//! something: a change, or content held for its causes (which may be what another peer needs);
//! one that brought nothing new ([`Applied::Known`]) stops here. That is what ends a flood in a
//! cycle.
//!
//! Parts of a split update are held until the last one arrives, so what a peer may make us hold
//! is bounded: it may have at most 16 updates unfinished, held sparsely (a declared part count
//! costs nothing), and together they never hold more than [`MAX_UPDATE`] bytes. The
//! part that would go over refuses its update ([`DocError::TooLarge`]), whose parts are dropped
//! and whose later parts are ignored; a peer's unfinished updates are dropped when it goes down
//! (on reconnect it is sent a fresh diff, in new parts). The bound is on bytes received, not on
//! the declared part count times some chunk size, since a receiver cannot know the sender's
//! chunk. An honest sender queues all the parts of an update together, so it never has more than
//! one unfinished update per link, and any update up to [`MAX_UPDATE`] gets through.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    time::{Duration, Instant},
};

use uuid::Uuid;

use crate::{
    doc_message::{CrdtOperation, DocMessage, Part},
    document::{Applied, DocError, Document, MAX_UPDATE},
    outgoing::{Arrival, Neighbour, Neighbours, Outgoing},
};

/// The most version requests held while local edits are being stored: a peer asks once per
/// link and document, so this is only reached by one that asks again and again.
const MAX_DEFERRED: usize = 4096;
/// The most parts one update may be declared to have.
const MAX_PARTS: u32 = 4096;
/// The most split updates one peer may have unfinished (refused ones included until it goes
/// down). An honest sender sends an update's parts one after another, so it has one.
const MAX_UNFINISHED: usize = 16;

/// What a peer's message did.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// `update` was applied to `document`: store it (it may hold content waiting for its
    /// causes), and tell watchers if it `changed` the document.
    Applied {
        /// The document.
        document: String,
        /// The update, as applied.
        update: Vec<u8>,
        /// Whether the text or map changed (false for a duplicate or a not-yet-integrable
        /// update).
        changed: bool,
    },
    /// A peer's update was refused; nothing changed.
    Rejected {
        /// Who sent it.
        from: Uuid,
        /// For which document.
        document: String,
        /// Why.
        error: DocError,
    },
}

/// The split updates one peer has in assembly, by (document, batch).
#[derive(Debug, Default)]
struct Inbound {
    updates: HashMap<(String, u64), Assembly>,
    /// The bytes held in `updates`' parts: at most [`MAX_UPDATE`].
    held: usize,
}

/// One split update from a peer.
#[derive(Debug)]
enum Assembly {
    /// The parts so far, by index, of `count` (held sparsely: a declared count costs nothing).
    Collecting {
        /// How many parts the update has.
        count: u32,
        /// Those in so far.
        parts: BTreeMap<u32, Vec<u8>>,
    },
    /// Refused for its size: its remaining parts are dropped as they come.
    Refused,
}

/// The documents of one replica and its sync state with every peer.
#[derive(Debug)]
pub struct DocSync {
    replica: u64,
    documents: BTreeMap<String, Document>,
    window: Duration,
    chunk: usize,
    neighbours: Neighbours,
    /// Local updates not stored yet, per document: not sent, not even in a diff.
    unsaved: BTreeMap<String, Vec<Vec<u8>>>,
    /// Versions peers asked about while the document had unsaved edits: (peer, document,
    /// version), answered once they are stored.
    deferred: Vec<(Uuid, String, Vec<u8>)>,
    /// Local updates not yet broadcast, per document.
    batch: BTreeMap<String, Vec<Vec<u8>>>,
    flush_at: Option<Instant>,
    outgoing: VecDeque<Outgoing<DocMessage>>,
    /// Parts of split updates, by sender.
    assembling: HashMap<Uuid, Inbound>,
    /// The documents whose version each peer has been sent on its current link: a version from
    /// a peer that has not had ours is answered with ours too, so it sends what only it has.
    versions_sent: HashMap<Uuid, BTreeSet<String>>,
    next_batch: u64,
}

impl DocSync {
    /// A replica numbered `replica`, batching local edits for `window` and splitting updates
    /// larger than `chunk` bytes.
    pub fn new(replica: u64, window: Duration, chunk: usize) -> Self {
        Self {
            replica,
            documents: BTreeMap::new(),
            window,
            chunk: chunk.max(1),
            neighbours: Neighbours::default(),
            unsaved: BTreeMap::new(),
            deferred: Vec::new(),
            batch: BTreeMap::new(),
            flush_at: None,
            outgoing: VecDeque::new(),
            assembling: HashMap::new(),
            versions_sent: HashMap::new(),
            next_batch: 0,
        }
    }

    /// Adds a document (loaded from disk, say).
    pub fn insert(&mut self, name: String, document: Document) {
        self.documents.insert(name, document);
    }

    /// A document, if this replica has it.
    pub fn document(&self, name: &str) -> Option<&Document> {
        self.documents.get(name)
    }

    /// The documents' names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.documents.keys().map(String::as_str)
    }

    /// A local edit of `name` (created if new), applied here and held: it goes to peers only
    /// once the driver has stored it and called [`DocSync::saved`], and is taken back with
    /// [`DocSync::revert_local`] or [`DocSync::refused`] if it could not be. Returns the update,
    /// for the driver to store.
    pub fn edit(&mut self, name: &str, change: impl FnOnce(&Document) -> Vec<u8>) -> Vec<u8> {
        let replica = self.replica;
        let document = self
            .documents
            .entry(name.to_owned())
            .or_insert_with(|| Document::new(replica));
        let update = change(document);
        self.unsaved
            .entry(name.to_owned())
            .or_default()
            .push(update.clone());
        update
    }

    /// The local edit that produced `update` is stored: batched for broadcast within the window.
    pub fn saved(&mut self, name: &str, update: Vec<u8>, now: Instant) {
        if !self.take_unsaved(name, &update) {
            return;
        }
        // A batch merges into one update, which peers accept up to MAX_UPDATE: one that would
        // pass it goes out now, and this edit starts the next.
        let batched: usize = self
            .batch
            .get(name)
            .into_iter()
            .flatten()
            .map(Vec::len)
            .sum();
        if batched + update.len() > MAX_UPDATE
            && let Some(full) = self.batch.remove(name)
        {
            self.broadcast_batch(name, full);
        }
        self.batch.entry(name.to_owned()).or_default().push(update);
        self.flush_at.get_or_insert(now + self.window);
    }

    /// Takes back the local edit that produced `update`, which could not be stored: the edit is
    /// refused, so it must not be sent anywhere, nor stay applied. `stored` is the document as it
    /// is on disk; it replaces ours — before anything about the document goes out again — and
    /// every peer is asked again for what we lack (ours may have held peers' updates the disk did
    /// not get either). Other edits of the document not stored yet go with it: the driver
    /// refuses them too ([`DocSync::refused`]). The ids the edit used are issued again by the
    /// next edit: no one ever saw them.
    ///
    /// `None` when even reading the stored document failed: the edit cannot be taken out of
    /// ours, so it stays here and is held — never sent, and no diff of the document goes out —
    /// while the driver stores no further local edit of it (until a restart reads the disk).
    pub fn revert_local(&mut self, name: &str, update: &[u8], stored: Option<Document>) {
        let Some(stored) = stored else {
            return;
        };
        self.outgoing.push_back(Outgoing::Broadcast {
            message: delta(vec![version_of(name, &stored)]),
            except: None,
        });
        self.documents.insert(name.to_owned(), stored);
        self.take_unsaved(name, update);
    }

    /// A local edit that was not stored, and whose content a [`DocSync::revert_local`] already
    /// took back: it is forgotten.
    pub fn refused(&mut self, name: &str, update: &[u8]) {
        self.take_unsaved(name, update);
    }

    /// Removes `update` from the edits of `name` not stored yet; whether it was one. Versions
    /// peers asked for while edits were unsaved are answered once none is left.
    fn take_unsaved(&mut self, name: &str, update: &[u8]) -> bool {
        let Some(unsaved) = self.unsaved.get_mut(name) else {
            return false;
        };
        let Some(at) = unsaved.iter().position(|held| held == update) else {
            return false;
        };
        unsaved.remove(at);
        if unsaved.is_empty() {
            self.unsaved.remove(name);
            let (ready, waiting) = std::mem::take(&mut self.deferred)
                .into_iter()
                .partition(|(_, document, _)| document == name);
            self.deferred = waiting;
            for (from, document, version) in ready {
                let mut changes = Vec::new();
                self.answer_version(from, &document, &version, &mut changes);
                for change in changes {
                    tracing::warn!(
                        ?change,
                        "a version a peer asked about could not be answered"
                    );
                }
            }
        }
        true
    }

    /// The replica number local edits are made under.
    pub fn replica(&self) -> u64 {
        self.replica
    }

    /// A peer came up over a link that sits in the mesh as `neighbour`: ask it for what we lack
    /// of every document (it answers with diffs).
    pub fn peer_up(&mut self, peer: Uuid, neighbour: Neighbour) {
        self.neighbours.up(peer, neighbour);
        let versions = self
            .documents
            .iter()
            .map(|(name, document)| version_of(name, document))
            .collect::<Vec<_>>();
        self.versions_sent.insert(
            peer,
            self.documents.keys().cloned().collect::<BTreeSet<_>>(),
        );
        if !versions.is_empty() {
            self.outgoing.push_back(Outgoing::To(peer, delta(versions)));
        }
    }

    /// A peer went down: its unfinished split updates will never be finished.
    pub fn peer_down(&mut self, peer: Uuid) {
        self.neighbours.down(peer);
        self.assembling.remove(&peer);
        self.versions_sent.remove(&peer);
        self.deferred.retain(|(asking, ..)| *asking != peer);
    }

    /// A message from `from`.
    pub fn handle(&mut self, from: Uuid, message: DocMessage) -> Vec<Change> {
        self.receive(from, message, Arrival::Direct)
    }

    /// A message a broadcast tree delivered from `from` (its last hop): applied like
    /// [`DocSync::handle`]'s, never forwarded — the tree carries it on.
    pub fn handle_spread(&mut self, from: Uuid, message: DocMessage) -> Vec<Change> {
        self.receive(from, message, Arrival::Spread)
    }

    fn receive(&mut self, from: Uuid, message: DocMessage, arrival: Arrival) -> Vec<Change> {
        let DocMessage::StateDelta {
            crdt_ops: operations,
            ..
        } = message;
        let mut changes = Vec::new();
        for operation in operations {
            if !crate::valid_name(&operation.document) {
                changes.push(Change::Rejected {
                    from,
                    document: operation.document,
                    error: DocError::Malformed("not a document name".to_owned()),
                });
                continue;
            }
            if !operation.state_vector.is_empty() {
                self.answer_version(
                    from,
                    &operation.document,
                    &operation.state_vector,
                    &mut changes,
                );
            }
            if operation.update.is_empty() {
                continue;
            }
            let document = operation.document.clone();
            let update = match self.assemble(from, operation) {
                Ok(Some(update)) => update,
                Ok(None) => continue,
                Err(error) => {
                    changes.push(Change::Rejected {
                        from,
                        document,
                        error,
                    });
                    continue;
                }
            };
            let replica = self.replica;
            let target = self
                .documents
                .entry(document.clone())
                .or_insert_with(|| Document::new(replica));
            // Held content is in no diff: a peer that came up while it was held was not sent it,
            // and forwarding only this update would not send it either once it is released. So
            // when this update releases held content, what it released goes on too.
            let released_from = target.holds().then(|| target.state_vector());
            changes.push(match target.apply(&update) {
                Ok(applied) => {
                    if applied != Applied::Known {
                        self.forward(&document, &update, from, arrival);
                    }
                    if applied == Applied::Changed
                        && let Some(before) = released_from
                        && let Some(released) = self
                            .documents
                            .get(&document)
                            .and_then(|target| target.diff(&before).ok())
                    {
                        self.forward(&document, &released, from, arrival);
                    }
                    Change::Applied {
                        document,
                        update,
                        changed: applied.changed(),
                    }
                }
                Err(error) => Change::Rejected {
                    from,
                    document,
                    error,
                },
            });
        }
        changes
    }

    fn answer_version(
        &mut self,
        from: Uuid,
        name: &str,
        version: &[u8],
        changes: &mut Vec<Change>,
    ) {
        // A diff would carry edits that may yet be refused: it waits until they are stored.
        if self.unsaved.contains_key(name) {
            // One per peer and document, the latest: asking again replaces, it does not add.
            let asked = self
                .deferred
                .iter()
                .position(|(peer, document, _)| *peer == from && document == name);
            match asked {
                Some(at) => self.deferred[at].2 = version.to_vec(),
                None if self.deferred.len() < MAX_DEFERRED => {
                    self.deferred
                        .push((from, name.to_owned(), version.to_vec()));
                }
                None => {}
            }
            return;
        }
        // A document new to us, or one we learnt of (from another peer) after this one came up:
        // the peer has not had our version, so it cannot know what we lack. Ask.
        let ask = self
            .versions_sent
            .entry(from)
            .or_default()
            .insert(name.to_owned());
        let replica = self.replica;
        let document = self
            .documents
            .entry(name.to_owned())
            .or_insert_with(|| Document::new(replica));
        let ours = ask.then(|| version_of(name, document));
        match document.diff(version) {
            Ok(diff) => {
                let operations: Vec<_> = self.split(name, &diff).into_iter().chain(ours).collect();
                for operation in operations {
                    self.outgoing
                        .push_back(Outgoing::To(from, delta(vec![operation])));
                }
            }
            Err(error) => changes.push(Change::Rejected {
                from,
                document: name.to_owned(),
                error,
            }),
        }
    }

    /// The whole update once every part of it is in; parts may come in any order, twice.
    /// `Ok(None)` while parts are missing (or for a part of an update already refused).
    fn assemble(
        &mut self,
        from: Uuid,
        operation: CrdtOperation,
    ) -> Result<Option<Vec<u8>>, DocError> {
        let Some(part) = operation.part else {
            return Ok(Some(operation.update));
        };
        if part.count == 0 || part.index >= part.count || part.count > MAX_PARTS {
            return Err(DocError::Malformed(format!(
                "part {} of {} (at most {MAX_PARTS} parts)",
                part.index, part.count
            )));
        }
        let inbound = self.assembling.entry(from).or_default();
        let key = (operation.document, part.batch);
        if !inbound.updates.contains_key(&key) && inbound.updates.len() >= MAX_UNFINISHED {
            return Err(DocError::Malformed(format!(
                "more than {MAX_UNFINISHED} split updates unfinished at once"
            )));
        }
        let assembly = inbound
            .updates
            .entry(key.clone())
            .or_insert_with(|| Assembly::Collecting {
                count: part.count,
                parts: BTreeMap::new(),
            });
        let Assembly::Collecting { count, parts } = assembly else {
            return Ok(None);
        };
        if *count != part.count {
            return Err(DocError::Malformed(format!(
                "part {} of {}, of an update split in {count}",
                part.index, part.count
            )));
        }
        let replaced = parts.get(&part.index).map_or(0, Vec::len);
        let held = inbound.held - replaced + operation.update.len();
        if held > MAX_UPDATE {
            let dropped: usize = parts.values().map(Vec::len).sum();
            inbound.held -= dropped;
            *assembly = Assembly::Refused;
            return Err(DocError::TooLarge {
                len: held,
                max: MAX_UPDATE,
            });
        }
        parts.insert(part.index, operation.update);
        inbound.held = held;
        if parts.len() < *count as usize {
            return Ok(None);
        }
        // Every index below `count` is in: the map holds them in order.
        let update: Vec<u8> = std::mem::take(parts).into_values().flatten().collect();
        inbound.held -= update.len();
        inbound.updates.remove(&key);
        Ok(Some(update))
    }

    /// Queues a peer's update of `name` for the peers that need it.
    fn forward(&mut self, name: &str, update: &[u8], from: Uuid, arrival: Arrival) {
        for operation in self.split(name, update) {
            self.outgoing.extend(
                self.neighbours
                    .forward(from, arrival, delta(vec![operation])),
            );
        }
    }

    /// `update` as one or more operations, each within the chunk size.
    fn split(&mut self, name: &str, update: &[u8]) -> Vec<CrdtOperation> {
        if update.len() <= self.chunk {
            return vec![operation(name, update.to_vec(), None)];
        }
        self.next_batch += 1;
        let batch = self.next_batch;
        let count = update.len().div_ceil(self.chunk) as u32;
        update
            .chunks(self.chunk)
            .enumerate()
            .map(|(index, bytes)| {
                let part = Part {
                    batch,
                    index: index as u32,
                    count,
                };
                operation(name, bytes.to_vec(), Some(part))
            })
            .collect()
    }

    /// When the batched local edits must go out.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.flush_at
    }

    /// Broadcasts the batched edits if their window has passed: one merged update per
    /// document, however many edits the burst held.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.flush_at.is_none_or(|at| at > now) {
            return;
        }
        self.flush_at = None;
        for (name, updates) in std::mem::take(&mut self.batch) {
            self.broadcast_batch(&name, updates);
        }
    }

    /// Queues a document's batched local updates for every peer, merged into one.
    fn broadcast_batch(&mut self, name: &str, updates: Vec<Vec<u8>>) {
        let updates = match yrs::merge_updates_v1(&updates) {
            Ok(merged) => vec![merged],
            Err(error) => {
                tracing::error!(%error, "could not merge local updates; sending them one by one");
                updates
            }
        };
        for update in updates.iter().filter(|update| !update.is_empty()) {
            for operation in self.split(name, update) {
                self.outgoing.push_back(Outgoing::Broadcast {
                    message: delta(vec![operation]),
                    except: None,
                });
            }
        }
    }

    /// The next message to send.
    pub fn poll_outgoing(&mut self) -> Option<Outgoing<DocMessage>> {
        self.outgoing.pop_front()
    }
}

fn operation(name: &str, update: Vec<u8>, part: Option<Part>) -> CrdtOperation {
    CrdtOperation {
        document: name.to_owned(),
        update,
        state_vector: Vec::new(),
        part,
    }
}

fn version_of(name: &str, document: &Document) -> CrdtOperation {
    CrdtOperation {
        document: name.to_owned(),
        update: Vec::new(),
        state_vector: document.state_vector(),
        part: None,
    }
}

fn delta(crdt_ops: Vec<CrdtOperation>) -> DocMessage {
    DocMessage::delta(crdt_ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_millis(25);

    /// A local edit the driver stored at once.
    fn saved_edit(
        sync: &mut DocSync,
        name: &str,
        now: Instant,
        change: impl FnOnce(&Document) -> Vec<u8>,
    ) {
        let update = sync.edit(name, change);
        sync.saved(name, update, now);
    }

    fn pair(chunk: usize) -> (DocSync, DocSync, Uuid, Uuid) {
        (
            DocSync::new(1, WINDOW, chunk),
            DocSync::new(2, WINDOW, chunk),
            Uuid::from_u128(1),
            Uuid::from_u128(2),
        )
    }

    /// Delivers everything `from` has queued to `to` (broadcasts and messages for it).
    fn pump(from: &mut DocSync, from_id: Uuid, to: &mut DocSync, to_id: Uuid) -> Vec<Change> {
        let mut changes = Vec::new();
        while let Some(outgoing) = from.poll_outgoing() {
            if !outgoing.is_for(to_id) {
                continue;
            }
            changes.extend(to.handle(from_id, outgoing.message().clone()));
        }
        changes
    }

    fn settle(a: &mut DocSync, a_id: Uuid, b: &mut DocSync, b_id: Uuid) {
        for _ in 0..4 {
            pump(a, a_id, b, b_id);
            pump(b, b_id, a, a_id);
        }
    }

    #[test]
    fn on_connect_each_side_gets_exactly_what_it_lacks_including_new_documents() {
        let (mut a, mut b, a_id, b_id) = pair(1 << 20);
        let now = Instant::now();
        saved_edit(&mut a, "notes", now, |d| d.append("from a; "));
        saved_edit(&mut b, "notes", now, |d| d.append("from b; "));
        saved_edit(&mut b, "todo", now, |d| d.append("only b has this"));
        a.peer_up(b_id, Neighbour::Other);
        b.peer_up(a_id, Neighbour::Other);
        settle(&mut a, a_id, &mut b, b_id);
        for name in ["notes", "todo"] {
            let (x, y) = (
                a.document(name).expect("a has it"),
                b.document(name).expect("b has it"),
            );
            assert_eq!(x.text(), y.text(), "{name}");
        }
        assert!(
            a.document("notes")
                .expect("notes")
                .text()
                .contains("from b")
        );
        assert_eq!(a.document("todo").expect("todo").text(), "only b has this");
    }

    #[test]
    fn a_version_arriving_after_the_document_was_learnt_elsewhere_is_answered_with_ours() {
        // b had no document when a and c came up, so it sent them no version. It learns of
        // "notes" from c's version first; a's version must still be answered with b's own, or
        // a never sends what only a has (found by the simulator, seed 170).
        let now = Instant::now();
        let ids = [1, 2, 3].map(Uuid::from_u128);
        let [a_id, b_id, c_id] = ids;
        let [mut a, mut b, mut c] = [1, 2, 3].map(|n| DocSync::new(n, WINDOW, 1 << 20));
        saved_edit(&mut a, "notes", now, |d| d.append("from a; "));
        saved_edit(&mut c, "notes", now, |d| d.append("from c; "));
        for replica in [&mut a, &mut c] {
            replica.handle_timeout(now + WINDOW);
            // Broadcast while no peer was up: sent to nobody.
            while replica.poll_outgoing().is_some() {}
        }
        b.peer_up(a_id, Neighbour::Other);
        b.peer_up(c_id, Neighbour::Other);
        a.peer_up(b_id, Neighbour::Other);
        c.peer_up(b_id, Neighbour::Other);
        pump(&mut c, c_id, &mut b, b_id);
        for _ in 0..4 {
            pump(&mut a, a_id, &mut b, b_id);
            pump(&mut c, c_id, &mut b, b_id);
            while let Some(outgoing) = b.poll_outgoing() {
                for (peer, id) in [(&mut a, a_id), (&mut c, c_id)] {
                    if outgoing.is_for(id) {
                        peer.handle(b_id, outgoing.message().clone());
                    }
                }
            }
        }
        for (replica, id) in [(&a, a_id), (&b, b_id), (&c, c_id)] {
            let text = replica.document("notes").map(Document::text);
            let text = text.as_deref().unwrap_or_default();
            assert!(
                text.contains("from a") && text.contains("from c"),
                "{id}: {text:?}"
            );
        }
    }

    #[test]
    fn a_burst_of_edits_goes_out_as_one_message() {
        let (mut a, mut b, a_id, b_id) = pair(1 << 20);
        let start = Instant::now();
        for i in 0..200 {
            saved_edit(&mut a, "typing", start, |d| d.append(&i.to_string()));
        }
        assert_eq!(a.poll_timeout(), Some(start + WINDOW));
        a.handle_timeout(start + WINDOW / 2);
        assert!(a.poll_outgoing().is_none(), "not before the window ends");
        a.handle_timeout(start + WINDOW);
        let changes = pump(&mut a, a_id, &mut b, b_id);
        assert_eq!(changes.len(), 1, "one merged update for 200 edits");
        assert_eq!(
            b.document("typing").expect("doc").text(),
            a.document("typing").expect("doc").text()
        );
    }

    #[test]
    fn a_large_catch_up_travels_in_parts_under_the_chunk_size() {
        let (mut a, mut b, a_id, b_id) = pair(4096);
        let now = Instant::now();
        saved_edit(&mut a, "big", now, |d| {
            d.append(&"lorem ipsum ".repeat(10_000))
        });
        let mut largest = 0;
        // a announces its version; b, lacking the document, asks for all of it.
        a.peer_up(b_id, Neighbour::Other);
        pump(&mut a, a_id, &mut b, b_id);
        pump(&mut b, b_id, &mut a, a_id);
        // Reverse the parts, and send each twice: order and duplicates do not matter.
        let mut parts = Vec::new();
        while let Some(Outgoing::To(_, DocMessage::StateDelta { crdt_ops, .. })) = a.poll_outgoing()
        {
            largest = largest.max(crdt_ops.iter().map(|op| op.update.len()).max().unwrap_or(0));
            parts.extend(crdt_ops);
        }
        assert!(parts.len() > 10);
        assert!(largest <= 4096);
        parts.reverse();
        let doubled: Vec<_> = parts.iter().chain(parts.iter()).cloned().collect();
        let applied = b.handle(a_id, delta(doubled));
        assert!(matches!(applied.as_slice(), [Change::Applied { .. }, ..]));
        assert_eq!(
            b.document("big").expect("doc").text(),
            a.document("big").expect("doc").text()
        );
    }

    #[test]
    fn malformed_updates_and_names_are_rejected_and_nothing_changes() {
        let (_, mut b, a_id, _) = pair(1 << 20);
        saved_edit(&mut b, "doc", Instant::now(), |d| d.append("intact"));
        let garbage = vec![
            operation("doc", vec![0xff; 40], None),
            operation("../escape", vec![1], None),
            CrdtOperation {
                state_vector: vec![0xff, 0xff, 0xff],
                ..operation("doc", Vec::new(), None)
            },
            part("doc", 1, 0, 0, vec![1]),
            part("doc", 2, 3, 3, vec![1]),
            part("doc", 3, 0, MAX_PARTS + 1, vec![1]),
        ];
        let changes = b.handle(a_id, delta(garbage));
        assert_eq!(changes.len(), 6);
        assert!(changes.iter().all(|c| matches!(c, Change::Rejected { .. })));
        // A part contradicting its update's part count.
        assert!(
            b.handle(a_id, delta(vec![part("doc", 4, 0, 3, vec![1])]))
                .is_empty()
        );
        let changes = b.handle(a_id, delta(vec![part("doc", 4, 1, 4, vec![1])]));
        assert!(matches!(
            changes.as_slice(),
            [Change::Rejected {
                error: DocError::Malformed(_),
                ..
            }]
        ));
        assert_eq!(b.document("doc").expect("doc").text(), "intact");
    }

    const MIB: usize = 1024 * 1024;

    fn part(name: &str, batch: u64, index: u32, count: u32, bytes: Vec<u8>) -> CrdtOperation {
        operation(
            name,
            bytes,
            Some(Part {
                batch,
                index,
                count,
            }),
        )
    }

    /// A 9 MiB edit made on `a`, broadcast in parts and delivered to `b`.
    fn nine_mib_edit(a: &mut DocSync, a_id: Uuid, b: &mut DocSync, b_id: Uuid) -> Vec<Change> {
        let now = Instant::now();
        saved_edit(a, "big", now, |d| {
            d.append(&"lorem ipsum ".repeat(9 * MIB / 12))
        });
        a.handle_timeout(now + WINDOW);
        pump(a, a_id, b, b_id)
    }

    /// Delivers what every replica sends to all the others (a full mesh), round after round,
    /// until nobody sends anything; returns the messages delivered, or `None` if traffic has not
    /// stopped after `rounds`.
    fn flood(replicas: &mut [(DocSync, Uuid)], rounds: usize) -> Option<usize> {
        let mut delivered = 0;
        for _ in 0..rounds {
            let mut mail = Vec::new();
            for (replica, from) in replicas.iter_mut() {
                while let Some(outgoing) = replica.poll_outgoing() {
                    mail.push((*from, outgoing));
                }
            }
            if mail.is_empty() {
                return Some(delivered);
            }
            for (from, outgoing) in mail {
                let (message, addressed): (_, &dyn Fn(Uuid) -> bool) = match &outgoing {
                    Outgoing::Broadcast { message, except } => (message, &|id| Some(id) != *except),
                    Outgoing::Multicast { to, message } => (message, &|id| to.contains(&id)),
                    Outgoing::To(peer, message) => (message, &|id| id == *peer),
                };
                for (replica, id) in replicas.iter_mut() {
                    if *id != from && addressed(*id) {
                        replica.handle(from, message.clone());
                        delivered += 1;
                    }
                }
            }
        }
        None
    }

    #[test]
    fn forwards_in_a_cycle_stop_at_what_everyone_has() {
        let mut replicas: Vec<(DocSync, Uuid)> = (1..=3)
            .map(|n| (DocSync::new(n, WINDOW, MIB), Uuid::from_u128(n.into())))
            .collect();
        let ids: Vec<Uuid> = replicas.iter().map(|(_, id)| *id).collect();
        for (replica, me) in &mut replicas {
            for peer in ids.iter().filter(|peer| *peer != me) {
                replica.peer_up(*peer, Neighbour::Other);
            }
        }
        let now = Instant::now();
        saved_edit(&mut replicas[0].0, "notes", now, |d| {
            d.append("around the triangle")
        });
        replicas[0].0.handle_timeout(now + WINDOW);
        let delivered = flood(&mut replicas, 20).expect("the flood ends");
        // The edit to both others, each forwarding it once to the third: four deliveries.
        assert_eq!(delivered, 4);
        for (replica, _) in &replicas {
            assert_eq!(
                replica.document("notes").map(Document::text).as_deref(),
                Some("around the triangle")
            );
        }
    }

    #[test]
    fn what_a_tree_delivers_is_applied_and_not_forwarded() {
        let (mut a, _, a_id, b_id) = pair(MIB);
        let mut here = DocSync::new(3, WINDOW, MIB);
        here.peer_up(a_id, Neighbour::Other);
        here.peer_up(b_id, Neighbour::Other);
        while here.poll_outgoing().is_some() {}
        let now = Instant::now();
        saved_edit(&mut a, "notes", now, |d| d.append("down the tree"));
        a.handle_timeout(now + WINDOW);
        while let Some(outgoing) = a.poll_outgoing() {
            let changes = here.handle_spread(a_id, outgoing.message().clone());
            assert!(matches!(
                changes.as_slice(),
                [Change::Applied { changed: true, .. }] | []
            ));
        }
        assert_eq!(
            here.document("notes").map(Document::text).as_deref(),
            Some("down the tree")
        );
        assert!(here.poll_outgoing().is_none(), "the tree carries it on");
    }

    #[test]
    fn a_peer_update_is_forwarded_in_parts_to_the_others_never_back() {
        let (mut a, mut b, a_id, b_id) = pair(MIB);
        let (mut hub, hub_id) = (DocSync::new(3, WINDOW, MIB), Uuid::from_u128(3));
        hub.peer_up(a_id, Neighbour::Other);
        hub.peer_up(b_id, Neighbour::Other);
        let changes = nine_mib_edit(&mut a, a_id, &mut hub, hub_id);
        assert!(matches!(
            changes.as_slice(),
            [Change::Applied { changed: true, .. }]
        ));

        let mut parts = Vec::new();
        while let Some(outgoing) = hub.poll_outgoing() {
            let Outgoing::Broadcast {
                message: DocMessage::StateDelta { crdt_ops, .. },
                except,
            } = outgoing
            else {
                panic!("only forwards here");
            };
            assert_eq!(except, Some(a_id), "never back to its sender");
            parts.extend(crdt_ops);
        }
        assert!(parts.len() >= 9, "9 MiB in parts of at most 1 MiB");
        assert!(
            parts
                .iter()
                .all(|op| op.part.is_some() && op.update.len() <= MIB)
        );
        let changes = b.handle(hub_id, delta(parts));
        assert!(matches!(
            changes.as_slice(),
            [Change::Applied { changed: true, .. }]
        ));
        assert_eq!(
            b.document("big").expect("doc").text(),
            a.document("big").expect("doc").text()
        );
        assert!(
            b.poll_outgoing().is_none(),
            "b has no other peer to forward to"
        );

        // What is refused is not passed on.
        let changes = hub.handle(b_id, delta(vec![operation("big", vec![0xff; 40], None)]));
        assert!(matches!(changes.as_slice(), [Change::Rejected { .. }]));
        assert!(hub.poll_outgoing().is_none());
    }

    #[test]
    fn a_burst_of_edits_larger_than_one_update_goes_out_in_updates_peers_accept() {
        let (mut a, mut b, a_id, b_id) = pair(MIB);
        let now = Instant::now();
        let twenty_mib = "x".repeat(20 * MIB);
        // Two 20 MiB appends within one batching window: merged they would pass MAX_UPDATE.
        saved_edit(&mut a, "notes", now, |d| d.append(&twenty_mib));
        saved_edit(&mut a, "notes", now, |d| d.append(&twenty_mib));
        a.handle_timeout(now + WINDOW);
        let changes = pump(&mut a, a_id, &mut b, b_id);
        assert!(
            changes
                .iter()
                .all(|change| matches!(change, Change::Applied { .. })),
            "nothing refused"
        );
        assert_eq!(b.document("notes").map(|d| d.text().len()), Some(40 * MIB));
    }

    #[test]
    fn a_reverted_local_edit_is_never_sent_and_the_next_edit_converges() {
        let (mut a, mut b, a_id, b_id) = pair(MIB);
        let now = Instant::now();
        saved_edit(&mut a, "notes", now, |d| d.append("stored "));
        a.handle_timeout(now + WINDOW);
        settle(&mut a, a_id, &mut b, b_id);
        let on_disk = Document::from_snapshot(1, &a.document("notes").expect("a").snapshot())
            .expect("a copy of what is stored");
        // An edit whose store failed: taken back before its batch goes out.
        let refused = a.edit("notes", |d| d.append("refused "));
        a.revert_local("notes", &refused, Some(on_disk));
        assert_eq!(
            a.document("notes").map(Document::text).as_deref(),
            Some("stored ")
        );
        saved_edit(&mut a, "notes", now, |d| d.append("retried"));
        a.handle_timeout(now + WINDOW);
        settle(&mut a, a_id, &mut b, b_id);
        for replica in [&a, &b] {
            assert_eq!(
                replica.document("notes").map(Document::text).as_deref(),
                Some("stored retried")
            );
        }
    }

    #[test]
    fn an_edit_not_stored_yet_goes_nowhere_not_even_in_a_diff() {
        let (mut a, mut b, a_id, b_id) = pair(MIB);
        let now = Instant::now();
        let first = a.edit("notes", |d| d.append("first "));
        let second = a.edit("notes", |d| d.append("second"));
        a.peer_up(b_id, Neighbour::Other);
        b.peer_up(a_id, Neighbour::Other);
        a.handle_timeout(now + WINDOW);
        settle(&mut a, a_id, &mut b, b_id);
        let text_of_b = |b: &DocSync| b.document("notes").map(Document::text).unwrap_or_default();
        assert_eq!(text_of_b(&b), "", "b asked; a waits");
        a.saved("notes", first, now);
        settle(&mut a, a_id, &mut b, b_id);
        assert_eq!(text_of_b(&b), "", "one still unsaved");
        a.saved("notes", second, now);
        a.handle_timeout(now + WINDOW);
        settle(&mut a, a_id, &mut b, b_id);
        assert_eq!(
            b.document("notes").map(Document::text).as_deref(),
            Some("first second"),
            "stored: sent, and b's version answered"
        );
    }

    #[test]
    fn a_version_asked_while_an_edit_was_stored_is_answered_without_it_if_the_store_failed() {
        let (mut a, mut b, a_id, b_id) = pair(MIB);
        let now = Instant::now();
        saved_edit(&mut a, "notes", now, |d| d.append("stored "));
        let on_disk = Document::from_snapshot(1, &a.document("notes").expect("a").snapshot())
            .expect("a copy of what is stored");
        let refused = a.edit("notes", |d| d.append("REFUSED"));
        // b comes up and asks while the edit is being written: the answer waits.
        a.peer_up(b_id, Neighbour::Other);
        b.peer_up(a_id, Neighbour::Other);
        settle(&mut a, a_id, &mut b, b_id);
        a.revert_local("notes", &refused, Some(on_disk));
        a.handle_timeout(now + WINDOW);
        settle(&mut a, a_id, &mut b, b_id);
        for replica in [&a, &b] {
            assert_eq!(
                replica.document("notes").map(Document::text).as_deref(),
                Some("stored ")
            );
        }
    }

    #[test]
    fn an_edit_that_cannot_be_taken_back_is_held_and_nothing_of_its_document_goes_out() {
        let (mut a, mut b, a_id, b_id) = pair(MIB);
        let now = Instant::now();
        let refused = a.edit("notes", |d| d.append("REFUSED"));
        a.revert_local("notes", &refused, None);
        a.peer_up(b_id, Neighbour::Other);
        b.peer_up(a_id, Neighbour::Other);
        a.handle_timeout(now + WINDOW);
        settle(&mut a, a_id, &mut b, b_id);
        assert_eq!(
            b.document("notes").map(Document::text).unwrap_or_default(),
            "",
            "held: neither sent nor in a diff"
        );
    }

    #[test]
    fn held_content_a_peer_missed_goes_to_it_once_released() {
        let (mut here, mut later, here_id, later_id) = pair(MIB);
        let origin_id = Uuid::from_u128(9);
        let origin = Document::new(9);
        let first = origin.append("one ");
        let second = origin.append("two");
        here.peer_up(origin_id, Neighbour::Other);
        // `second` waits for `first`: held, and forwarded to nobody (no other peer is up).
        here.handle(origin_id, delta(vec![operation("notes", second, None)]));
        // A peer comes up meanwhile: the catch-up diff cannot carry what is held.
        here.peer_up(later_id, Neighbour::Other);
        later.peer_up(here_id, Neighbour::Other);
        settle(&mut here, here_id, &mut later, later_id);
        // `first` releases `second` here; the peer must get both.
        here.handle(origin_id, delta(vec![operation("notes", first, None)]));
        settle(&mut here, here_id, &mut later, later_id);
        assert_eq!(
            later.document("notes").map(Document::text).as_deref(),
            Some("one two"),
            "found by the simulator, seed 3181"
        );
    }

    #[test]
    fn a_peer_asking_again_while_an_edit_is_stored_replaces_its_question() {
        let (mut a, _, _, b_id) = pair(MIB);
        let pending = a.edit("notes", |d| d.append("being stored"));
        let version = Document::new(2).state_vector();
        for _ in 0..10_000 {
            a.handle(
                b_id,
                delta(vec![CrdtOperation {
                    document: "notes".into(),
                    update: Vec::new(),
                    state_vector: version.clone(),
                    part: None,
                }]),
            );
        }
        assert_eq!(a.deferred.len(), 1, "one question per peer and document");
        a.saved("notes", pending, Instant::now());
        assert!(a.deferred.is_empty());
        assert!(a.poll_outgoing().is_some(), "answered once stored");
    }

    #[test]
    fn edits_made_before_a_revert_are_refused_without_another_revert() {
        let (mut a, mut b, a_id, b_id) = pair(MIB);
        let now = Instant::now();
        let failed = a.edit("notes", |d| d.append("failed "));
        let later = a.edit("notes", |d| d.append("later"));
        a.revert_local("notes", &failed, Some(Document::new(1)));
        a.refused("notes", &later);
        saved_edit(&mut a, "notes", now, |d| d.append("after"));
        a.peer_up(b_id, Neighbour::Other);
        b.peer_up(a_id, Neighbour::Other);
        a.handle_timeout(now + WINDOW);
        settle(&mut a, a_id, &mut b, b_id);
        for replica in [&a, &b] {
            assert_eq!(
                replica.document("notes").map(Document::text).as_deref(),
                Some("after")
            );
        }
    }

    #[test]
    fn a_peer_cannot_open_split_updates_without_end() {
        let (mut a, _, _, b_id) = pair(MIB);
        // One frame's worth of first parts, each of a new update declaring 4,096 parts.
        let first_parts: Vec<CrdtOperation> = (0..1000)
            .map(|batch| {
                let part = Part {
                    batch,
                    index: 0,
                    count: 4096,
                };
                operation("notes", vec![0], Some(part))
            })
            .collect();
        let changes = a.handle(b_id, delta(first_parts));
        assert_eq!(
            changes.len(),
            1000 - MAX_UNFINISHED,
            "all but the first are refused"
        );
        assert!(changes.iter().all(|change| matches!(
            change,
            Change::Rejected {
                error: DocError::Malformed(_),
                ..
            }
        )));
        // Its link going down frees them, and an honest update gets through again.
        a.peer_down(b_id);
        let whole = Document::new(9).append("after");
        let changes = a.handle(b_id, delta(vec![operation("notes", whole, None)]));
        assert!(matches!(
            changes.as_slice(),
            [Change::Applied { changed: true, .. }]
        ));
    }

    #[test]
    fn a_split_update_over_the_cap_is_refused_and_its_other_parts_ignored() {
        let (mut a, mut b, a_id, b_id) = pair(MIB);
        // 64 parts of 1 MiB: the 33rd takes the peer's parts in assembly over the cap.
        let mut refused = Vec::new();
        for index in 0..64 {
            let changes = b.handle(
                a_id,
                delta(vec![part("big", 1000, index, 64, vec![0; MIB])]),
            );
            refused.extend(changes.into_iter().map(|change| (index, change)));
        }
        assert!(
            matches!(
                refused.as_slice(),
                [(32, Change::Rejected { error: DocError::TooLarge { len, max }, .. })]
                    if *len > MAX_UPDATE && *max == MAX_UPDATE
            ),
            "{refused:?}"
        );
        // Nothing of it is held: a 9 MiB update from the same peer still fits.
        let changes = nine_mib_edit(&mut a, a_id, &mut b, b_id);
        assert!(
            matches!(changes.as_slice(), [Change::Applied { changed: true, .. }]),
            "{changes:?}"
        );
        assert_eq!(b.document("big").expect("doc").len(), 9 * MIB / 12 * 12);
    }

    #[test]
    fn a_peer_going_down_drops_its_unfinished_parts() {
        let (mut a, mut b, a_id, b_id) = pair(MIB);
        for index in 0..31 {
            let changes = b.handle(
                a_id,
                delta(vec![part("big", 1000, index, 40, vec![0; MIB])]),
            );
            assert!(changes.is_empty(), "{changes:?}");
        }
        b.peer_down(a_id);
        let changes = nine_mib_edit(&mut a, a_id, &mut b, b_id);
        assert!(
            matches!(changes.as_slice(), [Change::Applied { changed: true, .. }]),
            "{changes:?}"
        );
    }
}
