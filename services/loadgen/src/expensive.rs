//! `sigstack-loadgen expensive`: the costliest entries the log accepts — DSSE with the
//! most signatures allowed, each by its own RSA-4096 key — submitted back to back by a
//! few clients, while `GET /api/v1/log` is measured at a fixed rate: verification must
//! not slow the reads down.

use anyhow::Context;
use aws_lc_rs::encoding::AsDer;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sigstack_crypto::{RsaFileSigner, Signer};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// Base URL of the log.
    #[arg(long)]
    url: String,
    /// Clients submitting expensive entries back to back.
    #[arg(long, default_value_t = 4)]
    submitters: usize,
    /// Signatures (RSA-4096 signers) per entry: the log's cap is 8.
    #[arg(long, default_value_t = 8)]
    signers: usize,
    /// Reads of `GET /api/v1/log` per second (open loop).
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// Seconds to run.
    #[arg(long, default_value_t = 30)]
    duration: u64,
}

const IN_TOTO: &str = "application/vnd.in-toto+json";

fn pae(payload: &[u8]) -> Vec<u8> {
    format!("DSSEv1 {} {} {} ", IN_TOTO.len(), IN_TOTO, payload.len())
        .into_bytes()
        .into_iter()
        .chain(payload.iter().copied())
        .collect()
}

fn rsa4096() -> anyhow::Result<RsaFileSigner> {
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa4096)
        .map_err(|_| anyhow::anyhow!("RSA key generation failed"))?;
    let der = pair
        .as_der()
        .map_err(|_| anyhow::anyhow!("encoding the key"))?;
    Ok(RsaFileSigner::from_pem(&sigstack_crypto::pem::encode(
        "PRIVATE KEY",
        der.as_ref(),
    ))?)
}

/// `n` distinct DSSE entries, each signed by every key.
fn entries(keys: &[RsaFileSigner], n: usize) -> anyhow::Result<Vec<Arc<Vec<u8>>>> {
    let verifiers: Vec<String> = keys
        .iter()
        .map(|k| STANDARD.encode(k.public_key().to_pem()))
        .collect();
    (0..n)
        .map(|i| {
            let statement = serde_json::json!({
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [{"name": format!("a{i}"), "digest": {"sha256": hex::encode(sigstack_crypto::sha256(&(i as u64).to_be_bytes()))}}],
                "predicateType": "https://example.org/expensive",
                "predicate": {"n": i, "r": rand::random::<u64>()},
            })
            .to_string();
            let signatures = keys
                .iter()
                .map(|k| {
                    Ok(serde_json::json!({"keyid": "", "sig": STANDARD.encode(k.sign(&pae(statement.as_bytes()))?)}))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let envelope = serde_json::json!({
                "payloadType": IN_TOTO,
                "payload": STANDARD.encode(&statement),
                "signatures": signatures,
            });
            Ok(Arc::new(serde_json::to_vec(&serde_json::json!({
                "apiVersion": "0.0.1",
                "kind": "dsse",
                "spec": {"proposedContent": {"envelope": envelope.to_string(), "verifiers": verifiers}},
            }))?))
        })
        .collect()
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    eprintln!("making {} RSA-4096 keys and 64 entries ...", a.signers);
    let keys = (0..a.signers)
        .map(|_| rsa4096())
        .collect::<anyhow::Result<Vec<_>>>()?;
    let bodies = Arc::new(entries(&keys, 64)?);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    // one check that such an entry is accepted at all
    let r = client
        .post(format!("{}/api/v1/log/entries", a.url))
        .header("content-type", "application/json")
        .body(bodies[0].as_ref().clone())
        .send()
        .await
        .context("reaching the log")?;
    anyhow::ensure!(
        matches!(r.status().as_u16(), 201 | 409),
        "an expensive entry is refused: HTTP {} {}",
        r.status(),
        r.text().await.unwrap_or_default()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let submitted = Arc::new(AtomicUsize::new(0));
    let submitters: Vec<_> = (0..a.submitters)
        .map(|w| {
            let (client, bodies, stop, submitted, url) = (
                client.clone(),
                bodies.clone(),
                stop.clone(),
                submitted.clone(),
                a.url.clone(),
            );
            tokio::spawn(async move {
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    // a repeat is verified in full before it is found to be one
                    let r = client
                        .post(format!("{url}/api/v1/log/entries"))
                        .header("content-type", "application/json")
                        .body(bodies[i % bodies.len()].as_ref().clone())
                        .send()
                        .await;
                    if r.is_ok_and(|r| matches!(r.status().as_u16(), 201 | 409)) {
                        submitted.fetch_add(1, Ordering::Relaxed);
                    }
                    i += a.submitters;
                }
            })
        })
        .collect();
    let total = (a.rate * a.duration as f64) as usize;
    let started = Instant::now();
    let mut reads = Vec::with_capacity(total);
    let mut due = crate::pace::schedule(a.rate, total, started);
    while let Some((_, at)) = due.recv().await {
        let (client, url) = (client.clone(), a.url.clone());
        reads.push(tokio::spawn(async move {
            let ok = client
                .get(format!("{url}/api/v1/log"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            (ok, at.elapsed().as_micros() as u64)
        }));
    }
    let mut lat = Vec::with_capacity(total);
    let mut failed = 0;
    for r in reads {
        match r.await {
            Ok((true, us)) => lat.push(us),
            _ => failed += 1,
        }
    }
    stop.store(true, Ordering::Relaxed);
    for s in submitters {
        let _ = s.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (p50, p99, max) = crate::pace::summary(&mut lat);
    println!(
        "expensive entries ({} signers, RSA-4096): {} verified by the log in {:.1} s ({:.1}/s) by {} clients",
        a.signers,
        submitted.load(Ordering::Relaxed),
        elapsed,
        submitted.load(Ordering::Relaxed) as f64 / elapsed,
        a.submitters
    );
    println!(
        "GET /api/v1/log at {}/s meanwhile: ok={} failed={failed} p50={p50:.2} ms p99={p99:.2} ms max={max:.2} ms",
        a.rate,
        lat.len(),
    );
    Ok(())
}
