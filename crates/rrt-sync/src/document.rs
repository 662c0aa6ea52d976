//! Replicated documents: a text (a scratch area) and a key-value map (app state) in one yrs
//! document, which converges whatever order, duplication or delay its updates arrive in.
//!
//! Every local edit returns the yrs update that carries it, for the sync layer to send. Updates
//! from the network are untrusted: size-capped, decoded with typed errors, and applied with any
//! panic inside yrs caught (it has had panics on malformed input), so a bad update is reported
//! and dropped and never takes a thread down.
//!
//! Local edits by position do not walk the document as yrs' `Text::insert` would (its cost
//! grows with the whole history, deletions included): [`crate::positions`] knows the ids around
//! a position, the edit is written as the update yrs would have made, and integrated through
//! yrs' update path. The update returned is yrs' own encoding of what the transaction changed,
//! byte for byte what `Text::insert`/`remove_range` produce (a test holds them to it).

use std::{
    collections::BTreeMap,
    panic::{self, AssertUnwindSafe},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use yrs::{
    Any, Array, ArrayRef, ClientID, Doc, GetString, ID, IdSet, Map, MapRef, Observable, OffsetKind,
    Options, Out, ReadTxn, StateVector, Text, TextRef, Transact, TransactionMut, Update,
    block::BLOCK_ITEM_STRING_REF_NUMBER,
    encoding::write::Write,
    types::text::YChange,
    updates::{
        decoder::Decode,
        encoder::{Encode, Encoder, EncoderV1},
    },
};

use crate::{
    Cursor,
    positions::{Left, Neighbours, Positions},
};

/// The text's name in the yrs document.
const TEXT: &str = "text";
/// The name of the list of where carried characters came from (see [`crate::origins`]).
const ORIGINS: &str = "origins";

/// Flags of an encoded item (yrs' `block` module keeps its own private).
const HAS_ORIGIN: u8 = 0b1000_0000;
const HAS_RIGHT_ORIGIN: u8 = 0b0100_0000;

/// The bits of a replica number yrs keeps.
const CLIENT_ID_MASK: u64 = (1 << 53) - 1;

/// The id yrs gives the edits of `replica`.
pub(crate) fn writer_of(replica: u64) -> ClientID {
    ClientID::new(replica & CLIENT_ID_MASK)
}

/// The largest update accepted from the network, whole or reassembled from parts: it bounds the
/// memory one peer's update may take here (`DocSync` also holds a peer's unfinished parts to it).
/// An update sent whole is further limited by the frame size; larger ones travel in parts.
pub const MAX_UPDATE: usize = 32 * 1024 * 1024;

/// What [`Document::apply`] did with an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The text or map changed.
    Changed,
    /// Nothing visible changed, but the update brought content that waits for its causes.
    Held,
    /// Everything in it was here already: a duplicate. Forwarding stops at such updates, which
    /// is what ends a flood in a mesh with cycles.
    Known,
}

impl Applied {
    /// Whether the document's text or map changed.
    pub fn changed(self) -> bool {
        self == Self::Changed
    }
}

/// One piece of what an update did to the text, in order from the text's start (yrs' delta):
/// lengths in UTF-16 code units of the text before the update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextDelta {
    /// This many units stayed as they were.
    Retain(usize),
    /// This text was put here.
    Insert(String),
    /// This many units were deleted here.
    Delete(usize),
}

/// An update or version from the network that was refused; the document is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocError {
    /// Over [`MAX_UPDATE`]: an update, or the parts of split updates one peer has in assembly.
    #[error("an update of {len} bytes is over the limit of {max}")]
    TooLarge {
        /// Its size (for parts: what the peer's unfinished updates would have held).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not a valid yrs update or state vector.
    #[error("malformed update: {0}")]
    Malformed(String),
    /// yrs refused to integrate it.
    #[error("the update could not be applied: {0}")]
    Rejected(String),
    /// yrs panicked on it; the panic was caught.
    #[error("the CRDT library panicked on an update: {0}")]
    Panicked(String),
}

/// One replicated document.
pub struct Document {
    doc: Doc,
    text: TextRef,
    map: MapRef,
    /// Records of where characters carried into this generation came from, one buffer each.
    origins: ArrayRef,
    /// Where positions are, while it is known (see [`crate::positions`]).
    index: Mutex<Index>,
}

/// The state of a document's position index.
#[derive(Debug)]
enum Index {
    /// Up to date with the text.
    Current(Positions),
    /// The text changed in a way the index did not follow: rebuilt on the next local edit.
    Stale,
}

impl std::fmt::Debug for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Document")
            .field("replica", &self.doc.client_id())
            .field("text_len", &self.text().len())
            .finish_non_exhaustive()
    }
}

impl Document {
    /// An empty document edited by `replica` (a number unique to this writer: a CRDT tells
    /// writers apart by it). Only its low 53 bits count — yrs, like Yjs, keeps client ids within
    /// JavaScript's safe integers.
    pub fn new(replica: u64) -> Self {
        let mut options = Options::with_client_id(writer_of(replica));
        // Positions count UTF-16 code units, as in Yjs; O(1) to find, unlike UTF-8 bytes.
        options.offset_kind = OffsetKind::Utf16;
        let doc = Doc::with_options(options);
        let text = doc.get_or_insert_text(TEXT);
        let map = doc.get_or_insert_map("map");
        let origins = doc.get_or_insert_array(ORIGINS);
        Self {
            doc,
            text,
            map,
            origins,
            index: Mutex::new(Index::Current(Positions::empty())),
        }
    }

