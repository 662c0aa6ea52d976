//! Which paired devices the wide-area transport keeps a link to, and when it dials them — as
//! sans-IO rules, driven with the time.
//!
//! Of two paired devices, the one with the lower id dials (both know both ids, so exactly one
//! dials and the two never race to make two links). A dial that fails, or a link that ends, is
//! retried after a delay from 250 ms doubling to a minute; a link that lived a minute resets
//! it. The doubling also covers the link the network reactor closes because the same peer is up
//! on the LAN (the LAN's link wins): such a device is dialed again about once a minute, which
//! is also how the WAN link returns when the LAN one goes.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use super::address::WanAddress;
use crate::identity::DeviceId;

const FIRST_RETRY: Duration = Duration::from_millis(250);
const LAST_RETRY: Duration = Duration::from_secs(60);
/// A link that lived this long was healthy: the next failure starts from the first delay.
const HEALTHY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No link; dial at this instant.
    Waiting(Instant),
    Dialing,
    Linked(Instant),
}

#[derive(Debug)]
struct Kept {
    address: WanAddress,
    state: State,
    retry: Duration,
}

/// The devices kept linked, and their dials.
#[derive(Debug)]
pub(crate) struct Keeper {
    ours: DeviceId,
    kept: HashMap<DeviceId, Kept>,
}

impl Keeper {
    pub(crate) fn new(ours: DeviceId) -> Self {
        Self {
            ours,
            kept: HashMap::new(),
        }
    }

    /// Keeps a link to `device` at `address` (replacing what was known of its address). Only a
    /// device with a higher id is dialed; a lower one dials us.
    pub(crate) fn keep(&mut self, device: DeviceId, address: WanAddress, now: Instant) {
        if device <= self.ours {
            return;
        }
        match self.kept.get_mut(&device) {
            Some(kept) => kept.address = address,
            None => {
                self.kept.insert(
                    device,
                    Kept {
                        address,
                        state: State::Waiting(now),
                        retry: FIRST_RETRY,
                    },
                );
            }
        }
    }

    /// Stops keeping every device `keep` says no to (a link stays until it ends).
    pub(crate) fn retain(&mut self, keep: impl Fn(DeviceId) -> bool) {
        self.kept.retain(|device, _| keep(*device));
    }

    /// A device due for a dial at `now`, now being dialed.
    pub(crate) fn poll_dial(&mut self, now: Instant) -> Option<(DeviceId, WanAddress)> {
        let (device, kept) = self
            .kept
            .iter_mut()
            .find(|(_, kept)| matches!(kept.state, State::Waiting(at) if at <= now))?;
        kept.state = State::Dialing;
        Some((*device, kept.address.clone()))
    }

    /// A link to `device` is up (dialed, or accepted from it).
    pub(crate) fn linked(&mut self, device: DeviceId, now: Instant) {
        if let Some(kept) = self.kept.get_mut(&device) {
            kept.state = State::Linked(now);
        }
    }

    /// A dial of `device` failed, or its link ended: dial again after the delay.
    pub(crate) fn unlinked(&mut self, device: DeviceId, now: Instant) {
        let Some(kept) = self.kept.get_mut(&device) else {
            return;
        };
        if matches!(kept.state, State::Linked(since) if now.duration_since(since) >= HEALTHY) {
            kept.retry = FIRST_RETRY;
        }
        kept.state = State::Waiting(now + kept.retry);
        kept.retry = (kept.retry * 2).min(LAST_RETRY);
    }

    /// When the next dial is due.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.kept
            .values()
            .filter_map(|kept| match kept.state {
                State::Waiting(at) => Some(at),
                _ => None,
            })
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address() -> WanAddress {
        WanAddress {
            relays: vec!["http://198.18.0.1:3340/".to_owned()],
            addrs: Vec::new(),
        }
    }

    #[test]
    fn only_the_lower_id_dials() {
        let now = Instant::now();
        let mut keeper = Keeper::new(DeviceId::from_bytes([5; 32]));
        keeper.keep(DeviceId::from_bytes([1; 32]), address(), now);
        assert_eq!(keeper.poll_dial(now), None);
        assert_eq!(keeper.poll_timeout(), None);
        keeper.keep(DeviceId::from_bytes([9; 32]), address(), now);
        assert_eq!(
            keeper.poll_dial(now).map(|(device, _)| device),
            Some(DeviceId::from_bytes([9; 32]))
        );
        assert_eq!(keeper.poll_dial(now), None, "dialing already");
    }

    #[test]
    fn failures_back_off_to_a_minute_and_a_healthy_link_resets_it() {
        let mut now = Instant::now();
        let peer = DeviceId::from_bytes([9; 32]);
        let mut keeper = Keeper::new(DeviceId::from_bytes([1; 32]));
        keeper.keep(peer, address(), now);
        let mut delays = Vec::new();
        for _ in 0..12 {
            assert!(keeper.poll_dial(now).is_some());
            keeper.unlinked(peer, now);
            let at = keeper.poll_timeout().expect("a retry");
            delays.push(at - now);
            assert_eq!(keeper.poll_dial(now), None, "not before its time");
            now = at;
        }
        assert_eq!(delays[0], FIRST_RETRY);
        assert_eq!(delays[1], FIRST_RETRY * 2);
        assert_eq!(*delays.last().expect("delays"), LAST_RETRY);
        // A link that lived long enough starts the delays over.
        assert!(keeper.poll_dial(now).is_some());
        keeper.linked(peer, now);
        assert_eq!(keeper.poll_timeout(), None);
        now += HEALTHY;
        keeper.unlinked(peer, now);
        assert_eq!(keeper.poll_timeout(), Some(now + FIRST_RETRY));
        keeper.retain(|device| device != peer);
        assert_eq!(keeper.poll_timeout(), None);
    }
}
