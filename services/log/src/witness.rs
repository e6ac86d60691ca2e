//! C2SP tlog-witness and tlog-cosignature, free of I/O: the `add-checkpoint` request a
//! log sends, the checks a witness makes before it cosigns, and Ed25519 cosignatures
//! (signature type 0x04, a timestamped signature over `cosignature/v1`, the time and the
//! checkpoint body).

use crate::checkpoint::Checkpoint;
use crate::note::{SIG_COSIGNATURE_V1, key_hash, line, split};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sigstack_crypto::{CryptoError, PublicKey, Signer, ed25519_raw};
use sigstack_merkle::{EMPTY_ROOT, Hash};

/// Most consistency proof lines a request may carry (the specification's bound).
pub const MAX_PROOF_LINES: usize = 63;

/// An `add-checkpoint` request: the size the log believes the witness has, a
/// consistency proof from it, and the signed checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddCheckpoint {
    pub old_size: u64,
    pub proof: Vec<Hash>,
    pub note: String,
}

impl AddCheckpoint {
    pub fn encode(&self) -> String {
        let mut s = format!("old {}\n", self.old_size);
        for h in &self.proof {
            s.push_str(&STANDARD.encode(h));
            s.push('\n');
        }
        s.push('\n');
        s.push_str(&self.note);
        s
    }