    /// A document restored from [`Document::snapshot`] bytes.
    pub fn from_snapshot(replica: u64, snapshot: &[u8]) -> Result<Self, DocError> {
        let document = Self::new(replica);
        document.apply(snapshot)?;
        Ok(document)
    }

    /// The text.
    pub fn text(&self) -> String {
        self.text.get_string(&self.doc.transact())
    }

    /// The text's length in UTF-16 code units (characters, for text without emoji and the
    /// like).
    pub fn len(&self) -> usize {
        self.text.len(&self.doc.transact()) as usize
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Inserts `chunk` at position `index` in UTF-16 code units (clamped to the end). Returns the
    /// update to send.
    pub fn insert(&self, index: usize, chunk: &str) -> Vec<u8> {
        let mut guard = self.index();
        let mut txn = self.doc.transact_mut();
        let index = index.min(self.text.len(&txn) as usize);
        let units = chunk.encode_utf16().count() as u32;
        let id = ID::new(
            self.doc.client_id(),
            txn.state_vector().get(&self.doc.client_id()),
        );
        match self.positions(&mut guard, &mut txn) {
            Some(positions) => match positions.neighbours(index) {
                Some(neighbours) if units > 0 => {
                    let update = insertion(id, neighbours, chunk);
                    if integrate(&mut txn, &update) {
                        let left = neighbours.origin.map_or(Left::Start, Left::After);
                        positions.inserted(index, id, units, left);
                    } else {
                        *guard = Index::Stale;
                    }
                }
                _ => {
                    self.text.insert(&mut txn, offset(index), chunk);
                    positions.inserted(index, id, units, Left::Unknown);
                }
            },
            None => self.text.insert(&mut txn, offset(index), chunk),
        }
        txn.encode_update_v1()
    }

    /// Deletes `length` UTF-16 code units from position `index` (clamped to the text). Returns
    /// the update to send.
    pub fn delete(&self, index: usize, length: usize) -> Vec<u8> {
        let mut guard = self.index();
        let mut txn = self.doc.transact_mut();
        let end = self.text.len(&txn) as usize;
        let start = index.min(end);
        let length = length.min(end - start);
        if length > 0 {
            match self.positions(&mut guard, &mut txn) {
                Some(positions) => {
                    let update = deletion(&positions.removed(start, length));
                    if !integrate(&mut txn, &update) {
                        *guard = Index::Stale;
                    }
                }
                None => self
                    .text
                    .remove_range(&mut txn, offset(start), offset(length)),
            }
        }
        txn.encode_update_v1()
    }

    /// Appends `chunk` to the text.
    pub fn append(&self, chunk: &str) -> Vec<u8> {
        self.insert(usize::MAX, chunk)
    }

    /// Makes the text `new` with the fewest edits it can see (keeping the common start and end),
    /// so concurrent edits elsewhere in the text merge instead of being overwritten.
    pub fn replace(&self, new: &str) -> Vec<u8> {
        self.replace_from(&self.text(), new)
    }

    /// Applies to the text the change that turns `base` (a text this document had, which an
    /// editor started from) into `new`: the region that differs between them is moved past what
    /// changed here since, so edits made elsewhere meanwhile survive. One update.
    pub fn replace_from(&self, base: &str, new: &str) -> Vec<u8> {
        let base_chars: Vec<char> = base.chars().collect();
        let new_chars: Vec<char> = new.chars().collect();
        let (prefix, suffix) = crate::changed_region(&base_chars, &new_chars);
        let units = |chars: &[char]| chars.iter().map(|c| c.len_utf16()).sum::<usize>();
        let at = units(&base_chars[..prefix]);
        let end = units(&base_chars[..base_chars.len() - suffix]);
        let inserted: String = new_chars[prefix..new_chars.len() - suffix].iter().collect();
        let current = self.text();
        // The range's characters, not text others put at its edges.
        let start = crate::rebase(base, &current, at, crate::Bias::After);
        let end = crate::rebase(base, &current, end, crate::Bias::Before).max(start);
        let mut guard = self.index();
        let mut txn = self.doc.transact_mut();
        if end > start {
            self.text
                .remove_range(&mut txn, offset(start), offset(end - start));
        }
        if !inserted.is_empty() {
            self.text.insert(&mut txn, offset(start), &inserted);
        }
        // A whole-text edit is rare: the index is rebuilt rather than taught it.
        *guard = Index::Stale;
        txn.encode_update_v1()
    }

    /// The value of `key` in the map.
    pub fn get(&self, key: &str) -> Option<String> {
        match self.map.get(&self.doc.transact(), key)? {
            Out::Any(value) => Some(value.to_string()),
            _ => None,
        }
    }

    /// Sets `key` to `value`. Returns the update to send.
    pub fn set(&self, key: &str, value: &str) -> Vec<u8> {
        let mut txn = self.doc.transact_mut();
        self.map.insert(&mut txn, key, value);
        txn.encode_update_v1()
    }

    /// Removes `key`. Returns the update to send.
    pub fn remove(&self, key: &str) -> Vec<u8> {
        let mut txn = self.doc.transact_mut();
        self.map.remove(&mut txn, key);
        txn.encode_update_v1()
    }

    /// The whole map.
    pub fn entries(&self) -> BTreeMap<String, String> {
        let txn = self.doc.transact();
        self.map
            .iter(&txn)
            .filter_map(|(key, value)| match value {
                Out::Any(value) => Some((key.to_owned(), value.to_string())),
                _ => None,
            })
            .collect()
    }

    /// Adds an origin record (an encoded [`crate::origins::Record`]). Returns the update to send.
    pub(crate) fn record_origins(&self, record: Vec<u8>) -> Vec<u8> {
        let mut txn = self.doc.transact_mut();
        self.origins
            .push_back(&mut txn, Any::Buffer(Arc::from(record)));
        txn.encode_update_v1()
    }

    /// The origin records, encoded as written (by any replica: untrusted).
    pub(crate) fn origin_records(&self) -> Vec<Arc<[u8]>> {
        let txn = self.doc.transact();
        self.origins
            .iter(&txn)
            .filter_map(|value| match value {
                Out::Any(Any::Buffer(record)) => Some(record),
                _ => None,
            })
            .collect()
    }

    /// The clock this replica's next edit starts at: the id the first character it inserts
    /// next gets is `(writer, clock)`.
    pub(crate) fn next_clock(&self) -> u32 {
        self.doc
            .transact()
            .state_vector()
            .get(&self.doc.client_id())
    }

    /// This replica's version: what it has seen of every writer.
    pub fn state_vector(&self) -> Vec<u8> {
        self.doc.transact().state_vector().encode_v1()
    }

    /// The id this replica's edits get (its replica number as yrs keeps it).
    pub(crate) fn writer(&self) -> ClientID {
        self.doc.client_id()
    }

    /// The ids of the text's characters and of everything deleted: all of the text a replica
    /// has seen, by id (unlike its version, which stops at a gap in a writer's clocks and does
    /// not show deletions).
    pub(crate) fn seen(&self) -> IdSet {
        let mut seen = self.doc.transact().snapshot().delete_set;
        for (_, id) in self.characters() {
            seen.insert(id, 1);
        }
        seen
    }

    /// The text, character by character, each with the id yrs gave it (writer and clock): who
    /// wrote what, for a replica that carries only its own writing into a new generation.
    pub(crate) fn characters(&self) -> Vec<(char, ID)> {
        let mut txn = self.doc.transact_mut();
        let snapshot = txn.snapshot();
        // Every clock of every writer, gaps or not, as `Positions::rebuilt` does.
        let everything: StateVector = snapshot
            .state_map
            .iter()
            .map(|(client, _)| (*client, u32::MAX))
            .collect();
        let now = yrs::Snapshot::new(everything, snapshot.delete_set);
        let nothing = yrs::Snapshot::new(StateVector::default(), IdSet::new());
        let mut characters = Vec::new();
        for chunk in self
            .text
            .diff_range(&mut txn, Some(&now), Some(&nothing), YChange::identity)
        {
            if let (Out::Any(yrs::Any::String(text)), Some(change)) = (&chunk.insert, chunk.ychange)
            {
                let mut clock = change.id.clock;
                for c in text.chars() {
                    characters.push((c, ID::new(change.id.client, clock)));
                    clock += c.len_utf16() as u32;
                }
            }
        }
        characters
    }

    /// Everything this replica has that a replica at `remote_version` lacks.
    pub fn diff(&self, remote_version: &[u8]) -> Result<Vec<u8>, DocError> {
        check_size(remote_version)?;
        let version = catch(|| StateVector::decode_v1(remote_version))?
            .map_err(|error| DocError::Malformed(error.to_string()))?;
        Ok(self.doc.transact().encode_diff_v1(&version))
    }

    /// The whole document, as one update.
    pub fn snapshot(&self) -> Vec<u8> {
        self.doc.transact().encode_diff_v1(&StateVector::default())
    }

    /// Whether content waits here for its causes (see [`Applied::Held`]). Held content is in no
    /// [`Document::diff`] until it is released.
    pub fn holds(&self) -> bool {
        let txn = self.doc.transact();
        let store = txn.store();
        store.pending_update().is_some() || store.pending_ds().is_some()
    }

    /// Integrates an update from elsewhere (untrusted) and says what it brought. Applying one
    /// twice, or out of order, is harmless: yrs keeps what it cannot integrate yet until its
    /// dependencies arrive (and reports the change then).
    pub fn apply(&self, update: &[u8]) -> Result<Applied, DocError> {
        check_size(update)?;
        let decoded = catch(|| Update::decode_v1(update))?
            .map_err(|error| DocError::Malformed(error.to_string()))?;
        let mut guard = self.index();
        let applied = catch(|| {
            let mut txn = self.doc.transact_mut();
            let held_before = held(&txn);
            txn.apply_update(decoded)?;
            Ok(
                if !txn.insert_set().is_empty() || !txn.delete_set().is_empty() {
                    Applied::Changed
                } else if held(&txn) != held_before {
                    Applied::Held
                } else {
                    Applied::Known
                },
            )
        })?
        .map_err(|error: yrs::error::UpdateError| DocError::Rejected(error.to_string()));
        // Whatever integrated (a panic may have left part of it) went where the index cannot
        // tell.
        if !matches!(applied, Ok(Applied::Known | Applied::Held)) {
            *guard = Index::Stale;
        }
        applied
    }

    /// The presence [`Cursor`] of position `index` (UTF-16 code units): the character there,
    /// by id; `None` at the end of the text.
    pub fn cursor_at(&self, index: usize) -> Option<Cursor> {
        let txn = self.doc.transact();
        let index = u32::try_from(index).ok()?;
        let sticky =
            yrs::IndexedSequence::sticky_index(&self.text, &txn, index, yrs::Assoc::After)?;
        sticky.id().map(|id| Cursor {
            client: id.client.get(),
            clock: id.clock,
        })
    }

    /// Where `cursor` (from [`Document::cursor_at`], here or on another replica) is now, in
    /// UTF-16 code units; `None` when this replica does not have its character (yet).
    pub fn position_of(&self, cursor: Option<Cursor>) -> Option<usize> {
        let txn = self.doc.transact();
        let Some(cursor) = cursor else {
            return Some(self.text.len(&txn) as usize);
        };
        let id = ID::new(ClientID::new(cursor.client & CLIENT_ID_MASK), cursor.clock);
        // A character this replica has not seen is not found; yrs does not panic on it, but
        // the id is a peer's, so a panic would be caught like any.
        catch(|| {
            yrs::StickyIndex::from_id(id, yrs::Assoc::After)
                .get_offset(&txn)
                .map(|offset| offset.index as usize)
        })
        .ok()
        .flatten()
    }

    /// [`Document::apply`], also saying exactly what changed in the text — for a replica that
    /// shows the text and must move positions (a cursor, undo steps) through remote changes,
    /// where comparing the text before and after is ambiguous (text that repeats). Finding the
    /// delta walks the text, so only such replicas ask for it.
    pub fn apply_observed(&self, update: &[u8]) -> Result<(Applied, Vec<TextDelta>), DocError> {
        const OBSERVER: &str = "rrt-apply-observed";
        let deltas = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&deltas);
        self.text.observe(OBSERVER, move |txn, event| {
            let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
            seen.extend(event.delta(txn).iter().filter_map(|delta| match delta {
                yrs::types::Delta::Retain(units, _) => Some(TextDelta::Retain(*units as usize)),
                yrs::types::Delta::Deleted(units) => Some(TextDelta::Delete(*units as usize)),
                yrs::types::Delta::Inserted(Out::Any(yrs::Any::String(text)), _) => {
                    Some(TextDelta::Insert(text.to_string()))
                }
                // Only strings are ever put in the text.
                yrs::types::Delta::Inserted(..) => None,
            }));
        });
        let applied = self.apply(update);
        self.text.unobserve(OBSERVER);
        let deltas = std::mem::take(&mut *deltas.lock().unwrap_or_else(PoisonError::into_inner));
        applied.map(|applied| (applied, deltas))
    }

