//! What the sync machines hand their driver to send, and the one forwarding rule they share.
//!
//! Every replica forwards what changed its own state to its other peers: that is what carries a
//! copy from A to C when only A–B and B–C work (a firewall, client isolation, a host only one side
//! lists). What changes nothing (a duplicate, an older entry, an update already applied) is not
//! forwarded, so a flood ends by itself, in cycles too.
//!
//! Flooding costs one message per link per change, which in a full mesh of n replicas is about
//! n² messages where n would do. The common full mesh is the instances of one host: they find
//! each other through one directory and all link to each other, a *clique*. What a clique member
//! sends, it sends to every member itself (a copy made there, or a forward of something heard from
//! outside), so nothing heard from a member is forwarded to another member; it still goes to the
//! replica's peers outside the clique. A clique link that drops for a moment is repaired by the
//! catch-up every link does when it comes up.
//!
//! ```text
//! heard from ──▶ forwarded to
//! outside        every peer but the sender
//! clique member  every peer outside the clique
//! a tree         nobody
//! ```
//!
//! In a large mesh, peers are linked by a partial view and what is new travels on a broadcast
//! tree (Plumtree, in `rrt-mesh`) that carries it to every replica itself: what arrives that way
//! ([`Arrival::Spread`]) is never forwarded. What arrives directly from a peer — its catch-up
//! after a partition, say — is forwarded as above, and the driver hands the forward to the tree.

use std::collections::BTreeMap;

use uuid::Uuid;

/// A message `M` (the machine's own type) for the network layer.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing<M> {
    /// To every peer but `except`.
    Broadcast {
        /// The message.
        message: M,
        /// The peer a forwarded update came from, which must not get it back.
        except: Option<Uuid>,
    },
    /// To exactly these peers (a forward that leaves out the sender's clique).
    Multicast {
        /// The peers.
        to: Vec<Uuid>,
        /// The message.
        message: M,
    },
    /// To one peer.
    To(Uuid, M),
}

impl<M> Outgoing<M> {
    /// The same, carrying `f` of the message (a machine's message into the wire's).
    pub fn map<N>(self, f: impl FnOnce(M) -> N) -> Outgoing<N> {
        match self {
            Outgoing::Broadcast { message, except } => Outgoing::Broadcast {
                message: f(message),
                except,
            },
            Outgoing::Multicast { to, message } => Outgoing::Multicast {
                to,
                message: f(message),
            },
            Outgoing::To(to, message) => Outgoing::To(to, f(message)),
        }
    }

    /// Whether `peer` is among the recipients.
    pub fn is_for(&self, peer: Uuid) -> bool {
        match self {
            Outgoing::Broadcast { except, .. } => *except != Some(peer),
            Outgoing::Multicast { to, .. } => to.contains(&peer),
            Outgoing::To(to, _) => *to == peer,
        }
    }

    /// The message.
    pub fn message(&self) -> &M {
        match self {
            Outgoing::Broadcast { message, .. }
            | Outgoing::Multicast { message, .. }
            | Outgoing::To(_, message) => message,
        }
    }
}

/// How a peer's message reached a replica, which decides whether the replica passes it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Over the link from the peer that sent it (a live update, a catch-up): what it changed
    /// is forwarded by the module's rule.
    Direct,
    /// Delivered by a broadcast tree, which carries it on to every replica itself: never
    /// forwarded.
    Spread,
}

/// The `hello` capability of an instance that links to every other instance of its host's mesh
/// directory, and so may be a [`Neighbour::Clique`] member for them: a client that dials only
/// some instances must not list it, or what it sends would reach only those.
pub const FULL_MESH: &str = "full_mesh";

/// Where a peer's link sits in the mesh, which decides what is forwarded over it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Neighbour {
    /// A member of this replica's clique: replicas that all link to each other (the instances of
    /// one host in a full mesh). What one member sends reaches every member directly.
    Clique,
    /// Any other peer.
    Other,
}

/// A replica's up peers, and who gets what one of them sent.
#[derive(Debug, Default)]
pub(crate) struct Neighbours(BTreeMap<Uuid, Neighbour>);

impl Neighbours {
    pub(crate) fn up(&mut self, peer: Uuid, neighbour: Neighbour) {
        self.0.insert(peer, neighbour);
    }

    pub(crate) fn down(&mut self, peer: Uuid) {
        self.0.remove(&peer);
    }

    /// `message`, which `from` sent and which changed this replica, for the peers that need it:
    /// see the module's table. `None` when none does (no other peer is up, say).
    pub(crate) fn forward<M>(
        &self,
        from: Uuid,
        arrival: Arrival,
        message: M,
    ) -> Option<Outgoing<M>> {
        if arrival == Arrival::Spread || self.0.keys().all(|peer| *peer == from) {
            return None;
        }
        if self.0.get(&from) != Some(&Neighbour::Clique) {
            return Some(Outgoing::Broadcast {
                message,
                except: Some(from),
            });
        }
        let to: Vec<Uuid> = self
            .0
            .iter()
            .filter(|(_, neighbour)| **neighbour == Neighbour::Other)
            .map(|(peer, _)| *peer)
            .collect();
        (!to.is_empty()).then_some(Outgoing::Multicast { to, message })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn ping() -> &'static str {
        "ping"
    }

    #[test]
    fn what_comes_from_outside_goes_to_everyone_but_its_sender() {
        let mut neighbours = Neighbours::default();
        neighbours.up(id(1), Neighbour::Other);
        neighbours.up(id(2), Neighbour::Clique);
        neighbours.up(id(3), Neighbour::Other);
        let forward = neighbours
            .forward(id(1), Arrival::Direct, ping())
            .expect("forwarded");
        assert!(!forward.is_for(id(1)));
        assert!(forward.is_for(id(2)) && forward.is_for(id(3)));
    }

    #[test]
    fn what_comes_from_the_clique_goes_only_outside_it() {
        let mut neighbours = Neighbours::default();
        neighbours.up(id(1), Neighbour::Clique);
        neighbours.up(id(2), Neighbour::Clique);
        neighbours.up(id(3), Neighbour::Other);
        let forward = neighbours
            .forward(id(1), Arrival::Direct, ping())
            .expect("forwarded");
        assert_eq!(
            forward,
            Outgoing::Multicast {
                to: vec![id(3)],
                message: ping()
            }
        );
        neighbours.down(id(3));
        assert_eq!(
            neighbours.forward(id(1), Arrival::Direct, ping()),
            None,
            "a clique with nobody outside forwards nothing"
        );
    }

    #[test]
    fn what_a_tree_delivered_goes_nowhere() {
        let mut neighbours = Neighbours::default();
        neighbours.up(id(1), Neighbour::Other);
        neighbours.up(id(2), Neighbour::Other);
        assert_eq!(neighbours.forward(id(1), Arrival::Spread, ping()), None);
        assert!(neighbours.forward(id(1), Arrival::Direct, ping()).is_some());
    }

    #[test]
    fn a_sender_not_known_as_up_is_treated_as_outside() {
        let mut neighbours = Neighbours::default();
        neighbours.up(id(2), Neighbour::Clique);
        let forward = neighbours
            .forward(id(1), Arrival::Direct, ping())
            .expect("forwarded");
        assert!(forward.is_for(id(2)));
        neighbours.down(id(2));
        assert_eq!(
            neighbours.forward(id(1), Arrival::Direct, ping()),
            None,
            "nobody to forward to"
        );
    }
}