    pub fn parse(body: &str) -> Result<Self, String> {
        let (head, note) = body
            .split_once("\n\n")
            .ok_or("no empty line between the proof and the checkpoint")?;
        let mut lines = head.split('\n');
        let old = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .ok_or("the first line is not `old <size>`")?;
        if old.is_empty()
            || (old.len() > 1 && old.starts_with('0'))
            || !old.bytes().all(|b| b.is_ascii_digit())
        {
            return Err("the old size is not a decimal without leading zeros".into());
        }
        let old_size = old.parse().map_err(|_| "the old size is too large")?;
        let proof = lines
            .map(|l| {
                STANDARD
                    .decode(l)
                    .ok()
                    .and_then(|b| Hash::try_from(b.as_slice()).ok())
                    .ok_or_else(|| format!("proof line {l:?} is not a base64 SHA-256 hash"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if proof.len() > MAX_PROOF_LINES {
            return Err(format!("more than {MAX_PROOF_LINES} proof lines"));
        }
        Ok(Self {
            old_size,
            proof,
            note: note.to_string(),
        })
    }
}

/// Why a witness refuses to cosign, each with the status the specification names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 400: malformed, or the old size beyond the checkpoint.
    BadRequest(String),
    /// 403: no valid signature by the log's key.
    Forbidden(String),
    /// 404: a log this witness does not follow.
    UnknownLog(String),
    /// 409: the old size is not the witness's; the body names its size.
    Conflict(u64),
    /// 422: the proof does not prove consistency (or an empty tree with another root).
    Inconsistent(String),
}

/// What a witness remembers of a log: the latest checkpoint it cosigned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    pub size: u64,
    pub root: Hash,
}

/// The checks of `add-checkpoint` once the log is known by its key: signature, sizes,
/// consistency with what the witness last cosigned (`seen`, `None` if nothing). Returns
/// the checkpoint to cosign.
pub fn check(
    req: &AddCheckpoint,
    origin: &str,
    log_key: &PublicKey,
    seen: Option<Seen>,
) -> Result<Checkpoint, Refusal> {
    let cp = crate::note::verify_ed25519(&req.note, origin, log_key).map_err(Refusal::Forbidden)?;
    if req.old_size > cp.size {
        return Err(Refusal::BadRequest(format!(
            "the old size {} is beyond the checkpoint's {}",
            req.old_size, cp.size
        )));
    }
    let have = seen.map_or(0, |s| s.size);
    if req.old_size != have {
        return Err(Refusal::Conflict(have));
    }
    if cp.size == 0 && cp.root != EMPTY_ROOT {
        return Err(Refusal::Inconsistent(
            "an empty tree with another root".into(),
        ));
    }
    match seen {
        None | Some(Seen { size: 0, .. }) => {
            if !req.proof.is_empty() {
                return Err(Refusal::Inconsistent("a proof from the empty tree".into()));
            }
        }
        Some(s) if s.size == cp.size => {
            if s.root != cp.root || !req.proof.is_empty() {
                return Err(Refusal::Inconsistent(
                    "another root at the size already cosigned".into(),
                ));
            }
        }
        Some(s) => {
            sigstack_merkle::verify_consistency(s.size, cp.size, &req.proof, &s.root, &cp.root)
                .map_err(|e| Refusal::Inconsistent(format!("the consistency proof fails: {e}")))?
        }
    }
    Ok(cp)
}

/// The key ID of an Ed25519 cosigner `name`.
pub fn cosigner_id(name: &str, key: &PublicKey) -> Option<[u8; 4]> {
    let raw = ed25519_raw(key.spki_der())?;
    let h = key_hash(name, SIG_COSIGNATURE_V1, &raw);
    Some([h[0], h[1], h[2], h[3]])
}

fn message(cp: &Checkpoint, timestamp: u64) -> String {
    format!("cosignature/v1\ntime {timestamp}\n{}", cp.body())
}

/// A cosignature line by `name` over `cp` at `timestamp` (Unix seconds).
pub fn cosign(
    name: &str,
    signer: &dyn Signer,
    cp: &Checkpoint,
    timestamp: u64,
) -> Result<String, CryptoError> {
    let id = cosigner_id(name, signer.public_key())
        .ok_or_else(|| CryptoError::Signing("a cosigner signs with Ed25519".into()))?;
    let sig = signer.sign(message(cp, timestamp).as_bytes())?;
    let mut blob = timestamp.to_be_bytes().to_vec();
    blob.extend_from_slice(&sig);
    Ok(line(name, &id, &blob))
}

/// The timestamp of a valid cosignature by `name` with `key` on the checkpoint `note`.
pub fn verify_cosignature(note: &str, name: &str, key: &PublicKey) -> Result<u64, String> {
    let id = cosigner_id(name, key).ok_or("not an Ed25519 key")?;
    let (text, sigs) = split(note)?;
    let cp = Checkpoint::parse_body(text)?;
    let (_, _, blob) = sigs
        .iter()
        .find(|(n, k, _)| *n == name && *k == id)
        .ok_or_else(|| format!("no cosignature by {name}"))?;
    if blob.len() != 8 + 64 {
        return Err(format!(
            "the cosignature by {name} is not a timestamped Ed25519 signature"
        ));
    }
    let ts = u64::from_be_bytes(blob[..8].try_into().map_err(|_| "short")?);
    key.verify_message(message(&cp, ts).as_bytes(), &blob[8..])
        .map_err(|e| format!("the cosignature by {name} does not verify: {e}"))?;
    Ok(ts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sigstack_crypto::Ed25519Signer;
    use sigstack_merkle::{Frontier, leaf_hash};

    fn tree(n: u64) -> Frontier {
        let mut f = Frontier::default();
        for i in 0..n {
            f.append(leaf_hash(&i.to_be_bytes()), |_, _| {});
        }
        f
    }

    #[test]
    fn requests_round_trip_and_bad_ones_are_refused() {
        let r = AddCheckpoint {
            old_size: 5,
            proof: vec![[1u8; 32], [2u8; 32]],
            note: "o\n7\nAAAA\n\n— o AAAA\n".into(),
        };
        assert_eq!(AddCheckpoint::parse(&r.encode()), Ok(r));
        for bad in [
            "old 05\n\nx",
            "old -1\n\nx",
            "new 1\n\nx",
            "old 1\nnot base64\n\nx",
            "old 1\n",
        ] {
            assert!(AddCheckpoint::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_witness_cosigns_only_consistent_growth() {
        let log = Ed25519Signer::generate();
        let note = |n: u64| {
            Checkpoint {
                origin: "log.example".into(),
                size: n,
                root: tree(n).root(),
            }
            .sign_ed25519("log.example", &log)
            .expect("signs")
        };
        let key = log.public_key();
        let req = |old: u64, proof: Vec<Hash>, n: u64| AddCheckpoint {
            old_size: old,
            proof,
            note: note(n),
        };
        // first contact: from zero, no proof
        let cp = check(&req(0, vec![], 10), "log.example", key, None).expect("cosigns");
        let seen = Seen {
            size: cp.size,
            root: cp.root,
        };
        // a stale old size: 409 with the witness's size
        assert_eq!(
            check(&req(0, vec![], 12), "log.example", key, Some(seen)),
            Err(Refusal::Conflict(10))
        );
        // a wrong proof: 422
        assert!(matches!(
            check(
                &req(10, vec![[0u8; 32]], 12),
                "log.example",
                key,
                Some(seen)
            ),
            Err(Refusal::Inconsistent(_))
        ));
        // the real proof
        let proof = consistency_proof(10, 12);
        check(&req(10, proof, 12), "log.example", key, Some(seen)).expect("consistent growth");
        // another key, or another origin: 403
        let other = Ed25519Signer::generate();
        assert!(matches!(
            check(
                &req(10, vec![], 12),
                "log.example",
                other.public_key(),
                Some(seen)
            ),
            Err(Refusal::Forbidden(_))
        ));
        // old beyond the checkpoint: 400
        assert!(matches!(
            check(&req(13, vec![], 12), "log.example", key, Some(seen)),
            Err(Refusal::BadRequest(_))
        ));
    }

    /// A consistency proof computed the slow way (RFC 6962 §2.1.2) from the leaves.
    fn consistency_proof(m: u64, n: u64) -> Vec<Hash> {
        fn mth(l: &[Hash]) -> Hash {
            match l.len() {
                0 => EMPTY_ROOT,
                1 => l[0],
                n => {
                    let mut k = 1;
                    while k * 2 < n {
                        k *= 2;
                    }
                    sigstack_merkle::node_hash(&mth(&l[..k]), &mth(&l[k..]))
                }
            }
        }
        fn sub(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
            let n = d.len();
            if m == n {
                return if b { vec![] } else { vec![mth(d)] };
            }
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            if m <= k {
                let mut p = sub(m, &d[..k], b);
                p.push(mth(&d[k..]));
                p
            } else {
                let mut p = sub(m - k, &d[k..], false);
                p.push(mth(&d[..k]));
                p
            }
        }
        let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        sub(m as usize, &leaves, true)
    }

    #[test]
    fn cosignatures_sign_and_verify() {
        let w = Ed25519Signer::generate();
        let cp = Checkpoint {
            origin: "log.example".into(),
            size: 3,
            root: [7u8; 32],
        };
        let log = Ed25519Signer::generate();
        let note = cp.sign_ed25519("log.example", &log).expect("signs");
        let cosigned = format!(
            "{note}{}",
            cosign("witness.example/w1", &w, &cp, 1_700_000_000).expect("cosigns")
        );
        assert_eq!(
            verify_cosignature(&cosigned, "witness.example/w1", w.public_key()),
            Ok(1_700_000_000)
        );
        // its vkey (type 0x04) names the key ID on its cosignature lines
        let v = crate::note::vkey_of_type("witness.example/w1", w.public_key(), SIG_COSIGNATURE_V1)
            .expect("vkey");
        let id = cosigner_id("witness.example/w1", w.public_key()).expect("id");
        assert!(
            v.starts_with(&format!("witness.example/w1+{}+", hex::encode(id))),
            "{v}"
        );
        assert!(verify_cosignature(&cosigned, "witness.example/w2", w.public_key()).is_err());
        assert!(
            verify_cosignature(
                &cosigned.replacen("\n3\n", "\n4\n", 1),
                "witness.example/w1",
                w.public_key()
            )
            .is_err()
        );
        // the log's own line still verifies beside the cosignature
        assert_eq!(
            crate::note::verify_ed25519(&cosigned, "log.example", log.public_key()),
            Ok(cp)
        );
    }
}
