//! DSSE envelopes meet artifacts through one rule: an envelope is verified only as an
//! in-toto Statement — payload type exactly `application/vnd.in-toto+json`, a payload that
//! parses strictly as a Statement v0.1 or v1 — and when there is an artifact, the
//! Statement must name its digest among its subjects. A signature over any other payload
//! says nothing about an artifact, and accepting one would let whoever signed it vouch for
//! everything (sigstore-go, and so cosign, refuse them too).

use super::{Artifact, VerifyError, fail};
use crate::bundle::strict;
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

/// The most subjects a statement may name, and digests a subject may carry.
pub const MAX_SUBJECTS: usize = 4096;
const MAX_DIGESTS: usize = 16;

/// A subject: its digests by algorithm (its name and anything else are skipped).
struct Subject {
    digest: Vec<(String, String)>,
}

/// The fields of a Statement the rule needs; the rest is skipped as it is read. Both are
/// read as JSON objects only (a derived reader would also take arrays, positionally,
/// which in-toto and sigstore-go refuse).
struct Header {
    type_: String,
    subject: Vec<Subject>,
    predicate_type: String,
}

mod read {
    use super::{Header, MAX_DIGESTS, MAX_SUBJECTS, Subject};
    use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use std::fmt;

    impl<'de> serde::Deserialize<'de> for Header {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_map(HeaderVisitor)
        }
    }

    struct HeaderVisitor;

    impl<'de> Visitor<'de> for HeaderVisitor {
        type Value = Header;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an in-toto statement (a JSON object)")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Header, A::Error> {
            let (mut type_, mut subject, mut predicate_type) = (None, None, None);
            while let Some(k) = m.next_key::<std::borrow::Cow<'de, str>>()? {
                match k.as_ref() {
                    "_type" => type_ = Some(m.next_value::<String>()?),
                    "subject" => subject = Some(m.next_value::<Subjects>()?.0),
                    "predicateType" => predicate_type = Some(m.next_value::<String>()?),
                    _ => {
                        m.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(Header {
                type_: type_.ok_or_else(|| de::Error::missing_field("_type"))?,
                subject: subject.ok_or_else(|| de::Error::missing_field("subject"))?,
                predicate_type: predicate_type
                    .ok_or_else(|| de::Error::missing_field("predicateType"))?,
            })
        }
    }

    struct Subjects(Vec<Subject>);

    impl<'de> serde::Deserialize<'de> for Subjects {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Subjects;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a list of subjects")
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Subjects, A::Error> {
                    let mut v = Vec::new();
                    while let Some(x) = s.next_element::<Subject>()? {
                        if v.len() == MAX_SUBJECTS {
                            return Err(de::Error::custom(format!(
                                "more than {MAX_SUBJECTS} subjects"
                            )));
                        }
                        v.push(x);
                    }
                    Ok(Subjects(v))
                }
            }
            d.deserialize_seq(V)
        }
    }

    impl<'de> serde::Deserialize<'de> for Subject {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Subject;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a subject (a JSON object)")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Subject, A::Error> {
                    let mut digest = Vec::new();
                    while let Some(k) = m.next_key::<std::borrow::Cow<'de, str>>()? {
                        if k == "digest" {
                            digest = m.next_value::<Digests>()?.0;
                        } else {
                            m.next_value::<IgnoredAny>()?;
                        }
                    }
                    Ok(Subject { digest })
                }
            }
            d.deserialize_map(V)
        }
    }

    struct Digests(Vec<(String, String)>);

    impl<'de> serde::Deserialize<'de> for Digests {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Digests;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("digests by algorithm (a JSON object of strings)")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Digests, A::Error> {
                    let mut v = Vec::new();
                    while let Some((k, val)) = m.next_entry::<String, String>()? {
                        if v.len() == MAX_DIGESTS {
                            return Err(de::Error::custom("a subject with too many digests"));
                        }
                        v.push((k, val));
                    }
                    Ok(Digests(v))
                }
            }
            d.deserialize_map(V)
        }
    }
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
            // arrays read positionally by a derived reader: not a statement
            r#"["https://in-toto.io/Statement/v1",[{"digest":{"sha256":"00"}}],"x"]"#,
            r#"{"_type":"https://in-toto.io/Statement/v1","subject":[["a",{"sha256":"00"}]],"predicateType":"x"}"#,
            r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":[["sha256","00"]]}],"predicateType":"x"}"#,
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
