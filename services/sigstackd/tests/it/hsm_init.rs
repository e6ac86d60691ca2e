//! `sigstackd init --key-backend pkcs11:…` with SoftHSM2: every service's key made in the
//! token and named by the configuration files, found again by a second run, the seven
//! services started from them; and `--ca-chain`/`--ca-key`: the CA issuing under an
//! organisation's CA whose key is in the token. A CI job signs through the stack and
//! `sigstack` and cosign v3 verify. Wrong PINs and unfit CA chains are refused before
//! anything is written.

use crate::client::{Sigstack, p};
use crate::cosign::Cosign;
use crate::cosign_interop::{initialized, ok};
use crate::hsm::{MODULE, SoftHsm};
use crate::keyless::{run, wait_for};
use crate::stack::{
    CLIENTS, Clients, Identity, SERVICES, Service, get_ok, interop_matrix, workload_token,
};
use crate::support::*;
use std::path::Path;

/// `sigstackd init --key-backend`: the keys made in the token and named by the
/// configuration files; every service started from them; the CI job signs through the
/// stack and `sigstack` verifies. A wrong PIN is refused before anything is written.
pub(crate) async fn init_with_a_token(hsm: &SoftHsm, dir: &Path) {
    hsm.init_token("init");
    let urls: Vec<(&str, String)> = SERVICES
        .iter()
        .map(|s| (*s, format!("http://127.0.0.1:{}", free_port())))
        .collect();
    let url = |s: &str| urls.iter().find(|(n, _)| *n == s).expect(s).1.clone();
    let init_with = |etc: &Path, backend: &str, more: &[&str]| {
        let db = format!("sqlite://{}", etc.with_extension("db").display());
        run(hsm
            .cmd(env!("CARGO_BIN_EXE_sigstackd"))
            .args(["init", "--dir", p(etc), "--database-url", &db])
            .args(["--listen-host", "127.0.0.1", "--key-backend", backend])
            .args(more)
            .args(["--log-url", &url("log"), "--ctlog-url", &url("ctlog")])
            .args(["--ca-url", &url("ca"), "--oidc-url", &url("oidc")])
            .args(["--tuf-url", &url("tuf"), "--tsa-url", &url("tsa")])
            .args(["--log-v2-url", &url("log-v2")]))
    };
    // bring-your-own PKI: the CA issues under the organisation's CA, its key in the token
    let ca_key = hsm.uri("init", Some("corp-ca"));
    ok(
        &hsm.client(&dir.join("corp-home")).run(&[
            "generate-key-pair",
            "--kms",
            &ca_key,
            "--output-key-prefix",
            p(&dir.join("corp-ca")),
        ]),
        "the organisation's CA key, made in the token",
    );
    let corp = crate::org_ca::organisation_ca(&dir.join("corp"), &dir.join("corp-ca.pub"));
    let own_ca = ["--ca-chain", p(&corp.chain), "--ca-key", &ca_key];
    let init = |etc: &Path, backend: &str| init_with(etc, backend, &own_ca);
    for (chain, why) in [
        (&corp.root, "is not for --ca-key"),
        (&corp.chain_without_eku, "lacks EKU codeSigning"),
    ] {
        let etc = dir.join("etc-refused");
        let (done, out) = init_with(
            &etc,
            &hsm.uri("init", None),
            &["--ca-chain", p(chain), "--ca-key", &ca_key],
        );
        assert!(!done && out.contains(why), "want {why:?}: {out}");
        assert!(!etc.exists(), "init wrote before refusing: {out}");
    }
    let bad = dir.join("etc-bad-pin");
    let (done, out) = init(
        &bad,
        &format!("pkcs11:token=init?module-path={MODULE}&pin-value=0000"),
    );
    assert!(!done && out.contains("wrong PIN"), "{out}");
    assert!(
        !bad.exists() && !bad.with_extension("db").exists(),
        "init wrote before refusing"
    );

    let etc = dir.join("etc");
    let (done, out) = init(&etc, &hsm.uri("init", None));
    assert!(done, "sigstackd init --key-backend: {out}");
    for (file, object) in [
        ("log.toml", "sigstack-log"),
        ("log-v2.toml", "sigstack-log-v2"),
        ("ctlog.toml", "sigstack-ctlog"),
        ("ca.toml", "corp-ca"),
        ("oidc.toml", "sigstack-oidc"),
        ("tsa.toml", "sigstack-tsa"),
        ("tuf.toml", "sigstack-tuf"),
    ] {
        let cfg = std::fs::read_to_string(etc.join(file)).expect(file);
        assert!(
            cfg.contains(&format!(
                "pkcs11:token=init;object={object}?module-path={MODULE}"
            )),
            "{file} does not name the token's key: {cfg}"
        );
    }
    let pems: Vec<_> = files_under(&etc.join("keys"))
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "pem"))
        .collect();
    assert!(pems.is_empty(), "key files written: {pems:?}");
    // again: the keys are found in the token, not made anew
    let log_pub = std::fs::read(etc.join("public/log.pub.pem")).expect("log.pub.pem");
    let (done, out) = init(&etc, &hsm.uri("init", None));
    assert!(done, "sigstackd init again: {out}");
    assert_eq!(
        std::fs::read(etc.join("public/log.pub.pem")).expect("pub"),
        log_pub
    );

    let conf = hsm.conf.to_string_lossy().to_string();
    let env = [("SOFTHSM2_CONF", conf.as_str())];
    // one after another, each up before the next: SoftHSM's file store is read at each
    // process's C_Initialize, and one that reads while another process holds the token's
    // lock misses the token (a network HSM does not mind)
    let mut procs: Vec<Service> = Vec::new();
    for name in ["log", "log-v2", "ctlog", "oidc", "tsa", "tuf", "ca"] {
        procs.push(Service::start_with(name, &etc, dir, &env));
        let u = url(name);
        wait_for(&format!("{name} /readyz"), || {
            get_ok(&format!("{u}/readyz"))
        });
    }
    let stack: serde_json::Value =
        serde_json::from_slice(&std::fs::read(etc.join("stack.json")).expect("stack"))
            .expect("json");
    let ours = Sigstack::new(&dir.join("init-home"));
    ok(
        &ours.run(&[
            "initialize",
            "--mirror",
            &stack_str(&stack, "/services/tuf/url"),
            "--root",
            &stack_str(&stack, "/services/tuf/root"),
        ]),
        "sigstack initialize on the init stack",
    );
    let oidc = url("oidc");
    let token = workload_token(&oidc, &etc.join("keys/oidc/ci-secret")).await;
    let artifact = dir.join("init-artifact.txt");
    std::fs::write(&artifact, b"every key in the token\n").expect("w");
    // the organisation's root is the trusted root's CA
    let trusted = std::fs::read_to_string(etc.join("trusted_root.json")).expect("trusted root");
    let root_b64: String = std::fs::read_to_string(&corp.root)
        .expect("root")
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert!(
        trusted.contains(&root_b64),
        "the organisation's root is not trusted: {trusted}"
    );
    let v3 = initialized(
        Cosign::v3(&dir.join("init-v3")),
        &crate::cosign_interop::start_for(dir, &stack),
    );
    let bundle = dir.join("init.sigstore.json");
    for v in ["1", "2"] {
        ok(
            &ours.run(&[
                "sign-blob",
                "--yes",
                "--identity-token",
                &token,
                "--rekor-version",
                v,
                "--bundle",
                p(&bundle),
                p(&artifact),
            ]),
            "sigstack signs through the init stack",
        );
        let who = format!("{oidc}/jobs/ci");
        let issuer = format!("{oidc}/workload");
        let verify = [
            "verify-blob",
            "--bundle",
            p(&bundle),
            "--certificate-identity",
            &who,
            "--certificate-oidc-issuer",
            &issuer,
            p(&artifact),
        ];
        ok(&ours.run(&verify), "sigstack verifies");
        ok(
            &v3.run(&verify),
            "cosign v3 verifies a certificate from the organisation's CA",
        );
    }
    // every client signs and verifies against the separate processes, keys in the token
    let mut tokens = Vec::new();
    for _ in 0..=CLIENTS.len() {
        tokens.push(workload_token(&oidc, &etc.join("keys/oidc/ci-secret")).await);
    }
    let next = std::sync::Mutex::new(tokens);
    interop_matrix(
        "sigstackd init: separate processes, every key in SoftHSM2, the CA under an organisation's CA",
        // a directory of its own: the dev stack's matrix left its clients' state in `dir`
        &Clients::new(&dir.join("init-matrix"), &stack),
        &Identity {
            identity: format!("{oidc}/jobs/ci"),
            issuer: format!("{oidc}/workload"),
        },
        || {
            next.lock()
                .expect("lock")
                .pop()
                .expect("a token per signer")
        },
    );
}