    fn index(&self) -> MutexGuard<'_, Index> {
        // The index is only ever left stale, never half-updated, by a panic.
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The position index, rebuilt if stale; `None` while content is held for its causes (an
    /// update integrated for a local edit would release it, changing the text behind the
    /// index's back).
    fn positions<'a>(
        &self,
        index: &'a mut Index,
        txn: &mut TransactionMut<'_>,
    ) -> Option<&'a mut Positions> {
        let store = txn.store();
        if store.pending_update().is_some() || store.pending_ds().is_some() {
            *index = Index::Stale;
            return None;
        }
        if let Index::Stale = index {
            let rebuilt = Positions::rebuilt(&self.text, txn);
            // Shorter than the text only if a peer put something other than strings in it (yrs'
            // diff gives an embed no id): an index that does not cover the whole text would put
            // edits in the wrong place, so this edit takes yrs' own walk.
            if rebuilt.len() != self.text.len(txn) as usize {
                return None;
            }
            *index = Index::Current(rebuilt);
        }
        match index {
            Index::Current(positions) => {
                debug_assert_eq!(positions.len(), self.text.len(txn) as usize);
                Some(positions)
            }
            Index::Stale => None,
        }
    }
}

/// The yrs update (v1) that inserts `chunk` with the first id `id` between `neighbours`.
fn insertion(id: ID, neighbours: Neighbours, chunk: &str) -> Vec<u8> {
    let mut encoder = EncoderV1::new();
    encoder.write_var(1u32); // writers
    encoder.write_var(1u32); // blocks of this writer
    encoder.write_client(id.client);
    encoder.write_var(id.clock);
    let mut info = BLOCK_ITEM_STRING_REF_NUMBER;
    if neighbours.origin.is_some() {
        info |= HAS_ORIGIN;
    }
    if neighbours.right_origin.is_some() {
        info |= HAS_RIGHT_ORIGIN;
    }
    encoder.write_info(info);
    if let Some(origin) = &neighbours.origin {
        encoder.write_left_id(origin);
    }
    if let Some(right_origin) = &neighbours.right_origin {
        encoder.write_right_id(right_origin);
    }
    if neighbours.origin.is_none() && neighbours.right_origin.is_none() {
        // Without neighbours the item names its parent: the root type.
        encoder.write_parent_info(true);
        encoder.write_string(TEXT);
    }
    encoder.write_string(chunk);
    IdSet::new().encode(&mut encoder);
    encoder.to_vec()
}

