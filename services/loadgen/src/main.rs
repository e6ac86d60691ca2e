//! `sigstack-loadgen`: load for benchmarks, never for tests.
//!
//! * `append`: pre-signs a corpus of hashedrekord entries (unique artifacts, ECDSA P-256),
//!   then replays it against `POST /api/v1/log/entries`, either open-loop at a fixed
//!   rate (latency measured from each request's scheduled time, so a slow server cannot
//!   hide its queueing) or closed-loop with N clients to find the sustained maximum.
//!   `append-v2` does the same with Rekor v2 requests against `POST /api/v2/log/entries`.
//! * `prove`: `GET /api/v1/log/entries?logIndex=` for random indexes of the current tree.
//! * `issue`: full certificate issuance against the CA (`POST /api/v2/signingCert`,
//!   sigstore-js style: token in the body, public key and proof of possession), with
//!   tokens from an issuer this tool serves itself on `--issuer-port`.
//!
//! * `admit`: AdmissionReview requests against `sigstackd admission` (`POST /validate`
//!   over TLS), each answer required to admit.
//!
//! * `timestamp`: RFC 3161 timestamps from a timestamp authority (`POST /api/v1/timestamp`,
//!   timestamp-authority's JSON form with a nonce and the certificate, as sigstore-js asks).
//!
//! Prints throughput and latency percentiles, and the server's resident memory before and
//! after when given its PID.

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::{Parser, Subcommand};
use sigstack_crypto::{Curve, FileSigner, Signer};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

mod expensive;
mod issuer;
mod pace;
mod procstat;

use procstat::{cpu_us, rss_kib};

#[derive(Parser)]
#[command(
    name = "sigstack-loadgen",
    about = "Load generator for sigstack benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(clap::Args, Clone)]
struct Common {
    /// Base URL of the log.
    #[arg(long)]
    url: String,
    /// Requests per second (open loop). 0: closed loop with --clients.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Concurrent clients for the closed loop.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// PID of the server (comma-separated: every process of a server made of several,
    /// such as Rekor with Trillian's log server and signer), to report its resident memory
    /// and CPU time per request.
    #[arg(long, value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// Also count the CPU time of every process with this command name (`postgres`,
    /// `mariadbd`; comma-separated) in the server's CPU per request.
    #[arg(long, value_delimiter = ',')]
    cpu_also: Vec<String>,
    /// A CA certificate (PEM) to trust for an HTTPS --url.
    #[arg(long)]
    cacert: Option<std::path::PathBuf>,
}

#[derive(Subcommand)]
enum Mode {
    /// The costliest entries the log accepts (DSSE, 8 RSA-4096 signatures) from a few
    /// clients, while `GET /api/v1/log` latency is measured.
    Expensive(expensive::Args),
    /// Submit pre-signed hashedrekord entries.
    Append {
        #[command(flatten)]
        common: Common,
    },
    /// Submit pre-signed hashedRekordRequestV002 entries to a Rekor v2 (tiled) log.
    AppendV2 {
        #[command(flatten)]
        common: Common,
    },
    /// Fetch entries with inclusion proofs at random indexes.
    Prove {
        #[command(flatten)]
        common: Common,
    },
    /// GET one static path (e.g. a TUF repository's `timestamp.json`), optionally
    /// revalidating with the ETag (`If-None-Match`, answered 304).
    Get {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value = "timestamp.json")]
        path: String,
        #[arg(long)]
        if_none_match: bool,
    },
    /// Send an AdmissionReview to an admission webhook's `/validate`; every answer must
    /// admit.
    Admit {
        #[command(flatten)]
        common: Common,
        /// The AdmissionReview (JSON).
        #[arg(long)]
        review: std::path::PathBuf,
    },
    /// Request RFC 3161 timestamps from a timestamp authority.
    Timestamp {
        #[command(flatten)]
        common: Common,
    },
    /// Request certificates from a CA that trusts http://127.0.0.1:ISSUER_PORT.
    Issue {
        #[command(flatten)]
        common: Common,
        /// Port of the token issuer this tool serves.
        #[arg(long, default_value_t = 9500)]
        issuer_port: u16,
    },
}

