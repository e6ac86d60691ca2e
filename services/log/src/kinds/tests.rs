//! Entry kinds against Rekor's real output (the conformance bundles' canonicalized
//! bodies) and against every refusal path.

use super::*;
use crate::jcs;
use serde_json::{Value, json};
use sigstack_crypto::{Curve, FileSigner, Signer, pem};
use std::path::PathBuf;

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

fn proposed(kind: &str, version: &str, spec: Value) -> ProposedEntry {
    ProposedEntry {
        kind: kind.into(),
        api_version: version.into(),
        spec,
    }
}

fn b64(b: &[u8]) -> String {
    STANDARD.encode(b)
}

/// Rebuilds the hashedrekord request a client made from a real bundle and requires our
/// canonical body to be byte-identical to the one Rekor logged.
#[test]
fn hashedrekord_matches_rekor_bodies_from_real_bundles() {
    let dir = shared().join("conformance-assets/test/assets/bundle-verify");
    let mut checked = 0;
    for case in std::fs::read_dir(&dir).expect("conformance assets beside the checkout") {
        let case = case.expect("entry").path();
        let name = case
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        if name.ends_with("_fail") || !case.is_dir() {
            continue;
        }
        let bundle: Value = serde_json::from_slice(
            &std::fs::read(case.join("bundle.sigstore.json")).expect("bundle"),
        )
        .expect("json");
        let entry = &bundle["verificationMaterial"]["tlogEntries"][0];
        if entry["kindVersion"]["kind"] != "hashedrekord"
            || entry["kindVersion"]["version"] != "0.0.1"
        {
            continue;
        }
        let vm = &bundle["verificationMaterial"];
        let key_pem = if let Some(c) = vm["certificate"]["rawBytes"].as_str() {
            pem::encode("CERTIFICATE", &STANDARD.decode(c).expect("b64"))
        } else if let Some(c) = vm["x509CertificateChain"]["certificates"][0]["rawBytes"].as_str() {
            pem::encode("CERTIFICATE", &STANDARD.decode(c).expect("b64"))
        } else {
            std::fs::read_to_string(case.join("key.pub")).expect("key.pub")
        };
        let ms = &bundle["messageSignature"];
        let digest = STANDARD
            .decode(ms["messageDigest"]["digest"].as_str().expect("digest"))
            .expect("b64");
        let spec = json!({
            "signature": {"content": ms["signature"], "publicKey": {"content": b64(key_pem.as_bytes())}},
            "data": {"hash": {"algorithm": "sha256", "value": hex::encode(digest)}}
        });
        let c = canonicalize(&proposed("hashedrekord", "0.0.1", spec)).expect(&name);
        let expected = STANDARD
            .decode(entry["canonicalizedBody"].as_str().expect("body"))
            .expect("b64");
        assert_eq!(
            String::from_utf8_lossy(&c.body),
            String::from_utf8_lossy(&expected),
            "{name}"
        );
        assert_eq!(c.leaf_hash, sigstack_merkle::leaf_hash(&expected));
        checked += 1;
    }
    assert!(
        checked >= 5,
        "only {checked} real hashedrekord bundles checked"
    );
}

/// The dsse body Rekor logged for a real in-toto attestation: same payload hash and
/// signatures (the envelope hash depends on the exact text the client sent).
#[test]
fn dsse_matches_rekor_body_from_real_bundle() {
    let case =
        shared().join("conformance-assets/test/assets/bundle-verify/happy-path-intoto-in-dsse-v3");
    let bundle: Value =
        serde_json::from_slice(&std::fs::read(case.join("bundle.sigstore.json")).expect("bundle"))
            .expect("json");
    let entry = &bundle["verificationMaterial"]["tlogEntries"][0];
    assert_eq!(entry["kindVersion"]["kind"], "dsse");
    let cert = STANDARD
        .decode(
            bundle["verificationMaterial"]["certificate"]["rawBytes"]
                .as_str()
                .expect("cert"),
        )
        .expect("b64");
    let env = &bundle["dsseEnvelope"];
    let envelope = json!({
        "payload": env["payload"], "payloadType": env["payloadType"],
        "signatures": [{"sig": env["signatures"][0]["sig"], "keyid": ""}]
    });
    let envelope_text = serde_json::to_string(&envelope).expect("json");
    let spec = json!({"proposedContent": {
        "envelope": envelope_text,
        "verifiers": [b64(pem::encode("CERTIFICATE", &cert).as_bytes())]
    }});
    let c = canonicalize(&proposed("dsse", "0.0.1", spec)).expect("valid dsse");
    let ours: Value = serde_json::from_slice(&c.body).expect("json");
    let theirs: Value = serde_json::from_slice(
        &STANDARD
            .decode(entry["canonicalizedBody"].as_str().expect("body"))
            .expect("b64"),
    )
    .expect("json");
    assert_eq!(ours["spec"]["payloadHash"], theirs["spec"]["payloadHash"]);
    assert_eq!(ours["spec"]["signatures"], theirs["spec"]["signatures"]);
    assert_eq!(
        ours["spec"]["envelopeHash"]["value"],
        json!(hex::encode(sha256(envelope_text.as_bytes())))
    );
    assert!(c.index_keys.iter().any(|k| k.starts_with("sha256:")));
}

