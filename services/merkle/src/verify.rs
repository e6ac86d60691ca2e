//! Proof verification as clients run it: inclusion per RFC 9162 §2.1.3.2, consistency per
//! RFC 9162 §2.1.4.2.

use crate::{Hash, node_hash};

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// The leaf index is not inside the tree.
    IndexOutOfRange { index: u64, size: u64 },
    /// The proof has the wrong number of hashes for the sizes given.
    WrongProofLength { expected: usize, got: usize },
    /// Sizes that cannot be proven consistent (old larger than new, or zero).
    BadSizes { old: u64, new: u64 },
    /// The proof does not lead to the expected root.
    RootMismatch,
}

impl std::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::IndexOutOfRange { index, size } => {
                write!(f, "leaf index {index} is outside a tree of size {size}")
            }
            Self::WrongProofLength { expected, got } => {
                write!(f, "proof has {got} hashes, expected {expected}")
            }
            Self::BadSizes { old, new } => {
                write!(f, "cannot prove consistency from size {old} to size {new}")
            }
            Self::RootMismatch => f.write_str("proof does not match the root hash"),
        }
    }
}

impl std::error::Error for VerifyError {}

/// Recomputes the root from a leaf hash and its audit path (RFC 9162 §2.1.3.2).
pub fn root_from_inclusion_proof(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
) -> Result<Hash, VerifyError> {
    if index >= size {
        return Err(VerifyError::IndexOutOfRange { index, size });
    }
    let inner = 64 - (index ^ (size - 1)).leading_zeros() as usize;
    let border = (index >> inner).count_ones() as usize;
    if proof.len() != inner + border {
        return Err(VerifyError::WrongProofLength {
            expected: inner + border,
            got: proof.len(),
        });
    }
    let mut seed = *leaf;
    for (i, p) in proof[..inner].iter().enumerate() {
        seed = if (index >> i) & 1 == 0 {
            node_hash(&seed, p)
        } else {
            node_hash(p, &seed)
        };
    }
    for p in &proof[inner..] {
        seed = node_hash(p, &seed);
    }
    Ok(seed)
}

pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), VerifyError> {
    if root_from_inclusion_proof(leaf, index, size, proof)? == *root {
        Ok(())
    } else {
        Err(VerifyError::RootMismatch)
    }
}

/// RFC 9162 §2.1.4.2.
pub fn verify_consistency(
    old: u64,
    new: u64,
    proof: &[Hash],
    old_root: &Hash,
    new_root: &Hash,
) -> Result<(), VerifyError> {
    if old == 0 || old > new {
        return Err(VerifyError::BadSizes { old, new });
    }
    if old == new {
        return if proof.is_empty() {
            if old_root == new_root {
                Ok(())
            } else {
                Err(VerifyError::RootMismatch)
            }
        } else {
            Err(VerifyError::WrongProofLength {
                expected: 0,
                got: proof.len(),
            })
        };
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (mut fn_, mut sn) = (old - 1, new - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let Some((first, rest)) = path.split_first() else {
        return Err(VerifyError::WrongProofLength {
            expected: 1,
            got: 0,
        });
    };
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if sn == 0 {
            return Err(VerifyError::WrongProofLength {
                expected: proof.len() - 1,
                got: proof.len(),
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(VerifyError::WrongProofLength {
            expected: proof.len() + 1,
            got: proof.len(),
        });
    }
    if fr == *old_root && sr == *new_root {
        Ok(())
    } else {
        Err(VerifyError::RootMismatch)
    }
}
