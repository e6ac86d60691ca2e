//! `sigstackd tuf` as clients meet it, inside `sigstackd dev`: the consistent-snapshot
//! layout with caching headers, python-tuf's ngclient, sigstore-python (`--instance`)
//! and sigstore-js (`tufMirrorURL`) signing and verifying through it, our own client;
//! each attack the TUF specification names refused by python-tuf and by our client; a
//! new targets version re-signed online by the service; and a root key rotation the
//! clients follow.

use crate::keyless::{Killed, dev_stack, js, run, run_within, venv, workspace};
use crate::support::*;
use serde_json::Value;
use sigstack_crypto::{Curve, FileSigner, Signer};
use sigstack_tuf::client::{Fetch, Updater};
use sigstack_tuf::{Envelope, TufError};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Our TUF client over HTTP.
struct HttpFetch {
    http: reqwest::Client,
    base: String,
}

impl Fetch for HttpFetch {
    async fn fetch(&self, path: &str, max_len: u64) -> Result<Option<Vec<u8>>, TufError> {
        let err = |e: String| TufError::Fetch {
            what: path.to_string(),
            msg: e,
        };
        let r = self
            .http
            .get(format!("{}/{path}", self.base))
            .send()
            .await
            .map_err(|e| err(e.to_string()))?;
        if matches!(r.status().as_u16(), 403 | 404) {
            return Ok(None);
        }
        if !r.status().is_success() {
            return Err(err(format!("HTTP {}", r.status())));
        }
        let body = r.bytes().await.map_err(|e| err(e.to_string()))?;
        if body.len() as u64 > max_len {
            return Err(err("longer than its recorded length".into()));
        }
        Ok(Some(body.to_vec()))
    }
}

/// Our TUF client over a directory (a mirror an attacker controls).
struct DirFetch(PathBuf);

