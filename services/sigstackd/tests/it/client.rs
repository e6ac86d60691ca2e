//! The `sigstack` binary against `sigstackd dev`, as a user runs it: `initialize` trusts
//! the stack's TUF repository, and every later command takes its services and trust from
//! there. Keyless signing with a token from the dev issuer, from GitHub Actions' token
//! variables, after a browser sign-in and through the device flow; cosign-format key
//! pairs (checked against an independent implementation of the format); attestations;
//! detached signatures; the log commands with a persisted checkpoint that catches a
//! forked log. sigstore-python and sigstore-js verify our bundles and we verify
//! sigstore-python's.

use crate::keyless::{Killed, dev_stack, js, run, run_within, venv, workspace};
use crate::oidc::hidden;
use crate::support::*;
use serde_json::Value;
use sigstack_crypto::{FileSigner, Signer};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The `sigstack` binary (built beside `sigstackd` by `cargo test --workspace`) with a
/// home directory of its own, so its TUF cache and checkpoints are this test's.
pub struct Sigstack {
    bin: PathBuf,
    pub home: PathBuf,
    wrap: Option<Wrap>,
}

/// Rewrites a client's command (run in a network namespace, under a tracer).
pub type Wrap = std::sync::Arc<dyn Fn(Command) -> Command + Send + Sync>;

pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\nstdout: {}\nstderr: {}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Sigstack {
    pub fn new(home: &Path) -> Self {
        let bin = Path::new(env!("CARGO_BIN_EXE_sigstackd")).with_file_name("sigstack");
        assert!(
            bin.exists(),
            "the sigstack binary is not at {} (cargo test --workspace builds it)",
            bin.display()
        );
        std::fs::create_dir_all(home).expect("home");
        Self {
            bin,
            home: home.to_path_buf(),
            wrap: None,
        }
    }

    /// The same client with every command rewritten by `wrap`.
    pub fn wrapped(mut self, wrap: impl Fn(Command) -> Command + Send + Sync + 'static) -> Self {
        self.wrap = Some(std::sync::Arc::new(wrap));
        self
    }

    pub fn cmd(&self) -> Command {
        self.cmd_of(Command::new(&self.bin))
    }

    /// `sigstack ARGS` with the clock moved by `offset` (libfaketime: `+3 days`), for
    /// what only time brings (expired metadata).
    pub fn run_later(&self, offset: &str, args: &[&str]) -> Out {
        let mut c = Command::new("faketime");
        c.arg(offset).arg(&self.bin);
        let mut c = self.cmd_of(c);
        c.args(args);
        Self::run_cmd(c)
    }

    fn cmd_of(&self, mut c: Command) -> Command {
        c.env("HOME", &self.home).stdin(Stdio::null());
        for (k, _) in std::env::vars() {
            if k.starts_with("COSIGN_")
                || k.starts_with("SIGSTORE_")
                || k.starts_with("TUF_")
                || k.starts_with("ACTIONS_ID_TOKEN")
                || k == "BROWSER"
            {
                c.env_remove(k);
            }
        }
        match &self.wrap {
            Some(w) => {
                let mut c = w(c);
                c.stdin(Stdio::null());
                c
            }
            None => c,
        }
    }

    fn run_cmd(mut c: Command) -> Out {
        let o = c.output().expect("run sigstack");
        Out {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into(),
            stderr: String::from_utf8_lossy(&o.stderr).into(),
        }
    }

    pub fn run(&self, args: &[&str]) -> Out {
        let mut c = self.cmd();
        c.args(args);
        Self::run_cmd(c)
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        let mut c = self.cmd();
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        Self::run_cmd(c)
    }
}

pub fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

pub fn json_of(out: &Out) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// A stand-in for GitHub Actions' token service (a party we cannot run here): answers
/// `GET ...&audience=sigstore` with `{"value": TOKEN}` when the bearer is right.
async fn github_token_service(
    token: String,
    bearer: &'static str,
) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/_apis/idtoken?api-version=2.0",
        listener.local_addr().expect("addr")
    );
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 8192];
            let n = s.read(&mut buf).await.unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
            let authorised = req.contains(&format!("authorization: bearer {bearer}"));
            let audience = req
                .lines()
                .next()
                .is_some_and(|l| l.contains("api-version=2.0&audience=sigstore "));
            let (status, body) = if authorised && audience {
                ("200 OK", serde_json::json!({"value": token}).to_string())
            } else {
                (
                    "401 Unauthorized",
                    "{\"message\":\"bad token request\"}".into(),
                )
            };
            let _ = s
                .write_all(
                    format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                )
                .await;
        }
    });
    (url, task)
}

