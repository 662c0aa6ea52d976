//! Presence: where the other editors of a document are — their cursors, shown live and never
//! stored.
//!
//! An editor says where its cursor is by naming the character it stands before (its CRDT id,
//! [`Cursor`]), not by position: a position would be wrong on every replica that has seen edits
//! the editor had not, and an id stays on its character however the text around it changes. A
//! cursor at the end of the text names no character.
//!
//! Each editor's latest word replaces its earlier ones (newer `at_ms` wins; a word that is not
//! newer changes nothing and is not forwarded, which ends a flood as it does for the clipboard)
//! and holds for [`TTL_MS`] after it arrived: editors repeat it every [`REFRESH_MS`] while open
//! and say `gone` when they close, and one that vanishes fades out. Nothing is written to disk.
//!
//! What a peer sends is bounded so that it cannot crowd out or freeze others: at most
//! [`MAX_PER_LINK`] editors learned through one link (a flood of made-up editors fills only that
//! link's share), names cut to [`MAX_NAME`] bytes, and a word stamped further than
//! [`MAX_AHEAD_MS`] ahead of this host's clock refused — a cursor claimed newer than it is can
//! hold its place at most that long past its [`TTL_MS`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    outgoing::{Arrival, Neighbour, Neighbours, Outgoing},
    valid_name,
};

/// How long a word about a cursor holds after it arrived.
pub const TTL_MS: u64 = 30_000;
/// How often an open editor repeats where its cursor is, moved or not.
pub const REFRESH_MS: u64 = 10_000;
/// How many editors one link may tell about.
pub const MAX_PER_LINK: usize = 64;
/// The longest editor name kept, in bytes (cut at a character boundary).
pub const MAX_NAME: usize = 64;
/// How far ahead of this host's clock a word may be stamped.
pub const MAX_AHEAD_MS: u64 = 60_000;

/// The character a cursor stands before: its CRDT id (the writer's replica number and the
/// character's sequence number among that writer's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The writer of the character.
    pub client: u64,
    /// The character's number among that writer's.
    pub clock: u32,
}

/// One editor's word about where it is in a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// The document.
    pub document: String,
    /// The editor (its replica's number: unique per open editor).
    pub editor: u64,
    /// Who it is, for people (`alice@laptop`).
    pub name: String,
    /// Where its cursor is; `None` at the end of the text.
    pub cursor: Option<Cursor>,
    /// When it said so, milliseconds since the Unix epoch (its host's clock).
    pub at_ms: u64,
    /// The editor closed: forget it now.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gone: bool,
}

/// Presence's message on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PresenceMessage {
    /// An editor's word (see [`Presence`]).
    Presence(Presence),
}

impl PresenceMessage {
    /// Every `type` of these messages.
    pub const TYPES: &'static [&'static str] = &["presence"];
}

/// Why a peer's word was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresenceRefused {
    /// Not a document name.
    #[error("{0:?} is not a document name")]
    BadDocument(String),
    /// Stamped too far ahead of this host's clock.
    #[error("stamped {ahead_ms} ms ahead of this host's clock (at most {MAX_AHEAD_MS})")]
    Ahead {
        /// How far.
        ahead_ms: u64,
    },
    /// The link already told about [`MAX_PER_LINK`] editors.
    #[error("the link already told about {MAX_PER_LINK} editors")]
    TooMany,
}

/// What a peer's word did.
#[derive(Debug, PartialEq)]
pub struct Heard {
    /// The document whose editors changed, if any.
    pub changed: Option<String>,
    /// The word for the other peers, if it was news.
    pub forward: Option<Outgoing<PresenceMessage>>,
}

#[derive(Debug)]
struct Entry {
    presence: Presence,
    /// The link it came through; `None`: an editor of this node.
    via: Option<Uuid>,
    expires_ms: u64,
}

/// The presence machine: every editor's latest word, by document.
#[derive(Debug, Default)]
pub struct PresenceSync {
    entries: BTreeMap<(String, u64), Entry>,
    neighbours: Neighbours,
}

