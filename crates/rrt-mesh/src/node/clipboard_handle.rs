//! The mesh's shared clipboard, as an application holds it: copy to it, read it and its history,
//! pin entries, get the bytes of large values, and follow it as a stream.
//!
//! A handle is a clone of the node, so it is cheap and never stale: the clipboard lives in the
//! node's actor. Its change stream carries every new value; a stream that falls behind (the node
//! keeps a bounded backlog per stream) says how many events it skipped
//! ([`ClipboardChange::Lagged`]) and goes on, so a reader that needs the latest value reads
//! [`ClipboardHandle::current`] then, and never has to stop.
//!
//! ```no_run
//! use rrt_mesh::{ClipboardChange, Node};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let node = Node::builder("default").state_dir("/tmp/my-app").spawn().await?;
//! let clipboard = node.clipboard();
//! let mut changes = clipboard.changes();
//! clipboard.copy("shared with every instance").await?;
//! while let Some(change) = changes.next().await {
//!     match change {
//!         ClipboardChange::Entry(entry) => println!("clipboard: {}", entry.text),
//!         ClipboardChange::Lagged { .. } => {
//!             if let Some(entry) = clipboard.current().await? {
//!                 println!("clipboard, after a gap: {}", entry.text);
//!             }
//!         }
//!     }
//! }
//! # Ok(()) }
//! ```

use std::{collections::BTreeSet, io::Read, path::PathBuf, sync::Arc};

use rrt_sync::{ClipEntry, Copied, Representation, Stamp};
use tokio::sync::broadcast::{self, error::RecvError};

use super::{
    CopyError, FetchError, ImportError, Node, NodeEvent, PausesError, PinError, Request, Stopped,
    import,
};

/// What a clipboard change stream reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClipboardChange {
    /// The clipboard has a new value (copied here or arriving from the mesh).
    Entry(ClipEntry),
    /// The stream fell behind and skipped `missed` events (not all of them clipboard changes):
    /// read [`ClipboardHandle::current`] for the value now.
    Lagged {
        /// How many events were skipped.
        missed: u64,
    },
}

/// The shared clipboard of a [`Node`]; made by [`Node::clipboard`].
#[derive(Debug, Clone)]
pub struct ClipboardHandle {
    node: Node,
}

impl ClipboardHandle {
    pub(super) fn new(node: Node) -> Self {
        Self { node }
    }

    /// Copies `text` to the mesh's clipboard; returns once it is on disk, and it reaches the
    /// peers at once. `Ok(None)` when it already is the current value.
    pub async fn copy(&self, text: impl Into<String>) -> Result<Option<ClipEntry>, CopyError> {
        self.copy_value(text.into().into()).await
    }

    /// Copies a value of any kind — text and other representations, made by
    /// [`ClipboardHandle::import`] or [`Representation::new`] — to the mesh's clipboard. Its
    /// provenance names this node and device; `copied.provenance`'s `through` says how it was
    /// copied (`app` when it is `None`).
    /// Representations whose type this node does not share, or over their cap, are left out
    /// (and logged). `Ok(None)` when it already is the current value.
    pub async fn copy_value(&self, mut copied: Copied) -> Result<Option<ClipEntry>, CopyError> {
        // What peers would refuse is refused here, before anything changed.
        rrt_sync::check_content(&copied.content)?;
        if let Some(rule) = self
            .node
            .never_share
            .as_ref()
            .and_then(|never_share| never_share.rule(&copied.text))
        {
            return Err(CopyError::NeverShared { rule });
        }
        copied.content.retain(|representation| {
            let shared = self
                .node
                .content
                .limit(&representation.mime)
                .is_some_and(|limit| representation.size <= limit);
            if !shared {
                tracing::info!(mime = %representation.mime, size = representation.size, "not sharing a representation: its type is off or over its cap");
            }
            shared
        });
        if copied.text.is_empty() && copied.content.is_empty() {
            return Ok(None);
        }
        self.node.ask(|reply| Request::Copy(copied, reply)).await?
    }

    /// Where the current value came from: its provenance (the instance and device it was copied
    /// on, and how) and, if a peer passed it on, which peer and when.
    pub async fn why(&self) -> Result<super::why::Why, Stopped> {
        self.node.ask(Request::Why).await
    }

    /// The current value: the newest this device shows (see [`ClipboardHandle::read_pauses`]).
    pub async fn current(&self) -> Result<Option<ClipEntry>, Stopped> {
        self.node.ask(Request::Current).await
    }

    /// The history this device shows, newest first.
    pub async fn history(&self) -> Result<Vec<ClipEntry>, Stopped> {
        self.node.ask(Request::History).await
    }

    /// Pins the history entry with `stamp` on this host (`pinned: false` unpins it): a pinned
    /// entry stays in the history, and its blobs in the store, whatever their age.
    pub async fn pin(&self, stamp: Stamp, pinned: bool) -> Result<(), PinError> {
        self.node
            .ask(|reply| Request::Pin(stamp, pinned, reply))
            .await?
    }

