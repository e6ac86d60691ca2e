//! Seeds: genuine inputs made here with fresh keys, and real ones read from the shared
//! conformance assets (never copied into the repository).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sigstack_crypto::{Curve, FileSigner, Signer};
use std::path::PathBuf;

fn shared_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

const STATEMENT: &str = r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a.txt","digest":{"sha256":"a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{"buildDefinition":{"buildType":"x"}}}"#;

fn pem(s: &FileSigner) -> String {
    s.public_key().to_pem()
}

fn proposed_entries() -> Vec<Value> {
    let key = FileSigner::generate(Curve::P256);
    let data = b"hello, fuzzer\n";
    let digest = sigstack_crypto::sha256(data);
    let sig = key.sign(data).expect("sign");
    let pae = sigstack::verify::dsse::pae("application/vnd.in-toto+json", STATEMENT.as_bytes());
    let dsse_sig = key.sign(&pae).expect("sign");
    let envelope = json!({
        "payloadType": "application/vnd.in-toto+json",
        "payload": STANDARD.encode(STATEMENT),
        "signatures": [{"keyid": "", "sig": STANDARD.encode(&dsse_sig)}],
    });
    let pub_b64 = STANDARD.encode(pem(&key));
    vec![
        json!({"kind": "hashedrekord", "apiVersion": "0.0.1", "spec": {
            "signature": {"content": STANDARD.encode(&sig), "publicKey": {"content": pub_b64}},
            "data": {"hash": {"algorithm": "sha256", "value": hex::encode(digest)}},
        }}),
        json!({"kind": "dsse", "apiVersion": "0.0.1", "spec": {"proposedContent": {
            "envelope": envelope.to_string(),
            "verifiers": [pub_b64],
        }}}),
        json!({"kind": "intoto", "apiVersion": "0.0.2", "spec": {"content": {
            "envelope": {
                "payloadType": "application/vnd.in-toto+json",
                "payload": STANDARD.encode(STANDARD.encode(STATEMENT)),
                "signatures": [{
                    "sig": STANDARD.encode(STANDARD.encode(&dsse_sig)),
                    "publicKey": pub_b64,
                }],
            },
            "hash": {"algorithm": "sha256", "value": hex::encode(sigstack_crypto::sha256(envelope.to_string().as_bytes()))},
            "payloadHash": {"algorithm": "sha256", "value": hex::encode(sigstack_crypto::sha256(STATEMENT.as_bytes()))},
        }}}),
        json!({"kind": "intoto", "apiVersion": "0.0.1", "spec": {
            "content": {"envelope": envelope.to_string()},
            "publicKey": pub_b64,
        }}),
    ]
}

fn ca_certificate() -> Vec<u8> {
    let key = FileSigner::generate(Curve::P256);
    let name = sigstack_ca::cert::ca_name("fuzz", "fuzz root").expect("name");
    sigstack_ca::cert::ca_certificate(
        name,
        &key,
        None,
        sigstack_ca::cert::serial([7; 20]).expect("serial"),
        1_700_000_000,
        1_800_000_000,
        Some(0),
        true,
    )
    .expect("certificate")
}

fn token_and_jwks() -> Vec<u8> {
    let key = FileSigner::generate(Curve::P256);
    let claims: sigstack_oidc::jwt::IdClaims = serde_json::from_value(json!({
        "iss": "https://issuer.example", "sub": "alice", "aud": "sigstore",
        "exp": 1_700_000_600, "iat": 1_700_000_000, "email": "alice@example.org",
        "email_verified": true,
        "federated_claims": {"connector_id": "local", "user_id": "alice"},
    }))
    .expect("claims");
    let token = sigstack_oidc::jwt::mint(&key, &claims).expect("token");
    let jwks = sigstack_oidc::jwt::jwks(&[key.public_key()]).expect("jwks");
    let mut out = token.into_bytes();
    out.push(b'\n');
    out.extend_from_slice(jwks.to_string().as_bytes());
    out
}

fn tuf_root() -> Vec<u8> {
    use sigstack_tuf::repo::{RoleSpec, root};
    let key = FileSigner::generate(Curve::P256);
    let spec = RoleSpec::single(key.public_key());
    let r = root(
        1,
        1_800_000_000,
        [
            ("root", &spec),
            ("targets", &spec),
            ("snapshot", &spec),
            ("timestamp", &spec),
        ],
    )
    .expect("root");
    let mut env = sigstack_tuf::Envelope::new(&r).expect("envelope");
    env.sign(&key).expect("sign");
    env.to_bytes()
}

fn checkpoint() -> Vec<u8> {
    let key = FileSigner::generate(Curve::P256);
    let cp = sigstack_log::checkpoint::Checkpoint {
        origin: "fuzz.example - 1".into(),
        size: 3,
        root: [9; 32],
    };
    cp.sign("fuzz.example", &key).expect("sign").into_bytes()
}