impl PresenceSync {
    /// A word of an editor of this node (it never expires here: the node's editors say
    /// `gone`); what to send.
    pub fn local(&mut self, mut presence: Presence) -> Outgoing<PresenceMessage> {
        presence.name = cut(presence.name);
        let key = (presence.document.clone(), presence.editor);
        if presence.gone {
            self.entries.remove(&key);
        } else {
            let entry = Entry {
                presence: presence.clone(),
                via: None,
                expires_ms: u64::MAX,
            };
            self.entries.insert(key, entry);
        }
        Outgoing::Broadcast {
            message: PresenceMessage::Presence(presence),
            except: None,
        }
    }

    /// A peer's word, heard at `now_ms`.
    pub fn handle(
        &mut self,
        from: Uuid,
        message: PresenceMessage,
        arrival: Arrival,
        now_ms: u64,
    ) -> Result<Heard, PresenceRefused> {
        let PresenceMessage::Presence(mut presence) = message;
        if !valid_name(&presence.document) {
            return Err(PresenceRefused::BadDocument(presence.document));
        }
        let ahead_ms = presence.at_ms.saturating_sub(now_ms);
        if ahead_ms > MAX_AHEAD_MS {
            return Err(PresenceRefused::Ahead { ahead_ms });
        }
        presence.name = cut(presence.name);
        let key = (presence.document.clone(), presence.editor);
        let known = self.entries.get(&key);
        if known.is_some_and(|entry| entry.via.is_none() || entry.presence.at_ms >= presence.at_ms)
        {
            // Ours (only we speak for our editors), or not news.
            return Ok(Heard {
                changed: None,
                forward: None,
            });
        }
        if known.is_none()
            && !presence.gone
            && self
                .entries
                .values()
                .filter(|e| e.via == Some(from))
                .count()
                >= MAX_PER_LINK
        {
            return Err(PresenceRefused::TooMany);
        }
        let document = presence.document.clone();
        if presence.gone {
            self.entries.remove(&key);
        } else {
            let entry = Entry {
                presence: presence.clone(),
                via: Some(from),
                expires_ms: now_ms.saturating_add(TTL_MS),
            };
            self.entries.insert(key, entry);
        }
        Ok(Heard {
            changed: Some(document),
            forward: self
                .neighbours
                .forward(from, arrival, PresenceMessage::Presence(presence)),
        })
    }

    /// A link came up: it hears where this node's editors are.
    pub fn peer_up(&mut self, peer: Uuid, neighbour: Neighbour) -> Vec<Outgoing<PresenceMessage>> {
        self.neighbours.up(peer, neighbour);
        self.entries
            .values()
            .filter(|entry| entry.via.is_none())
            .map(|entry| Outgoing::To(peer, PresenceMessage::Presence(entry.presence.clone())))
            .collect()
    }

    /// A link went down. What came through it stays until it expires: the editors may still be
    /// there, reached another way.
    pub fn peer_down(&mut self, peer: Uuid) {
        self.neighbours.down(peer);
    }

    /// Forgets the words that expired by `now_ms`; the documents whose editors changed.
    pub fn expire(&mut self, now_ms: u64) -> Vec<String> {
        let mut changed: Vec<String> = Vec::new();
        self.entries.retain(|(document, _), entry| {
            let keep = entry.expires_ms > now_ms;
            if !keep && !changed.contains(document) {
                changed.push(document.clone());
            }
            keep
        });
        changed
    }

    /// When the next word expires.
    pub fn next_expiry(&self) -> Option<u64> {
        self.entries
            .values()
            .map(|entry| entry.expires_ms)
            .filter(|&at| at != u64::MAX)
            .min()
    }

    /// The editors of `document`, this node's included.
    pub fn editors(&self, document: &str) -> Vec<&Presence> {
        self.entries
            .range((document.to_owned(), 0)..=(document.to_owned(), u64::MAX))
            .map(|(_, entry)| &entry.presence)
            .collect()
    }
}