pub async fn our_client_signs_and_verifies_with_the_others() {
    let dir = temp_dir("client");
    let (stack_proc, stack) = dev_stack(&dir.join("stack"), None);
    let s = |ptr: &str| stack_str(&stack, ptr);
    let oidc = s("/services/oidc/url");
    let me = s("/services/oidc/email");
    let cli = Sigstack::new(&dir.join("home"));
    let (ok, token) = run(Command::new(env!("CARGO_BIN_EXE_sigstackd"))
        .args(["dev-token", "--data-dir"])
        .arg(dir.join("stack")));
    assert!(ok, "{token}");
    let token = token.trim().to_string();
    let artifact = dir.join("a.txt");
    std::fs::write(&artifact, b"signed by the sigstack client\n").expect("w");
    let a = p(&artifact);
    let id = |bundle: &Path| {
        vec![
            "verify-blob".to_string(),
            "--bundle".into(),
            p(bundle).into(),
            "--certificate-identity".into(),
            me.clone(),
            "--certificate-oidc-issuer".into(),
            oidc.clone(),
            a.into(),
        ]
    };
    let run_id = |bundle: &Path| {
        let args = id(bundle);
        cli.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };

    // before initialize: a private stack's bundles are not trusted (public-good trust
    // is built in, and this machine cannot reach the public repository)
    let keyless = dir.join("a.sigstore.json");
    let o = cli.run_env(
        &[
            "sign-blob",
            "--yes",
            "--bundle",
            p(&keyless),
            "--fulcio-url",
            &s("/services/ca/url"),
            "--rekor-url",
            &s("/services/log/url"),
            a,
        ],
        &[("SIGSTORE_ID_TOKEN", &token)],
    );
    assert!(o.ok(), "legacy URL flags sign without any trust setup: {o}");
    // the public-good repository is out of reach: no silent fall back to built-in trust
    let o = run_id(&keyless);
    assert_eq!(o.code, Some(3), "not trusted yet: {o}");
    assert!(o.stderr.contains("refusing to fall back"), "{o}");
    // with --offline, the built-in public-good trust does not know this stack's CA
    let mut args = vec!["--offline".to_string()];
    args.extend(id(&keyless));
    let o = cli.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.code, Some(1), "not trusted yet: {o}");
    assert!(o.stderr.contains("not a trusted"), "{o}");

    // cosign's legacy variables name the keys and CA directly, without TUF
    let o = cli.run_env(
        &[
            "verify-blob",
            "--offline",
            "--bundle",
            p(&keyless),
            "--certificate-identity",
            &me,
            "--certificate-oidc-issuer",
            &oidc,
            a,
        ],
        &[
            ("SIGSTORE_ROOT_FILE", &s("/services/ca/chain")),
            ("SIGSTORE_REKOR_PUBLIC_KEY", &s("/services/log/public_key")),
            (
                "SIGSTORE_CT_LOG_PUBLIC_KEY_FILE",
                &s("/services/ctlog/public_key"),
            ),
        ],
    );
    assert!(o.ok(), "SIGSTORE_* variables: {o}");
    let o = cli.run_env(
        &[
            "verify-blob",
            "--offline",
            "--bundle",
            p(&keyless),
            "--certificate-identity",
            &me,
            "--certificate-oidc-issuer",
            &oidc,
            a,
        ],
        &[
            ("SIGSTORE_ROOT_FILE", &s("/services/ca/chain")),
            (
                "SIGSTORE_REKOR_PUBLIC_KEY",
                &s("/services/ctlog/public_key"),
            ),
            (
                "SIGSTORE_CT_LOG_PUBLIC_KEY_FILE",
                &s("/services/ctlog/public_key"),
            ),
        ],
    );
    assert_eq!(o.code, Some(1), "the wrong log key: {o}");

    // initialize against the stack's TUF repository
    let o = cli.run(&[
        "initialize",
        "--mirror",
        &s("/services/tuf/url"),
        "--root",
        &s("/services/tuf/root"),
    ]);
    assert!(o.ok(), "initialize: {o}");
    assert!(
        o.stdout.contains(&s("/services/ca/url")),
        "the signing config's CA is shown: {o}"
    );
    let o = run_id(&keyless);
    assert!(o.ok(), "trusted through TUF now: {o}");
    let tuf_root = dir.join("tuf-root");
    let o = cli.run_env(
        &[
            "initialize",
            "--mirror",
            &s("/services/tuf/url"),
            "--root",
            &s("/services/tuf/root"),
        ],
        &[("TUF_ROOT", p(&tuf_root))],
    );
    assert!(o.ok(), "{o}");
    assert!(
        tuf_root.join("remote.json").exists(),
        "TUF_ROOT holds the cache"
    );
    let o = cli.run(&[
        "initialize",
        "--mirror",
        &s("/services/tuf/url"),
        "--root",
        p(&artifact),
    ]);
    assert_eq!(o.code, Some(3), "a root that is not a TUF root: {o}");
    let o = cli.run(&[
        "--output",
        "json",
        "verify-blob",
        "--offline",
        "--bundle",
        p(&keyless),
        "--certificate-identity-regexp",
        "@sigstack\\.test$",
        "--certificate-oidc-issuer",
        &oidc,
        a,
    ]);
    assert!(o.ok(), "--offline uses the cache: {o}");
    assert_eq!(json_of(&o)["verified"], true);

    // keyless signing with services from the signing config, all outputs; into the v1
    // log, whose entries a detached signature can be looked up by (below)
    let (sig, crt) = (dir.join("a.sig"), dir.join("a.crt"));
    let o = cli.run_env(
        &[
            "--output",
            "json",
            "sign-blob",
            "--yes",
            "--rekor-version",
            "1",
            "--bundle",
            p(&keyless),
            "--output-signature",
            p(&sig),
            "--output-certificate",
            p(&crt),
            a,
        ],
        &[("SIGSTORE_ID_TOKEN", &token)],
    );
    assert!(o.ok(), "keyless sign-blob: {o}");
    let signed = json_of(&o);
    let log_index = signed["logIndex"].as_i64().expect("logIndex");
    assert!(
        std::fs::read_to_string(&crt)
            .expect("crt")
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    assert!(run_id(&keyless).ok());
    // the refusals, each for its own reason
    let o = cli.run(&[
        "verify-blob",
        "--bundle",
        p(&keyless),
        "--certificate-identity",
        "mallory@example.test",
        "--certificate-oidc-issuer",
        &oidc,
        a,
    ]);
    assert_eq!(o.code, Some(1), "{o}");
    assert!(o.stderr.contains("does not match"), "{o}");
    let changed = dir.join("changed.txt");
    std::fs::write(&changed, b"changed").expect("w");
    let o = cli.run(&[
        "verify-blob",
        "--bundle",
        p(&keyless),
        "--certificate-identity",
        &me,
        "--certificate-oidc-issuer",
        &oidc,
        p(&changed),
    ]);
    assert_eq!(o.code, Some(1), "{o}");
    let o = cli.run(&["verify-blob", "--bundle", p(&keyless), a]);
    assert_eq!(
        o.code,
        Some(2),
        "keyless verification needs a policy (a usage error): {o}"
    );
    assert!(o.stderr.contains("--certificate-identity"), "{o}");
    let o = cli.run_env(
        &["sign-blob", "--bundle", p(&dir.join("x.json")), a],
        &[("SIGSTORE_ID_TOKEN", &token)],
    );
    assert_eq!(o.code, Some(3), "no terminal and no --yes: {o}");
    assert!(o.stderr.contains("--yes"), "{o}");
    // a detached signature (a file, or the base64 itself as cosign takes it) and
    // certificate: the entry is found in the log
    let inline = std::fs::read_to_string(&sig).expect("sig");
    let detached = |signature: &str, artifact: &str| {
        cli.run(&[
            "verify-blob",
            "--signature",
            signature,
            "--certificate",
            p(&crt),
            "--certificate-identity",
            &me,
            "--certificate-oidc-issuer",
            &oidc,
            artifact,
        ])
    };
    for signature in [p(&sig), inline.trim()] {
        let o = detached(signature, a);
        assert!(o.ok(), "detached signature {signature}: {o}");
    }
    let o = detached(p(&sig), p(&changed));
    assert_eq!(o.code, Some(1), "{o}");

    // the other clients verify our bundle, and we verify sigstore-python's
    let tc = s("/trust_config");
    let (ok, out) = run(Command::new(venv().join("bin/sigstore"))
        .args(["--trust-config", &tc, "verify", "identity", "--bundle"])
        .arg(&keyless)
        .args(["--cert-identity", &me, "--cert-oidc-issuer", &oidc])
        .arg(&artifact));
    assert!(ok, "sigstore-python verifies our bundle: {out}");
    let js_verify = |bundle: &Path, policy: &[&str]| {
        run(Command::new("node")
            .arg(js().join("verify-bundle.mjs"))
            .args(["--trusted-root", &s("/trusted_root"), "--bundle"])
            .arg(bundle)
            .arg("--artifact")
            .arg(&artifact)
            .args(policy))
    };
    let (ok, out) = js_verify(
        &keyless,
        &[
            "--certificate-identity",
            &me,
            "--certificate-oidc-issuer",
            &oidc,
        ],
    );
    assert!(ok, "sigstore-js verifies our bundle: {out}");
    let py_bundle = dir.join("py.sigstore.json");
    let (ok, out) = run(Command::new(venv().join("bin/sigstore"))
        .args([
            "--trust-config",
            &tc,
            "sign",
            "--identity-token",
            &token,
            "--bundle",
        ])
        .arg(&py_bundle)
        .arg(&artifact));
    assert!(ok, "{out}");
    assert!(
        run_id(&py_bundle).ok(),
        "we verify sigstore-python's bundle"
    );
    let js_sign = |artifact: &str, bundle: &Path, attest: Option<&str>| {
        let mut c = Command::new("node");
        c.arg(js().join("sign-bundle.mjs")).args([
            "--fulcio-url",
            &s("/services/ca/url"),
            "--rekor-url",
            &s("/services/log/url"),
            "--identity-token",
            &token,
            "--artifact",
            artifact,
            "--bundle",
            p(bundle),
        ]);
        if let Some(t) = attest {
            c.args(["--attest", t]);
        }
        run(&mut c)
    };
    let js_bundle = dir.join("js.sigstore.json");
    let (ok, out) = js_sign(a, &js_bundle, None);
    assert!(ok, "{out}");
    let o = run_id(&js_bundle);
    assert!(o.ok(), "we verify sigstore-js's bundle: {o}");
    // a DSSE envelope of another payload type signs no artifact: sigstore-js signs the
    // artifact's bytes as text/plain, and that is no signature over the artifact
    let js_plain = dir.join("js.plain.json");
    let (ok, out) = js_sign(a, &js_plain, Some("text/plain"));
    assert!(ok, "{out}");
    let o = run_id(&js_plain);
    assert_eq!(o.code, Some(1), "a text/plain envelope: {o}");
    assert!(o.stderr.contains("payload type"), "{o}");
    // an in-toto statement about the artifact, signed by sigstore-js, verifies
    let digest = hex::encode(sigstack_crypto::sha256(
        &std::fs::read(&artifact).expect("r"),
    ));
    let statement = dir.join("statement.json");
    std::fs::write(
        &statement,
        serde_json::to_vec(&serde_json::json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "a.txt", "digest": {"sha256": digest}}],
            "predicateType": "https://example.com/review/v1",
            "predicate": {"reviewed": true},
        }))
        .expect("json"),
    )
    .expect("w");
    let js_att = dir.join("js.att.json");
    let (ok, out) = js_sign(p(&statement), &js_att, Some(sigstack::verify::IN_TOTO));
    assert!(ok, "{out}");
    let o = run_id(&js_att);
    assert!(o.ok(), "we verify sigstore-js's in-toto bundle: {o}");

    // the conformance protocol's signing entry point, plain and in-toto
    let conf = dir.join("conf.sigstore.json");
    let o = cli.run(&[
        "sign-bundle",
        "--identity-token",
        &token,
        "--bundle",
        p(&conf),
        "--trusted-root",
        &s("/trusted_root"),
        "--signing-config",
        &s("/signing_config"),
        a,
    ]);
    assert!(o.ok(), "sign-bundle: {o}");
    assert!(run_id(&conf).ok());
    let digest = hex::encode(sigstack_crypto::sha256(
        &std::fs::read(&artifact).expect("a"),
    ));
    let statement = dir.join("statement.json");
    std::fs::write(
        &statement,
        serde_json::json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "a.txt", "digest": {"sha256": digest}}],
            "predicateType": "https://example.test/predicate/v1",
            "predicate": {"ok": true},
        })
        .to_string(),
    )
    .expect("w");
    let o = cli.run(&[
        "sign-bundle",
        "--in-toto",
        "--identity-token",
        &token,
        "--bundle",
        p(&conf),
        "--trusted-root",
        &s("/trusted_root"),
        "--signing-config",
        &s("/signing_config"),
        p(&statement),
    ]);
    assert!(o.ok(), "sign-bundle --in-toto: {o}");
    assert!(run_id(&conf).ok(), "the statement names the artifact");

    // cosign key pairs, checked against an independent implementation of the format
    let keys = independent_key_format(&cli, &dir);
    let key_bundle = dir.join("k.sigstore.json");
    let o = cli.run_env(
        &[
            "sign-blob",
            "--key",
            p(&keys.join("k.key")),
            "--bundle",
            p(&key_bundle),
            a,
        ],
        &[("COSIGN_PASSWORD", "correct horse")],
    );
    assert!(o.ok(), "sign-blob --key: {o}");
    let o = cli.run(&[
        "verify-blob",
        "--key",
        p(&keys.join("k.pub")),
        "--bundle",
        p(&key_bundle),
        a,
    ]);
    assert!(o.ok(), "verify-blob --key: {o}");
    let o = cli.run(&[
        "verify-blob",
        "--key",
        p(&keys.join("py.pub")),
        "--bundle",
        p(&key_bundle),
        a,
    ]);
    assert_eq!(o.code, Some(1), "another key: {o}");
    let (ok, out) = js_verify(&key_bundle, &["--key", p(&keys.join("k.pub"))]);
    assert!(ok, "sigstore-js verifies our key bundle: {out}");
    let o = cli.run_env(
        &[
            "sign-blob",
            "--key",
            p(&keys.join("k.key")),
            "--bundle",
            p(&key_bundle),
            a,
        ],
        &[("COSIGN_PASSWORD", "wrong")],
    );
    assert_eq!(o.code, Some(3), "{o}");
    assert!(o.stderr.contains("wrong password"), "a clear error: {o}");
    // --tlog-upload=false: a signature, no log entry
    let o = cli.run_env(
        &[
            "sign-blob",
            "--key",
            p(&keys.join("py.key")),
            "--tlog-upload=false",
            "--output-signature",
            p(&dir.join("nolog.sig")),
            a,
        ],
        &[("COSIGN_PASSWORD", "py password")],
    );
    assert!(o.ok(), "{o}");
    let o = cli.run(&[
        "log",
        "verify",
        "--artifact",
        a,
        "--signature",
        p(&dir.join("nolog.sig")),
        "--public-key",
        p(&keys.join("py.pub")),
    ]);
    assert_eq!(o.code, Some(1), "nothing was logged: {o}");

    // attestations
    let predicate = dir.join("provenance.json");
    std::fs::write(
        &predicate,
        br#"{"buildType":"https://example.test/build","builder":{"id":"ci"}}"#,
    )
    .expect("w");
    let att = dir.join("a.att.json");
    let o = cli.run_env(
        &[
            "attest-blob",
            "--yes",
            "--predicate",
            p(&predicate),
            "--type",
            "slsaprovenance",
            "--bundle",
            p(&att),
            a,
        ],
        &[("SIGSTORE_ID_TOKEN", &token)],
    );
    assert!(o.ok(), "attest-blob: {o}");
    let o = cli.run(&[
        "--output",
        "json",
        "verify-blob-attestation",
        "--bundle",
        p(&att),
        "--type",
        "slsaprovenance",
        "--certificate-identity",
        &me,
        "--certificate-oidc-issuer",
        &oidc,
        a,
    ]);
    assert!(o.ok(), "verify-blob-attestation: {o}");
    let v = json_of(&o);
    assert_eq!(v["predicateType"], "https://slsa.dev/provenance/v0.2");
    assert_eq!(v["statement"]["predicate"]["builder"]["id"], "ci");
    let o = cli.run(&[
        "verify-blob-attestation",
        "--bundle",
        p(&att),
        "--type",
        "spdx",
        "--certificate-identity",
        &me,
        "--certificate-oidc-issuer",
        &oidc,
        a,
    ]);
    assert_eq!(o.code, Some(1), "another predicate type: {o}");
    let o = cli.run(&[
        "verify-blob-attestation",
        "--bundle",
        p(&att),
        "--certificate-identity",
        &me,
        "--certificate-oidc-issuer",
        &oidc,
        p(&changed),
    ]);
    assert_eq!(o.code, Some(1), "another subject: {o}");
    assert!(o.stderr.contains("subject"), "{o}");
    let (ok, out) = run(Command::new(venv().join("bin/sigstore"))
        .args(["--trust-config", &tc, "verify", "identity", "--bundle"])
        .arg(&att)
        .args(["--cert-identity", &me, "--cert-oidc-issuer", &oidc])
        .arg(&artifact));
    assert!(ok, "sigstore-python verifies our attestation: {out}");

    // the log commands
    log_commands(&cli, &dir, &stack, a, log_index, &sig, &crt);
    // an output that cannot be written stops the command before anything is logged
    let tree_size = || {
        json_of(&cli.run(&["--output", "json", "log", "info"]))["treeSize"]
            .as_i64()
            .expect("treeSize")
    };
    let before = tree_size();
    let o = cli.run_env(
        &[
            "sign-blob",
            "--yes",
            "--bundle",
            p(&dir.join("missing/x.json")),
            a,
        ],
        &[("SIGSTORE_ID_TOKEN", &token)],
    );
    assert_eq!(o.code, Some(3), "{o}");
    assert!(o.stderr.contains("nothing was signed"), "{o}");
    assert_eq!(tree_size(), before, "nothing was logged");

    // identity without a token: GitHub Actions' variables
    let (gh_url, gh) = github_token_service(token.clone(), "gh-request-secret").await;
    let gh_bundle = dir.join("gh.sigstore.json");
    let o = cli.run_env(
        &["sign-blob", "--yes", "--bundle", p(&gh_bundle), a],
        &[
            ("ACTIONS_ID_TOKEN_REQUEST_URL", &gh_url),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "gh-request-secret"),
        ],
    );
    assert!(o.ok(), "ambient GitHub Actions token: {o}");
    assert!(run_id(&gh_bundle).ok());
    let o = cli.run_env(
        &["sign-blob", "--yes", "--bundle", p(&gh_bundle), a],
        &[
            ("ACTIONS_ID_TOKEN_REQUEST_URL", &gh_url),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "wrong"),
        ],
    );
    assert_eq!(o.code, Some(3), "{o}");
    assert!(o.stderr.contains("401"), "{o}");
    gh.abort();

    // the browser flow (Debian's Chromium signs in on the dev issuer's page)
    browser_flow(&cli, &dir, &stack, a);
    // the device flow (no terminal): the user approves on the verification page
    device_flow(&cli, &dir, &stack, a).await;

    // the TUF repository goes away: a fresh cache serves without it; a stale one is
    // refreshed, and when that fails the cache is used with a warning while its timestamp
    // holds, never after (a freeze attack)
    drop(stack_proc);
    assert!(run_id(&keyless).ok(), "a fresh cache needs no network");
    let cache = std::fs::read_dir(cli.home.join(".sigstore/root"))
        .expect("cache")
        .map(|e| e.expect("entry").path())
        .find(|p| p.is_dir() && p.to_string_lossy().contains("127.0.0.1"))
        .expect("the stack's cache");
    std::fs::write(cache.join("refreshed"), "0").expect("w");
    let o = run_id(&keyless);
    assert!(o.ok(), "{o}");
    assert!(o.stderr.contains("using the cached TUF repository"), "{o}");
    // a timestamp signed by the real online key, expired
    let env = sigstack_tuf::Envelope::parse(
        &std::fs::read(cache.join("timestamp.json")).expect("ts"),
        "timestamp",
    )
    .expect("timestamp");
    let mut role: sigstack_tuf::metadata::TimestampRole = env.role().expect("role");
    role.0.expires = "2001-01-01T00:00:00Z".into();
    let mut expired = sigstack_tuf::Envelope::new(&role).expect("envelope");
    expired
        .sign(&FileSigner::load(&dir.join("stack/keys/tuf-online.pem")).expect("online key"))
        .expect("sign");
    std::fs::write(cache.join("timestamp.json"), expired.to_bytes()).expect("w");
    let o = run_id(&keyless);
    assert_eq!(o.code, Some(3), "an expired cache is not trusted: {o}");
    assert!(o.stderr.contains("updating from the TUF repository"), "{o}");
}

