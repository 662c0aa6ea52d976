//! One replicated document of a [`Node`], as an application holds it: read it, change it, and
//! follow its changes as a stream.
//!
//! A handle is a name plus a clone of the node, so it is cheap and never stale: the document lives
//! in the node's actor, which applies every edit (local or from a peer) in one place. A change
//! stream says *that* the document changed and who changed it; reading the text after each
//! change is correct even when changes come faster than they are read, since a stream that falls
//! behind says so once ([`DocumentChange::Lagged`]) instead of losing changes silently — and goes
//! on.
//!
//! The handle is the one way to edit a document: its methods are shorthands for
//! [`DocumentHandle::edit`], which takes any [`Edit`] (an editor's change of an older text, say).
//!
//! ```no_run
//! use rrt_mesh::{DocumentChange, Node, Origin};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let node = Node::builder("default").state_dir("/tmp/my-app").spawn().await?;
//! let notes = node.document("notes");
//! let mut changes = notes.changes();
//! notes.insert(0, "first line\n").await?;
//! while let Some(change) = changes.next().await {
//!     match change {
//!         DocumentChange::Changed(Origin::Peer(peer)) => {
//!             println!("{peer} edited: {}", notes.text().await?);
//!         }
//!         // Ours, or someone's cursor moved.
//!         DocumentChange::Changed(Origin::Local) | DocumentChange::Editors => {}
//!         // Changes were skipped: the text is current all the same.
//!         DocumentChange::Lagged { .. } => println!("now: {}", notes.text().await?),
//!     }
//! }
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;

use serde::Serialize;
use tokio::sync::broadcast::{self, error::RecvError};
use uuid::Uuid;

use rrt_sync::{Cursor, Presence};

use crate::{
    EditError,
    node::{Edit, Node, NodeEvent, ReadError, Since, Stopped},
    wall_clock::wall_ms,
};

/// Who made a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// This node.
    Local,
    /// The peer the update came from (in a hub, possibly the coordinator relaying another
    /// leaf's edit).
    Peer(Uuid),
}

/// What a change stream reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentChange {
    /// The document changed.
    Changed(Origin),
    /// Its editors moved, came or went ([`DocumentHandle::editors`] says where they are).
    Editors,
    /// The stream fell behind and skipped `missed` events (not all of them this document's):
    /// the document may have changed any number of times. Read it again.
    Lagged {
        /// How many events were skipped.
        missed: u64,
    },
}

/// A handle to the document of one name on a [`Node`]; made by [`Node::document`].
#[derive(Debug, Clone)]
pub struct DocumentHandle {
    node: Node,
    name: String,
}

impl DocumentHandle {
    pub(crate) fn new(node: Node, name: String) -> Self {
        Self { node, name }
    }

    /// The document's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The text ([`ReadError::NotFound`] while the document does not exist yet).
    pub async fn text(&self) -> Result<String, ReadError> {
        self.node
            .text(&self.name)
            .await?
            .ok_or_else(|| ReadError::NotFound(self.name.clone()))
    }

    /// The map (empty while the document has none).
    pub async fn entries(&self) -> Result<BTreeMap<String, String>, Stopped> {
        self.node.entries(&self.name).await
    }

    /// Applies `edit`; returns once it is on disk. It reaches the peers within the batching
    /// window.
    pub async fn edit(&self, edit: Edit) -> Result<(), EditError> {
        self.node.edit(&self.name, edit).await
    }

    /// What a replica of this document at `version` (a state vector; empty for a new replica)
    /// lacks, and the version it is at once it applies that: how an editor holding its own
    /// replica (the TUI) catches up; it sends its own changes as [`Edit::Update`]. `None`
    /// while the document does not exist.
    pub async fn since(
        &self,
        generation: rrt_sync::Generation,
        version: Vec<u8>,
    ) -> Result<Option<Since>, EditError> {
        self.node.since(&self.name, generation, version).await
    }

    /// Shows the cursor of an editor of this node (a text view of the document) to the other
    /// editors, on every device: `editor` names the view (unique, at most 2⁵³ − 1), `cursor`
    /// the character it stands before ([`Document::cursor_at`](rrt_sync::Document::cursor_at)
    /// on a replica; `None` at the end). Say it again at least every
    /// [`REFRESH_MS`](rrt_sync::REFRESH_MS) while the view is open (a word fades after
    /// [`TTL_MS`](rrt_sync::TTL_MS)), and [`hide_cursor`](Self::hide_cursor) when it closes.
    pub async fn show_cursor(
        &self,
        editor: u64,
        name: impl Into<String>,
        cursor: Option<Cursor>,
    ) -> Result<(), Stopped> {
        self.presence(editor, name.into(), cursor, false).await
    }

