//! Test support: real `sigstackd log` processes on loopback over a fresh SQLite file or
//! PostgreSQL database, signed entries, and checks of what the log returns.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sigstack_crypto::{Curve, FileSigner, PublicKey, Signer};
use sigstack_merkle::{Hash, leaf_hash, verify_inclusion};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn pg_admin_url() -> String {
    std::env::var("SIGSTACK_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A new, empty PostgreSQL database on the server at `admin_url`.
pub async fn fresh_pg_database(admin_url: &str) -> String {
    let admin = sqlx::PgPool::connect(admin_url)
        .await
        .expect("PostgreSQL reachable");
    let name = format!("sigstack_t_{:016x}", rand::random::<u64>());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .expect("create database");
    admin.close().await;
    let i = admin_url.rfind('/').expect("URL ends in /db");
    format!("{}/{name}", &admin_url[..i])
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sigstack-it-{tag}-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// reqwest is built with rustls but no default crypto provider (the server installs
/// aws-lc-rs at start); test processes install the same before making clients.
pub fn install_tls() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// An HTTP client for tests.
pub fn http() -> reqwest::Client {
    install_tls();
    reqwest::Client::new()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A `sigstackd log` child process.
pub struct Server {
    child: Option<Child>,
    pub url: String,
    pub dir: PathBuf,
    pub database_url: String,
    pub key: PublicKey,
    env: Vec<(String, String)>,
}

impl Server {
    pub async fn start(backend: Backend) -> Server {
        let database_url = match backend {
            Backend::Sqlite => String::new(),
            Backend::Postgres => fresh_pg_database(&pg_admin_url()).await,
        };
        Self::start_on(backend, database_url, &[]).await
    }

    /// Starts on a given database (empty for a new SQLite file) with extra settings.
    pub async fn start_on(
        backend: Backend,
        database_url: String,
        extra: &[(&str, &str)],
    ) -> Server {
        let dir = temp_dir("log");
        let key = FileSigner::generate(Curve::P256);
        let key_path = dir.join("log.pem");
        write_private(&key_path, key.to_pkcs8_pem().expect("pem"));
        let database_url = match backend {
            Backend::Sqlite if database_url.is_empty() => {
                format!("sqlite://{}", dir.join("log.db").display())
            }
            _ => database_url,
        };
        let port = free_port();
        let mut env = vec![
            (
                "SIGSTACK_LOG_LISTEN".to_string(),
                format!("127.0.0.1:{port}"),
            ),
            (
                "SIGSTACK_LOG_DATABASE_URL".to_string(),
                database_url.clone(),
            ),
            (
                "SIGSTACK_LOG_SIGNING_KEY".to_string(),
                key_path.display().to_string(),
            ),
            ("SIGSTACK_LOG".to_string(), "warn".to_string()),
        ];
        for (k, v) in extra {
            // "self": this process's own URL (a replica's advertise_url)
            let v = if *v == "self" {
                format!("http://127.0.0.1:{port}")
            } else {
                v.to_string()
            };
            env.push((k.to_string(), v));
        }
        let mut s = Server {
            child: None,
            url: format!("http://127.0.0.1:{port}"),
            dir,
            database_url,
            key: key.public_key().clone(),
            env,
        };
        s.spawn().await;
        s
    }

    /// A second process on the same database and key, on another port.
    pub async fn replica(&self) -> Server {
        let port = free_port();
        let mut env = self.env.clone();
        for (k, v) in env.iter_mut() {
            if k == "SIGSTACK_LOG_LISTEN" {
                *v = format!("127.0.0.1:{port}");
            }
            if k == "SIGSTACK_LOG_ADVERTISE_URL" {
                *v = format!("http://127.0.0.1:{port}");
            }
        }
        let mut s = Server {
            child: None,
            url: format!("http://127.0.0.1:{port}"),
            dir: self.dir.clone(),
            database_url: self.database_url.clone(),
            key: self.key.clone(),
            env,
        };
        s.spawn().await;
        s
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!(
                "server-{}.log",
                self.url.rsplit(':').next().unwrap_or("x")
            )))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_sigstackd"))
            .arg("log")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn sigstackd");
        self.child = Some(child);
        self.wait_ready().await;
    }

    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = http();
        loop {
            if let Ok(r) = client.get(format!("{}/healthz", self.url)).send().await
                && r.status() == 200
            {
                return;
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!(
                    "sigstackd exited with {status}; see logs in {}",
                    self.dir.display()
                );
            }
            assert!(Instant::now() < deadline, "sigstackd did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs `sigstackd ARGS` with this server's configuration; returns stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_sigstackd"))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("run sigstackd");
        assert!(
            out.status.success(),
            "sigstackd {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Stops the server, replaces its key with a new one, and starts the process again;
    /// returns its exit status and log if it stops by itself within 20 s.
    pub async fn restart_with_new_key(&mut self) -> Option<(std::process::ExitStatus, String)> {
        self.kill();
        let key = FileSigner::generate(Curve::P256);
        let path = self.dir.join("other.pem");
        write_private(&path, key.to_pkcs8_pem().expect("pem"));
        for (k, v) in self.env.iter_mut() {
            if k == "SIGSTACK_LOG_SIGNING_KEY" {
                *v = path.display().to_string();
            }
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_sigstackd"))
            .arg("log")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                use std::io::Read;
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                return Some((status, err));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn b64(b: &[u8]) -> String {
    STANDARD.encode(b)
}

pub fn unb64(s: &str) -> Vec<u8> {
    STANDARD.decode(s).expect("base64")
}

/// A key that signs artifacts, and the hashedrekord requests for them.
pub struct Artifacts {
    pub key: FileSigner,
}

impl Artifacts {
    pub fn new() -> Self {
        Self {
            key: FileSigner::generate(Curve::P256),
        }
    }

    pub fn hashedrekord(&self, data: &[u8]) -> Value {
        let sig = self.key.sign(data).expect("sign");
        json!({
            "apiVersion": "0.0.1", "kind": "hashedrekord",
            "spec": {
                "signature": {"content": b64(&sig), "publicKey": {"content": b64(self.key.public_key().to_pem().as_bytes())}},
                "data": {"hash": {"algorithm": "sha256", "value": hex::encode(sigstack_crypto::sha256(data))}}
            }
        })
    }
}

/// One entry as the log answered it.
#[derive(Clone, Debug)]
pub struct Answer {
    pub id: String,
    pub entry: Value,
}

impl Answer {
    pub fn from_map(v: &Value) -> Answer {
        let obj = v.as_object().expect("LogEntry is an object");
        assert_eq!(obj.len(), 1, "one entry per LogEntry");
        let (id, entry) = obj.iter().next().expect("entry");
        Answer {
            id: id.clone(),
            entry: entry.clone(),
        }
    }

    pub fn global_index(&self) -> u64 {
        self.entry["logIndex"].as_u64().expect("logIndex")
    }

    pub fn body(&self) -> Vec<u8> {
        unb64(self.entry["body"].as_str().expect("body"))
    }

    pub fn leaf_hash(&self) -> Hash {
        leaf_hash(&self.body())
    }

    pub fn checkpoint(&self) -> String {
        self.entry["verification"]["inclusionProof"]["checkpoint"]
            .as_str()
            .expect("checkpoint")
            .to_string()
    }

    /// Everything a client checks: proof to the root, the checkpoint signed by the log
    /// over that root and size, the SET, and the entry ID naming this leaf.
    pub fn verify(&self, log_key: &PublicKey) {
        let p = &self.entry["verification"]["inclusionProof"];
        let index = p["logIndex"].as_u64().expect("proof logIndex");
        let size = p["treeSize"].as_u64().expect("treeSize");
        let root: Hash = hex::decode(p["rootHash"].as_str().expect("rootHash"))
            .expect("hex")
            .try_into()
            .expect("32");
        let hashes: Vec<Hash> = p["hashes"]
            .as_array()
            .expect("hashes always present")
            .iter()
            .map(|h| {
                hex::decode(h.as_str().expect("str"))
                    .expect("hex")
                    .try_into()
                    .expect("32")
            })
            .collect();
        verify_inclusion(&self.leaf_hash(), index, size, &hashes, &root)
            .expect("inclusion proof verifies");
        let cp = sigstack_log::checkpoint::verify(&self.checkpoint(), "127.0.0.1", log_key)
            .expect("checkpoint verifies");
        assert_eq!(
            (cp.size, cp.root),
            (size, root),
            "checkpoint matches the proof"
        );
        let log_id = hex::encode(sigstack_crypto::log_id(log_key.spki_der()));
        assert_eq!(self.entry["logID"], json!(log_id));
        let set = unb64(
            self.entry["verification"]["signedEntryTimestamp"]
                .as_str()
                .expect("SET"),
        );
        sigstack_log::set::verify(
            log_key,
            &set,
            self.entry["body"].as_str().expect("body"),
            self.entry["integratedTime"]
                .as_i64()
                .expect("integratedTime"),
            &log_id,
            self.global_index() as i64,
        )
        .expect("SET verifies");
        assert!(
            self.id.ends_with(&hex::encode(self.leaf_hash())),
            "entry ID names the leaf"
        );
        assert_eq!(self.id.len(), 80);
    }
}

pub async fn post_entry(client: &reqwest::Client, url: &str, entry: &Value) -> reqwest::Response {
    client
        .post(format!("{url}/api/v1/log/entries"))
        .json(entry)
        .send()
        .await
        .expect("request")
}

pub async fn get_json(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let r = client.get(url).send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Writes a private key or secret as an operator must: readable by its owner only.
/// A new RSA-2048 private key (PKCS#8 PEM, mode 0600) made by OpenSSL.
pub fn openssl_rsa_key(path: &std::path::Path) {
    let out = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(path)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl genpkey: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    write_private(path, std::fs::read(path).expect("key"));
}

pub fn write_private(path: &std::path::Path, bytes: impl AsRef<[u8]>) {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)
        .and_then(|mut f| f.write_all(bytes.as_ref()))
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// The string at `ptr` (a JSON pointer) in a stack.json.
pub fn stack_str(stack: &Value, ptr: &str) -> String {
    stack
        .pointer(ptr)
        .and_then(|v| v.as_str())
        .unwrap_or_else(|| panic!("stack.json has no {ptr}"))
        .to_string()
}

/// `python3 -m http.server` serving `dir` on a free loopback port, until dropped: any
/// static web server, as a copy of TUF metadata or of a log's tiles is served where no
/// stack runs. Returns the process and its URL once it answers.
pub fn static_server(dir: &std::path::Path) -> (crate::keyless::Killed, String) {
    std::fs::create_dir_all(dir).expect("served directory");
    let port = free_port();
    let child = std::process::Command::new("python3")
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--directory",
        ])
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 -m http.server");
    let server = crate::keyless::Killed::new(child);
    crate::keyless::wait_for("the static web server", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (server, format!("http://127.0.0.1:{port}"))
}

/// A network namespace with nothing but a loopback interface: nothing in it has a route
/// off this machine. Commands enter it through `nsenter`; it lives while its holder
/// (a sleeping process) does.
pub struct Netns {
    _holder: crate::keyless::Killed,
    path: String,
}

impl Netns {
    pub fn new() -> Self {
        let child = Command::new("unshare")
            .args(["--net", "--", "sleep", "3600"])
            .spawn()
            .expect("unshare --net (the tests run as root)");
        let path = format!("/proc/{}/ns/net", child.id());
        let holder = crate::keyless::Killed::new(child);
        let ours = std::fs::read_link("/proc/self/ns/net").expect("our namespace");
        crate::keyless::wait_for("the network namespace", || {
            std::fs::read_link(&path).is_ok_and(|ns| ns != ours)
        });
        let ns = Self {
            _holder: holder,
            path,
        };
        let mut up = Command::new("ip");
        up.args(["link", "set", "lo", "up"]);
        let (ok, out) = crate::keyless::run(&mut ns.wrap(up));
        assert!(ok, "bringing up the loopback interface: {out}");
        ns
    }

    /// The namespace, as `nsenter --net=` takes it.
    pub fn path(&self) -> String {
        self.path.clone()
    }

    /// `c` run inside the namespace.
    pub fn wrap(&self, c: Command) -> Command {
        in_netns(&self.path, c)
    }
}

/// `c` (program, arguments, environment and directory) as another program's arguments:
/// `runner PROGRAM ARGS...`.
fn wrapped_in(mut runner: Command, c: &Command) -> Command {
    runner.arg(c.get_program()).args(c.get_args());
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => runner.env(k, v),
            None => runner.env_remove(k),
        };
    }
    if let Some(d) = c.get_current_dir() {
        runner.current_dir(d);
    }
    runner
}

/// `c` run inside the network namespace at `ns` (a `/proc/PID/ns/net` path).
pub fn in_netns(ns: &str, c: Command) -> Command {
    let mut n = Command::new("nsenter");
    n.arg(format!("--net={ns}")).arg("--");
    wrapped_in(n, &c)
}

/// `c` run inside the namespace at `ns` under strace: every connection and datagram it
/// (and every process or thread it starts) attempts is written to `log`.
pub fn traced_in(ns: &str, c: Command, log: &std::path::Path) -> Command {
    let mut t = Command::new("strace");
    t.args([
        "-A",
        "-f",
        "-qq",
        "--seccomp-bpf",
        "-e",
        "trace=connect,sendto,sendmsg",
        "-o",
    ])
    .arg(log)
    .arg("--");
    in_netns(ns, wrapped_in(t, &c))
}

/// The IP addresses a strace log shows connections or datagrams to.
pub fn addresses_tried(log: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in log.lines().filter(|l| l.contains("sa_family=AF_INET")) {
        for start in ["inet_addr(\"", "AF_INET6, \""] {
            if let Some(at) = line.find(start) {
                let rest = &line[at + start.len()..];
                out.push(rest.split('"').next().unwrap_or_default().to_string());
            }
        }
    }
    out
}

/// Every file below `dir` (none when it does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}
