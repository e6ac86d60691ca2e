//! Container images with cosign v2 and v3 and `sigstack` on Debian's docker-registry (no
//! referrers API): the matrix of signers, layouts and verifiers with annotations and
//! attestations; the management commands on each other's work; Docker media types;
//! cosign v2's intoto log entries; `COSIGN_REPOSITORY` and `--registry-referrers-mode`.

use crate::client::{Out, Sigstack, p};
use crate::cosign::{Cosign, go_tool, out};
use crate::cosign_interop::{Stack, initialized, ok, ours_on, with};
use crate::images::{oci_ok, registry};
use serde_json::Value;
use std::process::Command;

/// Images on Debian's docker-registry (no referrers API): each tool signs and attests in
/// each layout it writes, and each verifies the others', with `-a` annotations.
pub(crate) async fn images(st: &Stack) {
    let (_registry, reg) = registry(&st.dir.join("registry"));
    let ours = ours_on(st, "img-home");
    let v2 = initialized(Cosign::v2(&st.dir.join("img-v2")), st);
    let v3 = initialized(Cosign::v3(&st.dir.join("img-v3")), st);
    let token = st.token();
    let legacy_urls = [
        "--fulcio-url",
        st.ca.as_str(),
        "--rekor-url",
        st.log.as_str(),
    ];
    let predicate = st.dir.join("img-provenance.json");
    std::fs::write(
        &predicate,
        br#"{"builder":{"id":"ci"},"buildType":"https://example.com/build"}"#,
    )
    .expect("w");
    let insecure = "--allow-insecure-registry";
    let mut table = format!(
        "\nimage matrix (rows sign and attest, columns verify; -a env=prod)\n{:<28}{:<20}{:<20}{:<20}\n",
        "signer \\ verifier", "cosign v2", "cosign v3", "sigstack"
    );
    let mut failures = Vec::new();
    // (signer, layout, annotations carried in what was signed)
    let signers: [(&str, &str, bool); 5] = [
        ("cosign v2", "legacy .sig", true),
        ("cosign v2", "referrer bundle", false),
        ("cosign v3", "referrer bundle", true),
        ("sigstack", "referrer bundle", true),
        ("sigstack", "legacy .sig", true),
    ];
    let mut images = Vec::new();
    for (n, (signer, layout, carries)) in signers.iter().enumerate() {
        let digest = oci_ok(&["push-image", &reg, &format!("matrix/app{n}"), "v1"]);
        let image = format!("{reg}/matrix/app{n}@{digest}");
        images.push((digest.clone(), image.clone()));
        let ann = ["-a", "env=prod"];
        let o = match (*signer, *layout) {
            ("cosign v2", "legacy .sig") => v2.run(&with(
                &with(
                    &["sign", "--yes", "--identity-token", &token, insecure],
                    &legacy_urls,
                ),
                &with(&ann, &[&image]),
            )),
            ("cosign v2", _) => v2.run(&with(
                &[
                    "sign",
                    "--yes",
                    "--identity-token",
                    &token,
                    insecure,
                    "--use-signing-config",
                    "--new-bundle-format",
                ],
                &with(&ann, &[&image]),
            )),
            ("cosign v3", _) => v3.run(&with(
                &["sign", "--yes", "--identity-token", &token, insecure],
                &with(&ann, &[&image]),
            )),
            (_, "legacy .sig") => ours.run(&with(
                &[
                    "sign",
                    "--yes",
                    "--identity-token",
                    &token,
                    "--new-bundle-format=false",
                ],
                &with(&ann, &[&image]),
            )),
            _ => ours.run(&with(
                &["sign", "--yes", "--identity-token", &token],
                &with(&ann, &[&image]),
            )),
        };
        ok(&o, &format!("{signer} signs ({layout})"));
        // an attestation beside the signature
        let att = match *signer {
            "cosign v2" if *layout == "legacy .sig" => v2.run(&with(
                &with(
                    &[
                        "attest",
                        "--yes",
                        "--identity-token",
                        &token,
                        insecure,
                        "--predicate",
                        p(&predicate),
                        "--type",
                        "slsaprovenance",
                    ],
                    &legacy_urls,
                ),
                &[&image],
            )),
            "cosign v2" => v2.run(&[
                "attest",
                "--yes",
                "--identity-token",
                &token,
                insecure,
                "--use-signing-config",
                "--new-bundle-format",
                "--predicate",
                p(&predicate),
                "--type",
                "slsaprovenance",
                &image,
            ]),
            "cosign v3" => v3.run(&[
                "attest",
                "--yes",
                "--identity-token",
                &token,
                insecure,
                "--predicate",
                p(&predicate),
                "--type",
                "slsaprovenance",
                &image,
            ]),
            _ => ours.run(&[
                "attest",
                "--yes",
                "--identity-token",
                &token,
                "--predicate",
                p(&predicate),
                "--type",
                "slsaprovenance",
                if *layout == "legacy .sig" {
                    "--new-bundle-format=false"
                } else {
                    "--new-bundle-format=true"
                },
                &image,
            ]),
        };
        ok(&att, &format!("{signer} attests ({layout})"));
        table.push_str(&format!("{:<28}", format!("{signer} ({layout})")));
        for (vname, verifier) in [
            ("cosign v2", &v2 as &dyn Tool),
            ("cosign v3", &v3),
            ("sigstack", &ours),
        ] {
            // a referrer bundle is signed into the Rekor v2 log with a timestamp, which
            // cosign v2 takes as the signing time only when told
            let stamps: &[&str] = if vname == "cosign v2" && *layout == "referrer bundle" {
                &["--use-signed-timestamps"]
            } else {
                &[]
            };
            // cosign v2 sends image signatures and attestations (DSSE) to a Rekor v2 log
            // as `dsseRequestV002`, which this log still accepts and rekor-tiles no longer
            // does; cosign v3 no longer verifies the dsse 0.0.2 entries that makes (it
            // finds "no signatures"). An upstream version skew, shown as such: cosign v2
            // and sigstack verify those bundles.
            if vname == "cosign v3" && *signer == "cosign v2" && *layout == "referrer bundle" {
                table.push_str(&format!("{:<20}", "n/a (dsse 0.0.2)"));
                continue;
            }
            let base = with(&with(&["verify", insecure], stamps), &st.id());
            let plain = verifier.run(&with(&base, &[&image]));
            let annotated = verifier.run(&with(&base, &["-a", "env=prod", &image]));
            let wrong = verifier.run(&with(&base, &["-a", "env=test", &image]));
            let attestation = verifier.run(&with(
                &with(
                    &with(
                        &["verify-attestation", insecure, "--type", "slsaprovenance"],
                        stamps,
                    ),
                    &st.id(),
                ),
                &[&image],
            ));
            let mut cell = Vec::new();
            if !plain.ok() {
                failures.push(format!("{vname} verifies {signer} ({layout}): {plain}"));
                cell.push("FAIL");
            }
            // what was signed with the annotation verifies with it, and never with another
            // value (cosign v2 ignores -a for bundles: its own limitation, shown as such)
            let v2_ignores = vname == "cosign v2" && *layout == "referrer bundle";
            if *carries && !annotated.ok() {
                failures.push(format!(
                    "{vname} -a env=prod on {signer} ({layout}): {annotated}"
                ));
                cell.push("ann FAIL");
            }
            if wrong.ok() && !v2_ignores {
                failures.push(format!(
                    "{vname} accepted -a env=test on {signer} ({layout})"
                ));
                cell.push("wrong ann ACCEPTED");
            }
            if !*carries && annotated.ok() && !v2_ignores {
                failures.push(format!(
                    "{vname} accepted an annotation {signer} ({layout}) did not sign"
                ));
            }
            if !attestation.ok() {
                failures.push(format!(
                    "{vname} verify-attestation on {signer} ({layout}): {attestation}"
                ));
                cell.push("att FAIL");
            }
            let cell = if cell.is_empty() {
                if v2_ignores {
                    "pass (-a ignored)".to_string()
                } else {
                    "pass".to_string()
                }
            } else {
                cell.join(",")
            };
            table.push_str(&format!("{cell:<20}"));
        }
        table.push('\n');
        // tools read what the others wrote
        ok(&v3.run(&["tree", insecure, &image]), "cosign v3 tree");
        let o = ours.run(&["tree", &image]);
        ok(&o, "sigstack tree");
    }
    // the management commands read what the other tool wrote: cosign on sigstack's legacy
    // image (row 4), sigstack on cosign v2's (row 0)
    let (ours_digest, ours_image) = &images[4];
    let (theirs_digest, theirs_image) = &images[0];
    let tri_ours = ours.run(&["triangulate", ours_image]);
    ok(&tri_ours, "sigstack triangulate");
    for c in [&v2, &v3] {
        let o = c.run(&["triangulate", insecure, ours_image]);
        ok(&o, &format!("{} triangulate", c.name));
        assert_eq!(
            o.stdout.trim(),
            tri_ours.stdout.trim(),
            "{}: the same .sig tag",
            c.name
        );
    }
    let o = v3.run(&["download", "signature", insecure, ours_image]);
    ok(&o, "cosign download signature of sigstack's");
    assert!(o.stdout.contains("Base64Signature"), "{o}");
    let o = ours.run(&["download", "signature", theirs_image]);
    ok(&o, "sigstack download signature of cosign's");
    assert!(o.stdout.contains("Base64Signature"), "{o}");
    // copies verify at their new home, in the other tool
    let dst_theirs = format!("{reg}/copies/by-cosign:v1");
    ok(
        &v3.run(&["copy", insecure, ours_image, &dst_theirs]),
        "cosign copy of sigstack's image",
    );
    let copied = format!("{reg}/copies/by-cosign@{ours_digest}");
    ok(
        &ours.run(&with(&with(&["verify"], &st.id()), &[&copied])),
        "sigstack verifies cosign's copy",
    );
    let dst_ours = format!("{reg}/copies/by-sigstack:v1");
    ok(
        &ours.run(&["copy", theirs_image, &dst_ours]),
        "sigstack copy of cosign's image",
    );
    let copied = format!("{reg}/copies/by-sigstack@{theirs_digest}");
    ok(
        &v2.run(&with(&with(&["verify", insecure], &st.id()), &[&copied])),
        "cosign verifies sigstack's copy",
    );
    // clean removes what the other tool attached
    ok(
        &v3.run(&["clean", "--force", insecure, ours_image]),
        "cosign clean of sigstack's",
    );
    let o = ours.run(&with(&with(&["verify"], &st.id()), &[ours_image]));
    assert_eq!(o.code, Some(1), "after cosign clean: {o}");
    ok(
        &ours.run(&["clean", theirs_image]),
        "sigstack clean of cosign's",
    );
    let o = v2.run(&with(
        &with(&["verify", insecure], &st.id()),
        &[theirs_image],
    ));
    assert!(!o.ok(), "after sigstack clean: {o}");

    // COSIGN_DOCKER_MEDIA_TYPES: legacy signature images with Docker's media types, as
    // cosign writes them for registries that refuse OCI's; each reads the other's
    let crane = go_tool("SIGSTACK_CRANE");
    let docker = [("COSIGN_DOCKER_MEDIA_TYPES", "1")];
    for (n, signer) in ["sigstack", "cosign v2"].iter().enumerate() {
        let digest = oci_ok(&["push-image", &reg, &format!("docker/app{n}"), "v1"]);
        let image = format!("{reg}/docker/app{n}@{digest}");
        let o = if *signer == "sigstack" {
            ours.run_env(
                &[
                    "sign",
                    "--yes",
                    "--identity-token",
                    &token,
                    "--new-bundle-format=false",
                    &image,
                ],
                &docker,
            )
        } else {
            v2.run_env(
                &with(
                    &with(
                        &["sign", "--yes", "--identity-token", &token, insecure],
                        &legacy_urls,
                    ),
                    &[&image],
                ),
                &docker,
            )
        };
        ok(&o, &format!("{signer} signs with Docker media types"));
        let tag = format!("{reg}/docker/app{n}:{}", digest.replace(':', "-") + ".sig");
        let mut c = Command::new(&crane);
        c.args(["manifest", "--insecure", &tag]);
        let m = out(c);
        ok(&m, "crane manifest");
        let m: Value = serde_json::from_str(&m.stdout).expect("a manifest");
        assert_eq!(
            m["mediaType"], "application/vnd.docker.distribution.manifest.v2+json",
            "{signer}: {m}"
        );
        assert_eq!(
            m["config"]["mediaType"],
            "application/vnd.docker.container.image.v1+json"
        );
        ok(
            &ours.run(&with(&with(&["verify"], &st.id()), &[&image])),
            "sigstack verifies",
        );
        ok(
            &v2.run(&with(&with(&["verify", insecure], &st.id()), &[&image])),
            "cosign v2 verifies",
        );
    }

    // cosign v2's intoto 0.0.1 log entries (`--rekor-entry-type intoto`): logged as Rekor
    // does, and verified by all three
    let digest = oci_ok(&["push-image", &reg, "matrix/intoto", "v1"]);
    let image = format!("{reg}/matrix/intoto@{digest}");
    let o = v2.run(&with(
        &with(
            &[
                "attest",
                "--yes",
                "--identity-token",
                &token,
                insecure,
                "--rekor-entry-type",
                "intoto",
                "--predicate",
                p(&predicate),
                "--type",
                "slsaprovenance",
            ],
            &legacy_urls,
        ),
        &[&image],
    ));
    ok(&o, "cosign v2 attest --rekor-entry-type intoto");
    table.push_str(&format!("{:<28}", "cosign v2 (intoto entry)"));
    for (vname, verifier) in [
        ("cosign v2", &v2 as &dyn Tool),
        ("cosign v3", &v3),
        ("sigstack", &ours),
    ] {
        let o = verifier.run(&with(
            &with(
                &["verify-attestation", insecure, "--type", "slsaprovenance"],
                &st.id(),
            ),
            &[&image],
        ));
        if !o.ok() {
            failures.push(format!("{vname} verifies an intoto 0.0.1 attestation: {o}"));
        }
        table.push_str(&format!(
            "{:<20}",
            if o.ok() { "att pass" } else { "att FAIL" }
        ));
    }
    table.push('\n');
    eprintln!("{table}");
    let outdir = crate::keyless::workspace().join("target/test-artifacts");
    std::fs::create_dir_all(&outdir).expect("dir");
    std::fs::write(outdir.join("interop-matrix-images.txt"), &table).expect("w");
    assert!(
        failures.is_empty(),
        "image matrix:\n{}",
        failures.join("\n\n")
    );
    let tools = Tools {
        reg: &reg,
        ours: &ours,
        v2: &v2,
        v3: &v3,
        token: &token,
        predicate: p(&predicate),
    };
    signature_repository(st, &tools);
    referrers_mode(st, &tools);
    online_paths(st, &tools);
}

