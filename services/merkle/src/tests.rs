//! Cross-checks: an RFC 6962 reference written straight from the recursive definitions,
//! published known answers, and the independent `ct-merkle` crate.

use super::*;
use std::collections::HashMap;

/// MTH(D[a:b]) by the recursive definition.
fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => EMPTY_ROOT,
        1 => leaves[0],
        n => {
            let k = split_point(n as u64) as usize;
            node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

/// PATH(m, D[n]) by the recursive definition.
fn path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    if n <= 1 {
        return vec![];
    }
    let k = split_point(n as u64) as usize;
    if m < k {
        let mut p = path(m, &leaves[..k]);
        p.push(mth(&leaves[k..]));
        p
    } else {
        let mut p = path(m - k, &leaves[k..]);
        p.push(mth(&leaves[..k]));
        p
    }
}

/// SUBPROOF(m, D[n], b) by the recursive definition.
fn subproof(m: usize, leaves: &[Hash], complete: bool) -> Vec<Hash> {
    let n = leaves.len();
    if m == n {
        return if complete { vec![] } else { vec![mth(leaves)] };
    }
    let k = split_point(n as u64) as usize;
    if m <= k {
        let mut p = subproof(m, &leaves[..k], complete);
        p.push(mth(&leaves[k..]));
        p
    } else {
        let mut p = subproof(m - k, &leaves[k..], false);
        p.push(mth(&leaves[..k]));
        p
    }
}

fn test_leaves(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("leaf-{i}").into_bytes()).collect()
}

/// All complete nodes of a tree of the given leaves, as a store would hold them.
fn complete_nodes(leaves: &[Hash]) -> HashMap<NodeId, Hash> {
    let mut map = HashMap::new();
    let mut f = Frontier::new();
    for l in leaves {
        f.append(*l, |id, h| {
            map.insert(id, h);
        });
    }
    map
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("hex")
}

#[test]
fn known_answers() {
    let v: serde_json::Value =
        serde_json::from_str(include_str!("../tests/data/rfc6962_roots.json")).expect("json");
    let leaves: Vec<Hash> = v["leaves"]
        .as_array()
        .expect("leaves")
        .iter()
        .map(|l| leaf_hash(&unhex(l.as_str().expect("str"))))
        .collect();
    let roots = v["roots"].as_array().expect("roots");
    let mut f = Frontier::new();
    assert_eq!(hex::encode(f.root()), roots[0].as_str().expect("str"));
    for (i, l) in leaves.iter().enumerate() {
        f.append(*l, |_, _| {});
        assert_eq!(
            hex::encode(f.root()),
            roots[i + 1].as_str().expect("str"),
            "size {}",
            i + 1
        );
        assert_eq!(f.root(), mth(&leaves[..=i]));
    }
    let lh = &v["leaf_hash"];
    assert_eq!(
        hex::encode(leaf_hash(lh["data"].as_str().expect("str").as_bytes())),
        lh["hash"].as_str().expect("str")
    );
    let nh = &v["node_hash"];
    // The published node vector hashes the raw strings, not 32-byte values.
    let mut raw = sha2::Sha256::new();
    sha2::Digest::update(&mut raw, [1u8]);
    sha2::Digest::update(&mut raw, nh["left"].as_str().expect("str").as_bytes());
    sha2::Digest::update(&mut raw, nh["right"].as_str().expect("str").as_bytes());
    let raw: Hash = sha2::Digest::finalize(raw).into();
    assert_eq!(hex::encode(raw), nh["hash"].as_str().expect("str"));
    assert_eq!(EMPTY_ROOT, mth(&[]));
}

#[test]
fn range_nodes_cover_ranges_exactly() {
    for begin in 0..70u64 {
        for end in begin..70u64 {
            let nodes = range_nodes(begin, end);
            let mut at = begin;
            for n in &nodes {
                assert_eq!(n.begin(), at);
                assert!(n.end() <= end);
                at = n.end();
            }
            assert_eq!(at, end);
        }
    }
}

#[test]
fn plans_match_reference_for_every_size_and_index() {
    let raw = test_leaves(320);
    let leaves: Vec<Hash> = raw.iter().map(|l| leaf_hash(l)).collect();
    let nodes = complete_nodes(&leaves);
    let lookup = |id: NodeId| nodes.get(&id).copied();
    for size in 1..=leaves.len() {
        let root = mth(&leaves[..size]);
        for index in 0..size {
            let plan = inclusion_plan(index as u64, size as u64).expect("plan");
            let proof = plan.assemble(lookup).expect("nodes");
            assert_eq!(
                proof,
                path(index, &leaves[..size]),
                "size {size} index {index}"
            );
            verify_inclusion(&leaves[index], index as u64, size as u64, &proof, &root)
                .expect("verifies");
        }
        for old in 1..=size {
            let plan = consistency_plan(old as u64, size as u64).expect("plan");
            let proof = plan.assemble(lookup).expect("nodes");
            assert_eq!(
                proof,
                subproof(old, &leaves[..size], true),
                "{old} -> {size}"
            );
            let old_root = mth(&leaves[..old]);
            verify_consistency(old as u64, size as u64, &proof, &old_root, &root)
                .expect("verifies");
        }
    }
}