struct Signed {
    key: FileSigner,
    digest: Vec<u8>,
    sig: Vec<u8>,
}

fn signed(curve: Curve, data: &[u8]) -> Signed {
    let key = FileSigner::generate(curve);
    let alg = key.public_key().default_hash();
    Signed {
        digest: alg.digest(data),
        sig: key.sign(data).expect("sign"),
        key,
    }
}

fn hr_spec(s: &Signed, alg: &str) -> Value {
    json!({
        "signature": {"content": b64(&s.sig), "publicKey": {"content": b64(s.key.public_key().to_pem().as_bytes())}},
        "data": {"hash": {"algorithm": alg, "value": hex::encode(&s.digest)}}
    })
}

fn invalid_message(e: Result<Canonical, EntryError>) -> String {
    match e {
        Err(EntryError::Invalid(m) | EntryError::Unsupported(m)) => m,
        other => panic!("expected Invalid or Unsupported, got {other:?}"),
    }
}

#[test]
fn hashedrekord_accepts_own_keys_and_indexes_them() {
    let s = signed(Curve::P256, b"artifact");
    let c = canonicalize(&proposed("hashedrekord", "0.0.1", hr_spec(&s, "sha256"))).expect("valid");
    // the digest in upper case is the same entry: same body, same index keys
    let mut upper = hr_spec(&s, "sha256");
    upper["data"]["hash"]["value"] = json!(hex::encode(&s.digest).to_uppercase());
    let cu = canonicalize(&proposed("hashedrekord", "0.0.1", upper)).expect("upper case");
    assert_eq!(cu.body, c.body);
    assert_eq!(cu.index_keys, c.index_keys);
    let key_hash = hex::encode(sha256(s.key.public_key().to_pem().as_bytes()));
    assert!(c.index_keys.contains(&key_hash));
    assert!(
        c.index_keys
            .contains(&format!("sha256:{}", hex::encode(&s.digest)))
    );
    // JCS: keys sorted, no whitespace
    let v: Value = serde_json::from_slice(&c.body).expect("json");
    assert_eq!(jcs::to_vec(&v), c.body);
    let s384 = signed(Curve::P384, b"artifact");
    canonicalize(&proposed("hashedrekord", "0.0.1", hr_spec(&s384, "sha384"))).expect("p384");
}

