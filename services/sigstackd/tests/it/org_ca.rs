//! An organisation's own PKI for the tests: a CA made with openssl whose signing CA
//! certifies a key given by its public half (a token's key, for `init --ca-chain`), and
//! container images signed with a certificate from such a CA by cosign v2 and by
//! `sigstack`, each verified by the other with `--certificate-chain`.

use crate::client::{Sigstack, p};
use crate::cosign::Cosign;
use crate::cosign_interop::{Stack, initialized, ok, with};
use crate::keyless::run;
use std::path::Path;
use std::process::Command;

/// Images: cosign v2 signs with the organisation's certificate (a `.sig` image carrying
/// the certificate and chain) and `sigstack verify --certificate-chain` accepts it;
/// `sigstack sign --certificate --certificate-chain` and cosign v2 accepts it.
pub(crate) fn images_with_the_organisations_certificate(st: &Stack, d: &Path) {
    let f = |n: &str| d.join(n);
    let (_registry, reg) = crate::images::registry(&d.join("registry"));
    let push = |repo: &str| {
        let digest = crate::images::oci_ok(&["push-image", &reg, repo, "v1"]);
        format!("{reg}/{repo}@{digest}")
    };
    let id = [
        "--certificate-identity",
        "builder@corp.example",
        "--certificate-oidc-issuer",
        "https://sso.corp.example",
    ];
    let chain = f("chain.pem");
    let pki = ["--certificate-chain", p(&chain), "--insecure-ignore-sct"];
    let ours = Sigstack::new(&d.join("home"));
    let v2 = initialized(Cosign::v2(&d.join("byo-img-v2")), st);
    let by_cosign = push("corp/by-cosign");
    ok(
        &v2.run_env(
            &[
                "sign",
                "--yes",
                "--allow-insecure-registry",
                "--key",
                p(&f("leaf-cosign.key")),
                "--certificate",
                p(&f("leaf.pem")),
                "--certificate-chain",
                p(&chain),
                "--rekor-url",
                &st.log,
                &by_cosign,
            ],
            &[("COSIGN_PASSWORD", "")],
        ),
        "cosign v2 signs an image with the organisation's certificate",
    );
    ok(
        &ours.run(&with(&with(&["verify"], &pki), &with(&id, &[&by_cosign]))),
        "sigstack verifies cosign v2's image signature",
    );
    let o = ours.run(&with(
        &["verify", "--insecure-ignore-sct"],
        &with(&id, &[&by_cosign]),
    ));
    assert!(!o.ok(), "verified without the organisation's CA: {o}");
    let by_ours = push("corp/by-sigstack");
    ok(
        &ours.run(&[
            "sign",
            "--yes",
            "--key",
            p(&f("leaf.key")),
            "--certificate",
            p(&f("leaf.pem")),
            "--certificate-chain",
            p(&chain),
            &by_ours,
        ]),
        "sigstack signs an image with the organisation's certificate",
    );
    // (cosign v2's path for a chain given on the command line takes the log's key from
    // SIGSTORE_REKOR_PUBLIC_KEY, not from TUF)
    let log_key = st.json["services"]["log"]["public_key"]
        .as_str()
        .expect("log key")
        .to_string();
    ok(
        &v2.run_env(
            &with(
                &with(&["verify", "--allow-insecure-registry"], &pki),
                &with(&id, &[&by_ours]),
            ),
            &[("SIGSTORE_REKOR_PUBLIC_KEY", &log_key)],
        ),
        "cosign v2 verifies sigstack's image signature",
    );
}

/// An organisation's CA made with openssl: a root, and under it a signing CA for the
/// public key at `ca_pub` (whose private half may live in a token), with EKU codeSigning
/// as Fulcio's issuing certificates have; and the same without that EKU.
pub(crate) struct OrganisationCa {
    /// The signing CA's certificate, then the root.
    pub(crate) chain: std::path::PathBuf,
    pub(crate) root: std::path::PathBuf,
    /// A chain whose signing CA lacks EKU codeSigning.
    pub(crate) chain_without_eku: std::path::PathBuf,
}

pub(crate) fn organisation_ca(d: &Path, ca_pub: &Path) -> OrganisationCa {
    std::fs::create_dir_all(d).expect("dir");
    let f = |n: &str| d.join(n).to_string_lossy().to_string();
    let ca_ext =
        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n";
    std::fs::write(
        f("ca.ext"),
        format!("{ca_ext}extendedKeyUsage=codeSigning\n"),
    )
    .expect("w");
    std::fs::write(f("ca-no-eku.ext"), ca_ext).expect("w");
    let (root_key, root, csr_key, csr) = (f("root.key"), f("root.pem"), f("csr.key"), f("ca.csr"));
    let openssl = |args: &[&str]| {
        let (done, o) = run(Command::new("openssl").args(args));
        assert!(done, "openssl {args:?}: {o}");
    };
    for key in [&root_key, &csr_key] {
        openssl(&[
            "ecparam",
            "-genkey",
            "-name",
            "prime256v1",
            "-noout",
            "-out",
            key,
        ]);
    }
    openssl(&[
        "req",
        "-x509",
        "-new",
        "-key",
        &root_key,
        "-subj",
        "/O=Corp/CN=Corp Root",
        "-days",
        "3650",
        "-out",
        &root,
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    // the CSR's own key is thrown away: the certificate is for `ca_pub`
    openssl(&[
        "req",
        "-new",
        "-key",
        &csr_key,
        "-subj",
        "/O=Corp/CN=Corp Signing CA",
        "-out",
        &csr,
    ]);
    let ca_pub = ca_pub.to_string_lossy().to_string();
    for (ext, out) in [
        ("ca.ext", "signing-ca.pem"),
        ("ca-no-eku.ext", "signing-ca-no-eku.pem"),
    ] {
        openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-force_pubkey",
            &ca_pub,
            "-CA",
            &root,
            "-CAkey",
            &root_key,
            "-CAcreateserial",
            "-days",
            "365",
            "-extfile",
            &f(ext),
            "-out",
            &f(out),
        ]);
    }
    let root_pem = std::fs::read_to_string(&root).expect("root");
    let chain_of = |leaf: &str, out: &str| {
        let pem = std::fs::read_to_string(f(leaf)).expect("leaf") + &root_pem;
        std::fs::write(f(out), pem).expect("w");
        d.join(out)
    };
    OrganisationCa {
        chain: chain_of("signing-ca.pem", "chain.pem"),
        chain_without_eku: chain_of("signing-ca-no-eku.pem", "chain-no-eku.pem"),
        root: d.join("root.pem"),
    }
}
