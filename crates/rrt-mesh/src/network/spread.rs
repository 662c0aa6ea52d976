//! The mesh's shape, and what follows from it: which way a broadcast goes, which same-host
//! links are a clique, and which links a large mesh lets go. A sans-IO rule book the worker
//! consults; every rule is a unit test.
//!
//! * **Full mesh** (up to [`DEFAULT_SWARM_ABOVE`] members, or `--swarm-above`): every instance
//!   links to every other, and a broadcast goes straight to each — one hop, the fastest there
//!   is while links are few.
//! * **Swarm** (more members): links follow the swarm's partial view (`crate::proto::swarm`), and a
//!   broadcast goes on its tree — plus, directly, to the up peers that do not speak the swarm
//!   (clients, older versions), which the tree would miss. Links the swarm does not use — the
//!   full mesh's after a switch, the brief ones of joins and shuffles, discovered hosts' — but
//!   `--peer` targets are closed
//!   once they have lingered [`LINGER`]: time for the catch-up both ways (anti-entropy), and
//!   for the other end to see the same shape.
//!
//! Every instance decides the shape alone, from the members it counts (the roster, or the
//! instances in the mesh directory if that says more), so the instances of a mesh agree once
//! their counts do; while they do not, both shapes still deliver — what arrives directly is
//! passed on into the tree, and a tree's deliveries reach full-mesh instances too, since every
//! instance is in the swarm.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use uuid::Uuid;

use super::{
    api::{Reach, Shape},
    hub::Topology,
};
use crate::proto::membership::{LinkId, PeerInfo};

/// The `hello` capability of an instance in the swarm (it reads `gossip` and `roster`).
pub const SWARM: &str = "swarm";
/// Above this many members, a mesh is a swarm.
pub const DEFAULT_SWARM_ABOVE: usize = 16;
/// How long a swarm keeps a same-host link it does not use.
pub(super) const LINGER: Duration = Duration::from_secs(5);

/// Who a message is for.
#[derive(Debug, Clone, Copy)]
pub(super) enum Recipients<'a> {
    /// Every up peer but this one.
    AllBut(Option<Uuid>),
    /// These peers.
    Only(&'a [Uuid]),
}

/// Where a message goes.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Route {
    /// Onto the swarm's tree.
    pub(super) tree: bool,
    /// Straight down these links.
    pub(super) links: Vec<LinkId>,
}

/// The shape of one instance's mesh.
#[derive(Debug)]
pub(super) struct Spread {
    above: usize,
    shape: Shape,
    /// When each up link came up.
    since: HashMap<LinkId, Instant>,
}

impl Spread {
    /// A mesh of `topology` that is a swarm above `above` members, now of `members`. A hub is
    /// a star whatever its size: only the mesh topology becomes a swarm.
    pub(super) fn new(topology: Topology, above: usize, members: usize) -> Self {
        let mut spread = Self {
            above: match topology {
                Topology::Mesh => above,
                Topology::Hub => usize::MAX,
            },
            shape: Shape::FullMesh,
            since: HashMap::new(),
        };
        spread.count(members);
        spread
    }

    pub(super) fn shape(&self) -> Shape {
        self.shape
    }

    /// The mesh has `members` (this instance included): the new shape, if it changed.
    pub(super) fn count(&mut self, members: usize) -> Option<Shape> {
        let shape = if members > self.above {
            Shape::Swarm
        } else {
            Shape::FullMesh
        };
        (shape != self.shape).then(|| {
            self.shape = shape;
            shape
        })
    }

    pub(super) fn link_up(&mut self, link: LinkId, now: Instant) {
        self.since.insert(link, now);
    }

    pub(super) fn link_down(&mut self, link: LinkId) {
        self.since.remove(&link);
    }

    /// Where a message for `to` goes, given the up peers.
    pub(super) fn route<'a>(
        &self,
        up: impl Iterator<Item = (LinkId, &'a PeerInfo)>,
        to: Recipients<'_>,
    ) -> Route {
        let mut route = Route {
            tree: self.shape == Shape::Swarm,
            links: Vec::new(),
        };
        for (link, peer) in up {
            let wanted = match to {
                Recipients::AllBut(except) => except != Some(peer.id),
                Recipients::Only(peers) => peers.contains(&peer.id),
            };
            if wanted && !(route.tree && speaks_swarm(peer)) && !route.links.contains(&link) {
                route.links.push(link);
            }
        }
        route
    }

    /// Whether `peer`, reached so, is a member of this instance's clique: all the full-mesh
    /// instances of this host, which send what they send to each other themselves.
    pub(super) fn clique(&self, reach: Reach, topology: Topology, peer: &PeerInfo) -> bool {
        self.shape == Shape::FullMesh
            && reach == Reach::SameHost
            && topology == Topology::Mesh
            && peer.capabilities.iter().any(|c| c == rrt_sync::FULL_MESH)
    }

