//! Who can reach whom: random connected, sparse graphs.
//!
//! Forwarding is what the simulator tests, so most pairs of nodes must not be neighbours: a
//! random spanning tree keeps the graph connected with the fewest edges (values cross many
//! hops), and a few extra edges add cycles (a flood must stop by itself, and arrive by several
//! paths in any order). Chains (the longest paths), rings (two paths everywhere) and stars (one
//! relay for all) come up as special cases.

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

/// The edges of a connected graph of `nodes` nodes of `shape`, each as (lower, higher) index.
pub(crate) fn edges(shape: Shape, nodes: usize, rng: &mut fastrand::Rng) -> Vec<(usize, usize)> {
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
}
