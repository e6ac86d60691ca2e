//! Keys where organisations keep them, in a real PKCS#11 token (Debian's SoftHSM2):
//! `sigstackd dev --key-backend pkcs11:…` with every signing key of the stack (log v1 and
//! v2, CT log, CA, TSA, OIDC, witness, TUF online) created in and used from the token,
//! found again after a restart, and the interop matrix (cosign, sigstore-python,
//! sigstore-js, sigstack) passing against it; `sigstack --key pkcs11:…` keys whose
//! signatures cosign v2 and v3 verify with the exported public key, and a cosign-made
//! signature that `sigstack` verifies with the key imported into the token. The mistakes
//! an operator makes — wrong PIN, missing key, unknown token, no module, a key of the
//! wrong kind — are each a clear error.

use crate::client::{Sigstack, p};
use crate::cosign::{Cosign, out};
use crate::cosign_interop::{initialized, ok};
use crate::keyless::{DEV_PORTS, dev_stack_wrapped, run};
use crate::stack::{Clients, Identity, interop_matrix};
use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian's SoftHSM2 module.
pub(crate) const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
pub(crate) const PIN: &str = "4711-pin";

/// A SoftHSM2 token store of the test's own (its configuration names the directory).
pub(crate) struct SoftHsm {
    pub(crate) conf: PathBuf,
    pin_file: PathBuf,
}

impl SoftHsm {
    pub(crate) fn new(dir: &Path) -> Self {
        assert!(
            Path::new(MODULE).exists(),
            "SoftHSM2 is not installed ({MODULE}); scripts/test installs Debian's softhsm2"
        );
        let tokens = dir.join("tokens");
        std::fs::create_dir_all(&tokens).expect("tokens dir");
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .expect("conf");
        let pin_file = dir.join("pin");
        std::fs::write(&pin_file, format!("{PIN}\n")).expect("pin");
        Self { conf, pin_file }
    }

    pub(crate) fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env("SOFTHSM2_CONF", &self.conf);
        c
    }

    pub(crate) fn init_token(&self, label: &str) {
        let (ok, out) = run(self.cmd("softhsm2-util").args([
            "--init-token",
            "--free",
            "--label",
            label,
            "--pin",
            PIN,
            "--so-pin",
            "so-secret",
        ]));
        assert!(ok, "softhsm2-util --init-token {label}: {out}");
    }

    /// The URI of `object` in `token` (or of the token alone), the PIN from a file.
    pub(crate) fn uri(&self, token: &str, object: Option<&str>) -> String {
        let object = object.map(|o| format!(";object={o}")).unwrap_or_default();
        format!(
            "pkcs11:token={token}{object}?module-path={MODULE}&pin-source={}",
            self.pin_file.display()
        )
    }

    /// A `sigstack` client that sees this token store.
    pub(crate) fn client(&self, home: &Path) -> Sigstack {
        let conf = self.conf.clone();
        Sigstack::new(home).wrapped(move |mut c| {
            c.env("SOFTHSM2_CONF", &conf);
            c
        })
    }
}

/// `sigstackd dev` with these arguments, expected to refuse to start.
fn dev_refuses(hsm: &SoftHsm, data: &Path, backend: &str) -> String {
    let mut c = hsm.cmd("timeout");
    c.arg("60")
        .arg(env!("CARGO_BIN_EXE_sigstackd"))
        .arg("dev")
        .args(DEV_PORTS)
        .args(["--key-backend", backend, "--data-dir"])
        .arg(data);
    let (ok, out) = run(&mut c);
    assert!(
        !ok,
        "sigstackd dev started with --key-backend {backend}: {out}"
    );
    assert!(
        !data.join("stack.json").exists(),
        "a refused start wrote stack.json"
    );
    out
}

/// The files a stack with file keys keeps its private keys in.
const PRIVATE_KEY_FILES: [&str; 8] = [
    "log.pem",
    "log-v2.pem",
    "ctlog.pem",
    "ca-intermediate.pem",
    "tsa.pem",
    "oidc.pem",
    "witness.pem",
    "tuf-online.pem",
];