/// `generate-key-pair`/`public-key` against the documented format, implemented
/// independently in Python: it opens our key, we open its key.
fn independent_key_format(cli: &Sigstack, dir: &Path) -> PathBuf {
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).expect("keys");
    let py = |args: &[&str]| {
        run(Command::new(venv().join("bin/python"))
            .arg(workspace().join("tests/interop/python/cosign_key.py"))
            .args(args))
    };
    let prefix = keys.join("k");
    let o = cli.run_env(
        &["generate-key-pair", "--output-key-prefix", p(&prefix)],
        &[("COSIGN_PASSWORD", "correct horse")],
    );
    assert!(o.ok(), "generate-key-pair: {o}");
    let o = cli.run_env(
        &["generate-key-pair", "--output-key-prefix", p(&prefix)],
        &[("COSIGN_PASSWORD", "correct horse")],
    );
    assert_eq!(o.code, Some(3), "no overwrite without --force: {o}");
    let text = std::fs::read_to_string(keys.join("k.key")).expect("key");
    assert!(text.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"));
    let (ok, out) = py(&[
        "decrypt",
        p(&keys.join("k.key")),
        "correct horse",
        p(&keys.join("k.pkcs8")),
    ]);
    assert!(ok, "the independent implementation opens our key: {out}");
    let opened = FileSigner::load(&keys.join("k.pkcs8")).expect("pkcs8");
    assert_eq!(
        opened.public_key().to_pem(),
        std::fs::read_to_string(keys.join("k.pub")).expect("pub")
    );
    let (ok, _) = py(&[
        "decrypt",
        p(&keys.join("k.key")),
        "wrong",
        p(&keys.join("x")),
    ]);
    assert!(!ok);
    // its key, sealed under the older label, opens with ours
    let (ok, out) = py(&["generate", p(&keys.join("py.pem")), p(&keys.join("py.pub"))]);
    assert!(ok, "{out}");
    let (ok, out) = py(&[
        "encrypt",
        p(&keys.join("py.pem")),
        "py password",
        p(&keys.join("py.key")),
        "ENCRYPTED COSIGN PRIVATE KEY",
    ]);
    assert!(ok, "{out}");
    let o = cli.run_env(
        &["public-key", "--key", p(&keys.join("py.key"))],
        &[("COSIGN_PASSWORD", "py password")],
    );
    assert!(o.ok(), "{o}");
    assert_eq!(
        o.stdout,
        std::fs::read_to_string(keys.join("py.pub")).expect("pub")
    );
    let o = cli.run(&["public-key", "--key", p(&keys.join("py.key"))]);
    assert_eq!(o.code, Some(3), "no password and no terminal: {o}");
    assert!(o.stderr.contains("COSIGN_PASSWORD"), "{o}");
    keys
}

