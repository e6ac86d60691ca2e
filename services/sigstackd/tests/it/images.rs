//! Container images with the `sigstack` binary against Debian's `docker-registry` on
//! loopback and `sigstackd dev`: keyless and key-based `sign` → `verify` in both cosign
//! layouts (referrer bundles through the tag-schema fallback, which this registry needs,
//! and the legacy `.sig` image); a legacy signature pushed by an independent script from a
//! sigstore-python bundle; attestations with predicate policies; signatures for another
//! digest, tampered layers, wrong identities and missing images refused plainly; and
//! `triangulate`, `generate`, `attach`, `download`, `copy`, `clean` and `tree`.

use crate::client::{Out, Sigstack, json_of, p};
use crate::keyless::{Killed, dev_stack, run, venv, wait_for, workspace};
use crate::support::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

/// Debian's docker-registry on a free loopback port, deletes enabled.
pub fn registry(dir: &Path) -> (Killed, String) {
    registry_with(dir, "")
}

/// The same, with extra configuration (e.g. `auth:`), data and logs under `dir`.
fn registry_with(dir: &Path, extra: &str) -> (Killed, String) {
    std::fs::create_dir_all(dir).expect("dir");
    let bin = Path::new("/usr/bin/docker-registry");
    assert!(
        bin.exists(),
        "Debian's docker-registry is not installed: run ./scripts/test (it installs the package)"
    );
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let config = dir.join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog: {{level: warn}}\nstorage: {{filesystem: {{rootdirectory: {}}}, delete: {{enabled: true}}}}\nhttp: {{addr: {addr}}}\n{extra}",
            dir.join("registry-data").display()
        ),
    )
    .expect("config");
    let child = Command::new(bin)
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("registry.log")).expect("log"))
        .spawn()
        .expect("docker-registry");
    let url = format!("http://{addr}/v2/");
    wait_for("docker-registry", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && (plain_http::blocking_get_ok(&url) || !extra.is_empty())
    });
    (Killed::new(child), addr)
}

mod plain_http {
    /// A plain GET over a socket (the test's async runtime is busy elsewhere).
    pub fn blocking_get_ok(url: &str) -> bool {
        use std::io::{Read, Write};
        let rest = url.trim_start_matches("http://");
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let Ok(mut s) = std::net::TcpStream::connect(host) else {
            return false;
        };
        let _ = write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
        let mut buf = String::new();
        let _ = s.read_to_string(&mut buf);
        buf.starts_with("HTTP/1.1 200") || buf.starts_with("HTTP/1.0 200")
    }
}

fn oci(args: &[&str]) -> (bool, String) {
    run(Command::new("python3")
        .arg(workspace().join("tests/interop/registry/oci.py"))
        .args(args))
}

pub fn oci_ok(args: &[&str]) -> String {
    let (ok, out) = oci(args);
    assert!(ok, "oci.py {args:?}: {out}");
    out.trim().to_string()
}

fn expect_fail(o: &Out, code: i32, needle: &str, what: &str) {
    assert_eq!(o.code, Some(code), "{what}: {o}");
    assert!(
        o.stderr.contains(needle),
        "{what}: expected {needle:?} in: {o}"
    );
}

