//! The stack as users run it. `sigstackd dev` and the production layout (`sigstackd
//! init`, then one process per service on PostgreSQL) each face the interop matrix:
//! sigstore-python 4.5, sigstore-js 5, cosign v2, cosign v3 and our `sigstack` each sign,
//! and each bundle is verified by all five with trust from the stack's TUF repository (25
//! cells, printed as a table), plus python-tuf's refresh. On the production layout also: `sigstackd
//! doctor` (healthy, then a stopped CT log reported), `/metrics` and `/readyz` of every
//! service, graceful shutdown on SIGTERM, and backup and restore of the database with
//! pg_dump/pg_restore: the restored log has the same head, every entry's proof verifies,
//! and the log grows consistently with the checkpoint taken before the backup.

use crate::client::{Sigstack, json_of, p};
use crate::cosign::Cosign;
use crate::keyless::{js, run, run_within, venv, wait_for, workspace};
use crate::support::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Who the matrix signs as.
pub(crate) struct Identity {
    pub(crate) identity: String,
    pub(crate) issuer: String,
}

const CLIENTS: [&str; 5] = [
    "sigstore-python",
    "sigstore-js",
    "cosign v2",
    "cosign v3",
    "sigstack",
];

/// The five clients against one stack, each with its own home and TUF cache.
pub(crate) struct Clients {
    dir: PathBuf,
    tuf: String,
    root: PathBuf,
    ca: String,
    log: String,
    py_home: PathBuf,
    js_cache: PathBuf,
    ours: Sigstack,
    cosign2: Cosign,
    cosign3: Cosign,
}

impl Clients {
    pub(crate) fn new(dir: &Path, stack: &Value) -> Self {
        let s = |ptr: &str| crate::support::stack_str(stack, ptr);
        let c = Self {
            dir: dir.to_path_buf(),
            tuf: s("/services/tuf/url"),
            root: PathBuf::from(s("/services/tuf/root")),
            ca: s("/services/ca/url"),
            log: s("/services/log/url"),
            py_home: dir.join("py-home"),
            js_cache: dir.join("js-cache"),
            ours: Sigstack::new(&dir.join("home")),
            cosign2: Cosign::v2(&dir.join("cosign2-home")),
            cosign3: Cosign::v3(&dir.join("cosign3-home")),
        };
        for cosign in [&c.cosign2, &c.cosign3] {
            let o = cosign.run(&["initialize", "--mirror", &c.tuf, "--root", p(&c.root)]);
            assert!(o.ok(), "{} initialize: {o}", cosign.name);
        }
        let (ok, out) = c.python(&["trust-instance", p(&c.root)]);
        assert!(ok, "sigstore-python trust-instance: {out}");
        let o = c
            .ours
            .run(&["initialize", "--mirror", &c.tuf, "--root", p(&c.root)]);
        assert!(o.ok(), "sigstack initialize: {o}");
        c
    }

    fn python(&self, args: &[&str]) -> (bool, String) {
        run_within(
            Command::new(venv().join("bin/sigstore"))
                .env("HOME", &self.py_home)
                .env("XDG_CACHE_HOME", self.py_home.join("cache"))
                .env("XDG_DATA_HOME", self.py_home.join("data"))
                .args(["--instance", &self.tuf])
                .args(args),
            Duration::from_secs(120),
        )
    }

    fn cosign(&self, name: &str) -> &Cosign {
        if name == "cosign v2" {
            &self.cosign2
        } else {
            &self.cosign3
        }
    }