/// cosign's online paths against the log. A signature attached without a log entry in
/// its annotations is looked up through `/api/v1/log/entries/retrieve` by cosign v2 and by
/// `sigstack`. cosign v2 signing the same payload twice with a deterministic key (RSA
/// PKCS#1 v1.5) gets 409 from the log and reuses the existing entry, found through the
/// answer's Location header.
fn online_paths(st: &Stack, t: &Tools) {
    let dir = st.dir.join("online");
    std::fs::create_dir_all(&dir).expect("dir");
    let f = |n: &str| dir.join(n);
    crate::support::openssl_rsa_key(&f("rsa.pem"));
    let pw = [("COSIGN_PASSWORD", "")];
    let prefix = f("rsa");
    ok(
        &t.v2.run_env(
            &[
                "import-key-pair",
                "--key",
                p(&f("rsa.pem")),
                "--output-key-prefix",
                p(&prefix),
            ],
            &pw,
        ),
        "cosign v2 import-key-pair (RSA)",
    );
    let digest = oci_ok(&["push-image", t.reg, "online/app", "v1"]);
    let image = format!("{}/online/app@{digest}", t.reg);
    let g = t.v2.run(&["generate", INSECURE, &image]);
    ok(&g, "cosign v2 generate");
    std::fs::write(f("payload.json"), &g.stdout).expect("w");
    let mut index = Vec::new();
    for n in ["1", "2"] {
        let sig = format!("sig{n}");
        let bundle = format!("bundle{n}.json");
        let o = t.v2.run_env(
            &[
                "sign-blob",
                "--yes",
                "--key",
                p(&f("rsa.key")),
                "--rekor-url",
                &st.log,
                "--output-signature",
                p(&f(&sig)),
                "--bundle",
                p(&f(&bundle)),
                p(&f("payload.json")),
            ],
            &pw,
        );
        ok(&o, &format!("cosign v2 sign-blob, time {n}"));
        let b: Value =
            serde_json::from_slice(&std::fs::read(f(&bundle)).expect("bundle")).expect("json");
        index.push(
            b.pointer("/rekorBundle/Payload/logIndex")
                .cloned()
                .expect("a log index"),
        );
    }
    assert_eq!(
        std::fs::read(f("sig1")).expect("sig"),
        std::fs::read(f("sig2")).expect("sig"),
        "RSA PKCS#1 v1.5 signatures are deterministic"
    );
    assert_eq!(
        index[0], index[1],
        "the second upload reused the first entry (409)"
    );
    ok(
        &t.ours.run(&[
            "verify-blob",
            "--key",
            p(&f("rsa.pub")),
            "--bundle",
            p(&f("bundle2.json")),
            p(&f("payload.json")),
        ]),
        "sigstack verifies the reused entry's bundle",
    );
    // attached without a log entry: looked up online
    ok(
        &t.v2.run(&[
            "attach",
            "signature",
            INSECURE,
            "--payload",
            p(&f("payload.json")),
            "--signature",
            p(&f("sig1")),
            &image,
        ]),
        "cosign v2 attach signature",
    );
    ok(
        &t.v2.run(&[
            "verify",
            INSECURE,
            "--key",
            p(&f("rsa.pub")),
            "--rekor-url",
            &st.log,
            &image,
        ]),
        "cosign v2 looks the attached signature up in the log",
    );
    ok(
        &t.ours.run(&["verify", "--key", p(&f("rsa.pub")), &image]),
        "sigstack looks the attached signature up in the log",
    );
}

