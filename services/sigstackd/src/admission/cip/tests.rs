use super::*;

#[test]
fn globs_match_as_policy_controller_matches() {
    let m = |g: &str, image: &str| {
        let re = compile_glob(g).expect("glob");
        match_name(image).is_some_and(|n| re.is_match(&n)) || re.is_match(image)
    };
    assert!(m("**", "nginx"));
    assert!(m("*", "nginx"));
    assert!(m("index.docker.io/library/*", "nginx"));
    assert!(!m("*", "me/app"));
    assert!(m("*/*", "me/app"));
    assert!(m(
        "registry.local:5000/team/*",
        "registry.local:5000/team/app"
    ));
    assert!(!m(
        "registry.local:5000/team/*",
        "registry.local:5000/team/sub/app:v1"
    ));
    assert!(m(
        "registry.local:5000/team/**",
        "registry.local:5000/team/sub/app:v1"
    ));
    assert!(m(
        "127.0.0.1:5000/app@sha256:*",
        "127.0.0.1:5000/app@sha256:0000000000000000000000000000000000000000000000000000000000000000"
    ));
    assert!(compile_glob("a/(b)").is_err());
    assert!(compile_glob("").is_err());
}

#[test]
fn policies_with_fields_we_cannot_honour_are_refused() {
    let base = "apiVersion: policy.sigstore.dev/v1beta1\nkind: ClusterImagePolicy\nmetadata: {name: p}\nspec:\n  images: [{glob: \"**\"}]\n  authorities:\n";
    let ok = format!("{base}  - static: {{action: pass}}\n");
    assert_eq!(parse(&ok, "t", None).expect("ok").len(), 1);
    for (bad, why) in [
        (
            "  - key: {kms: \"gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k\"}\n",
            "GOOGLE_APPLICATION_CREDENTIALS",
        ),
        ("  - static: {action: maybe}\n", "pass or fail"),
        ("  - keyless: {identities: [{issuer: x}]}\n", "subject"),
        (
            "  - static: {action: pass}\n    unknownField: 1\n",
            "unknown field",
        ),
        (
            "  - keyless: {identities: [{issuer: x, subject: y}]}\n    attestations: [{name: a, predicateType: custom, policy: {type: opa, data: x}}]\n",
            "opa",
        ),
    ] {
        let e = format!(
            "{:#}",
            parse(&format!("{base}{bad}"), "t", None).err().expect(why)
        );
        assert!(e.contains(why), "{why}: {e}");
    }
    let e = format!(
        "{:#}",
        parse(
            &format!("{ok}  policy: {{type: cue, data: x}}\n"),
            "t",
            None
        )
        .err()
        .expect("spec.policy")
    );
    assert!(e.contains("spec.policy"), "{e}");
    // other kinds in the same file are skipped
    let mixed = format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\n---\n{ok}");
    assert_eq!(parse(&mixed, "t", None).expect("ok").len(), 1);
}