#[test]
fn hashedrekord_refusals_name_the_problem() {
    let s = signed(Curve::P256, b"artifact");
    let hr = |spec| canonicalize(&proposed("hashedrekord", "0.0.1", spec));

    let mut bad_sig = hr_spec(&s, "sha256");
    let other = signed(Curve::P256, b"artifact");
    bad_sig["signature"]["content"] = json!(b64(&other.sig));
    assert!(invalid_message(hr(bad_sig)).contains("verifying signature"));

    let mut wrong_digest = hr_spec(&s, "sha256");
    wrong_digest["data"]["hash"]["value"] = json!(hex::encode(sha256(b"something else")));
    assert!(invalid_message(hr(wrong_digest)).contains("verifying signature"));

    let mut short = hr_spec(&s, "sha256");
    short["data"]["hash"]["value"] = json!("abcd");
    assert!(invalid_message(hr(short)).contains("invalid value for hash"));

    let mut not_hex = hr_spec(&s, "sha256");
    not_hex["data"]["hash"]["value"] = json!("g".repeat(64));
    assert!(invalid_message(hr(not_hex)).contains("invalid value for hash"));

    let mut alg = hr_spec(&s, "md5");
    alg["data"]["hash"]["value"] = json!(hex::encode(&s.digest));
    assert!(invalid_message(hr(alg)).contains("should be one of"));

    // P-256 with a SHA-384 digest is not an allowed pair
    let data = b"x";
    let d384 = sigstack_crypto::HashAlg::Sha384.digest(data);
    let pair = json!({
        "signature": {"content": b64(&s.sig), "publicKey": {"content": b64(s.key.public_key().to_pem().as_bytes())}},
        "data": {"hash": {"algorithm": "sha384", "value": hex::encode(d384)}}
    });
    assert!(invalid_message(hr(pair)).contains("not allowed"));

    let mut pem_junk = hr_spec(&s, "sha256");
    pem_junk["signature"]["publicKey"]["content"] = json!(b64(
        b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
    ));
    assert!(invalid_message(hr(pem_junk)).contains("invalid public key"));

    let mut not_b64 = hr_spec(&s, "sha256");
    not_b64["signature"]["content"] = json!("***");
    assert!(invalid_message(hr(not_b64)).contains("base64"));

    assert!(invalid_message(hr(json!({"data": {}}))).contains("missing signature"));
    assert!(
        invalid_message(hr(json!({"signature": {"content": "AA=="}})))
            .contains("missing public key")
    );
    assert!(invalid_message(hr(json!("a string"))).contains("invalid hashedrekord spec"));
}

#[test]
fn unknown_kinds_and_versions() {
    let spec = json!({});
    assert_eq!(
        canonicalize(&proposed("nonsense", "0.0.1", spec.clone())),
        Err(EntryError::UnknownKind("nonsense".into()))
    );
    assert!(
        invalid_message(canonicalize(&proposed(
            "hashedrekord",
            "0.0.9",
            spec.clone()
        )))
        .contains("version '0.0.9' not found")
    );
    assert!(
        invalid_message(canonicalize(&proposed("rekord", "0.0.1", spec.clone())))
            .contains("not enabled")
    );
    assert!(matches!(
        canonicalize(&proposed("hashedrekord", "one", spec)),
        Err(EntryError::Shape(_))
    ));
}

fn dsse_envelope(signers: &[&FileSigner], payload: &[u8]) -> String {
    let pt = "application/vnd.in-toto+json";
    let m = pae(pt, payload);
    let sigs: Vec<Value> = signers
        .iter()
        .map(|k| json!({"keyid": "", "sig": b64(&k.sign(&m).expect("sign"))}))
        .collect();
    serde_json::to_string(&json!({"payload": b64(payload), "payloadType": pt, "signatures": sigs}))
        .expect("json")
}

#[test]
fn dsse_verifies_every_signature() {
    let k1 = FileSigner::generate(Curve::P256);
    let k2 = FileSigner::generate(Curve::P256);
    let stmt = br#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha256":"abcd"}}],"predicateType":"x","predicate":{}}"#;
    let pem_of = |k: &FileSigner| b64(k.public_key().to_pem().as_bytes());
    let d = |env: String, verifiers: Vec<String>| {
        canonicalize(&proposed(
            "dsse",
            "0.0.1",
            json!({"proposedContent": {"envelope": env, "verifiers": verifiers}}),
        ))
    };
    let c = d(
        dsse_envelope(&[&k1, &k2], stmt),
        vec![pem_of(&k2), pem_of(&k1)],
    )
    .expect("two signers");
    let v: Value = serde_json::from_slice(&c.body).expect("json");
    let sigs = v["spec"]["signatures"].as_array().expect("array");
    assert_eq!(sigs.len(), 2);
    assert!(
        sigs[0]["signature"].as_str() < sigs[1]["signature"].as_str(),
        "sorted by signature"
    );
    assert!(c.index_keys.contains(&"sha256:abcd".to_string()));

    // as Rekor: a verifier after every signature is covered is not consulted
    let k3 = FileSigner::generate(Curve::P256);
    d(dsse_envelope(&[&k1], stmt), vec![pem_of(&k1), pem_of(&k3)]).expect("extra verifier ignored");
    // too many signatures for one entry
    let many: Vec<&FileSigner> = std::iter::repeat_n(&k1, MAX_SIGNATURES + 1).collect();
    assert!(invalid_message(d(dsse_envelope(&many, stmt), vec![pem_of(&k1)])).contains("at most"));
    // an oversize or control-character search key is dropped, the entry still logged
    let long = format!(
        r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"name":"a","digest":{{"sha256":"{}","x":"a\u0001b"}}}}]}}"#,
        "f".repeat(400)
    );
    let c = d(dsse_envelope(&[&k1], long.as_bytes()), vec![pem_of(&k1)]).expect("long digest");
    assert!(
        c.index_keys
            .iter()
            .all(|k| k.len() <= 256 && !k.chars().any(char::is_control))
    );
    assert!(
        c.index_keys.iter().any(|k| k.starts_with("sha256:")),
        "payload hash still indexed"
    );
    // a verifier that verifies nothing
    assert!(
        invalid_message(d(dsse_envelope(&[&k1], stmt), vec![pem_of(&k3)])).contains("Found: 0")
    );
    // a signature nobody verifies
    assert!(
        invalid_message(d(dsse_envelope(&[&k1, &k2], stmt), vec![pem_of(&k1)]))
            .contains("all signatures")
    );
    // tampered payload
    let mut env: Value = serde_json::from_str(&dsse_envelope(&[&k1], stmt)).expect("json");
    env["payload"] = json!(b64(b"{}"));
    assert!(invalid_message(d(env.to_string(), vec![pem_of(&k1)])).contains("Found: 0"));
    // no signatures, not JSON, no verifiers
    assert!(
        invalid_message(d(
            json!({"payload": "", "payloadType": "x", "signatures": []}).to_string(),
            vec![pem_of(&k1)]
        ))
        .contains("1 or more")
    );
    assert!(invalid_message(d("{".into(), vec![pem_of(&k1)])).contains("invalid DSSE envelope"));
    assert!(invalid_message(d(dsse_envelope(&[&k1], stmt), vec![])).contains("verifiers"));
}

