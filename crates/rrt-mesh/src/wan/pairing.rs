//! Pairing two devices by a ticket, as sans-IO rules: which invitations stand (one use each,
//! until they expire), the short verification code both people compare, the messages of the
//! pairing stream, and when a pairing is decided.
//!
//! ```text
//!  inviter: invite ─▶ Invitations::create ─▶ ticket (id, relays, addrs, secret, expiry)
//!  joiner:  dial the ticket's device (ALPN rrt-pair/1) ─▶ pair_request {secret, device, relays, addrs}
//!  inviter: Invitations::redeem ─▶ unknown / expired / used ─▶ pair_refused {reason}, close
//!                                └▶ ok: both sides show code(inviter id, joiner id, secret)
//!  each person confirms (or not) ─▶ pair_confirm {accepted} both ways
//!  Confirmation: both accepted ─▶ each trusts the other's key (and keeps a link to it)
//!                either refused ─▶ nothing is trusted anywhere
//! ```
//!
//! The code binds the keys each side saw in the QUIC handshake to the secret: a device in the
//! middle holding the ticket would show a different code on one side, because its key is not
//! the one the other side sees.

use std::{
    collections::HashMap,
    time::{SystemTime, UNIX_EPOCH},
};

use ring::digest::{SHA256, digest};
use serde::{Deserialize, Deserializer, Serialize};

use super::address::WanAddress;
use crate::identity::DeviceId;

/// The ALPN of a pairing stream.
pub(crate) const PAIR_ALPN: &[u8] = b"rrt-pair/1";
/// Invitations kept at once; the oldest goes first beyond this.
const MAX_INVITATIONS: usize = 64;

/// A message of a pairing stream (rrt-wire frames, like any link).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PairMessage {
    /// The joiner's first message: the ticket's secret, its name and how to reach it.
    PairRequest {
        /// The ticket's secret, 32 hexadecimal digits.
        secret: String,
        /// The joiner's device name (a label).
        device: String,
        /// Relay URLs the joiner is reachable through.
        relays: Vec<String>,
        /// The joiner's direct addresses.
        addrs: Vec<std::net::SocketAddr>,
    },
    /// The inviter's answer to a request it accepts for confirmation: its name.
    PairOffer {
        /// The inviter's device name (a label).
        device: String,
    },
    /// The invitation does not stand; the stream closes.
    PairRefused {
        /// Why, for the person.
        reason: String,
    },
    /// This side's person compared the codes and said yes or no.
    PairConfirm {
        /// Whether they match, as the person said.
        accepted: bool,
    },
}

/// The `type` of every [`PairMessage`].
pub const PAIR_MESSAGE_TYPES: [&str; 4] =
    ["pair_request", "pair_offer", "pair_refused", "pair_confirm"];

impl rrt_wire::Protocol for PairMessage {
    fn knows(kind: &str) -> bool {
        PAIR_MESSAGE_TYPES.contains(&kind)
    }

    fn deserialize_kind<'de, D: Deserializer<'de>>(_: &str, from: D) -> Result<Self, D::Error> {
        Self::deserialize(from)
    }
}

/// Why an invitation does not stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No invitation has this secret (never made here, or made by a daemon since restarted).
    #[error("no such invitation (it was made by another device, or before a restart)")]
    Unknown,
    /// It expired.
    #[error("the invitation expired; ask for a new one (`rrt invite`)")]
    Expired,
    /// It was used already: a ticket pairs once.
    #[error("the invitation was used already; a ticket pairs one device once")]
    Used,
}

#[derive(Debug)]
struct Invitation<T> {
    expires_ms: u64,
    /// Who asked for it, until a device redeems it (then `None`: used).
    asker: Option<T>,
}

/// The invitations this device made, by the hash of their secret, each with its asker `T`
/// (where its events go), which is dropped with it.
#[derive(Debug)]
pub(crate) struct Invitations<T> {
    open: HashMap<[u8; 32], Invitation<T>>,
}

impl<T> Default for Invitations<T> {
    fn default() -> Self {
        Self {
            open: HashMap::new(),
        }
    }
}

