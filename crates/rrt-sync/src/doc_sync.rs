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
//! Each document is a [`Lineage`]: generations of it, so that one edited for months stays small
//! ([`crate::generation`]'s docs). Generation 0 travels exactly as before generations existed —
//! an update or a version in an operation's `update` or `state_vector` — so a peer that does not
//! know them ([`DocPeer::Legacy`]) keeps syncing a document that never started another. Anything
//! else (a later generation's updates, versions of several generations, whole generations with
//! their headers) is a [`LineageMessage`] in the operation's `lineage` field, which such a peer
//! ignores: a document past generation 0 is neither sent to it nor taken from it.
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
//! cycle. A newly started generation is forwarded by each replica that moves onto it; what a
//! replica carries into a new generation is its own local edit, sent once it is stored.
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
    collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque},
    time::{Duration, Instant},
};

use uuid::Uuid;

use crate::{
    doc_message::{CrdtOperation, DocMessage, Part},
    document::{Applied, DocError, Document, MAX_UPDATE},
    generation::Lineage,
    generation_message::{EraUpdate, Generation, LineageMessage, Version, Versions},
    outgoing::{Arrival, Neighbour, Neighbours, Outgoing},
};

/// The `hello` capability of a peer that knows documents' generations ([`DocPeer::Generations`]).
pub const DOC_GENERATIONS: &str = "doc_generations";
/// The most version requests held while local edits are being stored: a peer asks once per
/// link and document, so this is only reached by one that asks again and again.
const MAX_DEFERRED: usize = 4096;
/// The most parts one update may be declared to have.
const MAX_PARTS: u32 = 4096;
/// The most split updates one peer may have unfinished (refused ones included until it goes
/// down). An honest sender sends an update's parts one after another, so it has one.
const MAX_UNFINISHED: usize = 16;

/// What a peer knows of documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocPeer {
    /// It knows generations (its `hello` lists [`DOC_GENERATIONS`]).
    Generations,
    /// It knows generation 0 only: a document past it is neither sent to it nor taken from it.
    Legacy,
}

/// What a peer's message did.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// `update` was applied to `generation` of `document` (the current one): store it (it may
    /// hold content waiting for its causes), and tell watchers if it `changed` the document.
    Applied {
        /// The document.
        document: String,
        /// Which of its generations.
        generation: Generation,
        /// The update, as applied.
        update: Vec<u8>,
        /// Whether the text or map changed (false for a duplicate or a not-yet-integrable
        /// update).
        changed: bool,
    },
    /// The document's generations changed otherwise: it moved to a newer one, or a kept one
    /// took a peer's update. Store its lineage whole ([`DocSync::lineage`]), then hand each of
    /// `carried` to [`DocSync::saved`] (or, if the store failed, to [`DocSync::revert_local`]).
    Lineage {
        /// The document.
        document: String,
        /// Whether the text or map changed (a move counts).
        changed: bool,
        /// What this replica carried into the new generation: its own edits, sent once stored.
        carried: Vec<EraUpdate>,
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

/// What an operation's bytes are: a yrs update of generation 0, or an encoded lineage message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Payload {
    Update,
    Lineage,
}

/// The split updates one peer has in assembly, by (document, batch, payload).
#[derive(Debug, Default)]
struct Inbound {
    updates: HashMap<(String, u64, Payload), Assembly>,
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
    documents: BTreeMap<String, Lineage>,
    window: Duration,
    chunk: usize,
    neighbours: Neighbours,
    /// The up peers that know generations.
    knowing: HashSet<Uuid>,
    /// Local updates not stored yet, per document: not sent, not even in a diff.
    unsaved: BTreeMap<String, Vec<EraUpdate>>,
    /// Versions peers sent while the document had unsaved edits: (peer, document, versions),
    /// answered once they are stored.
    deferred: Vec<(Uuid, String, Versions)>,
    /// Local updates not yet broadcast, per document.
    batch: BTreeMap<String, Vec<EraUpdate>>,
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
            knowing: HashSet::new(),
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
    pub fn insert(&mut self, name: String, lineage: Lineage) {
        self.documents.insert(name, lineage);
    }

    /// A document's current generation, if this replica has the document.
    pub fn document(&self, name: &str) -> Option<&Document> {
        self.documents.get(name).map(Lineage::document)
    }