pub async fn every_key_in_a_token() {
    let dir = temp_dir("hsm");
    let hsm = SoftHsm::new(&dir.join("softhsm"));
    for t in ["stack", "people", "wrong"] {
        hsm.init_token(t);
    }

    // an operator's mistakes, each refused with its cause
    let bad_pin = format!("pkcs11:token=stack?module-path={MODULE}&pin-value=0000");
    let out = dev_refuses(&hsm, &dir.join("bad-pin"), &bad_pin);
    assert!(out.contains("wrong PIN"), "{out}");
    assert!(!out.contains("0000"), "the PIN is shown: {out}");
    let out = dev_refuses(
        &hsm,
        &dir.join("no-module"),
        "pkcs11:token=stack?module-path=/nonexistent/libpkcs11.so&pin-value=1",
    );
    assert!(
        out.contains("/nonexistent/libpkcs11.so does not exist"),
        "{out}"
    );
    let out = dev_refuses(&hsm, &dir.join("no-token"), &hsm.uri("nosuch", None));
    assert!(
        out.contains("no such token") && out.contains("`stack`"),
        "{out}"
    );
    // a P-256 key where the v2 log needs Ed25519
    let setup = hsm.client(&dir.join("setup-home"));
    ok(
        &setup.run(&[
            "generate-key-pair",
            "--kms",
            &hsm.uri("wrong", Some("sigstack-log-v2")),
            "--output-key-prefix",
            p(&dir.join("wrong")),
        ]),
        "a P-256 key in the token",
    );
    let out = dev_refuses(&hsm, &dir.join("wrong-kind"), &hsm.uri("wrong", None));
    assert!(
        out.contains("sigstack-log-v2") && out.contains("PKIX_ED25519"),
        "{out}"
    );

    // the stack with every key in the token; a restart finds the same keys
    let data = dir.join("stack");
    let backend = hsm.uri("stack", None);
    let mut args = DEV_PORTS.to_vec();
    args.extend(["--key-backend", backend.as_str()]);
    let conf = hsm.conf.clone();
    let with_hsm = move |mut c: Command| {
        c.env("SOFTHSM2_CONF", &conf);
        c
    };
    let (first, _) = dev_stack_wrapped(&data, &args, with_hsm.clone());
    let public = |name: &str| {
        std::fs::read_to_string(data.join("keys").join(format!("{name}.pub.pem"))).expect("pub")
    };
    let log_pub = public("log");
    drop(first);
    let (_stack, stack) = dev_stack_wrapped(&data, &args, with_hsm);
    assert_eq!(
        public("log"),
        log_pub,
        "the restarted log signs with another key"
    );
    for f in PRIVATE_KEY_FILES {
        assert!(
            !data.join("keys").join(f).exists(),
            "{f} was written although the keys are in the token"
        );
    }
    // the token goes away and comes back: requests that need a signature get 503 with
    // Retry-After meanwhile, the service keeps running, and it signs again afterwards
    // (the matrix below then runs on every key after that)
    let tsa = stack_str(&stack, "/services/tsa/url");
    let stamp = || {
        use base64::Engine;
        let digest = sigstack_crypto::sha256(b"while the token is away");
        http()
            .post(format!("{tsa}/api/v1/timestamp"))
            .json(&serde_json::json!({
                "artifactHash": base64::engine::general_purpose::STANDARD.encode(digest),
                "hashAlgorithm": "sha256",
            }))
            .send()
    };
    assert_eq!(stamp().await.expect("tsa").status(), 200);
    let (tokens, away) = (dir.join("softhsm/tokens"), dir.join("softhsm/tokens-away"));
    std::fs::rename(&tokens, &away).expect("take the token away");
    let r = stamp().await.expect("tsa");
    assert_eq!(r.status(), 503, "a signature without the token");
    assert!(r.headers().contains_key("retry-after"));
    std::fs::rename(&away, &tokens).expect("bring the token back");
    assert_eq!(
        stamp().await.expect("tsa").status(),
        200,
        "the token is back"
    );
    let token = || {
        let (ok, t) = run(hsm
            .cmd(env!("CARGO_BIN_EXE_sigstackd"))
            .args(["dev-token", "--data-dir"])
            .arg(&data));
        assert!(ok, "dev-token with the OIDC key in the token: {t}");
        t.trim().to_string()
    };
    let clients = Clients::new(&dir, &stack);
    let who = Identity {
        identity: stack_str(&stack, "/services/oidc/email"),
        issuer: stack_str(&stack, "/services/oidc/url"),
    };
    interop_matrix(
        "sigstackd dev, every key in SoftHSM2",
        &clients,
        &who,
        token,
    );

    client_keys_in_a_token(&hsm, &dir, &stack);
    drop(_stack);
    crate::hsm_init::init_with_a_token(&hsm, &dir).await;
}

