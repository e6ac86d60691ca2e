//! Our client (`sigstack` library: the code behind `sigstack sign-blob` / `verify-blob`)
//! against `sigstackd dev`: it signs keyless with a token from the dev issuer and with a
//! managed key; sigstore-python and sigstore-js verify its bundles; it verifies
//! sigstore-python's, and refuses a wrong identity or a changed artifact.

use crate::keyless::{dev_stack, js, run, venv};
use crate::support::*;
use sigstack::verify::{Artifact, Matcher, Policy, verify};
use sigstack_crypto::{Curve, FileSigner, Signer};
use sigstack_types::trust::TrustedRoot;
use std::process::Command;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub async fn our_client_signs_and_verifies_with_the_others() {
    let dir = temp_dir("client");
    let (_stack, stack) = dev_stack(&dir.join("stack"), None);
    let s = |p: &str| {
        stack
            .pointer(p)
            .and_then(|v| v.as_str())
            .expect(p)
            .to_string()
    };
    let (ca, log, oidc) = (
        s("/services/ca/url"),
        s("/services/log/url"),
        s("/services/oidc/url"),
    );
    let root: TrustedRoot =
        serde_json::from_slice(&std::fs::read(s("/trusted_root")).expect("tr")).expect("json");
    let (ok, token) = run(Command::new(env!("CARGO_BIN_EXE_sigstackd"))
        .args(["dev-token", "--data-dir"])
        .arg(dir.join("stack")));
    assert!(ok, "{token}");
    let artifact = b"signed by the sigstack client\n".to_vec();
    let artifact_path = dir.join("a.txt");
    std::fs::write(&artifact_path, &artifact).expect("w");
    let http = http();

    // keyless
    let bundle = sigstack::sign::sign_blob(
        &http,
        &artifact,
        &sigstack::sign::SignOptions {
            fulcio_url: &ca,
            rekor_url: &log,
            identity_token: Some(token.trim()),
            key: None,
        },
    )
    .await
    .expect("keyless signing");
    let bundle_path = dir.join("a.sigstore.json");
    std::fs::write(&bundle_path, serde_json::to_vec(&bundle).expect("json")).expect("w");
    let bytes = std::fs::read(&bundle_path).expect("r");
    let me = Policy::Identity {
        identity: Matcher::Exact("dev@sigstack.test".into()),
        issuer: Matcher::Exact(oidc.clone()),
    };
    verify(
        &bytes,
        &root,
        &Artifact::Bytes(artifact.clone()),
        &me,
        now(),
    )
    .expect("our client verifies its bundle");
    let someone = Policy::Identity {
        identity: Matcher::Exact("mallory@example.test".into()),
        issuer: Matcher::Exact(oidc.clone()),
    };
    assert!(
        verify(
            &bytes,
            &root,
            &Artifact::Bytes(artifact.clone()),
            &someone,
            now()
        )
        .is_err()
    );
    assert!(
        verify(
            &bytes,
            &root,
            &Artifact::Bytes(b"changed".to_vec()),
            &me,
            now()
        )
        .is_err()
    );
    let (ok, out) = run(Command::new(venv().join("bin/sigstore"))
        .args([
            "--trust-config",
            &s("/trust_config"),
            "verify",
            "identity",
            "--bundle",
        ])
        .arg(&bundle_path)
        .args([
            "--cert-identity",
            "dev@sigstack.test",
            "--cert-oidc-issuer",
            &oidc,
        ])
        .arg(&artifact_path));
    assert!(ok, "sigstore-python verifies our bundle: {out}");
    let js_verify = |bundle: &std::path::Path, policy: &[&str]| {
        run(Command::new("node")
            .arg(js().join("verify-bundle.mjs"))
            .args(["--trusted-root", &s("/trusted_root"), "--bundle"])
            .arg(bundle)
            .arg("--artifact")
            .arg(&artifact_path)
            .args(policy))
    };
    let (ok, out) = js_verify(
        &bundle_path,
        &[
            "--certificate-identity",
            "dev@sigstack.test",
            "--certificate-oidc-issuer",
            &oidc,
        ],
    );
    assert!(ok, "sigstore-js verifies our bundle: {out}");

    // with a managed key
    let key = FileSigner::generate(Curve::P256);
    let bundle = sigstack::sign::sign_blob(
        &http,
        &artifact,
        &sigstack::sign::SignOptions {
            fulcio_url: &ca,
            rekor_url: &log,
            identity_token: None,
            key: Some(&key),
        },
    )
    .await
    .expect("signing with a key");
    let key_bundle = dir.join("k.sigstore.json");
    std::fs::write(&key_bundle, serde_json::to_vec(&bundle).expect("json")).expect("w");
    let by_key = Policy::Key(key.public_key().clone());
    verify(
        &std::fs::read(&key_bundle).expect("r"),
        &root,
        &Artifact::Bytes(artifact.clone()),
        &by_key,
        now(),
    )
    .expect("our client verifies its key bundle");
    let pub_path = dir.join("k.pub");
    std::fs::write(&pub_path, key.public_key().to_pem()).expect("w");
    let (ok, out) = js_verify(&key_bundle, &["--key", pub_path.to_str().expect("utf8")]);
    assert!(ok, "sigstore-js verifies our key bundle: {out}");
    let other = Policy::Key(FileSigner::generate(Curve::P256).public_key().clone());
    assert!(
        verify(
            &std::fs::read(&key_bundle).expect("r"),
            &root,
            &Artifact::Bytes(artifact.clone()),
            &other,
            now()
        )
        .is_err()
    );

    // and sigstore-python's bundle verifies with ours
    let py_bundle = dir.join("py.sigstore.json");
    let (ok, out) = run(Command::new(venv().join("bin/sigstore"))
        .args([
            "--trust-config",
            &s("/trust_config"),
            "sign",
            "--identity-token",
            token.trim(),
            "--bundle",
        ])
        .arg(&py_bundle)
        .arg(&artifact_path));
    assert!(ok, "{out}");
    verify(
        &std::fs::read(&py_bundle).expect("r"),
        &root,
        &Artifact::Bytes(artifact),
        &me,
        now(),
    )
    .expect("our client verifies sigstore-python's bundle");
}
