//! What the monitor tests run beside the stack: a webhook receiver, a proxy that can
//! serve a forged checkpoint in front of the tiled log, aiosmtpd (PyPI) as the mail
//! server, `sigstackd monitor` itself, and its metrics read back.

use crate::keyless::{Killed, venv, wait_for};
use crate::support::*;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use sigstack_crypto::Signer;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One webhook delivery as received.
#[derive(Clone, Debug)]
pub struct Got {
    pub event: String,
    pub delivery: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Got {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a webhook body is JSON")
    }
}

#[derive(Clone, Default)]
struct HookState {
    got: Arc<Mutex<Vec<Got>>>,
    fail_next: Arc<AtomicUsize>,
}

/// A webhook receiver on its own thread and runtime (the tests block theirs).
pub struct Hook {
    pub url: String,
    state: HookState,
}

async fn receive(
    State(s): State<HookState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    if s.fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    s.got.lock().expect("lock").push(Got {
        event: h("x-sigstack-event"),
        delivery: h("x-sigstack-delivery"),
        timestamp: h("x-sigstack-timestamp"),
        signature: h("x-sigstack-signature"),
        body: body.to_vec(),
        at: Instant::now(),
    });
    StatusCode::NO_CONTENT
}

/// Runs `app` on a free loopback port on a thread of its own; returns the base URL.
pub fn serve_on_thread(app: axum::Router) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(listener).expect("listener");
            axum::serve(l, app).await.expect("serve");
        });
    });
    url
}

impl Hook {
    pub fn start() -> Self {
        let state = HookState::default();
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(state.clone());
        let base = serve_on_thread(app);
        Hook {
            url: format!("{base}/hook"),
            state,
        }
    }

    pub fn got(&self) -> Vec<Got> {
        self.state.got.lock().expect("lock").clone()
    }

    /// Answers the next `n` deliveries with 503.
    pub fn fail_next(&self, n: usize) {
        self.state.fail_next.store(n, Ordering::SeqCst);
    }