impl<T> Invitations<T> {
    /// Records an invitation with `secret` for `asker`, standing until `expires_ms`. Expired
    /// ones go (a used one stays, to be refused as used rather than unknown, until it would
    /// have expired); beyond 64, the one expiring first goes.
    pub(crate) fn create(&mut self, secret: [u8; 16], expires_ms: u64, now_ms: u64, asker: T) {
        self.open
            .retain(|_, invitation| invitation.expires_ms > now_ms);
        if self.open.len() >= MAX_INVITATIONS
            && let Some(oldest) = self
                .open
                .iter()
                .min_by_key(|(_, invitation)| invitation.expires_ms)
                .map(|(key, _)| *key)
        {
            self.open.remove(&oldest);
        }
        self.open.insert(
            key(&secret),
            Invitation {
                expires_ms,
                asker: Some(asker),
            },
        );
    }

    /// Uses the invitation with `secret` at `now_ms` — once, before it expires — and hands over
    /// its asker.
    pub(crate) fn redeem(&mut self, secret: &[u8], now_ms: u64) -> Result<T, Refusal> {
        let invitation = self.open.get_mut(&key(secret)).ok_or(Refusal::Unknown)?;
        if invitation.asker.is_none() {
            return Err(Refusal::Used);
        }
        if now_ms >= invitation.expires_ms {
            return Err(Refusal::Expired);
        }
        invitation.asker.take().ok_or(Refusal::Used)
    }
}

fn key(secret: &[u8]) -> [u8; 32] {
    let mut key = [0; 32];
    key.copy_from_slice(digest(&SHA256, secret).as_ref());
    key
}

/// The six digits both people compare, as `123 456`: SHA-256 of a label, the inviter's and the
/// joiner's keys and the secret, its first four bytes read big-endian, modulo a million.
pub(crate) fn verification_code(inviter: DeviceId, joiner: DeviceId, secret: &[u8]) -> String {
    let message = [
        b"rrt pairing code".as_slice(),
        inviter.as_bytes(),
        joiner.as_bytes(),
        secret,
    ]
    .concat();
    let hash = digest(&SHA256, &message);
    let bytes = hash.as_ref();
    let number = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) % 1_000_000;
    format!("{:03} {:03}", number / 1000, number % 1000)
}

/// One pairing's decision: each side's person, and the other side's answer.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Confirmation {
    ours: Option<bool>,
    theirs: Option<bool>,
}

/// What a pairing came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Still waiting for a person.
    Pending,
    /// Both said yes: trust each other.
    Paired,
    /// Our person said no.
    RefusedHere,
    /// The other side's person said no.
    RefusedThere,
}

impl Confirmation {
    /// Our person answered.
    pub(crate) fn ours(&mut self, accepted: bool) -> Decision {
        self.ours.get_or_insert(accepted);
        self.decision()
    }

    /// The other side answered.
    pub(crate) fn theirs(&mut self, accepted: bool) -> Decision {
        self.theirs.get_or_insert(accepted);
        self.decision()
    }

    /// Where it stands.
    pub(crate) fn decision(&self) -> Decision {
        match (self.ours, self.theirs) {
            (Some(false), _) => Decision::RefusedHere,
            (_, Some(false)) => Decision::RefusedThere,
            (Some(true), Some(true)) => Decision::Paired,
            _ => Decision::Pending,
        }
    }
}

/// The longest name or relay URL kept from another device, in bytes.
const MAX_NAME: usize = 256;
/// How many relays, and how many addresses, are kept from another device.
const MAX_ADDRESSES: usize = 16;

/// A name from the other device, cut to 256 bytes (at a character's edge): it is shown and kept
/// in the trust store, so a peer cannot make either hold megabytes.
pub(crate) fn label(name: &str) -> String {
    let mut end = name.len().min(MAX_NAME);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_owned()
}

/// An address from the other device, kept to 16 relays (of at most 256 bytes each) and 16
/// addresses: it is stored and dialed.
pub(crate) fn bounded(address: WanAddress) -> WanAddress {
    WanAddress {
        relays: address
            .relays
            .into_iter()
            .filter(|relay| relay.len() <= MAX_NAME)
            .take(MAX_ADDRESSES)
            .collect(),
        addrs: address.addrs.into_iter().take(MAX_ADDRESSES).collect(),
    }
}

/// Milliseconds since the Unix epoch now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