fn rekor_v2_requests() -> Vec<Vec<u8>> {
    let key = FileSigner::generate(Curve::P256);
    let digest = sigstack_crypto::sha256(b"fuzz artifact");
    let sig = key.sign_sha256_digest(&digest).expect("sign");
    let verifier = json!({"publicKey": {"rawBytes": STANDARD.encode(key.public_key().spki_der())},
                          "keyDetails": "PKIX_ECDSA_P256_SHA_256"});
    let payload = STATEMENT.as_bytes();
    let pae = sigstack::verify::dsse::pae("application/vnd.in-toto+json", payload);
    let dsig = key.sign(&pae).expect("sign");
    vec![
        json!({"hashedRekordRequestV002": {"digest": STANDARD.encode(digest),
            "signature": {"content": STANDARD.encode(&sig), "verifier": verifier}}})
        .to_string()
        .into_bytes(),
        json!({"dsseRequestV002": {"envelope": {"payload": STANDARD.encode(payload),
            "payloadType": "application/vnd.in-toto+json",
            "signatures": [{"sig": STANDARD.encode(&dsig), "keyid": ""}]},
            "verifiers": [verifier]}})
        .to_string()
        .into_bytes(),
    ]
}

fn tlog_tiles() -> Vec<Vec<u8>> {
    let signer = sigstack_fuzzing::log_key_signer();
    let note = |size: u64| {
        sigstack_log::checkpoint::Checkpoint {
            origin: "fuzz.example".into(),
            size,
            root: [9; 32],
        }
        .sign_ed25519("fuzz.example", signer)
        .expect("sign")
    };
    let add = sigstack_log::witness::AddCheckpoint {
        old_size: 3,
        proof: vec![[1; 32], [2; 32]],
        note: note(5),
    };
    vec![
        b"1/x001/x234/067.p/17".to_vec(),
        b"entries/042".to_vec(),
        note(3).into_bytes(),
        add.encode().into_bytes(),
        sigstack_log::note::vkey("fuzz.example", sigstack_crypto::Signer::public_key(signer))
            .expect("vkey")
            .into_bytes(),
    ]
}

/// Seeds made for `target`.
pub fn made(target: &str) -> Vec<Vec<u8>> {
    let trust = |f: &str| {
        std::fs::read(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../client/trust/public-good")
                .join(f),
        )
        .expect("a built-in trust file")
    };
    match target {
        "proposed_entry" => proposed_entries()
            .iter()
            .map(|v| v.to_string().into_bytes())
            .collect(),
        "x509" => {
            let der = ca_certificate();
            let pem = sigstack_crypto::pem::encode("CERTIFICATE", &der);
            vec![der, pem.into_bytes()]
        }
        "jwt" => vec![token_and_jwks()],
        "tuf_metadata" => vec![tuf_root(), trust("root.json")],
        "rfc3161" => vec![
            sigstack::tsa::request_der(&[7; 32], 1),
            json!({"artifactHash": STANDARD.encode([7u8; 32]), "hashAlgorithm": "sha256",
                   "nonce": 1, "certificates": true})
            .to_string()
            .into_bytes(),
        ],
        "dsse_statement" => vec![STATEMENT.as_bytes().to_vec()],
        "checkpoint" => vec![checkpoint()],
        "trust_files" => vec![
            trust("trusted_root.json"),
            trust("signing_config.v0.2.json"),
        ],
        "canonical_json" => vec![
            trust("signing_config.v0.2.json"),
            br#"{"a":[1,-2.5e-7,"\u00e9\ud83d\ude00",true,null],"b":{"z":1,"a":{}}}"#.to_vec(),
        ],
        "verify_bundle" => Vec::new(),
        "rekor_v2_entry" => rekor_v2_requests(),
        "tlog_tiles" => tlog_tiles(),
        other => panic!("no seeds for {other}"),
    }
}

/// Real inputs for `target` from the shared conformance bundles.
pub fn shared(target: &str) -> Vec<Vec<u8>> {
    let dir = shared_dir().join("conformance-assets/test/assets/bundle-verify");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    cases.sort();
    let bundles: Vec<(Vec<u8>, Value)> = cases
        .iter()
        .filter_map(|c| std::fs::read(c.join("bundle.sigstore.json")).ok())
        .filter_map(|b| serde_json::from_slice(&b).ok().map(|v| (b, v)))
        .collect();
    let b64s = |ptr: &str| -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (_, v) in &bundles {
            let mut stack = vec![v];
            while let Some(n) = stack.pop() {
                match n {
                    Value::Object(m) => {
                        for (k, c) in m {
                            if k == ptr
                                && let Some(s) = c.as_str()
                                && let Ok(b) = STANDARD.decode(s)
                            {
                                out.push(b);
                            }
                            stack.push(c);
                        }
                    }
                    Value::Array(a) => stack.extend(a),
                    _ => {}
                }
            }
        }
        out.truncate(24);
        out
    };
    match target {
        "verify_bundle" | "canonical_json" => bundles.into_iter().map(|(b, _)| b).collect(),
        "x509" => b64s("rawBytes"),
        "rfc3161" => b64s("signedTimestamp"),
        "proposed_entry" => b64s("canonicalizedBody"),
        "checkpoint" => bundles
            .iter()
            .filter_map(|(_, v)| {
                v.pointer("/verificationMaterial/tlogEntries/0/inclusionProof/checkpoint/envelope")
                    .and_then(Value::as_str)
                    .map(|s| s.as_bytes().to_vec())
            })
            .take(16)
            .collect(),
        "dsse_statement" => b64s("payload"),
        "trust_files" => {
            let extra = shared_dir().join("conformance-assets/extra");
            std::fs::read_dir(extra)
                .map(|d| {
                    d.filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.extension().is_some_and(|x| x == "json"))
                        .filter_map(|p| std::fs::read(p).ok())
                        .collect()
                })
                .unwrap_or_default()
        }
        _ => Vec::new(),
    }
}
