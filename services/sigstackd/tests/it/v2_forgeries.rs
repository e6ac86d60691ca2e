//! Rekor v2 bundles carry no signed entry timestamp: their trust rests on the
//! checkpoint's signature, the inclusion proof and a timestamp authority's signed time.
//! On the dev stack, `sigstack` signs into the v2 log; `sigstack`, sigstore-python and
//! cosign v3 accept that bundle, and each refuses it with the checkpoint re-signed by
//! another key, with a proof hash changed, and signed again with a timestamp from a TSA
//! the trusted root does not name.

use crate::client::p;
use crate::stack::{Clients, Identity};
use crate::support::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sigstack_log::checkpoint::Checkpoint;
use std::path::Path;

const VERIFIERS: [&str; 3] = ["sigstack", "sigstore-python", "cosign v3"];

/// A dev stack in `data`, the five clients trusting it, and the identity they sign as.
fn dev_with_clients(dir: &Path, data: &Path) -> (crate::keyless::Killed, Value, Clients, Identity) {
    let (dev, stack) = crate::keyless::dev_stack(data, None);
    let c = Clients::new(dir, &stack);
    let who = Identity {
        identity: stack_str(&stack, "/services/oidc/email"),
        issuer: stack_str(&stack, "/services/oidc/url"),
    };
    (dev, stack, c, who)
}

fn write_variant(dir: &Path, name: &str, bundle: &Value) -> std::path::PathBuf {
    let f = dir.join(format!("{name}.sigstore.json"));
    std::fs::write(&f, serde_json::to_vec_pretty(bundle).expect("json")).expect("w");
    f
}

