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

/// The generator shares the machine with the server it measures: the less CPU it spends
/// per request, the less it takes from the server (mimalloc is cheaper than glibc's
/// malloc for the many small buffers each request allocates).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use hyper::body::Bytes;
use sigstack_crypto::{Curve, FileSigner, Signer};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod client;
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
fn corpus(n: usize, v2: bool) -> Vec<Bytes> {
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
                            Bytes::from(serde_json::to_vec(&body).expect("json"))
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
    Append(Vec<Bytes>),
    AppendV2(Vec<Bytes>),
    Prove {
        size: u64,
    },
    /// Certificate requests, replayed round robin.
    Issue(Vec<Bytes>),
    /// Timestamp requests (JSON), replayed round robin.
    Timestamp(Vec<Bytes>),
    /// One AdmissionReview, sent again and again.
    Admit(Bytes),
    /// A GET of one path, with the ETag to revalidate against.
    Get {
        path: String,
        etag: Option<String>,
    },
}

/// The request for the `i`th operation of `work`.
fn request(work: &Work, i: usize) -> client::Request {
    let post = |path: &str, body: &Bytes| client::Request {
        post: true,
        path: path.to_string(),
        body: Some(body.clone()),
        if_none_match: None,
    };
    let get = |path: String, etag: Option<String>| client::Request {
        post: false,
        path,
        body: None,
        if_none_match: etag,
    };
    match work {
        Work::Append(b) => post("/api/v1/log/entries", &b[i % b.len()]),
        Work::AppendV2(b) => post("/api/v2/log/entries", &b[i % b.len()]),
        Work::Issue(b) => post("/api/v2/signingCert", &b[i % b.len()]),
        Work::Timestamp(b) => post("/api/v1/timestamp", &b[i % b.len()]),
        Work::Admit(body) => post("/validate", body),
        Work::Get { path, etag } => get(format!("/{path}"), etag.clone()),
        Work::Prove { size } => get(
            format!(
                "/api/v1/log/entries?logIndex={}",
                rand::random::<u64>() % size
            ),
            None,
        ),
    }
}

/// Whether an answer counts: a success (or, revalidating, 304 Not Modified), and for an
/// admission review one that admits.
fn judge(work: &Work, answer: client::Answer) -> Result<(), String> {
    if !(200..300).contains(&answer.status) && answer.status != 304 {
        return Err(format!("HTTP {}", answer.status));
    }
    if let Work::Admit(_) = work {
        let v: serde_json::Value =
            serde_json::from_slice(&answer.body).map_err(|e| e.to_string())?;
        if v["response"]["allowed"] != true {
            return Err("denied".into());
        }
    }
    Ok(())
}

/// Gives up on a request after this long (counted as a `timeout` error).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What one request came to: its latency in µs, or the kind of error.
type Outcome = Result<u64, String>;

async fn run(common: Common, work: Work) -> anyhow::Result<()> {
    let mut client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(4096);
    if let Some(ca) = &common.cacert {
        let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        client = client.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
    }
    let client = client.build()?;
    let plain = client::Target::plain_http(&common.url)?;
    let work = Arc::new(work);
    let rss_before = rss_kib(&common.server_pid);
    let also = &common.cpu_also;
    let cpu_before = cpu_us(&common.server_pid, also);
    let own_before = cpu_us(&[std::process::id()], &[]);
    let deadline = Duration::from_secs(common.duration);
    let started = Instant::now();
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut lags_us = Vec::new();
    if common.rate > 0.0 {
        let total = (common.rate * common.duration as f64) as usize;
        let mut tasks = Vec::with_capacity(total);
        let mut due = pace::schedule(common.rate, total, started);
        while let Some((i, at)) = due.recv().await {
            let (client, work, url) = (client.clone(), work.clone(), common.url.clone());
            tasks.push(tokio::spawn(async move {
                let lag = at.elapsed().as_micros() as u64;
                let r = client::send_pooled(&client, &url, &request(&work, i)).await;
                let us = at.elapsed().as_micros() as u64;
                (lag, r.and_then(|a| judge(&work, a)).map(|()| us))
            }));
        }
        for t in tasks {
            if let Ok((lag, outcome)) = t.await {
                lags_us.push(lag);
                outcomes.push(outcome);
            }
        }
    } else {
        let next = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..common.clients)
            .map(|_| {
                let (client, work, url, next) = (
                    client.clone(),
                    work.clone(),
                    common.url.clone(),
                    next.clone(),
                );
                let mut conn = plain.clone().map(client::Conn::new);
                tokio::spawn(async move {
                    let mut mine: Vec<Outcome> = Vec::new();
                    while started.elapsed() < deadline {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if let Work::Append(b) | Work::AppendV2(b) = work.as_ref()
                            && i >= b.len()
                        {
                            break;
                        }
                        let req = request(&work, i);
                        let t = Instant::now();
                        let r = match conn.as_mut() {
                            Some(c) => tokio::time::timeout(REQUEST_TIMEOUT, c.send(&req))
                                .await
                                .unwrap_or_else(|_| {
                                    // the connection may still carry the late answer
                                    *c = client::Conn::new(c.target().clone());
                                    Err("timeout".into())
                                }),
                            None => client::send_pooled(&client, &url, &req).await,
                        };
                        let us = t.elapsed().as_micros() as u64;
                        mine.push(r.and_then(|a| judge(&work, a)).map(|()| us));
                    }
                    mine
                })
            })
            .collect();
        for w in workers {
            if let Ok(mine) = w.await {
                outcomes.extend(mine);
            }
        }
    }
    let sent = outcomes.len();
    let mut s = Stats::default();
    for o in outcomes {
        match o {
            Ok(us) => s.latencies_us.push(us),
            Err(e) => *s.errors.entry(e).or_default() += 1,
        }
    }
    s.lags_us = lags_us;
    let elapsed = started.elapsed().as_secs_f64();
    let own = cpu_us(&[std::process::id()], &[]).zip(own_before);
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
        sent,
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
    if let Some((b, a)) = own {
        println!(
            "generator CPU: {:.1} s, {:.0} µs per request",
            (b - a) as f64 / 1e6,
            (b - a) as f64 / sent.max(1) as f64
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
            run(common, Work::Admit(Bytes::from(body))).await
        }
        Mode::Timestamp { common } => {
            let bodies = (0..1024u32)
                .map(|i| {
                    let digest = sigstack_crypto::sha256(&i.to_be_bytes());
                    Bytes::from(
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
                    Ok(Bytes::from(serde_json::to_vec(&body)?))
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