#[test]
fn agrees_with_ct_merkle() {
    let raw = test_leaves(300);
    let leaves: Vec<Hash> = raw.iter().map(|l| leaf_hash(l)).collect();
    let nodes = complete_nodes(&leaves);
    let lookup = |id: NodeId| nodes.get(&id).copied();
    let mut theirs: ct_merkle::CtMerkleTree<sha2::Sha256, Vec<u8>> = ct_merkle::CtMerkleTree::new();
    let mut roots = Vec::new();
    for (i, l) in raw.iter().enumerate() {
        theirs.push(l.clone());
        let size = (i + 1) as u64;
        let their_root = theirs.root();
        let mut ours = Frontier::new();
        for h in &leaves[..=i] {
            ours.append(*h, |_, _| {});
        }
        assert_eq!(
            ours.root().as_slice(),
            their_root.as_bytes().as_slice(),
            "size {size}"
        );
        roots.push(their_root);
        for index in 0..size {
            let their_proof = theirs.prove_inclusion(index as usize);
            let ours = inclusion_plan(index, size)
                .expect("plan")
                .assemble(lookup)
                .expect("nodes")
                .concat();
            assert_eq!(ours, their_proof.as_bytes(), "inclusion {index} in {size}");
        }
        for old in 1..size {
            let their_proof = theirs.prove_consistency(old as usize);
            let ours = consistency_plan(old, size)
                .expect("plan")
                .assemble(lookup)
                .expect("nodes")
                .concat();
            assert_eq!(ours, their_proof.as_bytes(), "consistency {old} -> {size}");
        }
    }
}

#[test]
fn tampered_proofs_fail() {
    let raw = test_leaves(37);
    let leaves: Vec<Hash> = raw.iter().map(|l| leaf_hash(l)).collect();
    let nodes = complete_nodes(&leaves);
    let lookup = |id: NodeId| nodes.get(&id).copied();
    let size = leaves.len() as u64;
    let root = mth(&leaves);
    for index in 0..size {
        let proof = inclusion_plan(index, size)
            .expect("plan")
            .assemble(lookup)
            .expect("n");
        for i in 0..proof.len() {
            let mut bad = proof.clone();
            bad[i][7] ^= 1;
            assert_eq!(
                verify_inclusion(&leaves[index as usize], index, size, &bad, &root),
                Err(VerifyError::RootMismatch)
            );
        }
        let mut short = proof.clone();
        if short.pop().is_some() {
            assert!(matches!(
                verify_inclusion(&leaves[index as usize], index, size, &short, &root),
                Err(VerifyError::WrongProofLength { .. })
            ));
        }
        // another leaf at the same position
        let other = leaves[((index + 1) % size) as usize];
        assert!(verify_inclusion(&other, index, size, &proof, &root).is_err());
    }
    for old in 1..size {
        let proof = consistency_plan(old, size)
            .expect("plan")
            .assemble(lookup)
            .expect("n");
        let old_root = mth(&leaves[..old as usize]);
        for i in 0..proof.len() {
            let mut bad = proof.clone();
            bad[i][0] ^= 0x80;
            assert!(verify_consistency(old, size, &bad, &old_root, &root).is_err());
        }
        let mut extra = proof.clone();
        extra.push(root);
        assert!(verify_consistency(old, size, &extra, &old_root, &root).is_err());
        assert!(verify_consistency(old, size, &proof, &root, &root).is_err() || old == size);
    }
    assert_eq!(
        verify_consistency(0, 5, &[], &EMPTY_ROOT, &root),
        Err(VerifyError::BadSizes { old: 0, new: 5 })
    );
    assert!(verify_consistency(5, 5, &[], &root, &root).is_ok());
    assert!(inclusion_plan(5, 5).is_none());
    assert!(consistency_plan(6, 5).is_none());
}

#[test]
fn frontier_round_trips_and_reports_created_nodes() {
    let leaves: Vec<Hash> = test_leaves(100).iter().map(|l| leaf_hash(l)).collect();
    let mut f = Frontier::new();
    let mut created = Vec::new();
    for l in &leaves {
        f.append(*l, |id, _| created.push(id));
    }
    // every complete node exactly once: n leaves + (n - popcount(n)) internal nodes
    let n = leaves.len() as u64;
    assert_eq!(created.len() as u64, n + n - n.count_ones() as u64);
    let nodes = complete_nodes(&leaves);
    let ids = Frontier::node_ids(n);
    let hashes: Vec<Hash> = ids.iter().map(|id| nodes[id]).collect();
    let rebuilt = Frontier::from_hashes(n, &hashes).expect("frontier");
    assert_eq!(rebuilt, f);
    assert!(Frontier::from_hashes(n, &hashes[1..]).is_none());
}