    /// `signer` signs `artifact` into `bundle` with `token`.
    pub(crate) fn sign(
        &self,
        signer: &str,
        token: &str,
        artifact: &Path,
        bundle: &Path,
    ) -> (bool, String) {
        match signer {
            "sigstore-python" => self.python(&[
                "sign",
                "--identity-token",
                token,
                "--bundle",
                p(bundle),
                p(artifact),
            ]),
            "sigstore-js" => run(Command::new("node")
                .arg(js().join("sign-bundle.mjs"))
                .args(["--fulcio-url", &self.ca, "--rekor-url", &self.log])
                .args(["--identity-token", token, "--artifact", p(artifact)])
                .args(["--bundle", p(bundle)])),
            // services from the signing config in the stack's TUF repository; v2 writes
            // a Sigstore bundle only when asked
            "cosign v2" | "cosign v3" => {
                let mut args = vec!["sign-blob", "--yes", "--identity-token", token];
                if signer == "cosign v2" {
                    args.extend(["--use-signing-config", "--new-bundle-format"]);
                }
                args.extend(["--bundle", p(bundle), p(artifact)]);
                let o = self.cosign(signer).run(&args);
                (o.ok(), o.to_string())
            }
            _ => {
                let o = self.ours.run(&[
                    "sign-blob",
                    "--yes",
                    "--identity-token",
                    token,
                    "--bundle",
                    p(bundle),
                    p(artifact),
                ]);
                (o.ok(), o.to_string())
            }
        }
    }

    /// `verifier` verifies `bundle` over `artifact` as signed by `who`, with trust from
    /// the TUF repository.
    pub(crate) fn verify(
        &self,
        verifier: &str,
        who: &Identity,
        artifact: &Path,
        bundle: &Path,
    ) -> (bool, String) {
        match verifier {
            "sigstore-python" => self.python(&[
                "verify",
                "identity",
                "--bundle",
                p(bundle),
                "--cert-identity",
                &who.identity,
                "--cert-oidc-issuer",
                &who.issuer,
                p(artifact),
            ]),
            "sigstore-js" => run(Command::new("node")
                .arg(js().join("verify-tuf.mjs"))
                .args(["--tuf-mirror-url", &self.tuf, "--tuf-root", p(&self.root)])
                .args(["--tuf-cache", p(&self.js_cache), "--bundle", p(bundle)])
                .args(["--artifact", p(artifact)])
                .args(["--certificate-identity", &who.identity])
                .args(["--certificate-oidc-issuer", &who.issuer])),
            // cosign and sigstack take the same flags
            _ => {
                let args = [
                    "verify-blob",
                    "--bundle",
                    p(bundle),
                    "--certificate-identity",
                    &who.identity,
                    "--certificate-oidc-issuer",
                    &who.issuer,
                    p(artifact),
                ];
                let o = match verifier {
                    "cosign v2" | "cosign v3" => self.cosign(verifier).run(&args),
                    _ => self.ours.run(&args),
                };
                (o.ok(), o.to_string())
            }
        }
    }
}