#[test]
fn intoto_v002_double_base64_and_body() {
    let k = FileSigner::generate(Curve::P256);
    let payload = br#"{"_type":"https://in-toto.io/Statement/v0.1","subject":[{"name":"a","digest":{"sha256":"beef"}}]}"#;
    let pt = "application/vnd.in-toto+json";
    let sig = k.sign(&pae(pt, payload)).expect("sign");
    let pem = k.public_key().to_pem();
    let client_hash = "AB".repeat(32);
    let spec_with = |sig: &[u8], hash: &str, keyid: &str| {
        json!({"content": {
            "envelope": {
                "payloadType": pt,
                "payload": b64(b64(payload).as_bytes()),
                "signatures": [{"sig": b64(b64(sig).as_bytes()), "publicKey": b64(pem.as_bytes()), "keyid": keyid}]
            },
            "hash": {"algorithm": "sha256", "value": hash},
            "payloadHash": {"algorithm": "sha256", "value": "ignored"}
        }})
    };
    let spec = |sig: &[u8]| spec_with(sig, &client_hash, "");
    let c = canonicalize(&proposed("intoto", "0.0.2", spec(&sig))).expect("valid intoto");
    let v: Value = serde_json::from_slice(&c.body).expect("json");
    let content = &v["spec"]["content"];
    assert!(
        content["envelope"].get("payload").is_none(),
        "payload is dropped"
    );
    // the client's digest, stored in lowercase
    assert_eq!(content["hash"]["value"], json!("ab".repeat(32)));
    // anything else in its place (a 3.9 kB script, say) is refused, as is a huge keyid
    for bad in [
        "client-computed".to_string(),
        format!("<script>{}</script>", "x".repeat(3900)),
        "g".repeat(64),
    ] {
        assert!(
            invalid_message(canonicalize(&proposed(
                "intoto",
                "0.0.2",
                spec_with(&sig, &bad, "")
            )))
            .contains("64 hex digits"),
            "{bad:.20}"
        );
    }
    assert!(
        invalid_message(canonicalize(&proposed(
            "intoto",
            "0.0.2",
            spec_with(&sig, &client_hash, &"k".repeat(257))
        )))
        .contains("keyid")
    );
    canonicalize(&proposed(
        "intoto",
        "0.0.2",
        spec_with(&sig, &client_hash, &"k".repeat(256)),
    ))
    .expect("a 256-byte keyid");
    assert_eq!(
        content["payloadHash"]["value"],
        json!(hex::encode(sha256(payload)))
    );
    assert_eq!(
        content["envelope"]["signatures"][0]["sig"],
        json!(b64(b64(&sig).as_bytes()))
    );
    assert!(content["envelope"]["signatures"][0].get("keyid").is_none());
    assert!(c.index_keys.contains(&"sha256:beef".to_string()));

    let mut bad = sig.clone();
    let n = bad.len();
    bad[n - 3] ^= 1;
    assert!(canonicalize(&proposed("intoto", "0.0.2", spec(&bad))).is_err());
    let mut no_hash = spec(&sig);
    no_hash["content"]
        .as_object_mut()
        .expect("obj")
        .remove("hash");
    assert!(
        invalid_message(canonicalize(&proposed("intoto", "0.0.2", no_hash)))
            .contains("content.hash")
    );
}