    /// Waits (up to `limit`) for a delivery `pick` accepts.
    pub fn wait(&self, what: &str, limit: Duration, pick: impl Fn(&Got) -> bool) -> Got {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(g) = self.got().into_iter().find(|g| pick(g)) {
                return g;
            }
            assert!(
                Instant::now() < deadline,
                "no webhook delivery {what} within {limit:?}; got: {:?}",
                self.got()
                    .iter()
                    .map(|g| String::from_utf8_lossy(&g.body).into_owned())
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A proxy in front of a tiled log that serves its tiles as they are and, when told, a
/// checkpoint of the test's choosing instead of the log's.
pub struct Proxy {
    pub url: String,
    checkpoint: Arc<Mutex<Option<String>>>,
}

#[derive(Clone)]
struct ProxyState {
    upstream: String,
    checkpoint: Arc<Mutex<Option<String>>>,
    http: reqwest::Client,
}

async fn forward(State(s): State<ProxyState>, uri: axum::http::Uri) -> (StatusCode, Vec<u8>) {
    if uri.path() == "/checkpoint"
        && let Some(c) = s.checkpoint.lock().expect("lock").clone()
    {
        return (StatusCode::OK, c.into_bytes());
    }
    match s
        .http
        .get(format!("{}{}", s.upstream, uri.path()))
        .send()
        .await
    {
        Ok(r) => (
            StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
            r.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
        ),
        Err(_) => (StatusCode::BAD_GATEWAY, Vec::new()),
    }
}

impl Proxy {
    pub fn start(upstream: &str) -> Self {
        install_tls();
        let checkpoint = Arc::new(Mutex::new(None));
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(ProxyState {
                upstream: upstream.trim_end_matches('/').to_string(),
                checkpoint: checkpoint.clone(),
                http: reqwest::Client::new(),
            });
        Proxy {
            url: serve_on_thread(app),
            checkpoint,
        }
    }

    /// Serves `note` as the checkpoint from now on (`None`: the log's own again).
    pub fn serve_checkpoint(&self, note: Option<String>) {
        *self.checkpoint.lock().expect("lock") = note;
    }
}

/// aiosmtpd delivering into a maildir.
pub struct MailSink {
    pub addr: String,
    pub maildir: PathBuf,
    _proc: Killed,
}

impl MailSink {
    pub fn start(dir: &Path) -> Self {
        let maildir = dir.join("maildir");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let proc_ = Command::new(venv().join("bin/python"))
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &addr,
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("aiosmtpd.log")).expect("log"))
            .spawn()
            .expect("aiosmtpd (tests/interop/python/requirements.txt)");
        wait_for("aiosmtpd", || std::net::TcpStream::connect(&addr).is_ok());
        MailSink {
            addr,
            maildir,
            _proc: Killed::new(proc_),
        }
    }

    /// Every message received, as text.
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(rd) = std::fs::read_dir(self.maildir.join(sub)) {
                for e in rd.flatten() {
                    if let Ok(t) = std::fs::read_to_string(e.path()) {
                        out.push(t);
                    }
                }
            }
        }
        out
    }

    /// Waits (up to `limit`) for a message containing every one of `needles`; returns
    /// when it was seen.
    pub fn wait(&self, what: &str, limit: Duration, needles: &[&str]) -> Instant {
        let deadline = Instant::now() + limit;
        loop {
            if self
                .messages()
                .iter()
                .any(|m| needles.iter().all(|n| m.contains(n)))
            {
                return Instant::now();
            }
            assert!(
                Instant::now() < deadline,
                "no e-mail {what} within {limit:?}; got {} message(s): {:?}",
                self.messages().len(),
                self.messages()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `sigstackd monitor -c CONFIG`, waited for until it answers.
pub fn start_monitor(dir: &Path, config: &str) -> (Killed, String) {
    let cfg = dir.join("monitor.toml");
    std::fs::write(&cfg, config).expect("config");
    let url = config
        .lines()
        .find_map(|l| l.strip_prefix("listen = \""))
        .map(|a| format!("http://{}", a.trim_end_matches('"')))
        .expect("listen in the config");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("monitor.log"))
        .expect("log");
    let child = Command::new(env!("CARGO_BIN_EXE_sigstackd"))
        .args(["monitor", "-c"])
        .arg(&cfg)
        .env("SIGSTACK_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("sigstackd monitor");
    let health = format!("{url}/healthz");
    wait_for("sigstackd monitor", || {
        std::process::Command::new(env!("CARGO_BIN_EXE_sigstackd"))
            .args(["probe", &health])
            .status()
            .is_ok_and(|s| s.success())
    });
    (Killed::new(child), url)
}

/// A gauge of the monitor's `/metrics` for one log.
pub async fn gauge(url: &str, name: &str, log: &str) -> u64 {
    let text = text_of(&format!("{url}/metrics")).await;
    let prefix = format!("{name}{{log=\"{log}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// Waits until the monitor has verified `log` up to at least `size` entries.
pub async fn verified(url: &str, log: &str, size: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while gauge(url, "sigstack_monitor_verified_size", log).await < size {
        assert!(
            Instant::now() < deadline,
            "the monitor did not verify {log} up to {size} entries"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The log index of a bundle's (first) transparency log entry.
pub fn bundle_index(bundle: &Path) -> u64 {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle).expect("bundle")).expect("json");
    v.pointer("/verificationMaterial/tlogEntries/0/logIndex")
        .and_then(|i| i.as_str().and_then(|s| s.parse().ok()).or(i.as_u64()))
        .expect("a log index in the bundle")
}

/// How long a delivery may take before the test gives up. The issue's target (5 s at
/// 100 signings/s) is measured and written to target/test-artifacts/, not asserted:
/// a shared CI machine's timing is no test's business.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub fn token(stack_dir: &Path, email: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sigstackd"))
        .args(["dev-token", "--email", email, "--data-dir"])
        .arg(stack_dir)
        .output()
        .expect("dev-token");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Posts entries signed by throwaway keys to both logs at `per_second` until stopped.
pub fn background_load(
    v1: String,
    v2: String,
    per_second: u64,
) -> (Arc<AtomicBool>, Arc<AtomicU64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let (s, n) = (stop.clone(), sent.clone());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let http = http();
            let key = Artifacts::new();
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / per_second));
            let mut i = 0u64;
            while !s.load(Ordering::SeqCst) {
                tick.tick().await;
                i += 1;
                let data = format!("background {i} {}", rand::random::<u64>());
                let (http, n) = (http.clone(), n.clone());
                let req = if i.is_multiple_of(2) {
                    (
                        format!("{v1}/api/v1/log/entries"),
                        key.hashedrekord(data.as_bytes()),
                    )
                } else {
                    (
                        format!("{v2}/api/v2/log/entries"),
                        v2_request(&key, data.as_bytes()),
                    )
                };
                tokio::spawn(async move {
                    if let Ok(r) = http.post(&req.0).json(&req.1).send().await
                        && r.status().is_success()
                    {
                        n.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
    });
    (stop, sent)
}

pub fn v2_request(a: &Artifacts, data: &[u8]) -> Value {
    let digest = sigstack_crypto::sha256(data);
    let sig = a.key.sign_sha256_digest(&digest).expect("sign");
    serde_json::json!({"hashedRekordRequestV002": {
        "digest": b64(&digest),
        "signature": {"content": b64(&sig), "verifier": {
            "publicKey": {"rawBytes": b64(a.key.public_key().spki_der())},
            "keyDetails": "PKIX_ECDSA_P256_SHA_256"}}}})
}

pub fn monitor_config(dir: &Path, stack: &Value, listen: &str, extra: &str) -> String {
    let s = |ptr: &str| stack_str(stack, ptr);
    format!(
        r#"listen = "{listen}"
database = "{db}"
trusted_root = "{root}"
poll_ms = 200
{extra}
[[log]]
name = "rekor"
kind = "rekor-v1"
url = "{v1}"

[[log]]
name = "ctlog"
kind = "ct"
url = "{ct}"
"#,
        db = dir.join("monitor.db").display(),
        root = s("/trusted_root"),
        v1 = s("/services/log/url"),
        ct = s("/services/ctlog/url"),
    )
}

/// The body of `GET url` as text.
pub async fn text_of(url: &str) -> String {
    http()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .text()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// `sigstack` with a home in `dir/home`, initialized on the dev stack's TUF repository.
pub fn sigstack_on(dir: &Path, stack: &Value) -> crate::sigstack_cli::Sigstack {
    let cli = crate::sigstack_cli::Sigstack::new(&dir.join("home"));
    let init = cli.run(&[
        "initialize",
        "--mirror",
        &stack_str(stack, "/services/tuf/url"),
        "--root",
        &stack_str(stack, "/services/tuf/root"),
    ]);
    assert!(init.ok(), "sigstack initialize: {init}");
    cli
}