    /// Says that the view `editor` closed: the other editors stop showing its cursor at once.
    pub async fn hide_cursor(&self, editor: u64) -> Result<(), Stopped> {
        self.presence(editor, String::new(), None, true).await
    }

    async fn presence(
        &self,
        editor: u64,
        name: String,
        cursor: Option<Cursor>,
        gone: bool,
    ) -> Result<(), Stopped> {
        let presence = Presence {
            document: self.name.clone(),
            editor,
            name,
            cursor,
            at_ms: wall_ms(),
            gone,
        };
        self.node.set_presence(presence).await
    }

    /// Where the document's editors are, this node's included.
    pub async fn editors(&self) -> Result<Vec<Presence>, Stopped> {
        self.node.editors(&self.name).await
    }

    /// Inserts `text` at `at` (UTF-16 code units).
    pub async fn insert(&self, at: usize, text: impl Into<String>) -> Result<(), EditError> {
        let text = text.into();
        self.edit(Edit::Insert {
            at,
            text,
            base: None,
        })
        .await
    }

    /// Deletes `len` UTF-16 code units at `at`.
    pub async fn delete(&self, at: usize, len: usize) -> Result<(), EditError> {
        self.edit(Edit::Delete {
            at,
            len,
            base: None,
        })
        .await
    }

    /// Appends `text`.
    pub async fn append(&self, text: impl Into<String>) -> Result<(), EditError> {
        self.edit(Edit::Append(text.into())).await
    }

    /// Makes the text `text` with the fewest changes, so concurrent edits elsewhere survive.
    pub async fn replace(&self, text: impl Into<String>) -> Result<(), EditError> {
        self.edit(Edit::Replace(text.into())).await
    }

    /// Sets `key` in the map.
    pub async fn set(
        &self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<(), EditError> {
        self.edit(Edit::Set(key.into(), value.into())).await
    }

    /// Removes `key` from the map.
    pub async fn remove(&self, key: impl Into<String>) -> Result<(), EditError> {
        self.edit(Edit::Remove(key.into())).await
    }

    /// Every change from now on.
    pub fn changes(&self) -> DocumentChanges {
        DocumentChanges {
            events: self.node.subscribe(),
            name: self.name.clone(),
        }
    }
}

/// The changes of one document, from [`DocumentHandle::changes`].
#[derive(Debug)]
pub struct DocumentChanges {
    events: broadcast::Receiver<NodeEvent>,
    name: String,
}

impl DocumentChanges {
    /// The next change; `None` once the node has stopped.
    pub async fn next(&mut self) -> Option<DocumentChange> {
        loop {
            match self.events.recv().await {
                Ok(NodeEvent::Document { name, origin }) if name == self.name => {
                    return Some(DocumentChange::Changed(origin));
                }
                Ok(NodeEvent::Presence { document }) if document == self.name => {
                    return Some(DocumentChange::Editors);
                }
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => return Some(DocumentChange::Lagged { missed }),
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(name: &str) -> NodeEvent {
        NodeEvent::Document {
            name: name.to_owned(),
            origin: Origin::Local,
        }
    }

    #[tokio::test]
    async fn its_editors_moving_is_a_change_of_their_own() {
        let (events, receiver) = broadcast::channel(8);
        let mut changes = DocumentChanges {
            events: receiver,
            name: "notes".to_owned(),
        };
        for document in ["todo", "notes"] {
            let document = document.to_owned();
            events
                .send(NodeEvent::Presence { document })
                .expect("a receiver");
        }
        assert_eq!(changes.next().await, Some(DocumentChange::Editors));
    }

    #[tokio::test]
    async fn a_stream_that_fell_behind_says_how_far_and_goes_on() {
        let (events, receiver) = broadcast::channel(2);
        let mut changes = DocumentChanges {
            events: receiver,
            name: "notes".to_owned(),
        };
        for name in ["notes", "todo", "notes", "notes"] {
            events.send(changed(name)).expect("a receiver");
        }
        assert_eq!(
            changes.next().await,
            Some(DocumentChange::Lagged { missed: 2 })
        );
        assert_eq!(
            changes.next().await,
            Some(DocumentChange::Changed(Origin::Local))
        );
        assert_eq!(
            changes.next().await,
            Some(DocumentChange::Changed(Origin::Local))
        );
        events.send(changed("todo")).expect("a receiver");
        drop(events);
        assert_eq!(
            changes.next().await,
            None,
            "another document's change is not this one's"
        );
    }
}
