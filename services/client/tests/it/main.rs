//! The client against the sigstore-conformance bundle-verify cases (offline, with the
//! public-good trusted root for cases without their own), through the conformance CLI
//! protocol and the shared runner: every `_fail` case must be refused and every other case
//! accepted, each with the artifact's path and with its digest (140 runs).

use std::path::PathBuf;
use std::process::Command;

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

#[test]
fn conformance_bundle_verify_cases() {
    let shared = shared();
    let cases = shared.join("conformance-assets/test/assets/bundle-verify");
    assert!(
        cases.exists(),
        "the conformance assets are not at {}",
        cases.display()
    );
    let mut cmd = Command::new("python3");
    cmd.arg(shared.join("tools/run_bundle_verify_cases.py"))
        .args(["--client", env!("CARGO_BIN_EXE_sigstack"), "--cases"])
        .arg(&cases)
        .arg("--default-trusted-root")
        .arg(shared.join("conformance-assets/extra/public-good-trusted_root.json"));
    let out = cmd.output().expect("run the conformance runner");
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default().to_string();
    assert!(
        out.status.success(),
        "conformance cases failed ({last}):\n{}{}",
        text.lines()
            .filter(|l| !l.starts_with("PASS"))
            .collect::<Vec<_>>()
            .join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(last, "140 passed, 0 failed");
}

/// `verify-blob` with cosign's flags: regular expressions for identity and issuer, and a
/// clear refusal of incomplete or conflicting policies.
#[test]
fn verify_blob_identity_policies() {
    let cases = shared().join("conformance-assets/test/assets/bundle-verify");
    let root = shared().join("conformance-assets/extra/public-good-trusted_root.json");
    let run = |policy: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_sigstack"))
            .arg("verify-blob")
            .arg("--bundle")
            .arg(cases.join("happy-path-v0.3/bundle.sigstore.json"))
            .arg("--trusted-root")
            .arg(&root)
            .args(policy)
            .arg(cases.join("a.txt"))
            .output()
            .expect("run sigstack");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = run(&[
        "--certificate-identity-regexp",
        "extremely-dangerous-oidc-beacon\\.yml@refs/heads/main$",
        "--certificate-oidc-issuer-regexp",
        "^https://token\\.actions\\.githubusercontent\\.com$",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let (code, err) = run(&[
        "--certificate-identity-regexp",
        "^https://github\\.com/someone-else/",
        "--certificate-oidc-issuer",
        "https://token.actions.githubusercontent.com",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("does not match"), "{err}");
    let (code, err) = run(&["--certificate-identity", "x"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("--certificate-oidc-issuer"), "{err}");
    let (code, err) = run(&[
        "--certificate-identity-regexp",
        "(",
        "--certificate-oidc-issuer",
        "x",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("not a valid regular expression"), "{err}");
}

/// Keyless signing puts the identity in a public log: without `--yes` it stops and says so,
/// before any network traffic; missing inputs are named.
#[test]
fn sign_blob_asks_before_publishing_an_identity() {
    let dir = std::env::temp_dir().join(format!("sigstack-sign-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let artifact = dir.join("a.txt");
    std::fs::write(&artifact, b"x").expect("w");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_sigstack"))
            .arg("sign-blob")
            .args(args)
            .arg("--bundle")
            .arg(dir.join("b.json"))
            .arg(&artifact)
            .env_remove("SIGSTORE_ID_TOKEN")
            .output()
            .expect("run sigstack");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = run(&[
        "--identity-token",
        "t",
        "--fulcio-url",
        "http://127.0.0.1:9",
        "--rekor-url",
        "http://127.0.0.1:9",
    ]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("public transparency log") && err.contains("--yes"),
        "{err}"
    );
    let (code, err) = run(&[
        "--fulcio-url",
        "http://127.0.0.1:9",
        "--rekor-url",
        "http://127.0.0.1:9",
        "--yes",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("--identity-token"), "{err}");
    assert!(!dir.join("b.json").exists(), "no bundle written");
}
