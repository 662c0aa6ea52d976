//! The blob store's thread: every disk access of blobs — serving parts to peers, writing fetched
//! parts, completing and evicting blobs — so the actor's loop never waits on a disk and a 1 GiB
//! transfer costs it only the messages.
//!
//! Serving goes straight from here to the network reactor: the actor decides that a peer is to
//! be served (`BlobSync`), this thread reads the parts and sends them, a window at a time, so
//! what it holds is bounded by the window, not by the blob. What the actor must know comes back
//! as [`BlobDone`]. Jobs run in order, so a blob is completed only after its parts are written.

use std::{collections::BTreeSet, path::PathBuf, sync::mpsc as std_mpsc};

use rrt_reactor::Rrt;
use rrt_store::{BlobStore, Evicted};
use rrt_sync::{BlobHash, BlobMessage, outline::Outline};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::network::{NetCommand, NetworkWorker};

/// What the blob thread is asked to do.
#[derive(Debug)]
pub(crate) enum BlobJob {
    /// Send parts `from..to` of a blob (its outline first, if asked) to a peer.
    Serve {
        peer: Uuid,
        hash: BlobHash,
        from: u64,
        to: u64,
        outline: bool,
    },
    /// Store a verified part.
    Write {
        hash: BlobHash,
        size: u64,
        index: u64,
        data: Vec<u8>,
    },
    /// Every part is written: make the blob whole.
    Complete(Outline),
    /// A fetch given up: remove its partial file.
    Abandon(BlobHash),
    /// Stay under `quota` bytes, keeping `keep`.
    Evict {
        quota: u64,
        keep: BTreeSet<BlobHash>,
    },
}

/// What the actor must know.
#[derive(Debug)]
pub(crate) enum BlobDone {
    /// A peer asked for a blob that is not here.
    /// A serve is over: `parts` parts no longer owed to `peer`; `held: false` when the blob
    /// was not here to serve.
    Served {
        peer: Uuid,
        hash: BlobHash,
        parts: u64,
        held: bool,
    },
    /// A fetched blob is whole (or could not be made so).
    Completed {
        hash: BlobHash,
        result: Result<PathBuf, String>,
    },
    /// A part is written.
    Written { hash: BlobHash },
    /// A part could not be written: the fetch cannot go on.
    WriteFailed { hash: BlobHash, error: String },
    /// An eviction removed blobs.
    Evicted(Evicted),
}

/// Starts the thread.
pub(crate) fn spawn(
    mut store: BlobStore,
    net: Rrt<NetworkWorker>,
) -> std::io::Result<(std_mpsc::Sender<BlobJob>, mpsc::UnboundedReceiver<BlobDone>)> {
    let (jobs, inbox) = std_mpsc::channel();
    let (done, results) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("rrt-blobs".to_owned())
        .spawn(move || {
            for job in inbox {
                if let Some(result) = run(&mut store, &net, job)
                    && done.send(result).is_err()
                {
                    return;
                }
            }
        })?;
    Ok((jobs, results))
}

fn run(store: &mut BlobStore, net: &Rrt<NetworkWorker>, job: BlobJob) -> Option<BlobDone> {
    match job {
        BlobJob::Serve {
            peer,
            hash,
            from,
            to,
            outline,
        } => Some(BlobDone::Served {
            peer,
            hash,
            parts: to.saturating_sub(from),
            held: serve(store, net, peer, hash, from, to, outline),
        }),
        BlobJob::Write {
            hash,
            size,
            index,
            data,
        } => Some(match store.write_part(hash, size, index, &data) {
            Ok(()) => BlobDone::Written { hash },
            Err(error) => BlobDone::WriteFailed {
                hash,
                error: error.to_string(),
            },
        }),
        BlobJob::Complete(outline) => {
            let hash = outline.hash();
            let result = store
                .complete(&outline)
                .map(|()| store.path(&hash))
                .map_err(|error| error.to_string());
            Some(BlobDone::Completed { hash, result })
        }
        BlobJob::Abandon(hash) => {
            store.abandon(&hash);
            None
        }
        BlobJob::Evict { quota, keep } => match store.evict(quota, &keep) {
            Ok(evicted) if evicted.blobs.is_empty() => None,
            Ok(evicted) => Some(BlobDone::Evicted(evicted)),
            Err(error) => {
                tracing::warn!(%error, "could not evict blobs to stay under the quota");
                None
            }
        },
    }
}

/// Sends what a peer asked for; `false` if the blob is not here (or cannot be read).
fn serve(
    store: &BlobStore,
    net: &Rrt<NetworkWorker>,
    peer: Uuid,
    hash: BlobHash,
    from: u64,
    to: u64,
    outline: bool,
) -> bool {
    let send = |message: BlobMessage| {
        net.send(NetCommand::Send {
            to: peer,
            message: message.into(),
        })
        .is_ok()
    };
    if outline {
        match store.outline(&hash) {
            Ok(Some(outline)) => {
                let values = outline.to_bytes();
                let size = outline.size();
                // A stopped reactor: the peer is gone with it.
                if !send(BlobMessage::BlobOutline { hash, size, values }) {
                    return true;
                }
            }
            Ok(None) => return false,
            Err(error) => {
                tracing::warn!(%hash, %error, "could not serve a blob");
                return false;
            }
        }
    }
    store.touch(&hash);
    for index in from..to {
        match store.read_part(&hash, index) {
            // Past the end: nothing more to send.
            Ok(Some(data)) if data.is_empty() && index > 0 => break,
            Ok(Some(data)) => {
                if !send(BlobMessage::BlobPart { hash, index, data }) {
                    return true;
                }
            }
            Ok(None) => return false,
            Err(error) => {
                tracing::warn!(%hash, %error, "could not read a blob's part");
                return false;
            }
        }
    }
    true
}
