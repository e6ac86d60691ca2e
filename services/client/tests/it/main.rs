//! The client against the sigstore-conformance bundle-verify cases (offline, with the
//! public-good trusted root for cases without their own), through the conformance CLI
//! protocol and the shared runner. Every `_fail` case must be refused and every other
//! case accepted, except the ones listed below, which need RFC 3161 timestamps or Rekor
//! v2 entries (not implemented yet): the runner treats them as strict expected failures,
//! so one that starts passing fails this test until it is taken off the list.

use std::path::PathBuf;
use std::process::Command;

const NOT_YET: &[&str] = &[
    // RFC 3161 signed timestamps
    "bundle-with-sct-with-extensions",
    "intoto-with-custom-trust-root",
    "managed-key-happy-path",
    "trust-root-tsa-validity-end-inclusive",
    // Rekor v2 entries (and their timestamps)
    "rekor2-checkpoint-cosigned",
    "rekor2-checkpoint-multiple-cosigs",
    "rekor2-checkpoint-origin-not-first",
    "rekor2-checkpoint-two-sigs-cosigned",
    "rekor2-checkpoint-two-sigs-from-origin",
    "rekor2-dsse-happy-path",
    "rekor2-happy-path",
    "rekor2-timestamp-with-embedded-cert",
    "rekor2-timestamp-with-expired-cert-chain",
    "rekor2-timestamp-without-embedded-cert",
];

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
        .arg(shared.join("conformance-assets/extra/public-good-trusted_root.json"))
        .arg("--xfail");
    for name in NOT_YET {
        cmd.arg(format!("*-{name}"));
    }
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
    // 140 runs: each case with the artifact's path and with its digest
    let passed: usize = last
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(passed + 2 * NOT_YET.len() >= 140, "{last}");
}
