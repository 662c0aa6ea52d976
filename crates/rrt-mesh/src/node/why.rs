//! `why`: where the current clipboard value came from — its provenance (which travels with it)
//! and how it reached this node (which peer passed it on, and when: kept here, per value, for
//! the values of the history only).

use std::collections::HashMap;

use rrt_sync::{ClipEntry, Stamp};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where the current clipboard value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Why {
    /// The value, with where it was copied (`provenance`), if the mesh has one.
    pub entry: Option<ClipEntry>,
    /// Whether it was copied on this node.
    pub here: bool,
    /// How it reached this node, if it came from a peer (and arrived since this node started).
    pub arrived: Option<Hop>,
}

/// The last hop of a value that came from a peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hop {
    /// The peer that passed it on.
    pub from: Uuid,
    /// Its name then.
    pub name: String,
    /// When, in milliseconds since the Unix epoch, by this host's clock.
    pub at_ms: u64,
}

/// The last hop of each value in the history that came from a peer.
#[derive(Debug, Default)]
pub(super) struct Arrivals(HashMap<Stamp, Hop>);

impl Arrivals {
    /// `entry` became current, passed on by `hop`; only the history's values are remembered.
    pub(super) fn arrived(&mut self, entry: &ClipEntry, hop: Hop, history: &[ClipEntry]) {
        self.0
            .retain(|stamp, _| history.iter().any(|kept| kept.stamp == *stamp));
        self.0.insert(entry.stamp, hop);
    }

    /// Why `current` is this node's value.
    pub(super) fn why(&self, me: Uuid, current: Option<&ClipEntry>) -> Why {
        Why {
            here: current.is_some_and(|entry| entry.stamp.origin == me),
            arrived: current.and_then(|entry| self.0.get(&entry.stamp).cloned()),
            entry: current.cloned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use rrt_sync::{Clipboard, Copied};

    use super::*;

    #[test]
    fn a_value_from_a_peer_names_its_last_hop_and_only_the_history_is_remembered() {
        let mut peer = Clipboard::new(Uuid::from_u128(2), 2);
        let mut arrivals = Arrivals::default();
        let hop = |n: u64| Hop {
            from: Uuid::from_u128(3),
            name: "relay".into(),
            at_ms: n,
        };
        let mut entries = Vec::new();
        for n in 0..3 {
            let entry = peer
                .stamp_copy(Copied::from(format!("value {n}")), 1_000 + n)
                .expect("a new value");
            peer.keep(entry.clone());
            arrivals.arrived(&entry, hop(n), peer.history());
            entries.push(entry);
        }
        let why = arrivals.why(Uuid::from_u128(1), Some(&entries[2]));
        assert!(!why.here);
        assert_eq!(why.arrived, Some(hop(2)));
        assert_eq!(
            arrivals.0.len(),
            2,
            "the value the history dropped is forgotten"
        );
        let mine = arrivals.why(Uuid::from_u128(2), Some(&entries[2]));
        assert!(mine.here);
    }
}