fn log_commands(
    cli: &Sigstack,
    dir: &Path,
    stack: &Value,
    a: &str,
    log_index: i64,
    sig: &Path,
    crt: &Path,
) {
    let o = cli.run(&["--output", "json", "log", "search", "--artifact", a]);
    assert!(o.ok(), "log search: {o}");
    let uuids: Vec<String> = serde_json::from_value(json_of(&o)).expect("uuids");
    assert!(
        uuids.len() >= 3,
        "every signature of the artifact: {uuids:?}"
    );
    let o = cli.run(&[
        "log",
        "search",
        "--email",
        stack["services"]["oidc"]["email"].as_str().expect("email"),
    ]);
    assert!(o.ok(), "{o}");
    assert!(o.stdout.lines().count() >= 3, "{o}");
    let o = cli.run(&["log", "search", "--sha", &"0".repeat(64)]);
    assert!(o.ok() && o.stdout.is_empty(), "{o}");
    let o = cli.run(&[
        "--output",
        "json",
        "log",
        "get",
        "--log-index",
        &log_index.to_string(),
    ]);
    assert!(o.ok(), "log get: {o}");
    let got = json_of(&o);
    assert_eq!(got["verified"], true);
    assert_eq!(got["body"]["kind"], "hashedrekord");
    let uuid = got["uuid"].as_str().expect("uuid").to_string();
    assert!(
        uuids
            .iter()
            .any(|u| uuid.ends_with(u.as_str()) || u.ends_with(&uuid)),
        "{uuid} in {uuids:?}"
    );
    let o = cli.run(&["log", "verify", "--uuid", &uuid]);
    assert!(o.ok(), "log verify: {o}");
    assert!(o.stdout.contains("Current Tree Size"), "{o}");
    let o = cli.run(&[
        "log",
        "verify",
        "--artifact",
        a,
        "--signature",
        p(sig),
        "--public-key",
        p(crt),
    ]);
    assert!(o.ok(), "log verify by content: {o}");
    let o = cli.run(&["log", "get", "--uuid", &"ab".repeat(32)]);
    assert_eq!(o.code, Some(3), "{o}");
    assert!(o.stderr.contains("404"), "{o}");
    let o = cli.run(&["log", "get", "--uuid", "nothex"]);
    assert_eq!(o.code, Some(3), "{o}");
    // info: verified, and consistent with what was seen before
    let o = cli.run(&["--output", "json", "log", "info"]);
    assert!(o.ok(), "log info: {o}");
    let info = json_of(&o);
    assert!(
        info["consistency"]
            .as_str()
            .expect("c")
            .starts_with("consistent with"),
        "{info}"
    );
    // a forked log: the kept checkpoint is replaced by one of the same size with another
    // root, signed with the log's own key (an operator presenting two histories)
    let state = cli.home.join(".sigstore/sigstack/checkpoints");
    let kept = std::fs::read_dir(&state)
        .expect("state")
        .next()
        .expect("one log")
        .expect("entry")
        .path();
    let note = std::fs::read_to_string(&kept).expect("note");
    let body = &note[..note.find("\n\n").expect("note") + 1];
    let mut cp = sigstack_log::checkpoint::Checkpoint::parse_body(body).expect("body");
    cp.root = [7u8; 32];
    let key_name = cp.origin.split(" - ").next().expect("name").to_string();
    let key = FileSigner::load(&dir.join("stack/keys/log.pem")).expect("log key");
    std::fs::write(&kept, cp.sign(&key_name, &key).expect("sign")).expect("w");
    let o = cli.run(&["log", "info"]);
    assert_eq!(o.code, Some(1), "a fork is caught: {o}");
    assert!(o.stderr.contains("forked"), "{o}");
    // a checkpoint not signed by the log is refused as such
    std::fs::write(&kept, note.replace("\n\n", "\n\nx")).expect("w");
    let o = cli.run(&["log", "info"]);
    assert_ne!(o.code, Some(0), "{o}");
    std::fs::write(&kept, &note).expect("w");
    let o = cli.run(&["log", "info"]);
    assert!(o.ok(), "{o}");
}

