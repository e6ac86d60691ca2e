//! Following one log: fetch its signed tree head; read every entry after the last one
//! read; rebuild the tree from them and require its root to be the signed one. A tree
//! smaller than one verified before is a rollback, another root for a size verified
//! before (or for the tree rebuilt from the entries served) is a fork; each is an alert
//! with both tree heads as evidence. Entries are indexed and matched as they are read.

use super::Monitor;
use super::config::{LogConfig, LogKind};
use super::entry::{self, Facts};
use super::sources::{self, Head, HeadError, Leaf};
use serde_json::json;
use sigstack_merkle::Frontier;
use sigstack_storage::monitor::{Delivery, Indexed, MatchRow, Verified};
use std::sync::Arc;
use std::time::Duration;

/// What one step achieved.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Entries read; more may follow at once.
    Read(u64),
    /// Nothing new.
    Idle,
    /// The log cannot be trusted further until an operator looks.
    Stuck,
}

pub async fn run(m: Arc<Monitor>, log: LogConfig) {
    loop {
        let step = step(&m, &log).await;
        let pause = match &step {
            Ok(Step::Read(_)) => None,
            Ok(Step::Idle) | Ok(Step::Stuck) => Some(m.poll),
            Err(e) => {
                tracing::warn!(log = %log.name, error = %format!("{e:#}"), "following the log failed");
                m.status(&log.name, |s| {
                    s.up = false;
                    s.error = Some(format!("{e:#}"));
                });
                Some(m.poll)
            }
        };
        if let Some(p) = pause {
            tokio::select! {
                _ = tokio::time::sleep(p) => {}
                _ = m.stop.notified() => return,
            }
        }
    }
}

/// One step: a verified head, then at most one batch of entries.
pub async fn step(m: &Arc<Monitor>, log: &LogConfig) -> anyhow::Result<Step> {
    let (head, shard) = match sources::head(&m.http, log, &m.root).await {
        Ok(h) => h,
        Err(HeadError::Unreachable(e)) => return Err(e),
        Err(HeadError::Unverified { text, why }) => {
            m.alert(
                log,
                "unverified-checkpoint",
                &format!("the log served a tree head that does not verify: {why}"),
                json!({ "served": text, "why": why }),
            )
            .await?;
            m.status(&log.name, |s| {
                s.up = true;
                s.error = Some(format!("unverified tree head: {why}"));
            });
            return Ok(Step::Stuck);
        }
    };
    let pos = m.store.position(&log.name).await?;
    m.status(&log.name, |s| {
        s.up = true;
        s.error = None;
        s.head = head.size;
        s.read = pos.size;
        s.verified = pos.verified.as_ref().map_or(0, |v| v.size);
    });
    if let Some(v) = &pos.verified {
        if head.size < v.size {
            m.alert(
                log,
                "rollback",
                &format!(
                    "the log now signs a tree of {} entries, smaller than the {} it signed before",
                    head.size, v.size
                ),
                json!({ "verified": v.note, "served": head.text }),
            )
            .await?;
            return Ok(Step::Stuck);
        }
        if head.size == v.size && head.root != v.root {
            fork(m, log, &v.note, &head, None).await?;
            return Ok(Step::Stuck);
        }
    }
    if pos.size > head.size {
        // read past a head the log no longer signs: it shrank before we verified
        m.alert(
            log,
            "rollback",
            &format!(
                "the log signs a tree of {} entries, but served {} before",
                head.size, pos.size
            ),
            json!({ "served": head.text, "read": pos.size }),
        )
        .await?;
        return Ok(Step::Stuck);
    }
    let mut frontier = Frontier::from_hashes(pos.size, &pos.frontier)
        .ok_or_else(|| anyhow::anyhow!("the stored tree edge of {} is damaged", log.name))?;
    if pos.size == head.size {
        return settle(m, log, &frontier, &head, pos.verified.as_ref()).await;
    }
    let end = head.size.min(pos.size + m.batch);
    let leaves = sources::leaves(&m.http, log, pos.size, end, &shard).await?;
    let offset = shard.offset;
    let subs = m
        .subscriptions
        .read()
        .map(|s| s.clone())
        .unwrap_or_default();
    let (watch, kind, name) = (m.watch.clone(), log.kind, log.name.clone());
    let (indexed, matches, frontier) = tokio::task::spawn_blocking(move || {
        let mut indexed = Vec::with_capacity(leaves.len());
        let mut matches = Vec::new();
        for l in &leaves {
            frontier.append(sigstack_merkle::leaf_hash(&l.data), |_, _| {});
            let (facts, time, uuid) = read_leaf(kind, l, offset);
            for hit in watch.hits(&facts) {
                matches.push(match_row(&name, l.index + offset, &uuid, &facts, time, hit));
            }
            for c in &facts.certs {
                for san in &c.sans {
                    if subs.contains(&san.to_ascii_lowercase()) {
                        matches.push(match_row(
                            &name,
                            l.index + offset,
                            &uuid,
                            &facts,
                            time,
                            super::watch::Hit {
                                matched_type: "subscription".into(),
                                matched: san.to_ascii_lowercase(),
                                cert_subject: Some(san.clone()),
                                issuer: c.issuer.clone(),
                            },
                        ));
                    }
                }
            }
            indexed.push(index_row(l.index + offset, uuid, &facts, time));
        }
        (indexed, matches, frontier)
    })
    .await?;
    let with_deliveries: Vec<(MatchRow, Vec<Delivery>)> = matches
        .into_iter()
        .map(|mr| {
            let d = m.deliveries_for_match(&mr);
            (mr, d)
        })
        .collect();
    let edge: Vec<_> = frontier.nodes().iter().map(|(_, h)| *h).collect();
    let fresh = m
        .store
        .commit(
            &log.name,
            end,
            &edge,
            &indexed,
            &with_deliveries,
            super::now(),
        )
        .await?;
    let read = end - pos.size;
    m.counters(&log.name, read, fresh.len() as u64);
    m.status(&log.name, |s| s.read = end);
    if !fresh.is_empty() {
        for f in &fresh {
            tracing::info!(log = %f.log, index = f.index, matched = %f.matched, "a watched identity signed");
        }
        m.deliver.notify_one();
    }
    if end == head.size {
        settle(m, log, &frontier, &head, pos.verified.as_ref()).await?;
    }
    Ok(Step::Read(read))
}