/// Signs with each client and verifies each bundle with each client; prints the table
/// and python-tuf's refresh, and fails naming every failed cell. Returns the
/// (artifact, bundle) pairs.
fn interop_matrix(
    label: &str,
    c: &Clients,
    who: &Identity,
    token: impl Fn() -> String,
) -> Vec<(PathBuf, PathBuf)> {
    // The v1 log's first entry has index 0 and a proof without hashes, which sigstore-js
    // leaves out of its bundle and sigstore-python then refuses as malformed (a gap
    // between those two clients, not one of ours): sigstore-js, the only signer here that
    // the v1 log gets, signs into a log that holds an entry already.
    let seed = c.dir.join("seed.txt");
    std::fs::write(&seed, "the v1 log's first entry\n").expect("w");
    let o = c.ours.run(&[
        "sign-blob",
        "--yes",
        "--rekor-version",
        "1",
        "--identity-token",
        &token(),
        "--bundle",
        p(&c.dir.join("seed.sigstore.json")),
        p(&seed),
    ]);
    assert!(o.ok(), "sigstack signs into the v1 log: {o}");
    let mut signed = Vec::new();
    let mut failures = Vec::new();
    let mut cells = Vec::new();
    for signer in CLIENTS {
        let artifact = c.dir.join(format!("{signer}.txt"));
        std::fs::write(&artifact, format!("{label}: signed by {signer}\n")).expect("w");
        let bundle = c.dir.join(format!("{signer}.sigstore.json"));
        let (ok, out) = c.sign(signer, &token(), &artifact, &bundle);
        if !ok {
            failures.push(format!("{signer} signs: {out}"));
            cells.push((signer, vec!["no bundle"; CLIENTS.len()]));
            continue;
        }
        let mut row = Vec::new();
        for verifier in CLIENTS {
            let (ok, out) = c.verify(verifier, who, &artifact, &bundle);
            if !ok {
                failures.push(format!("{verifier} verifies {signer}'s bundle: {out}"));
            }
            row.push(if ok { "pass" } else { "FAIL" });
        }
        cells.push((signer, row));
        signed.push((artifact, bundle));
    }
    let (tuf_ok, tuf_out) = run(Command::new(venv().join("bin/python"))
        .arg(workspace().join("tests/interop/python/tuf_refresh.py"))
        .arg(&c.tuf)
        .arg(&c.root)
        .arg(c.dir.join("python-tuf/metadata"))
        .arg(c.dir.join("python-tuf/targets")));
    if !tuf_ok || !tuf_out.contains("trusted_root.json") {
        failures.push(format!("python-tuf refresh: {tuf_out}"));
    }
    let mut table = format!(
        "\ninterop matrix, {label} (rows sign, columns verify; trust from the TUF repository)\n{:<18}",
        "signer \\ verifier"
    );
    for v in CLIENTS {
        table.push_str(&format!("{v:<17}"));
    }
    for (signer, row) in &cells {
        table.push_str(&format!("\n{signer:<18}"));
        for r in row {
            table.push_str(&format!("{r:<17}"));
        }
    }
    table.push_str(&format!(
        "\npython-tuf refresh: {}\n",
        if tuf_ok { "pass" } else { "FAIL" }
    ));
    eprintln!("{table}");
    // scripts/test prints these after the run (cargo hides a passing test's output)
    let out = workspace().join("target/test-artifacts");
    std::fs::create_dir_all(&out).expect("artifacts dir");
    let slug: String = label
        .chars()
        .map(|ch| if ch.is_ascii_alphanumeric() { ch } else { '-' })
        .collect();
    std::fs::write(out.join(format!("interop-matrix-{slug}.txt")), &table).expect("write table");
    assert!(
        failures.is_empty(),
        "interop matrix, {label}:\n{}",
        failures.join("\n\n")
    );
    signed
}

pub(crate) fn dev_token(data_dir: &Path) -> String {
    let (ok, token) = run(Command::new(env!("CARGO_BIN_EXE_sigstackd"))
        .args(["dev-token", "--data-dir"])
        .arg(data_dir));
    assert!(ok, "{token}");
    token.trim().to_string()
}

pub(crate) fn doctor(stack: &Path) -> (bool, String) {
    run(Command::new(env!("CARGO_BIN_EXE_sigstackd"))
        .args(["doctor", "--stack"])
        .arg(stack))
}

