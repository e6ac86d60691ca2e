//! Which complete nodes make up an inclusion proof (RFC 6962 §2.1.1, `PATH`) or a
//! consistency proof (RFC 6962 §2.1.2, `PROOF`/`SUBPROOF`), and how to assemble the proof
//! from their hashes.
//!
//! Every element of either proof is the hash of an RFC 6962 subtree `D[a:b]`. Such a
//! subtree is either complete, or it ends at the tree's last leaf; in both cases
//! [`range_nodes`] splits it into complete nodes of strictly decreasing size and
//! [`crate::fold_subtree`] recombines them. A proof therefore needs only stored complete
//! nodes: O(log n) of them, fetched in one read.

use crate::{Hash, NodeId, fold_subtree, split_point};

/// Splits `[begin, end)` into maximal aligned complete nodes, left to right.
pub fn range_nodes(mut begin: u64, end: u64) -> Vec<NodeId> {
    let mut out = Vec::new();
    while begin < end {
        let align = if begin == 0 {
            63
        } else {
            begin.trailing_zeros()
        };
        let fit = 63 - (end - begin).leading_zeros();
        let level = align.min(fit);
        out.push(NodeId::new(level as u8, begin >> level));
        begin += 1u64 << level;
    }
    out
}

/// A proof as a list of subtree ranges, in the order the proof lists their hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofPlan {
    ranges: Vec<(u64, u64)>,
}

impl ProofPlan {
    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Every complete node the proof needs, sorted and without repeats.
    pub fn nodes(&self) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> = self
            .ranges
            .iter()
            .flat_map(|&(a, b)| range_nodes(a, b))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Builds the proof; `None` if `lookup` lacks a node.
    pub fn assemble(&self, lookup: impl Fn(NodeId) -> Option<Hash>) -> Option<Vec<Hash>> {
        self.ranges
            .iter()
            .map(|&(a, b)| {
                let hashes = range_nodes(a, b)
                    .into_iter()
                    .map(&lookup)
                    .collect::<Option<Vec<_>>>()?;
                fold_subtree(&hashes)
            })
            .collect()
    }
}

/// The audit path for leaf `index` in a tree of `size` leaves; `None` if `index >= size`.
pub fn inclusion_plan(index: u64, size: u64) -> Option<ProofPlan> {
    if index >= size {
        return None;
    }
    // PATH(m, D[a:b]) built iteratively from the root down, then reversed to leaf→root.
    let mut ranges = Vec::new();
    let (mut a, mut b) = (0u64, size);
    while b - a > 1 {
        let k = split_point(b - a);
        if index < a + k {
            ranges.push((a + k, b));
            b = a + k;
        } else {
            ranges.push((a, a + k));
            a += k;
        }
    }
    ranges.reverse();
    Some(ProofPlan { ranges })
}

/// The consistency proof between tree sizes `old` and `new`; `None` unless
/// `0 < old <= new`. Equal sizes give the empty proof.
pub fn consistency_plan(old: u64, new: u64) -> Option<ProofPlan> {
    if old == 0 || old > new {
        return None;
    }
    // SUBPROOF(m, D[a:b], flag), iteratively: the recursion has a single branch.
    let mut ranges = Vec::new();
    let (mut a, mut b, mut complete) = (0u64, new, true);
    loop {
        let m = old - a;
        let n = b - a;
        if m == n {
            if !complete {
                ranges.push((a, b));
            }
            break;
        }
        let k = split_point(n);
        if m <= k {
            ranges.push((a + k, b));
            b = a + k;
        } else {
            ranges.push((a, a + k));
            a += k;
            complete = false;
        }
    }
    ranges.reverse();
    Some(ProofPlan { ranges })
}
