//! An outside verifier accepts the log's output: a bundle assembled from a
//! `POST /api/v1/log/entries` response verifies with sigstore-js (the real
//! `@sigstore/verify`, run by tests/interop/js/verify-bundle.mjs) against a trusted root
//! naming our log, and fails when one byte of the proof, checkpoint or SET changes.

use crate::support::*;
use serde_json::{Value, json};
use sigstack_crypto::{Curve, FileSigner, PublicKey, log_id};
use std::path::{Path, PathBuf};
use std::process::Command;

fn harness() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/js");
    assert!(
        dir.join("node_modules/@sigstore/verify").exists(),
        "the sigstore-js harness is not installed: run `npm ci --prefix tests/interop/js` (scripts/test does it)"
    );
    dir.join("verify-bundle.mjs")
}

fn trusted_root(url: &str, key: &PublicKey) -> Value {
    json!({
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [{
            "baseUrl": url, "hashAlgorithm": "SHA2_256",
            "publicKey": {"rawBytes": b64(key.spki_der()), "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                          "validFor": {"start": "2020-01-01T00:00:00Z"}},
            "logId": {"keyId": b64(&log_id(key.spki_der()))}
        }],
        "certificateAuthorities": [], "ctlogs": [], "timestampAuthorities": []
    })
}

fn hex_to_b64(h: &Value) -> Value {
    json!(b64(&hex::decode(h.as_str().expect("hex")).expect("hex")))
}

/// A v0.3 public-key bundle from a Rekor v1 answer, as sigstore clients assemble it.
fn bundle(ans: &Answer, digest: &[u8], sig: &[u8]) -> Value {
    let e = &ans.entry;
    let p = &e["verification"]["inclusionProof"];
    json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {
            "publicKey": {"hint": "signer"},
            "tlogEntries": [{
                "logIndex": e["logIndex"].as_u64().expect("i").to_string(),
                "logId": {"keyId": hex_to_b64(&e["logID"])},
                "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"},
                "integratedTime": e["integratedTime"].as_i64().expect("t").to_string(),
                "inclusionPromise": {"signedEntryTimestamp": e["verification"]["signedEntryTimestamp"]},
                "inclusionProof": {
                    "logIndex": p["logIndex"].as_u64().expect("i").to_string(),
                    "rootHash": hex_to_b64(&p["rootHash"]),
                    "treeSize": p["treeSize"].as_u64().expect("s").to_string(),
                    "hashes": p["hashes"].as_array().expect("h").iter().map(hex_to_b64).collect::<Vec<_>>(),
                    "checkpoint": {"envelope": p["checkpoint"]}
                },
                "canonicalizedBody": e["body"]
            }]
        },
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": b64(digest)},
            "signature": b64(sig)
        }
    })
}

fn run_js(dir: &Path, root: &Value, bundle: &Value, key_pem: &str) -> (bool, String) {
    std::fs::write(dir.join("root.json"), root.to_string()).expect("write");
    std::fs::write(dir.join("bundle.json"), bundle.to_string()).expect("write");
    std::fs::write(dir.join("key.pem"), key_pem).expect("write");
    let out = Command::new("node")
        .arg(harness())
        .args([
            "--trusted-root",
            "root.json",
            "--bundle",
            "bundle.json",
            "--artifact",
            "artifact.txt",
            "--key",
            "key.pem",
        ])
        .current_dir(dir)
        .output()
        .expect("node");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Flips one bit of a base64 field's decoded bytes.
fn flip_b64(v: &mut Value, at: usize) {
    let mut raw = unb64(v.as_str().expect("b64"));
    let i = at.min(raw.len() - 1);
    raw[i] ^= 0x01;
    *v = json!(b64(&raw));
}

pub async fn sigstore_js_verifies_log_output(b: Backend) {
    let s = Server::start(b).await;
    let c = http();
    let signer = FileSigner::generate(Curve::P256);
    let a = Artifacts { key: signer };
    // a few entries first so the proof has hashes
    for i in 0..5 {
        assert_eq!(
            post_entry(&c, &s.url, &a.hashedrekord(format!("pad {i}").as_bytes()))
                .await
                .status(),
            201
        );
    }
    let artifact = b"an artifact verified by sigstore-js\n";
    let proposed = a.hashedrekord(artifact);
    let r = post_entry(&c, &s.url, &proposed).await;
    assert_eq!(r.status(), 201);
    let ans = Answer::from_map(&r.json().await.expect("json"));
    let dir = temp_dir("js");
    std::fs::write(dir.join("artifact.txt"), artifact).expect("write");
    // ECDSA signatures are randomised: the bundle must carry the one that was logged
    let sig = unb64(
        proposed["spec"]["signature"]["content"]
            .as_str()
            .expect("sig"),
    );
    let good = bundle(&ans, &sigstack_crypto::sha256(artifact), &sig);
    let root = trusted_root(&s.url, &s.key);
    let key_pem = {
        use sigstack_crypto::Signer;
        a.key.public_key().to_pem()
    };
    let (ok, out) = run_js(&dir, &root, &good, &key_pem);
    assert!(ok, "sigstore-js rejected our log's bundle: {out}");

    let mut tampered: Vec<(&str, Value)> = Vec::new();
    let mut t = good.clone();
    flip_b64(
        &mut t["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"][0],
        7,
    );
    tampered.push(("proof hash", t));
    let mut t = good.clone();
    let cp =
        t["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["checkpoint"]["envelope"]
            .as_str()
            .expect("cp")
            .to_string();
    let (body, sigline) = cp.split_at(cp.rfind(' ').expect("sig line") + 1);
    let mut sig_bytes = unb64(sigline.trim_end());
    let n = sig_bytes.len();
    sig_bytes[n - 5] ^= 0x01;
    t["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["checkpoint"]["envelope"] =
        json!(format!("{body}{}\n", b64(&sig_bytes)));
    tampered.push(("checkpoint signature", t));
    let mut t = good.clone();
    flip_b64(
        &mut t["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["rootHash"],
        3,
    );
    tampered.push(("proof root", t));
    let mut t = good.clone();
    flip_b64(
        &mut t["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"]["signedEntryTimestamp"],
        20,
    );
    tampered.push(("SET", t));
    let mut t = good.clone();
    t["verificationMaterial"]["tlogEntries"][0]["integratedTime"] =
        json!((ans.entry["integratedTime"].as_i64().expect("t") + 1).to_string());
    tampered.push(("integrated time", t));
    for (what, bad) in tampered {
        let (ok, out) = run_js(&dir, &root, &bad, &key_pem);
        assert!(
            !ok,
            "sigstore-js accepted a bundle with a changed {what}: {out}"
        );
    }
    // a trusted root naming another log
    let other = FileSigner::generate(Curve::P256);
    let (ok, _) = run_js(
        &dir,
        &trusted_root(&s.url, {
            use sigstack_crypto::Signer;
            other.public_key()
        }),
        &good,
        &key_pem,
    );
    assert!(!ok, "verified against another log's key");
}
