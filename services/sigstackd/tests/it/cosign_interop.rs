//! cosign v2 and v3 and rekor-cli — the real binaries — against `sigstackd dev`, and
//! against `sigstack`, both directions: one TUF cache shared by `sigstack initialize` and
//! `cosign initialize`; every way cosign gets an identity token from our issuer; blobs and
//! attestations, keyless and with keys, in every bundle format cosign writes; legacy and
//! trusted-root/signing-config trust flags; container images in every layout each tool
//! writes, with annotations, on Debian's docker-registry; and rekor-cli's jobs. The
//! keyless blob matrix through TUF is in `stack` (5 x 5 clients).

use crate::client::{Out, Sigstack, p};
use crate::cosign::{Cosign, go_tool, out};
use crate::keyless::{dev_stack, run};
use crate::support::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) struct Stack {
    pub(crate) json: Value,
    pub(crate) dir: PathBuf,
    pub(crate) tuf: String,
    pub(crate) root: String,
    pub(crate) ca: String,
    pub(crate) log: String,
    pub(crate) oidc: String,
    pub(crate) me: String,
    pub(crate) trusted_root: String,
    pub(crate) signing_config: String,
    pub(crate) ci_secret: String,
    pub(crate) data: PathBuf,
}

impl Stack {
    pub(crate) fn token(&self) -> String {
        let (ok, t) = run(Command::new(env!("CARGO_BIN_EXE_sigstackd"))
            .args(["dev-token", "--data-dir"])
            .arg(&self.data));
        assert!(ok, "{t}");
        t.trim().to_string()
    }

    pub(crate) fn id(&self) -> [&str; 4] {
        [
            "--certificate-identity",
            &self.me,
            "--certificate-oidc-issuer",
            &self.oidc,
        ]
    }
}

pub(crate) fn ok(o: &Out, what: &str) {
    assert!(o.ok(), "{what}: {o}");
}

pub(crate) fn with<'a>(base: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
    let mut v = base.to_vec();
    v.extend_from_slice(more);
    v
}

/// `sigstackd dev` in a new directory tagged `tag`, with what the clients need of it.
pub(crate) fn start(tag: &str) -> (crate::keyless::Killed, Stack) {
    let dir = temp_dir(tag);
    let (stack_proc, stack) = dev_stack(&dir.join("stack"), None);
    (stack_proc, start_for(&dir, &stack))
}

/// What the clients need of a dev stack running with its data in DIR/stack.
pub(crate) fn start_for(dir: &Path, stack: &Value) -> Stack {
    let data = dir.join("stack");
    let s = |ptr: &str| crate::support::stack_str(stack, ptr);
    Stack {
        json: stack.clone(),
        tuf: s("/services/tuf/url"),
        root: s("/services/tuf/root"),
        ca: s("/services/ca/url"),
        log: s("/services/log/url"),
        oidc: s("/services/oidc/url"),
        me: s("/services/oidc/email"),
        trusted_root: s("/trusted_root"),
        signing_config: s("/signing_config"),
        ci_secret: s("/services/oidc/ci_secret_file"),
        data,
        dir: dir.to_path_buf(),
    }
}

pub async fn cosign_and_rekor_cli_against_the_stack() {
    let (_stack_proc, st) = start("cosign");
    let dir = st.dir.clone();
    let artifact = dir.join("a.txt");
    std::fs::write(&artifact, b"signed by everyone\n").expect("w");
    shared_tuf_cache(&st, &artifact);
    identity_tokens(&st, &artifact);
    interactive_flows(&st, &artifact).await;
    blobs_with_keys_and_old_bundles(&st, &artifact);
    trust_flags(&st, &artifact);
    crate::byo_pki::bring_your_own_pki(&st);
    crate::cosign_images::images(&st).await;
    crate::policies::policies(&st).await;
    rekor_cli(&st, &artifact);
}

