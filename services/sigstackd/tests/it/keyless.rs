//! Keyless signing end to end with real outside clients: `sigstackd dev` (log, CT log,
//! CA) trusts a third-party OIDC issuer (PyPI `oidc-provider-mock`); sigstore-python 4.5
//! and sigstore-js each sign with a token from it, and each bundle verifies with BOTH
//! clients against the stack's exported trust files — and fails with a wrong identity,
//! a wrong issuer, or another stack's trust root. `sigstackd trust export` reproduces
//! the files `dev` writes.

use crate::support::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn venv() -> PathBuf {
    let v = std::env::var("SIGSTACK_INTEROP_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join("target/interop-venv"));
    assert!(
        v.join("bin/sigstore").exists(),
        "sigstore-python is not installed in {}: run ./scripts/test (it creates the venv from tests/interop/python/requirements.txt)",
        v.display()
    );
    v
}

pub fn js() -> PathBuf {
    let d = workspace().join("tests/interop/js");
    assert!(
        d.join("node_modules/sigstore").exists(),
        "the sigstore-js harness is not installed: run `npm ci --prefix tests/interop/js`"
    );
    d
}

pub struct Killed(Child);
impl Killed {
    pub fn new(child: Child) -> Self {
        Self(child)
    }

    /// Kills the process now (not when dropped).
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.0.try_wait().ok().flatten()
    }
}
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A process started in a process group of its own (a tracer and what it traces),
/// killed whole when dropped.
pub struct KilledGroup(Child);
impl Drop for KilledGroup {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

pub fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "{what} did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `sigstackd dev` in `dir` on free ports, also trusting `issuer`; returns the process
/// and stack.json.
pub fn dev_stack(dir: &Path, issuer: Option<&str>) -> (Killed, Value) {
    let mut args = DEV_PORTS.to_vec();
    args.extend(issuer.map(|i| ["--oidc-issuer", i]).into_iter().flatten());
    dev_stack_with(dir, &args)
}

/// Every service of `sigstackd dev` on a free port.
pub const DEV_PORTS: [&str; 18] = [
    "--log-port",
    "0",
    "--ca-port",
    "0",
    "--ctlog-port",
    "0",
    "--oidc-port",
    "0",
    "--tuf-port",
    "0",
    "--tsa-port",
    "0",
    "--log-v2-port",
    "0",
    "--witness-port",
    "0",
    "--monitor-port",
    "0",
];

/// `sigstackd dev --data-dir DIR ARGS...`, waiting for a fresh stack.json.
pub fn dev_stack_with(dir: &Path, args: &[&str]) -> (Killed, Value) {
    let (child, stack) = spawn_dev(dir, args, |c| c);
    (Killed(child), stack)
}

/// [`dev_stack_with`] with the command rewritten by `wrap` (run in a network namespace,
/// under a tracer), in a process group of its own.
pub fn dev_stack_wrapped(
    dir: &Path,
    args: &[&str],
    wrap: impl FnOnce(Command) -> Command,
) -> (KilledGroup, Value) {
    let (child, stack) = spawn_dev(dir, args, |c| {
        let mut c = wrap(c);
        std::os::unix::process::CommandExt::process_group(&mut c, 0);
        c
    });
    (KilledGroup(child), stack)
}

fn spawn_dev(dir: &Path, args: &[&str], wrap: impl FnOnce(Command) -> Command) -> (Child, Value) {
    let _ = std::fs::remove_file(dir.join("stack.json"));
    std::fs::create_dir_all(dir.parent().expect("parent")).expect("parent dir");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.with_extension("log"))
        .expect("log");
    let mut c = Command::new(env!("CARGO_BIN_EXE_sigstackd"));
    c.arg("dev")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("SIGSTACK_LOG", "warn");
    let child = wrap(c)
        .stdout(std::fs::File::create(dir.with_extension("out")).expect("stdout file"))
        .stderr(log)
        .spawn()
        .expect("sigstackd dev");
    let stack_path = dir.join("stack.json");
    wait_for("sigstackd dev", || stack_path.exists());
    let stack: Value =
        serde_json::from_slice(&std::fs::read(&stack_path).expect("stack")).expect("json");
    (child, stack)
}

pub fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("run client");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

struct Verifiers<'a> {
    venv: &'a Path,
    js: &'a Path,
    artifact: &'a Path,
}