/// The yrs update (v1) that deletes the ranges `(first id, length)`.
fn deletion(ranges: &[(ID, u32)]) -> Vec<u8> {
    let mut deleted = IdSet::new();
    for (id, len) in ranges {
        deleted.insert(*id, *len);
    }
    let mut encoder = EncoderV1::new();
    encoder.write_var(0u32); // no blocks
    deleted.encode(&mut encoder);
    encoder.to_vec()
}

/// Integrates an update made here; `false` if yrs refused it (the index no longer matches it).
fn integrate(txn: &mut TransactionMut<'_>, update: &[u8]) -> bool {
    Update::decode_v1(update)
        .ok()
        .is_some_and(|update| txn.apply_update(update).is_ok())
}

/// What is held back for missing causes: the ids of the pending blocks (not their state vector,
/// which says only the highest clock per replica: an update that adds blocks *below* it — a
/// peer's earlier edit arriving after its later one — would look like nothing new and not be
/// forwarded, and a peer that needs it could wait for it forever; not their encoding either,
/// which a peer holding megabytes pending would make every later update pay for), the versions
/// they wait for, and the pending deletions. Empty, and free, in the usual case of nothing held.
fn held(txn: &impl ReadTxn) -> (Option<(yrs::IdSet, StateVector)>, Option<yrs::IdSet>) {
    let store = txn.store();
    let pending = store
        .pending_update()
        .map(|pending| (pending.update.insertions(true), pending.missing.clone()));
    (pending, store.pending_ds().cloned())
}

