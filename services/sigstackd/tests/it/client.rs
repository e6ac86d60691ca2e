//! The `sigstack` binary against `sigstackd dev`, as a user runs it: `initialize` trusts
//! the stack's TUF repository, and every later command takes its services and trust from
//! there. Keyless signing with a token from the dev issuer, from GitHub Actions' token
//! variables, after a browser sign-in and through the device flow; cosign-format key
//! pairs (checked against an independent implementation of the format); attestations;
//! detached signatures; the log commands with a persisted checkpoint that catches a
//! forked log. sigstore-python and sigstore-js verify our bundles and we verify
//! sigstore-python's.

use crate::client_flows::*;
use crate::keyless::{dev_stack, js, run, venv};
pub use crate::sigstack_cli::*;
use crate::support::*;
use sigstack_crypto::FileSigner;
use std::path::Path;
use std::process::Command;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
