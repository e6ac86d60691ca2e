//! The admission test's parts: AdmissionReview requests, the webhook process over TLS,
//! its certificate, upstream's policy documents pointed at the test's stack, and the
//! assertions on answers.

use crate::cosign::go_tool;
use crate::cosign_interop::{Stack, with};
use crate::keyless::{Killed, wait_for};
use crate::support::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One of policy-controller's documents, pointed at this stack: its `**demo**` glob
/// replaced, its name suffixed, its Kubernetes identities replaced by the stack's and its
/// public keys by `key`.
pub(crate) struct Template<'a> {
    pub(crate) upstream: &'a Path,
    pub(crate) st: &'a Stack,
    pub(crate) key: &'a str,
}

impl Template<'_> {
    pub(crate) fn write(&self, file: &str, out: &Path, tag: &str, glob: &str, ours: bool) {
        let text = std::fs::read_to_string(self.upstream.join("e2e").join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(text.contains("\"**demo**\""), "{file} changed upstream");
        let mut text = text
            .replace("\"**demo**\"", &format!("\"{glob}\""))
            .replacen(
                "metadata:\n  name: ",
                &format!("metadata:\n  name: {tag}-"),
                1,
            );
        if ours {
            let issuer = format!("'^{}$'", regex::escape(&self.st.oidc));
            let subject = format!("'^{}$'", regex::escape(&self.st.me));
            text = text.replace(".*kubernetes.default.*", &issuer).replace(
                ".*kubernetes.io/namespaces/default/serviceaccounts/default",
                &subject,
            );
            let pem =
                regex::Regex::new("(?s)-----BEGIN PUBLIC KEY-----.*?-----END PUBLIC KEY-----")
                    .expect("re");
            let ours = self.key.trim().replace('\n', "\n        ");
            text = pem.replace_all(&text, ours.as_str()).into_owned();
        }
        std::fs::write(out.join(format!("{tag}.yaml")), text).expect("w");
    }
}

pub(crate) fn review(kind: &str, object: Value, uid: &str) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": if kind == "Pod" { "" } else { "apps" }, "version": "v1", "kind": kind},
            "resource": {"group": "", "version": "v1", "resource": format!("{}s", kind.to_lowercase())},
            "namespace": "team",
            "operation": "CREATE",
            "userInfo": {"username": "dev"},
            "object": object,
            "dryRun": false,
        }
    })
}

pub(crate) fn pod(containers: &[&str], init: &[&str], ephemeral: &[&str]) -> Value {
    let list = |images: &[&str], prefix: &str| {
        images
            .iter()
            .enumerate()
            .map(|(i, im)| json!({"name": format!("{prefix}{i}"), "image": im}))
            .collect::<Vec<_>>()
    };
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "team"},
        "spec": {
            "containers": list(containers, "c"),
            "initContainers": list(init, "i"),
            "ephemeralContainers": list(ephemeral, "e"),
        }
    })
}

/// A running webhook.
pub(crate) struct Webhook {
    _proc: Killed,
    pub(crate) url: String,
    pub(crate) http: reqwest::Client,
}

