//! DSSE envelopes meet artifacts through one rule: an envelope is verified only as an
//! in-toto Statement — payload type exactly `application/vnd.in-toto+json`, a payload that
//! parses strictly as a Statement v0.1 or v1 — and when there is an artifact, the
//! Statement must name its digest among its subjects. A signature over any other payload
//! says nothing about an artifact, and accepting one would let whoever signed it vouch for
//! everything (sigstore-go, and so cosign, refuse them too).

use super::{Artifact, VerifyError, fail};
use crate::bundle::strict;
use serde::Deserialize;
use sigstack_crypto::HashAlg;
use std::collections::BTreeMap;

/// The payload type of an in-toto Statement.
pub const IN_TOTO: &str = "application/vnd.in-toto+json";

const STATEMENT_TYPES: [&str; 2] = [
    "https://in-toto.io/Statement/v0.1",
    "https://in-toto.io/Statement/v1",
];

/// DSSE's pre-authentication encoding.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut v = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    v.extend_from_slice(payload);
    v
}

/// The digest of DSSE's pre-authentication encoding with `alg`, hashed in pieces (a large
/// payload is not copied to be prefixed).
pub fn pae_digest(alg: HashAlg, payload_type: &str, payload: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    fn run<D: sha2::Digest>(mut h: D, header: &[u8], payload: &[u8]) -> Vec<u8> {
        h.update(header);
        h.update(payload);
        h.finalize().to_vec()
    }
    let header = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    );
    match alg {
        HashAlg::Sha256 => run(sha2::Sha256::new(), header.as_bytes(), payload),
        HashAlg::Sha384 => run(sha2::Sha384::new(), header.as_bytes(), payload),
        HashAlg::Sha512 => run(sha2::Sha512::new(), header.as_bytes(), payload),
    }
}

#[derive(Deserialize)]
struct Subject {
    #[serde(default)]
    digest: BTreeMap<String, String>,
}

/// The fields of a Statement the rule needs; the rest is skipped as it is read.
#[derive(Deserialize)]
struct Header {
    #[serde(rename = "_type")]
    type_: String,
    subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    predicate_type: String,
}

/// A verified envelope's Statement: the fields the rule needs, read without building the
/// whole document (an arbitrary signer's payload must not cost memory beyond its size
/// before the signer is known); the signed bytes for the caller to read once all is
/// verified.
pub struct Statement {
    pub payload: Vec<u8>,
    subjects: Vec<Subject>,
    pub predicate_type: String,
}

/// Parses a DSSE payload as an in-toto Statement, or says why it is not one.
pub fn statement(payload_type: &str, payload: &[u8]) -> Result<Statement, VerifyError> {
    if payload_type != IN_TOTO {
        return fail(format!(
            "the DSSE envelope's payload type {payload_type:?} is not {IN_TOTO:?}: only in-toto statements are verified"
        ));
    }
    let h: Header = strict::from_slice(payload)
        .map_err(|e| VerifyError(format!("the payload is not an in-toto statement: {e}")))?;
    if !STATEMENT_TYPES.contains(&h.type_.as_str()) {
        return fail(format!(
            "the payload is not an in-toto statement: _type {:?}",
            h.type_
        ));
    }
    if h.subject.is_empty() || h.subject.iter().any(|s| s.digest.is_empty()) {
        return fail("the in-toto statement has a subject without a digest, or none at all");
    }
    if h.predicate_type.is_empty() {
        return fail("the in-toto statement has no predicate type");
    }
    Ok(Statement {
        payload: payload.to_vec(),
        subjects: h.subject,
        predicate_type: h.predicate_type,
    })
}

impl Statement {
    /// The artifact is one of the statement's subjects (by SHA-256, or by SHA-384/512
    /// when the artifact's bytes are at hand).
    pub fn names(&self, artifact: &Artifact) -> Result<(), VerifyError> {
        let sha256 = artifact.sha256();
        let mut other: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
        for s in &self.subjects {
            for (alg, want) in &s.digest {
                let Ok(want) = hex::decode(want) else {
                    continue;
                };
                let got = match (alg.as_str(), artifact) {
                    ("sha256", _) => sha256.to_vec(),
                    ("sha384" | "sha512", Artifact::Bytes(b)) => other
                        .entry(alg.as_str())
                        .or_insert_with(|| {
                            let h = if alg == "sha384" {
                                HashAlg::Sha384
                            } else {
                                HashAlg::Sha512
                            };
                            h.digest(b)
                        })
                        .clone(),
                    _ => continue,
                };
                if got == want {
                    return Ok(());
                }
            }
        }
        fail("the artifact is not a subject of the in-toto statement")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(v: &str) -> Result<Statement, VerifyError> {
        statement(IN_TOTO, v.as_bytes())
    }

    #[test]
    fn only_in_toto_statements_pass() {
        let good = r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha256":"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"}}],"predicateType":"x","predicate":{}}"#;
        let s = st(good).expect("a statement");
        s.names(&Artifact::Bytes(b"hello".to_vec()))
            .expect("names hello");
        assert!(s.names(&Artifact::Bytes(b"other".to_vec())).is_err());
        for (pt, payload) in [
            ("text/plain", good),
            ("application/vnd.in-toto+json; charset=utf-8", good),
            ("application/vnd.in-toto+json ", good),
        ] {
            let e = statement(pt, payload.as_bytes()).err().expect("refused");
            assert!(e.0.contains("payload type"), "{e}");
        }
        for bad in [
            r#"{"subject":[{"digest":{"sha256":"00"}}],"predicateType":"x"}"#,
            r#"{"_type":"https://in-toto.io/Statement/v2","subject":[{"digest":{"sha256":"00"}}],"predicateType":"x"}"#,
            r#"{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"x"}"#,
            r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a"}],"predicateType":"x"}"#,
            r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"00"}}]}"#,
            r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"00"}}],"subject":[],"predicateType":"x"}"#,
            r#"["not an object"]"#,
        ] {
            assert!(st(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pae_digest_is_the_digest_of_pae() {
        for alg in [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
            assert_eq!(
                pae_digest(alg, "t/x", b"payload"),
                alg.digest(&pae("t/x", b"payload"))
            );
        }
    }

    #[test]
    fn other_digests_match_only_with_the_bytes() {
        let sha512 = hex::encode(HashAlg::Sha512.digest(b"hello"));
        let s = st(&format!(
            r#"{{"_type":"https://in-toto.io/Statement/v0.1","subject":[{{"digest":{{"sha512":"{sha512}"}}}}],"predicateType":"x"}}"#
        ))
        .expect("a statement");
        s.names(&Artifact::Bytes(b"hello".to_vec()))
            .expect("by sha512");
        assert!(
            s.names(&Artifact::Digest(sigstack_crypto::sha256(b"hello")))
                .is_err()
        );
    }
}