/// What the sites tests share.
struct Tools<'a> {
    reg: &'a str,
    ours: &'a Sigstack,
    v2: &'a Cosign,
    v3: &'a Cosign,
    token: &'a str,
    predicate: &'a str,
}

/// The tags of a repository, read with crane (none if it does not exist).
fn tags(reg: &str, repo: &str) -> Vec<String> {
    let mut c = Command::new(go_tool("SIGSTACK_CRANE"));
    c.args(["ls", "--insecure", &format!("{reg}/{repo}")]);
    let o = out(c);
    if !o.ok() {
        return Vec::new();
    }
    o.stdout.lines().map(str::to_string).collect()
}

const INSECURE: &str = "--allow-insecure-registry";

/// `COSIGN_REPOSITORY`: each tool keeps an image's signatures and attestations in another
/// repository and finds the others' there; nothing lands beside the image, and without
/// the variable nothing is found. A repository with a tag is refused before signing.
fn signature_repository(st: &Stack, t: &Tools) {
    let store = format!("{}/signatures/store", t.reg);
    let env = [("COSIGN_REPOSITORY", store.as_str())];
    let legacy_urls = ["--fulcio-url", &st.ca, "--rekor-url", &st.log];
    let signers = [
        "cosign v2 (legacy .sig)",
        "cosign v3",
        "sigstack",
        "sigstack (legacy .sig)",
    ];
    for (n, signer) in signers.iter().enumerate() {
        let digest = oci_ok(&["push-image", t.reg, &format!("sites/app{n}"), "v1"]);
        let image = format!("{}/sites/app{n}@{digest}", t.reg);
        let sign = ["sign", "--yes", "--identity-token", t.token];
        let o = match n {
            0 => t.v2.run_env(
                &with(&with(&sign, &[INSECURE]), &with(&legacy_urls, &[&image])),
                &env,
            ),
            1 => t.v3.run_env(&with(&sign, &[INSECURE, &image]), &env),
            2 => t.ours.run_env(&with(&sign, &[&image]), &env),
            _ => t
                .ours
                .run_env(&with(&sign, &["--new-bundle-format=false", &image]), &env),
        };
        ok(&o, &format!("{signer} signs into COSIGN_REPOSITORY"));
        assert_eq!(
            tags(t.reg, &format!("sites/app{n}")),
            ["v1"],
            "{signer}: nothing beside the image"
        );
        let hexd = digest.replace(':', "-");
        let stored = tags(t.reg, "signatures/store");
        assert!(
            stored.iter().any(|x| x.starts_with(&hexd)),
            "{signer}: the signature is in {store}: {stored:?}"
        );
        let verify = with(&["verify"], &st.id());
        for (vname, tool) in [
            ("cosign v2", t.v2 as &dyn Tool),
            ("cosign v3", t.v3),
            ("sigstack", t.ours),
        ] {
            let insecure: &[&str] = if vname == "sigstack" {
                &[]
            } else {
                &[INSECURE]
            };
            let args = with(&with(&verify, insecure), &[&image]);
            // cosign v2.6 looks the bundle layers of referrers up in the image's repository,
            // not in COSIGN_REPOSITORY (fixed in cosign v3.1, upstream PR 4836): it cannot
            // verify bundles kept elsewhere, whoever wrote them
            if vname == "cosign v2" && (n == 1 || n == 2) {
                continue;
            }
            ok(
                &tool.run_env(&args, &env),
                &format!("{vname} verifies {signer} through COSIGN_REPOSITORY"),
            );
        }
        let o = t.ours.run(&with(&verify, &[&image]));
        assert_eq!(
            o.code,
            Some(1),
            "{signer}: without COSIGN_REPOSITORY nothing is found: {o}"
        );
        assert!(o.stderr.contains("no signatures found"), "{o}");
    }
    // attestations: sigstack's and cosign v3's, each verified by the other
    let digest = oci_ok(&["push-image", t.reg, "sites/attested", "v1"]);
    let image = format!("{}/sites/attested@{digest}", t.reg);
    for (who, tool, insecure) in [
        ("sigstack", t.ours as &dyn Tool, None),
        ("cosign v3", t.v3, Some(INSECURE)),
    ] {
        let mut args = vec![
            "attest",
            "--yes",
            "--identity-token",
            t.token,
            "--predicate",
            t.predicate,
            "--type",
            "slsaprovenance",
        ];
        args.extend(insecure);
        args.push(&image);
        ok(
            &tool.run_env(&args, &env),
            &format!("{who} attests into COSIGN_REPOSITORY"),
        );
    }
    assert_eq!(
        tags(t.reg, "sites/attested"),
        ["v1"],
        "attestations: nothing beside the image"
    );
    let va = with(
        &["verify-attestation", "--type", "slsaprovenance"],
        &st.id(),
    );
    let o = t.ours.run_env(&with(&va, &[&image]), &env);
    ok(&o, "sigstack verify-attestation through COSIGN_REPOSITORY");
    assert_eq!(o.stdout.lines().count(), 2, "both attestations verify: {o}");
    ok(
        &t.v3
            .run_env(&with(&with(&va, &[INSECURE]), &[&image]), &env),
        "cosign v3 verify-attestation through COSIGN_REPOSITORY",
    );
    // triangulate names the same tag in the signature repository
    let theirs = t.v3.run_env(&["triangulate", INSECURE, &image], &env);
    let mine = t.ours.run_env(&["triangulate", &image], &env);
    ok(&theirs, "cosign triangulate");
    ok(&mine, "sigstack triangulate");
    assert_eq!(theirs.stdout.trim(), mine.stdout.trim());
    assert!(mine.stdout.starts_with(&format!("{store}:")), "{mine}");
    // a repository with a tag: refused, nothing signed
    let bad = format!("{store}:latest");
    let o = t.ours.run_env(
        &["sign", "--yes", "--identity-token", t.token, &image],
        &[("COSIGN_REPOSITORY", &bad)],
    );
    assert_eq!(o.code, Some(3), "{o}");
    assert!(
        o.stderr.contains("COSIGN_REPOSITORY") && o.stderr.contains("without a tag"),
        "{o}"
    );
}

