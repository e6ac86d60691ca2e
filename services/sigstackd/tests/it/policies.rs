//! Attestation policies as cosign evaluates them (`verify-attestation --policy`): every
//! policy in `tests/policies` — Rego (v0 and v1 keywords) and CUE, allowing and denying —
//! gives the same verdict in cosign v2, cosign v3 and sigstack on one image attestation,
//! and sigstack's verify-blob-attestation takes the same files.

use crate::client::p;
use crate::cosign::Cosign;
use crate::cosign_images::Tool;
use crate::cosign_interop::{Stack, initialized, ok, ours_on, with};
use crate::images::{oci_ok, registry};
use crate::keyless::workspace;

pub(crate) async fn policies(st: &Stack) {
    let (_registry, reg) = registry(&st.dir.join("policy-registry"));
    let ours = ours_on(st, "policy-home");
    let v2 = initialized(Cosign::v2(&st.dir.join("policy-v2")), st);
    let v3 = initialized(Cosign::v3(&st.dir.join("policy-v3")), st);
    let token = st.token();
    let predicate = st.dir.join("policy-provenance.json");
    std::fs::write(
        &predicate,
        br#"{"builder":{"id":"ci"},"buildType":"https://example.com/build"}"#,
    )
    .expect("w");
    let digest = oci_ok(&["push-image", &reg, "policy/app", "v1"]);
    let image = format!("{reg}/policy/app@{digest}");
    // the legacy layout, with a signed entry timestamp: every cosign reads it as it is
    let o = ours.run(&[
        "attest",
        "--yes",
        "--identity-token",
        &token,
        "--predicate",
        p(&predicate),
        "--type",
        "slsaprovenance",
        "--new-bundle-format=false",
        &image,
    ]);
    ok(&o, "sigstack attests");
    let dir = workspace().join("tests/policies");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/policies")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|f| f.extension().is_some_and(|e| e == "rego" || e == "cue"))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "{files:?}");
    let insecure = "--allow-insecure-registry";
    let mut table = format!(
        "\npolicy verdicts on one attestation\n{:<32}{:<12}{:<12}{:<12}{:<12}\n",
        "policy", "expected", "cosign v2", "cosign v3", "sigstack"
    );
    let mut wrong = Vec::new();
    for f in &files {
        let name = f.file_name().and_then(|n| n.to_str()).expect("name");
        let allow = !name.contains("someone-else");
        table.push_str(&format!(
            "{name:<32}{:<12}",
            if allow { "allow" } else { "deny" }
        ));
        for (tool, verifier) in [
            ("cosign v2", &v2 as &dyn Tool),
            ("cosign v3", &v3),
            ("sigstack", &ours),
        ] {
            let o = verifier.run(&with(
                &with(
                    &[
                        "verify-attestation",
                        insecure,
                        "--type",
                        "slsaprovenance",
                        "--policy",
                        p(f),
                    ],
                    &st.id(),
                ),
                &[&image],
            ));
            table.push_str(&format!("{:<12}", if o.ok() { "allow" } else { "deny" }));
            if o.ok() != allow {
                wrong.push(format!("{tool} on {name}: {o}"));
            }
            // a denial says which rule or field denied
            if tool == "sigstack" && !allow {
                let why = if name.ends_with(".rego") {
                    "data.signature.allow"
                } else {
                    "someone-else"
                };
                assert!(
                    o.code == Some(1) && o.stderr.contains(why) && o.stderr.contains(name),
                    "{o}"
                );
            }
        }
        table.push('\n');
    }
    eprintln!("{table}");
    assert!(wrong.is_empty(), "{table}\n{}", wrong.join("\n"));

    // not a policy file; CUE without the cue tool: told what to do
    let o = ours.run(&with(
        &with(
            &["verify-attestation", insecure, "--policy", p(&predicate)],
            &st.id(),
        ),
        &[&image],
    ));
    assert!(o.ok(), "a JSON policy the predicate satisfies: {o}");
    let cue = dir.join("builder-is-ci.cue");
    let o = ours.run_env(
        &with(
            &with(
                &["verify-attestation", insecure, "--policy", p(&cue)],
                &st.id(),
            ),
            &[&image],
        ),
        &[
            ("SIGSTACK_CUE", "/nonexistent/cue"),
            ("PATH", "/usr/bin:/bin"),
        ],
    );
    assert!(
        !o.ok() && o.stderr.contains("go install cuelang.org/go/cmd/cue"),
        "{o}"
    );

    // the same files for a blob's attestation
    let artifact = st.dir.join("policy-blob.txt");
    std::fs::write(&artifact, b"built by ci\n").expect("w");
    let bundle = st.dir.join("policy-blob.sigstore.json");
    let o = ours.run(&[
        "attest-blob",
        "--yes",
        "--identity-token",
        &token,
        "--predicate",
        p(&predicate),
        "--type",
        "slsaprovenance",
        "--bundle",
        p(&bundle),
        p(&artifact),
    ]);
    ok(&o, "sigstack attest-blob");
    for f in &files {
        let name = f.file_name().and_then(|n| n.to_str()).expect("name");
        let o = ours.run(&with(
            &with(
                &[
                    "verify-blob-attestation",
                    "--bundle",
                    p(&bundle),
                    "--type",
                    "slsaprovenance",
                    "--policy",
                    p(f),
                ],
                &st.id(),
            ),
            &[p(&artifact)],
        ));
        assert_eq!(
            o.ok(),
            !name.contains("someone-else"),
            "verify-blob-attestation --policy {name}: {o}"
        );
    }
}