fn offset(bytes: usize) -> u32 {
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// One update holding everything `updates` hold (a burst of an editor's keystrokes, stored and
/// sent as one). Untrusted like any update: the result is capped at [`MAX_UPDATE`] and a
/// malformed one refused.
pub fn merge_updates(updates: &[Vec<u8>]) -> Result<Vec<u8>, DocError> {
    check_size(&updates.concat())?;
    let merged = catch(|| yrs::merge_updates_v1(updates))?
        .map_err(|error| DocError::Malformed(error.to_string()))?;
    check_size(&merged)?;
    Ok(merged)
}

fn check_size(bytes: &[u8]) -> Result<(), DocError> {
    if bytes.len() > MAX_UPDATE {
        return Err(DocError::TooLarge {
            len: bytes.len(),
            max: MAX_UPDATE,
        });
    }
    Ok(())
}

fn catch<T>(work: impl FnOnce() -> T) -> Result<T, DocError> {
    panic::catch_unwind(AssertUnwindSafe(work)).map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-string panic".to_owned());
        DocError::Panicked(message)
    })
}

#[cfg(test)]
mod replica_tests {
    use super::*;

    #[test]
    fn a_cursor_stays_on_its_character_on_every_replica() {
        let alice = Document::new(1);
        let bob = Document::new(2);
        bob.apply(&alice.append("hello world")).expect("applied");
        let before_w = alice.cursor_at(6);
        assert_eq!(bob.position_of(before_w), Some(6));
        alice.apply(&bob.insert(0, ">> ")).expect("applied");
        assert_eq!(
            alice.position_of(before_w),
            Some(9),
            "moved with its character"
        );
        assert_eq!(
            alice.cursor_at(alice.len()),
            None,
            "the end names no character"
        );
        assert_eq!(bob.position_of(None), Some(bob.len()));
        let stranger = Some(Cursor {
            client: 3,
            clock: 0,
        });
        assert_eq!(
            bob.position_of(stranger),
            None,
            "a character bob has not seen"
        );
    }

    #[test]
    fn merged_updates_bring_what_each_brought_and_bad_ones_are_refused() {
        let editor = Document::new(1);
        let updates: Vec<Vec<u8>> = "typed"
            .chars()
            .map(|c| editor.append(&c.to_string()))
            .collect();
        let merged = merge_updates(&updates).expect("merged");
        assert!(
            merged.len() < updates.concat().len(),
            "smaller than the parts"
        );
        let daemon = Document::new(2);
        daemon.apply(&merged).expect("applied");
        assert_eq!(daemon.text(), "typed");
        assert!(matches!(
            merge_updates(&[updates[0].clone(), vec![0xff, 0xff, 0xff]]),
            Err(DocError::Malformed(_))
        ));
    }
}

#[cfg(test)]
mod tests {
    use proptest::{collection::vec, prelude::*};
    use yrs::{Snapshot, types::text::YChange};

    use super::*;

    /// An edit a replica can make.
    #[derive(Debug, Clone)]
    enum Edit {
        Insert(usize, String),
        Replace(String),
        Set(String, String),
        Remove(String),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        prop_oneof![
            (0usize..40, "[a-zé😀 ]{0,6}").prop_map(|(i, s)| Edit::Insert(i, s)),
            "[a-z😀 ]{0,12}".prop_map(Edit::Replace),
            ("[a-c]", "[0-9]{1,3}").prop_map(|(k, v)| Edit::Set(k, v)),
            "[a-c]".prop_map(Edit::Remove),
        ]
    }

    /// A replica's edits, as the updates they produced.
    fn updates(replica: u64, edits: &[Edit]) -> Vec<Vec<u8>> {
        let document = Document::new(replica);
        edits
            .iter()
            .map(|edit| match edit {
                Edit::Insert(i, s) => document.insert(*i, s),
                Edit::Replace(s) => document.replace(s),
                Edit::Set(k, v) => document.set(k, v),
                Edit::Remove(k) => document.remove(k),
            })
            .collect()
    }

    fn state(updates: &[&[Vec<u8>]]) -> (String, BTreeMap<String, String>) {
        let document = Document::new(99);
        for update in updates.iter().flat_map(|batch| batch.iter()) {
            document.apply(update).expect("valid update");
        }
        (document.text(), document.entries())
    }

    proptest! {
        #[test]
        fn merging_is_commutative_associative_and_idempotent(
            a in vec(edit(), 0..8),
            b in vec(edit(), 0..8),
            c in vec(edit(), 0..8),
        ) {
            let (a, b, c) = (updates(1, &a), updates(2, &b), updates(3, &c));
            let abc = state(&[&a, &b, &c]);
            prop_assert_eq!(&abc, &state(&[&c, &b, &a]));
            prop_assert_eq!(&abc, &state(&[&b, &a, &c]));
            prop_assert_eq!(&abc, &state(&[&a, &b, &c, &a, &b]), "applying twice changes nothing");
            // Each replica's own updates reversed: yrs holds them until their causes arrive.
            let reversed: Vec<Vec<u8>> = a.iter().rev().cloned().collect();
            prop_assert_eq!(&abc, &state(&[&reversed, &b, &c]));
        }

        #[test]
        fn a_snapshot_loads_back_to_the_same_document(edits in vec(edit(), 0..12)) {
            let document = Document::new(1);
            for update in updates(1, &edits) {
                document.apply(&update).expect("valid");
            }
            let restored = Document::from_snapshot(2, &document.snapshot()).expect("snapshot");
            prop_assert_eq!(restored.text(), document.text());
            prop_assert_eq!(restored.entries(), document.entries());
            prop_assert_eq!(restored.state_vector(), document.state_vector());
        }

        #[test]
        fn arbitrary_bytes_are_refused_without_a_panic(bytes in vec(any::<u8>(), 0..256)) {
            let document = Document::new(1);
            document.append("kept");
            let _ = document.apply(&bytes);
            let _ = document.diff(&bytes);
            prop_assert_eq!(document.text(), "kept");
        }

        #[test]
        fn corrupted_updates_never_panic_through(flip in 0usize..64, to in any::<u8>()) {
            let source = Document::new(1);
            let mut update = source.append("some text to corrupt");
            let at = flip % update.len();
            update[at] = to;
            let target = Document::new(2);
            let _ = target.apply(&update);
        }
    }

