//! What an edit request does to a document.

use rrt_sync::Bias;

/// A change to a document.
///
/// Positions are UTF-16 code units into the document's text — or, when `base` is given, into
/// that text: the one the editor saw when it made the edit. The node then moves the position past
/// whatever changed since ([`rrt_sync::rebase`]), so an editor whose copy lags behind the mesh
/// still edits where its user meant.
#[derive(Debug)]
pub enum Edit {
    /// Insert text at a position (clamped to the end).
    Insert {
        /// Where.
        at: usize,
        /// What.
        text: String,
        /// The text `at` refers to, if not the current one.
        base: Option<String>,
    },
    /// Delete `len` UTF-16 code units from a position (clamped to the text).
    Delete {
        /// Where.
        at: usize,
        /// How many.
        len: usize,
        /// The text `at` and `len` refer to, if not the current one.
        base: Option<String>,
    },
    /// Append text.
    Append(String),
    /// Make the text this, with the fewest changes (concurrent edits elsewhere survive).
    Replace(String),
    /// Make the text `text`, an editor's change of `base` (a text the document had): only what
    /// differs between the two is applied, past whatever changed here since — so an edit made
    /// elsewhere while the editor was open survives.
    ReplaceFrom {
        /// The text the editor started from.
        base: String,
        /// What it saved.
        text: String,
    },
    /// Set a key of the document's map (the app state, in [`STATE`](crate::STATE)).
    Set(String, String),
    /// Remove a key of the document's map.
    Remove(String),
    /// Apply an update made by a replica of the document this node serves (the TUI's, an
    /// editor's) on `generation` of it ([`Since::generation`](crate::Since::generation)): stored
    /// and sent to peers like any local edit. It must be a valid update (checked on a scratch
    /// document before anything changes: [`EditError::BadUpdate`](crate::EditError::BadUpdate)).
    /// One made on an older generation — by a replica that had not heard yet that the
    /// document moved on — is applied as the change of text it made, where that text now is;
    /// one of a generation this node no longer keeps is refused.
    Update {
        /// The generation the replica edited.
        generation: rrt_sync::Generation,
        /// Its update.
        update: Vec<u8>,
    },
}

impl Edit {
    /// The bytes of text the edit puts into the document (at most; a replace may keep some).
    pub(super) fn adds(&self) -> usize {
        match self {
            Self::Insert { text, .. }
            | Self::Append(text)
            | Self::Replace(text)
            | Self::ReplaceFrom { text, .. } => text.len(),
            Self::Set(key, value) => key.len() + value.len(),
            Self::Update { update, .. } => update.len(),
            Self::Delete { .. } | Self::Remove(_) => 0,
        }
    }
}

/// Applies `edit` to `document`; returns the update. Positions given in a `base` text are first
/// moved past what changed since (the current text is read once per edit).
pub(super) fn apply(edit: &Edit, document: &rrt_sync::Document) -> Vec<u8> {
    match edit {
        Edit::Insert { at, text, base } => {
            let at = match base {
                Some(base) => rrt_sync::rebase(base, &document.text(), *at, Bias::After),
                None => *at,
            };
            document.insert(at, text)
        }
        Edit::Delete { at, len, base } => {
            let end = at.saturating_add(*len);
            let (start, end) = match base {
                // The range's characters, not text others put at its edges.
                Some(base) => {
                    let current = document.text();
                    let start = rrt_sync::rebase(base, &current, *at, Bias::After);
                    (start, rrt_sync::rebase(base, &current, end, Bias::Before))
                }
                None => (*at, end),
            };
            document.delete(start, end.saturating_sub(start))
        }
        Edit::Append(text) => document.append(text),
        Edit::Replace(text) => document.replace(text),
        Edit::ReplaceFrom { base, text } => document.replace_from(base, text),
        Edit::Set(key, value) => document.set(key, value),
        Edit::Remove(key) => document.remove(key),
        Edit::Update { update, .. } => {
            // Checked before (`Node::edit`); what yrs might still refuse is logged, and the
            // update goes on to peers, who refuse it the same way.
            if let Err(error) = document.apply(update) {
                tracing::warn!(%error, "a replica's update was not applied here");
            }
            update.clone()
        }
    }
}
