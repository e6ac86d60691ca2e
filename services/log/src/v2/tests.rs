use super::*;
use crate::testdata;
use sigstack_crypto::{Curve, Ed25519Signer, FileSigner, Signer};

fn b64(v: &Value) -> Vec<u8> {
    STANDARD
        .decode(v.as_str().expect("a string"))
        .expect("base64")
}

/// The request a client would have sent for a public-good Rekor v2 bundle, and the body
/// the log stored for it.
fn request_for(case: &str) -> (Value, Vec<u8>) {
    let b = testdata::bundle(case);
    let e = &b["verificationMaterial"]["tlogEntries"][0];
    let cert = &b["verificationMaterial"]["certificate"]["rawBytes"];
    let (digest, sig) = match b.get("messageSignature") {
        Some(ms) => (
            ms["messageDigest"]["digest"].clone(),
            ms["signature"].clone(),
        ),
        None => {
            let env = &b["dsseEnvelope"];
            let payload = b64(&env["payload"]);
            let pae = crate::kinds::pae(env["payloadType"].as_str().expect("type"), &payload);
            (
                json!(STANDARD.encode(sigstack_crypto::sha256(&pae))),
                env["signatures"][0]["sig"].clone(),
            )
        }
    };
    let req = json!({"hashedRekordRequestV002": {
        "digest": digest,
        "signature": {"content": sig, "verifier": {
            "x509Certificate": {"rawBytes": cert},
            "keyDetails": "PKIX_ECDSA_P256_SHA_256"}}}});
    (req, b64(&e["canonicalizedBody"]))
}

#[test]
fn bodies_are_byte_identical_to_public_good_rekor_v2() {
    for case in ["rekor2-happy-path", "rekor2-dsse-happy-path"] {
        let (req, stored) = request_for(case);
        let c = canonicalize(req.to_string().as_bytes()).expect(case);
        assert_eq!(
            String::from_utf8_lossy(&c.body),
            String::from_utf8_lossy(&stored),
            "{case}"
        );
        assert_eq!(c.kind, "hashedrekord");
        assert!(
            c.index_keys.iter().any(|k| k.starts_with("sha256:")),
            "{case}"
        );
    }
}

#[test]
fn refuses_what_rekor_tiles_refuses() {
    let (req, _) = request_for("rekor2-happy-path");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut r = req.clone();
        f(&mut r);
        canonicalize(r.to_string().as_bytes())
    };
    let sig = "/hashedRekordRequestV002/signature";
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("unknown field", Box::new(|r| r["extra"] = json!(1))),
        (
            "nested unknown field",
            Box::new(|r| r["hashedRekordRequestV002"]["x"] = json!(1)),
        ),
        ("both kinds", Box::new(|r| r["dsseRequestV002"] = json!({}))),
        (
            "no digest",
            Box::new(|r| r["hashedRekordRequestV002"]["digest"] = json!("")),
        ),
        (
            "short digest",
            Box::new(|r| r["hashedRekordRequestV002"]["digest"] = json!("AAAA")),
        ),
        (
            "no signature",
            Box::new(move |r| *r.pointer_mut(&format!("{sig}/content")).expect("x") = json!("")),
        ),
        (
            "other key details",
            Box::new(move |r| {
                *r.pointer_mut(&format!("{sig}/verifier/keyDetails"))
                    .expect("x") = json!("PKIX_ECDSA_P384_SHA_384")
            }),
        ),
        (
            "pure ed25519",
            Box::new(move |r| {
                *r.pointer_mut(&format!("{sig}/verifier/keyDetails"))
                    .expect("x") = json!("PKIX_ED25519")
            }),
        ),
        (
            "no key details",
            Box::new(move |r| {
                r.pointer_mut(&format!("{sig}/verifier"))
                    .expect("x")
                    .as_object_mut()
                    .expect("o")
                    .remove("keyDetails")
                    .map(|_| ())
                    .unwrap_or(())
            }),
        ),
        (
            "bad certificate",
            Box::new(move |r| {
                *r.pointer_mut(&format!("{sig}/verifier/x509Certificate/rawBytes"))
                    .expect("x") = json!("AAAA")
            }),
        ),
        (
            "tampered digest",
            Box::new(|r| {
                r["hashedRekordRequestV002"]["digest"] = json!(STANDARD.encode([1u8; 32]))
            }),
        ),
    ];
    for (what, f) in cases {
        assert!(with(&*f).is_err(), "{what} was accepted");
    }
}

