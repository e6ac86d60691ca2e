//! `sigstackd bench-fill`: grows a log by many synthetic entries straight through
//! storage, one large batch per transaction with a signed checkpoint each, so proof
//! benchmarks can run against trees of tens of millions of entries. Not for production
//! logs: the entries are not signed artifacts.
//!
//! Each entry gets the search keys a hashedrekord entry signed with a Fulcio certificate
//! gets: its artifact's digest and its (ephemeral, so distinct) key's fingerprint, both
//! random, and its signer's e-mail address, one of 10,000.

use super::LogService;
use super::config::LogConfig;
use crate::sequencer::load_frontier;
use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sigstack_log::batch;
use sigstack_log::checkpoint::{Checkpoint, rekor_origin};
use sigstack_log::store::{AppendOutcome, LogStore, NewEntry, TreeHead};
use sigstack_merkle::{Hash, leaf_hash};
use std::time::Instant;

fn synthetic_digest(i: u64) -> String {
    hex::encode(sigstack_crypto::sha256(
        format!("bench-fill {i}").as_bytes(),
    ))
}

fn synthetic_keys(i: u64) -> Vec<String> {
    let key = hex::encode(sigstack_crypto::sha256(
        format!("bench-fill key {i}").as_bytes(),
    ));
    vec![
        format!("sha256:{}", synthetic_digest(i)),
        format!("sha256:{key}"),
        format!("signer{}@bench.example", i % 10_000),
    ]
}

fn synthetic_body(i: u64, key_b64: &str) -> Vec<u8> {
    let digest = synthetic_digest(i);
    format!(
        r#"{{"apiVersion":"0.0.1","kind":"hashedrekord","spec":{{"data":{{"hash":{{"algorithm":"sha256","value":"{digest}"}}}},"signature":{{"content":"{}","publicKey":{{"content":"{key_b64}"}}}}}}}}"#,
        STANDARD.encode([7u8; 71])
    )
    .into_bytes()
}

pub async fn run(cfg: &LogConfig, entries: u64, batch_size: usize) -> anyhow::Result<()> {
    if batch_size == 0 {
        bail!("--batch must be at least 1");
    }
    let svc = LogService::start(cfg).await?;
    let store = svc.store().clone();
    let tree = svc.active_tree();
    let signer = crate::keys::open(&cfg.signing_key, "the log key")?;
    let hostname = cfg.hostname()?;
    let key_b64 = STANDARD.encode(sigstack_crypto::pem::encode("PUBLIC KEY", &[1u8; 91]));
    let mut frontier = load_frontier(&store, tree)
        .await
        .context("loading the tree")?;
    let started = Instant::now();
    let target = frontier.size() + entries;
    let integrated = crate::sequencer::unix_now();
    while frontier.size() < target {
        let k = ((target - frontier.size()) as usize).min(batch_size);
        let base = frontier.size();
        let new: Vec<NewEntry> = (0..k as u64)
            .map(|j| {
                let body = synthetic_body(base + j, &key_b64);
                NewEntry {
                    index: base + j,
                    leaf_hash: leaf_hash(&body),
                    body,
                    integrated_time: integrated,
                    index_keys: synthetic_keys(base + j),
                }
            })
            .collect();
        let leaves: Vec<Hash> = new.iter().map(|e| e.leaf_hash).collect();
        let plan = batch::plan(&frontier, &leaves);
        let checkpoint = Checkpoint {
            origin: rekor_origin(&hostname, tree),
            size: plan.new_size(),
            root: plan.root(),
        }
        .sign(&hostname, signer.as_ref())?;
        let head = TreeHead {
            size: plan.new_size(),
            root: plan.root(),
            checkpoint,
        };
        match store
            .append(tree, base, &new, &plan.internal_nodes(), &head)
            .await?
        {
            AppendOutcome::Appended => frontier = plan.frontier,
            other => bail!("bench-fill must be the only writer: {other:?}"),
        }
        let done = frontier.size() + entries - target;
        if done % (batch_size as u64 * 20) < batch_size as u64 || frontier.size() == target {
            let rate = done as f64 / started.elapsed().as_secs_f64();
            eprintln!(
                "{done}/{entries} entries ({rate:.0}/s), tree size {}",
                frontier.size()
            );
        }
    }
    Ok(())
}