    /// A document's generations, if this replica has the document: what a store writes.
    pub fn lineage(&self, name: &str) -> Option<&Lineage> {
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
    pub fn edit(&mut self, name: &str, change: impl FnOnce(&Document) -> Vec<u8>) -> EraUpdate {
        let update = lineage_of(&mut self.documents, self.replica, name).edit(change);
        self.hold_unsaved(name, update.clone());
        update
    }

    /// Starts a new generation of `name` if its current one is outgrown
    /// ([`Lineage::outgrown`]: its deletions outweigh its text): the batched edits go out first,
    /// then the new generation is held like a local edit — the driver stores the lineage whole
    /// ([`DocSync::lineage`]) and hands the returned update to [`DocSync::saved`] (or
    /// [`DocSync::revert_local`]). `None` when the document is not outgrown, or has unsaved
    /// edits (it is asked again later). Ask now and then after local edits — it encodes the
    /// document — never on a peer's update, which would let a peer make this replica start one.
    pub fn renew(&mut self, name: &str) -> Option<EraUpdate> {
        if self.unsaved.contains_key(name) || !self.documents.get(name)?.outgrown() {
            return None;
        }
        if let Some(batched) = self.batch.remove(name) {
            self.broadcast_batch(name, batched);
        }
        let started = self.documents.get_mut(name)?.start();
        let LineageMessage::Updates(mut whole) = started else {
            return None;
        };
        let whole = whole.pop()?;
        self.hold_unsaved(name, whole.clone());
        Some(whole)
    }

    /// Whether local edits of `name` wait to be stored (a new generation waits for them).
    pub fn has_unsaved(&self, name: &str) -> bool {
        self.unsaved.contains_key(name)
    }

    fn hold_unsaved(&mut self, name: &str, update: EraUpdate) {
        self.unsaved
            .entry(name.to_owned())
            .or_default()
            .push(update);
    }

    /// The local edit that produced `update` is stored: batched for broadcast within the window.
    pub fn saved(&mut self, name: &str, update: EraUpdate, now: Instant) {
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
            .map(|update| update.update.len())
            .sum();
        if batched + update.update.len() > MAX_UPDATE
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
    pub fn revert_local(&mut self, name: &str, update: &EraUpdate, stored: Option<Lineage>) {
        let Some(stored) = stored else {
            return;
        };
        let versions = LineageMessage::Versions(stored.versions());
        self.documents.insert(name.to_owned(), stored);
        self.take_unsaved(name, update);
        self.broadcast(name, versions, None);
    }

    /// A local edit that was not stored, and whose content a [`DocSync::revert_local`] already
    /// took back: it is forgotten.
    pub fn refused(&mut self, name: &str, update: &EraUpdate) {
        self.take_unsaved(name, update);
    }

    /// Removes `update` from the edits of `name` not stored yet; whether it was one. Versions
    /// peers asked for while edits were unsaved are answered once none is left.
    fn take_unsaved(&mut self, name: &str, update: &EraUpdate) -> bool {
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
            for (from, document, versions) in ready {
                let mut changes = Vec::new();
                self.versions_in(from, &document, versions, &mut changes);
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
    /// of every document it can sync (it answers with diffs).
    pub fn peer_up(&mut self, peer: Uuid, neighbour: Neighbour, knows: DocPeer) {
        self.neighbours.up(peer, neighbour);
        if knows == DocPeer::Generations {
            self.knowing.insert(peer);
        } else {
            self.knowing.remove(&peer);
        }
        let mut sent = BTreeSet::new();
        let mut operations = Vec::new();
        let mut lineages = Vec::new();
        for (name, lineage) in &self.documents {
            match plain(&LineageMessage::Versions(lineage.versions())) {
                Some(plain) => operations.extend(plain.into_iter().map(|op| op.named(name))),
                None if knows == DocPeer::Generations => {
                    lineages.push((name.clone(), LineageMessage::Versions(lineage.versions())));
                }
                None => continue,
            }
            sent.insert(name.clone());
        }
        self.versions_sent.insert(peer, sent);
        if !operations.is_empty() {
            self.outgoing
                .push_back(Outgoing::To(peer, delta(operations)));
        }
        for (name, message) in lineages {
            self.send_to(peer, &name, message);
        }
    }

    /// A peer went down: its unfinished split updates will never be finished.
    pub fn peer_down(&mut self, peer: Uuid) {
        self.neighbours.down(peer);
        self.knowing.remove(&peer);
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
        for mut operation in operations {
            let name = std::mem::take(&mut operation.document);
            if !crate::valid_name(&name) {
                changes.push(Change::Rejected {
                    from,
                    document: name,
                    error: DocError::Malformed("not a document name".to_owned()),
                });
                continue;
            }
            if !operation.state_vector.is_empty() {
                let versions = Versions(vec![Version {
                    generation: Generation::default(),
                    state_vector: std::mem::take(&mut operation.state_vector),
                }]);
                self.versions_in(from, &name, versions, &mut changes);
            }
            let (payload, bytes) = if !operation.lineage.is_empty() {
                (Payload::Lineage, std::mem::take(&mut operation.lineage))
            } else if !operation.update.is_empty() {
                (Payload::Update, std::mem::take(&mut operation.update))
            } else {
                continue;
            };
            let bytes = match self.assemble(from, &name, payload, bytes, operation.part) {
                Ok(Some(bytes)) => bytes,
                Ok(None) => continue,
                Err(error) => {
                    changes.push(Change::Rejected {
                        from,
                        document: name,
                        error,
                    });
                    continue;
                }
            };
            let message = match payload {
                Payload::Update => LineageMessage::Updates(vec![EraUpdate {
                    generation: Generation::default(),
                    update: bytes,
                    header: None,
                }]),
                Payload::Lineage => match LineageMessage::decode(&bytes) {
                    Ok(message) => message,
                    Err(error) => {
                        changes.push(Change::Rejected {
                            from,
                            document: name,
                            error,
                        });
                        continue;
                    }
                },
            };
            match message {
                LineageMessage::Versions(versions) => {
                    self.versions_in(from, &name, versions, &mut changes)
                }
                LineageMessage::Updates(updates) => {
                    self.updates_in(from, &name, updates, arrival, &mut changes)
                }
                message @ LineageMessage::Lineage(_) => {
                    self.lineage_in(from, &name, message, arrival, &mut changes)
                }
            }
        }
        changes
    }

    /// A peer's versions of `name`: answered with what it lacks — diffs of the generations both
    /// hold, or our generations whole if it is behind — and with ours if it has not had them.
    fn versions_in(
        &mut self,
        from: Uuid,
        name: &str,
        versions: Versions,
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
                Some(at) => self.deferred[at].2 = versions,
                None if self.deferred.len() < MAX_DEFERRED => {
                    self.deferred.push((from, name.to_owned(), versions));
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
        let lineage = lineage_of(&mut self.documents, self.replica, name);
        let ours = ask.then(|| LineageMessage::Versions(lineage.versions()));
        match lineage.receive(LineageMessage::Versions(versions)) {
            Ok(received) => {
                if let Some(reply) = received.reply {
                    self.send_to(from, name, reply);
                }
            }
            Err(error) => changes.push(Change::Rejected {
                from,
                document: name.to_owned(),
                error,
            }),
        }
        if let Some(ours) = ours {
            self.send_to(from, name, ours);
        }
    }

    /// A peer's updates of `name`: those of our current generation are applied and forwarded;
    /// those of a kept one merged into it; a newer generation is moved to (or its sender asked
    /// for what to carry ours forward from); an older one is answered with our generations, so
    /// its author moves and carries it.
    fn updates_in(
        &mut self,
        from: Uuid,
        name: &str,
        updates: Vec<EraUpdate>,
        arrival: Arrival,
        changes: &mut Vec<Change>,
    ) {
        let lineage = lineage_of(&mut self.documents, self.replica, name);
        let current = lineage.generation();
        let Some(newest) = updates.iter().map(|update| update.generation).max() else {
            return;
        };
        if newest != current {
            let message = LineageMessage::Updates(updates);
            return self.lineage_in(from, name, message, arrival, changes);
        }
        let mut kept_changed = false;
        for update in updates {
            if update.generation == current {
                self.apply_current(from, name, update, arrival, changes);
                continue;
            }
            // A generation we keep (one we no longer keep, or never had: nothing to do).
            let Some(kept) = self
                .documents
                .get(name)
                .and_then(|lineage| lineage.of(update.generation))
            else {
                continue;
            };
            match kept.apply(&update.update) {
                Ok(applied) => kept_changed |= applied != Applied::Known,
                Err(error) => changes.push(Change::Rejected {
                    from,
                    document: name.to_owned(),
                    error,
                }),
            }
        }
        if kept_changed {
            changes.push(Change::Lineage {
                document: name.to_owned(),
                changed: false,
                carried: Vec::new(),
            });
        }
    }

    /// An update of `name`'s current generation: applied, and forwarded if it brought something.
    fn apply_current(
        &mut self,
        from: Uuid,
        name: &str,
        update: EraUpdate,
        arrival: Arrival,
        changes: &mut Vec<Change>,
    ) {
        let Some(target) = self.documents.get(name).map(Lineage::document) else {
            return;
        };
        // Held content is in no diff: a peer that came up while it was held was not sent it,
        // and forwarding only this update would not send it either once it is released. So
        // when this update releases held content, what it released goes on too.
        let released_from = target.holds().then(|| target.state_vector());
        match target.apply(&update.update) {
            Ok(applied) => {
                let released = (applied == Applied::Changed)
                    .then_some(released_from)
                    .flatten()
                    .and_then(|before| target.diff(&before).ok());
                let generation = update.generation;
                if applied != Applied::Known {
                    self.forward(name, generation, &update.update, from, arrival);
                }
                if let Some(released) = released {
                    self.forward(name, generation, &released, from, arrival);
                }
                changes.push(Change::Applied {
                    document: name.to_owned(),
                    generation,
                    update: update.update,
                    changed: applied.changed(),
                });
            }
            Err(error) => changes.push(Change::Rejected {
                from,
                document: name.to_owned(),
                error,
            }),
        }
    }

    /// A message about other generations than our current one: the lineage decides. A newly
    /// started generation we moved onto goes on to the other peers.
    fn lineage_in(
        &mut self,
        from: Uuid,
        name: &str,
        message: LineageMessage,
        arrival: Arrival,
        changes: &mut Vec<Change>,
    ) {
        let lineage = lineage_of(&mut self.documents, self.replica, name);
        let started = match &message {
            LineageMessage::Updates(updates) => Some(message.clone()).filter(|_| {
                updates
                    .iter()
                    .any(|update| update.generation > lineage.generation())
            }),
            _ => None,
        };
        let received = match lineage.receive(message) {
            Ok(received) => received,
            Err(error) => {
                changes.push(Change::Rejected {
                    from,
                    document: name.to_owned(),
                    error,
                });
                return;
            }
        };
        if let Some(reply) = received.reply {
            self.send_to(from, name, reply);
        }
        if received.moved
            && let Some(started) = started
        {
            let operations = self.operations(name, &started, DocPeer::Generations);
            for operation in operations {
                self.outgoing.extend(self.neighbours.forward(
                    from,
                    arrival,
                    delta(vec![operation]),
                ));
            }
        }
        if received.moved || received.changed {
            for carried in &received.carried {
                self.hold_unsaved(name, carried.clone());
            }
            changes.push(Change::Lineage {
                document: name.to_owned(),
                changed: received.changed,
                carried: received.carried,
            });
        }
    }

    /// The whole update or lineage message once every part of it is in; parts may come in any
    /// order, twice. `Ok(None)` while parts are missing (or for a part of an update already
    /// refused).
    fn assemble(
        &mut self,
        from: Uuid,
        name: &str,
        payload: Payload,
        bytes: Vec<u8>,
        part: Option<Part>,
    ) -> Result<Option<Vec<u8>>, DocError> {
        let Some(part) = part else {
            return Ok(Some(bytes));
        };
        if part.count == 0 || part.index >= part.count || part.count > MAX_PARTS {
            return Err(DocError::Malformed(format!(
                "part {} of {} (at most {MAX_PARTS} parts)",
                part.index, part.count
            )));
        }
        let inbound = self.assembling.entry(from).or_default();
        let key = (name.to_owned(), part.batch, payload);
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
        let held = inbound.held - replaced + bytes.len();
        if held > MAX_UPDATE {
            let dropped: usize = parts.values().map(Vec::len).sum();
            inbound.held -= dropped;
            *assembly = Assembly::Refused;
            return Err(DocError::TooLarge {
                len: held,
                max: MAX_UPDATE,
            });
        }
        parts.insert(part.index, bytes);
        inbound.held = held;
        if parts.len() < *count as usize {
            return Ok(None);
        }
        // Every index below `count` is in: the map holds them in order.
        let whole: Vec<u8> = std::mem::take(parts).into_values().flatten().collect();
        inbound.held -= whole.len();
        inbound.updates.remove(&key);
        Ok(Some(whole))
    }

    /// Queues a peer's update of `name` for the peers that need it.
    fn forward(
        &mut self,
        name: &str,
        generation: Generation,
        update: &[u8],
        from: Uuid,
        arrival: Arrival,
    ) {
        let message = LineageMessage::Updates(vec![EraUpdate {
            generation,
            update: update.to_vec(),
            header: None,
        }]);
        for operation in self.operations(name, &message, DocPeer::Generations) {
            self.outgoing.extend(
                self.neighbours
                    .forward(from, arrival, delta(vec![operation])),
            );
        }
    }

    /// Queues `message` about `name` for `peer`, if it can read it.
    fn send_to(&mut self, peer: Uuid, name: &str, message: LineageMessage) {
        let knows = if self.knowing.contains(&peer) {
            DocPeer::Generations
        } else {
            DocPeer::Legacy
        };
        for operation in self.operations(name, &message, knows) {
            self.outgoing
                .push_back(Outgoing::To(peer, delta(vec![operation])));
        }
    }

    /// Queues `message` about `name` for every peer but `except`. A peer that does not know
    /// generations ignores what it cannot read.
    fn broadcast(&mut self, name: &str, message: LineageMessage, except: Option<Uuid>) {
        for operation in self.operations(name, &message, DocPeer::Generations) {
            self.outgoing.push_back(Outgoing::Broadcast {
                message: delta(vec![operation]),
                except,
            });
        }
    }

    /// `message` as operations, each within the chunk size: as generation 0's own operations
    /// when it is only that, else encoded in `lineage` — none if `knows` cannot read that.
    fn operations(
        &mut self,
        name: &str,
        message: &LineageMessage,
        knows: DocPeer,
    ) -> Vec<CrdtOperation> {
        if let Some(plain) = plain(message) {
            return plain
                .into_iter()
                .flat_map(|operation| {
                    if operation.update.is_empty() {
                        vec![operation.named(name)]
                    } else {
                        self.split(name, Payload::Update, &operation.update)
                    }
                })
                .collect();
        }
        if knows == DocPeer::Legacy {
            return Vec::new();
        }
        let mut encoded = message.encode();
        // A receiver refuses more than MAX_UPDATE: a peer behind gets the current generation
        // alone then (it carries what it wrote by the text, as one further behind does).
        if encoded.len() > MAX_UPDATE
            && let LineageMessage::Lineage(eras) = message
            && let Some(current) = eras.first()
        {
            encoded = LineageMessage::Lineage(vec![current.clone()]).encode();
        }
        self.split(name, Payload::Lineage, &encoded)
    }

    /// `bytes` as one or more operations, each within the chunk size.
    fn split(&mut self, name: &str, payload: Payload, bytes: &[u8]) -> Vec<CrdtOperation> {
        let operation = |bytes: Vec<u8>, part| {
            let (update, lineage) = match payload {
                Payload::Update => (bytes, Vec::new()),
                Payload::Lineage => (Vec::new(), bytes),
            };
            CrdtOperation {
                document: name.to_owned(),
                update,
                state_vector: Vec::new(),
                lineage,
                part,
            }
        };
        if bytes.len() <= self.chunk {
            return vec![operation(bytes.to_vec(), None)];
        }
        self.next_batch += 1;
        let batch = self.next_batch;
        let count = bytes.len().div_ceil(self.chunk) as u32;
        bytes
            .chunks(self.chunk)
            .enumerate()
            .map(|(index, bytes)| {
                let part = Part {
                    batch,
                    index: index as u32,
                    count,
                };
                operation(bytes.to_vec(), Some(part))
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

    /// Queues a document's batched local updates for every peer, merged into one. A new
    /// generation goes whole, with its header; edits of a generation this replica has left are
    /// not sent (what it wrote there, it carried).
    fn broadcast_batch(&mut self, name: &str, updates: Vec<EraUpdate>) {
        let Some(current) = self.documents.get(name).map(Lineage::generation) else {
            return;
        };
        let (wholes, edits): (Vec<EraUpdate>, Vec<EraUpdate>) = updates
            .into_iter()
            .filter(|update| update.generation == current)
            .partition(|update| update.header.is_some());
        for whole in wholes {
            self.broadcast(name, LineageMessage::Updates(vec![whole]), None);
        }
        let edits: Vec<Vec<u8>> = edits.into_iter().map(|edit| edit.update).collect();
        let edits = match yrs::merge_updates_v1(&edits) {
            Ok(merged) => vec![merged],
            Err(error) => {
                tracing::error!(%error, "could not merge local updates; sending them one by one");
                edits
            }
        };
        for update in edits.into_iter().filter(|update| !update.is_empty()) {
            let message = LineageMessage::Updates(vec![EraUpdate {
                generation: current,
                update,
                header: None,
            }]);
            self.broadcast(name, message, None);
        }
    }

    /// The next message to send.
    pub fn poll_outgoing(&mut self) -> Option<Outgoing<DocMessage>> {
        self.outgoing.pop_front()
    }
}

/// `message` as generation 0's own operations (unnamed), if it is only that: one version of
/// generation 0, or updates of it without a header.
fn plain(message: &LineageMessage) -> Option<Vec<CrdtOperation>> {
    let zero = Generation::default();
    match message {
        LineageMessage::Versions(Versions(versions)) => match versions.as_slice() {
            [version] if version.generation == zero => Some(vec![CrdtOperation {
                state_vector: version.state_vector.clone(),
                ..CrdtOperation::default()
            }]),
            _ => None,
        },
        LineageMessage::Updates(updates) => updates
            .iter()
            .map(|update| {
                (update.generation == zero && update.header.is_none()).then(|| CrdtOperation {
                    update: update.update.clone(),
                    ..CrdtOperation::default()
                })
            })
            .collect(),
        LineageMessage::Lineage(_) => None,
    }
}

/// Document `name`'s lineage, created empty (generation 0, edited by `replica`) if new.
fn lineage_of<'a>(
    documents: &'a mut BTreeMap<String, Lineage>,
    replica: u64,
    name: &str,
) -> &'a mut Lineage {
    documents
        .entry(name.to_owned())
        .or_insert_with(|| Lineage::new(replica))
}

fn delta(crdt_ops: Vec<CrdtOperation>) -> DocMessage {
    DocMessage::delta(crdt_ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_millis(25);

    /// An operation carrying a generation-0 update of `name`.
    fn operation(name: &str, update: Vec<u8>, part: Option<Part>) -> CrdtOperation {
        CrdtOperation {
            document: name.to_owned(),
            update,
            part,
            ..CrdtOperation::default()
        }
    }

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
        a.peer_up(b_id, Neighbour::Other, DocPeer::Generations);
        b.peer_up(a_id, Neighbour::Other, DocPeer::Generations);
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
        b.peer_up(a_id, Neighbour::Other, DocPeer::Generations);
        b.peer_up(c_id, Neighbour::Other, DocPeer::Generations);
        a.peer_up(b_id, Neighbour::Other, DocPeer::Generations);
        c.peer_up(b_id, Neighbour::Other, DocPeer::Generations);
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
        a.peer_up(b_id, Neighbour::Other, DocPeer::Generations);
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
                replica.peer_up(*peer, Neighbour::Other, DocPeer::Generations);
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
        here.peer_up(a_id, Neighbour::Other, DocPeer::Generations);
        here.peer_up(b_id, Neighbour::Other, DocPeer::Generations);
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
        hub.peer_up(a_id, Neighbour::Other, DocPeer::Generations);
        hub.peer_up(b_id, Neighbour::Other, DocPeer::Generations);
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
        a.revert_local("notes", &refused, Some(Lineage::with_document(1, on_disk)));
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
        a.peer_up(b_id, Neighbour::Other, DocPeer::Generations);
        b.peer_up(a_id, Neighbour::Other, DocPeer::Generations);
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
        a.peer_up(b_id, Neighbour::Other, DocPeer::Generations);
        b.peer_up(a_id, Neighbour::Other, DocPeer::Generations);
        settle(&mut a, a_id, &mut b, b_id);
        a.revert_local("notes", &refused, Some(Lineage::with_document(1, on_disk)));
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
        a.peer_up(b_id, Neighbour::Other, DocPeer::Generations);
        b.peer_up(a_id, Neighbour::Other, DocPeer::Generations);
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
        here.peer_up(origin_id, Neighbour::Other, DocPeer::Generations);
        // `second` waits for `first`: held, and forwarded to nobody (no other peer is up).
        here.handle(origin_id, delta(vec![operation("notes", second, None)]));
        // A peer comes up meanwhile: the catch-up diff cannot carry what is held.
        here.peer_up(later_id, Neighbour::Other, DocPeer::Generations);
        later.peer_up(here_id, Neighbour::Other, DocPeer::Generations);
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
                    state_vector: version.clone(),
                    ..CrdtOperation::default()
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
        a.revert_local("notes", &failed, Some(Lineage::new(1)));
        a.refused("notes", &later);
        saved_edit(&mut a, "notes", now, |d| d.append("after"));
        a.peer_up(b_id, Neighbour::Other, DocPeer::Generations);
        b.peer_up(a_id, Neighbour::Other, DocPeer::Generations);
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
