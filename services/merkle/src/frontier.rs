//! The right edge of an append-only tree ("compact range" of `[0, size)`): at most one
//! complete node per level, enough to append and to compute the root in O(log n).

use crate::{EMPTY_ROOT, Hash, NodeId, fold_subtree, node_hash, range_nodes};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<(NodeId, Hash)>,
}

impl Frontier {
    pub fn new() -> Self {
        Self::default()
    }

    /// The complete nodes a frontier of `size` leaves is made of, left to right.
    pub fn node_ids(size: u64) -> Vec<NodeId> {
        range_nodes(0, size)
    }

    /// Rebuilds a frontier from the hashes of [`Frontier::node_ids`]`(size)`, in order.
    pub fn from_hashes(size: u64, hashes: &[Hash]) -> Option<Self> {
        let ids = Self::node_ids(size);
        if ids.len() != hashes.len() {
            return None;
        }
        Some(Self {
            size,
            nodes: ids.into_iter().zip(hashes.iter().copied()).collect(),
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn nodes(&self) -> &[(NodeId, Hash)] {
        &self.nodes
    }

    /// Appends one leaf hash. `created` sees the leaf (level 0) and every complete node
    /// the append finishes, bottom-up: exactly what a store must persist.
    pub fn append(&mut self, leaf: Hash, mut created: impl FnMut(NodeId, Hash)) {
        let id = NodeId::new(0, self.size);
        created(id, leaf);
        self.nodes.push((id, leaf));
        while self.nodes.len() >= 2 {
            let (rid, rh) = self.nodes[self.nodes.len() - 1];
            let (lid, lh) = self.nodes[self.nodes.len() - 2];
            if lid.level != rid.level {
                break;
            }
            let parent = lid.parent();
            let h = node_hash(&lh, &rh);
            self.nodes.truncate(self.nodes.len() - 2);
            created(parent, h);
            self.nodes.push((parent, h));
        }
        self.size += 1;
    }

    /// MTH of the whole tree.
    pub fn root(&self) -> Hash {
        let hashes: Vec<Hash> = self.nodes.iter().map(|(_, h)| *h).collect();
        fold_subtree(&hashes).unwrap_or(EMPTY_ROOT)
    }
}
