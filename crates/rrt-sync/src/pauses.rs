//! Pausing the clipboard with one device, without breaking the mesh for the others.
//!
//! Every replica forwards what changed its register — to its other peers in a small mesh, down
//! the broadcast tree in a large one — so a value reaches a device by whichever path is up. A
//! pause therefore cannot be a switch on a link (C gets A's copy through B all the same), nor can
//! a replica refuse to keep a value: what it does not keep it does not relay or offer on a
//! reconnect, and devices reached only through it would lose it. A pause is decided by the value
//! and holds wherever it goes:
//!
//! - **receive**: a value whose provenance names a device this one paused (`device_id`) is kept
//!   and relayed here, but not *shown*: it never becomes this replica's shown value, is not in
//!   its shown history, and raises no [`ClipEvent::Changed`](crate::ClipEvent::Changed) — so it
//!   never reaches this desktop, a paste, or a watcher.
//! - **send**: a copy made here while devices are paused names them (`withheld_from`); each of
//!   those keeps and relays it but never shows it. The copier decides for its own values; a
//!   value names at most [`MAX_WITHHELD`] devices.
//!
//! A pause is a preference between trusted devices, not a barrier: a paused device still holds
//! what it relays. To keep values off a device, stop trusting it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::clipboard::ClipEntry;

/// The most devices a value is withheld from; a peer's longer list is cut.
pub const MAX_WITHHELD: usize = 64;

/// This device's pauses: which values it keeps without showing, and whom its copies are
/// withheld from. Devices are named by their ids as provenance carries them (`rrt id`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pauses {
    /// This device's id: a value withheld from it is not shown here. `None` (no identity, as
    /// without TLS): nothing is withheld from it.
    pub device: Option<String>,
    /// Devices whose values are kept and relayed here, but not shown.
    pub receive: BTreeSet<String>,
    /// Devices this device's copies are withheld from.
    pub send: BTreeSet<String>,
}

impl Pauses {
    /// Whether `entry` is shown here: not copied on a device paused for receiving, and not
    /// withheld from this one.
    pub fn shows(&self, entry: &ClipEntry) -> bool {
        let copied_on = entry
            .provenance
            .as_ref()
            .and_then(|provenance| provenance.device_id.as_ref());
        let from_paused = copied_on.is_some_and(|device| self.receive.contains(device));
        let withheld = self
            .device
            .as_ref()
            .is_some_and(|me| entry.withheld_from.contains(me));
        !from_paused && !withheld
    }

    /// The devices a copy made now is withheld from: at most [`MAX_WITHHELD`] (receivers read
    /// no more; `rrt trust pause` refuses to pause sending to more).
    pub fn withheld_from(&self) -> Vec<String> {
        self.send.iter().take(MAX_WITHHELD).cloned().collect()
    }
}

/// A peer's `withheld_from`, bounded: at most [`MAX_WITHHELD`] names, each cut like a
/// provenance name.
pub(crate) fn bounded(mut devices: Vec<String>) -> Vec<String> {
    devices.truncate(MAX_WITHHELD);
    devices.into_iter().map(crate::provenance::cut).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use uuid::Uuid;

    use super::*;
    use crate::{Provenance, Stamp, Timestamp};

    fn entry(copied_on: Option<&str>, withheld_from: &[&str]) -> ClipEntry {
        ClipEntry {
            text: Arc::from("x"),
            content: Vec::new(),
            stamp: Stamp {
                time: Timestamp {
                    wall_ms: 1,
                    counter: 0,
                },
                origin: Uuid::nil(),
            },
            provenance: Some(Provenance {
                instance: "i".into(),
                device: None,
                device_id: copied_on.map(str::to_owned),
                through: "control".into(),
            }),
            withheld_from: withheld_from.iter().map(|d| (*d).to_owned()).collect(),
        }
    }

    #[test]
    fn a_value_is_hidden_when_its_device_is_paused_or_it_is_withheld_from_this_one() {
        let pauses = Pauses {
            device: Some("me".into()),
            receive: BTreeSet::from(["noisy".to_owned()]),
            send: BTreeSet::new(),
        };
        assert!(pauses.shows(&entry(Some("quiet"), &[])));
        assert!(pauses.shows(&entry(None, &[])), "an older peer's value");
        assert!(!pauses.shows(&entry(Some("noisy"), &[])));
        assert!(!pauses.shows(&entry(Some("quiet"), &["other", "me"])));
        assert!(pauses.shows(&entry(Some("quiet"), &["other"])));
        let anonymous = Pauses::default();
        assert!(
            anonymous.shows(&entry(Some("quiet"), &["me"])),
            "a device without an id is named by no list"
        );
    }

    #[test]
    fn a_peers_list_is_bounded() {
        let long = vec!["d".repeat(1000); MAX_WITHHELD + 10];
        let cut = bounded(long);
        assert_eq!(cut.len(), MAX_WITHHELD);
        assert!(
            cut.iter()
                .all(|device| device.len() == crate::MAX_PROVENANCE_NAME)
        );
    }
}