pub async fn v2_verifiers_refuse_forged_bundles() {
    let dir = temp_dir("v2-forgeries");
    let data = dir.join("stack");
    let (_dev, stack, c, who) = dev_with_clients(&dir, &data);
    let artifact = dir.join("artifact.txt");
    std::fs::write(&artifact, "signed into the tiled log\n").expect("w");
    let sign_into = |bundle: &Path| {
        let (ok, out) = c.sign(
            "sigstack",
            &crate::stack::dev_token(&data),
            &artifact,
            bundle,
        );
        assert!(ok, "sigstack signs: {out}");
    };
    // an entry before ours, so that our proof has a hash to change
    sign_into(&dir.join("first.sigstore.json"));
    let genuine = dir.join("genuine.sigstore.json");
    sign_into(&genuine);
    let bundle: Value = serde_json::from_slice(&std::fs::read(&genuine).expect("r")).expect("json");
    let entry = &bundle["verificationMaterial"]["tlogEntries"][0];
    assert_eq!(entry["kindVersion"]["version"], "0.0.2", "{bundle}");
    for v in VERIFIERS {
        let (ok, out) = c.verify(v, &who, &artifact, &genuine);
        assert!(ok, "{v} accepts the genuine v2 bundle: {out}");
    }

    // the dev stack's witness cosigns the v2 log's checkpoints: /checkpoint serves them
    let v2_url = stack_str(&stack, "/services/log_v2/url");
    let witness_key = sigstack_crypto::PublicKey::from_pem(
        &std::fs::read(stack_str(&stack, "/services/witness/public_key")).expect("key"),
    )
    .expect("pem");
    let witness_name = stack_str(&stack, "/services/witness/name");
    let mut cosigned = false;
    for _ in 0..50 {
        let note = http()
            .get(format!("{v2_url}/checkpoint"))
            .send()
            .await
            .expect("get")
            .text()
            .await
            .expect("text");
        if note.starts_with(&format!(
            "{}\n2\n",
            stack_str(&stack, "/services/log_v2/origin")
        )) && sigstack_log::witness::verify_cosignature(&note, &witness_name, &witness_key)
            .is_ok()
        {
            cosigned = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(
        cosigned,
        "the dev witness cosigns the v2 log's checkpoint of size 2"
    );

    // `sigstack log` reads the tiled log: the checkpoint verified and kept, the entry
    // from its bundle with a proof computed from the tiles, consistency on the next call
    let ours = crate::client::Sigstack::new(&dir.join("home"));
    let o = ours.run(&["--output", "json", "log", "info", "--rekor-version", "2"]);
    assert!(o.ok(), "log info: {o}");
    let info = crate::client::json_of(&o);
    assert_eq!(info["verified"], true, "{info}");
    assert_eq!(info["treeSize"], 2, "{info}");
    let index = entry["logIndex"].as_str().expect("index");
    let verify_at = |index: &str| {
        ours.run(&[
            "--output",
            "json",
            "log",
            "verify",
            "--rekor-version",
            "2",
            "--log-index",
            index,
        ])
    };
    let o = verify_at(index);
    assert!(o.ok(), "log verify: {o}");
    let v = crate::client::json_of(&o);
    assert_eq!(
        v["consistency"], "consistent with the checkpoint of size 2 seen before",
        "{v}"
    );
    assert_eq!(v["hashes"].as_array().map(Vec::len), Some(1), "{v}");
    let body: Value = serde_json::from_slice(
        &STANDARD
            .decode(entry["canonicalizedBody"].as_str().expect("b"))
            .expect("b64"),
    )
    .expect("json");
    assert_eq!(
        v["body"], body,
        "the body in the tiles is the one the log answered"
    );
    let o = ours.run(&["log", "get", "--rekor-version", "2", "--uuid", "ab"]);
    assert!(!o.ok() && o.stderr.contains("--log-index"), "{o}");
    let o = ours.run(&["log", "get", "--rekor-version", "2", "--log-index", "7"]);
    assert!(!o.ok() && o.stderr.contains("no entry at index 7"), "{o}");
    // an entry verified right after it is logged, before the witness has cosigned a
    // checkpoint that covers it: the client waits for the published checkpoint
    let third = dir.join("third.sigstore.json");
    sign_into(&third);
    let third: Value = serde_json::from_slice(&std::fs::read(&third).expect("r")).expect("json");
    let index = third["verificationMaterial"]["tlogEntries"][0]["logIndex"]
        .as_str()
        .expect("index");
    assert_eq!(index, "2", "{third}");
    let o = verify_at(index);
    assert!(o.ok(), "log verify just after signing: {o}");

    // the checkpoint re-signed by another Ed25519 key under the log's name
    let note = entry["inclusionProof"]["checkpoint"]["envelope"]
        .as_str()
        .expect("note");
    let text = &note[..note.rfind("\n\n").expect("sigs") + 1];
    let cp = Checkpoint::parse_body(text).expect("checkpoint");
    let impostor = sigstack_crypto::Ed25519Signer::generate();
    let origin = stack_str(&stack, "/services/log_v2/origin");
    let mut resigned = bundle.clone();
    resigned["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["checkpoint"]["envelope"] =
        json!(cp.sign_ed25519(&origin, &impostor).expect("sign"));

    // one proof hash changed (the root and checkpoint left as they were)
    let mut bad_proof = bundle.clone();
    let hashes = bad_proof["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"]
        .as_array_mut()
        .expect("hashes");
    assert!(!hashes.is_empty(), "a proof with hashes");
    let mut h = STANDARD
        .decode(hashes[0].as_str().expect("h"))
        .expect("b64");
    h[0] ^= 1;
    hashes[0] = json!(STANDARD.encode(h));

    // a timestamp from a TSA the trusted root does not name
    let (tsa_key, tsa_chain) = crate::tsa::openssl_tsa(
        &dir.join("other-tsa"),
        "extendedKeyUsage=critical,timeStamping",
    );
    let (tsa, tsa_url, err) = crate::tsa::start_tsa(&tsa_key, &tsa_chain);
    let _tsa = tsa.unwrap_or_else(|| panic!("the other TSA starts: {err}"));
    let other_ts = dir.join("other-tsa.sigstore.json");
    let token = crate::stack::dev_token(&data);
    let o = crate::client::Sigstack::new(&dir.join("home")).run(&[
        "sign-blob",
        "--yes",
        "--identity-token",
        &token,
        "--timestamp-server-url",
        &format!("{tsa_url}/api/v1/timestamp"),
        "--bundle",
        p(&other_ts),
        p(&artifact),
    ]);
    assert!(o.ok(), "signing with the other TSA: {o}");
    let other: Value = serde_json::from_slice(&std::fs::read(&other_ts).expect("r")).expect("json");
    assert_eq!(
        other.pointer("/verificationMaterial/tlogEntries/0/kindVersion/version"),
        Some(&json!("0.0.2")),
        "{other}"
    );

    let variants = [
        (
            "a checkpoint signed by another key",
            write_variant(&dir, "resigned", &resigned),
        ),
        (
            "a changed inclusion proof",
            write_variant(&dir, "bad-proof", &bad_proof),
        ),
        ("a timestamp from an untrusted TSA", other_ts),
    ];
    let mut accepted = Vec::new();
    for (what, file) in &variants {
        for v in VERIFIERS {
            let (ok, out) = c.verify(v, &who, &artifact, file);
            if ok {
                accepted.push(format!("{v} accepted {what}: {out}"));
            } else {
                eprintln!(
                    "{v} refuses {what}: {}",
                    out.trim().lines().last().unwrap_or("")
                );
            }
        }
    }
    assert!(
        accepted.is_empty(),
        "forged v2 bundles accepted:\n{}",
        accepted.join("\n")
    );
}

/// sigstore-js through its signing-config path (`bundleBuilderFromSigningConfig`) picks
/// the v2 log and the TSA from the dev stack's signing config: its message signature
/// verifies with all five verifiers, and its DSSE attestation (sent as
/// `dsseRequestV002`, which rekor-tiles no longer takes and this log still does) with
/// `sigstack` and sigstore-js.
pub async fn sigstore_js_signs_through_the_signing_config() {
    let dir = temp_dir("v2-js");
    let data = dir.join("stack");
    let (_dev, stack, c, who) = dev_with_clients(&dir, &data);
    let config = stack_str(&stack, "/signing_config");
    let js_sign = |artifact: &Path, bundle: &Path, attest: Option<&str>| {
        let mut cmd = std::process::Command::new("node");
        cmd.arg(crate::keyless::js().join("sign-config.mjs"))
            .args(["--signing-config", &config, "--identity-token"])
            .arg(crate::stack::dev_token(&data))
            .args(["--artifact", p(artifact), "--bundle", p(bundle)]);
        if let Some(t) = attest {
            cmd.args(["--attest", t]);
        }
        crate::keyless::run(&mut cmd)
    };
    let version = |b: &Path| -> (String, String, bool) {
        let v: Value = serde_json::from_slice(&std::fs::read(b).expect("r")).expect("json");
        let e = &v["verificationMaterial"]["tlogEntries"][0]["kindVersion"];
        (
            e["kind"].as_str().unwrap_or("").into(),
            e["version"].as_str().unwrap_or("").into(),
            v.pointer("/verificationMaterial/timestampVerificationData/rfc3161Timestamps/0")
                .is_some(),
        )
    };

    let artifact = dir.join("artifact.txt");
    std::fs::write(&artifact, "signed by sigstore-js from the signing config\n").expect("w");
    // sigstore-js writes its bundles as protobuf JSON, which leaves out a log index of 0
    // and an empty proof, and sigstore-python refuses a bundle without them: an entry
    // first, so that sigstore-js's is not the log's first (a gap between those two
    // clients at a new log's first entry, not one of ours)
    let (ok, out) = c.sign(
        "sigstack",
        &crate::stack::dev_token(&data),
        &artifact,
        &dir.join("first.json"),
    );
    assert!(ok, "{out}");
    let bundle = dir.join("js-message.sigstore.json");
    let (ok, out) = js_sign(&artifact, &bundle, None);
    assert!(ok, "sigstore-js signs: {out}");
    assert_eq!(
        version(&bundle),
        ("hashedrekord".into(), "0.0.2".into(), true),
        "the v2 log and a timestamp"
    );
    for v in [
        "sigstack",
        "sigstore-python",
        "sigstore-js",
        "cosign v2",
        "cosign v3",
    ] {
        let (ok, out) = c.verify(v, &who, &artifact, &bundle);
        assert!(ok, "{v} verifies sigstore-js's v2 message signature: {out}");
    }

    let statement = dir.join("statement.json");
    std::fs::write(
        &statement,
        serde_json::to_vec(&json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "artifact.txt", "digest": {"sha256": hex::encode(sigstack_crypto::sha256(&std::fs::read(&artifact).expect("r")))}}],
            "predicateType": "https://example.com/review/v1",
            "predicate": {"reviewed": true},
        }))
        .expect("json"),
    )
    .expect("w");
    let dsse = dir.join("js-dsse.sigstore.json");
    let (ok, out) = js_sign(&statement, &dsse, Some("application/vnd.in-toto+json"));
    assert!(ok, "sigstore-js attests: {out}");
    assert_eq!(
        version(&dsse),
        ("dsse".into(), "0.0.2".into(), true),
        "a dsse 0.0.2 entry"
    );
    for v in ["sigstack", "sigstore-js"] {
        let (ok, out) = c.verify(v, &who, &artifact, &dsse);
        assert!(ok, "{v} verifies sigstore-js's v2 attestation: {out}");
    }
}