fn browser_flow(cli: &Sigstack, dir: &Path, stack: &Value, a: &str) {
    let browser = workspace().join("tests/interop/browser");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "Debian's Chromium is not at {chromium}: run ./scripts/test"
    );
    let oidc = &stack["services"]["oidc"];
    let bundle = dir.join("browser.sigstore.json");
    let mut c = cli.cmd();
    c.args(["sign-blob", "--yes", "--bundle", p(&bundle), a])
        .env(
            "BROWSER",
            format!("node {} %s", browser.join("login.mjs").display()),
        )
        .env("CHROMIUM", &chromium)
        .env(
            "SIGSTACK_LOGIN_USER",
            oidc["username"].as_str().expect("user"),
        )
        .env(
            "SIGSTACK_LOGIN_PASSWORD_FILE",
            oidc["password_file"].as_str().expect("password"),
        );
    let (ok, out) = run_within(&mut c, Duration::from_secs(180));
    assert!(ok, "sign-blob after a browser sign-in: {out}");
    assert!(out.contains("Your browser will now be opened to"), "{out}");
    let o = cli.run(&[
        "verify-blob",
        "--bundle",
        p(&bundle),
        "--certificate-identity",
        oidc["email"].as_str().expect("email"),
        "--certificate-oidc-issuer",
        oidc["url"].as_str().expect("url"),
        a,
    ]);
    assert!(o.ok(), "{o}");
}

