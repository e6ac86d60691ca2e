//! Faults under load: the log process killed with SIGKILL, and its PostgreSQL server
//! restarted. No acknowledged entry may be lost and every checkpoint ever handed out
//! must stay consistent with the tree.

use crate::api::check_consistency;
use crate::support::*;
use serde_json::Value;
use sigstack_merkle::Hash;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    pub(crate) acked: Arc<Mutex<Vec<Answer>>>,
    statuses: Arc<Mutex<Vec<(std::time::Instant, u16)>>>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

/// `n` clients posting new entries back to back until stopped.
pub(crate) fn load(url: &str, n: usize) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let statuses = Arc::new(Mutex::new(Vec::new()));
    install_tls();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("client");
    let artifacts = Arc::new(Artifacts::new());
    let workers = (0..n)
        .map(|w| {
            let (stop, acked, statuses, client, a, url) = (
                stop.clone(),
                acked.clone(),
                statuses.clone(),
                client.clone(),
                artifacts.clone(),
                url.to_string(),
            );
            tokio::spawn(async move {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let entry = a
                        .hashedrekord(format!("load {w} {i} {}", rand::random::<u64>()).as_bytes());
                    match client
                        .post(format!("{url}/api/v1/log/entries"))
                        .json(&entry)
                        .send()
                        .await
                    {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            statuses
                                .lock()
                                .expect("lock")
                                .push((std::time::Instant::now(), status));
                            if status == 201
                                && let Ok(v) = r.json::<Value>().await
                            {
                                acked.lock().expect("lock").push(Answer::from_map(&v));
                            }
                        }
                        Err(e) if e.is_timeout() => {
                            statuses
                                .lock()
                                .expect("lock")
                                .push((std::time::Instant::now(), 0));
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
            })
        })
        .collect();
    Load {
        stop,
        acked,
        statuses,
        workers,
    }
}

impl Load {
    pub(crate) async fn finish(self) -> (Vec<Answer>, Vec<(std::time::Instant, u16)>) {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers {
            let _ = w.await;
        }
        let acked = std::mem::take(&mut *self.acked.lock().expect("lock"));
        let statuses = std::mem::take(&mut *self.statuses.lock().expect("lock"));
        (acked, statuses)
    }
}

/// Every acknowledged entry is in the tree at its index with a valid proof, and every
/// checkpoint handed out is consistent with the current head.
pub(crate) async fn audit(server: &Server, acked: &[Answer]) {
    let c = http();
    let (_, info) = get_json(&c, &format!("{}/api/v1/log", server.url)).await;
    let size = info["treeSize"].as_u64().expect("size");
    let head: Hash = hex::decode(info["rootHash"].as_str().expect("root"))
        .expect("hex")
        .try_into()
        .expect("32");
    assert!(size >= acked.len() as u64);
    for ans in acked {
        let (st, v) = get_json(
            &c,
            &format!(
                "{}/api/v1/log/entries?logIndex={}",
                server.url,
                ans.global_index()
            ),
        )
        .await;
        assert_eq!(
            st,
            200,
            "acknowledged entry {} is missing",
            ans.global_index()
        );
        let now = Answer::from_map(&v);
        assert_eq!(
            now.entry["body"],
            ans.entry["body"],
            "entry {} changed",
            ans.global_index()
        );
        now.verify(&server.key);
    }
    let mut checkpoints: Vec<(u64, Hash)> = acked
        .iter()
        .map(|a| {
            let cp = sigstack_log::checkpoint::verify(&a.checkpoint(), "127.0.0.1", &server.key)
                .expect("cp");
            (cp.size, cp.root)
        })
        .collect();
    checkpoints.sort();
    checkpoints.dedup();
    for (s, root) in checkpoints {
        check_consistency(&c, &server.url, s, &root, size, &head).await;
    }
}

pub async fn sigkill_during_load_loses_nothing(b: Backend) {
    let mut server = Server::start(b).await;
    let l = load(&server.url, 16);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (acked, _) = l.finish().await;
    assert!(
        acked.len() >= 20,
        "load too light to test anything: {} entries",
        acked.len()
    );
    server.restart().await;
    audit(&server, &acked).await;
    // the log goes on where it stopped
    let c = http();
    let (_, info) = get_json(&c, &format!("{}/api/v1/log", server.url)).await;
    let r = post_entry(
        &c,
        &server.url,
        &Artifacts::new().hashedrekord(b"after the crash"),
    )
    .await;
    assert_eq!(r.status(), 201);
    let after = Answer::from_map(&r.json().await.expect("json"));
    assert_eq!(Some(after.global_index()), info["treeSize"].as_u64());
    after.verify(&server.key);
}

