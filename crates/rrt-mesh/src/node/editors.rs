//! The node's side of presence: where the editors of its documents are, its own (the TUI's, an
//! application's) and its peers'. The rules are `rrt_sync::PresenceSync`'s; this drives it —
//! words out to the network, peers' words in, expiry on the wall clock, and a
//! [`NodeEvent::Presence`] whenever a document's editors changed.

use std::time::{Duration, Instant};

use rrt_reactor::Rrt;
use rrt_sync::{Arrival, Neighbour, Presence, PresenceMessage, PresenceSync};
use tokio::sync::broadcast;
use uuid::Uuid;

use super::NodeEvent;
use crate::{
    network::{NetCommand, NetworkWorker},
    wall_clock::wall_ms,
};

/// The editors of every document.
#[derive(Debug, Default)]
pub(super) struct Editors {
    sync: PresenceSync,
}

impl Editors {
    /// An editor of this node said where it is (or that it is gone).
    pub(super) fn local(
        &mut self,
        presence: Presence,
        net: &Rrt<NetworkWorker>,
        events: &broadcast::Sender<NodeEvent>,
    ) {
        let document = presence.document.clone();
        send(net, self.sync.local(presence).into());
        let _ = events.send(NodeEvent::Presence { document });
    }

    /// A peer's word.
    pub(super) fn receive(
        &mut self,
        from: Uuid,
        message: PresenceMessage,
        arrival: Arrival,
        net: &Rrt<NetworkWorker>,
        events: &broadcast::Sender<NodeEvent>,
    ) {
        match self.sync.handle(from, message, arrival, wall_ms()) {
            Ok(heard) => {
                if let Some(forward) = heard.forward {
                    send(net, forward.into());
                }
                if let Some(document) = heard.changed {
                    let _ = events.send(NodeEvent::Presence { document });
                }
            }
            Err(refused) => tracing::debug!(%from, %refused, "a peer's presence was not taken"),
        }
    }

    /// A link came up: it hears where this node's editors are.
    pub(super) fn peer_up(&mut self, peer: Uuid, neighbour: Neighbour, net: &Rrt<NetworkWorker>) {
        for outgoing in self.sync.peer_up(peer, neighbour) {
            send(net, outgoing.into());
        }
    }

    pub(super) fn peer_down(&mut self, peer: Uuid) {
        self.sync.peer_down(peer);
    }

    /// When the next word expires, on the monotonic clock.
    pub(super) fn deadline(&self) -> Option<Instant> {
        let at = self.sync.next_expiry()?;
        Some(Instant::now() + Duration::from_millis(at.saturating_sub(wall_ms())))
    }

    /// Forgets what expired.
    pub(super) fn expire(&mut self, events: &broadcast::Sender<NodeEvent>) {
        for document in self.sync.expire(wall_ms()) {
            let _ = events.send(NodeEvent::Presence { document });
        }
    }

    /// The editors of `document`.
    pub(super) fn of(&self, document: &str) -> Vec<Presence> {
        self.sync.editors(document).into_iter().cloned().collect()
    }
}

fn send(net: &Rrt<NetworkWorker>, command: NetCommand) {
    if let Err(error) = net.send(command) {
        tracing::debug!(command = ?error.0, "the network reactor is stopped; presence dropped");
    }
}
