//! The messages of a document's generations ([`Lineage`](crate::Lineage)'s): versions, updates
//! of one generation or another, and a whole lineage for a peer behind.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::document::DocError;

/// Which generation of a document: the later one is the greater, ties broken by the replica that
/// started it. Generation 0 (started by nobody) is every document's first.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Generation {
    /// How many generations came before.
    pub number: u64,
    /// The replica that started it (0 for generation 0).
    pub starter: u64,
}

/// How a generation began: what it was seeded from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The generation it continues.
    pub parent: Generation,
    /// Every id of the parent's text at the start, characters and deletions (an encoded yrs id
    /// set): a replica whose copy of the parent has seen nothing more has nothing to carry
    /// forward, and what it wrote that is in here it need not carry.
    #[serde(with = "crate::bytes_as_base64")]
    pub base: Vec<u8>,
    /// The parent's text at the start.
    pub text: String,
    /// The parent's id of each character of `text`, in order: runs of consecutive ids, each as
    /// varints — `units · 2 + 1` then the writer when the writer changes (always for the first
    /// run), else `units · 2`; then the zigzagged distance of the run's first clock from the end
    /// of the writer's previous run (from 0 after a change). The runs cover `text`'s UTF-16
    /// code units exactly, or the header is refused. The new generation's seed characters are
    /// its starter's first clocks, in the same order, so this says which parent character each
    /// is a copy of: what a replica that moved onto this generation needs if it loses to a
    /// concurrent start, to carry it back in the parent's ids.
    #[serde(default, with = "crate::bytes_as_base64")]
    pub origins: Vec<u8>,
    /// The parent's map at the start.
    pub map: BTreeMap<String, String>,
}

/// An update of one generation of a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EraUpdate {
    /// Which generation.
    pub generation: Generation,
    /// The encoded yrs update. Besides the text (`text`) and map (`map`), a generation's yrs
    /// document holds `origins`, a list of byte buffers that a replica appends in the same
    /// update as what it carried in: each says where carried characters came from — the writer
    /// and clock (varints) of the first of them, then, in order, the parent ids they are copies
    /// of, as runs encoded like [`Header::origins`]. A buffer that does not decode is ignored.
    #[serde(with = "crate::bytes_as_base64")]
    pub update: Vec<u8>,
    /// Present when `update` is the whole generation (from its start, or for a peer behind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<Header>,
}

/// The versions of the generations a replica holds, its current one first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versions(pub Vec<Version>);

/// A replica's version of one generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// Which generation.
    pub generation: Generation,
    /// Its encoded state vector.
    #[serde(with = "crate::bytes_as_base64")]
    pub state_vector: Vec<u8>,
}

impl Versions {
    /// The sender's current generation.
    pub(crate) fn current(&self) -> Generation {
        self.0
            .first()
            .map(|version| version.generation)
            .unwrap_or_default()
    }

    /// The sender's version of `generation`, if it holds it.
    pub(crate) fn of(&self, generation: Generation) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|version| version.generation == generation)
            .map(|version| version.state_vector.as_slice())
    }
}

/// What replicas of a document tell each other about its generations. On the wire, a
/// MessagePack map (`{"kind": "versions" | "updates" | "lineage", "generations": [...]}`, named
/// fields, byte strings raw) in a `crdt_ops` entry's `lineage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "generations", rename_all = "snake_case")]
pub enum LineageMessage {
    /// What the sender holds: answered with what it lacks ([`LineageMessage::Updates`]), or, if it
    /// is behind, with [`LineageMessage::Lineage`].
    Versions(Versions),
    /// Edits, diffs, or a newly started generation (whole, with its header).
    Updates(Vec<EraUpdate>),
    /// Every generation the sender holds, whole, newest first: for a peer behind, to move from.
    Lineage(Vec<EraUpdate>),
}

impl LineageMessage {
    /// As it travels in an operation's `lineage`: MessagePack, with named fields.
    pub fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).expect("a lineage message always encodes")
    }

    /// A peer's encoded message (untrusted).
    pub fn decode(bytes: &[u8]) -> Result<Self, DocError> {
        rmp_serde::from_slice(bytes)
            .map_err(|error| DocError::Malformed(format!("a lineage message: {error}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_and_versions_round_trip_in_json_and_messagepack() {
        let update = EraUpdate {
            generation: Generation {
                number: 3,
                starter: 7,
            },
            update: vec![0, 1, 254, 255],
            header: Some(Header {
                parent: Generation {
                    number: 2,
                    starter: 1,
                },
                base: vec![1, 2],
                text: "seed".into(),
                origins: vec![9, 14, 0],
                map: BTreeMap::from([("k".to_owned(), "v".to_owned())]),
            }),
        };
        let json = serde_json::to_string(&update).expect("serializes");
        assert!(json.contains(r#""update":"AAH+/w==""#), "{json}");
        assert_eq!(
            serde_json::from_str::<EraUpdate>(&json).expect("parses"),
            update
        );
        let packed = rmp_serde::to_vec_named(&update).expect("serializes");
        assert_eq!(
            rmp_serde::from_slice::<EraUpdate>(&packed).expect("parses"),
            update
        );
        let versions = Versions(vec![Version {
            generation: update.generation,
            state_vector: vec![9],
        }]);
        let json = serde_json::to_string(&versions).expect("serializes");
        assert_eq!(
            serde_json::from_str::<Versions>(&json).expect("parses"),
            versions
        );
        assert_eq!(versions.current(), update.generation);
        assert_eq!(versions.of(update.generation), Some(&[9][..]));
    }
}