/// `sigstack initialize` and `cosign initialize` take turns on one `$TUF_ROOT`; each
/// then verifies with no other trust flags.
fn shared_tuf_cache(st: &Stack, artifact: &Path) {
    let home = st.dir.join("shared-home");
    let tuf_root = home.join(".sigstore/root");
    let ours = Sigstack::new(&home);
    let v2 = Cosign::v2(&home).with_tuf_root(&tuf_root);
    let v3 = Cosign::v3(&home).with_tuf_root(&tuf_root);
    let bundle = st.dir.join("shared.sigstore.json");
    let token = st.token();
    ok(
        &ours.run(&["initialize", "--mirror", &st.tuf, "--root", &st.root]),
        "sigstack initialize",
    );
    ok(
        &ours.run(&[
            "sign-blob",
            "--yes",
            "--identity-token",
            &token,
            "--bundle",
            p(&bundle),
            p(artifact),
        ]),
        "sigstack signs through TUF",
    );
    let verify = |c: &Cosign| {
        c.run(&with(
            &["verify-blob", "--bundle", p(&bundle)],
            &with(&st.id(), &[p(artifact)]),
        ))
    };
    let ours_verify = || {
        ours.run(&with(
            &["verify-blob", "--bundle", p(&bundle)],
            &with(&st.id(), &[p(artifact)]),
        ))
    };
    // cosign finds the root `sigstack initialize` cached, in its own layout
    ok(&verify(&v2), "cosign v2 after sigstack initialize");
    ok(&verify(&v3), "cosign v3 after sigstack initialize");
    // cosign v3's initialize empties $TUF_ROOT first; sigstack carries on from its cache
    ok(
        &v3.run(&["initialize", "--mirror", &st.tuf, "--root", &st.root]),
        "cosign v3 initialize",
    );
    ok(&ours_verify(), "sigstack after cosign v3 initialize");
    ok(&verify(&v2), "cosign v2 after cosign v3 initialize");
    ok(
        &v2.run(&["initialize", "--mirror", &st.tuf, "--root", &st.root]),
        "cosign v2 initialize",
    );
    ok(&ours_verify(), "sigstack after cosign v2 initialize");
    ok(&verify(&v3), "cosign v3 after cosign v2 initialize");
}

/// `sigstack` initialized on the stack, with a home of its own.
pub(crate) fn ours_on(st: &Stack, home: &str) -> Sigstack {
    let ours = Sigstack::new(&st.dir.join(home));
    ok(
        &ours.run(&["initialize", "--mirror", &st.tuf, "--root", &st.root]),
        "sigstack initialize",
    );
    ours
}

/// Flags cosign v2 needs to sign through the signing config into a Sigstore bundle, as
/// cosign v3 does by default.
fn bundle_flags(c: &Cosign) -> &'static [&'static str] {
    if c.name == "cosign v2" {
        &["--use-signing-config", "--new-bundle-format"]
    } else {
        &[]
    }
}

/// cosign initialized on the stack, with a home of its own.
pub(crate) fn initialized(c: Cosign, st: &Stack) -> Cosign {
    ok(
        &c.run(&["initialize", "--mirror", &st.tuf, "--root", &st.root]),
        &format!("{} initialize", c.name),
    );
    c
}