impl Webhook {
    pub(crate) fn start(
        st: &Stack,
        dir: &Path,
        policies: &Path,
        tls: &(PathBuf, PathBuf, PathBuf),
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let port = free_port();
        std::fs::create_dir_all(dir).expect("dir");
        let child = Command::new(env!("CARGO_BIN_EXE_sigstackd"))
            .args(["admission", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--tls-cert")
            .arg(&tls.1)
            .arg("--tls-key")
            .arg(&tls.2)
            .arg("--policies")
            .arg(policies)
            .args(["--tuf-mirror", &st.tuf, "--tuf-root", &st.root])
            .args(extra)
            .env("TUF_ROOT", dir.join("tuf"))
            .env("HOME", dir)
            .env("SIGSTACK_CUE", go_tool("SIGSTACK_CUE"))
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("admission.log")).expect("log"))
            .spawn()
            .expect("sigstackd admission");
        let mut proc = Killed::new(child);
        wait_for("the admission webhook", || {
            assert!(
                proc.try_wait().is_none(),
                "the webhook exited: {}",
                std::fs::read_to_string(dir.join("admission.log")).unwrap_or_default()
            );
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        let ca =
            reqwest::Certificate::from_pem(&std::fs::read(&tls.0).expect("cert")).expect("pem");
        let http = reqwest::Client::builder()
            .add_root_certificate(ca)
            .build()
            .expect("client");
        Self {
            _proc: proc,
            url: format!("https://localhost:{port}"),
            http,
        }
    }

    pub(crate) async fn call(&self, path: &str, body: &Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .expect("the webhook answers over TLS");
        assert_eq!(r.status(), 200, "{path}");
        r.json().await.expect("json")
    }

    /// The response to a review of `object`.
    pub(crate) async fn validate(&self, kind: &str, object: Value) -> Value {
        let uid = format!("uid-{}", rand::random::<u32>());
        let v = self.call("/validate", &review(kind, object, &uid)).await;
        assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(v["response"]["uid"], uid, "{v}");
        v["response"].clone()
    }
}

/// A CA (what a ValidatingWebhookConfiguration's caBundle holds) and the webhook's
/// certificate from it: (CA, certificate, key).
pub(crate) fn tls_pair(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let f = |n: &str| dir.join(n);
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(&with(
        &["req", "-x509"],
        &with(
            &ec,
            &[
                "-days",
                "1",
                "-subj",
                "/CN=webhook CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
            ],
        ),
    ));
    openssl(&with(
        &["req"],
        &with(
            &ec,
            &[
                "-subj",
                "/CN=localhost",
                "-keyout",
                "tls.key",
                "-out",
                "tls.csr",
            ],
        ),
    ));
    std::fs::write(f("ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n").expect("w");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "tls.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext",
        "-out",
        "tls.crt",
    ]);
    (f("ca.crt"), f("tls.crt"), f("tls.key"))
}

pub(crate) fn allowed(r: &Value, what: &str) {
    assert_eq!(r["allowed"], true, "{what} should be admitted: {r}");
}

pub(crate) fn denied(r: &Value, needle: &str, what: &str) {
    assert_eq!(r["allowed"], false, "{what} should be denied: {r}");
    assert_eq!(r["status"]["code"], 403, "{what}: {r}");
    let m = r["status"]["message"].as_str().unwrap_or_default();
    eprintln!("denied, {what}: {m}");
    assert!(
        m.contains(needle),
        "{what}: expected {needle:?} in the message: {m}"
    );
}

pub(crate) fn warned(r: &Value, needle: &str) -> bool {
    r["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|w| w.as_str().is_some_and(|w| w.contains(needle)))
}

pub(crate) fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64")
}

pub(crate) fn go_tool_dir(var: &str) -> PathBuf {
    let p = std::env::var_os(var).map(PathBuf::from).unwrap_or_default();
    assert!(
        p.is_dir(),
        "{var} does not name policy-controller's documents: run ./scripts/test, or eval \"$(scripts/go-tools)\" first"
    );
    p
}

pub(crate) fn upstream_copy(dir: &Path, file: &str) -> PathBuf {
    let d = dir.join("upstream-copy/e2e");
    std::fs::create_dir_all(&d).expect("dir");
    d.join(file)
}

/// Where the policies point: the stack, the registry, a dead registry, the keys.
pub(crate) struct Site<'a> {
    pub(crate) st: &'a Stack,
    pub(crate) dir: &'a Path,
    pub(crate) upstream: &'a Path,
    pub(crate) reg: &'a str,
    pub(crate) dead: &'a str,
    pub(crate) public: &'a str,
    pub(crate) kms_key: &'a str,
    pub(crate) kms_env: &'a [(&'a str, &'a str); 4],
}