/// The secret as its 32 hexadecimal digits, and back.
pub(crate) fn secret_hex(secret: &[u8]) -> String {
    secret.iter().map(|byte| format!("{byte:02x}")).collect()
}

pub(crate) fn secret_from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invitation_pairs_once_and_not_after_it_expires() {
        let mut invitations = Invitations::default();
        invitations.create([1; 16], 1_000, 0, "first asker");
        invitations.create([2; 16], 1_000, 0, "second asker");
        assert_eq!(invitations.redeem(&[3; 16], 10), Err(Refusal::Unknown));
        assert_eq!(invitations.redeem(&[1; 16], 10), Ok("first asker"));
        assert_eq!(invitations.redeem(&[1; 16], 20), Err(Refusal::Used));
        assert_eq!(invitations.redeem(&[2; 16], 1_000), Err(Refusal::Expired));
        // Expired invitations (and their askers) go when the next one is made.
        invitations.create([4; 16], 3_000, 2_000, "third asker");
        assert_eq!(invitations.redeem(&[2; 16], 2_001), Err(Refusal::Unknown));
    }

    #[test]
    fn invitations_are_bounded_and_the_oldest_goes_first() {
        let mut invitations = Invitations::default();
        for n in 0..=MAX_INVITATIONS as u8 {
            invitations.create([n; 16], 1_000 + u64::from(n), 0, n);
        }
        assert_eq!(invitations.redeem(&[0; 16], 1), Err(Refusal::Unknown));
        assert_eq!(invitations.redeem(&[1; 16], 1), Ok(1));
    }

    #[test]
    fn the_code_depends_on_both_keys_and_the_secret() {
        let (a, b, c) = (
            DeviceId::from_bytes([1; 32]),
            DeviceId::from_bytes([2; 32]),
            DeviceId::from_bytes([3; 32]),
        );
        let code = verification_code(a, b, &[5; 16]);
        assert_eq!(code.len(), 7);
        assert_eq!(code, verification_code(a, b, &[5; 16]));
        // A device in the middle (c) shows each side another code.
        assert_ne!(code, verification_code(a, c, &[5; 16]));
        assert_ne!(code, verification_code(c, b, &[5; 16]));
        assert_ne!(code, verification_code(a, b, &[6; 16]));
    }

    #[test]
    fn a_pairing_needs_both_yeses_and_a_no_anywhere_ends_it() {
        let mut both = Confirmation::default();
        assert_eq!(both.ours(true), Decision::Pending);
        assert_eq!(both.theirs(true), Decision::Paired);
        let mut here = Confirmation::default();
        assert_eq!(here.theirs(true), Decision::Pending);
        assert_eq!(here.ours(false), Decision::RefusedHere);
        let mut there = Confirmation::default();
        assert_eq!(there.ours(true), Decision::Pending);
        assert_eq!(there.theirs(false), Decision::RefusedThere);
        // A second answer changes nothing.
        assert_eq!(there.theirs(true), Decision::RefusedThere);
    }

    #[test]
    fn what_another_device_says_of_itself_is_bounded() {
        assert_eq!(label("laptop"), "laptop");
        let long = "é".repeat(200);
        let cut = label(&long);
        assert!(cut.len() <= MAX_NAME && long.starts_with(&cut));
        let flood = WanAddress {
            relays: (0..100)
                .map(|n| format!("https://relay{n}.example/"))
                .chain(["x".repeat(10_000)])
                .collect(),
            addrs: (0..100u16)
                .map(|port| std::net::SocketAddr::from(([198, 18, 0, 1], port)))
                .collect(),
        };
        let kept = bounded(flood);
        assert_eq!((kept.relays.len(), kept.addrs.len()), (16, 16));
        assert!(kept.relays.iter().all(|relay| relay.len() <= MAX_NAME));
    }

    #[test]
    fn secrets_round_trip_as_hex() {
        assert_eq!(secret_hex(&[0xab, 0x01]), "ab01");
        assert_eq!(secret_from_hex("ab01"), Some(vec![0xab, 0x01]));
        assert_eq!(secret_from_hex("abc"), None);
        assert_eq!(secret_from_hex("zz"), None);
        assert_eq!(secret_from_hex("é1"), None);
    }
}
