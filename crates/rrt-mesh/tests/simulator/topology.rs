//! Who can reach whom: random connected, sparse graphs.
//!
//! Forwarding is what the simulator tests, so most pairs of nodes must not be neighbours: a
//! random spanning tree keeps the graph connected with the fewest edges (values cross many
//! hops), and a few extra edges add cycles (a flood must stop by itself, and arrive by several
//! paths in any order). Chains (the longest paths), rings (two paths everywhere) and stars (one
//! relay for all) come up as special cases.
//!
//! Some nodes share a host: groups of 2–4 instances that all link to each other (a full mesh
//! within the host, over same-host links, which the sync machines see as `Neighbour::Clique`).
//! The sparse shapes are drawn over hosts, each edge between hosts joining a random instance of
//! each, so the graph stays connected and sparse across hosts.

use std::collections::BTreeSet;

/// The shape of a run's graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// A random spanning tree plus a few random edges.
    Sparse,
    /// 0 – 1 – 2 – … – n-1.
    Chain,
    /// A chain closed into a cycle.
    Ring,
    /// Node 0 linked to every other.
    Star,
}

impl Shape {
    /// Mostly sparse random graphs, with each special case now and then.
    pub(crate) fn pick(rng: &mut fastrand::Rng) -> Self {
        match rng.u32(0..10) {
            0 => Self::Chain,
            1 => Self::Ring,
            2 => Self::Star,
            _ => Self::Sparse,
        }
    }
}

/// A run's graph.
#[derive(Debug)]
pub(crate) struct Graph {
    /// Each as (lower, higher) node.
    pub(crate) edges: Vec<(usize, usize)>,
    /// The host of each node.
    pub(crate) host: Vec<usize>,
}

impl Graph {
    /// Whether `edge` joins two instances of one host.
    pub(crate) fn same_host(&self, edge: usize) -> bool {
        let (a, b) = self.edges[edge];
        self.host[a] == self.host[b]
    }
}

/// A connected graph of `nodes` nodes: `shape` across hosts, a full mesh within each host.
pub(crate) fn graph(shape: Shape, nodes: usize, rng: &mut fastrand::Rng) -> Graph {
    let mut order: Vec<usize> = (0..nodes).collect();
    rng.shuffle(&mut order);
    let mut members: Vec<Vec<usize>> = Vec::new();
    let mut rest = &order[..];
    while !rest.is_empty() {
        let size = if rest.len() >= 2 && rng.u32(0..4) == 0 {
            rng.usize(2..=rest.len().min(4))
        } else {
            1
        };
        let (host, after) = rest.split_at(size);
        members.push(host.to_vec());
        rest = after;
    }
    let mut host = vec![0; nodes];
    let mut edges = BTreeSet::new();
    for (index, instances) in members.iter().enumerate() {
        for (i, &a) in instances.iter().enumerate() {
            host[a] = index;
            for &b in &instances[i + 1..] {
                edges.insert((a.min(b), a.max(b)));
            }
        }
    }
    for (a, b) in self::edges(shape, members.len(), rng) {
        let a = members[a][rng.usize(0..members[a].len())];
        let b = members[b][rng.usize(0..members[b].len())];
        edges.insert((a.min(b), a.max(b)));
    }
    Graph {
        edges: edges.into_iter().collect(),
        host,
    }
}

/// The edges of a connected graph of `nodes` nodes of `shape`, each as (lower, higher) index.
fn edges(shape: Shape, nodes: usize, rng: &mut fastrand::Rng) -> Vec<(usize, usize)> {
    let mut edges = BTreeSet::new();
    let mut add = |a: usize, b: usize| {
        if a != b {
            edges.insert((a.min(b), a.max(b)));
        }
    };
    match shape {
        Shape::Chain => (1..nodes).for_each(|n| add(n - 1, n)),
        Shape::Ring => {
            (1..nodes).for_each(|n| add(n - 1, n));
            if nodes > 2 {
                add(nodes - 1, 0);
            }
        }
        Shape::Star => (1..nodes).for_each(|n| add(0, n)),
        Shape::Sparse => {
            // Nodes join in a random order, each linking to one that joined before it.
            let mut order: Vec<usize> = (0..nodes).collect();
            rng.shuffle(&mut order);
            for joined in 1..nodes {
                add(order[joined], order[rng.usize(0..joined)]);
            }
            for _ in 0..rng.usize(0..=nodes / 5) {
                add(rng.usize(0..nodes), rng.usize(0..nodes));
            }
        }
    }
    edges.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connected(nodes: usize, edges: &[(usize, usize)]) -> bool {
        let mut reached = vec![false; nodes];
        let mut stack = vec![0];
        while let Some(node) = stack.pop() {
            if std::mem::replace(&mut reached[node], true) {
                continue;
            }
            for &(a, b) in edges {
                if a == node {
                    stack.push(b);
                } else if b == node {
                    stack.push(a);
                }
            }
        }
        reached.into_iter().all(|reached| reached)
    }

    #[test]
    fn every_shape_is_connected_and_sparse() {
        let mut rng = fastrand::Rng::with_seed(7);
        for shape in [Shape::Sparse, Shape::Chain, Shape::Ring, Shape::Star] {
            for nodes in [1, 2, 3, 50] {
                let edges = edges(shape, nodes, &mut rng);
                assert!(connected(nodes, &edges), "{shape:?} of {nodes}");
                assert!(edges.len() <= nodes + nodes / 5, "{shape:?} of {nodes}");
            }
        }
    }

    #[test]
    fn hosts_are_full_meshes_on_a_connected_sparse_graph() {
        let mut rng = fastrand::Rng::with_seed(7);
        for shape in [Shape::Sparse, Shape::Chain, Shape::Ring, Shape::Star] {
            for nodes in [1, 2, 3, 50] {
                let graph = graph(shape, nodes, &mut rng);
                assert!(connected(nodes, &graph.edges), "{shape:?} of {nodes}");
                let hosts = graph.host.iter().max().map_or(0, |last| last + 1);
                let mut within = 0;
                for a in 0..nodes {
                    for b in a + 1..nodes {
                        if graph.host[a] == graph.host[b] {
                            within += 1;
                            assert!(graph.edges.contains(&(a, b)), "{a} and {b} share a host");
                        }
                    }
                }
                for host in 0..hosts {
                    let size = graph.host.iter().filter(|h| **h == host).count();
                    assert!((1..=4).contains(&size), "host {host} of {size}");
                }
                let across = (0..graph.edges.len())
                    .filter(|edge| !graph.same_host(*edge))
                    .count();
                assert_eq!(across + within, graph.edges.len());
                assert!(across <= hosts + hosts / 5, "{shape:?} of {nodes}");
            }
        }
    }
}
