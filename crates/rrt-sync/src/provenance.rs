//! Where a clipboard value came from: the instance and device it was copied on, and how (the
//! desktop's clipboard, the control socket, an application). It travels with the value, so every
//! replica can say who set its clipboard — what untangles a loop with another clipboard tool.
//! How a value reached *this* replica (which peer passed it on, when) is the node's to keep: it
//! is different on every replica and never travels.

use serde::{Deserialize, Serialize};

/// The longest name kept from a peer, in bytes.
pub const MAX_PROVENANCE_NAME: usize = 64;

/// Where a clipboard value was copied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// The instance it was copied on, by name.
    pub instance: String,
    /// The device (host) that instance runs on, by name, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// That device's id (its public key, 64 hexadecimal digits, as `rrt id` prints it), if it
    /// has one: what a pause of that device goes by ([`Pauses`](crate::Pauses)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// How it was copied there: `x11` or `wayland` (the desktop's clipboard), `control` (the
    /// control socket: `rrt clip copy`, the TUI, any client), `app` (an application embedding
    /// rrt). A string, not a closed set: a newer peer's way reads as what it says.
    pub through: String,
}

impl Provenance {
    /// Only how a value is copied (`control`, `x11`, …): the node copying it fills in its
    /// names.
    pub fn through(way: impl Into<String>) -> Self {
        Self {
            instance: String::new(),
            device: None,
            device_id: None,
            through: way.into(),
        }
    }

    /// As a peer's, bounded: every name cut to [`MAX_PROVENANCE_NAME`] bytes.
    pub fn bounded(self) -> Self {
        Self {
            instance: cut(self.instance),
            device: self.device.map(cut),
            device_id: self.device_id.map(cut),
            through: cut(self.through),
        }
    }
}

/// `name`, cut to [`MAX_PROVENANCE_NAME`] bytes at a character boundary.
pub(crate) fn cut(mut name: String) -> String {
    if name.len() > MAX_PROVENANCE_NAME {
        let end = (0..=MAX_PROVENANCE_NAME)
            .rev()
            .find(|&at| name.is_char_boundary(at))
            .unwrap_or(0);
        name.truncate(end);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peers_names_are_cut_at_a_character_boundary() {
        let long = "é".repeat(100);
        let bounded = Provenance {
            instance: long.clone(),
            device: Some(long.clone()),
            device_id: None,
            through: "x".repeat(1000),
        }
        .bounded();
        assert_eq!(bounded.instance.len(), MAX_PROVENANCE_NAME);
        assert!(
            bounded
                .device
                .is_some_and(|d| d.len() == MAX_PROVENANCE_NAME)
        );
        assert_eq!(bounded.through.len(), MAX_PROVENANCE_NAME);
        let short = Provenance {
            instance: "a".into(),
            device: None,
            device_id: Some("ab".repeat(32)),
            through: "control".into(),
        };
        assert_eq!(short.clone().bounded(), short);
    }
}
