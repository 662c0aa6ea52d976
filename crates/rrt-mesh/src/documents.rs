//! The node's replicated documents: scratch areas (texts) and app state (the map of the
//! document [`STATE`]), kept in sync with every peer by [`DocSync`] and on disk by
//! [`DocumentStore`].
//!
//! A local edit is applied at once and acknowledged once the writer thread has its update in the
//! fsynced log; until then it goes to no peer (`DocSync` holds it). A peer's update is logged
//! when applied. This module checks local edits, loads what is stored, and turns `DocSync`'s
//! messages into network commands; the rules of sync (what goes to whom, what is forwarded) are
//! `DocSync`'s.
//!
//! Generations (`rrt_sync::Lineage`): after every [`RENEW_EDITS`] local edits of a document, or
//! [`RENEW_BYTES`] of their updates, it is asked whether it has outgrown its generation — never
//! on a peer's update, so no peer can make this node start one. A new generation, and a move to
//! one a peer started, store the document's generations whole; what the node started or carried
//! waits for that store like a local edit.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use rrt_reactor::Rrt;
use rrt_store::{DocumentStore, DocumentStoreError};
use rrt_sync::{
    Arrival, Change, DOC_GENERATIONS, DocError, DocMessage, DocPeer, DocSync, Document, EraUpdate,
    Generation, Lineage, MAX_UPDATE, Neighbour, valid_name,
};
use uuid::Uuid;

use crate::{
    network::{NetCommand, NetworkWorker},
    node::{Edit, Since},
    writer::EditNotStored,
};

/// The document whose map holds the app state (`rrt state …`).
pub const STATE: &str = "state";
/// Local edits within this window go out as one message.
const BATCH_WINDOW: Duration = Duration::from_millis(20);
/// The most text one local edit may add: its update carries the text plus a few dozen bytes of
/// ids and lengths, and must stay under [`MAX_UPDATE`], or every peer would refuse it while this
/// node kept it — an edit acknowledged here and silently never shared.
pub const MAX_LOCAL_EDIT: usize = MAX_UPDATE - 64 * 1024;
/// Updates above this are sent in parts (base64 in JSON must stay under the frame limit).
const CHUNK: usize = 1024 * 1024;
/// A document is asked whether it has outgrown its generation after this many local edits …
pub(crate) const RENEW_EDITS: usize = 1000;
/// … or this many bytes of local updates, whichever comes first (asking encodes the document).
pub(crate) const RENEW_BYTES: usize = 256 * 1024;

/// Why an edit failed. The document is as it was before the edit, here and on every peer.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The name cannot be a document's.
    #[error("{0:?} is not a document name (1–64 letters, digits, '.', '_' or '-')")]
    BadName(String),
    /// The edit adds more than one update may carry: every peer would refuse it, so it is
    /// refused here, before anything changes.
    #[error(
        "an edit adding {len} bytes is over the limit of {max} bytes that peers accept in one update; split it"
    )]
    TooLarge {
        /// What the edit adds.
        len: usize,
        /// [`MAX_LOCAL_EDIT`].
        max: usize,
    },
    /// The store failed; the edit was not acknowledged, and is taken back.
    #[error("the edit could not be stored, and was taken back: {0}")]
    Store(#[from] DocumentStoreError),
    /// An earlier edit of the document could not be stored, and this one, made on top of it, is
    /// taken back with it.
    #[error(
        "an earlier edit of this document could not be stored; this one, made on top of it, was taken back too"
    )]
    AfterFailedEdit,
    /// An update or version from a replica outside the node (the TUI's) was refused.
    #[error("a replica's update or version was refused: {0}")]
    BadUpdate(rrt_sync::DocError),
    /// The node has stopped.
    #[error(transparent)]
    Stopped(#[from] crate::node::Stopped),
}

/// What became of a local edit, once the writer answered.
#[derive(Debug)]
pub(crate) enum EditOutcome {
    /// Stored: acknowledged, and on its way to peers.
    Stored,
    /// Not stored, and taken back: the writer may store the document's local edits again.
    TakenBack(EditError),
    /// Not stored, and what is stored could not be read, so it could not be taken back: it is
    /// held here, never sent, and the writer goes on refusing the document's local edits.
    Held(EditError),
    /// Made on top of an edit that failed, and refused with it.
    Refused(EditError),
}

/// What a peer's `state_delta` did.
#[derive(Debug, Default)]
pub(crate) struct Received {
    /// The documents whose content changed.
    pub(crate) changed: Vec<String>,
    /// Updates applied, to store: (document, update).
    pub(crate) to_store: Vec<(String, EraUpdate)>,
    /// Documents whose generations are to be stored whole.
    pub(crate) lineages: Vec<StoreLineage>,
    /// Updates or versions refused.
    pub(crate) refused: u64,
}

/// A document's generations to store whole, and the local updates that wait for it.
#[derive(Debug)]
pub(crate) struct StoreLineage {
    /// The document.
    pub(crate) name: String,
    /// Its generations, as `Lineage::stored` gives them.
    pub(crate) eras: Vec<EraUpdate>,
    /// What this node started or carried, sent once stored.
    pub(crate) held: Vec<EraUpdate>,
}

