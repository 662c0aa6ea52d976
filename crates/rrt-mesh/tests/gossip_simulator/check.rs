//! What must hold once the faults stop and the mesh settles: every live node holds the same
//! clipboard value (the last-writer-wins winner), and every live node's roster counts exactly the
//! live nodes.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    fmt,
};

use rrt_sync::Stamp;
use uuid::Uuid;

use super::node::Node;

/// How far the live nodes are from agreeing.
#[derive(Debug, Default)]
pub(crate) struct Verdict {
    pub(crate) live: usize,
    /// How many live nodes hold each current value.
    pub(crate) values: BTreeMap<Option<Stamp>, usize>,
    /// Live nodes whose roster counts another number of members, by the number it counts.
    pub(crate) wrong_rosters: BTreeMap<usize, usize>,
    /// Dead members some live node's roster counts alive.
    pub(crate) ghosts: usize,
    /// Live nodes with no link at all.
    pub(crate) isolated: usize,
    /// Live nodes with an empty active view.
    pub(crate) without_neighbours: usize,
    /// The sizes of the active views' connected components, largest first: one, once the
    /// overlay is whole.
    pub(crate) components: Vec<usize>,
}

impl Verdict {
    pub(crate) fn converged(&self) -> bool {
        self.values.len() <= 1 && self.wrong_rosters.is_empty()
    }

    /// How many live nodes do not hold the newest value any live node holds.
    pub(crate) fn behind(&self) -> usize {
        let newest = self.values.last_key_value().map_or(0, |(_, n)| *n);
        self.live - newest
    }
}

pub(crate) fn converged<'a>(live: impl Iterator<Item = &'a Node>) -> Verdict {
    let live: Vec<&Node> = live.collect();
    let mut verdict = Verdict {
        live: live.len(),
        ..Verdict::default()
    };
    for node in &live {
        *verdict.values.entry(node.current()).or_default() += 1;
        if node.members() != live.len() {
            *verdict.wrong_rosters.entry(node.members()).or_default() += 1;
        }
        verdict.isolated += usize::from(node.links() == 0);
        verdict.without_neighbours += usize::from(node.neighbours() == 0);
    }
    let ids: HashSet<Uuid> = live.iter().map(|node| node.id()).collect();
    let ghosts: HashSet<Uuid> = live
        .iter()
        .flat_map(|node| node.alive_members())
        .filter(|member| !ids.contains(member))
        .collect();
    verdict.ghosts = ghosts.len();
    verdict.components = components(&live);
    verdict
}

/// The connected components of the graph of active views (union-find).
fn components(live: &[&Node]) -> Vec<usize> {
    fn root(parent: &mut HashMap<Uuid, Uuid>, mut node: Uuid) -> Uuid {
        while let Some(&up) = parent.get(&node)
            && up != node
        {
            node = up;
        }
        node
    }
    let mut parent: HashMap<Uuid, Uuid> = live.iter().map(|node| (node.id(), node.id())).collect();
    for node in live {
        for peer in node.neighbour_ids() {
            if !parent.contains_key(&peer) {
                continue;
            }
            let (a, b) = (root(&mut parent, node.id()), root(&mut parent, peer));
            parent.insert(a, b);
        }
    }
    let mut sizes: HashMap<Uuid, usize> = HashMap::new();
    for node in live {
        *sizes.entry(root(&mut parent, node.id())).or_default() += 1;
    }
    let mut sizes: Vec<usize> = sizes.into_values().collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    sizes
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let wrong: usize = self.wrong_rosters.values().sum();
        write!(
            f,
            "values={} behind={} wrong_rosters={wrong} {:?} ghosts={} isolated={} \
             without_neighbours={} components={:?}",
            self.values.len(),
            self.behind(),
            self.wrong_rosters,
            self.ghosts,
            self.isolated,
            self.without_neighbours,
            &self.components[..self.components.len().min(5)],
        )
    }
}
