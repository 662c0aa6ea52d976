//! The node's writer: one thread that owns the stores and makes every write, so that the node's
//! actor never waits on a disk.
//!
//! ```text
//! actor ──Write──▶ writer thread ──Written──▶ actor
//!                  (ClipboardStore, DocumentStore)
//! ```
//!
//! Jobs run in the order they were sent. A write someone waits for — a local copy, a local
//! document edit — comes back as [`Written`], and the actor acknowledges it (or takes it back)
//! when it handles that; the rest (the register as peers changed it, peers' document updates) is
//! logged on failure, since a peer still has it. A register snapshot is skipped when a newer one
//! is already queued: a burst of peers' entries costs one write. Updates of one document queued
//! one behind the other — a burst of keystrokes from an editor, of a peer's edits — are stored
//! with one flush to the disk, and each local edit among them answered.
//!
//! A local document edit that cannot be stored is taken back by the actor, which replaces the
//! document with what is stored. Edits of that document made before the actor did so were made
//! on top of the failed one: stored after it, they would be on disk without what they build on.
//! So after a failure the writer refuses every local edit of that document until the actor says,
//! with [`Write::Resume`], that it has taken the failed edit back; edits made after that are
//! made on the stored document.

use std::{
    collections::{HashSet, VecDeque},
    io, thread,
};

use rrt_store::{ClipboardStore, ClipboardStoreError, DocumentStore, DocumentStoreError};
use rrt_sync::{Clipboard, EraUpdate, Staged};
use tokio::sync::{mpsc, oneshot};

use crate::wall_clock::wall_ms;

/// A write for the writer thread.
pub(crate) enum Write<C, E> {
    /// A local copy's register, which the copy waits for; `C` travels back with the result.
    Copy(Staged, C),
    /// The register as peers changed it.
    Clipboard(Clipboard),
    /// A local edit's update of a document, which the edit waits for.
    Edit {
        /// The document.
        name: String,
        /// The update.
        update: EraUpdate,
        /// Travels back with the result.
        waiting: E,
    },
    /// A peer's update of a document, applied here.
    PeerUpdate {
        /// The document.
        name: String,
        /// The update.
        update: EraUpdate,
    },
    /// A document's generations, whole (it moved to a new one, or a kept one changed), with
    /// the local updates made with the move — a new generation this node started, what it
    /// carried into one — which wait for it like edits.
    Lineage {
        /// The document.
        name: String,
        /// Its generations, as `Lineage::stored` gives them.
        eras: Vec<EraUpdate>,
        /// The local updates it holds, answered with the result.
        held: Vec<EraUpdate>,
    },
    /// A failed edit of this document was taken back: its local edits are stored again.
    Resume(String),
    /// Pins (or unpins) a clipboard entry for every daemon of the host; answered once stored.
    Pin {
        /// The entry.
        stamp: rrt_sync::Stamp,
        /// Pinned or not.
        pinned: bool,
        /// Told whether it is on disk.
        done: oneshot::Sender<Result<(), ClipboardStoreError>>,
    },
    /// Answered once everything sent before is written.
    Flush(oneshot::Sender<()>),
}

/// A write someone waits for, done.
pub(crate) enum Written<C, E> {
    /// A local copy's register.
    Copy(Staged, C, Result<(), ClipboardStoreError>),
    /// A local edit's update.
    Edit {
        /// The document.
        name: String,
        /// The update.
        update: EraUpdate,
        /// What was sent with it.
        waiting: E,
        /// Whether it is stored.
        result: Result<(), EditNotStored>,
    },
    /// A lineage's local updates.
    Lineage {
        /// The document.
        name: String,
        /// The local updates it held.
        held: Vec<EraUpdate>,
        /// Whether it is stored.
        result: Result<(), EditNotStored>,
    },
}

/// Why a local edit was not stored.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EditNotStored {
    /// The store failed. `stored` is the document as it is on disk (its generations, as
    /// `Lineage::stored` gives them), if that could be read.
    #[error("{error}")]
    Failed {
        /// Why.
        #[source]
        error: DocumentStoreError,
        /// The stored document.
        stored: Option<Vec<EraUpdate>>,
    },
    /// An earlier edit of the document failed, and this one was made on top of it.
    #[error("an earlier edit of this document could not be stored, and this one built on it")]
    EarlierFailed,
}

impl<C, E> Write<C, E> {
    /// The document an update is for.
    fn document(&self) -> Option<&str> {
        match self {
            Self::Edit { name, .. } | Self::PeerUpdate { name, .. } => Some(name),
            _ => None,
        }
    }
}

/// The thread's handle: where writes go.
pub(crate) type Writes<C, E> = mpsc::UnboundedSender<Write<C, E>>;
/// Where the writes someone waits for come back, done.
pub(crate) type Done<C, E> = mpsc::UnboundedReceiver<Written<C, E>>;