pub(crate) struct Documents {
    sync: DocSync,
    /// Local edits and their bytes since each document was last asked whether it is outgrown.
    since_asked: BTreeMap<String, (usize, usize)>,
}

impl Documents {
    /// Every document in `store`, edited from now on by `replica`.
    pub(crate) fn load(store: &DocumentStore, replica: u64) -> Result<Self, DocumentStoreError> {
        let mut sync = DocSync::new(replica, BATCH_WINDOW, CHUNK);
        for name in store.names()? {
            // One document that cannot be read (an I/O error) must not keep the others, and the
            // clipboard, from starting: it stays on disk, and peers bring it back into memory.
            match store.load(&name, replica) {
                Ok(lineage) => sync.insert(name, lineage),
                Err(error) => {
                    tracing::error!(document = name, %error, "could not load a document; starting without it");
                }
            }
        }
        Ok(Self {
            sync,
            since_asked: BTreeMap::new(),
        })
    }

    pub(crate) fn names(&self) -> Vec<String> {
        self.sync.names().map(str::to_owned).collect()
    }

    /// The text of `name`; `None` while there is no such document.
    pub(crate) fn text(&self, name: &str) -> Option<String> {
        self.sync.document(name).map(Document::text)
    }

    /// What a replica at `version` of `generation` lacks, and the version after it — the
    /// current generation whole if the replica's is another; `None` while there is no document
    /// of that name.
    pub(crate) fn since(
        &self,
        name: &str,
        generation: Generation,
        version: &[u8],
    ) -> Result<Option<Since>, EditError> {
        let Some(lineage) = self.sync.lineage(name) else {
            return Ok(None);
        };
        let document = lineage.document();
        // No version at all (or one of another generation): a replica that has nothing yet.
        let nothing = Document::new(0).state_vector();
        let version = if version.is_empty() || generation != lineage.generation() {
            &nothing
        } else {
            version
        };
        let update = document.diff(version).map_err(EditError::BadUpdate)?;
        Ok(Some(Since {
            update,
            version: document.state_vector(),
            generation: lineage.generation(),
        }))
    }

    /// A replica's update made on an older generation than the current one (it had not heard
    /// of the move): the change of text it made, to apply where that text now is — carried as
    /// this node's own edit. Any other edit is returned as it is.
    pub(crate) fn carry_replica_edit(&self, name: &str, edit: Edit) -> Result<Edit, EditError> {
        let Edit::Update { generation, update } = &edit else {
            return Ok(edit);
        };
        let Some(lineage) = self.sync.lineage(name) else {
            return Ok(edit);
        };
        if *generation == lineage.generation() {
            return Ok(edit);
        }
        let Some(kept) = lineage.of(*generation) else {
            return Err(EditError::BadUpdate(DocError::Malformed(format!(
                "an update of generation {} (by {}), which this node no longer keeps",
                generation.number, generation.starter
            ))));
        };
        let copy = Document::from_snapshot(0, &kept.snapshot()).map_err(EditError::BadUpdate)?;
        let base = copy.text();
        copy.apply(update).map_err(EditError::BadUpdate)?;
        Ok(Edit::ReplaceFrom {
            base,
            text: copy.text(),
        })
    }

    pub(crate) fn entries(&self, name: &str) -> BTreeMap<String, String> {
        self.sync
            .document(name)
            .map(Document::entries)
            .unwrap_or_default()
    }

    /// A local edit adding `adds` bytes of text: applied here, and its update returned for the
    /// writer. It goes to peers once [`Documents::edit_stored`] says it is stored.
    pub(crate) fn edit(
        &mut self,
        name: &str,
        adds: usize,
        change: impl FnOnce(&Document) -> Vec<u8>,
    ) -> Result<EraUpdate, EditError> {
        if !valid_name(name) {
            return Err(EditError::BadName(name.to_owned()));
        }
        if adds > MAX_LOCAL_EDIT {
            return Err(EditError::TooLarge {
                len: adds,
                max: MAX_LOCAL_EDIT,
            });
        }
        Ok(self.sync.edit(name, change))
    }

