//! What a simulated node has "on disk": all that survives its crash.
//!
//! It follows the daemon's stores, in memory:
//! - the clipboard store merges every save into what it holds (`ClipboardStore::save` merges
//!   with the file under a lock), so a late background write of an older snapshot never undoes a
//!   newer save; a load restores the clock and the entries as `ClipboardStore::load_into` does;
//! - a document is a snapshot plus a log of updates (`DocumentStore`): every update the node's
//!   writer stores — its own edits before they are acknowledged, peers' updates after they
//!   applied — is appended, and the log is folded now and then into a snapshot of what is
//!   stored (never of the live document, which may hold edits not stored yet, and perhaps
//!   never). A load replays the log over the snapshot, so content held for missing causes
//!   survives, as it does on a real disk.
//!
//! Writes reach it only through the node's writer (`simulator/writer.rs`).

use std::collections::BTreeMap;

use rrt_sync::{Clipboard, Document};
use uuid::Uuid;

/// Log bytes after which a document's log is folded into its snapshot; small, so compaction
/// happens in every run (the daemon's is 1 MiB).
const COMPACT_AFTER_BYTES: usize = 2048;

/// A node's durable state.
#[derive(Debug)]
pub(crate) struct Disk {
    clipboard: Clipboard,
    documents: BTreeMap<String, StoredDocument>,
}

#[derive(Debug, Default)]
struct StoredDocument {
    snapshot: Vec<u8>,
    log: Vec<Vec<u8>>,
    log_bytes: usize,
}

impl Disk {
    /// An empty disk keeping `history` clipboard entries.
    pub(crate) fn new(history: usize) -> Self {
        Self {
            // The stored register's own origin never stamps anything.
            clipboard: Clipboard::new(Uuid::nil(), history),
            documents: BTreeMap::new(),
        }
    }

    /// Saves `register` merged with what is stored, at wall-clock `now_ms`.
    pub(crate) fn save_clipboard(&mut self, register: &Clipboard, now_ms: u64) {
        merge_into(&mut self.clipboard, register, now_ms);
    }

    /// The stored clipboard as a register stamping as `origin` (the instance's new id).
    pub(crate) fn load_clipboard(&self, origin: Uuid, history: usize, now_ms: u64) -> Clipboard {
        let mut register = Clipboard::new(origin, history);
        merge_into(&mut register, &self.clipboard, now_ms);
        register
    }

    /// Appends `update` of document `name`; folds the log into the snapshot when it grows long,
    /// as `DocumentStore::append` does.
    pub(crate) fn append_update(&mut self, name: &str, update: &[u8]) {
        let stored = self.documents.entry(name.to_owned()).or_default();
        stored.log.push(update.to_vec());
        stored.log_bytes += update.len();
        if stored.log_bytes > COMPACT_AFTER_BYTES {
            stored.snapshot = stored.load(0).snapshot();
            stored.log.clear();
            stored.log_bytes = 0;
        }
    }

    /// The snapshot of document `name` as stored (empty if it is not), as the writer reads it
    /// back after a failed edit.
    pub(crate) fn stored_snapshot(&self, name: &str) -> Vec<u8> {
        self.documents
            .get(name)
            .map_or_else(|| Document::new(0), |stored| stored.load(0))
            .snapshot()
    }

    /// Every stored document, edited from now on by `replica`.
    pub(crate) fn load_documents(&self, replica: u64) -> Vec<(String, Document)> {
        self.documents
            .iter()
            .map(|(name, stored)| (name.clone(), stored.load(replica)))
            .collect()
    }
}

impl StoredDocument {
    /// The log replayed over the snapshot, edited by `replica`.
    fn load(&self, replica: u64) -> Document {
        let document = Document::new(replica);
        for update in std::iter::once(&self.snapshot).chain(&self.log) {
            if !update.is_empty() {
                document
                    .apply(update)
                    .expect("an update this node applied before applies again");
            }
        }
        document
    }
}

/// `source`'s clock and entries merged into `target`, as the clipboard store merges a file.
fn merge_into(target: &mut Clipboard, source: &Clipboard, now_ms: u64) {
    target.restore_clock(source.clock(), now_ms);
    for entry in source.history() {
        if !target.contains(&entry.stamp) && target.would_keep(&entry.stamp) {
            let restamped = target.restore(entry.clone(), now_ms);
            // Clocks here are skewed far less than the bound: a re-stamp would be a clock bug.
            assert!(!restamped, "a stored entry was re-stamped: {entry:?}");
        }
    }
}