/// Starts the writer thread; it ends when every [`Writes`] is dropped.
pub(crate) fn spawn<C: Send + 'static, E: Send + 'static>(
    clipboard: ClipboardStore,
    documents: DocumentStore,
) -> io::Result<(Writes<C, E>, Done<C, E>)> {
    let (writes, jobs) = mpsc::unbounded_channel();
    let (done, written) = mpsc::unbounded_channel();
    let writer = Writer {
        clipboard,
        documents,
        failed: HashSet::new(),
        done,
    };
    thread::Builder::new()
        .name("rrt-writer".to_owned())
        .spawn(move || writer.run(jobs))?;
    Ok((writes, written))
}

struct Writer<C, E> {
    clipboard: ClipboardStore,
    documents: DocumentStore,
    /// Documents whose local edits are refused until [`Write::Resume`].
    failed: HashSet<String>,
    done: mpsc::UnboundedSender<Written<C, E>>,
}

impl<C, E> Writer<C, E> {
    fn run(mut self, mut jobs: mpsc::UnboundedReceiver<Write<C, E>>) {
        let mut queue = VecDeque::new();
        loop {
            if queue.is_empty() {
                match jobs.blocking_recv() {
                    Some(job) => queue.push_back(job),
                    None => return,
                }
            }
            while let Ok(job) = jobs.try_recv() {
                queue.push_back(job);
            }
            let Some(job) = queue.pop_front() else {
                continue;
            };
            if let Some(name) = job.document().map(str::to_owned) {
                // The updates of this document queued right behind it go to disk with it.
                let mut batch = vec![job];
                while queue.front().and_then(Write::document) == Some(name.as_str()) {
                    batch.extend(queue.pop_front());
                }
                self.store_updates(&name, batch);
                continue;
            }
            let superseded = matches!(job, Write::Clipboard(_))
                && queue
                    .iter()
                    .any(|later| matches!(later, Write::Clipboard(_)));
            if !superseded {
                self.write(job);
            }
        }
    }

    /// Stores updates of document `name` (local edits and peers' updates, in the order they
    /// came) with one flush to the disk, and answers each local edit: the first edit of a batch
    /// that failed gets the store's error, the edits after it were made on top of it.
    fn store_updates(&mut self, name: &str, batch: Vec<Write<C, E>>) {
        let refused = self.failed.contains(name);
        let storing: Vec<&EraUpdate> = batch
            .iter()
            .filter_map(|job| match job {
                Write::Edit { update, .. } if !refused => Some(update),
                Write::PeerUpdate { update, .. } => Some(update),
                _ => None,
            })
            .collect();
        // One append per run of updates of one generation (a move can fall inside a batch).
        let mut failure = None;
        for run in storing.chunk_by(|a, b| a.generation == b.generation) {
            let updates: Vec<&[u8]> = run.iter().map(|update| update.update.as_slice()).collect();
            if let Err(error) = self.documents.append_all(name, run[0].generation, &updates) {
                failure = Some(error);
                break;
            }
        }
        let mut answered_failure = false;
        for job in batch {
            let Write::Edit {
                name,
                update,
                waiting,
            } = job
            else {
                continue;
            };
            let result = match failure.take() {
                _ if refused || answered_failure => Err(EditNotStored::EarlierFailed),
                None => Ok(()),
                Some(error) => {
                    answered_failure = true;
                    self.failed.insert(name.clone());
                    Err(EditNotStored::Failed {
                        error,
                        stored: self.stored(&name),
                    })
                }
            };
            let _ = self.done.send(Written::Edit {
                name,
                update,
                waiting,
                result,
            });
        }
        if let Some(error) = failure {
            tracing::error!(%error, document = name, "could not store a peer's update");
        }
    }

    fn write(&mut self, job: Write<C, E>) {
        match job {
            Write::Copy(staged, waiting) => {
                let result = self.clipboard.save(staged.register(), wall_ms());
                let _ = self.done.send(Written::Copy(staged, waiting, result));
            }
            Write::Clipboard(snapshot) => {
                if let Err(error) = self.clipboard.save(&snapshot, wall_ms()) {
                    tracing::error!(%error, "could not store the clipboard");
                }
            }
            Write::Pin {
                stamp,
                pinned,
                done,
            } => {
                let _ = done.send(self.clipboard.set_pin(stamp, pinned));
            }
            Write::Edit { ref name, .. } | Write::PeerUpdate { ref name, .. } => {
                let name = name.clone();
                self.store_updates(&name, vec![job]);
            }
            Write::Lineage { name, eras, held } => {
                if held.is_empty() {
                    // Only peers' data: logged on failure, as a peer's update is.
                    if let Err(error) = self.documents.store_lineage(&name, eras) {
                        tracing::error!(%error, document = name, "could not store a document's generations");
                    }
                    return;
                }
                let result = if self.failed.contains(&name) {
                    Err(EditNotStored::EarlierFailed)
                } else {
                    self.documents.store_lineage(&name, eras).map_err(|error| {
                        self.failed.insert(name.clone());
                        EditNotStored::Failed {
                            error,
                            stored: self.stored(&name),
                        }
                    })
                };
                let _ = self.done.send(Written::Lineage { name, held, result });
            }
            Write::Resume(name) => {
                self.failed.remove(&name);
            }
            Write::Flush(done) => {
                let _ = done.send(());
            }
        }
    }