#[test]
fn managed_keys_ed25519ph_and_dsse() {
    // a P-256 public key verifier
    let k = FileSigner::generate(Curve::P256);
    let digest = sigstack_crypto::sha256(b"artifact");
    let sig = k.sign_sha256_digest(&digest).expect("signs");
    let req = json!({"hashedRekordRequestV002": {"digest": STANDARD.encode(digest), "signature": {
        "content": STANDARD.encode(&sig),
        "verifier": {"publicKey": {"rawBytes": STANDARD.encode(k.public_key().spki_der())}, "keyDetails": "PKIX_ECDSA_P256_SHA_256"}}}});
    let c = canonicalize(req.to_string().as_bytes()).expect("P-256 key");
    let body: Value = serde_json::from_slice(&c.body).expect("json");
    assert!(
        body.pointer("/spec/hashedRekordV002/signature/verifier/publicKey/rawBytes")
            .is_some()
    );
    // URL-safe unpadded base64 in, padded standard base64 out: one body per entry
    let req2 = json!({"hashedRekordRequestV002": {"digest": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest), "signature": {
        "content": STANDARD.encode(&sig),
        "verifier": {"public_key": {"raw_bytes": STANDARD.encode(k.public_key().spki_der())}, "key_details": "PKIX_ECDSA_P256_SHA_256"}}}});
    assert_eq!(
        canonicalize(req2.to_string().as_bytes())
            .expect("aliases")
            .body,
        c.body
    );

    // Ed25519ph: the signature is over the SHA-512 digest
    let ed = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let prehash = <sha2::Sha512 as sha2::Digest>::new_with_prefix(b"artifact");
    let edsig = ed.sign_prehashed(prehash.clone(), None).expect("signs");
    let spki = {
        let mut s = vec![
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        s.extend_from_slice(ed.verifying_key().as_bytes());
        s
    };
    let d512 = <sha2::Sha512 as sha2::Digest>::finalize(prehash);
    let req = json!({"hashedRekordRequestV002": {"digest": STANDARD.encode(d512), "signature": {
        "content": STANDARD.encode(edsig.to_bytes()),
        "verifier": {"publicKey": {"rawBytes": STANDARD.encode(&spki)}, "keyDetails": "PKIX_ED25519_PH"}}}});
    let c = canonicalize(req.to_string().as_bytes()).expect("Ed25519ph");
    assert!(String::from_utf8_lossy(&c.body).contains("\"algorithm\":\"SHA2_512\""));

    // dsseRequestV002, as sigstore-js sends it
    let payload = br#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha256":"abcd"}}]}"#;
    let pae = crate::kinds::pae("application/vnd.in-toto+json", payload);
    let dsig = k.sign(&pae).expect("signs");
    let req = json!({"dsseRequestV002": {
        "envelope": {"payload": STANDARD.encode(payload), "payloadType": "application/vnd.in-toto+json",
                     "signatures": [{"sig": STANDARD.encode(&dsig), "keyid": ""}]},
        "verifiers": [{"publicKey": {"rawBytes": STANDARD.encode(k.public_key().spki_der())}, "keyDetails": "PKIX_ECDSA_P256_SHA_256"}]}});
    let c = canonicalize(req.to_string().as_bytes()).expect("dsse");
    assert_eq!(c.kind, "dsse");
    let body: Value = serde_json::from_slice(&c.body).expect("json");
    assert_eq!(
        body.pointer("/spec/dsseV002/payloadHash/digest")
            .and_then(Value::as_str),
        Some(STANDARD.encode(sigstack_crypto::sha256(payload)).as_str())
    );
    assert!(c.index_keys.contains(&"sha256:abcd".to_string()));
    // a signature by a key that is not among the verifiers
    let other = Ed25519Signer::generate();
    let mut bad = req.clone();
    bad["dsseRequestV002"]["envelope"]["signatures"][0]["sig"] =
        json!(STANDARD.encode(other.sign(&pae).expect("signs")));
    assert!(canonicalize(bad.to_string().as_bytes()).is_err());
}

#[test]
fn ecdsa_signatures_are_der_only() {
    let k = FileSigner::generate(Curve::P256);
    let digest = sigstack_crypto::sha256(b"artifact");
    let der = k.sign_sha256_digest(&digest).expect("signs");
    // the same signature as fixed-width r||s
    let (r, s) = {
        let rl = der[3] as usize;
        let r = &der[4..4 + rl];
        let s = &der[4 + rl + 2..];
        (r.to_vec(), s.to_vec())
    };
    let fixed = |v: &[u8]| {
        let v = v.strip_prefix(&[0u8][..]).unwrap_or(v);
        let mut out = vec![0u8; 32 - v.len()];
        out.extend_from_slice(v);
        out
    };
    let raw = [fixed(&r), fixed(&s)].concat();
    let req = |sig: &[u8]| {
        json!({"hashedRekordRequestV002": {"digest": STANDARD.encode(digest), "signature": {
            "content": STANDARD.encode(sig),
            "verifier": {"publicKey": {"rawBytes": STANDARD.encode(k.public_key().spki_der())}, "keyDetails": "PKIX_ECDSA_P256_SHA_256"}}}})
        .to_string()
    };
    assert!(canonicalize(req(&der).as_bytes()).is_ok());
    let e = canonicalize(req(&raw).as_bytes()).expect_err("r||s is refused");
    assert!(e.to_string().contains("DER"), "{e}");
    let mut trailing = der.clone();
    trailing.push(0);
    assert!(canonicalize(req(&trailing).as_bytes()).is_err());
}