    /// The writer's answer for a local edit of `name`: sent on if stored; taken back (the
    /// document replaced with what is stored) if not — or, when what is stored cannot be read,
    /// held here, unsent, with the document's further local edits refused.
    pub(crate) fn edit_stored(
        &mut self,
        name: &str,
        update: EraUpdate,
        result: Result<(), EditNotStored>,
    ) -> EditOutcome {
        match result {
            Ok(()) => {
                let asked = self.since_asked.entry(name.to_owned()).or_default();
                asked.0 += 1;
                asked.1 += update.update.len();
                self.sync.saved(name, update, Instant::now());
                EditOutcome::Stored
            }
            Err(EditNotStored::Failed { error, stored }) => {
                let replica = self.sync.replica();
                let stored = stored.and_then(|eras| {
                    Lineage::from_stored(replica, eras)
                        .inspect_err(|error| {
                            tracing::error!(document = name, %error, "the stored document does not read back");
                        })
                        .ok()
                });
                let taken_back = stored.is_some();
                self.sync.revert_local(name, &update, stored);
                if taken_back {
                    EditOutcome::TakenBack(error.into())
                } else {
                    tracing::error!(
                        document = name,
                        "a failed edit could not be taken back: it stays here, unsent, and the document takes no local edit until a restart"
                    );
                    EditOutcome::Held(error.into())
                }
            }
            Err(EditNotStored::EarlierFailed) => {
                self.sync.refused(name, &update);
                EditOutcome::Refused(EditError::AfterFailedEdit)
            }
        }
    }

    /// The writer's answer for a document's generations and the local updates they held:
    /// each answered as a local edit is. The first outcome that is not stored says what went
    /// wrong; `None` when all were.
    pub(crate) fn lineage_stored(
        &mut self,
        name: &str,
        held: Vec<EraUpdate>,
        result: Result<(), EditNotStored>,
    ) -> Option<EditOutcome> {
        let mut held = held.into_iter();
        let outcome = self.edit_stored(name, held.next()?, result);
        let stored = matches!(outcome, EditOutcome::Stored);
        for update in held {
            if stored {
                self.edit_stored(name, update, Ok(()));
            } else {
                // Made with the first, and refused with it.
                self.sync.refused(name, &update);
            }
        }
        (!stored).then_some(outcome)
    }

    /// After a local edit of `name` was stored: if enough local edits came since it was last
    /// asked and it has outgrown its generation, a new one — its generations, to store whole.
    pub(crate) fn renew(&mut self, name: &str) -> Option<StoreLineage> {
        let (edits, bytes) = self.since_asked.get(name).copied().unwrap_or_default();
        // Asked at the next stored edit while others wait to be stored (typing that never
        // pauses still gets asked).
        if edits < RENEW_EDITS && bytes < RENEW_BYTES || self.sync.has_unsaved(name) {
            return None;
        }
        self.since_asked.remove(name);
        let whole = self.sync.renew(name)?;
        tracing::info!(document = name, generation = ?whole.generation, "started a new generation of the document");
        Some(StoreLineage {
            name: name.to_owned(),
            eras: self.sync.lineage(name)?.stored(),
            held: vec![whole],
        })
    }

    pub(crate) fn peer_up(&mut self, peer: Uuid, neighbour: Neighbour, capabilities: &[String]) {
        let knows = if capabilities.iter().any(|c| c == DOC_GENERATIONS) {
            DocPeer::Generations
        } else {
            DocPeer::Legacy
        };
        self.sync.peer_up(peer, neighbour, knows);
    }

    pub(crate) fn peer_down(&mut self, peer: Uuid) {
        self.sync.peer_down(peer);
    }

    /// A peer's `state_delta`. What it queues to send (forwards, answers to versions) goes out
    /// on the next [`Documents::flush`].
    pub(crate) fn receive(
        &mut self,
        from: Uuid,
        message: DocMessage,
        arrival: Arrival,
    ) -> Received {
        let mut received = Received::default();
        let changes = match arrival {
            Arrival::Direct => self.sync.handle(from, message),
            Arrival::Spread => self.sync.handle_spread(from, message),
        };
        for change in changes {
            match change {
                Change::Applied {
                    document,
                    generation,
                    update,
                    changed: was_changed,
                } => {
                    if was_changed && !received.changed.contains(&document) {
                        received.changed.push(document.clone());
                    }
                    let update = EraUpdate {
                        generation,
                        update,
                        header: None,
                    };
                    received.to_store.push((document, update));
                }
                Change::Lineage {
                    document,
                    changed: was_changed,
                    carried,
                } => {
                    if was_changed && !received.changed.contains(&document) {
                        received.changed.push(document.clone());
                    }
                    let Some(lineage) = self.sync.lineage(&document) else {
                        continue;
                    };
                    received.lineages.push(StoreLineage {
                        eras: lineage.stored(),
                        name: document,
                        held: carried,
                    });
                }
                Change::Rejected {
                    from,
                    document,
                    error,
                } => {
                    tracing::warn!(%from, document, %error, "refused a peer's document update");
                    received.refused += 1;
                }
            }
        }
        received
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.sync.poll_timeout()
    }

    pub(crate) fn on_deadline(&mut self, now: Instant) {
        self.sync.handle_timeout(now);
    }

    /// Hands every queued message to the network reactor.
    pub(crate) fn flush(&mut self, net: &Rrt<NetworkWorker>) {
        while let Some(outgoing) = self.sync.poll_outgoing() {
            send(net, outgoing.into());
        }
    }
}

fn send(net: &Rrt<NetworkWorker>, command: NetCommand) {
    if let Err(error) = net.send(command) {
        tracing::warn!(command = ?error.0, "the network reactor is stopped; document message dropped");
    }
}