/// `--identity-token VALUE` (cosign takes it as a token only if it is RS256, else as a
/// file name), `SIGSTORE_ID_TOKEN`, and a CI job's client-credentials flow (the token
/// must name cosign's client id as an audience and come from `--oidc-issuer`).
fn identity_tokens(st: &Stack, artifact: &Path) {
    let ours = ours_on(st, "id-home");
    for c in [
        initialized(Cosign::v2(&st.dir.join("id-v2")), st),
        initialized(Cosign::v3(&st.dir.join("id-v3")), st),
    ] {
        let v2_flags = bundle_flags(&c);
        let b1 = st
            .dir
            .join(format!("{}-flag.json", c.name.replace(' ', "")));
        let token = st.token();
        let o = c.run(&with(
            &with(
                &["sign-blob", "--yes", "--identity-token", &token],
                v2_flags,
            ),
            &["--bundle", p(&b1), p(artifact)],
        ));
        ok(
            &o,
            &format!("{}: --identity-token with the token itself", c.name),
        );
        let b2 = st.dir.join(format!("{}-env.json", c.name.replace(' ', "")));
        let o = c.run_env(
            &with(
                &with(&["sign-blob", "--yes"], v2_flags),
                &["--bundle", p(&b2), p(artifact)],
            ),
            &[("SIGSTORE_ID_TOKEN", &token)],
        );
        ok(&o, &format!("{}: SIGSTORE_ID_TOKEN", c.name));
        for b in [&b1, &b2] {
            ok(
                &ours.run(&with(
                    &["verify-blob", "--bundle", p(b)],
                    &with(&st.id(), &[p(artifact)]),
                )),
                &format!("sigstack verifies {}'s bundle", c.name),
            );
        }
        // a CI job: client credentials against the workload issuer
        let b3 = st.dir.join(format!("{}-ci.json", c.name.replace(' ', "")));
        let mut args = vec!["sign-blob", "--yes"];
        if c.name == "cosign v2" {
            args.push("--new-bundle-format");
        } else {
            args.push("--use-signing-config=false");
        }
        let workload = format!("{}/workload", st.oidc);
        args.extend([
            "--fulcio-url",
            &st.ca,
            "--rekor-url",
            &st.log,
            "--fulcio-auth-flow",
            "client_credentials",
            "--oidc-issuer",
            &workload,
            "--oidc-client-id",
            "dev-ci",
            "--oidc-client-secret-file",
            &st.ci_secret,
            "--bundle",
            p(&b3),
            p(artifact),
        ]);
        ok(&c.run(&args), &format!("{}: client credentials", c.name));
        let job = format!("^{}/jobs/", regex_escape(&st.oidc));
        ok(
            &ours.run(&[
                "verify-blob",
                "--bundle",
                p(&b3),
                "--certificate-identity-regexp",
                &job,
                "--certificate-oidc-issuer",
                &workload,
                p(artifact),
            ]),
            &format!("the CI job's identity in {}'s certificate", c.name),
        );
    }
}

/// A person signs in for cosign: in a browser (cosign opens our login page with the
/// system's opener, `xdg-open`, here one that hands the URL to headless Chromium, which
/// logs in as the dev user and is redirected to cosign's loopback callback), and through
/// the device flow (the user approves the code cosign prints on the issuer's page).
async fn interactive_flows(st: &Stack, artifact: &Path) {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "Debian's Chromium is not at {chromium}: run ./scripts/test"
    );
    let bin = st.dir.join("opener");
    std::fs::create_dir_all(&bin).expect("dir");
    let login = crate::keyless::workspace().join("tests/interop/browser/login.mjs");
    let opener = bin.join("xdg-open");
    // a desktop's opener returns at once and leaves the browser running
    std::fs::write(
        &opener,
        format!(
            "#!/bin/sh\nnode {} \"$1\" >> {} 2>&1 &\n",
            login.display(),
            st.dir.join("login.log").display()
        ),
    )
    .expect("w");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&opener, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let password_file = st.json["services"]["oidc"]["password_file"]
        .as_str()
        .expect("password file")
        .to_string();
    let ours = ours_on(st, "flows-home");
    for c in [
        initialized(Cosign::v2(&st.dir.join("flows-v2")), st),
        initialized(Cosign::v3(&st.dir.join("flows-v3")), st),
    ] {
        let v2_flags = bundle_flags(&c);
        let tag = c.name.replace(' ', "");
        // the browser
        let bundle = st.dir.join(format!("{tag}-browser.json"));
        let mut cmd = c.cmd();
        cmd.args(with(
            &with(
                &["sign-blob", "--yes", "--fulcio-auth-flow", "normal"],
                v2_flags,
            ),
            &["--bundle", p(&bundle), p(artifact)],
        ))
        .env("PATH", &path)
        .env("CHROMIUM", &chromium)
        .env("SIGSTACK_LOGIN_USER", "dev")
        .env("SIGSTACK_LOGIN_PASSWORD_FILE", &password_file);
        let (ok_, o) = crate::keyless::run_within(&mut cmd, std::time::Duration::from_secs(120));
        assert!(ok_, "{}: browser sign-in: {o}", c.name);
        assert!(o.contains("Your browser will now be opened to"), "{o}");
        ok(
            &ours.run(&with(
                &["verify-blob", "--bundle", p(&bundle)],
                &with(&st.id(), &[p(artifact)]),
            )),
            &format!("the browser sign-in's identity in {}'s certificate", c.name),
        );
        // the device flow
        let bundle = st.dir.join(format!("{tag}-device.json"));
        let mut cmd = c.cmd();
        cmd.args(with(
            &with(
                &["sign-blob", "--yes", "--fulcio-auth-flow", "device"],
                v2_flags,
            ),
            &["--bundle", p(&bundle), p(artifact)],
        ))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
        let mut child = cmd.spawn().expect("spawn cosign");
        // cosign prints the device prompt on standard output
        let stdout = child.stdout.take().expect("stdout");
        let child = crate::keyless::Killed::new(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        // "Enter the verification code ABCD-EFGH in your browser at: URL"
        let (code, url) = loop {
            let line = rx
                .recv_timeout(std::time::Duration::from_secs(60))
                .expect("cosign's device prompt");
            if let Some(rest) = line.strip_prefix("Enter the verification code ")
                && let Some((code, url)) = rest.split_once(" in your browser at: ")
            {
                break (code.trim().to_string(), url.trim().to_string());
            }
        };
        crate::client_flows::approve_device(&st.json, &url, &code).await;
        let mut child = child;
        let status = tokio::task::spawn_blocking(move || {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while std::time::Instant::now() < deadline {
                if let Some(st) = child.try_wait() {
                    return Some(st);
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            None
        })
        .await
        .expect("join");
        assert!(
            status.is_some_and(|s| s.success()),
            "{}: the device flow ends in a signature: {status:?}",
            c.name
        );
        ok(
            &ours.run(&with(
                &["verify-blob", "--bundle", p(&bundle)],
                &with(&st.id(), &[p(artifact)]),
            )),
            &format!("the device flow's identity in {}'s certificate", c.name),
        );
    }
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == ':' {
                vec![c]
            } else {
                vec!['\\', c]
            }
        })
        .collect()
}