    /// The document as it is on disk (its generations), after an edit could not be stored.
    fn stored(&self, name: &str) -> Option<Vec<EraUpdate>> {
        self.documents
            .load(name, 0)
            .inspect_err(|reload| {
                tracing::error!(document = name, %reload, "could not read a document back after a failed edit");
            })
            .ok()
            .map(|lineage| lineage.stored())
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use rrt_sync::Document;

    use super::*;

    /// `update` as an update of generation 0.
    fn zero(update: Vec<u8>) -> EraUpdate {
        EraUpdate {
            generation: rrt_sync::Generation::default(),
            update,
            header: None,
        }
    }

    fn written(
        writes: &Writes<(), u8>,
        done: &mut Done<(), u8>,
        name: &str,
        tag: u8,
    ) -> Result<(), EditNotStored> {
        writes
            .send(Write::Edit {
                name: name.to_owned(),
                update: zero(Document::new(9).append("x")),
                waiting: tag,
            })
            .expect("the writer runs");
        match done.blocking_recv() {
            Some(Written::Edit {
                waiting, result, ..
            }) if waiting == tag => result,
            _ => panic!("the answer to edit {tag}"),
        }
    }

    #[test]
    fn after_a_failed_edit_later_ones_are_refused_until_it_is_taken_back() {
        let dir = std::env::temp_dir().join(format!("rrt-writer-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let documents = DocumentStore::open(&dir.join("documents")).expect("documents");
        let clipboard = ClipboardStore::open(&dir).expect("clipboard");
        let (writes, mut done) = spawn::<(), u8>(clipboard, documents).expect("writer");
        // A log that cannot be opened for appending.
        fs::create_dir_all(dir.join("documents").join("notes.log")).expect("blocked log");
        assert!(matches!(
            written(&writes, &mut done, "notes", 1),
            Err(EditNotStored::Failed { .. })
        ));
        fs::remove_dir(dir.join("documents").join("notes.log")).expect("unblocked");
        assert!(
            matches!(
                written(&writes, &mut done, "notes", 2),
                Err(EditNotStored::EarlierFailed)
            ),
            "made on top of the failed edit"
        );
        assert!(
            written(&writes, &mut done, "other", 3).is_ok(),
            "other documents go on"
        );
        writes
            .send(Write::Resume("notes".to_owned()))
            .expect("the writer runs");
        assert!(written(&writes, &mut done, "notes", 4).is_ok());
        fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn updates_queued_together_are_stored_together_and_fail_together() {
        let dir = std::env::temp_dir().join(format!("rrt-writer-batch-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let (done, mut answers) = mpsc::unbounded_channel();
        let mut writer = Writer::<(), u8> {
            clipboard: ClipboardStore::open(&dir).expect("clipboard"),
            documents: DocumentStore::open(&dir.join("documents")).expect("documents"),
            failed: HashSet::new(),
            done,
        };
        let author = Document::new(9);
        let edit = |text: &str, tag| Write::Edit {
            name: "notes".to_owned(),
            update: zero(author.append(text)),
            waiting: tag,
        };
        let peer = Document::new(8);
        let batch = vec![
            edit("a", 1),
            Write::PeerUpdate {
                name: "notes".to_owned(),
                update: zero(peer.append("P")),
            },
            edit("b", 2),
        ];
        writer.store_updates("notes", batch);
        for tag in [1, 2] {
            assert!(matches!(
                answers.try_recv(),
                Ok(Written::Edit { waiting, result: Ok(()), .. }) if waiting == tag
            ));
        }
        let stored = writer.documents.load("notes", 0).expect("stored");
        assert_eq!(
            stored.document().text().len(),
            3,
            "both edits and the peer's update"
        );

        // A log that cannot be appended to: the first edit gets the error, the next was made
        // on top of it.
        fs::create_dir_all(dir.join("documents").join("other.log")).expect("blocked log");
        let other = |tag| Write::Edit {
            name: "other".to_owned(),
            update: zero(author.append("x")),
            waiting: tag,
        };
        writer.store_updates("other", vec![other(3), other(4)]);
        assert!(matches!(
            answers.try_recv(),
            Ok(Written::Edit {
                waiting: 3,
                result: Err(EditNotStored::Failed { .. }),
                ..
            })
        ));
        assert!(matches!(
            answers.try_recv(),
            Ok(Written::Edit {
                waiting: 4,
                result: Err(EditNotStored::EarlierFailed),
                ..
            })
        ));
        fs::remove_dir_all(dir).expect("cleanup");
    }
}
