//! The client against the sigstore-conformance bundle-verify cases (offline, with the
//! public-good trusted root for cases without their own), through the conformance CLI
//! protocol and the shared runner: every `_fail` case must be refused and every other case
//! accepted, each with the artifact's path and with its digest (140 runs).

mod bounds;
mod corpus;
mod mutations;

use corpus::shared;
use std::process::Command;

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
    assert_eq!(
        code,
        Some(2),
        "an incomplete policy is a usage problem, not a failed check"
    );
    assert!(err.contains("--certificate-oidc-issuer"), "{err}");
    let (code, err) = run(&[
        "--certificate-identity-regexp",
        "(",
        "--certificate-oidc-issuer",
        "x",
    ]);
    assert_eq!(code, Some(3));
    assert!(err.contains("not a valid regular expression"), "{err}");

    // cosign's GitHub workflow flags check Fulcio's extensions of the certificate
    let id = [
        "--certificate-identity-regexp",
        "extremely-dangerous-oidc-beacon",
        "--certificate-oidc-issuer",
        "https://token.actions.githubusercontent.com",
    ];
    let with = |more: &[&str]| {
        let mut v = id.to_vec();
        v.extend_from_slice(more);
        run(&v)
    };
    let (code, err) = with(&[
        "--certificate-github-workflow-trigger",
        "workflow_dispatch",
        "--certificate-github-workflow-sha",
        "c7b3dfb335f051e1c86bda4c716fac97df62ad81",
        "--certificate-github-workflow-name",
        "Extremely dangerous OIDC beacon",
        "--certificate-github-workflow-repository",
        "sigstore-conformance/extremely-dangerous-public-oidc-beacon",
        "--certificate-github-workflow-ref",
        "refs/heads/main",
    ]);
    assert_eq!(code, Some(0), "{err}");
    for (flag, wrong, name) in [
        ("--certificate-github-workflow-trigger", "push", "trigger"),
        ("--certificate-github-workflow-sha", "0000", "SHA"),
        ("--certificate-github-workflow-name", "other", "name"),
        (
            "--certificate-github-workflow-repository",
            "someone/else",
            "repository",
        ),
        (
            "--certificate-github-workflow-ref",
            "refs/heads/evil",
            "ref",
        ),
    ] {
        let (code, err) = with(&[flag, wrong]);
        assert_eq!(code, Some(1), "{flag} {wrong}: {err}");
        assert!(err.contains(&format!("GitHub workflow {name}")), "{err}");
    }
    // the unsafe switches, each with its warning: a bundle whose log entry was removed
    // verifies only with --insecure-ignore-tlog (its certificate is then checked now, and
    // has long expired: a clear refusal)
    let b: serde_json::Value = serde_json::from_slice(
        &std::fs::read(cases.join("happy-path-v0.3/bundle.sigstore.json")).expect("r"),
    )
    .expect("json");
    let mut no_tlog = b.clone();
    no_tlog["verificationMaterial"]["tlogEntries"] = serde_json::json!([]);
    let dir = std::env::temp_dir().join(format!("sigstack-insecure-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("no-tlog.json");
    std::fs::write(&path, serde_json::to_vec(&no_tlog).expect("json")).expect("w");
    let run_on = |bundle: &std::path::Path, more: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_sigstack"))
            .args(["verify-blob", "--bundle"])
            .arg(bundle)
            .arg("--trusted-root")
            .arg(&root)
            .args(id)
            .args(more)
            .arg(cases.join("a.txt"))
            .output()
            .expect("run sigstack");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = run_on(&path, &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no transparency-log entry"), "{err}");
    let (code, err) = run_on(&path, &["--insecure-ignore-tlog"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("--insecure-ignore-tlog: the transparency log is not checked"),
        "{err}"
    );
    assert!(
        err.contains("not valid at the signing time"),
        "checked now, expired: {err}"
    );
    // a certificate whose SCT no trusted CT log signed: refused, unless told to ignore SCTs
    let ct = cases.join("invalid-ct-key_fail");
    let sct = |more: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_sigstack"))
            .args(["verify-blob", "--bundle"])
            .arg(ct.join("bundle.sigstore.json"))
            .arg("--trusted-root")
            .arg(ct.join("trusted_root.json"))
            .args([
                "--certificate-identity-regexp",
                ".",
                "--certificate-oidc-issuer-regexp",
                ".",
            ])
            .args(more)
            .arg(cases.join("a.txt"))
            .output()
            .expect("run sigstack");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = sct(&[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no SCT verifies"), "{err}");
    let (code, err) = sct(&["--insecure-ignore-sct"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("--insecure-ignore-sct"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
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
            .env_remove("COSIGN_YES")
            .env("HOME", &dir)
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
    assert_eq!(code, Some(3));
    assert!(
        err.contains("transparency log") && err.contains("--yes"),
        "{err}"
    );
    let (code, err) = run(&[
        "--fulcio-url",
        "http://127.0.0.1:9",
        "--rekor-url",
        "http://127.0.0.1:9",
        "--yes",
    ]);
    // no token: the client would learn the issuer from the public-good TUF repository,
    // which this machine cannot reach, and does not quietly use the built-in trust instead
    assert_eq!(code, Some(3));
    assert!(
        err.contains("getting an identity token") || err.contains("refusing to fall back"),
        "{err}"
    );
    assert!(!dir.join("b.json").exists(), "no bundle written");
}

/// Real public-good and staging bundles from sigstore-python's and sigstore-js's test data
/// verify offline with the trust roots built into the client (no `--trusted-root`), and
/// the known-bad ones fail for their own reasons. Each instance's bundles fail under the
/// other's trust.
#[test]
fn public_good_and_staging_bundles_verify_with_the_built_in_roots() {
    let py = shared().join("sigstore-python-test-assets/test/assets");
    let js = shared().join("sigstore-js-test-bundles/tests/bundles");
    let home = std::env::temp_dir().join(format!("sigstack-builtin-{}", std::process::id()));
    std::fs::create_dir_all(&home).expect("home");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_sigstack"))
            .args(args)
            .env("HOME", &home)
            .env_remove("TUF_ROOT")
            .env_remove("TUF_MIRROR")
            .output()
            .expect("run sigstack");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let gh = "https://github.com/login/oauth";
    let actions = "https://token.actions.githubusercontent.com";
    let s = |p: &std::path::Path| p.to_str().expect("utf-8").to_string();
    let blob =
        |instance: Option<&str>, bundle: &str, identity: &str, issuer: &str, artifact: &str| {
            let mut args = vec!["verify-blob".to_string(), "--offline".into()];
            args.extend(instance.map(String::from));
            args.extend([
                "--bundle".into(),
                s(&py.join(bundle)),
                "--certificate-identity".into(),
                identity.into(),
                "--certificate-oidc-issuer".into(),
                issuer.into(),
                s(&py.join(artifact)),
            ]);
            run(&args.iter().map(String::as_str).collect::<Vec<_>>())
        };
    let yossarian = "william@yossarian.net";
    let staging = Some("--staging");
    // online (the default) with the repository out of reach and nothing cached: the
    // built-in trust is not used behind the user's back
    let (code, err) = run(&[
        "verify-blob",
        "--staging",
        "--bundle",
        &s(&py.join("bundle_v3.txt.sigstore")),
        "--certificate-identity",
        yossarian,
        "--certificate-oidc-issuer",
        gh,
        &s(&py.join("bundle_v3.txt")),
    ]);
    if code != Some(0) {
        // (a machine that reaches the staging repository verifies online instead)
        assert_eq!(code, Some(3), "{err}");
        assert!(
            err.contains("refusing to fall back") && err.contains("--offline"),
            "{err}"
        );
    }
    // staging: v0.1 (a P-384 key), v0.3, Rekor v1 and v2 with a signed timestamp
    for (bundle, identity, artifact) in [
        ("bundle.txt.sigstore", "a@tny.town", "bundle.txt"),
        ("bundle_v3.txt.sigstore", yossarian, "bundle_v3.txt"),
        ("bundle_v3_alt.txt.sigstore", yossarian, "bundle_v3_alt.txt"),
        (
            "integration/bundle_v3.txt.sigstore",
            yossarian,
            "integration/bundle_v3.txt",
        ),
        (
            "staging-rekor-v2.txt.sigstore.json",
            "jku@goto.fi",
            "staging-rekor-v2.txt",
        ),
    ] {
        let (code, err) = blob(staging, bundle, identity, gh, artifact);
        assert_eq!(code, Some(0), "{bundle} (staging): {err}");
        let (code, err) = blob(None, bundle, identity, gh, artifact);
        assert_eq!(code, Some(1), "{bundle} is not public good: {err}");
    }
    // public good: a GitHub Actions release
    let whl_identity =
        "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2";
    let (code, err) = blob(
        None,
        "bundle_v3_github.whl.sigstore",
        whl_identity,
        actions,
        "bundle_v3_github.whl",
    );
    assert_eq!(code, Some(0), "{err}");
    let (code, _) = blob(
        staging,
        "bundle_v3_github.whl.sigstore",
        whl_identity,
        actions,
        "bundle_v3_github.whl",
    );
    assert_eq!(code, Some(1));
    // known-bad bundles, each for its reason
    for (instance, bundle, artifact, identity, issuer, reason) in [
        (
            None,
            "bundle_v3_no_signed_time.txt.sigstore.json",
            "bundle_v3_no_signed_time.txt",
            yossarian,
            gh,
            "no verified time",
        ),
        (
            staging,
            "bundle_cve_2022_36056.txt.sigstore",
            "bundle_cve_2022_36056.txt",
            yossarian,
            gh,
            "does not match the bundle",
        ),
        (
            staging,
            "bundle_invalid_version.txt.sigstore",
            "bundle_invalid_version.txt",
            yossarian,
            gh,
            "media type",
        ),
        (
            staging,
            "bundle_no_log_entry.txt.sigstore",
            "bundle_no_log_entry.txt",
            "alex.cameron@trailofbits.com",
            "https://accounts.google.com",
            "no transparency-log entry",
        ),
        (
            staging,
            "bundle_no_cert_v1.txt.sigstore",
            "bundle_no_cert_v1.txt",
            yossarian,
            gh,
            "certificate chain is empty",
        ),
        (
            staging,
            "bundle_no_checkpoint.txt.sigstore",
            "bundle_no_checkpoint.txt",
            yossarian,
            gh,
            "no checkpoint",
        ),
    ] {
        let (code, err) = blob(instance, bundle, identity, issuer, artifact);
        assert_eq!(code, Some(1), "{bundle} must fail: {err}");
        assert!(
            err.contains(reason),
            "{bundle} fails because of {reason:?}: {err}"
        );
    }
    // DSSE attestations: staging (Rekor v2) and sigstore-js's public-good bundles v0.1–v0.3
    let beacon = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
    // no artifact at hand: claims unchecked, as cosign requires it to be said
    let (code, err) = run(&[
        "verify-blob-attestation",
        "--offline",
        "--staging",
        "--check-claims=false",
        "--bundle",
        &s(&py.join("a.dsse.staging-rekor-v2.txt.sigstore.json")),
        "--certificate-identity",
        beacon,
        "--certificate-oidc-issuer",
        actions,
    ]);
    assert_eq!(code, Some(0), "{err}");
    for entry in std::fs::read_dir(&js).expect("js bundles") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        let (code, err) = run(&[
            "verify-blob-attestation",
            "--offline",
            "--check-claims=false",
            "--bundle",
            &s(&path),
            "--certificate-identity",
            "brian@dehamer.com",
            "--certificate-oidc-issuer",
            gh,
        ]);
        if name == "bundleV01-full-cert-chain.sigstore" {
            // it carries the root certificate, which the conformance suite requires a
            // verifier to refuse (bundle-with-root-cert_fail)
            assert_eq!(code, Some(1), "{name}: {err}");
            assert!(err.contains("root certificate"), "{err}");
        } else {
            assert_eq!(code, Some(0), "{name}: {err}");
        }
    }
}

/// The conformance cases also pass with no trusted root given: the public-good root
/// built into the client is used offline.
#[test]
fn conformance_cases_with_the_built_in_public_good_root() {
    let shared = shared();
    let home = std::env::temp_dir().join(format!("sigstack-conf-{}", std::process::id()));
    std::fs::create_dir_all(&home).expect("home");
    let out = Command::new("python3")
        .arg(shared.join("tools/run_bundle_verify_cases.py"))
        .arg("--client")
        .arg(format!("{} --offline", env!("CARGO_BIN_EXE_sigstack")))
        .arg("--cases")
        .arg(shared.join("conformance-assets/test/assets/bundle-verify"))
        .env("HOME", &home)
        .output()
        .expect("run the conformance runner");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().last().unwrap_or_default(),
        "140 passed, 0 failed",
        "{text}"
    );
}