/// Key pairs cross both ways; cosign v2's default blob bundle (`base64Signature`, `cert`,
/// `rekorBundle`) for signatures and attestations, keyless and with a key, is read by
/// `sigstack`; attestations cross between all three tools.
fn blobs_with_keys_and_old_bundles(st: &Stack, artifact: &Path) {
    let ours = ours_on(st, "keys-home");
    let v2 = initialized(Cosign::v2(&st.dir.join("keys-v2")), st);
    let v3 = initialized(Cosign::v3(&st.dir.join("keys-v3")), st);
    let keys = st.dir.join("keys");
    std::fs::create_dir_all(&keys).expect("keys");
    let pw = [("COSIGN_PASSWORD", "correct horse")];
    let mut c = v3.cmd();
    c.args(["generate-key-pair", "--output-key-prefix"])
        .arg(keys.join("cosign"))
        .env("COSIGN_PASSWORD", "correct horse");
    ok(&out(c), "cosign generate-key-pair");
    ok(
        &ours.run_env(
            &[
                "generate-key-pair",
                "--output-key-prefix",
                p(&keys.join("sigstack")),
            ],
            &pw,
        ),
        "sigstack generate-key-pair",
    );
    let key = |n: &str, ext: &str| keys.join(format!("{n}.{ext}"));
    // each signs with the other's key; each verifies both
    let by_v3 = st.dir.join("key-by-v3.json");
    ok(
        &v3.run_env(
            &[
                "sign-blob",
                "--yes",
                "--key",
                p(&key("sigstack", "key")),
                "--bundle",
                p(&by_v3),
                p(artifact),
            ],
            &pw,
        ),
        "cosign v3 signs with sigstack's key",
    );
    let by_ours = st.dir.join("key-by-sigstack.json");
    ok(
        &ours.run_env(
            &[
                "sign-blob",
                "--yes",
                "--key",
                p(&key("cosign", "key")),
                "--bundle",
                p(&by_ours),
                p(artifact),
            ],
            &pw,
        ),
        "sigstack signs with cosign's key",
    );
    let by_v2 = st.dir.join("key-by-v2-old.json");
    ok(
        &v2.run_env(
            &[
                "sign-blob",
                "--yes",
                "--key",
                p(&key("cosign", "key")),
                "--rekor-url",
                &st.log,
                "--bundle",
                p(&by_v2),
                p(artifact),
            ],
            &pw,
        ),
        "cosign v2 signs with its key (its own bundle format)",
    );
    for (bundle, signer) in [
        (&by_v3, "sigstack"),
        (&by_ours, "cosign"),
        (&by_v2, "cosign"),
    ] {
        let pubkey = key(signer, "pub");
        ok(
            &ours.run(&[
                "verify-blob",
                "--key",
                p(&pubkey),
                "--bundle",
                p(bundle),
                p(artifact),
            ]),
            &format!("sigstack verifies {}", bundle.display()),
        );
        ok(
            &v2.run(&[
                "verify-blob",
                "--key",
                p(&pubkey),
                "--bundle",
                p(bundle),
                p(artifact),
            ]),
            &format!("cosign v2 verifies {}", bundle.display()),
        );
        if bundle != &by_v2 {
            ok(
                &v3.run(&[
                    "verify-blob",
                    "--key",
                    p(&pubkey),
                    "--bundle",
                    p(bundle),
                    p(artifact),
                ]),
                &format!("cosign v3 verifies {}", bundle.display()),
            );
        }
        let other = if signer == "cosign" {
            "sigstack"
        } else {
            "cosign"
        };
        let o = ours.run(&[
            "verify-blob",
            "--key",
            p(&key(other, "pub")),
            "--bundle",
            p(bundle),
            p(artifact),
        ]);
        assert_eq!(o.code, Some(1), "the other key: {o}");
    }
    // keyless, cosign v2's default bundle: a signature and an attestation
    let token = st.token();
    let legacy = [
        "--fulcio-url",
        st.ca.as_str(),
        "--rekor-url",
        st.log.as_str(),
    ];
    let v2_sig = st.dir.join("v2-default.bundle");
    ok(
        &v2.run(&with(
            &with(&["sign-blob", "--yes", "--identity-token", &token], &legacy),
            &["--bundle", p(&v2_sig), p(artifact)],
        )),
        "cosign v2 sign-blob (default bundle)",
    );
    let v2_bundle: Value =
        serde_json::from_slice(&std::fs::read(&v2_sig).expect("r")).expect("json");
    assert!(
        v2_bundle.get("rekorBundle").is_some(),
        "cosign v2's own format: {v2_bundle}"
    );
    ok(
        &ours.run(&with(
            &["verify-blob", "--bundle", p(&v2_sig)],
            &with(&st.id(), &[p(artifact)]),
        )),
        "sigstack reads cosign v2's blob bundle",
    );
    let changed = st.dir.join("changed.txt");
    std::fs::write(&changed, b"not what was signed\n").expect("w");
    let o = ours.run(&with(
        &["verify-blob", "--bundle", p(&v2_sig)],
        &with(&st.id(), &[p(&changed)]),
    ));
    assert_eq!(o.code, Some(1), "another artifact: {o}");
    let predicate = st.dir.join("provenance.json");
    std::fs::write(
        &predicate,
        br#"{"builder":{"id":"ci"},"buildType":"https://example.com/build"}"#,
    )
    .expect("w");
    let attest = |c: &Cosign, extra: &[&str], bundle: &Path| {
        c.run(&with(
            &with(
                &[
                    "attest-blob",
                    "--yes",
                    "--identity-token",
                    &token,
                    "--predicate",
                    p(&predicate),
                    "--type",
                    "slsaprovenance",
                ],
                extra,
            ),
            &["--bundle", p(bundle), p(artifact)],
        ))
    };
    let att_v2_old = st.dir.join("att-v2-default.bundle");
    ok(
        &attest(&v2, &legacy, &att_v2_old),
        "cosign v2 attest-blob (default bundle)",
    );
    let att_v2 = st.dir.join("att-v2.sigstore.json");
    ok(
        &attest(
            &v2,
            &["--use-signing-config", "--new-bundle-format"],
            &att_v2,
        ),
        "cosign v2 attest-blob (Sigstore bundle)",
    );
    let att_v3 = st.dir.join("att-v3.sigstore.json");
    ok(&attest(&v3, &[], &att_v3), "cosign v3 attest-blob");
    let att_ours = st.dir.join("att-sigstack.sigstore.json");
    ok(
        &ours.run(&[
            "attest-blob",
            "--yes",
            "--identity-token",
            &token,
            "--predicate",
            p(&predicate),
            "--type",
            "slsaprovenance",
            "--bundle",
            p(&att_ours),
            p(artifact),
        ]),
        "sigstack attest-blob",
    );
    let check = with(&["--type", "slsaprovenance"], &st.id());
    for b in [&att_v2_old, &att_v2, &att_v3, &att_ours] {
        let args = with(
            &with(&["verify-blob-attestation", "--bundle", p(b)], &check),
            &[p(artifact)],
        );
        ok(
            &ours.run(&args),
            &format!("sigstack verifies {}", b.display()),
        );
        ok(
            &v2.run(&args),
            &format!("cosign v2 verifies {}", b.display()),
        );
        // cosign v2 (its sigstore-go) still sends an attestation to a Rekor v2 log as
        // `dsseRequestV002`, which this log keeps accepting and rekor-tiles no longer
        // does; cosign v3's sigstore-go has dropped the matching verifier (it asks for a
        // key), so that one bundle is for cosign v2 and sigstack to verify
        let dsse_v2 = std::fs::read(b)
            .ok()
            .and_then(|x| serde_json::from_slice::<serde_json::Value>(&x).ok())
            .and_then(|x| {
                x.pointer("/verificationMaterial/tlogEntries/0/kindVersion")
                    .cloned()
            })
            == Some(serde_json::json!({"kind": "dsse", "version": "0.0.2"}));
        if b != &att_v2_old && !dsse_v2 {
            ok(
                &v3.run(&args),
                &format!("cosign v3 verifies {}", b.display()),
            );
        }
        let args = with(
            &with(&["verify-blob-attestation", "--bundle", p(b)], &check),
            &[p(&changed)],
        );
        let o = ours.run(&args);
        assert_eq!(o.code, Some(1), "another subject: {o}");
    }
}