/// The entries read make a tree of the head's size: its root must be the signed one.
async fn settle(
    m: &Arc<Monitor>,
    log: &LogConfig,
    frontier: &Frontier,
    head: &Head,
    verified: Option<&Verified>,
) -> anyhow::Result<Step> {
    if verified.is_some_and(|v| v.size == head.size && v.root == head.root) {
        return Ok(Step::Idle);
    }
    let computed = frontier.root();
    if computed != head.root {
        let kept = verified.map(|v| v.note.clone()).unwrap_or_default();
        fork(m, log, &kept, head, Some(computed)).await?;
        return Ok(Step::Stuck);
    }
    let v = Verified {
        size: head.size,
        root: head.root,
        note: head.text.clone(),
        at: super::now(),
    };
    m.store.verified(&log.name, &v).await?;
    m.status(&log.name, |s| {
        s.verified = head.size;
        s.verified_at = v.at;
    });
    Ok(Step::Idle)
}

async fn fork(
    m: &Arc<Monitor>,
    log: &LogConfig,
    kept: &str,
    head: &Head,
    computed: Option<sigstack_merkle::Hash>,
) -> anyhow::Result<()> {
    let message = match computed {
        Some(c) => format!(
            "the log's entries make a tree of {} entries with root {}, but it signed root {} for that size: it has forked or rewritten its entries",
            head.size,
            hex::encode(c),
            hex::encode(head.root)
        ),
        None => format!(
            "the log signed two different trees of {} entries: it has forked",
            head.size
        ),
    };
    m.alert(
        log,
        "fork",
        &message,
        json!({
            "verified": kept,
            "served": head.text,
            "computedRoot": computed.map(hex::encode),
        }),
    )
    .await
}

/// The facts, time and ID of a leaf.
fn read_leaf(kind: LogKind, l: &Leaf, _offset: u64) -> (Facts, Option<i64>, String) {
    let leaf_hash = hex::encode(sigstack_merkle::leaf_hash(&l.data));
    match kind {
        LogKind::RekorV1 | LogKind::Tiles => {
            let uuid = if l.uuid.is_empty() {
                leaf_hash
            } else {
                l.uuid.clone()
            };
            // a tiled log states no time: when the monitor read the entry stands in
            let time = l.time.or_else(|| Some(super::now()));
            (entry::rekor_body(&l.data), time, uuid)
        }
        LogKind::Ct => match entry::ct_leaf(&l.data) {
            Some((ts, f)) => (f, Some((ts / 1000) as i64), leaf_hash),
            None => (
                Facts {
                    kind: "unreadable".into(),
                    ..Facts::default()
                },
                None,
                leaf_hash,
            ),
        },
    }
}

fn index_row(idx: u64, uuid: String, f: &Facts, time: Option<i64>) -> Indexed {
    let mut keys = vec![format!("uuid:{}", uuid.to_ascii_lowercase())];
    if uuid.len() == 80 {
        // an entry ID is the tree ID then the leaf hash: the hash alone finds it too
        keys.push(format!("uuid:{}", uuid[16..].to_ascii_lowercase()));
    }
    if let Some(d) = &f.digest {
        keys.push(format!("digest:{d}"));
    }
    for c in &f.certs {
        for s in &c.sans {
            keys.push(format!("id:{}", s.to_ascii_lowercase()));
        }
        keys.push(format!("fp:{}", c.fingerprint));
        keys.push(format!("serial:{}", c.serial));
    }
    for k in &f.key_fingerprints {
        keys.push(format!("fp:{k}"));
    }
    keys.sort();
    keys.dedup();
    Indexed {
        idx,
        uuid,
        kind: f.kind.clone(),
        digest: f.digest.clone(),
        time,
        keys,
    }
}

fn match_row(
    log: &str,
    index: u64,
    uuid: &str,
    f: &Facts,
    time: Option<i64>,
    hit: super::watch::Hit,
) -> MatchRow {
    MatchRow {
        log: log.to_string(),
        index,
        uuid: uuid.to_string(),
        matched_type: hit.matched_type,
        matched: hit.matched,
        cert_subject: hit.cert_subject,
        issuer: hit.issuer,
        digest: f.digest.clone(),
        time,
    }
}

/// How long to wait before a delivery's next attempt: 1 s doubling to 10 minutes.
pub fn backoff(attempts: i64) -> Duration {
    Duration::from_secs((1u64 << attempts.clamp(0, 10) as u32).min(600))
}