/// `--registry-referrers-mode oci-1-1`: cosign v2's legacy signature pushed as an OCI 1.1
/// referrer (cosign's experimental mode) verifies in `sigstack`, and `sigstack`'s in cosign
/// v2 (`--experimental-oci11`); neither writes a `.sig` tag; the trees list them; clean
/// removes them.
fn referrers_mode(st: &Stack, t: &Tools) {
    let exp = [("COSIGN_EXPERIMENTAL", "1")];
    let legacy_urls = ["--fulcio-url", &st.ca, "--rekor-url", &st.log];
    let verify = with(&["verify"], &st.id());
    // cosign v2 signs, sigstack verifies
    let digest = oci_ok(&["push-image", t.reg, "refmode/cosign", "v1"]);
    let image = format!("{}/refmode/cosign@{digest}", t.reg);
    let o = t.v2.run_env(
        &with(
            &with(
                &[
                    "sign",
                    "--yes",
                    "--identity-token",
                    t.token,
                    INSECURE,
                    "--registry-referrers-mode",
                    "oci-1-1",
                ],
                &legacy_urls,
            ),
            &[&image],
        ),
        &exp,
    );
    ok(&o, "cosign v2 sign --registry-referrers-mode oci-1-1");
    let hexd = digest.replace(':', "-");
    assert!(
        !tags(t.reg, "refmode/cosign").contains(&format!("{hexd}.sig")),
        "no .sig tag"
    );
    ok(
        &t.ours.run(&with(&verify, &[&image])),
        "sigstack verifies cosign v2's referrer signature",
    );
    let o = t.ours.run(&with(&verify, &["-a", "env=prod", &image]));
    assert_eq!(o.code, Some(1), "an annotation it does not carry: {o}");
    let o = t
        .ours
        .run(&["tree", "--registry-referrers-mode", "oci-1-1", &image]);
    ok(&o, "sigstack tree");
    assert!(o.stdout.contains("a legacy signature"), "{o}");
    let o = t.ours.run(&["download", "signature", &image]);
    ok(&o, "sigstack download signature");
    assert!(o.stdout.contains("Base64Signature"), "{o}");
    // sigstack signs, cosign v2 verifies
    let digest = oci_ok(&["push-image", t.reg, "refmode/ours", "v1"]);
    let image = format!("{}/refmode/ours@{digest}", t.reg);
    let o = t.ours.run(&[
        "sign",
        "--yes",
        "--identity-token",
        t.token,
        "--new-bundle-format=false",
        "--registry-referrers-mode",
        "oci-1-1",
        "-a",
        "env=prod",
        &image,
    ]);
    ok(&o, "sigstack sign --registry-referrers-mode oci-1-1");
    let hexd = digest.replace(':', "-");
    let listed = tags(t.reg, "refmode/ours");
    assert!(
        !listed.contains(&format!("{hexd}.sig")) && listed.contains(&hexd),
        "a fallback index, no .sig tag: {listed:?}"
    );
    ok(
        &t.v2.run_env(
            &with(
                &with(
                    &verify,
                    &[INSECURE, "--experimental-oci11", "-a", "env=prod"],
                ),
                &[&image],
            ),
            &exp,
        ),
        "cosign v2 --experimental-oci11 verifies sigstack's referrer signature",
    );
    ok(
        &t.ours.run(&with(&verify, &["-a", "env=prod", &image])),
        "sigstack verifies its own",
    );
    let o = t.v3.run(&["tree", INSECURE, &image]);
    ok(&o, "cosign v3 tree");
    assert!(
        o.stdout
            .contains("application/vnd.dev.cosign.artifact.sig.v1+json"),
        "{o}"
    );
    ok(
        &t.ours.run(&["clean", "--type", "signature", &image]),
        "sigstack clean",
    );
    let o = t.ours.run(&with(&verify, &[&image]));
    assert_eq!(o.code, Some(1), "after clean: {o}");
    let o = t
        .ours
        .run(&["sign", "--registry-referrers-mode", "oci-2", &image]);
    assert_eq!(o.code, Some(2), "an unknown mode is a usage error: {o}");
}

pub(crate) trait Tool {
    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Out;
    fn run(&self, args: &[&str]) -> Out;
}

impl Tool for Cosign {
    fn run(&self, args: &[&str]) -> Out {
        Cosign::run(self, args)
    }
    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        Cosign::run_env(self, args, env)
    }
}

impl Tool for Sigstack {
    fn run(&self, args: &[&str]) -> Out {
        Sigstack::run(self, args)
    }
    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        Sigstack::run_env(self, args, env)
    }
}
