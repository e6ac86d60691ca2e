//! The parts of the client test that stand on their own: cosign's key format checked
//! against an independent implementation, the log commands with a kept checkpoint, and
//! the browser and device sign-in flows.

use crate::client::*;
use crate::keyless::*;
use crate::oidc::hidden;
use crate::support::*;
use serde_json::Value;
use sigstack_crypto::{FileSigner, Signer};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// `generate-key-pair`/`public-key` against the documented format, implemented
/// independently in Python: it opens our key, we open its key.
pub(crate) fn independent_key_format(cli: &Sigstack, dir: &Path) -> PathBuf {
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

pub(crate) fn log_commands(
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

pub(crate) fn browser_flow(cli: &Sigstack, dir: &Path, stack: &Value, a: &str) {
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

pub(crate) async fn device_flow(cli: &Sigstack, dir: &Path, stack: &Value, a: &str) {
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
