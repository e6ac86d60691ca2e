//! The verifier as an attacker meets it, against `sigstackd dev`: genuine signatures over
//! DSSE envelopes that are not in-toto statements naming the artifact (another payload
//! type, a near-miss of the in-toto type, JSON that is not a Statement, a Statement about
//! another artifact) are logged for real and then offered to every command that takes an
//! artifact; each must be refused with its reason, while the honest envelope verifies.
//! Also cosign's semantics that scripts rely on: `--check-claims`, `--key` refusing a
//! certificate, `--certificate` beside a bundle.

use crate::client::{Out, Sigstack, p};
use crate::keyless::{dev_stack, run};
use crate::support::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sigstack_crypto::{Curve, FileSigner, Signer};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Logs a DSSE envelope signed by `signer` in the dev log and writes a v0.3 bundle of it.
async fn logged_envelope(
    log_url: &str,
    signer: &FileSigner,
    payload_type: &str,
    payload: &[u8],
    out: &Path,
) -> PathBuf {
    let sig = signer
        .sign(&sigstack::verify::pae(payload_type, payload))
        .expect("sign");
    let envelope = json!({
        "payload": STANDARD.encode(payload),
        "payloadType": payload_type,
        "signatures": [{"sig": STANDARD.encode(&sig)}],
    });
    let pem = signer.public_key().to_pem();
    let resp = http()
        .post(format!("{log_url}/api/v1/log/entries"))
        .json(&json!({
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {"proposedContent": {
                "envelope": envelope.to_string(),
                "verifiers": [STANDARD.encode(pem.as_bytes())],
            }},
        }))
        .send()
        .await
        .expect("log reachable");
    assert_eq!(
        resp.status(),
        201,
        "the log takes any DSSE payload type, as Rekor does"
    );
    let entries: std::collections::BTreeMap<String, sigstack_types::rekor::LogEntryAnon> =
        resp.json().await.expect("entry");
    let entry = entries.values().next().expect("one entry");
    let bundle = json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {
            "publicKey": {"hint": ""},
            "tlogEntries": [sigstack::rekor::bundle_entry(entry).expect("bundle entry")],
        },
        "dsseEnvelope": envelope,
    });
    std::fs::write(out, serde_json::to_vec_pretty(&bundle).expect("json")).expect("write");
    out.to_path_buf()
}

fn statement(subject_digest: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "a.txt", "digest": {"sha256": subject_digest}}],
        "predicateType": "https://example.com/approval/v1",
        "predicate": {"approved": true},
    }))
    .expect("json")
}

fn refused(o: &Out, why: &str) {
    assert_eq!(o.code, Some(1), "must be refused ({why}): {o}");
    assert!(o.stderr.contains(why), "the reason names {why:?}: {o}");
}

