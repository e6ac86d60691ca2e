//! Planning one sequencer batch without I/O: the complete nodes the batch creates (what
//! storage must persist), the new root, and inclusion proofs for the batch's leaves
//! against the new size, computed from the old frontier and the batch alone.
//!
//! Every node an audit path for a new leaf needs is either a node of the old frontier or
//! a node the batch completes (see `sigstack_merkle::proof`), so no read is needed.

use sigstack_merkle::{Frontier, Hash, NodeId, inclusion_plan};
use std::collections::HashMap;

#[derive(Clone, Debug)]
pub struct BatchPlan {
    pub old_size: u64,
    pub frontier: Frontier,
    created: Vec<(NodeId, Hash)>,
    lookup: HashMap<NodeId, Hash>,
}

pub fn plan(before: &Frontier, leaves: &[Hash]) -> BatchPlan {
    let mut frontier = before.clone();
    let mut created = Vec::with_capacity(leaves.len() * 2);
    for leaf in leaves {
        frontier.append(*leaf, |id, h| created.push((id, h)));
    }
    let mut lookup: HashMap<NodeId, Hash> = before.nodes().iter().copied().collect();
    lookup.extend(created.iter().copied());
    BatchPlan {
        old_size: before.size(),
        frontier,
        created,
        lookup,
    }
}

impl BatchPlan {
    pub fn new_size(&self) -> u64 {
        self.frontier.size()
    }

    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// Internal (level >= 1) nodes the batch completes; leaf hashes travel with the
    /// entries themselves.
    pub fn internal_nodes(&self) -> Vec<(NodeId, Hash)> {
        self.created
            .iter()
            .filter(|(id, _)| id.level > 0)
            .copied()
            .collect()
    }

    /// The audit path of a leaf of this batch against the new size.
    pub fn inclusion_proof(&self, index: u64) -> Option<Vec<Hash>> {
        if index < self.old_size {
            return None;
        }
        inclusion_plan(index, self.new_size())?.assemble(|id| self.lookup.get(&id).copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sigstack_merkle::{leaf_hash, verify_inclusion};

    #[test]
    #[allow(clippy::needless_range_loop)]
    fn proofs_for_every_batch_shape() {
        let leaves: Vec<Hash> = (0..150u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for split in [0usize, 1, 2, 3, 7, 8, 63, 64, 100] {
            for batch in [1usize, 2, 5, 16, 49] {
                if split + batch > leaves.len() {
                    continue;
                }
                let mut before = Frontier::new();
                for l in &leaves[..split] {
                    before.append(*l, |_, _| {});
                }
                let p = plan(&before, &leaves[split..split + batch]);
                assert_eq!(p.new_size(), (split + batch) as u64);
                for i in split..split + batch {
                    let proof = p.inclusion_proof(i as u64).expect("proof from memory");
                    verify_inclusion(&leaves[i], i as u64, p.new_size(), &proof, &p.root())
                        .expect("verifies");
                }
                if split > 0 {
                    assert!(
                        p.inclusion_proof(split as u64 - 1).is_none(),
                        "old leaves are not in the plan"
                    );
                }
                // internal nodes are exactly the merges
                let n = p.internal_nodes().len();
                let merges = |s: u64| s - s.count_ones() as u64;
                assert_eq!(
                    n as u64,
                    merges((split + batch) as u64) - merges(split as u64)
                );
            }
        }
    }
}