    /// Reads this device's clipboard pauses from its trust store again
    /// ([`TrustStore::set_paused`](crate::TrustStore::set_paused) changed them) and applies
    /// them: copies from now on are withheld from the devices paused for sending, and values
    /// from devices paused for receiving are kept and relayed but no longer shown — not the
    /// current value, not in the history, not in the change stream. A resumed device's newer
    /// value shows at once. Returns the pauses in effect (none for a node without TLS: it has no
    /// device id). See [`rrt_sync::Pauses`].
    pub async fn read_pauses(&self) -> Result<rrt_sync::Pauses, PausesError> {
        let pauses = super::pauses::read(self.node.pauses.as_ref()).await?;
        Ok(self
            .node
            .ask(|reply| Request::Pauses(pauses, reply))
            .await?)
    }

    /// The stamps of the entries pinned on this host.
    pub async fn pinned(&self) -> Result<BTreeSet<Stamp>, Stopped> {
        self.node.ask(Request::Pinned).await
    }

    /// The bytes of a representation stored by hash: the path of its file in the blob store,
    /// once here — fetched from a peer that holds it if need be. (An inline representation
    /// carries its bytes.)
    pub async fn fetch(&self, representation: &Representation) -> Result<PathBuf, FetchError> {
        let Representation {
            hash, size, mime, ..
        } = representation.clone();
        self.node
            .ask(|reply| Request::Blob(hash, size, mime, reply))
            .await?
    }

    /// Reads a value of type `mime` from `reader` into the blob store (at most this node's
    /// limit for the type): a representation to copy with [`ClipboardHandle::copy_value`].
    pub async fn import(
        &self,
        mime: String,
        reader: impl Read + Send + 'static,
    ) -> Result<Representation, ImportError> {
        let limit = self.node.content.limit(&mime).unwrap_or(0);
        let store = Arc::clone(&self.node.blob_store);
        tokio::task::spawn_blocking(move || import::value(&store, mime, reader, limit))
            .await
            .map_err(|_| Stopped)?
    }

    /// Reads files and directories (recursively) into the blob store: a file list to copy with
    /// [`ClipboardHandle::copy_value`], and the text to go with it (the paths, one per line).
    pub async fn import_files(&self, paths: Vec<PathBuf>) -> Result<Copied, ImportError> {
        let limit = self.node.content.max_size;
        let store = Arc::clone(&self.node.blob_store);
        tokio::task::spawn_blocking(move || import::files(&store, &paths, limit))
            .await
            .map_err(|_| Stopped)?
    }

    /// Every change from now on; the stream ends when the node stops.
    pub fn changes(&self) -> ClipboardChanges {
        ClipboardChanges {
            events: self.node.subscribe(),
        }
    }
}

/// The changes of the clipboard, from [`ClipboardHandle::changes`].
#[derive(Debug)]
pub struct ClipboardChanges {
    events: broadcast::Receiver<NodeEvent>,
}

impl ClipboardChanges {
    /// The next change; `None` once the node has stopped.
    pub async fn next(&mut self) -> Option<ClipboardChange> {
        loop {
            match self.events.recv().await {
                Ok(NodeEvent::Clipboard { entry }) => return Some(ClipboardChange::Entry(entry)),
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => return Some(ClipboardChange::Lagged { missed }),
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rrt_sync::Clipboard;
    use uuid::Uuid;

    use super::*;

    fn entry(text: &str) -> ClipEntry {
        Clipboard::new(Uuid::new_v4(), 10)
            .copy(text.into(), 1_700_000_000_000)
            .expect("a new value")
    }

    #[tokio::test]
    async fn a_stream_that_fell_behind_says_how_far_and_goes_on() {
        let (events, receiver) = broadcast::channel(2);
        let mut changes = ClipboardChanges { events: receiver };
        for text in ["one", "two", "three", "four"] {
            events
                .send(NodeEvent::Clipboard { entry: entry(text) })
                .expect("a receiver");
        }
        assert_eq!(
            changes.next().await,
            Some(ClipboardChange::Lagged { missed: 2 })
        );
        let Some(ClipboardChange::Entry(third)) = changes.next().await else {
            panic!("the stream goes on after a lag");
        };
        assert_eq!(&*third.text, "three");
        assert!(matches!(
            changes.next().await,
            Some(ClipboardChange::Entry(_))
        ));
        drop(events);
        assert_eq!(changes.next().await, None, "the stream ends with the node");
    }

    #[tokio::test]
    async fn a_stream_skips_events_that_are_not_the_clipboards() {
        let (events, receiver) = broadcast::channel(4);
        let mut changes = ClipboardChanges { events: receiver };
        events
            .send(NodeEvent::Document {
                name: "notes".to_owned(),
                origin: crate::Origin::Local,
            })
            .expect("a receiver");
        events
            .send(NodeEvent::Clipboard {
                entry: entry("copied"),
            })
            .expect("a receiver");
        assert!(matches!(
            changes.next().await,
            Some(ClipboardChange::Entry(entry)) if &*entry.text == "copied"
        ));
    }
}
