//! Bring-your-own PKI against cosign: signatures made with a certificate from the
//! organisation's own CA (made here with openssl: root, intermediate, leaf with an e-mail
//! SAN and Fulcio's issuer extensions) instead of the stack's CA — logged with rekor-cli
//! and verified by `sigstack` and cosign v2; signed by `sigstack sign-blob --key
//! --certificate --certificate-chain` and verified by cosign v2 and v3; signed by cosign
//! v3 and verified by `sigstack`. Verifiers take the organisation's CA with
//! `--certificate-chain` or `--ca-roots`/`--ca-intermediates` in place of the trusted
//! root's CAs (no SCT from such a CA: `--insecure-ignore-sct`).

use crate::client::{Out, Sigstack, p};
use crate::cosign::{Cosign, go_tool, out};
use crate::cosign_interop::{Stack, initialized, ok, with};
use crate::keyless::run;
use std::path::Path;
use std::process::Command;

/// Bring-your-own PKI: a certificate from the organisation's own CA (made with openssl:
/// root, intermediate, leaf with an e-mail SAN and Fulcio's issuer extensions), its
/// signature logged with rekor-cli, verified by `sigstack` and cosign v2 with
/// `--certificate-chain` or `--ca-roots`/`--ca-intermediates` in place of the trusted root's
/// CAs (no SCT from such a CA: `--insecure-ignore-sct`).
pub(crate) fn bring_your_own_pki(st: &Stack) {
    let d = st.dir.join("pki");
    std::fs::create_dir_all(&d).expect("dir");
    let f = |n: &str| d.join(n);
    let issuer = "https://sso.corp.example";
    std::fs::write(
        f("ca.ext"),
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n",
    )
    .expect("w");
    std::fs::write(
        f("leaf.ext"),
        format!(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\nsubjectAltName=email:builder@corp.example\n1.3.6.1.4.1.57264.1.1=DER:{}\n1.3.6.1.4.1.57264.1.8=ASN1:UTF8String:{issuer}\n",
            hex::encode(issuer)
        ),
    )
    .expect("w");
    std::fs::write(f("art.txt"), b"released by the organisation\n").expect("w");
    let q = |n: &str| f(n).to_string_lossy().to_string();
    let openssl = |args: &[&str]| {
        let (done, o) = run(Command::new("openssl").args(args));
        assert!(done, "openssl {args:?}: {o}");
    };
    for k in ["root", "inter", "leaf"] {
        let key = q(&format!("{k}.key"));
        openssl(&[
            "ecparam",
            "-genkey",
            "-name",
            "prime256v1",
            "-noout",
            "-out",
            &key,
        ]);
    }
    openssl(&[
        "req",
        "-x509",
        "-new",
        "-key",
        &q("root.key"),
        "-subj",
        "/O=Corp/CN=Corp Root",
        "-days",
        "3650",
        "-out",
        &q("root.pem"),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    // a request from `key`, certified by `ca` with the extensions in `ext`
    let issue = |key: &str, subject: &str, ca: &str, ext: &str, days: &str| {
        let csr = q(&format!("{key}.csr"));
        openssl(&[
            "req",
            "-new",
            "-key",
            &q(&format!("{key}.key")),
            "-subj",
            subject,
            "-out",
            &csr,
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &q(&format!("{ca}.pem")),
            "-CAkey",
            &q(&format!("{ca}.key")),
            "-CAcreateserial",
            "-days",
            days,
            "-extfile",
            &q(ext),
            "-out",
            &q(&format!("{key}.pem")),
        ]);
    };
    issue(
        "inter",
        "/O=Corp/CN=Corp Intermediate",
        "root",
        "ca.ext",
        "3650",
    );
    issue("leaf", "/O=Corp", "inter", "leaf.ext", "30");
    openssl(&[
        "dgst",
        "-sha256",
        "-sign",
        &q("leaf.key"),
        "-out",
        &q("art.sig"),
        &q("art.txt"),
    ]);
    let chain = format!(
        "{}{}",
        std::fs::read_to_string(f("inter.pem")).expect("r"),
        std::fs::read_to_string(f("root.pem")).expect("r")
    );
    std::fs::write(f("chain.pem"), chain).expect("w");
    use base64::Engine;
    let sig_b64 =
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(f("art.sig")).expect("r"));
    std::fs::write(f("art.sig.b64"), &sig_b64).expect("w");
    let mut c = Command::new(go_tool("SIGSTACK_REKOR_CLI"));
    crate::cosign::clean_env(&mut c);
    c.env("HOME", &d).args([
        "upload",
        "--rekor_server",
        &st.log,
        "--type",
        "hashedrekord",
        "--artifact",
        p(&f("art.txt")),
        "--signature",
        p(&f("art.sig")),
        "--public-key",
        p(&f("leaf.pem")),
        "--pki-format",
        "x509",
    ]);
    ok(
        &out(c),
        "rekor-cli logs the signature with the organisation's certificate",
    );
    let ours = Sigstack::new(&d.join("home"));
    ok(
        &ours.run(&["initialize", "--mirror", &st.tuf, "--root", &st.root]),
        "initialize",
    );
    let id = [
        "--certificate-identity",
        "builder@corp.example",
        "--certificate-oidc-issuer",
        issuer,
    ];
    let verify = |pki: &[&str]| {
        ours.run(&with(
            &with(
                &[
                    "verify-blob",
                    "--signature",
                    p(&f("art.sig.b64")),
                    "--certificate",
                    p(&f("leaf.pem")),
                ],
                pki,
            ),
            &with(&id, &[p(&f("art.txt"))]),
        ))
    };
    let refused_for = |o: &Out, why: &str| {
        assert_eq!(o.code, Some(1), "{o}");
        assert!(o.stderr.contains(why), "{why}: {o}");
    };
    refused_for(&verify(&[]), "does not chain to a trusted CA");
    refused_for(
        &verify(&["--certificate-chain", p(&f("chain.pem"))]),
        "no embedded SCT",
    );
    ok(
        &verify(&[
            "--certificate-chain",
            p(&f("chain.pem")),
            "--insecure-ignore-sct",
        ]),
        "sigstack --certificate-chain",
    );
    ok(
        &verify(&[
            "--ca-roots",
            p(&f("root.pem")),
            "--ca-intermediates",
            p(&f("inter.pem")),
            "--insecure-ignore-sct",
        ]),
        "sigstack --ca-roots --ca-intermediates",
    );
    refused_for(
        &verify(&["--ca-roots", p(&f("root.pem")), "--insecure-ignore-sct"]),
        "does not chain to a trusted CA",
    );
    // cosign v2 on the same (its detached-signature path takes the log's key from
    // SIGSTORE_REKOR_PUBLIC_KEY, not from TUF)
    let v2 = Cosign::v2(&d.join("v2"));
    let log_key = st.json["services"]["log"]["public_key"]
        .as_str()
        .expect("log key")
        .to_string();
    for pki in [
        vec!["--certificate-chain", p(&f("chain.pem"))],
        vec![
            "--ca-roots",
            p(&f("root.pem")),
            "--ca-intermediates",
            p(&f("inter.pem")),
        ],
    ] {
        let o = v2.run_env(
            &with(
                &with(
                    &[
                        "verify-blob",
                        "--rekor-url",
                        &st.log,
                        "--insecure-ignore-sct",
                        "--signature",
                        p(&f("art.sig.b64")),
                        "--certificate",
                        p(&f("leaf.pem")),
                    ],
                    &pki,
                ),
                &with(&id, &[p(&f("art.txt"))]),
            ),
            &[("SIGSTORE_REKOR_PUBLIC_KEY", &log_key)],
        );
        ok(&o, &format!("cosign v2 {pki:?}"));
    }
    signing_with_the_organisations_certificate(st, &d);
    crate::org_ca::images_with_the_organisations_certificate(st, &d);
}

/// `sigstack sign-blob --key K --certificate C --certificate-chain CH`: the certificate in
/// the bundle and the log entry, checked against the key and the chain before anything is
/// signed; cosign v2 and v3 verify the bundle, and `sigstack` verifies cosign v3's.
fn signing_with_the_organisations_certificate(st: &Stack, d: &Path) {
    let f = |n: &str| d.join(n);
    let ours = Sigstack::new(&d.join("home"));
    let id = [
        "--certificate-identity",
        "builder@corp.example",
        "--certificate-oidc-issuer",
        "https://sso.corp.example",
    ];
    let sign = |key: &str, chain: &str, bundle: &str| {
        ours.run(&[
            "sign-blob",
            "--yes",
            "--key",
            p(&f(key)),
            "--certificate",
            p(&f("leaf.pem")),
            "--certificate-chain",
            p(&f(chain)),
            "--bundle",
            p(&f(bundle)),
            p(&f("art.txt")),
        ])
    };
    // mistakes are refused before anything is signed or logged
    let o = sign("inter.key", "chain.pem", "wrong-key.json");
    assert!(!o.ok() && o.stderr.contains("certifies another key"), "{o}");
    let o = sign("leaf.key", "root.pem", "wrong-chain.json");
    assert!(
        !o.ok() && o.stderr.contains("not issued by the chain"),
        "{o}"
    );
    for b in ["wrong-key.json", "wrong-chain.json"] {
        assert!(!f(b).exists(), "{b} was written");
    }
    ok(
        &sign("leaf.key", "chain.pem", "byo.json"),
        "sigstack signs with the organisation's certificate",
    );
    let bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f("byo.json")).expect("bundle")).expect("json");
    let leaf_der = {
        let pem = std::fs::read_to_string(f("leaf.pem")).expect("leaf");
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        b64
    };
    assert_eq!(
        bundle["verificationMaterial"]["certificate"]["rawBytes"].as_str(),
        Some(leaf_der.as_str()),
        "the bundle carries the organisation's certificate: {bundle}"
    );
    let verify_ours = |bundle: &str, pki: &[&str]| {
        ours.run(&with(
            &with(&["verify-blob", "--bundle", p(&f(bundle))], pki),
            &with(&id, &[p(&f("art.txt"))]),
        ))
    };
    let chain_path = f("chain.pem");
    let chain_flags = [
        "--certificate-chain",
        p(&chain_path),
        "--insecure-ignore-sct",
    ];
    ok(
        &verify_ours("byo.json", &chain_flags),
        "sigstack verifies its own BYO-PKI bundle",
    );
    let o = verify_ours("byo.json", &["--insecure-ignore-sct"]);
    assert!(
        !o.ok() && o.stderr.contains("does not chain to a trusted CA"),
        "{o}"
    );
    // cosign verifies a Sigstore bundle against a trusted root only: the stack's, with
    // the organisation's CA added (what an operator publishes for such signers)
    let mut trusted: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&st.trusted_root).expect("trusted root"))
            .expect("json");
    let raw = |file: &str| {
        let pem = std::fs::read_to_string(f(file)).expect("pem");
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        serde_json::json!({"rawBytes": b64})
    };
    trusted["certificateAuthorities"]
        .as_array_mut()
        .expect("CAs")
        .push(serde_json::json!({
            "subject": {"organization": "Corp", "commonName": "Corp Intermediate"},
            "uri": "https://ca.corp.example",
            "certChain": {"certificates": [raw("inter.pem"), raw("root.pem")]},
            "validFor": {"start": "2020-01-01T00:00:00Z"},
        }));
    let corp_root = f("corp-trusted-root.json");
    std::fs::write(&corp_root, trusted.to_string()).expect("w");
    let v2 = initialized(Cosign::v2(&d.join("byo-v2")), st);
    let v3 = initialized(Cosign::v3(&d.join("byo-v3")), st);
    let with_corp_root = ["--trusted-root", p(&corp_root), "--insecure-ignore-sct"];
    for c in [&v2, &v3] {
        ok(
            &c.run(&with(
                &with(
                    &["verify-blob", "--bundle", p(&f("byo.json"))],
                    &with_corp_root,
                ),
                &with(&id, &[p(&f("art.txt"))]),
            )),
            &format!("{} verifies sigstack's BYO-PKI bundle", c.name),
        );
    }
    ok(
        &verify_ours("byo.json", &with_corp_root),
        "sigstack verifies it with the same trusted root",
    );
    // without a transparency log: the signature stands on the certificate alone, and
    // verifiers must be told to do without the log
    let unlogged = f("byo-unlogged.json");
    ok(
        &ours.run(&[
            "sign-blob",
            "--yes",
            "--tlog-upload=false",
            "--key",
            p(&f("leaf.key")),
            "--certificate",
            p(&f("leaf.pem")),
            "--certificate-chain",
            p(&chain_path),
            "--bundle",
            p(&unlogged),
            p(&f("art.txt")),
        ]),
        "sigstack signs with the organisation's certificate, unlogged",
    );
    let o = verify_ours("byo-unlogged.json", &chain_flags);
    assert!(
        !o.ok(),
        "an unlogged signature passed without --insecure-ignore-tlog: {o}"
    );
    let no_log = [
        "--certificate-chain",
        p(&chain_path),
        "--insecure-ignore-sct",
        "--insecure-ignore-tlog",
    ];
    ok(
        &verify_ours("byo-unlogged.json", &no_log),
        "sigstack verifies the unlogged signature with --insecure-ignore-tlog",
    );
    for c in [&v2, &v3] {
        ok(
            &c.run(&with(
                &with(
                    &[
                        "verify-blob",
                        "--bundle",
                        p(&unlogged),
                        "--insecure-ignore-tlog",
                    ],
                    &with_corp_root,
                ),
                &with(&id, &[p(&f("art.txt"))]),
            )),
            &format!("{} verifies the unlogged BYO-PKI bundle", c.name),
        );
    }
    // cosign v3 signs with the same certificate (its key imported into cosign's format)
    let mut c = v3.cmd();
    c.args([
        "import-key-pair",
        "--key",
        p(&f("leaf.key")),
        "--output-key-prefix",
    ])
    .arg(f("leaf-cosign"))
    .env("COSIGN_PASSWORD", "");
    ok(&out(c), "cosign import-key-pair");
    // cosign v3.1 puts such a certificate where a Rekor v2 verifier's public key goes
    // (upstream's log refuses that, as ours does): it signs through the v1 log here
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&st.signing_config).expect("signing config"))
            .expect("json");
    config["rekorTlogUrls"]
        .as_array_mut()
        .expect("logs")
        .retain(|l| l["majorApiVersion"] == 1);
    let v1_only = f("signing-config-v1.json");
    std::fs::write(&v1_only, config.to_string()).expect("w");
    ok(
        &v3.run_env(
            &[
                "sign-blob",
                "--yes",
                "--signing-config",
                p(&v1_only),
                // it verifies what it made against this, which must know the CA
                "--trusted-root",
                p(&corp_root),
                "--key",
                p(&f("leaf-cosign.key")),
                "--certificate",
                p(&f("leaf.pem")),
                "--certificate-chain",
                p(&f("chain.pem")),
                "--bundle",
                p(&f("byo-v3.json")),
                p(&f("art.txt")),
            ],
            &[("COSIGN_PASSWORD", "")],
        ),
        "cosign v3 signs with the organisation's certificate",
    );
    // cosign v3.1 writes that signature as a v0.3 bundle with a certificate chain, which
    // the bundle format forbids: cosign v2, cosign v3 and sigstack all refuse it
    let o = verify_ours("byo-v3.json", &chain_flags);
    assert!(
        !o.ok() && o.stderr.contains("a single certificate, not a chain"),
        "{o}"
    );
    for c in [&v2, &v3] {
        let o = c.run(&with(
            &with(
                &["verify-blob", "--bundle", p(&f("byo-v3.json"))],
                &with_corp_root,
            ),
            &with(&id, &[p(&f("art.txt"))]),
        ));
        assert!(!o.ok(), "{} accepted cosign v3's chain bundle: {o}", c.name);
    }
}