/// A PostgreSQL cluster of our own (initdb + pg_ctl), so the test can restart it
/// without disturbing anything else on the machine.
pub(crate) struct PrivatePg {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
}

fn pg_bin() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries under /usr/lib/postgresql")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    dirs.sort();
    dirs.pop().expect("an initdb")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

impl PrivatePg {
    /// Runs a PostgreSQL tool with its output in a file: `pg_ctl start` leaves the server
    /// holding whatever stdout it was given, so a pipe would never reach end of file.
    /// A PostgreSQL tool, run as the postgres user when we are root (the server refuses root).
    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out_path = self.dir.join(format!("{tool}.out"));
        let out = std::fs::File::create(&out_path).expect("output file");
        let err = out.try_clone().expect("clone");
        let status = self
            .command(tool)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .status()
            .expect("run a PostgreSQL tool");
        assert!(
            status.success(),
            "{tool} {args:?}: {}",
            std::fs::read_to_string(&out_path).unwrap_or_default()
        );
    }

    /// A directory for a cluster (given to the postgres user when we are root) and a
    /// free port; nothing in it yet.
    fn unstarted(name: &str) -> PrivatePg {
        let dir = temp_dir(name);
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .expect("chown");
            assert!(ok.success());
        }
        PrivatePg {
            dir,
            bin: pg_bin(),
            port: free_port(),
        }
    }

    pub(crate) fn start() -> PrivatePg {
        let pg = PrivatePg::unstarted("pg");
        let data = pg.dir.join("data");
        pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().expect("path"),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            pg.port,
            pg.dir.display()
        );
        let log = pg.dir.join("pg.log");
        pg.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().expect("path"),
                "-o",
                &opts,
                "-l",
                log.to_str().expect("path"),
                "-w",
                "start",
            ],
        );
        pg
    }

    pub(crate) fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server (`immediate`: as a crash or a lost host looks to clients).
    pub(crate) fn stop(&self) {
        let data = self.dir.join("data");
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().expect("path"),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }

    /// Starts it again after [`PrivatePg::stop`].
    pub(crate) fn start_again(&self) {
        let data = self.dir.join("data");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().expect("path"),
                "-o",
                &opts,
                "-l",
                self.dir.join("pg.log").to_str().expect("path"),
                "-w",
                "start",
            ],
        );
    }

    /// A hot standby of `primary`, streaming from it (`pg_basebackup -R`).
    pub(crate) fn standby_of(primary: &PrivatePg) -> PrivatePg {
        let pg = PrivatePg::unstarted("pg-standby");
        let data = pg.dir.join("data");
        pg.run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &primary.port.to_string(),
                "-U",
                "postgres",
                "-D",
                data.to_str().expect("path"),
                "-R",
                "-X",
                "stream",
                "--checkpoint=fast",
                "--no-sync",
            ],
        );
        pg.start_again();
        pg
    }

    /// Promotes a standby to primary.
    pub(crate) fn promote(&self) {
        let data = self.dir.join("data");
        self.run(
            "pg_ctl",
            &["-D", data.to_str().expect("path"), "-w", "promote"],
        );
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    fn restart(&self) {
        let data = self.dir.join("data");
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().expect("path"),
                "-m",
                "fast",
                "-w",
                "restart",
            ],
        );
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = self
            .command("pg_ctl")
            .args(["-D", data.to_str().unwrap_or(""), "-m", "immediate", "stop"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub async fn postgres_restart_during_load() {
    let pg = PrivatePg::start();
    let db = fresh_pg_database(&pg.admin_url()).await;
    let server = Server::start_on(Backend::Postgres, db, &[]).await;
    let l = load(&server.url, 8);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let _pg = tokio::task::spawn_blocking(move || {
        pg.restart();
        pg
    })
    .await
    .expect("restart");
    let restarted = std::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (acked, statuses) = l.finish().await;
    let bad: Vec<u16> = statuses
        .iter()
        .map(|(_, s)| *s)
        .filter(|s| *s != 201 && *s != 503)
        .collect();
    assert!(
        bad.is_empty(),
        "requests must succeed or fail cleanly with 503, got {bad:?}"
    );
    let after = statuses
        .iter()
        .filter(|(t, s)| *t > restarted && *s == 201)
        .count();
    assert!(
        after > 0,
        "the service did not recover after the database restart"
    );
    audit(&server, &acked).await;
    drop(server);
}