pub async fn forged_dsse_bundles_are_refused() {
    let dir = temp_dir("verifier");
    let (_stack_proc, stack) = dev_stack(&dir.join("stack"), None);
    let s = |ptr: &str| crate::support::stack_str(&stack, ptr);
    let log_url = s("/services/log/url");
    let root = s("/trusted_root");
    let cli = Sigstack::new(&dir.join("home"));
    let signer = FileSigner::generate(Curve::P256);
    let key = dir.join("key.pub");
    std::fs::write(&key, signer.public_key().to_pem()).expect("key");
    let artifact = dir.join("a.txt");
    std::fs::write(&artifact, b"the release everyone downloads\n").expect("w");
    let digest = hex::encode(sigstack_crypto::sha256(b"the release everyone downloads\n"));
    let other = dir.join("b.txt");
    std::fs::write(&other, b"something else the key holder signed\n").expect("w");
    let other_digest = hex::encode(sigstack_crypto::sha256(
        b"something else the key holder signed\n",
    ));

    let verify_with = |cmd: &str, bundle: &Path, what: &str| {
        cli.run(&[
            cmd,
            "--offline",
            "--trusted-root",
            &root,
            "--key",
            p(&key),
            "--bundle",
            p(bundle),
            what,
        ])
    };
    // verify-blob-attestation of `bundle` with the key, and more flags
    let attestation = |bundle: &Path, extra: &[&str]| {
        let mut args = vec![
            "verify-blob-attestation",
            "--offline",
            "--trusted-root",
            &root,
            "--key",
            p(&key),
            "--bundle",
            p(bundle),
        ];
        args.extend_from_slice(extra);
        cli.run(&args)
    };
    let sha = format!("sha256:{digest}");
    let forgeries = [
        (
            "text/plain",
            b"I approve nothing in particular".to_vec(),
            "payload type",
        ),
        (
            "application/vnd.in-toto+json; charset=utf-8",
            statement(&digest),
            "payload type",
        ),
        (
            "application/vnd.in-toto+json",
            serde_json::to_vec(&json!({"subject": [{"digest": {"sha256": digest}}]}))
                .expect("json"),
            "not an in-toto statement",
        ),
        (
            "application/vnd.in-toto+json",
            statement(&other_digest),
            "not a subject",
        ),
    ];
    for (i, (pt, payload, why)) in forgeries.iter().enumerate() {
        let bundle = logged_envelope(
            &log_url,
            &signer,
            pt,
            payload,
            &dir.join(format!("f{i}.json")),
        )
        .await;
        for cmd in ["verify-blob", "verify-bundle"] {
            refused(&verify_with(cmd, &bundle, p(&artifact)), why);
            refused(&verify_with(cmd, &bundle, &sha), why);
        }
        // the attestation command applies the same rule
        if *why != "not a subject" {
            refused(
                &verify_with("verify-blob-attestation", &bundle, p(&artifact)),
                why,
            );
            refused(&attestation(&bundle, &["--check-claims=false"]), why);
        }
    }

    // the honest envelope: a Statement naming the artifact verifies in every command
    let honest = logged_envelope(
        &log_url,
        &signer,
        sigstack::verify::IN_TOTO,
        &statement(&digest),
        &dir.join("honest.json"),
    )
    .await;
    for cmd in ["verify-blob", "verify-bundle", "verify-blob-attestation"] {
        let o = verify_with(cmd, &honest, p(&artifact));
        assert!(o.ok(), "{cmd}: {o}");
        let o = verify_with(cmd, &honest, &sha);
        assert!(o.ok(), "{cmd} by digest: {o}");
        refused(&verify_with(cmd, &honest, p(&other)), "not a subject");
    }

    // cosign's claims semantics: no artifact is a usage error unless --check-claims=false
    let att = |extra: &[&str]| attestation(&honest, extra);
    let o = att(&[]);
    assert_eq!(o.code, Some(2), "no artifact, claims checked: {o}");
    assert!(o.stderr.contains("--check-claims=false"), "{o}");
    let o = att(&["--check-claims=false"]);
    assert!(o.ok(), "the envelope alone: {o}");
    assert!(o.stderr.contains("not checked"), "{o}");
    let o = att(&["--check-claims", "false", p(&artifact)]);
    assert_eq!(o.code, Some(2), "an artifact that would go unchecked: {o}");
    let o = att(&["--check-claims=true", p(&artifact)]);
    assert!(o.ok(), "{o}");

    // --key takes a public key, never a certificate (whose key is trusted only through
    // its chain): the CA's own certificate is refused as a key
    let ca_cert = s("/services/ca/chain");
    let o = cli.run(&[
        "verify-blob",
        "--offline",
        "--trusted-root",
        &root,
        "--key",
        &ca_cert,
        "--bundle",
        p(&honest),
        p(&artifact),
    ]);
    assert_eq!(o.code, Some(2), "{o}");
    assert!(o.stderr.contains("--certificate"), "{o}");

    certificate_beside_a_bundle(&cli, &dir, &stack, &artifact).await;
}

/// `--certificate` with `--bundle`: the bundle's own certificate is accepted, any other
/// refused, and a key-signed bundle makes it a usage error.
async fn certificate_beside_a_bundle(cli: &Sigstack, dir: &Path, stack: &Value, artifact: &Path) {
    let s = |ptr: &str| crate::support::stack_str(stack, ptr);
    let (ok, token) = run(Command::new(env!("CARGO_BIN_EXE_sigstackd"))
        .args(["dev-token", "--data-dir"])
        .arg(dir.join("stack")));
    assert!(ok, "{token}");
    let bundle = dir.join("keyless.json");
    let o = cli.run_env(
        &[
            "sign-blob",
            "--yes",
            "--bundle",
            p(&bundle),
            "--fulcio-url",
            &s("/services/ca/url"),
            "--rekor-url",
            &s("/services/log/url"),
            p(artifact),
        ],
        &[("SIGSTORE_ID_TOKEN", token.trim())],
    );
    assert!(o.ok(), "{o}");
    let b: Value = serde_json::from_slice(&std::fs::read(&bundle).expect("r")).expect("json");
    let der = STANDARD
        .decode(
            b.pointer("/verificationMaterial/certificate/rawBytes")
                .and_then(Value::as_str)
                .expect("a certificate"),
        )
        .expect("b64");
    let own = dir.join("own.pem");
    std::fs::write(&own, sigstack_crypto::pem::encode("CERTIFICATE", &der)).expect("w");
    let with_cert = |cert: &str| {
        cli.run(&[
            "verify-blob",
            "--offline",
            "--trusted-root",
            &s("/trusted_root"),
            "--certificate-identity",
            &s("/services/oidc/email"),
            "--certificate-oidc-issuer",
            &s("/services/oidc/url"),
            "--certificate",
            cert,
            "--bundle",
            p(&bundle),
            p(artifact),
        ])
    };
    let o = with_cert(p(&own));
    assert!(o.ok(), "the bundle's own certificate: {o}");
    let o = with_cert(&s("/services/ca/chain"));
    refused(&o, "not the one the bundle carries");
}
