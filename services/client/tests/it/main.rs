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
