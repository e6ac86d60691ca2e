//! Merkle trees as RFC 6962 §2.1 (and RFC 9162 §2.1) define them, without any I/O.
//!
//! The crate owns three things:
//! * hashing ([`leaf_hash`], [`node_hash`], [`EMPTY_ROOT`]);
//! * *plans* for inclusion and consistency proofs: which stored subtree hashes
//!   ([`NodeId`]s) a proof is made of, so that a storage layer can fetch them in one
//!   read and [`ProofPlan::assemble`] can build the proof ([`proof`]);
//! * the verifiers every client runs ([`verify`]), and the append-only frontier a
//!   sequencer keeps in memory ([`Frontier`]).
//!
//! A *complete node* is the root of a perfect, aligned subtree: `NodeId { level, index }`
//! covers leaves `[index << level, (index + 1) << level)`. Complete nodes never change once
//! the tree has grown past them, which is what makes them safe to store and cache.

mod frontier;
pub mod proof;
pub mod verify;

pub use frontier::Frontier;
pub use proof::{ProofPlan, consistency_plan, inclusion_plan, range_nodes};
pub use verify::{VerifyError, root_from_inclusion_proof, verify_consistency, verify_inclusion};

use sha2::{Digest, Sha256};

/// A SHA-256 output.
pub type Hash = [u8; 32];

/// The root of the empty tree: SHA-256 of the empty string (RFC 6962 §2.1).
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// MTH({d}) = SHA-256(0x00 || d) (RFC 6962 §2.1).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// SHA-256(0x01 || left || right) (RFC 6962 §2.1).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of a perfect, aligned subtree of `2^level` leaves starting at leaf
/// `index << level`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u8,
    pub index: u64,
}

impl NodeId {
    pub const fn new(level: u8, index: u64) -> Self {
        Self { level, index }
    }

    /// The first leaf under this node.
    pub const fn begin(self) -> u64 {
        self.index << self.level
    }

    /// One past the last leaf under this node.
    pub const fn end(self) -> u64 {
        (self.index + 1) << self.level
    }

    pub const fn children(self) -> (NodeId, NodeId) {
        let l = NodeId::new(self.level - 1, self.index * 2);
        (l, NodeId::new(self.level - 1, self.index * 2 + 1))
    }

    pub const fn parent(self) -> NodeId {
        NodeId::new(self.level + 1, self.index / 2)
    }
}

/// The largest power of two strictly smaller than `n` (`n >= 2`), the split point `k`
/// of RFC 6962 §2.1.
pub(crate) fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Folds the hashes of a subtree's complete nodes (left to right, sizes strictly
/// decreasing, as [`range_nodes`] yields them for an RFC 6962 subtree) into its root.
pub fn fold_subtree(hashes: &[Hash]) -> Option<Hash> {
    let (last, rest) = hashes.split_last()?;
    Some(rest.iter().rev().fold(*last, |acc, h| node_hash(h, &acc)))
}

#[cfg(test)]
mod tests;