impl Fetch for DirFetch {
    async fn fetch(&self, path: &str, max_len: u64) -> Result<Option<Vec<u8>>, TufError> {
        match std::fs::read(self.0.join(path)) {
            Ok(b) if b.len() as u64 > max_len => Err(TufError::Fetch {
                what: path.into(),
                msg: "too long".into(),
            }),
            Ok(b) => Ok(Some(b)),
            Err(_) => Ok(None),
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub(crate) fn python_tuf(base: &str, root: &Path, meta: &Path, targets: &Path) -> (bool, String) {
    run(Command::new(venv().join("bin/python"))
        .arg(workspace().join("tests/interop/python/tuf_refresh.py"))
        .arg(base)
        .arg(root)
        .arg(meta)
        .arg(targets))
}

/// A static HTTP server over `dir` (Python's), for attacked mirrors.
fn static_server(dir: &Path) -> (Killed, String) {
    let port = free_port();
    let child = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1"])
        .arg(port.to_string())
        .arg("--directory")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 -m http.server");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "http.server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (Killed::new(child), url)
}

/// Copies the current repository (root 1.., timestamp, snapshot, targets and target
/// files) from the service into `dir`.
async fn mirror(http: &reqwest::Client, base: &str, dir: &Path) {
    let get = |p: String| async move {
        let r = http.get(format!("{base}/{p}")).send().await.expect("get");
        assert_eq!(r.status(), 200, "{p}");
        r.bytes().await.expect("body").to_vec()
    };
    std::fs::create_dir_all(dir.join("targets")).expect("dir");
    let mut v = 1;
    loop {
        let r = http
            .get(format!("{base}/{v}.root.json"))
            .send()
            .await
            .expect("get");
        if r.status() == 404 {
            break;
        }
        std::fs::write(
            dir.join(format!("{v}.root.json")),
            r.bytes().await.expect("b"),
        )
        .expect("w");
        v += 1;
    }
    let ts = get("timestamp.json".into()).await;
    std::fs::write(dir.join("timestamp.json"), &ts).expect("w");
    let ts: Value = serde_json::from_slice(&ts).expect("json");
    let sv = ts["signed"]["meta"]["snapshot.json"]["version"]
        .as_u64()
        .expect("v");
    let snap = get(format!("{sv}.snapshot.json")).await;
    std::fs::write(dir.join(format!("{sv}.snapshot.json")), &snap).expect("w");
    let snap: Value = serde_json::from_slice(&snap).expect("json");
    let tv = snap["signed"]["meta"]["targets.json"]["version"]
        .as_u64()
        .expect("v");
    let targets = get(format!("{tv}.targets.json")).await;
    std::fs::write(dir.join(format!("{tv}.targets.json")), &targets).expect("w");
    let targets: Value = serde_json::from_slice(&targets).expect("json");
    for (name, info) in targets["signed"]["targets"].as_object().expect("targets") {
        let p = format!(
            "targets/{}.{name}",
            info["hashes"]["sha256"].as_str().expect("sha")
        );
        std::fs::write(dir.join(&p), get(p.clone()).await).expect("w");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("targets")).expect("dir");
    for sub in ["", "targets"] {
        for e in std::fs::read_dir(from.join(sub)).expect("read") {
            let e = e.expect("entry");
            if e.file_type().expect("type").is_file() {
                std::fs::copy(e.path(), to.join(sub).join(e.file_name())).expect("copy");
            }
        }
    }
}

fn sigstackd(args: &[&str]) -> (bool, String) {
    run(Command::new(env!("CARGO_BIN_EXE_sigstackd")).args(args))
}

fn version_in(dir: &Path, file: &str, pointer: &str) -> u64 {
    let v: Value =
        serde_json::from_slice(&std::fs::read(dir.join(file)).expect("read")).expect("json");
    v.pointer(pointer).and_then(Value::as_u64).expect("version")
}

/// sigstore-python (`--instance`, its TUF cache under `home`) and sigstore-js
/// (`tufMirrorURL`, its cache in `js_cache`) as one user keeps them across changes.
struct TufClients {
    dir: PathBuf,
    data: PathBuf,
    home: PathBuf,
    js_cache: PathBuf,
    base: String,
    root: PathBuf,
    oidc: String,
}

impl TufClients {
    fn new(dir: &Path, data: &Path, stack: &Value) -> Self {
        let s = |p: &str| {
            stack
                .pointer(p)
                .and_then(Value::as_str)
                .expect(p)
                .to_string()
        };
        Self {
            dir: dir.to_path_buf(),
            data: data.to_path_buf(),
            home: dir.join("home"),
            js_cache: dir.join("js-cache"),
            base: s("/services/tuf/url"),
            root: PathBuf::from(s("/services/tuf/root")),
            oidc: s("/services/oidc/url"),
        }
    }

    fn python(&self, args: &[&std::ffi::OsStr]) -> (bool, String) {
        run_within(
            Command::new(venv().join("bin/sigstore"))
                .env("HOME", &self.home)
                .env("XDG_CACHE_HOME", self.home.join("cache"))
                .env("XDG_DATA_HOME", self.home.join("data"))
                .args(["--instance", &self.base])
                .args(args),
            Duration::from_secs(120),
        )
    }

    fn trust_instance(&self) {
        let (ok, out) = self.python(&["trust-instance".as_ref(), self.root.as_os_str()]);
        assert!(ok, "sigstore trust-instance: {out}");
    }

    /// Signs a new artifact `name` with sigstore-python; returns (artifact, bundle).
    fn sign(&self, name: &str) -> (PathBuf, PathBuf) {
        let (ok, token) = run(Command::new(env!("CARGO_BIN_EXE_sigstackd"))
            .args(["dev-token", "--data-dir"])
            .arg(&self.data));
        assert!(ok, "{token}");
        let artifact = self.dir.join(format!("{name}.txt"));
        std::fs::write(&artifact, format!("{name}\n")).expect("w");
        let bundle = self.dir.join(format!("{name}.sigstore.json"));
        let (ok, out) = self.python(&[
            "sign".as_ref(),
            "--identity-token".as_ref(),
            token.trim().as_ref(),
            "--bundle".as_ref(),
            bundle.as_os_str(),
            artifact.as_os_str(),
        ]);
        assert!(ok, "sigstore-python signs {name} through TUF: {out}");
        (artifact, bundle)
    }

    /// Both clients verify `bundle` with trust from the TUF repository.
    fn verify(&self, artifact: &Path, bundle: &Path, when: &str) {
        let (ok, out) = self.python(&[
            "verify".as_ref(),
            "identity".as_ref(),
            "--bundle".as_ref(),
            bundle.as_os_str(),
            "--cert-identity".as_ref(),
            "dev@sigstack.test".as_ref(),
            "--cert-oidc-issuer".as_ref(),
            self.oidc.as_ref(),
            artifact.as_os_str(),
        ]);
        assert!(
            ok,
            "sigstore-python verifies {} {when}: {out}",
            bundle.display()
        );
        let (ok, out) = run(Command::new("node")
            .arg(js().join("verify-tuf.mjs"))
            .args(["--tuf-mirror-url", &self.base, "--tuf-root"])
            .arg(&self.root)
            .arg("--tuf-cache")
            .arg(&self.js_cache)
            .arg("--bundle")
            .arg(bundle)
            .arg("--artifact")
            .arg(artifact)
            .args([
                "--certificate-identity",
                "dev@sigstack.test",
                "--certificate-oidc-issuer",
                &self.oidc,
            ]));
        assert!(
            ok,
            "sigstore-js verifies {} {when}: {out}",
            bundle.display()
        );
    }
}

/// A dev stack on fixed ports (to restart at the same addresses): the ports are picked
/// free, but another test may take one before the stack binds it, so a start that fails
/// is tried again on other ports.
fn dev_stack_on_fixed_ports(data: &Path) -> (crate::keyless::Killed, Value, Vec<String>) {
    for attempt in 0..3 {
        let ports = fixed_ports();
        let args: Vec<&str> = ports.iter().map(String::as_str).collect();
        match std::panic::catch_unwind(|| crate::keyless::dev_stack_with(data, &args)) {
            Ok((proc_, stack)) => return (proc_, stack, ports),
            Err(e) if attempt == 2 => std::panic::resume_unwind(e),
            Err(_) => eprintln!("dev stack did not start on {ports:?}; trying other ports"),
        }
    }
    unreachable!("the loop returns or panics")
}

/// Fixed ports for a dev stack that restarts at the same addresses.
fn fixed_ports() -> Vec<String> {
    let ports: Vec<String> = (0..9).map(|_| free_port().to_string()).collect();
    [
        "--log-port",
        "--log-v2-port",
        "--witness-port",
        "--ca-port",
        "--ctlog-port",
        "--oidc-port",
        "--tuf-port",
        "--tsa-port",
        "--monitor-port",
    ]
    .iter()
    .zip(ports)
    .flat_map(|(flag, port)| [flag.to_string(), port])
    .collect()
}

pub async fn tuf_repository_serves_real_clients() {
    let dir = temp_dir("tuf");
    let (_stack, stack) = dev_stack(&dir.join("stack"), None);
    let base = stack["services"]["tuf"]["url"]
        .as_str()
        .expect("url")
        .to_string();
    let root_path = PathBuf::from(stack["services"]["tuf"]["root"].as_str().expect("root"));
    let http = http();

    // layout and caching
    let r = http
        .get(format!("{base}/2.root.json"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 404, "the rotation walk must end");
    let r = http
        .get(format!("{base}/1.root.json"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .expect("cc")
            .contains("immutable")
    );
    assert_eq!(
        r.bytes().await.expect("b").to_vec(),
        std::fs::read(&root_path).expect("root")
    );
    let r = http
        .get(format!("{base}/timestamp.json"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-cache");
    let etag = r.headers()["etag"].clone();
    let r = http
        .get(format!("{base}/timestamp.json"))
        .header("if-none-match", etag)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 304);
    let (st, health) = get_json(&http, &format!("{base}/healthz")).await;
    assert_eq!(
        (st, health["status"].as_str()),
        (200, Some("ok")),
        "{health}"
    );
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("sigstack_tuf_expires_in_seconds{role=\"timestamp\"}"),
        "{metrics}"
    );

    // python-tuf bootstraps, refreshes and downloads both targets
    let (ok, out) = python_tuf(
        &base,
        &root_path,
        &dir.join("ptuf-meta"),
        &dir.join("ptuf-targets"),
    );
    assert!(ok, "python-tuf: {out}");
    let got: Value = serde_json::from_str(out.trim()).expect("json");
    let trusted = std::fs::read(stack["trusted_root"].as_str().expect("tr")).expect("tr");
    assert_eq!(
        std::fs::read(got["targets"]["trusted_root.json"].as_str().expect("p")).expect("t"),
        trusted
    );
    // and so does our client, with the legacy targets and their sigstore metadata
    let mut ours = Updater::new(
        HttpFetch {
            http: http.clone(),
            base: base.clone(),
        },
        &std::fs::read(&root_path).expect("root"),
    )
    .expect("root");
    ours.refresh(now()).await.expect("refresh");
    assert_eq!(
        ours.download("trusted_root.json").await.expect("dl"),
        trusted
    );
    assert_eq!(
        ours.target("rekor.pub")
            .expect("rekor.pub")
            .custom
            .as_ref()
            .expect("custom")["sigstore"]["usage"],
        "Rekor"
    );
    assert!(ours.target("fulcio_v1.crt.pem").is_some() && ours.target("ctfe.pub").is_some());

    // sigstore-python trusts the instance once, then signs through it; it and sigstore-js
    // (its TUF client pointed at us) verify
    let clients = TufClients::new(&dir, &dir.join("stack"), &stack);
    clients.trust_instance();
    let (artifact, bundle) = clients.sign("a");
    clients.verify(&artifact, &bundle, "through our TUF repository");
}

pub async fn tuf_attacks_are_refused_and_rotations_followed() {
    let dir = temp_dir("tuf-attacks");
    let data = dir.join("stack");
    let (stack_proc, stack, ports) = dev_stack_on_fixed_ports(&data);
    let port_args: Vec<&str> = ports.iter().map(String::as_str).collect();
    let clients = TufClients::new(&dir, &data, &stack);
    clients.trust_instance();
    let (a0, b0) = clients.sign("before-rotations");
    clients.verify(&a0, &b0, "before the rotations");
    let base = stack["services"]["tuf"]["url"]
        .as_str()
        .expect("url")
        .to_string();
    let db = stack["database_url"].as_str().expect("db").to_string();
    let root_path = PathBuf::from(stack["services"]["tuf"]["root"].as_str().expect("root"));
    let root_bytes = std::fs::read(&root_path).expect("root");
    let http = http();
    let s1 = dir.join("s1");
    mirror(&http, &base, &s1).await;
    let ts1 = version_in(&s1, "timestamp.json", "/signed/version");

    // a new targets version (ceremony CLI): the service signs snapshot and timestamp for it
    let staged = dir.join("staged");
    let targets_key = data.join("tuf-ceremony/keys/targets-1.pem");
    let (ok, out) = sigstackd(&[
        "tuf",
        "stage-targets",
        "--database-url",
        &db,
        "--trust-dir",
        data.to_str().expect("utf8"),
        "--out",
        staged.to_str().expect("utf8"),
        "--key",
        targets_key.to_str().expect("utf8"),
    ]);
    assert!(ok, "stage-targets: {out}");
    let staged_file = std::fs::read_dir(&staged)
        .expect("staged")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".targets.json"))
        .expect("staged targets");
    // unsigned-by-threshold metadata is refused at publication
    let mut unsigned =
        Envelope::parse(&std::fs::read(&staged_file).expect("r"), "targets").expect("env");
    unsigned.signatures.clear();
    let bad = dir.join("unsigned");
    std::fs::create_dir_all(&bad).expect("dir");
    let bad_file = bad.join(staged_file.file_name().expect("name"));
    std::fs::write(&bad_file, unsigned.to_bytes()).expect("w");
    let (ok, out) = sigstackd(&[
        "tuf",
        "publish",
        "--database-url",
        &db,
        bad_file.to_str().expect("utf8"),
        "--targets-dir",
        staged.join("targets").to_str().expect("utf8"),
    ]);
    assert!(
        !ok && out.contains("signature"),
        "unsigned targets refused: {out}"
    );
    let (ok, out) = sigstackd(&[
        "tuf",
        "publish",
        "--database-url",
        &db,
        staged_file.to_str().expect("utf8"),
    ]);
    assert!(ok, "publish: {out}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let s2 = dir.join("s2");
    loop {
        let (_, ts) = get_json(&http, &format!("{base}/timestamp.json")).await;
        if ts["signed"]["version"].as_u64() > Some(ts1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the service did not re-sign the timestamp"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    mirror(&http, &base, &s2).await;
    assert!(version_in(&s2, "timestamp.json", "/signed/version") > ts1);

    // each attack on a copy of the mirror: python-tuf and our client both refuse
    let online = FileSigner::load(&data.join("keys/tuf-online.pem")).expect("online key");
    let attack = |name: &str, mutate: &dyn Fn(&Path)| {
        let d = dir.join(format!("attack-{name}"));
        copy_dir(&s2, &d);
        mutate(&d);
        d
    };
    let check_refused = |name: &'static str, d: PathBuf, meta: PathBuf| {
        let root_path = root_path.clone();
        let root_bytes = root_bytes.clone();
        async move {
            let (_server, url) = static_server(&d);
            let (ok, out) = python_tuf(&url, &root_path, &meta, &d.with_extension("dl"));
            assert!(!ok, "python-tuf must refuse the {name} attack: {out}");
            assert!(out.contains("refused"), "{name}: {out}");
            let mut ours = Updater::new(DirFetch(d.clone()), &root_bytes).expect("root");
            let refused = match ours.refresh(now()).await {
                Err(_) => true,
                Ok(()) => ours.download("trusted_root.json").await.is_err(),
            };
            assert!(refused, "our client must refuse the {name} attack");
        }
    };
    // 1. a target whose bytes were changed
    let d = attack("tampered-target", &|d| {
        for e in std::fs::read_dir(d.join("targets")).expect("read") {
            let p = e.expect("e").path();
            if p.to_string_lossy().ends_with(".trusted_root.json") {
                let mut b = std::fs::read(&p).expect("r");
                b.extend_from_slice(b" ");
                std::fs::write(&p, b).expect("w");
            }
        }
    });
    check_refused("tampered target", d.clone(), d.with_extension("meta")).await;
    // 2. an expired timestamp (validly signed by the online key)
    let d = attack("expired-timestamp", &|d| {
        let env = Envelope::parse(
            &std::fs::read(d.join("timestamp.json")).expect("r"),
            "timestamp",
        )
        .expect("env");
        let mut signed = env.signed.clone();
        signed["version"] = serde_json::json!(signed["version"].as_u64().expect("v") + 1);
        signed["expires"] = serde_json::json!("2020-01-01T00:00:00Z");
        let mut env = Envelope {
            signatures: Vec::new(),
            signed,
        };
        env.sign(&online).expect("sign");
        std::fs::write(d.join("timestamp.json"), env.to_bytes()).expect("w");
    });
    check_refused("expired timestamp", d.clone(), d.with_extension("meta")).await;
    // 3. a new root signed below threshold (by a key the trusted root does not list)
    let d = attack("weak-root", &|d| {
        let env = Envelope::parse(&std::fs::read(d.join("1.root.json")).expect("r"), "root")
            .expect("env");
        let mut signed = env.signed.clone();
        signed["version"] = serde_json::json!(2);
        let mut env = Envelope {
            signatures: Vec::new(),
            signed,
        };
        env.sign(&FileSigner::generate(Curve::P256)).expect("sign");
        std::fs::write(d.join("2.root.json"), env.to_bytes()).expect("w");
    });
    check_refused("root below threshold", d.clone(), d.with_extension("meta")).await;
    // 4. mix-and-match: the snapshot's targets swapped for another validly signed one
    let tv = version_in(
        &s2,
        &format!(
            "{}.snapshot.json",
            version_in(&s2, "timestamp.json", "/signed/meta/snapshot.json/version")
        ),
        "/signed/meta/targets.json/version",
    );
    let targets_signer = FileSigner::load(&targets_key).expect("targets key");
    let d = attack("mix-and-match", &|d| {
        let p = d.join(format!("{tv}.targets.json"));
        let env = Envelope::parse(&std::fs::read(&p).expect("r"), "targets").expect("env");
        let mut signed = env.signed.clone();
        signed["expires"] = serde_json::json!("2099-01-01T00:00:00Z");
        let mut env = Envelope {
            signatures: Vec::new(),
            signed,
        };
        env.sign(&targets_signer).expect("sign");
        std::fs::write(&p, env.to_bytes()).expect("w");
    });
    check_refused("mix-and-match", d.clone(), d.with_extension("meta")).await;
    // 5. rollback: a client that saw the newer repository is served the older one
    let meta = dir.join("rollback-meta");
    {
        let (_server, url) = static_server(&s2);
        let (ok, out) = python_tuf(&url, &root_path, &meta, &dir.join("rollback-dl"));
        assert!(ok, "python-tuf on the newer repository: {out}");
    }
    let old = dir.join("attack-rollback");
    copy_dir(&s1, &old);
    {
        let (_server, url) = static_server(&old);
        let (ok, out) = python_tuf(&url, &root_path, &meta, &dir.join("rollback-dl2"));
        assert!(
            !ok && out.contains("refused"),
            "python-tuf must refuse the rollback: {out}"
        );
    }
    let mut ours = Updater::new(DirFetch(s2.clone()), &root_bytes).expect("root");
    ours.refresh(now()).await.expect("newer");
    let newer = ours.trusted().clone();
    let mut ours = Updater::new(DirFetch(old), &root_bytes)
        .expect("root")
        .with_cached(
            Some(&newer.timestamp.as_ref().expect("ts").0),
            Some(&newer.snapshot.as_ref().expect("snap").0),
        )
        .expect("cache");
    assert!(
        matches!(ours.refresh(now()).await, Err(TufError::Rollback { .. })),
        "our client refuses the rollback"
    );

    // root rotation: a new root key, the new root signed by the old and the new key
    let new_root_key = dir.join("new-root.pem");
    std::fs::write(
        &new_root_key,
        FileSigner::generate(Curve::P256)
            .to_pkcs8_pem()
            .expect("pem"),
    )
    .expect("w");
    let old_root_key = data.join("tuf-ceremony/keys/root-1.pem");
    let rot = dir.join("rotation");
    // signed by the new key alone: publication refuses it
    let (ok, out) = sigstackd(&[
        "tuf",
        "stage-root",
        "--database-url",
        &db,
        "--out",
        rot.to_str().expect("u"),
        "--root-key",
        new_root_key.to_str().expect("u"),
        "--sign-key",
        new_root_key.to_str().expect("u"),
    ]);
    assert!(ok, "stage-root: {out}");
    let (ok, out) = sigstackd(&[
        "tuf",
        "publish",
        "--database-url",
        &db,
        rot.join("2.root.json").to_str().expect("u"),
    ]);
    assert!(
        !ok,
        "a root without the old keys' signatures is refused: {out}"
    );
    let (ok, out) = sigstackd(&[
        "tuf",
        "sign",
        "--key",
        old_root_key.to_str().expect("u"),
        rot.join("2.root.json").to_str().expect("u"),
    ]);
    assert!(ok, "tuf sign: {out}");
    let (ok, out) = sigstackd(&[
        "tuf",
        "publish",
        "--database-url",
        &db,
        rot.join("2.root.json").to_str().expect("u"),
    ]);
    assert!(ok, "publish the rotated root: {out}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while http
        .get(format!("{base}/2.root.json"))
        .send()
        .await
        .expect("get")
        .status()
        != 200
    {
        assert!(Instant::now() < deadline, "the service did not load root 2");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (ok, out) = python_tuf(
        &base,
        &root_path,
        &dir.join("after-rotation"),
        &dir.join("after-rotation-dl"),
    );
    assert!(ok, "python-tuf follows the root rotation: {out}");
    let got: Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(got["root_version"], 2);
    let mut ours = Updater::new(
        HttpFetch {
            http: http.clone(),
            base: base.clone(),
        },
        &root_bytes,
    )
    .expect("root");
    ours.refresh(now())
        .await
        .expect("our client follows the rotation");
    assert_eq!(ours.trusted().root.1.version, 2);
    // online key rotation: root 3 names a new snapshot/timestamp key; the service,
    // restarted with it, re-signs both at once
    let new_online = dir.join("new-online.pem");
    write_private(
        &new_online,
        FileSigner::generate(Curve::P256)
            .to_pkcs8_pem()
            .expect("pem"),
    );
    let (ok, out) = sigstackd(&[
        "tuf",
        "stage-root",
        "--database-url",
        &db,
        "--out",
        rot.to_str().expect("u"),
        "--online-key",
        new_online.to_str().expect("u"),
        "--sign-key",
        new_root_key.to_str().expect("u"),
    ]);
    assert!(ok, "stage-root: {out}");
    let (ok, out) = sigstackd(&[
        "tuf",
        "publish",
        "--database-url",
        &db,
        rot.join("3.root.json").to_str().expect("u"),
    ]);
    assert!(ok, "publish root 3: {out}");
    drop(stack_proc);
    std::fs::copy(&new_online, data.join("keys/tuf-online.pem"))
        .expect("install the new online key");
    let (_stack, stack) = crate::keyless::dev_stack_with(&data, &port_args);
    assert_eq!(
        stack["services"]["tuf"]["url"],
        base.as_str(),
        "same address"
    );
    let (ok, out) = python_tuf(
        &base,
        &root_path,
        &dir.join("after-online-rotation"),
        &dir.join("after-online-dl"),
    );
    assert!(ok, "python-tuf after the online key rotation: {out}");
    assert_eq!(
        serde_json::from_str::<Value>(out.trim()).expect("json")["root_version"],
        3
    );
    let ts = Envelope::parse(
        &http
            .get(format!("{base}/timestamp.json"))
            .send()
            .await
            .expect("get")
            .bytes()
            .await
            .expect("b"),
        "timestamp",
    )
    .expect("ts");
    assert_eq!(
        ts.signatures[0].keyid,
        sigstack_tuf::metadata::key_id_of(FileSigner::load(&new_online).expect("k").public_key())
            .expect("id"),
        "the timestamp is signed by the new online key"
    );

    // the same clients, with their caches from before both rotations, follow them:
    // the old bundle still verifies, and they sign and verify a new one
    clients.verify(&a0, &b0, "after the root and online key rotations");
    let (a1, b1) = clients.sign("after-rotations");
    clients.verify(&a1, &b1, "after the root and online key rotations");
}

pub async fn tuf_ceremony_refuses_what_cannot_work() {
    let dir = temp_dir("tuf-ceremony");
    let trust = dir.join("trust");
    // a stack's trust files to publish
    let (stack_proc, stack) = dev_stack(&dir.join("stack"), None);
    drop(stack_proc);
    std::fs::create_dir_all(&trust).expect("dir");
    for f in ["trusted_root.json", "signing_config.v0.2.json"] {
        std::fs::copy(dir.join("stack").join(f), trust.join(f)).expect("copy");
    }
    let _ = stack;
    let init = |extra: &[&str], ceremony: &Path, online: &Path| {
        let mut args = vec![
            "tuf",
            "init",
            "--trust-dir",
            trust.to_str().expect("u"),
            "--ceremony-dir",
            ceremony.to_str().expect("u"),
            "--online-key",
            online.to_str().expect("u"),
        ];
        args.extend_from_slice(extra);
        sigstackd(&args)
    };
    let service = dir.join("service");
    let (ok, out) = init(
        &["--root-keys", "1", "--root-threshold", "2"],
        &dir.join("c1"),
        &service.join("online.pem"),
    );
    assert!(!ok && out.contains("cannot be met"), "{out}");
    let (ok, out) = init(
        &["--targets-threshold", "0"],
        &dir.join("c2"),
        &service.join("online.pem"),
    );
    assert!(!ok && out.contains("cannot be met"), "{out}");
    // the online key inside the ceremony directory, or offline keys beside the online key
    let (ok, out) = init(&[], &dir.join("c3"), &dir.join("c3/online.pem"));
    assert!(!ok && out.contains("apart"), "{out}");
    let (ok, out) = init(&[], &service.join("ceremony"), &service.join("online.pem"));
    assert!(!ok && out.contains("apart"), "{out}");
    assert!(!service.join("ceremony/keys").exists(), "nothing written");
    // a good ceremony: 3 root keys, threshold 2; keys 0600 in a 0700 directory
    let c = dir.join("good");
    let (ok, out) = init(&[], &c, &service.join("online.pem"));
    assert!(ok, "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&c.join("keys")), 0o700);
        assert_eq!(mode(&c.join("keys/root-1.pem")), 0o600);
    }
    let root: Value =
        serde_json::from_slice(&std::fs::read(c.join("1.root.json")).expect("root")).expect("json");
    assert_eq!(root["signed"]["roles"]["root"]["threshold"], 2);
    assert_eq!(root["signatures"].as_array().expect("sigs").len(), 3);
    let (ok, _) = init(&[], &c, &service.join("online.pem"));
    assert!(!ok, "a second ceremony in the same directory is refused");
}

/// A CA rotation published through TUF: the dev stack restarts with a new CA chain; the
/// trusted root keeps the old chain end-dated (a new targets version); sigstore-python and sigstore-js, with their TUF caches from before, verify
/// the bundle signed before the rotation and one signed after; python-tuf refreshes.
pub async fn tuf_trust_rotation_keeps_old_signatures_valid() {
    let dir = temp_dir("tuf-rotate");
    let data = dir.join("stack");
    let (first, stack, ports) = dev_stack_on_fixed_ports(&data);
    let args: Vec<&str> = ports.iter().map(String::as_str).collect();
    let clients = TufClients::new(&dir, &data, &stack);
    clients.trust_instance();
    let (a1, b1) = clients.sign("before");
    clients.verify(&a1, &b1, "before the rotation");
    let meta = dir.join("ptuf-meta");
    let (ok, out) = python_tuf(&clients.base, &clients.root, &meta, &dir.join("ptuf-dl"));
    assert!(ok, "{out}");

    // rotate: a new CA chain (root and intermediate)
    drop(first);
    for f in ["ca-root.pem", "ca-intermediate.pem", "ca-chain.pem"] {
        std::fs::remove_file(data.join("keys").join(f)).expect("remove key");
    }
    let (_second, _) = crate::keyless::dev_stack_with(&data, &args);
    let trusted: Value = serde_json::from_slice(
        &std::fs::read(data.join("trusted_root.json")).expect("trusted root"),
    )
    .expect("json");
    let cas = trusted["certificateAuthorities"].as_array().expect("cas");
    assert_eq!(cas.len(), 2, "old and new CA");
    assert!(cas[0]["validFor"]["end"].is_string() && cas[1]["validFor"]["end"].is_null());
    assert_eq!(trusted["ctlogs"].as_array().expect("ctlogs").len(), 1);
    assert_eq!(
        trusted["tlogs"].as_array().expect("tlogs").len(),
        2,
        "the v1 and the v2 log"
    );

    let (ok, out) = python_tuf(&clients.base, &clients.root, &meta, &dir.join("ptuf-dl"));
    assert!(ok, "python-tuf refreshes after the rotation: {out}");
    let got: Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(
        std::fs::read(got["targets"]["trusted_root.json"].as_str().expect("p")).expect("r"),
        std::fs::read(data.join("trusted_root.json")).expect("r"),
        "the new trusted root is published"
    );
    let (a2, b2) = clients.sign("after");
    clients.verify(&a1, &b1, "after the rotation");
    clients.verify(&a2, &b2, "after the rotation");
}

/// Production mode: the ceremony and publication by CLI into PostgreSQL, `sigstackd tuf`
/// as its own process (configured by environment), serving python-tuf; the expiry alarm
/// in `/healthz` and `/metrics`; a service whose online key the root does not name
/// refuses to start.
pub async fn tuf_standalone_on_postgres() {
    let dir = temp_dir("tuf-pg");
    let (stack_proc, _) = dev_stack(&dir.join("stack"), None);
    drop(stack_proc);
    let db = fresh_pg_database(&pg_admin_url()).await;
    let ceremony = dir.join("ceremony");
    let online = dir.join("service/online.pem");
    let (ok, out) = sigstackd(&[
        "tuf",
        "init",
        "--trust-dir",
        dir.join("stack").to_str().expect("u"),
        "--ceremony-dir",
        ceremony.to_str().expect("u"),
        "--online-key",
        online.to_str().expect("u"),
        "--targets-expires-days",
        "20",
    ]);
    assert!(ok, "{out}");
    let (ok, out) = sigstackd(&[
        "tuf",
        "publish",
        "--database-url",
        &db,
        ceremony.join("1.root.json").to_str().expect("u"),
        ceremony.join("1.targets.json").to_str().expect("u"),
    ]);
    assert!(ok && out.contains("published 1.root.json"), "{out}");
    let svc_dir = dir.join("service");
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let tuf = crate::castack::Proc::spawn(
        "tuf",
        "SIGSTACK_TUF_",
        &[
            ("DATABASE_URL", db.clone()),
            ("ONLINE_KEY", online.display().to_string()),
            ("POLL_SECS", "1".into()),
        ],
        &svc_dir,
        None,
    )
    .await;
    let http = http();
    // targets expire in 20 days, inside the default 30-day alarm window
    let (st, health) = get_json(&http, &format!("{}/healthz", tuf.url)).await;
    assert_eq!(
        (st, health["status"].as_str()),
        (200, Some("warning")),
        "{health}"
    );
    assert!(
        health["roles"]["targets"]["expires_in_seconds"]
            .as_i64()
            .expect("s")
            < 21 * 86_400
    );
    let metrics = http
        .get(format!("{}/metrics", tuf.url))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("t");
    // online versions count from the clock: never below what a restored database held
    let ts_version: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("sigstack_tuf_version{role=\"timestamp\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(ts_version >= started - 5, "{ts_version} {metrics}");
    let (ok, out) = python_tuf(
        &tuf.url,
        &ceremony.join("1.root.json"),
        &dir.join("meta"),
        &dir.join("dl"),
    );
    assert!(ok, "python-tuf against sigstackd tuf on PostgreSQL: {out}");
    // another online key than the root names: refused at start
    let wrong = dir.join("wrong/online.pem");
    std::fs::create_dir_all(wrong.parent().expect("p")).expect("d");
    write_private(
        &wrong,
        FileSigner::generate(Curve::P256)
            .to_pkcs8_pem()
            .expect("pem"),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_sigstackd"))
        .arg("tuf")
        .env("SIGSTACK_TUF_DATABASE_URL", &db)
        .env("SIGSTACK_TUF_ONLINE_KEY", &wrong)
        .env("SIGSTACK_TUF_LISTEN", format!("127.0.0.1:{}", free_port()))
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not a snapshot key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