/// `sigstack --key pkcs11:…` against cosign v2 and v3, both ways.
fn client_keys_in_a_token(hsm: &SoftHsm, dir: &Path, stack: &serde_json::Value) {
    let (tuf, root) = (
        stack_str(stack, "/services/tuf/url"),
        stack_str(stack, "/services/tuf/root"),
    );
    let ours = hsm.client(&dir.join("people-home"));
    ok(
        &ours.run(&["initialize", "--mirror", &tuf, "--root", &root]),
        "sigstack initialize",
    );
    let st = crate::cosign_interop::start_for(dir, stack);
    let v2 = initialized(Cosign::v2(&dir.join("people-v2")), &st);
    let v3 = initialized(Cosign::v3(&dir.join("people-v3")), &st);
    let artifact = dir.join("release.tar");
    std::fs::write(&artifact, b"signed with a key that never left the token\n").expect("w");
    let alice = hsm.uri("people", Some("alice"));
    let alice_pub = dir.join("alice.pub");
    ok(
        &ours.run(&[
            "generate-key-pair",
            "--kms",
            &alice,
            "--output-key-prefix",
            p(&dir.join("alice")),
        ]),
        "sigstack generate-key-pair --kms pkcs11:",
    );
    let again = ours.run(&[
        "generate-key-pair",
        "--kms",
        &alice,
        "--output-key-prefix",
        p(&dir.join("alice-again")),
        "--force",
    ]);
    assert!(
        !again.ok() && again.stderr.contains("already exists"),
        "{again}"
    );
    assert!(!dir.join("alice-again.pub").exists());
    let shown = ours.run(&["public-key", "--key", &alice]);
    ok(&shown, "public-key --key pkcs11:");
    assert_eq!(
        shown.stdout,
        std::fs::read_to_string(&alice_pub).expect("pub")
    );

    // sigstack signs in the token (logged); cosign verifies with the exported key
    let bundle = dir.join("alice.sigstore.json");
    ok(
        &ours.run(&[
            "sign-blob",
            "--yes",
            "--key",
            &alice,
            "--bundle",
            p(&bundle),
            p(&artifact),
        ]),
        "sigstack sign-blob --key pkcs11:",
    );
    for c in [&v2, &v3] {
        ok(
            &c.run(&[
                "verify-blob",
                "--key",
                p(&alice_pub),
                "--bundle",
                p(&bundle),
                p(&artifact),
            ]),
            &format!("{} verifies a signature made in the token", c.name),
        );
    }
    ok(
        &ours.run(&[
            "verify-blob",
            "--key",
            &alice,
            "--bundle",
            p(&bundle),
            p(&artifact),
        ]),
        "sigstack verify-blob --key pkcs11: (the public key read from the token)",
    );

    // cosign signs with a key that is then imported into the token; sigstack verifies
    // with the token's copy
    let pem = dir.join("bob.pem");
    let (okk, o) = run(Command::new("openssl").args([
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        p(&pem),
    ]));
    assert!(okk, "openssl genpkey: {o}");
    let pw = [("COSIGN_PASSWORD", "")];
    let mut c = v3.cmd();
    c.current_dir(dir)
        .args(["import-key-pair", "--key", p(&pem), "--output-key-prefix"])
        .arg(dir.join("bob"))
        .env("COSIGN_PASSWORD", "");
    ok(&out(c), "cosign import-key-pair");
    let by_cosign = dir.join("bob.sigstore.json");
    ok(
        &v3.run_env(
            &[
                "sign-blob",
                "--yes",
                "--key",
                p(&dir.join("bob.key")),
                "--bundle",
                p(&by_cosign),
                p(&artifact),
            ],
            &pw,
        ),
        "cosign v3 signs with a key file",
    );
    let (okk, o) = run(hsm.cmd("softhsm2-util").args([
        "--import",
        p(&pem),
        "--token",
        "people",
        "--label",
        "bob",
        "--id",
        "b0b0",
        "--pin",
        PIN,
    ]));
    assert!(okk, "softhsm2-util --import: {o}");
    let bob = hsm.uri("people", Some("bob"));
    let verify = |key: &str| {
        ours.run(&[
            "verify-blob",
            "--key",
            key,
            "--bundle",
            p(&by_cosign),
            p(&artifact),
        ])
    };
    ok(
        &verify(&bob),
        "sigstack verifies cosign's signature with the token's key",
    );
    let wrong = verify(&alice);
    assert!(!wrong.ok(), "verified with another token key: {wrong}");

    // the client's mistakes
    let fails = |key: &str, why: &str| {
        let target = dir.join("never.sigstore.json");
        let o = ours.run(&[
            "sign-blob",
            "--yes",
            "--key",
            key,
            "--bundle",
            p(&target),
            p(&artifact),
        ]);
        assert!(
            !o.ok() && o.stderr.contains(why),
            "{key}: want {why:?}: {o}"
        );
        assert!(!target.exists(), "{key}: a bundle was written");
    };
    fails(
        &format!("pkcs11:token=people;object=alice?module-path={MODULE}&pin-value=0000"),
        "wrong PIN",
    );
    fails(&hsm.uri("people", Some("carol")), "no such private key");
    fails(&hsm.uri("nosuch", Some("alice")), "no such token");
    fails(
        "pkcs11:token=people;object=alice?module-path=/nonexistent.so&pin-value=1",
        "does not exist",
    );
    fails(
        "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k",
        "GOOGLE_APPLICATION_CREDENTIALS",
    );
    // a KMS that cannot be reached
    let o = ours.run_env(
        &[
            "sign-blob",
            "--yes",
            "--key",
            "awskms://127.0.0.1:9/alias/release",
            "--bundle",
            p(&dir.join("never.sigstore.json")),
            p(&artifact),
        ],
        &[
            ("AWS_ACCESS_KEY_ID", "id"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_REGION", "us-east-1"),
        ],
    );
    assert!(
        !o.ok() && o.stderr.contains("https://127.0.0.1:9: unreachable"),
        "{o}"
    );
    assert!(!dir.join("never.sigstore.json").exists());
}