/// cosign v2 with the service URLs and the trusted root as files; cosign v3 with
/// `--trusted-root` and `--signing-config` files; sigstack verifies both.
fn trust_flags(st: &Stack, artifact: &Path) {
    let home = st.dir.join("files-home");
    let v2 = Cosign::v2(&home);
    let v3 = Cosign::v3(&home);
    let ours = Sigstack::new(&home);
    let token = st.token();
    let b2 = st.dir.join("files-v2.json");
    ok(
        &v2.run(&[
            "sign-blob",
            "--yes",
            "--identity-token",
            &token,
            "--fulcio-url",
            &st.ca,
            "--rekor-url",
            &st.log,
            "--oidc-issuer",
            &st.oidc,
            "--new-bundle-format",
            "--trusted-root",
            &st.trusted_root,
            "--bundle",
            p(&b2),
            p(artifact),
        ]),
        "cosign v2 with service URLs and a trusted root",
    );
    let b3 = st.dir.join("files-v3.json");
    ok(
        &v3.run(&[
            "sign-blob",
            "--yes",
            "--identity-token",
            &token,
            "--trusted-root",
            &st.trusted_root,
            "--signing-config",
            &st.signing_config,
            "--bundle",
            p(&b3),
            p(artifact),
        ]),
        "cosign v3 with a trusted root and a signing config",
    );
    for b in [&b2, &b3] {
        let args = with(
            &[
                "verify-blob",
                "--trusted-root",
                &st.trusted_root,
                "--bundle",
                p(b),
            ],
            &with(&st.id(), &[p(artifact)]),
        );
        ok(&v2.run(&args), "cosign v2 verifies with --trusted-root");
        ok(&v3.run(&args), "cosign v3 verifies with --trusted-root");
        ok(&ours.run(&args), "sigstack verifies with --trusted-root");
    }
}