/// policy-controller's documents pointed at the test's images (and a few of our own),
/// checked with `--check`, as is upstream's whole end-to-end set: (policies, secrets).
pub(crate) fn write_policies(s: &Site<'_>) -> (PathBuf, PathBuf) {
    let Site {
        st,
        dir,
        upstream,
        reg,
        dead,
        public,
        kms_key,
        kms_env,
    } = *s;
    // policy-controller's documents, pointed at these images
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies).expect("dir");
    let t = Template {
        upstream,
        st,
        key: public,
    };
    t.write(
        "cip-keyless.yaml",
        &policies,
        "keyless",
        &format!("{reg}/kl/**"),
        true,
    );
    t.write(
        "cip-keyless-with-identities-mismatch.yaml",
        &policies,
        "mismatch",
        &format!("{reg}/mismatch/**"),
        false,
    );
    t.write(
        "cip-key.yaml",
        &policies,
        "key",
        &format!("{reg}/key/**"),
        true,
    );
    t.write(
        "cip-key.yaml",
        &policies,
        "wrongkey",
        &format!("{reg}/wrongkey/**"),
        false,
    );
    t.write(
        "cip-keyless-with-attestations-rego.yaml",
        &policies,
        "att",
        &format!("{reg}/att/**"),
        true,
    );
    t.write(
        "cip-key-with-attestations.yaml",
        &policies,
        "keyatt",
        &format!("{reg}/keyatt/**"),
        true,
    );
    t.write(
        "cip-keyless-warn.yaml",
        &policies,
        "warn",
        &format!("{reg}/warn/**"),
        true,
    );
    t.write(
        "cip-static-pass.yaml",
        &policies,
        "static-pass",
        &format!("{reg}/static/pass*"),
        false,
    );
    t.write(
        "cip-static-fail.yaml",
        &policies,
        "static-fail",
        &format!("{reg}/static/fail*"),
        false,
    );
    let src =
        std::fs::read_to_string(upstream.join("e2e/cip-keyless-with-source.yaml")).expect("src");
    assert!(src.contains("registry.local:5000/policy-controller/demo"));
    std::fs::write(
        upstream_copy(dir, "cip-keyless-with-source.yaml"),
        src.replace(
            "registry.local:5000/policy-controller/demo",
            &format!("{reg}/sigs/demo"),
        ),
    )
    .expect("w");
    let tsrc = Template {
        upstream: &dir.join("upstream-copy"),
        st,
        key: public,
    };
    tsrc.write(
        "cip-keyless-with-source.yaml",
        &policies,
        "source",
        &format!("{reg}/sourced/**"),
        true,
    );
    t.write(
        "cip-keyless.yaml",
        &policies,
        "dead",
        &format!("{dead}/**"),
        true,
    );
    t.write(
        "cip-key-secret.yaml",
        &policies,
        "secret",
        &format!("{reg}/secret/**"),
        false,
    );
    let example = std::fs::read_to_string(upstream.join("examples/signed-by-aws-kms-key.yaml"))
        .expect("example");
    let kms_placeholder = "awskms:///arn:aws:kms:<< region >>:<< account id >>:key/<< key id >>";
    assert!(
        example.contains(kms_placeholder) && example.contains("glob: \"**\""),
        "the upstream example changed"
    );
    std::fs::write(
        policies.join("kms.yaml"),
        example
            .replace(kms_placeholder, kms_key)
            .replace("glob: \"**\"", &format!("glob: \"{reg}/kms/**\"")),
    )
    .expect("w");
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(secrets.join("cip-secret")).expect("dir");
    std::fs::write(secrets.join("cip-secret/cosign.pub"), public).expect("w");
    // a Secret volume's bookkeeping entries are not data
    std::fs::create_dir_all(secrets.join("cip-secret/..2026_12_07")).expect("dir");
    for (name, glob, format) in [
        ("fmt-simplesigning", "fmt/bundle", "simplesigning"),
        ("fmt-bundle", "fmt/legacy", "bundle"),
    ] {
        std::fs::write(
            policies.join(format!("{name}.yaml")),
            format!(
                "apiVersion: policy.sigstore.dev/v1beta1\nkind: ClusterImagePolicy\nmetadata: {{name: {name}}}\nspec:\n  images: [{{glob: \"{reg}/{glob}*\"}}]\n  authorities:\n  - keyless:\n      identities: [{{issuer: \"{}\", subject: \"{}\"}}]\n    signatureFormat: {format}\n",
                st.oidc, st.me
            ),
        )
        .expect("w");
    }

    // upstream's whole set through --check: what loads, and what is refused by name
    let check = Command::new(env!("CARGO_BIN_EXE_sigstackd"))
        .args(["admission", "--check", "--policies"])
        .arg(upstream.join("e2e"))
        .env("SIGSTACK_CUE", go_tool("SIGSTACK_CUE"))
        .output()
        .expect("check");
    let report = String::from_utf8_lossy(&check.stdout).to_string();
    assert!(
        !check.status.success(),
        "some upstream files use features we refuse: {report}"
    );
    for (file, verdict) in [
        ("cip-keyless.yaml", "ok"),
        ("cip-key-and-keyless-ignore-sct.yaml", "ok"),
        ("cip-key-tsa.yaml", "ok"),
        ("cip-keyless-with-attestations.yaml", "ok"),
        ("cip-key-with-attestations-rego.yaml", "ok"),
        ("cip-key-secret.yaml", "--secrets-dir"),
        ("cip-match-resource-label.yaml", "spec.match"),
        ("cip-policy-from-url.yaml", "spec.policy"),
        ("cip-key-hash-algorithm.yaml", "hashAlgorithm"),
    ] {
        let line = report
            .lines()
            .find(|l| l.contains(&format!("/{file}:")))
            .unwrap_or_else(|| panic!("{file} not in: {report}"));
        assert!(line.contains(verdict), "{file}: {line}");
    }
    let ok_count = report.lines().filter(|l| l.contains(": ok: ")).count();
    assert!(ok_count >= 15, "{report}");
    eprintln!("\npolicy-controller's e2e policies through --check:\n{report}");
    let check = Command::new(env!("CARGO_BIN_EXE_sigstackd"))
        .args(["admission", "--check", "--policies"])
        .arg(&policies)
        .arg("--secrets-dir")
        .arg(&secrets)
        .envs(kms_env.iter().copied())
        .env("SIGSTACK_CUE", go_tool("SIGSTACK_CUE"))
        .output()
        .expect("check");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    (policies, secrets)
}