async fn device_flow(cli: &Sigstack, dir: &Path, stack: &Value, a: &str) {
    let oidc = &stack["services"]["oidc"];
    let bundle = dir.join("device.sigstore.json");
    let mut c = cli.cmd();
    c.args([
        "sign-blob",
        "--yes",
        "--oidc-provider",
        "device",
        "--bundle",
        p(&bundle),
        a,
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let child = Killed::new(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let prompt = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the device prompt");
        if line.starts_with("To sign in, open ") {
            break line;
        }
    };
    let rest = prompt.trim_start_matches("To sign in, open ");
    let (url, code) = rest
        .split_once(" and enter the code ")
        .expect("url and code");
    approve_device(stack, url, code).await;
    drop(rx);
    let mut child = child;
    let status = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(st) = child.try_wait() {
                return Some(st);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    })
    .await
    .expect("join");
    assert!(
        status.is_some_and(|s| s.success()),
        "the device flow completes"
    );
    let o = cli.run(&[
        "verify-blob",
        "--bundle",
        p(&bundle),
        "--certificate-identity",
        oidc["email"].as_str().expect("email"),
        "--certificate-oidc-issuer",
        oidc["url"].as_str().expect("url"),
        a,
    ]);
    assert!(o.ok(), "{o}");
}

/// The dev user approves a device authorization on the issuer's page at `url` (which
/// shows `code`), as a person would.
pub async fn approve_device(stack: &Value, url: &str, code: &str) {
    let oidc = &stack["services"]["oidc"];
    install_tls();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http");
    let r = http.get(url).send().await.expect("get");
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .expect("c")
        .split(';')
        .next()
        .expect("c")
        .to_string();
    let html = r.text().await.expect("html");
    assert_eq!(hidden(&html, "user_code"), code);
    let password =
        std::fs::read_to_string(oidc["password_file"].as_str().expect("pw")).expect("pw");
    let r = http
        .post(format!("{}/device", oidc["url"].as_str().expect("url")))
        .header("cookie", cookie)
        .form(&[
            ("user_code", code.to_string()),
            ("csrf", hidden(&html, "csrf")),
            (
                "username",
                oidc["username"].as_str().expect("user").to_string(),
            ),
            ("password", password.trim().to_string()),
            ("action", "approve".into()),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
}