/// `name` cut to [`MAX_NAME`] bytes at a character boundary.
fn cut(mut name: String) -> String {
    if name.len() > MAX_NAME {
        let mut end = MAX_NAME;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn word(editor: u64, at_ms: u64) -> Presence {
        Presence {
            document: "notes".into(),
            editor,
            name: format!("editor {editor}"),
            cursor: Some(Cursor {
                client: 7,
                clock: 3,
            }),
            at_ms,
            gone: false,
        }
    }

    fn heard(sync: &mut PresenceSync, from: u128, presence: Presence, now: u64) -> Heard {
        sync.handle(
            peer(from),
            PresenceMessage::Presence(presence),
            Arrival::Direct,
            now,
        )
        .expect("taken")
    }

    #[test]
    fn the_latest_word_holds_until_it_expires_and_news_is_forwarded_once() {
        let mut sync = PresenceSync::default();
        sync.peer_up(peer(1), Neighbour::Other);
        sync.peer_up(peer(2), Neighbour::Other);
        let first = heard(&mut sync, 1, word(5, 1_000), 1_000);
        assert_eq!(first.changed.as_deref(), Some("notes"));
        let forward = first.forward.expect("news goes on");
        assert!(forward.is_for(peer(2)) && !forward.is_for(peer(1)));
        let again = heard(&mut sync, 2, word(5, 1_000), 1_010);
        assert_eq!(
            again,
            Heard {
                changed: None,
                forward: None
            },
            "not news: the flood ends"
        );
        heard(&mut sync, 1, word(5, 900), 1_020);
        assert_eq!(sync.editors("notes")[0].at_ms, 1_000, "an older word loses");
        assert_eq!(sync.next_expiry(), Some(1_000 + TTL_MS));
        assert_eq!(sync.expire(1_000 + TTL_MS), ["notes"]);
        assert!(sync.editors("notes").is_empty(), "faded out");
    }

    #[test]
    fn gone_forgets_at_once_and_this_node_s_editors_are_told_to_new_links() {
        let mut sync = PresenceSync::default();
        sync.local(word(1, 10));
        heard(&mut sync, 9, word(2, 10), 10);
        assert_eq!(sync.editors("notes").len(), 2);
        let mut gone = word(2, 20);
        gone.gone = true;
        heard(&mut sync, 9, gone, 20);
        assert_eq!(sync.editors("notes").len(), 1);
        let told = sync.peer_up(peer(3), Neighbour::Other);
        assert_eq!(told.len(), 1, "only our own editor");
        assert!(told[0].is_for(peer(3)));
        assert_eq!(
            sync.expire(u64::MAX - 1),
            Vec::<String>::new(),
            "ours never expire"
        );
        let mut spoofed = word(1, 99);
        spoofed.name = "someone else".into();
        heard(&mut sync, 9, spoofed, 99);
        assert_eq!(
            sync.editors("notes")[0].name,
            "editor 1",
            "only we speak for ours"
        );
    }

    #[test]
    fn a_peer_cannot_crowd_out_others_or_stamp_far_ahead() {
        let mut sync = PresenceSync::default();
        for editor in 0..MAX_PER_LINK as u64 {
            heard(&mut sync, 1, word(editor, 10), 10);
        }
        let refused = sync.handle(
            peer(1),
            PresenceMessage::Presence(word(1_000, 10)),
            Arrival::Direct,
            10,
        );
        assert_eq!(refused, Err(PresenceRefused::TooMany));
        heard(&mut sync, 2, word(2_000, 10), 10);
        assert_eq!(
            sync.editors("notes").len(),
            MAX_PER_LINK + 1,
            "another link's editor is in"
        );
        let ahead = sync.handle(
            peer(2),
            PresenceMessage::Presence(word(3_000, 10 + MAX_AHEAD_MS + 1)),
            Arrival::Direct,
            10,
        );
        assert!(matches!(ahead, Err(PresenceRefused::Ahead { .. })));
        let mut long = word(4_000, 10);
        long.name = "é".repeat(100);
        heard(&mut sync, 2, long, 10);
        let kept = sync
            .editors("notes")
            .into_iter()
            .find(|p| p.editor == 4_000)
            .expect("in");
        assert_eq!(kept.name.len(), MAX_NAME, "cut on a character boundary");
        let mut bad = word(5_000, 10);
        bad.document = "../etc".into();
        assert!(matches!(
            sync.handle(peer(2), PresenceMessage::Presence(bad), Arrival::Direct, 10),
            Err(PresenceRefused::BadDocument(_))
        ));
    }

    #[test]
    fn the_wire_form_is_flat_json() {
        let json = serde_json::to_value(PresenceMessage::Presence(word(5, 1))).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"type": "presence", "document": "notes", "editor": 5,
                "name": "editor 5", "cursor": {"client": 7, "clock": 3}, "at_ms": 1})
        );
    }
}