/// Signs `n` distinct artifacts on every core and returns the request bodies: Rekor v1
/// hashedrekord entries, or (`v2`) Rekor v2 hashedRekordRequestV002 requests.
fn corpus(n: usize, v2: bool) -> Vec<Arc<Vec<u8>>> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let seed: u64 = rand::random();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let key = FileSigner::generate(Curve::P256);
                    let pem = STANDARD.encode(key.public_key().to_pem());
                    let der = STANDARD.encode(key.public_key().spki_der());
                    (t..n)
                        .step_by(threads)
                        .map(|i| {
                            let data = format!("sigstack-loadgen {seed} artifact {i}");
                            let sig = key.sign(data.as_bytes()).expect("sign");
                            let digest = sigstack_crypto::sha256(data.as_bytes());
                            let body = if v2 {
                                serde_json::json!({"hashedRekordRequestV002": {
                                    "digest": STANDARD.encode(digest),
                                    "signature": {"content": STANDARD.encode(&sig), "verifier": {
                                        "publicKey": {"rawBytes": der},
                                        "keyDetails": "PKIX_ECDSA_P256_SHA_256"}}}})
                            } else { serde_json::json!({
                                "apiVersion": "0.0.1", "kind": "hashedrekord",
                                "spec": {
                                    "signature": {"content": STANDARD.encode(sig), "publicKey": {"content": pem}},
                                    "data": {"hash": {"algorithm": "sha256",
                                                      "value": hex::encode(digest)}}
                                }
                            }) };
                            Arc::new(serde_json::to_vec(&body).expect("json"))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("signer thread"))
            .collect()
    })
}

#[derive(Default)]
struct Stats {
    latencies_us: Vec<u64>,
    /// Open loop: how long after its due time each request started.
    lags_us: Vec<u64>,
    errors: std::collections::BTreeMap<String, usize>,
}

enum Work {
    Append(Vec<Arc<Vec<u8>>>),
    AppendV2(Vec<Arc<Vec<u8>>>),
    Prove {
        size: u64,
    },
    /// Certificate requests, replayed round robin.
    Issue(Vec<Arc<Vec<u8>>>),
    /// Timestamp requests (JSON), replayed round robin.
    Timestamp(Vec<Arc<Vec<u8>>>),
    /// One AdmissionReview, sent again and again.
    Admit(Arc<Vec<u8>>),
    /// A GET of one path, with the ETag to revalidate against.
    Get {
        path: String,
        etag: Option<String>,
    },
}

async fn one(client: &reqwest::Client, url: &str, work: &Work, i: usize) -> Result<(), String> {
    let res = match work {
        Work::Append(bodies) => {
            client
                .post(format!("{url}/api/v1/log/entries"))
                .header("content-type", "application/json")
                .body(bodies[i % bodies.len()].as_ref().clone())
                .send()
                .await
        }
        Work::AppendV2(bodies) => {
            client
                .post(format!("{url}/api/v2/log/entries"))
                .header("content-type", "application/json")
                .body(bodies[i % bodies.len()].as_ref().clone())
                .send()
                .await
        }
        Work::Issue(bodies) => {
            client
                .post(format!("{url}/api/v2/signingCert"))
                .header("content-type", "application/json")
                .body(bodies[i % bodies.len()].as_ref().clone())
                .send()
                .await
        }
        Work::Timestamp(bodies) => {
            client
                .post(format!("{url}/api/v1/timestamp"))
                .header("content-type", "application/json")
                .body(bodies[i % bodies.len()].as_ref().clone())
                .send()
                .await
        }
        Work::Admit(body) => {
            let r = client
                .post(format!("{url}/validate"))
                .header("content-type", "application/json")
                .body(body.as_ref().clone())
                .send()
                .await;
            return match r {
                Ok(r) if r.status().is_success() => {
                    let v: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
                    if v["response"]["allowed"] == true {
                        Ok(())
                    } else {
                        Err("denied".into())
                    }
                }
                Ok(r) => Err(format!("HTTP {}", r.status().as_u16())),
                Err(e) => Err(if e.is_connect() {
                    "connect"
                } else {
                    "transport"
                }
                .into()),
            };
        }
        Work::Get { path, etag } => {
            let mut req = client.get(format!("{url}/{path}"));
            if let Some(e) = etag {
                req = req.header("if-none-match", e);
            }
            req.send().await
        }
        Work::Prove { size } => {
            let idx = rand::random::<u64>() % size;
            client
                .get(format!("{url}/api/v1/log/entries?logIndex={idx}"))
                .send()
                .await
        }
    };
    match res {
        Ok(r) if r.status().is_success() || r.status() == reqwest::StatusCode::NOT_MODIFIED => {
            r.bytes().await.map(|_| ()).map_err(|e| e.to_string())
        }
        Ok(r) => Err(format!("HTTP {}", r.status().as_u16())),
        Err(e) if e.is_timeout() => Err("timeout".into()),
        Err(e) if e.is_connect() => Err("connect".into()),
        Err(_) => Err("transport".into()),
    }
}