    /// A step of two replicas editing and syncing now and then.
    #[derive(Debug, Clone)]
    enum Step {
        Insert(usize, usize, String),
        Delete(usize, usize, usize),
        Replace(usize, String),
        Set(usize, String),
        /// Replica `.0` catches up with the other.
        Sync(usize),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => (0usize..2, 0usize..30, "[a-z😀]{1,3}").prop_map(|(r, i, s)| Step::Insert(r, i, s)),
            3 => (0usize..2, 0usize..30, 1usize..4).prop_map(|(r, i, n)| Step::Delete(r, i, n)),
            1 => (0usize..2, "[a-z]{0,8}").prop_map(|(r, s)| Step::Replace(r, s)),
            1 => (0usize..2, "[0-9]").prop_map(|(r, v)| Step::Set(r, v)),
            2 => (0usize..2).prop_map(Step::Sync),
        ]
    }

    /// The same document edited through yrs' own `Text` calls: what `Document` must match.
    struct Reference {
        doc: Doc,
        text: TextRef,
    }

    impl Reference {
        fn new(replica: u64) -> Self {
            let mut options = Options::with_client_id(ClientID::new(replica));
            options.offset_kind = OffsetKind::Utf16;
            let doc = Doc::with_options(options);
            let text = doc.get_or_insert_text(TEXT);
            doc.get_or_insert_map("map");
            Self { doc, text }
        }

        fn insert(&self, index: usize, chunk: &str) -> Vec<u8> {
            let mut txn = self.doc.transact_mut();
            let index = index.min(self.text.len(&txn) as usize);
            self.text.insert(&mut txn, offset(index), chunk);
            txn.encode_update_v1()
        }

        fn delete(&self, index: usize, length: usize) -> Vec<u8> {
            let mut txn = self.doc.transact_mut();
            let end = self.text.len(&txn) as usize;
            let start = index.min(end);
            let length = length.min(end - start);
            if length > 0 {
                self.text
                    .remove_range(&mut txn, offset(start), offset(length));
            }
            txn.encode_update_v1()
        }

        fn apply(&self, update: &[u8]) {
            let update = Update::decode_v1(update).expect("valid");
            self.doc
                .transact_mut()
                .apply_update(update)
                .expect("applies");
        }
    }

    fn same_updates_as_yrs(steps: Vec<Step>) -> Result<(), TestCaseError> {
        let replicas = [Document::new(1), Document::new(2)];
        let reference = [Reference::new(1), Reference::new(2)];
        for step in steps {
            match step {
                Step::Insert(r, i, s) => {
                    prop_assert_eq!(replicas[r].insert(i, &s), reference[r].insert(i, &s));
                }
                Step::Delete(r, i, n) => {
                    prop_assert_eq!(replicas[r].delete(i, n), reference[r].delete(i, n));
                }
                Step::Replace(r, s) => reference[r].apply(&replicas[r].replace(&s)),
                Step::Set(r, v) => reference[r].apply(&replicas[r].set("k", &v)),
                Step::Sync(r) => {
                    let other = &replicas[1 - r];
                    let diff = other.diff(&replicas[r].state_vector()).expect("diff");
                    replicas[r].apply(&diff).expect("valid");
                    reference[r].apply(&diff);
                }
            }
            for r in 0..2 {
                let txn = reference[r].doc.transact();
                prop_assert_eq!(replicas[r].text(), reference[r].text.get_string(&txn));
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn local_edits_make_the_very_updates_yrs_walk_would(steps in vec(step(), 1..60)) {
            same_updates_as_yrs(steps)?;
        }
    }

    proptest! {
        // Long enough for the index to split into many chunks, with syncs in between.
        #![proptest_config(ProptestConfig::with_cases(4))]
        #[test]
        fn long_edit_sessions_make_the_very_updates_yrs_walk_would(
            steps in vec(step(), 3000..4000),
        ) {
            same_updates_as_yrs(steps)?;
        }
    }

    /// A step of three writers whose updates travel one by one, in any order, some lost, some
    /// twice: what makes yrs integrate a writer's text over a gap in its clocks.
    #[derive(Debug, Clone)]
    enum MeshStep {
        Insert(usize, usize, String),
        Delete(usize, usize, usize),
        Replace(usize, String),
        Set(usize, String),
        /// Replica `to` gets one update made by another (`from`: 1 or 2 replicas further on,
        /// `nth`: which of its updates, modulo how many there are).
        Deliver {
            to: usize,
            from: usize,
            nth: usize,
        },
        /// Replica `.0` catches up with the one `.1` further on.
        Sync(usize, usize),
    }

    const WRITERS: usize = 3;

    fn mesh_step() -> impl Strategy<Value = MeshStep> {
        let replica = 0..WRITERS;
        prop_oneof![
            6 => (replica.clone(), 0usize..40, "[a-z😀]{1,3}")
                .prop_map(|(r, i, s)| MeshStep::Insert(r, i, s)),
            3 => (replica.clone(), 0usize..40, 1usize..5)
                .prop_map(|(r, i, n)| MeshStep::Delete(r, i, n)),
            1 => (replica.clone(), "[a-z]{0,8}").prop_map(|(r, s)| MeshStep::Replace(r, s)),
            2 => (replica.clone(), "[0-9]").prop_map(|(r, v)| MeshStep::Set(r, v)),
            8 => (replica.clone(), 1usize..WRITERS, any::<usize>())
                .prop_map(|(to, from, nth)| MeshStep::Deliver { to, from, nth }),
            1 => (replica, 1usize..WRITERS).prop_map(|(r, from)| MeshStep::Sync(r, from)),
        ]
    }

    /// The visible length the rebuild saw before the fix: a diff against yrs' own snapshot, whose
    /// state vector stops at a writer's first gap.
    fn seen_by_yrs_snapshot(document: &Document) -> usize {
        let mut txn = document.doc.transact_mut();
        let now = txn.snapshot();
        let nothing = Snapshot::new(StateVector::default(), IdSet::new());
        document
            .text
            .diff_range(&mut txn, Some(&now), Some(&nothing), YChange::identity)
            .iter()
            .map(|chunk| match &chunk.insert {
                Out::Any(yrs::Any::String(text)) => text.encode_utf16().count(),
                _ => 1,
            })
            .sum()
    }

    /// Three writers editing and exchanging updates out of order: every local edit must be the
    /// update yrs' walk makes, and the index rebuilt after any remote update must cover the whole
    /// text. Returns how many times the text had content past a gap in a writer's clocks.
    fn same_updates_as_yrs_with_many_writers(steps: Vec<MeshStep>) -> Result<usize, TestCaseError> {
        let replicas: Vec<Document> = (1..=WRITERS as u64).map(Document::new).collect();
        let reference: Vec<Reference> = (1..=WRITERS as u64).map(Reference::new).collect();
        let mut sent: Vec<Vec<Vec<u8>>> = vec![Vec::new(); WRITERS];
        let mut gaps = 0;
        for step in steps {
            match step {
                MeshStep::Insert(r, i, s) => {
                    let update = replicas[r].insert(i, &s);
                    prop_assert_eq!(&update, &reference[r].insert(i, &s));
                    sent[r].push(update);
                }
                MeshStep::Delete(r, i, n) => {
                    let update = replicas[r].delete(i, n);
                    prop_assert_eq!(&update, &reference[r].delete(i, n));
                    sent[r].push(update);
                }
                MeshStep::Replace(r, s) => {
                    let update = replicas[r].replace(&s);
                    reference[r].apply(&update);
                    sent[r].push(update);
                }
                MeshStep::Set(r, v) => {
                    let update = replicas[r].set("k", &v);
                    reference[r].apply(&update);
                    sent[r].push(update);
                }
                MeshStep::Deliver { to, from, nth } => {
                    let from = (to + from) % WRITERS;
                    if let Some(update) = sent[from].get(nth % sent[from].len().max(1)) {
                        replicas[to].apply(update).expect("valid");
                        reference[to].apply(update);
                    }
                }
                MeshStep::Sync(to, from) => {
                    let other = &replicas[(to + from) % WRITERS];
                    let diff = other.diff(&replicas[to].state_vector()).expect("diff");
                    replicas[to].apply(&diff).expect("valid");
                    reference[to].apply(&diff);
                }
            }
            for (replica, reference) in replicas.iter().zip(&reference) {
                let txn = reference.doc.transact();
                prop_assert_eq!(replica.text(), reference.text.get_string(&txn));
                drop(txn);
                if !replica.holds() {
                    let rebuilt =
                        Positions::rebuilt(&replica.text, &mut replica.doc.transact_mut());
                    prop_assert_eq!(
                        rebuilt.len(),
                        replica.len(),
                        "the rebuilt index covers the text"
                    );
                    if seen_by_yrs_snapshot(replica) < replica.len() {
                        gaps += 1;
                    }
                }
            }
        }
        Ok(gaps)
    }

    #[test]
    fn many_writers_exchanging_updates_out_of_order_make_the_very_updates_yrs_walk_would() {
        use proptest::test_runner::{Config, TestRunner};
        let gaps = std::cell::Cell::new(0);
        let mut runner = TestRunner::new(Config::with_cases(256));
        let result = runner.run(&vec(mesh_step(), 1..120), |steps| {
            gaps.set(gaps.get() + same_updates_as_yrs_with_many_writers(steps)?);
            Ok(())
        });
        if let Err(error) = result {
            panic!("{error}");
        }
        // The case that made the index short must have come up, or this tests nothing new.
        assert!(gaps.get() > 0, "no text past a gap in a writer's clocks");
    }

    /// What made the rebuilt index shorter than the text (tests/document_sim.rs): an update that
    /// arrives before an earlier one of the same writer, and does not depend on it, is integrated
    /// over a gap in that writer's clocks (a yrs *skip*). yrs' own snapshot stops at the gap, so
    /// the diff against it leaves out the writer's text past it — text and id together; no chunk
    /// comes without an id.
    #[test]
    fn a_writer_s_text_past_a_gap_in_its_clocks_is_in_the_rebuilt_index() {
        let (a, b, c) = (Document::new(1), Document::new(2), Document::new(3));
        let reference = Reference::new(3);
        let first = a.append("one");
        b.apply(&first).expect("valid");
        let lost = a.set("k", "v"); // writer 1's clock 3, lost on the way to `c`
        let later = a.append(" two"); // clocks 4..8, after "one": depends on `first` only
        let concurrent = b.insert(0, "zero ");
        for update in [&first, &concurrent, &later] {
            c.apply(update).expect("valid");
            reference.apply(update);
        }
        assert!(!c.holds(), "integrated, nothing held");
        assert_eq!(c.text(), "zero one two");
        {
            let mut txn = c.doc.transact_mut();
            let now = txn.snapshot();
            assert_eq!(
                now.state_map.get(&ClientID::new(1)),
                3,
                "yrs' state stops at the gap"
            );
            let nothing = Snapshot::new(StateVector::default(), IdSet::new());
            let chunks = c
                .text
                .diff_range(&mut txn, Some(&now), Some(&nothing), YChange::identity);
            assert!(chunks.iter().all(|chunk| chunk.ychange.is_some()));
            let seen: String = chunks
                .iter()
                .map(|chunk| chunk.insert.clone().to_string(&txn))
                .collect();
            assert_eq!(seen, "zero one", "\" two\" is left out");
            let rebuilt = Positions::rebuilt(&c.text, &mut txn);
            assert_eq!(rebuilt.len(), 12);
            assert_eq!(
                rebuilt.neighbours(10),
                Some(Neighbours {
                    origin: Some(ID::new(ClientID::new(1), 5)),
                    right_origin: Some(ID::new(ClientID::new(1), 6)),
                })
            );
        }
        // An edit inside the text past the gap goes through the index, and is yrs' own update.
        assert_eq!(c.insert(10, "X"), reference.insert(10, "X"));
        assert_eq!(c.delete(9, 2), reference.delete(9, 2));
        assert_eq!(c.text(), "zero one wo");
        c.apply(&lost).expect("valid");
        assert_eq!(c.get("k").as_deref(), Some("v"));
    }

    #[test]
    fn the_diff_carries_only_what_the_other_side_lacks() {
        let here = Document::new(1);
        let there = Document::new(2);
        there.apply(&here.append("shared ")).expect("valid");
        here.append("only here");
        let diff = here.diff(&there.state_vector()).expect("valid version");
        assert!(diff.len() < here.snapshot().len());
        there.apply(&diff).expect("valid");
        assert_eq!(there.text(), "shared only here");
    }

    #[test]
    fn replacing_keeps_a_concurrent_edit_elsewhere() {
        let here = Document::new(1);
        let there = Document::new(2);
        there
            .apply(&here.append("alpha beta gamma"))
            .expect("valid");
        let mine = here.replace("alpha BETA gamma");
        let theirs = there.append(" delta");
        here.apply(&theirs).expect("valid");
        there.apply(&mine).expect("valid");
        assert_eq!(here.text(), "alpha BETA gamma delta");
        assert_eq!(there.text(), here.text());
    }

    #[test]
    fn an_edit_made_from_an_older_text_keeps_what_changed_since() {
        let document = Document::new(1);
        document.append("first line\n");
        let base = document.text();
        // Someone else appends while an editor is open on `base`.
        document.append("added meanwhile\n");
        document.replace_from(&base, "FIRST line\n");
        assert_eq!(document.text(), "FIRST line\nadded meanwhile\n");
        // A plain replace would have dropped it.
        let plain = Document::new(2);
        plain.append("first line\nadded meanwhile\n");
        plain.replace("FIRST line\n");
        assert_eq!(plain.text(), "FIRST line\n");
    }

    #[test]
    fn apply_reports_only_real_changes() {
        let source = Document::new(1);
        let first = source.append("one ");
        let second = source.append("two");
        let deletion = source.delete(0, 4);
        let target = Document::new(2);
        assert_eq!(
            target.apply(&second),
            Ok(Applied::Held),
            "waits for its cause"
        );
        assert_eq!(target.apply(&second), Ok(Applied::Known), "held already");
        assert_eq!(
            target.apply(&first),
            Ok(Applied::Changed),
            "both integrate now"
        );
        assert_eq!(target.apply(&first), Ok(Applied::Known), "a duplicate");
        assert_eq!(target.apply(&deletion), Ok(Applied::Changed));
        assert_eq!(
            target.apply(&deletion),
            Ok(Applied::Known),
            "deleted already"
        );
        assert_eq!(target.text(), "two");
    }

    #[test]
    fn an_earlier_edit_arriving_after_a_later_one_is_held_too_not_a_duplicate() {
        let source = Document::new(1);
        let first = source.append("one ");
        let second = source.append("two ");
        let third = source.append("three");
        let target = Document::new(2);
        assert_eq!(target.apply(&third), Ok(Applied::Held));
        // Below what is held, and still missing `first`: new content, which a peer forwarding
        // it must not take for a duplicate (found by the simulator, seed 732).
        assert_eq!(target.apply(&second), Ok(Applied::Held));
        assert_eq!(target.apply(&first), Ok(Applied::Changed));
        assert_eq!(target.text(), "one two three");
    }

    #[test]
    fn an_oversize_update_is_refused() {
        let document = Document::new(1);
        assert!(matches!(
            document.apply(&vec![0; MAX_UPDATE + 1]),
            Err(DocError::TooLarge { .. })
        ));
    }

    #[test]
    fn any_replica_number_is_accepted() {
        let document = Document::new(u64::MAX);
        document.append("fits in 53 bits");
        assert_eq!(document.text(), "fits in 53 bits");
    }

    #[test]
    fn map_values_set_get_and_remove() {
        let document = Document::new(1);
        document.set("theme", "dark");
        assert_eq!(document.get("theme").as_deref(), Some("dark"));
        document.remove("theme");
        assert_eq!(document.get("theme"), None);
    }
}