#[test]
fn intoto_v001_as_cosign_uploads_it() {
    let k = FileSigner::generate(Curve::P256);
    let other = FileSigner::generate(Curve::P256);
    let stmt = br#"{"_type":"https://in-toto.io/Statement/v0.1","subject":[{"name":"img","digest":{"sha256":"abcd"}}],"predicateType":"x","predicate":{}}"#;
    let env = dsse_envelope(&[&k], stmt);
    let spec = |env: &str, key: &FileSigner| json!({"content": {"envelope": env}, "publicKey": b64(key.public_key().to_pem().as_bytes())});
    let c = canonicalize(&proposed("intoto", "0.0.1", spec(&env, &k))).expect("accepted");
    assert_eq!((c.kind, c.api_version), ("intoto", "0.0.1"));
    let body: Value = serde_json::from_slice(&c.body).expect("json");
    let sha = |b: &[u8]| hex::encode(sigstack_crypto::sha256(b));
    assert_eq!(
        body,
        json!({"apiVersion": "0.0.1", "kind": "intoto", "spec": {
            "content": {
                "hash": {"algorithm": "sha256", "value": sha(env.as_bytes())},
                "payloadHash": {"algorithm": "sha256", "value": sha(stmt)}
            },
            "publicKey": b64(k.public_key().to_pem().as_bytes())
        }})
    );
    // keys sorted, as JCS orders them
    let text = String::from_utf8(c.body.clone()).expect("utf-8");
    assert!(
        text.starts_with(r#"{"apiVersion":"0.0.1","kind":"intoto","spec":{"content":{"hash":"#),
        "{text}"
    );
    assert!(c.index_keys.contains(&"sha256:abcd".to_string()));
    assert!(
        c.index_keys
            .contains(&format!("sha256:{}", sha(env.as_bytes())))
    );
    // another key, no envelope, no key: refused
    assert!(
        invalid_message(canonicalize(&proposed(
            "intoto",
            "0.0.1",
            spec(&env, &other)
        )))
        .contains("threshold")
    );
    let bare = json!({"content": {"hash": {"algorithm": "sha256", "value": sha(b"x")}}, "publicKey": b64(k.public_key().to_pem().as_bytes())});
    assert!(invalid_message(canonicalize(&proposed("intoto", "0.0.1", bare))).contains("envelope"));
    let nokey = json!({"content": {"envelope": env}});
    assert!(
        invalid_message(canonicalize(&proposed("intoto", "0.0.1", nokey))).contains("public key")
    );
}

#[test]
fn lookups_compute_the_same_leaf_without_checking_signatures() {
    let s = signed(Curve::P256, b"artifact");
    let good = proposed("hashedrekord", "0.0.1", hr_spec(&s, "sha256"));
    let logged = canonicalize(&good).expect("valid");
    let looked = super::canonicalize_for_lookup(&good).expect("valid");
    assert_eq!(logged.leaf_hash, looked.leaf_hash);
    assert_eq!(logged.body, looked.body);
    // a signature that does not verify: refused for logging, but looking it up costs no
    // signature check (and finds nothing, since it was never logged)
    let other = signed(Curve::P256, b"other");
    let mut bad = hr_spec(&s, "sha256");
    bad["signature"]["content"] = json!(b64(&other.sig));
    let bad = proposed("hashedrekord", "0.0.1", bad);
    assert!(canonicalize(&bad).is_err());
    let found = super::canonicalize_for_lookup(&bad).expect("a lookup key");
    assert_ne!(found.leaf_hash, logged.leaf_hash);
    // malformed input is still refused
    let mut broken = hr_spec(&s, "sha256");
    broken["data"]["hash"]["value"] = json!("zz");
    assert!(super::canonicalize_for_lookup(&proposed("hashedrekord", "0.0.1", broken)).is_err());
}