impl Verifiers<'_> {
    fn python(
        &self,
        trust_config: &str,
        bundle: &Path,
        identity: &str,
        issuer: &str,
    ) -> (bool, String) {
        run(Command::new(self.venv.join("bin/sigstore"))
            .args([
                "--trust-config",
                trust_config,
                "verify",
                "identity",
                "--bundle",
            ])
            .arg(bundle)
            .args(["--cert-identity", identity, "--cert-oidc-issuer", issuer])
            .arg(self.artifact))
    }

    fn js(
        &self,
        trusted_root: &str,
        bundle: &Path,
        identity: &str,
        issuer: &str,
    ) -> (bool, String) {
        run(Command::new("node")
            .arg(self.js.join("verify-bundle.mjs"))
            .args(["--trusted-root", trusted_root, "--bundle"])
            .arg(bundle)
            .arg("--artifact")
            .arg(self.artifact)
            .args([
                "--certificate-identity",
                identity,
                "--certificate-oidc-issuer",
                issuer,
            ]))
    }
}

pub async fn real_clients_sign_and_verify_keylessly() {
    let venv = venv();
    let js = js();
    let dir = temp_dir("keyless");
    // the third-party issuer
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let _idp = Killed(
        Command::new(venv.join("bin/python"))
            .args(["-m", "oidc_provider_mock", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("idp.log")).expect("log"))
            .spawn()
            .expect("oidc-provider-mock"),
    );
    let discovery = format!("{issuer}/.well-known/openid-configuration");
    wait_for("oidc-provider-mock", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let http = http();
    assert_eq!(
        http.get(&discovery)
            .send()
            .await
            .expect("discovery")
            .status(),
        200
    );

    let (_stack, stack) = dev_stack(&dir.join("stack"), Some(&issuer));
    let (_other, other) = dev_stack(&dir.join("other"), Some(&issuer));
    let s = |v: &Value, k: &str| v[k].as_str().expect(k).to_string();
    let svc = |name: &str| {
        stack["services"][name]["url"]
            .as_str()
            .expect("url")
            .to_string()
    };

    let identity = "alice@example.test";
    let (ok, token) = run(Command::new(venv.join("bin/python"))
        .arg(workspace().join("../shared/tools/get_mock_token.py"))
        .args([&issuer, identity]));
    assert!(ok, "token: {token}");
    let token = token.lines().next().expect("token line").trim().to_string();

    let artifact = dir.join("artifact.txt");
    std::fs::write(&artifact, b"signed keylessly against a private sigstack\n").expect("write");
    let py_bundle = dir.join("python.sigstore.json");
    let (ok, out) = run(Command::new(venv.join("bin/sigstore"))
        .args([
            "--trust-config",
            &s(&stack, "trust_config"),
            "sign",
            "--identity-token",
            &token,
            "--bundle",
        ])
        .arg(&py_bundle)
        .arg(&artifact));
    assert!(ok, "sigstore-python sign: {out}");
    // and into the v1 log when asked (which also gives sigstore-js's entry below an index
    // above 0: sigstore-js leaves a 0 index out of its bundle, and sigstore-python then
    // refuses the bundle as malformed)
    let py_v1_bundle = dir.join("python-v1.sigstore.json");
    let (ok, out) = run(Command::new(venv.join("bin/sigstore"))
        .args([
            "--trust-config",
            &s(&stack, "trust_config"),
            "sign",
            "--rekor-version",
            "1",
        ])
        .args(["--identity-token", &token, "--bundle"])
        .arg(&py_v1_bundle)
        .arg(&artifact));
    assert!(ok, "sigstore-python sign --rekor-version 1: {out}");
    for (b, version) in [(&py_bundle, "0.0.2"), (&py_v1_bundle, "0.0.1")] {
        let v: Value = serde_json::from_slice(&std::fs::read(b).expect("bundle")).expect("json");
        assert_eq!(
            v.pointer("/verificationMaterial/tlogEntries/0/kindVersion/version"),
            Some(&serde_json::json!(version)),
            "{v}"
        );
    }
    let js_bundle = dir.join("js.sigstore.json");
    let (ok, out) = run(Command::new("node")
        .arg(js.join("sign-bundle.mjs"))
        .args([
            "--fulcio-url",
            &svc("ca"),
            "--rekor-url",
            &svc("log"),
            "--identity-token",
            &token,
            "--artifact",
        ])
        .arg(&artifact)
        .arg("--bundle")
        .arg(&js_bundle));
    assert!(ok, "sigstore-js sign: {out}");

    let v = Verifiers {
        venv: &venv,
        js: &js,
        artifact: &artifact,
    };
    let (tc, tr) = (s(&stack, "trust_config"), s(&stack, "trusted_root"));
    let (other_tc, other_tr) = (s(&other, "trust_config"), s(&other, "trusted_root"));
    for (signer, bundle) in [
        ("sigstore-python", &py_bundle),
        ("sigstore-python (v1)", &py_v1_bundle),
        ("sigstore-js", &js_bundle),
    ] {
        let (ok, out) = v.python(&tc, bundle, identity, &issuer);
        assert!(ok, "sigstore-python rejects the {signer} bundle: {out}");
        let (ok, out) = v.js(&tr, bundle, identity, &issuer);
        assert!(ok, "sigstore-js rejects the {signer} bundle: {out}");
        for (what, id, iss) in [
            ("wrong identity", "mallory@example.test", issuer.as_str()),
            ("wrong issuer", identity, "https://accounts.google.com"),
        ] {
            let (ok, out) = v.python(&tc, bundle, id, iss);
            assert!(
                !ok,
                "sigstore-python accepts the {signer} bundle with a {what}: {out}"
            );
            let (ok, out) = v.js(&tr, bundle, id, iss);
            assert!(
                !ok,
                "sigstore-js accepts the {signer} bundle with a {what}: {out}"
            );
        }
        let (ok, out) = v.python(&other_tc, bundle, identity, &issuer);
        assert!(
            !ok,
            "sigstore-python accepts the {signer} bundle under another stack's trust config: {out}"
        );
        let (ok, out) = v.js(&other_tr, bundle, identity, &issuer);
        assert!(
            !ok,
            "sigstore-js accepts the {signer} bundle under another stack's trusted root: {out}"
        );
    }

    // the stack's own issuer: `sigstackd dev-token` gives a token sigstore-python signs with
    let (ok, own) = run(Command::new(env!("CARGO_BIN_EXE_sigstackd"))
        .args(["dev-token", "--data-dir"])
        .arg(dir.join("stack")));
    assert!(ok, "dev-token: {own}");
    let own_bundle = dir.join("own.sigstore.json");
    let (ok, out) = run(Command::new(venv.join("bin/sigstore"))
        .args([
            "--trust-config",
            &tc,
            "sign",
            "--identity-token",
            own.trim(),
            "--bundle",
        ])
        .arg(&own_bundle)
        .arg(&artifact));
    assert!(
        ok,
        "sigstore-python sign with the dev issuer's token: {out}"
    );
    let (ok, out) = v.python(&tc, &own_bundle, "dev@sigstack.test", &svc("oidc"));
    assert!(ok, "{out}");
    let (ok, out) = v.js(&tr, &own_bundle, "dev@sigstack.test", &svc("oidc"));
    assert!(ok, "{out}");

    // `sigstackd trust export` against the running services writes what dev wrote
    let out_dir = dir.join("export");
    let (ok, out) = run(Command::new(env!("CARGO_BIN_EXE_sigstackd"))
        .args([
            "trust",
            "export",
            "--ca-url",
            &svc("ca"),
            "--tlog-url",
            &svc("log"),
            "--ctlog-url",
            &svc("ctlog"),
        ])
        .args([
            "--oidc-url",
            &svc("oidc"),
            "--tsa-url",
            &svc("tsa"),
            "--tlog-v2-url",
            &svc("log_v2"),
            "--tlog-v2-key",
            &stack_str(&stack, "/services/log_v2/public_key"),
            "--operator",
            "sigstack-dev",
            "--out",
        ])
        .arg(&out_dir));
    assert!(ok, "trust export: {out}");
    for f in [
        "trusted_root.json",
        "signing_config.v0.2.json",
        "trust_config.json",
    ] {
        let a: Value = serde_json::from_slice(&std::fs::read(out_dir.join(f)).expect("exported"))
            .expect("json");
        let b: Value =
            serde_json::from_slice(&std::fs::read(dir.join("stack").join(f)).expect("dev"))
                .expect("json");
        assert_eq!(a, b, "{f}: export differs from what dev wrote");
    }
    // and the CA's trust endpoint serves the same files
    for f in [
        "trusted_root.json",
        "signing_config.v0.2.json",
        "trust_config.json",
    ] {
        let served: Value = http
            .get(format!("{}/api/v1/trust/{f}", svc("ca")))
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        let b: Value =
            serde_json::from_slice(&std::fs::read(dir.join("stack").join(f)).expect("dev"))
                .expect("json");
        assert_eq!(
            served, b,
            "{f}: the CA serves other trust files than dev wrote"
        );
    }
    let exported = out_dir.join("trust_config.json");
    let (ok, out) = v.python(
        exported.to_str().expect("path"),
        &js_bundle,
        identity,
        &issuer,
    );
    assert!(
        ok,
        "sigstore-python rejects a bundle under the exported trust config: {out}"
    );
}

/// Runs a command with a deadline (a client waiting for a browser that never comes back
/// must fail the test, not hang it).
pub fn run_within(cmd: &mut Command, limit: Duration) -> (bool, String) {
    let dir = temp_dir("run");
    let (out, err) = (dir.join("out"), dir.join("err"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("out"))
        .stderr(std::fs::File::create(&err).expect("err"))
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = format!(
        "{}{}",
        std::fs::read_to_string(&out).unwrap_or_default(),
        std::fs::read_to_string(&err).unwrap_or_default()
    );
    match status {
        Some(st) => (st.success(), text),
        None => (false, format!("timed out after {limit:?}: {text}")),
    }
}

/// The real browser flow: sigstore-python, asked to sign with no token, opens "the web
/// browser" on its loopback address; the browser (Debian's Chromium, headless, driven by
/// playwright-core) lands on our login page, screenshots it, signs in as the dev user and
/// follows the redirect back to sigstore-python's loopback callback. sigstore-python
/// redeems the code (PKCE, HTTP Basic `sigstore:`), our CA certifies the token, and the
/// bundle verifies with the dev issuer as the certificate's issuer.
pub async fn browser_login_with_sigstore_python() {
    let venv = venv();
    let browser = workspace().join("tests/interop/browser");
    assert!(
        browser.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run ./scripts/test (npm ci --prefix tests/interop/browser)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "Debian's Chromium is not at {chromium}: run ./scripts/test (it installs the chromium package)"
    );
    let dir = temp_dir("browser");
    let (_stack, stack) = dev_stack(&dir.join("stack"), None);
    let oidc = &stack["services"]["oidc"];
    let artifacts = workspace().join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifacts");
    let screenshot = artifacts.join("oidc-login.png");
    let _ = std::fs::remove_file(&screenshot);
    let artifact = dir.join("artifact.txt");
    std::fs::write(&artifact, b"signed after a browser login\n").expect("artifact");
    let bundle = dir.join("artifact.sigstore.json");
    let tc = stack["trust_config"].as_str().expect("trust_config");
    let browser_cmd = format!("node {} %s", browser.join("login.mjs").display());
    let (ok, out) = run_within(
        Command::new(venv.join("bin/sigstore"))
            .args(["--trust-config", tc, "sign", "--bundle"])
            .arg(&bundle)
            .arg(&artifact)
            .env("BROWSER", browser_cmd)
            .env("CHROMIUM", &chromium)
            .env(
                "SIGSTACK_LOGIN_USER",
                oidc["username"].as_str().expect("user"),
            )
            .env(
                "SIGSTACK_LOGIN_PASSWORD_FILE",
                oidc["password_file"].as_str().expect("password"),
            )
            .env("SIGSTACK_SCREENSHOT", &screenshot),
        Duration::from_secs(180),
    );
    assert!(ok, "sigstore-python sign after a browser login: {out}");
    assert!(
        out.contains("Waiting for browser interaction"),
        "sigstore-python took the browser flow: {out}"
    );
    let png = std::fs::read(&screenshot).expect("the login page screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 5_000,
        "a real screenshot of the login page"
    );
    let (ok, out) = run(Command::new(venv.join("bin/sigstore"))
        .args(["--trust-config", tc, "verify", "identity", "--bundle"])
        .arg(&bundle)
        .args([
            "--cert-identity",
            oidc["email"].as_str().expect("email"),
            "--cert-oidc-issuer",
            oidc["url"].as_str().expect("url"),
        ])
        .arg(&artifact));
    assert!(ok, "the browser-login bundle verifies: {out}");

    // the dev CI client: client credentials give a workload token sigstore-python signs
    // with; the certificate names the job, issued by the workload issuer
    let secret = std::fs::read_to_string(oidc["ci_secret_file"].as_str().expect("secret"))
        .expect("ci secret");
    let r = http()
        .post(format!("{}/token", oidc["url"].as_str().expect("url")))
        .basic_auth(
            oidc["ci_client_id"].as_str().expect("ci client"),
            Some(secret.trim()),
        )
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), 200);
    let tok: Value = r.json().await.expect("json");
    let ci_bundle = dir.join("ci.sigstore.json");
    let (ok, out) = run(Command::new(venv.join("bin/sigstore"))
        .args(["--trust-config", tc, "sign", "--identity-token"])
        .arg(tok["id_token"].as_str().expect("id_token"))
        .arg("--bundle")
        .arg(&ci_bundle)
        .arg(&artifact));
    assert!(ok, "sigstore-python signs with a workload token: {out}");
    let job = format!("{}/jobs/dev", oidc["url"].as_str().expect("url"));
    let (ok, out) = run(Command::new(venv.join("bin/sigstore"))
        .args(["--trust-config", tc, "verify", "identity", "--bundle"])
        .arg(&ci_bundle)
        .args([
            "--cert-identity",
            &job,
            "--cert-oidc-issuer",
            oidc["workload_issuer"].as_str().expect("workload issuer"),
        ])
        .arg(&artifact));
    assert!(ok, "the workload bundle verifies as the job: {out}");
}