pub async fn images_sign_verify_and_manage_signatures() {
    let dir = temp_dir("images");
    let (_stack, stack) = dev_stack(&dir.join("stack"), None);
    let (_registry, reg) = registry(&dir);
    let s = |ptr: &str| stack_str(&stack, ptr);
    let (oidc, me) = (s("/services/oidc/url"), s("/services/oidc/email"));
    let cli = Sigstack::new(&dir.join("home"));
    let o = cli.run(&[
        "initialize",
        "--mirror",
        &s("/services/tuf/url"),
        "--root",
        &s("/services/tuf/root"),
    ]);
    assert!(o.ok(), "{o}");
    let (ok, token) = run(Command::new(env!("CARGO_BIN_EXE_sigstackd"))
        .args(["dev-token", "--data-dir"])
        .arg(dir.join("stack")));
    assert!(ok, "{token}");
    let token = token.trim().to_string();
    let tok = [("SIGSTORE_ID_TOKEN", token.as_str())];
    let digest = oci_ok(&["push-image", &reg, "demo/app", "v1"]);
    let by_tag = format!("{reg}/demo/app:v1");
    let image = format!("{reg}/demo/app@{digest}");
    let keyless_id = |extra: &[&str], img: &str| {
        let mut args = vec![
            "verify",
            "--certificate-identity",
            me.as_str(),
            "--certificate-oidc-issuer",
            oidc.as_str(),
        ];
        args.extend_from_slice(extra);
        args.push(img);
        cli.run(&args)
    };

    // nothing signed yet
    expect_fail(
        &keyless_id(&[], &image),
        1,
        "no signatures found",
        "unsigned",
    );
    let o = cli.run(&["tree", &image]);
    assert!(o.ok() && o.stdout.contains("nothing: no signatures"), "{o}");
    // a digest the registry does not have is not "unsigned": it is not there
    let absent = format!(
        "{}@sha256:{}",
        image.split('@').next().expect("repo"),
        "0".repeat(64)
    );
    expect_fail(
        &keyless_id(&[], &absent),
        3,
        "no such image",
        "an absent digest",
    );
    let o = cli.run(&["sign", "--yes", "--identity-token", "x", &absent]);
    expect_fail(&o, 3, "no such image", "signing an absent digest");

    // keyless, cosign v3 layout (bundle referrer; this registry has no referrers API, so
    // the tag-schema fallback index holds it)
    let o = cli.run_env(&["sign", "--yes", &by_tag], &tok);
    assert!(o.ok(), "keyless sign: {o}");
    assert!(
        o.stderr.contains("tags are mutable"),
        "a tag is resolved with a warning: {o}"
    );
    let fallback = digest.replacen(':', "-", 1);
    let index: Value =
        serde_json::from_str(&oci_ok(&["get-manifest", &reg, "demo/app", &fallback]))
            .expect("index");
    assert_eq!(
        index["manifests"][0]["artifactType"],
        "application/vnd.dev.sigstore.bundle.v0.3+json"
    );
    let o = keyless_id(&[], &image);
    assert!(o.ok(), "keyless verify: {o}");
    let payloads: Value = serde_json::from_str(&o.stdout).expect("payloads");
    assert_eq!(
        payloads[0]["subject"][0]["digest"]["sha256"],
        digest.trim_start_matches("sha256:")
    );
    assert!(o.stderr.contains("checks were performed"), "{o}");
    let o = keyless_id(&[], &by_tag);
    assert!(
        o.ok() && o.stderr.contains("tags are mutable"),
        "verify by tag warns: {o}"
    );
    let o = cli.run(&[
        "verify",
        "--certificate-identity",
        "mallory@example.test",
        "--certificate-oidc-issuer",
        &oidc,
        &image,
    ]);
    expect_fail(&o, 1, "does not match", "wrong identity");

    // key-based, legacy layout, with annotations
    let keys = dir.join("cosign");
    let pw = [("COSIGN_PASSWORD", "pw")];
    assert!(
        cli.run_env(&["generate-key-pair", "--output-key-prefix", p(&keys)], &pw)
            .ok()
    );
    let (key, pubkey) = (format!("{}.key", p(&keys)), format!("{}.pub", p(&keys)));
    let o = cli.run_env(
        &[
            "sign",
            "--key",
            &key,
            "--new-bundle-format=false",
            "-a",
            "env=prod",
            &image,
        ],
        &pw,
    );
    assert!(o.ok(), "key sign (legacy): {o}");
    let sig_tag = format!("{fallback}.sig");
    let m: Value =
        serde_json::from_str(&oci_ok(&["get-manifest", &reg, "demo/app", &sig_tag])).expect("sig");
    let layer = &m["layers"][0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    assert!(
        layer["annotations"]["dev.sigstore.cosign/bundle"].is_string(),
        "{layer}"
    );
    let o = cli.run(&["verify", "--key", &pubkey, "-a", "env=prod", &image]);
    assert!(o.ok(), "key verify: {o}");
    assert!(o.stdout.contains("\"env\":\"prod\""), "{o}");
    expect_fail(
        &cli.run(&["verify", "--key", &pubkey, "-a", "env=dev", &image]),
        1,
        "env=dev",
        "another annotation",
    );
    let other = dir.join("other");
    assert!(
        cli.run_env(
            &["generate-key-pair", "--output-key-prefix", p(&other)],
            &pw
        )
        .ok()
    );
    expect_fail(
        &cli.run(&["verify", "--key", &format!("{}.pub", p(&other)), &image]),
        1,
        "no signature",
        "another key",
    );

    // a signature in cosign's legacy layout pushed by an independent script, its
    // signature, certificate and log entry from sigstore-python
    let digest2 = oci_ok(&["push-image", &reg, "demo/legacy", "v1"]);
    let image2 = format!("{reg}/demo/legacy@{digest2}");
    let payload = dir.join("payload.json");
    oci_ok(&["payload", &reg, "demo/legacy", &digest2, p(&payload)]);
    let py_bundle = dir.join("payload.sigstore.json");
    let (ok, out) = run(Command::new(venv().join("bin/sigstore"))
        .args([
            "--trust-config",
            &s("/trust_config"),
            "sign",
            // cosign's legacy layout carries a signed entry timestamp: Rekor v1's
            "--rekor-version",
            "1",
            "--identity-token",
            &token,
            "--bundle",
        ])
        .arg(&py_bundle)
        .arg(&payload));
    assert!(ok, "{out}");
    oci_ok(&[
        "cosign-legacy-from-bundle",
        &reg,
        "demo/legacy",
        &digest2,
        p(&payload),
        p(&py_bundle),
        &s("/services/ca/chain"),
    ]);
    let o = keyless_id(&[], &image2);
    assert!(
        o.ok(),
        "the independently pushed legacy signature verifies: {o}"
    );
    // the same signature moved to another image's tag names the other digest
    let legacy_tag = format!("{}.sig", digest2.replacen(':', "-", 1));
    let digest3 = oci_ok(&["push-image", &reg, "demo/legacy", "v2"]);
    oci_ok(&[
        "copy-manifest",
        &reg,
        "demo/legacy",
        &legacy_tag,
        &format!("{}.sig", digest3.replacen(':', "-", 1)),
    ]);
    expect_fail(
        &keyless_id(&[], &format!("{reg}/demo/legacy@{digest3}")),
        1,
        "another image",
        "a signature for another digest",
    );
    // a tampered layer
    oci_ok(&["tamper-layer", &reg, "demo/legacy", &legacy_tag]);
    expect_fail(
        &keyless_id(&[], &image2),
        1,
        "no signature",
        "tampered signature",
    );

    // attestations
    let predicate = dir.join("provenance.json");
    std::fs::write(
        &predicate,
        br#"{"builder":{"id":"https://ci.example.test"},"buildType":"make"}"#,
    )
    .expect("w");
    let o = cli.run_env(
        &[
            "attest",
            "--yes",
            "--predicate",
            p(&predicate),
            "--type",
            "slsaprovenance",
            &image,
        ],
        &tok,
    );
    assert!(o.ok(), "attest: {o}");
    let policy = dir.join("policy.json");
    std::fs::write(&policy, br#"{"builder":{"id":"https://ci.example.test"}}"#).expect("w");
    let va = |extra: &[&str]| {
        let mut args = vec![
            "verify-attestation",
            "--certificate-identity",
            me.as_str(),
            "--certificate-oidc-issuer",
            oidc.as_str(),
        ];
        args.extend_from_slice(extra);
        args.push(image.as_str());
        cli.run(&args)
    };
    let o = va(&["--type", "slsaprovenance", "--policy", p(&policy)]);
    assert!(o.ok(), "verify-attestation: {o}");
    let st: Value =
        serde_json::from_str(o.stdout.lines().next().expect("line")).expect("statement");
    assert_eq!(st["predicate"]["buildType"], "make");
    expect_fail(
        &va(&["--type", "spdx"]),
        1,
        "is not",
        "another predicate type",
    );
    std::fs::write(
        &policy,
        br#"{"builder":{"id":"https://evil.example.test"}}"#,
    )
    .expect("w");
    expect_fail(
        &va(&["--policy", p(&policy)]),
        1,
        "policy",
        "a failing policy",
    );
    // signatures are not attestations and the reverse
    let o = keyless_id(&[], &image);
    assert!(o.ok(), "{o}");

    // triangulate, generate, attach (the signature made elsewhere, read from stdin)
    let o = cli.run(&["triangulate", &image]);
    assert!(o.ok(), "{o}");
    assert_eq!(o.stdout.trim(), format!("{reg}/demo/app:{sig_tag}"));
    let o = cli.run(&["triangulate", "--type", "attestation", &image]);
    assert_eq!(o.stdout.trim(), format!("{reg}/demo/app:{fallback}.att"));
    let digest4 = oci_ok(&["push-image", &reg, "demo/attach", "v1"]);
    let image4 = format!("{reg}/demo/attach@{digest4}");
    let o = cli.run(&["generate", &image4]);
    assert!(o.ok(), "{o}");
    let generated = dir.join("generated.json");
    std::fs::write(&generated, &o.stdout).expect("w");
    let v: Value = serde_json::from_str(&o.stdout).expect("payload");
    assert_eq!(
        v["critical"]["image"]["docker-manifest-digest"],
        digest4.as_str()
    );
    let sig = dir.join("generated.sig");
    let o = cli.run_env(
        &[
            "sign-blob",
            "--key",
            &key,
            "--output-signature",
            p(&sig),
            p(&generated),
        ],
        &pw,
    );
    assert!(o.ok(), "{o}");
    let mut c = cli.cmd();
    c.args([
        "attach",
        "signature",
        "--payload",
        p(&generated),
        "--signature",
        "-",
        &image4,
    ])
    .stdin(std::fs::File::open(&sig).expect("sig"));
    let o = run(&mut c);
    assert!(o.0, "attach signature: {}", o.1);
    let o = cli.run(&["verify", "--key", &pubkey, &image4]);
    assert!(
        o.ok(),
        "the attached signature verifies (its log entry looked up): {o}"
    );
    // attaching a payload for another image is refused before anything is pushed
    let o = cli.run(&[
        "attach",
        "signature",
        "--payload",
        p(&generated),
        "--signature",
        p(&sig),
        &image,
    ]);
    expect_fail(&o, 3, "another image", "attach to the wrong image");

    // download
    let o = cli.run(&["download", "signature", &image]);
    assert!(o.ok(), "{o}");
    let lines: Vec<Value> = o
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 2, "one legacy, one bundle: {o}");
    assert!(
        lines
            .iter()
            .any(|l| l["Base64Signature"].is_string() && l["Payload"].is_string())
    );
    let o = cli.run(&["download", "attestation", &image]);
    assert!(o.ok(), "{o}");
    let env: Value = serde_json::from_str(o.stdout.lines().next().expect("line")).expect("dsse");
    assert_eq!(env["payloadType"], "application/vnd.in-toto+json");

    // tree
    let o = cli.run(&["--output", "json", "tree", &image]);
    assert!(o.ok(), "{o}");
    let t = json_of(&o);
    assert_eq!(t["signatures"].as_array().map(Vec::len), Some(1));
    assert_eq!(t["referrers"].as_array().map(Vec::len), Some(2), "{t}");

    // copy with signatures and attestations; they verify at the destination
    let copy = format!("{reg}/mirror/app:v1");
    let o = cli.run(&["copy", &image, &copy]);
    assert!(o.ok(), "copy: {o}");
    let copied = format!("{reg}/mirror/app@{digest}");
    let o = keyless_id(&[], &copied);
    assert!(o.ok(), "verify the copy: {o}");
    let o = cli.run(&["verify", "--key", &pubkey, &copied]);
    assert!(
        o.ok() && o.stderr.contains("signed there and copied here"),
        "{o}"
    );
    let o = cli.run(&[
        "verify-attestation",
        "--certificate-identity",
        &me,
        "--certificate-oidc-issuer",
        &oidc,
        &copied,
    ]);
    assert!(o.ok(), "{o}");

    // clean: signatures first, then everything
    let o = cli.run(&["clean", "--type", "signature", &copied]);
    assert!(o.ok(), "clean: {o}");
    expect_fail(
        &keyless_id(&[], &copied),
        1,
        "no signatures found",
        "cleaned",
    );
    let o = cli.run(&[
        "verify-attestation",
        "--certificate-identity",
        &me,
        "--certificate-oidc-issuer",
        &oidc,
        &copied,
    ]);
    assert!(o.ok(), "attestations stay: {o}");
    assert!(cli.run(&["clean", &copied]).ok());
    let o = cli.run(&["--output", "json", "tree", &copied]);
    let t = json_of(&o);
    assert_eq!(t["referrers"].as_array().map(Vec::len), Some(0), "{t}");
    // the source is untouched
    assert!(keyless_id(&[], &image).ok());

    // a multi-platform index, signed recursively
    let index_digest = oci_ok(&["push-index", &reg, "demo/multi", "v1"]);
    let o = cli.run_env(
        &[
            "sign",
            "--key",
            &key,
            "--recursive",
            &format!("{reg}/demo/multi@{index_digest}"),
        ],
        &pw,
    );
    assert!(o.ok(), "{o}");
    let idx: Value = serde_json::from_str(&oci_ok(&[
        "get-manifest",
        &reg,
        "demo/multi",
        &index_digest,
    ]))
    .expect("index");
    for m in idx["manifests"].as_array().expect("manifests") {
        let child = format!("{reg}/demo/multi@{}", m["digest"].as_str().expect("digest"));
        let o = cli.run(&["verify", "--key", &pubkey, &child]);
        assert!(o.ok(), "each platform image is signed: {o}");
    }

    // --upload=false with nothing to write is refused before signing
    let o = cli.run_env(&["sign", "--key", &key, "--upload=false", &image4], &pw);
    expect_fail(
        &o,
        3,
        "nothing was signed",
        "--upload=false without outputs",
    );
    // --upload=false writes files and pushes nothing
    let before = oci_ok(&["tags", &reg, "demo/attach"]);
    let (osig, ocert) = (dir.join("up.sig"), dir.join("up.crt"));
    let o = cli.run_env(
        &[
            "sign",
            "--yes",
            "--upload=false",
            "--output-signature",
            p(&osig),
            "--output-certificate",
            p(&ocert),
            &image4,
        ],
        &tok,
    );
    assert!(o.ok(), "{o}");
    assert!(
        std::fs::read_to_string(&ocert)
            .expect("crt")
            .contains("BEGIN CERTIFICATE")
    );
    assert!(!std::fs::read_to_string(&osig).expect("sig").is_empty());
    assert_eq!(
        oci_ok(&["tags", &reg, "demo/attach"]),
        before,
        "nothing pushed"
    );

    // a registry that needs credentials: Docker's config.json and a credential helper
    let authed = dir.join("authed");
    std::fs::create_dir_all(&authed).expect("dir");
    let (ok, hash) = run(Command::new(venv().join("bin/python")).args([
        "-c",
        "import bcrypt,sys; print(bcrypt.hashpw(b's3cret', bcrypt.gensalt(rounds=4)).decode())",
    ]));
    assert!(ok, "{hash}");
    std::fs::write(authed.join("htpasswd"), format!("ci:{}\n", hash.trim())).expect("w");
    let (_authed_registry, reg2) = registry_with(
        &authed,
        &format!(
            "auth: {{htpasswd: {{realm: sigstack-test, path: {}}}}}\n",
            authed.join("htpasswd").display()
        ),
    );
    let private = format!("{reg2}/private/app:v1");
    let o = cli.run(&["verify", "--key", &pubkey, &private]);
    expect_fail(&o, 3, "401", "no credentials");
    let docker = dir.join("docker");
    std::fs::create_dir_all(&docker).expect("dir");
    let basic = |user_pass: &str| {
        serde_json::json!({"auths": {reg2.clone(): {"auth": b64(user_pass.as_bytes())}}})
            .to_string()
    };
    std::fs::write(docker.join("config.json"), basic("ci:s3cret")).expect("w");
    let docker_env = [("DOCKER_CONFIG", p(&docker)), ("COSIGN_PASSWORD", "pw")];
    let o = cli.run_env(&["copy", &image, &private], &docker_env);
    assert!(
        o.ok(),
        "copy into the private registry with config.json credentials: {o}"
    );
    let o = cli.run_env(&["verify", "--key", &pubkey, &private], &docker_env);
    assert!(o.ok(), "{o}");
    std::fs::write(docker.join("config.json"), basic("ci:wrong")).expect("w");
    let o = cli.run_env(&["verify", "--key", &pubkey, &private], &docker_env);
    expect_fail(&o, 3, "401", "wrong credentials");
    // a credential helper (docker-credential-<name> get, server on stdin)
    let helpers = dir.join("helpers");
    std::fs::create_dir_all(&helpers).expect("dir");
    let helper = helpers.join("docker-credential-sigstacktest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread server\n[ \"$1\" = get ] && [ \"$server\" = \"{reg2}\" ] && echo '{{\"ServerURL\":\"{reg2}\",\"Username\":\"ci\",\"Secret\":\"s3cret\"}}' && exit 0\necho 'credentials not found in native keychain'; exit 1\n"
        ),
    )
    .expect("w");
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    std::fs::write(
        docker.join("config.json"),
        serde_json::json!({"credHelpers": {reg2.clone(): "sigstacktest"}}).to_string(),
    )
    .expect("w");
    let path = format!(
        "{}:{}",
        p(&helpers),
        std::env::var("PATH").unwrap_or_default()
    );
    let o = cli.run_env(
        &["verify", "--key", &pubkey, &private],
        &[("DOCKER_CONFIG", p(&docker)), ("PATH", &path)],
    );
    assert!(o.ok(), "credentials from a Docker credential helper: {o}");

    // registry errors, plainly
    let o = keyless_id(&[], &format!("{reg}/demo/missing:v1"));
    expect_fail(&o, 3, "demo/missing", "a missing image");
    let dead = format!("127.0.0.1:{}/demo/app:v1", free_port());
    let o = keyless_id(&[], &dead);
    assert_eq!(o.code, Some(3), "an unreachable registry: {o}");
}