pub async fn dev_stack_interop_matrix() {
    let dir = temp_dir("dev-matrix");
    let data = dir.join("stack");
    let started = Instant::now();
    let (_dev, stack) = crate::keyless::dev_stack(&data, None);
    eprintln!("sigstackd dev: stack.json after {:?}", started.elapsed());
    let (ok, out) = doctor(&data.join("stack.json"));
    assert!(
        ok && out.contains(": 0 failed"),
        "doctor on the dev stack: {out}"
    );
    let c = Clients::new(&dir, &stack);
    let who = Identity {
        identity: stack["services"]["oidc"]["email"]
            .as_str()
            .expect("e")
            .into(),
        issuer: stack["services"]["oidc"]["url"].as_str().expect("o").into(),
    };
    // what `dev` prints is what a client needs, and works as printed
    let printed = std::fs::read_to_string(data.with_extension("out")).expect("dev's output");
    assert!(
        printed.contains(&format!(
            "initialize --mirror {} --root {}",
            c.tuf,
            p(&c.root)
        )),
        "{printed}"
    );
    let password = std::fs::read_to_string(data.join("dev-password")).expect("password");
    assert!(
        printed.contains(&format!("as `dev`, password {}", password.trim())),
        "{printed}"
    );
    for url in ["log", "log_v2", "ca", "ctlog", "oidc", "tuf", "tsa"] {
        let u = stack["services"][url]["url"].as_str().expect("url");
        assert!(printed.contains(u), "{url} URL not printed: {printed}");
    }
    let export = printed
        .lines()
        .find_map(|l| l.trim().strip_prefix("export SIGSTORE_ID_TOKEN="))
        .unwrap_or_else(|| panic!("no export line: {printed}"))
        .to_string();
    let from_export = || {
        let (ok, out) = run(Command::new("sh").args([
            "-c",
            &format!("export SIGSTORE_ID_TOKEN={export}; printf %s \"$SIGSTORE_ID_TOKEN\""),
        ]));
        assert!(
            ok && out.matches('.').count() == 2,
            "the printed export line gives a JWT: {out}"
        );
        out
    };
    let first = std::cell::Cell::new(true);
    let signed = interop_matrix(
        "sigstackd dev (SQLite; Rekor v2 where the signing config picks it)",
        &c,
        &who,
        || {
            // the first signer uses the printed line, the others the command it wraps
            if first.replace(false) {
                from_export()
            } else {
                dev_token(&data)
            }
        },
    );
    // the clients that sign by the signing config chose the v2 log and a timestamp;
    // sigstore-js was pointed at the v1 log
    let v2_url = stack["services"]["log_v2"]["url"].as_str().expect("v2 url");
    for (artifact, bundle) in signed {
        let name = artifact.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let b: Value =
            serde_json::from_slice(&std::fs::read(&bundle).expect("bundle")).expect("json");
        let version = b
            .pointer("/verificationMaterial/tlogEntries/0/kindVersion/version")
            .and_then(Value::as_str)
            .unwrap_or("");
        let stamped = b
            .pointer("/verificationMaterial/timestampVerificationData/rfc3161Timestamps/0")
            .is_some();
        match name {
            "sigstore-python" | "cosign v3" | "sigstack" => assert!(
                version == "0.0.2" && stamped,
                "{name} should sign into the v2 log ({v2_url}) with a timestamp: {b}"
            ),
            "sigstore-js" => assert_eq!(version, "0.0.1", "{name}"),
            _ => {}
        }
    }
}

/// One `sigstackd <service> --config DIR/<service>.toml` process.
pub(crate) struct Service {
    pub(crate) name: &'static str,
    child: Child,
}

impl Service {
    pub(crate) fn start(name: &'static str, etc: &Path, logs: &Path) -> Self {
        Self::start_with(name, etc, logs, &[])
    }

    /// With settings overridden by environment variables (`SIGSTACK_LOG_LISTEN`, ...);
    /// its output goes to `logs/<name>.log` (appended).
    pub(crate) fn start_with(
        name: &'static str,
        etc: &Path,
        logs: &Path,
        env: &[(&str, &str)],
    ) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(logs.join(format!("{name}.log")))
            .expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_sigstackd"))
            .arg(name)
            .arg("--config")
            .arg(etc.join(format!("{name}.toml")))
            .envs(env.iter().copied())
            .env("SIGSTACK_LOG", "info")
            .env("SIGSTACK_LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn service");
        Self { name, child }
    }

    /// SIGTERM, and the process must exit cleanly within 10 s (graceful shutdown).
    pub(crate) fn stop(mut self) {
        let st = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(st.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                assert!(st.success(), "{} exited with {st} on SIGTERM", self.name);
                return;
            }
            assert!(Instant::now() < deadline, "{} ignored SIGTERM", self.name);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) const SERVICES: [&str; 7] = ["log", "log-v2", "ctlog", "ca", "oidc", "tuf", "tsa"];