async fn run(common: Common, work: Work) -> anyhow::Result<()> {
    let mut client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(4096);
    if let Some(ca) = &common.cacert {
        let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        client = client.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
    }
    let client = client.build()?;
    let work = Arc::new(work);
    let stats = Arc::new(Mutex::new(Stats::default()));
    let rss_before = rss_kib(&common.server_pid);
    let also = &common.cpu_also;
    let cpu_before = cpu_us(&common.server_pid, also);
    let deadline = Duration::from_secs(common.duration);
    let started = Instant::now();
    let sent = Arc::new(AtomicUsize::new(0));
    if common.rate > 0.0 {
        let total = (common.rate * common.duration as f64) as usize;
        let mut tasks = Vec::with_capacity(total);
        let mut due = pace::schedule(common.rate, total, started);
        while let Some((i, at)) = due.recv().await {
            let (client, work, stats, url) = (
                client.clone(),
                work.clone(),
                stats.clone(),
                common.url.clone(),
            );
            sent.fetch_add(1, Ordering::Relaxed);
            tasks.push(tokio::spawn(async move {
                let lag = at.elapsed().as_micros() as u64;
                let r = one(&client, &url, &work, i).await;
                let us = at.elapsed().as_micros() as u64;
                let mut s = stats.lock().await;
                s.lags_us.push(lag);
                match r {
                    Ok(()) => s.latencies_us.push(us),
                    Err(e) => *s.errors.entry(e).or_default() += 1,
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    } else {
        let next = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..common.clients)
            .map(|_| {
                let (client, work, stats, url, next, sent) = (
                    client.clone(),
                    work.clone(),
                    stats.clone(),
                    common.url.clone(),
                    next.clone(),
                    sent.clone(),
                );
                tokio::spawn(async move {
                    while started.elapsed() < deadline {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if let Work::Append(b) | Work::AppendV2(b) = work.as_ref()
                            && i >= b.len()
                        {
                            break;
                        }
                        sent.fetch_add(1, Ordering::Relaxed);
                        let t = Instant::now();
                        let r = one(&client, &url, &work, i).await;
                        let us = t.elapsed().as_micros() as u64;
                        let mut s = stats.lock().await;
                        match r {
                            Ok(()) => s.latencies_us.push(us),
                            Err(e) => *s.errors.entry(e).or_default() += 1,
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            let _ = w.await;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut s = stats.lock().await;
    s.latencies_us.sort_unstable();
    let ok = s.latencies_us.len();
    let pct = |p: f64| -> f64 {
        if ok == 0 {
            return 0.0;
        }
        let i = ((p / 100.0) * (ok as f64 - 1.0)).round() as usize;
        s.latencies_us[i] as f64 / 1000.0
    };
    println!(
        "mode={} sent={} ok={} errors={:?} elapsed={:.1}s throughput={:.0}/s",
        if common.rate > 0.0 {
            format!("open-loop {}/s", common.rate)
        } else {
            format!("closed-loop {} clients", common.clients)
        },
        sent.load(Ordering::Relaxed),
        ok,
        s.errors,
        elapsed,
        ok as f64 / elapsed
    );
    println!(
        "latency ms: p50={:.2} p90={:.2} p99={:.2} p99.9={:.2} max={:.2}",
        pct(50.0),
        pct(90.0),
        pct(99.0),
        pct(99.9),
        pct(100.0)
    );
    if !s.lags_us.is_empty() {
        let (p50, p99, max) = pace::summary(&mut s.lags_us);
        println!(
            "generator lag ms (due time to request start, inside the latencies): p50={p50:.3} p99={p99:.3} max={max:.2}"
        );
    }
    if let (Some(a), Some(b)) = (rss_before, rss_kib(&common.server_pid)) {
        println!(
            "server RSS: before={:.1} MiB after={:.1} MiB",
            a as f64 / 1024.0,
            b as f64 / 1024.0
        );
    }
    if let (Some(a), Some(b)) = (cpu_before, cpu_us(&common.server_pid, also)) {
        println!(
            "server CPU: {:.1} s, {:.0} µs per request{}",
            (b - a) as f64 / 1e6,
            (b - a) as f64 / ok.max(1) as f64,
            if also.is_empty() {
                String::new()
            } else {
                format!(" (with every `{}` process)", also.join("`, `"))
            }
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    match cli.mode {
        Mode::Expensive(a) => expensive::run(a).await,
        Mode::Append { common } => append(common, false).await,
        Mode::AppendV2 { common } => append(common, true).await,
        Mode::Prove { common } => {
            let info: serde_json::Value = reqwest::get(format!("{}/api/v1/log", common.url))
                .await
                .context("reaching the log")?
                .json()
                .await?;
            let size = info["treeSize"].as_u64().context("treeSize")?;
            if size == 0 {
                bail!("the log is empty");
            }
            eprintln!("proving against a tree of {size} entries");
            run(common, Work::Prove { size }).await
        }
        Mode::Get {
            common,
            path,
            if_none_match,
        } => {
            let r = reqwest::get(format!("{}/{path}", common.url))
                .await
                .context("reaching the server")?;
            if !r.status().is_success() {
                bail!("GET {path}: HTTP {}", r.status());
            }
            let etag = r
                .headers()
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            if if_none_match && etag.is_none() {
                bail!("GET {path} has no ETag");
            }
            run(
                common,
                Work::Get {
                    path,
                    etag: etag.filter(|_| if_none_match),
                },
            )
            .await
        }
        Mode::Admit { common, review } => {
            let body =
                std::fs::read(&review).with_context(|| format!("reading {}", review.display()))?;
            run(common, Work::Admit(Arc::new(body))).await
        }
        Mode::Timestamp { common } => {
            let bodies = (0..1024u32)
                .map(|i| {
                    let digest = sigstack_crypto::sha256(&i.to_be_bytes());
                    Arc::new(
                        serde_json::to_vec(&serde_json::json!({
                            "artifactHash": STANDARD.encode(digest),
                            "hashAlgorithm": "sha256",
                            "nonce": rand::random::<u32>(),
                            "certificates": true,
                        }))
                        .unwrap_or_default(),
                    )
                })
                .collect();
            run(common, Work::Timestamp(bodies)).await
        }
        Mode::Issue {
            common,
            issuer_port,
        } => {
            let issuer = issuer::Issuer::start(issuer_port).await?;
            eprintln!("token issuer at {}", issuer.url);
            // distinct identities and keys, each with its proof of possession
            let bodies = (0..256)
                .map(|i| {
                    let email = format!("load{i}@example.test");
                    let key = FileSigner::generate(Curve::P256);
                    let pop = key.sign(email.as_bytes())?;
                    let body = serde_json::json!({
                        "credentials": {"oidcIdentityToken": issuer.token(&email, 3600)?},
                        "publicKeyRequest": {
                            "publicKey": {"algorithm": "ECDSA", "content": key.public_key().to_pem()},
                            "proofOfPossession": STANDARD.encode(pop),
                        }
                    });
                    Ok(Arc::new(serde_json::to_vec(&body)?))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            run(common, Work::Issue(bodies)).await
        }
    }
}

/// Appends a pre-signed corpus (Rekor v1 or v2 entries).
async fn append(common: Common, v2: bool) -> anyhow::Result<()> {
    let n = if common.rate > 0.0 {
        (common.rate * common.duration as f64) as usize
    } else {
        // enough for the closed loop at up to 20k/s
        20_000 * common.duration as usize
    };
    let t = Instant::now();
    let bodies = corpus(n.max(1), v2);
    eprintln!(
        "signed a corpus of {} entries in {:.1}s",
        bodies.len(),
        t.elapsed().as_secs_f64()
    );
    run(
        common,
        if v2 {
            Work::AppendV2(bodies)
        } else {
            Work::Append(bodies)
        },
    )
    .await
}