    /// The links of swarm instances that the swarm does not use and that have lingered long
    /// enough, but for `--peer` targets (`configured`, kept in every shape): to close.
    pub(super) fn lingering<'a>(
        &self,
        up: impl Iterator<Item = (LinkId, &'a PeerInfo, bool)>,
        is_neighbour: impl Fn(Uuid) -> bool,
        now: Instant,
    ) -> Vec<LinkId> {
        if self.shape != Shape::Swarm {
            return Vec::new();
        }
        up.filter(|(link, peer, configured)| {
            !configured
                && speaks_swarm(peer)
                && !is_neighbour(peer.id)
                && self
                    .since
                    .get(link)
                    .is_some_and(|since| now.saturating_duration_since(*since) >= LINGER)
        })
        .map(|(link, ..)| link)
        .collect()
    }
}

/// Whether `peer` is in the swarm.
pub(super) fn speaks_swarm(peer: &PeerInfo) -> bool {
    peer.capabilities.iter().any(|c| c == SWARM)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u128, capabilities: &[&str]) -> PeerInfo {
        PeerInfo {
            id: Uuid::from_u128(n),
            name: format!("p{n}"),
            capabilities: capabilities.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    #[test]
    fn the_shape_follows_the_count_both_ways() {
        let mut spread = Spread::new(Topology::Mesh, 16, 1);
        assert_eq!(spread.shape(), Shape::FullMesh);
        assert_eq!(spread.count(16), None);
        assert_eq!(spread.count(17), Some(Shape::Swarm));
        assert_eq!(spread.count(30), None);
        assert_eq!(spread.count(16), Some(Shape::FullMesh));
        assert_eq!(Spread::new(Topology::Mesh, 16, 100).shape(), Shape::Swarm);
        let mut hub = Spread::new(Topology::Hub, 16, 100);
        assert_eq!(hub.shape(), Shape::FullMesh, "a hub is never a swarm");
        assert_eq!(hub.count(1000), None);
    }

    #[test]
    fn a_full_mesh_sends_down_links_and_a_swarm_on_the_tree_and_to_those_outside_it() {
        let peers = [peer(1, &[SWARM]), peer(2, &[]), peer(3, &[SWARM])];
        let up = || peers.iter().enumerate();
        let mesh = Spread::new(Topology::Mesh, 16, 3);
        assert_eq!(
            mesh.route(up(), Recipients::AllBut(Some(Uuid::from_u128(3)))),
            Route {
                tree: false,
                links: vec![0, 1]
            }
        );
        let swarm = Spread::new(Topology::Mesh, 2, 3);
        assert_eq!(
            swarm.route(up(), Recipients::AllBut(None)),
            Route {
                tree: true,
                links: vec![1]
            },
            "the client without the swarm gets it directly"
        );
        let only = [Uuid::from_u128(1)];
        assert_eq!(
            swarm.route(up(), Recipients::Only(&only)),
            Route {
                tree: true,
                links: vec![]
            }
        );
    }

    #[test]
    fn only_a_full_mesh_of_one_host_is_a_clique() {
        let sibling = peer(1, &[rrt_sync::FULL_MESH, SWARM]);
        let mesh = Spread::new(Topology::Mesh, 16, 3);
        assert!(mesh.clique(Reach::SameHost, Topology::Mesh, &sibling));
        assert!(!mesh.clique(Reach::Network, Topology::Mesh, &sibling));
        assert!(!mesh.clique(Reach::SameHost, Topology::Mesh, &peer(2, &[])));
        assert!(!Spread::new(Topology::Mesh, 2, 3).clique(
            Reach::SameHost,
            Topology::Mesh,
            &sibling
        ));
    }

    #[test]
    fn a_swarm_lets_go_of_unused_links_once_they_lingered() {
        let now = Instant::now();
        let peers = [
            (0, peer(1, &[SWARM]), false),
            (1, peer(2, &[SWARM]), false),
            (2, peer(3, &[]), false),
            (3, peer(4, &[SWARM]), true),
            (4, peer(5, &[SWARM]), false),
        ];
        let mut swarm = Spread::new(Topology::Mesh, 2, 3);
        for (link, ..) in &peers {
            swarm.link_up(*link, now);
        }
        let up = || {
            peers
                .iter()
                .map(|(link, p, configured)| (*link, p, *configured))
        };
        let neighbour = |id: Uuid| id == Uuid::from_u128(2);
        assert!(swarm.lingering(up(), neighbour, now).is_empty(), "too soon");
        assert_eq!(
            swarm.lingering(up(), neighbour, now + LINGER),
            vec![0, 4],
            "not the neighbour, the client, nor a --peer target"
        );
        let mesh = Spread::new(Topology::Mesh, 16, 3);
        assert!(mesh.lingering(up(), neighbour, now + LINGER).is_empty());
    }
}
