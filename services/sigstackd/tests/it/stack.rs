//! The stack as users run it. `sigstackd dev` and the production layout (`sigstackd
//! init`, then one process per service on PostgreSQL: `production.rs`) each face the
//! interop matrix: sigstore-python 4.5, sigstore-js 5, cosign v2, cosign v3 and our
//! `sigstack` each sign, and each bundle is verified by all five with trust from the
//! stack's TUF repository (25 cells, printed as a table), plus python-tuf's refresh.

use crate::client::{Sigstack, p};
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

pub(crate) const CLIENTS: [&str; 5] = [
    "sigstore-python",
    "sigstore-js",
    "cosign v2",
    "cosign v3",
    "sigstack",
];

/// The five clients against one stack, each with its own home and TUF cache.
pub(crate) struct Clients {
    pub(crate) dir: PathBuf,
    pub(crate) tuf: String,
    pub(crate) root: PathBuf,
    pub(crate) ca: String,
    pub(crate) log: String,
    pub(crate) py_home: PathBuf,
    pub(crate) js_cache: PathBuf,
    pub(crate) ours: Sigstack,
    pub(crate) cosign2: Cosign,
    pub(crate) cosign3: Cosign,
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
pub(crate) fn interop_matrix(
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
    for url in [
        "log", "log_v2", "witness", "ca", "ctlog", "oidc", "tuf", "tsa",
    ] {
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
