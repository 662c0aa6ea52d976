//! The actor's part in moving blobs: it feeds [`BlobSync`] and carries out what it asks — the
//! disk work on the blob thread (`blob_worker`), messages to the network reactor — decides which
//! announced blobs to fetch at once (`ContentConfig`), and answers those waiting for a blob.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    sync::{Arc, mpsc as std_mpsc},
    time::{Duration, Instant},
};

use rrt_reactor::Rrt;
use rrt_store::BlobStore;
use rrt_sync::{BlobEvent, BlobHash, BlobSync, ClipEntry, FILES, FileList};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::{
    blob_worker::{BlobDone, BlobJob},
    content_config::ContentConfig,
    network::NetworkWorker,
};

use super::FetchError;

/// Who waits for a blob: its path once whole.
pub(super) type BlobReply = oneshot::Sender<Result<PathBuf, FetchError>>;

/// What `rrt status` shows of blobs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BlobStatus {
    /// Whole blobs in the store.
    pub stored: u64,
    /// Their bytes.
    pub stored_bytes: u64,
    /// Blobs being fetched: how many of their parts are here.
    pub fetching: Vec<Transfer>,
    /// Blobs fetched whole since the start.
    pub fetched: u64,
    /// Parts or outlines refused because they were not the blob's (each from a peer not asked
    /// for that blob again).
    pub refused_corrupt: u64,
    /// Blobs removed to stay under the quota since the start.
    pub evicted: u64,
}

/// A blob being fetched.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Transfer {
    /// The blob.
    pub hash: BlobHash,
    /// Parts received and checked.
    pub received: u64,
    /// Parts in all (1 MiB each).
    pub parts: u64,
}

/// How long someone waiting for a blob waits without a part arriving before being told it cannot
/// be had now (the fetch itself goes on, and resumes when a peer that holds it comes back).
const PATIENCE: Duration = Duration::from_secs(30);

/// A blob someone waits for.
struct Waiting {
    replies: Vec<BlobReply>,
    /// Parts here when last looked at, and when that was.
    received: u64,
    since: Instant,
}

pub(super) struct Blobs {
    sync: BlobSync,
    jobs: std_mpsc::Sender<BlobJob>,
    store: Arc<BlobStore>,
    /// The blobs the history names: type and size by hash (rebuilt when the history changes, so
    /// a peer's want costs a lookup, not a parse of every file list).
    known: BTreeMap<BlobHash, (String, u64)>,
    config: ContentConfig,
    waiters: BTreeMap<BlobHash, Waiting>,
    /// The machine's clock: milliseconds since this.
    epoch: Instant,
    status: BlobStatus,
}