/// rekor-cli's jobs against the log: upload a hashedrekord entry with a key (and again:
/// the log says it exists), get by UUID and index, search by e-mail, digest, artifact and
/// key, verify by UUID and by content, and loginfo, whose stored state carries across
/// calls.
fn rekor_cli(st: &Stack, artifact: &Path) {
    let bin = go_tool("SIGSTACK_REKOR_CLI");
    let home = st.dir.join("rekor-home");
    std::fs::create_dir_all(&home).expect("home");
    let rekor = |args: &[&str]| {
        let mut c = Command::new(&bin);
        crate::cosign::clean_env(&mut c);
        c.env("HOME", &home)
            .args(args)
            .args(["--rekor_server", &st.log]);
        out(c)
    };
    // a key and a signature made with openssl: no sigstack code on this side
    let key = st.dir.join("rekor-key.pem");
    let pubkey = st.dir.join("rekor-key.pub");
    let sig = st.dir.join("a.sig");
    for args in [
        vec![
            "ecparam",
            "-genkey",
            "-name",
            "prime256v1",
            "-noout",
            "-out",
            p(&key),
        ],
        vec!["ec", "-in", p(&key), "-pubout", "-out", p(&pubkey)],
        vec![
            "dgst",
            "-sha256",
            "-sign",
            p(&key),
            "-out",
            p(&sig),
            p(artifact),
        ],
    ] {
        let (ok_, o) = run(Command::new("openssl").args(&args));
        assert!(ok_, "openssl {args:?}: {o}");
    }
    // the entry rekor-cli uploads, and later verifies by content
    let content = [
        "--type",
        "hashedrekord",
        "--artifact",
        p(artifact),
        "--signature",
        p(&sig),
        "--public-key",
        p(&pubkey),
        "--pki-format",
        "x509",
    ];
    let up = with(&["upload"], &content);
    let o = rekor(&up);
    ok(&o, "rekor-cli upload");
    let uuid = o
        .stdout
        .split('/')
        .next_back()
        .map(|s| s.trim().to_string())
        .expect("a UUID");
    let index: String = o
        .stdout
        .split("index ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .expect("an index")
        .to_string();
    let o = rekor(&up);
    ok(&o, "rekor-cli upload again");
    assert!(o.stdout.contains("Entry already exists"), "{o}");
    let o = rekor(&["get", "--uuid", &uuid]);
    ok(&o, "get --uuid");
    assert!(o.stdout.contains(&format!("Index: {index}")), "{o}");
    let o = rekor(&["get", "--log-index", &index, "--format", "json"]);
    ok(&o, "get --log-index");
    let digest = hex::encode(sigstack_crypto::sha256(
        &std::fs::read(artifact).expect("r"),
    ));
    for args in [
        vec!["search", "--sha", digest.as_str()],
        vec!["search", "--artifact", p(artifact)],
        vec!["search", "--public-key", p(&pubkey), "--pki-format", "x509"],
    ] {
        let o = rekor(&args);
        ok(&o, &format!("rekor-cli {args:?}"));
        assert!(o.stdout.contains(&uuid), "{args:?}: {o}");
    }
    let o = rekor(&["search", "--email", &st.me]);
    ok(&o, "search --email");
    // every keyless entry signed as the dev user so far, and nothing else
    let found = o.stdout.lines().filter(|l| l.len() == 80).count();
    assert!(found >= 10, "the dev user's entries: {o}");
    assert!(
        !o.stdout.contains(&uuid),
        "the key-signed entry names no e-mail: {o}"
    );
    ok(&rekor(&["verify", "--uuid", &uuid]), "verify --uuid");
    ok(&rekor(&with(&["verify"], &content)), "verify by content");
    // loginfo twice: the second call checks consistency with the state the first stored
    ok(&rekor(&["loginfo"]), "loginfo");
    let token = st.token();
    let more = st.dir.join("more.txt");
    std::fs::write(&more, b"the log grows\n").expect("w");
    let ours = Sigstack::new(&st.dir.join("rekor-sigstack"));
    ok(
        &ours.run(&[
            "sign-blob",
            "--yes",
            "--identity-token",
            &token,
            "--rekor-url",
            &st.log,
            "--fulcio-url",
            &st.ca,
            "--bundle",
            p(&st.dir.join("more.json")),
            p(&more),
        ]),
        "sign",
    );
    let o = rekor(&["loginfo"]);
    ok(
        &o,
        "loginfo after growth (consistency proof from the stored state)",
    );
    assert!(o.stdout.contains("Verification Successful"), "{o}");
}

/// The commands `sigstack` shares with cosign, as `cosign <command>` names them.
const SHARED_COMMANDS: [&str; 18] = [
    "initialize",
    "sign-blob",
    "verify-blob",
    "attest-blob",
    "verify-blob-attestation",
    "generate-key-pair",
    "public-key",
    "sign",
    "verify",
    "attest",
    "verify-attestation",
    "triangulate",
    "generate",
    "attach signature",
    "download",
    "copy",
    "clean",
    "tree",
];

/// The long flags a `--help` text lists (cosign's `    --flag=default:` and `--flag type`
/// lines, clap's `      --flag <VALUE>` lines).
fn help_flags(help: &str) -> std::collections::BTreeSet<String> {
    help.lines()
        .filter_map(|l| {
            let t = l.trim_start();
            let t = t
                .strip_prefix('-')
                .filter(|r| r.len() > 2 && r.as_bytes()[1] == b',')
                .map_or(t, |r| r[2..].trim_start());
            let name: String = t
                .strip_prefix("--")?
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            (!name.is_empty() && name != "help").then(|| format!("--{name}"))
        })
        .collect()
}

/// Every flag of cosign v3's shared commands is taken by `sigstack` with cosign's meaning
/// or listed, with its reason, in services/client/cosign-unsupported-flags.tsv; nothing
/// listed there is taken; and the README's table is that file.
pub fn cosign_flag_parity() {
    let root = crate::keyless::workspace();
    let file = std::fs::read_to_string(root.join("services/client/cosign-unsupported-flags.tsv"))
        .expect("the unsupported-flags file");
    let mut listed = std::collections::BTreeSet::new();
    let mut table =
        String::from("| cosign flag | commands | why sigstack does not take it |\n|---|---|---|\n");
    for line in file
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let mut parts = line.split('\t');
        let (flag, commands, reason) = (
            parts.next().expect("flag"),
            parts.next().expect("commands"),
            parts.next().expect("reason"),
        );
        assert!(parts.next().is_none(), "three columns: {line}");
        let cmds: Vec<&str> = if commands == "*" {
            SHARED_COMMANDS.to_vec()
        } else {
            commands.split(',').collect()
        };
        for c in &cmds {
            assert!(
                SHARED_COMMANDS.contains(c),
                "{c} is not a shared command: {line}"
            );
            listed.insert((c.to_string(), flag.to_string()));
        }
        let shown = if commands == "*" {
            "all".to_string()
        } else {
            commands.replace(',', ", ")
        };
        table.push_str(&format!("| `{flag}` | {shown} | {reason} |\n"));
    }
    let cosign = Cosign::v3(&std::env::temp_dir().join("sigstack-flag-parity"));
    let ours = Sigstack::new(&std::env::temp_dir().join("sigstack-flag-parity"));
    let mut problems = Vec::new();
    for cmd in SHARED_COMMANDS {
        let words: Vec<&str> = cmd.split(' ').collect();
        let theirs = help_flags(&cosign.run(&with(&words, &["--help"])).stdout);
        let o = ours.run(&with(&words, &["--help"]));
        assert!(o.ok(), "sigstack {cmd} --help: {o}");
        let mine = help_flags(&o.stdout);
        assert!(!theirs.is_empty(), "cosign {cmd} --help lists flags");
        for f in &theirs {
            let is_listed = listed.contains(&(cmd.to_string(), f.clone()));
            match (mine.contains(f), is_listed) {
                (true, true) => {
                    problems.push(format!("{cmd} {f}: taken, yet listed as unsupported"))
                }
                (false, false) => problems.push(format!("{cmd} {f}: neither taken nor listed")),
                _ => {}
            }
        }
        for (c, f) in &listed {
            if c == cmd && !theirs.contains(f) {
                problems.push(format!("{cmd} {f}: listed, but cosign has no such flag"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "flag parity with cosign v3:\n{}",
        problems.join("\n")
    );
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README");
    assert!(
        readme.contains(&table),
        "the README's table of unsupported cosign flags differs from the file; it should read:\n{table}"
    );
}