pub(crate) fn start_all(etc: &Path, logs: &Path, urls: &[(&str, String)]) -> Vec<Service> {
    let procs: Vec<Service> = SERVICES
        .iter()
        .map(|s| Service::start(s, etc, logs))
        .collect();
    for (name, url) in urls {
        wait_for(&format!("{name} /readyz"), || {
            get_ok(&format!("{url}/readyz"))
        });
    }
    procs
}

/// A blocking GET answered 200 (readiness polls run outside the async runtime's
/// workers, which are busy waiting).
pub(crate) fn get_ok(url: &str) -> bool {
    use std::io::{Read, Write};
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let Ok(mut s) = std::net::TcpStream::connect(host) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if write!(s, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.1 200") || buf.starts_with("HTTP/1.0 200")
}

async fn text(url: &str) -> String {
    let r = http().get(url).send().await.expect("GET");
    assert!(r.status().is_success(), "GET {url}: {}", r.status());
    r.text().await.expect("body")
}

/// The value of the first sample of `name` (with the given label text, if any).
fn sample(metrics: &str, name: &str, labels: &str) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']) && l.contains(labels)
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

pub(crate) async fn workload_token(oidc: &str, secret_file: &Path) -> String {
    let secret = std::fs::read_to_string(secret_file).expect("secret");
    let r = http()
        .post(format!("{oidc}/token"))
        .basic_auth("ci", Some(secret.trim()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    v["id_token"].as_str().expect("id_token").to_string()
}

/// The log's signed head: (size, root, note).
async fn head(log: &str) -> (u64, String, String) {
    let v: Value = serde_json::from_str(&text(&format!("{log}/api/v1/log")).await).expect("json");
    (
        v["treeSize"].as_u64().expect("size"),
        v["rootHash"].as_str().expect("root").to_string(),
        v["signedTreeHead"].as_str().expect("sth").to_string(),
    )
}

pub async fn production_stack_on_postgres() {
    let dir = temp_dir("prod");
    let etc = dir.join("etc");
    let admin = pg_admin_url();
    let db = fresh_pg_database(&admin).await;
    let urls: Vec<(&str, String)> = SERVICES
        .iter()
        .map(|s| (*s, format!("http://127.0.0.1:{}", free_port())))
        .collect();
    let url = |s: &str| urls.iter().find(|(n, _)| *n == s).expect(s).1.clone();
    let init = |dir: &Path| {
        run(Command::new(env!("CARGO_BIN_EXE_sigstackd"))
            .args(["init", "--dir", p(dir), "--database-url", &db])
            .args(["--listen-host", "127.0.0.1", "--operator", "sigstack-test"])
            .args(["--log-url", &url("log"), "--ctlog-url", &url("ctlog")])
            .args(["--ca-url", &url("ca"), "--oidc-url", &url("oidc")])
            .args(["--tuf-url", &url("tuf"), "--tsa-url", &url("tsa")])
            .args(["--log-v2-url", &url("log-v2")]))
    };
    let (ok, out) = init(&etc);
    assert!(ok, "sigstackd init: {out}");
    assert!(out.contains("sigstack initialize --mirror"), "{out}");
    assert!(
        out.contains("login:  user admin (admin@sigstack.test)"),
        "{out}"
    );
    // again: the keys and the TUF repository are kept
    let key_before = std::fs::read(etc.join("keys/log/log.pem")).expect("key");
    let root_before = std::fs::read(etc.join("public/1.root.json")).expect("root");
    let (ok, out) = init(&etc);
    assert!(ok, "sigstackd init, again: {out}");
    assert_eq!(
        std::fs::read(etc.join("keys/log/log.pem")).expect("key"),
        key_before
    );
    assert_eq!(
        std::fs::read(etc.join("public/1.root.json")).expect("root"),
        root_before
    );
    // another directory on the same database: refused before anything is written
    let other = dir.join("other");
    let (ok, out) = init(&other);
    assert!(
        !ok && out.contains("already holds a TUF repository"),
        "{out}"
    );
    assert!(
        !other.join("log.toml").exists() && !other.join("keys").exists(),
        "init wrote before refusing"
    );
    // every secret file is private
    #[cfg(unix)]
    for f in [
        "keys/log/log.pem",
        "keys/ca/ca-intermediate.pem",
        "keys/oidc/ci-secret",
        "oidc.toml",
        "offline/admin-password",
        "offline/ca-root.pem",
        "offline/tuf-ceremony/keys/root-1.pem",
        "log.toml",
    ] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(etc.join(f))
            .expect(f)
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{f} is readable by others");
    }
    // the private keys are not in the database
    let log_key = std::fs::read_to_string(etc.join("keys/log/log.pem")).expect("key");
    let pem_body: String = log_key
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let (ok, dump) = run(Command::new("pg_dump").arg(&db));
    assert!(ok, "{dump}");
    assert!(
        !dump.contains(&pem_body[..40]),
        "a private key is in the database"
    );

    let procs = start_all(&etc, &dir, &urls);
    let stack_path = etc.join("stack.json");
    let stack: Value =
        serde_json::from_slice(&std::fs::read(&stack_path).expect("stack")).expect("json");
    let (ok, out) = doctor(&stack_path);
    assert!(
        ok && out.contains("17 checks: 0 failed"),
        "doctor on the production stack: {out}"
    );

    // the matrix signs as the CI job, with workload tokens from the real token endpoint
    let c = Clients::new(&dir, &stack);
    let oidc = url("oidc");
    let who = Identity {
        identity: format!("{oidc}/jobs/ci"),
        issuer: format!("{oidc}/workload"),
    };
    let mut tokens = Vec::new();
    // one per signer, and one for the v1 log's first entry
    for _ in 0..=CLIENTS.len() {
        tokens.push(workload_token(&oidc, &etc.join("keys/oidc/ci-secret")).await);
    }
    let next = std::sync::Mutex::new(tokens);
    let signed = interop_matrix("separate processes on PostgreSQL", &c, &who, || {
        next.lock()
            .expect("lock")
            .pop()
            .expect("a token per signer")
    });

    // metrics of every service
    let ca_m = text(&format!("{}/metrics", url("ca"))).await;
    assert_eq!(
        sample(&ca_m, "sigstack_ca_certificates_issued_total", ""),
        Some(CLIENTS.len() as f64 + 1.0),
        "one per signer, and the v1 log's first entry's: {ca_m}"
    );
    assert!(
        sample(&ca_m, "sigstack_ca_chain_expires_in_seconds", "").is_some_and(|s| s > 86_400.0)
    );
    assert!(
        sample(
            &ca_m,
            "sigstack_http_requests_total",
            "route=\"/api/v2/signingCert\",status=\"200\""
        )
        .is_some_and(|n| n >= 2.0),
        "{ca_m}"
    );
    assert!(ca_m.contains("sigstack_http_request_duration_seconds_bucket{service=\"ca\""));
    // the v1 log: the first entry and sigstore-js's; the v2 log: the four signers that
    // follow the signing config
    let log_m = text(&format!("{}/metrics", url("log"))).await;
    assert_eq!(
        sample(&log_m, "sigstack_log_entries", ""),
        Some(2.0),
        "{log_m}"
    );
    assert_eq!(
        sample(&log_m, "sigstack_log_tree_size", "tree="),
        Some(2.0),
        "{log_m}"
    );
    let log_v2_m = text(&format!("{}/metrics", url("log-v2"))).await;
    assert_eq!(
        sample(&log_v2_m, "sigstack_log_v2_tree_size", ""),
        Some(CLIENTS.len() as f64 - 1.0),
        "{log_v2_m}"
    );
    assert!(sample(&log_m, "sigstack_log_checkpoint_age_seconds", "").is_some());
    let ct_m = text(&format!("{}/metrics", url("ctlog"))).await;
    assert_eq!(
        sample(&ct_m, "sigstack_ctlog_tree_size", ""),
        Some(CLIENTS.len() as f64 + 1.0),
        "{ct_m}"
    );
    let tuf_m = text(&format!("{}/metrics", url("tuf"))).await;
    assert!(
        sample(
            &tuf_m,
            "sigstack_tuf_expires_in_seconds",
            "role=\"timestamp\""
        )
        .is_some_and(|s| s > 3600.0),
        "{tuf_m}"
    );
    let oidc_m = text(&format!("{oidc}/metrics")).await;
    assert!(
        sample(
            &oidc_m,
            "sigstack_http_requests_total",
            "route=\"/token\",status=\"200\""
        ) == Some(CLIENTS.len() as f64 + 1.0),
        "{oidc_m}"
    );
    // structured logs: JSON lines
    let ca_log = std::fs::read_to_string(dir.join("ca.log")).expect("ca log");
    let first = ca_log.lines().next().expect("a log line");
    let line: Value = serde_json::from_str(first)
        .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {first}"));
    assert!(
        line["level"].is_string() && line["timestamp"].is_string(),
        "{first}"
    );

    // a stopped CT log is reported, then every service shuts down gracefully
    let mut procs = procs;
    let ct = procs.remove(2);
    assert_eq!(ct.name, "ctlog");
    ct.stop();
    let (ok, out) = doctor(&stack_path);
    assert!(
        !ok && out.contains("FAIL  ctlog"),
        "doctor with the CT log down: {out}"
    );
    assert!(
        out.contains("1 failed") || out.contains("2 failed"),
        "{out}"
    );

    // backup: the checkpoint before, the dump
    let log = url("log");
    let (size, root, _) = head(&log).await;
    let o = c.ours.run(&["log", "info"]);
    assert!(o.ok(), "{o}");
    let backup = dir.join("sigstack.dump");
    let (ok, out) = run(Command::new("pg_dump")
        .args(["--format=custom", "--file", p(&backup)])
        .arg(&db));
    assert!(ok, "pg_dump: {out}");
    for s in procs {
        s.stop();
    }
    // wipe: the database is gone, then restored from the dump into a new one
    restore(&admin, &db, &backup);

    let procs = start_all(&etc, &dir, &urls);
    let (size2, root2, _) = head(&log).await;
    assert_eq!(
        (size2, &root2),
        (size, &root),
        "the restored log has the backed-up head"
    );
    // every entry, with its inclusion proof against a signed checkpoint, verifies
    for i in 0..size {
        let o = c.ours.run(&[
            "log",
            "get",
            "--log-index",
            &i.to_string(),
            "--output",
            "json",
        ]);
        assert!(o.ok(), "entry {i} after restore: {o}");
        assert_eq!(json_of(&o)["logIndex"], Value::from(i), "{o}");
    }
    for (artifact, bundle) in &signed {
        let (ok, out) = c.verify("sigstore-python", &who, artifact, bundle);
        assert!(ok, "{} after restore: {out}", bundle.display());
    }
    // the log grows on, consistent with the checkpoint from before the backup (our
    // client proves it against the one it kept)
    let artifact = dir.join("after.txt");
    std::fs::write(&artifact, b"signed after the restore\n").expect("w");
    let bundle = dir.join("after.sigstore.json");
    // into the v1 log, whose growth from the backed-up head is checked below
    let o = c.ours.run(&[
        "sign-blob",
        "--yes",
        "--rekor-version",
        "1",
        "--identity-token",
        &workload_token(&oidc, &etc.join("keys/oidc/ci-secret")).await,
        "--bundle",
        p(&bundle),
        p(&artifact),
    ]);
    assert!(o.ok(), "signing after the restore: {o}");
    let (size3, root3, _) = head(&log).await;
    assert_eq!(size3, size + 1);
    let old_root: [u8; 32] = hex::decode(&root).expect("hex").try_into().expect("32");
    let new_root: [u8; 32] = hex::decode(&root3).expect("hex").try_into().expect("32");
    crate::api::check_consistency(&http(), &log, size, &old_root, size3, &new_root).await;
    let o = c.ours.run(&["log", "info", "--output", "json"]);
    assert!(
        o.ok(),
        "log info proves consistency with the kept checkpoint: {o}"
    );
    let (ok, out) = doctor(&stack_path);
    assert!(ok, "doctor after the restore: {out}");
    // a TUF client refreshes now: it holds online metadata newer than the dump's
    let tuf_root = etc.join("public/1.root.json");
    let meta = dir.join("ptuf-meta");
    let (ok, out) = crate::tuf::python_tuf(&url("tuf"), &tuf_root, &meta, &dir.join("ptuf-dl"));
    assert!(ok, "python-tuf after the restore: {out}");

    // restoring that backup again loses the entry signed since: a client that saw it
    // reports the log as behind its checkpoint
    for s in procs {
        s.stop();
    }
    restore(&admin, &db, &backup);
    let _procs = start_all(&etc, &dir, &urls);
    // the TUF repository does not go back with the database: at start the service signs
    // a snapshot and timestamp above the clock, so that client keeps updating
    let (ok, out) = crate::tuf::python_tuf(&url("tuf"), &tuf_root, &meta, &dir.join("ptuf-dl"));
    assert!(
        ok,
        "python-tuf, holding newer metadata than the restored dump: {out}"
    );
    let (ok, out) = run(Command::new(env!("CARGO_BIN_EXE_sigstackd")).args([
        "doctor",
        "--stack",
        p(&stack_path),
        "--client-state",
        p(&meta),
    ]));
    assert!(
        ok && out.contains("not behind the client state"),
        "doctor with the client's state: {out}"
    );
    // a client holding a targets version the restored database lost: reported, with
    // what to do
    let ahead = dir.join("ahead");
    std::fs::create_dir_all(&ahead).expect("dir");
    let mut targets: Value =
        serde_json::from_slice(&std::fs::read(meta.join("targets.json")).expect("targets"))
            .expect("json");
    targets["signed"]["version"] = Value::from(999);
    std::fs::write(ahead.join("targets.json"), targets.to_string()).expect("w");
    let (ok, out) = run(Command::new(env!("CARGO_BIN_EXE_sigstackd")).args([
        "doctor",
        "--stack",
        p(&stack_path),
        "--client-state",
        p(&ahead),
    ]));
    assert!(
        !ok && out.contains("< v999") && out.contains("sigstackd tuf publish"),
        "doctor with a client ahead of the repository: {out}"
    );
    let o = c.ours.run(&["log", "info"]);
    assert!(
        !o.ok()
            && o.stderr.contains("fewer than the")
            && o.stderr.contains("rolled back or restored"),
        "a rolled-back log is reported: {o}"
    );
}

/// Wipes the database (drop, create) and restores `backup` into it.
pub(crate) fn restore(admin: &str, db: &str, backup: &Path) {
    let name = db.rsplit('/').next().expect("db name").to_string();
    let (ok, out) = run(Command::new("psql")
        .arg(admin)
        .args(["-qc", &format!("DROP DATABASE {name} WITH (FORCE)")]));
    assert!(ok, "{out}");
    let (ok, out) = run(Command::new("psql")
        .arg(admin)
        .args(["-qc", &format!("CREATE DATABASE {name}")]));
    assert!(ok, "{out}");
    let (ok, out) = run(Command::new("pg_restore").args(["--no-owner", "--dbname", db, p(backup)]));
    assert!(ok, "pg_restore: {out}");
}