impl Blobs {
    /// `dir` is the blob store's directory (where whole blobs are, by hash).
    pub(super) fn new(
        jobs: std_mpsc::Sender<BlobJob>,
        store: Arc<BlobStore>,
        config: ContentConfig,
    ) -> Self {
        Self {
            sync: BlobSync::default(),
            jobs,
            store,
            known: BTreeMap::new(),
            config,
            waiters: BTreeMap::new(),
            epoch: Instant::now(),
            status: BlobStatus::default(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn whole(&self, hash: &BlobHash) -> Option<PathBuf> {
        self.store.has(hash).then(|| self.store.path(hash))
    }

    /// The history changed: what it names is what this node fetches for peers, and fetches of
    /// blobs it no longer names (and nobody waits for) stop.
    pub(super) fn history_changed(&mut self, history: &[ClipEntry]) {
        self.known = history
            .iter()
            .flat_map(blobs_of)
            .map(|(mime, hash, size)| (hash, (mime, size)))
            .collect();
        let now = self.now_ms();
        let unwanted: Vec<BlobHash> = self
            .sync
            .hashes()
            .filter(|hash| !self.known.contains_key(hash) && !self.waiters.contains_key(hash))
            .copied()
            .collect();
        for hash in unwanted {
            self.sync.cancel(&hash, now);
            self.job(BlobJob::Abandon(hash));
        }
    }

    pub(super) fn status(&self) -> BlobStatus {
        let (stored, stored_bytes) = self.store.usage();
        BlobStatus {
            stored,
            stored_bytes,
            fetching: self
                .sync
                .transfers()
                .map(|(hash, received, parts)| Transfer {
                    hash,
                    received,
                    parts,
                })
                .collect(),
            ..self.status.clone()
        }
    }

    /// Tells those waiting for a blob it cannot be had.
    fn fail(&mut self, hash: &BlobHash, error: &str) {
        if let Some(waiting) = self.waiters.remove(hash) {
            for reply in waiting.replies {
                let _ = reply.send(Err(FetchError::Unavailable(error.to_owned())));
            }
        }
    }

    pub(super) fn peer_up(&mut self, peer: Uuid, capabilities: &[String]) {
        let now = self.now_ms();
        self.sync.peer_up(peer, capabilities, now);
    }

    pub(super) fn peer_down(&mut self, peer: Uuid) {
        let now = self.now_ms();
        self.sync.peer_down(peer, now);
    }

    pub(super) fn receive(&mut self, from: Uuid, message: rrt_sync::BlobMessage) {
        let now = self.now_ms();
        self.sync.handle(from, message, now);
    }

    /// Someone waits for a blob of `size` bytes and type `mime`: its path at once if it is here,
    /// else once fetched (asking the `hints` first).
    pub(super) fn want(
        &mut self,
        hash: BlobHash,
        size: u64,
        mime: &str,
        hints: &[Uuid],
        reply: BlobReply,
    ) {
        if let Some(path) = self.whole(&hash) {
            // Used now: the last to be evicted.
            self.store.touch(&hash);
            let _ = reply.send(Ok(path));
            return;
        }
        match self.config.limit(mime) {
            Some(limit) if size <= limit => {}
            limit => {
                let _ = reply.send(Err(FetchError::NotFetched {
                    mime: mime.to_owned(),
                    size,
                    limit: limit.unwrap_or(0),
                }));
                return;
            }
        }
        let received = self
            .sync
            .progress(&hash)
            .map_or(0, |(received, _)| received);
        self.waiters
            .entry(hash)
            .or_insert_with(|| Waiting {
                replies: Vec::new(),
                received,
                since: Instant::now(),
            })
            .replies
            .push(reply);
        let now = self.now_ms();
        self.sync.fetch(hash, size, hints, now);
    }

    /// A new clipboard value: its blobs small enough are fetched now, asking first the peer it
    /// came from and the instance that copied it.
    pub(super) fn arrived(&mut self, entry: &ClipEntry, hints: &[Uuid]) {
        let now = self.now_ms();
        for (mime, hash, size) in blobs_of(entry) {
            let eager = self
                .config
                .limit(&mime)
                .is_some_and(|limit| size <= limit.min(self.config.eager_max));
            if eager && self.whole(&hash).is_none() {
                self.sync.fetch(hash, size, hints, now);
            }
        }
    }

    /// What the blob thread reports. Returns whether a blob was fetched (the store grew).
    pub(super) fn done(&mut self, done: BlobDone) -> bool {
        let now = self.now_ms();
        let mut fetched = false;
        match done {
            BlobDone::Served {
                peer,
                parts,
                held: true,
                ..
            } => self.sync.served(peer, parts),
            BlobDone::Served {
                peer,
                hash,
                parts,
                held: false,
            } => {
                self.sync.served(peer, parts);
                // Fetched for the peer only if this node would fetch it for itself.
                let known = self
                    .known
                    .get(&hash)
                    .filter(|(mime, size)| {
                        self.config.limit(mime).is_some_and(|limit| *size <= limit)
                    })
                    .map(|(_, size)| *size);
                self.sync.cannot_serve(peer, hash, known, now);
            }
            BlobDone::Completed { hash, result } => {
                if result.is_ok() {
                    self.status.fetched += 1;
                    fetched = true;
                } else {
                    self.job(BlobJob::Abandon(hash));
                }
                let replies = self.waiters.remove(&hash).map(|w| w.replies);
                for reply in replies.unwrap_or_default() {
                    let _ = reply.send(result.clone().map_err(FetchError::Unavailable));
                }
            }
            BlobDone::Written { hash } => self.sync.written(&hash, now),
            BlobDone::WriteFailed { hash, error } => {
                tracing::error!(%hash, %error, "could not store a fetched blob; giving it up");
                self.sync.cancel(&hash, now);
                self.job(BlobJob::Abandon(hash));
                self.fail(&hash, &error);
            }
            BlobDone::Evicted(evicted) => {
                self.status.evicted += evicted.blobs.len() as u64;
                let bytes: u64 = evicted.blobs.iter().map(|(_, size)| size).sum();
                tracing::info!(
                    blobs = evicted.blobs.len(),
                    bytes,
                    kept_bytes = evicted.kept_bytes,
                    quota = self.config.quota,
                    "removed the least recently used blobs to stay under the quota"
                );
            }
        }
        fetched
    }

    /// Keeps the store under its quota, never removing a blob of `current` or `pinned`.
    pub(super) fn evict(&self, kept: &[&ClipEntry]) {
        let keep: BTreeSet<BlobHash> = kept
            .iter()
            .flat_map(|entry| blobs_of(entry))
            .map(|(_, hash, _)| hash)
            .collect();
        self.job(BlobJob::Evict {
            quota: self.config.quota,
            keep,
        });
    }

    /// When the machine next needs the time, or a waiter's patience is to be checked.
    pub(super) fn deadline(&self) -> Option<Instant> {
        let machine = self
            .sync
            .deadline()
            .map(|ms| self.epoch + Duration::from_millis(ms));
        let patience = self.waiters.values().map(|w| w.since + PATIENCE).min();
        machine.into_iter().chain(patience).min()
    }

    pub(super) fn on_deadline(&mut self) {
        let now = self.now_ms();
        self.sync.on_deadline(now);
        let checked = Instant::now();
        let mut out_of_patience = Vec::new();
        for (hash, waiting) in &mut self.waiters {
            if checked < waiting.since + PATIENCE {
                continue;
            }
            let received = self.sync.progress(hash).map_or(0, |(received, _)| received);
            if received > waiting.received {
                waiting.received = received;
                waiting.since = checked;
            } else {
                out_of_patience.push(*hash);
            }
        }
        for hash in out_of_patience {
            tracing::warn!(%hash, "no part of a blob arrived for 30 s; telling those who wait");
            self.fail(
                &hash,
                "no peer has sent any of it for 30 s (the fetch goes on)",
            );
        }
    }

    /// Carries out what the machine asks.
    pub(super) fn flush(&mut self, net: &Rrt<NetworkWorker>) {
        while let Some(outgoing) = self.sync.poll_outgoing() {
            if let Err(error) = net.send(outgoing.into()) {
                tracing::debug!(command = ?error.0, "the network reactor is stopped; blob message dropped");
            }
        }
        while let Some(event) = self.sync.poll_event() {
            match event {
                BlobEvent::Serve {
                    peer,
                    hash,
                    from,
                    to,
                    outline,
                } => self.job(BlobJob::Serve {
                    peer,
                    hash,
                    from,
                    to,
                    outline,
                }),
                BlobEvent::Write {
                    hash,
                    size,
                    index,
                    data,
                } => self.job(BlobJob::Write {
                    hash,
                    size,
                    index,
                    data,
                }),
                BlobEvent::Complete { outline } => self.job(BlobJob::Complete(outline)),
                BlobEvent::Corrupt { from, hash } => {
                    self.status.refused_corrupt += 1;
                    tracing::warn!(%from, %hash, "a peer sent bytes that are not the blob's; refused them and asking another peer");
                }
                BlobEvent::WrongSize { hash, announced } => {
                    tracing::warn!(%hash, announced, "a blob was announced with a size it does not have; not fetching it");
                    self.fail(&hash, "it was announced with a size it does not have");
                }
                // Those waiting keep waiting (a peer may come back), within their patience.
                BlobEvent::Stalled { hash } => {
                    tracing::info!(%hash, "no peer up holds this blob now; the fetch waits for one");
                }
            }
        }
    }

    fn job(&self, job: BlobJob) {
        if self.jobs.send(job).is_err() {
            tracing::error!("the blob thread is gone; blobs can no longer be stored or served");
        }
    }
}

/// The blobs an entry names: its representations stored by hash, and the files of an inline
/// file list. (Type, hash, size.)
pub(super) fn blobs_of(entry: &ClipEntry) -> Vec<(String, BlobHash, u64)> {
    let mut blobs = Vec::new();
    for representation in &entry.content {
        if representation.is_blob() {
            blobs.push((
                representation.mime.clone(),
                representation.hash,
                representation.size,
            ));
        } else if representation.mime == FILES
            && let Some(data) = &representation.data
            && let Ok(list) = FileList::parse(&data.0)
        {
            blobs.extend(list.files.iter().filter_map(|file| {
                let hash = file.hash?;
                Some(("application/octet-stream".to_owned(), hash, file.size))
            }));
        }
    }
    blobs
}
