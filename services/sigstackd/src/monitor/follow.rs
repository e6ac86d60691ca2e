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
    let pos = m.store.position(&log.name).await?;
    // alerts of one kind are one alert until the log verifies further ("an episode"):
    // a log changing a byte of what it serves at each poll raises no flood
    let episode = pos.verified.as_ref().map_or(0, |v| v.size);
    let (head, shard) = match sources::head(&m.http, log, &m.root).await {
        Ok(h) => h,
        Err(HeadError::Unreachable(e)) => return Err(e),
        Err(HeadError::Unverified { text, why }) => {
            m.alert(
                log,
                "unverified-checkpoint",
                &format!("the log served a tree head that does not verify: {why}"),
                json!({ "served": clip(&text), "why": clip(&why) }),
                episode,
            )
            .await?;
            m.status(&log.name, |s| {
                s.up = true;
                s.error = Some(format!("unverified tree head: {why}"));
            });
            return Ok(Step::Stuck);
        }
    };
    // the tree and where it starts in the log's numbering are not signed: held to what
    // was first seen, so a log cannot renumber entries onto others' indexes
    let tree = shard.tree_id.clone().unwrap_or_default();
    match &pos.tree {
        None => m.store.set_tree(&log.name, &tree, shard.offset).await?,
        Some((t, o)) if *t == tree && *o == shard.offset => {}
        Some((t, o)) if *t != tree && shard.offset >= o + pos.size => {
            // a new shard: the old tree is frozen, the new one is audited from its start
            m.alert(
                log,
                "new-shard",
                &format!(
                    "the log now appends to tree {tree} (its entries numbered from {}); the monitor follows it from its first entry",
                    shard.offset
                ),
                json!({ "previousTree": t, "previousOffset": o, "tree": tree, "offset": shard.offset }),
                episode,
            )
            .await?;
            m.store.set_tree(&log.name, &tree, shard.offset).await?;
            return Ok(Step::Read(0));
        }
        Some((t, o)) => {
            m.alert(
                log,
                "renumbered",
                &format!(
                    "the log numbers tree {tree} from {} (it numbered tree {t} from {o} before): entries would take other entries' indexes",
                    shard.offset
                ),
                json!({ "tree": tree, "offset": shard.offset, "previousTree": t, "previousOffset": o }),
                episode,
            )
            .await?;
            m.status(&log.name, |s| {
                s.error = Some("the log renumbered its entries".into())
            });
            return Ok(Step::Stuck);
        }
    }
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
                json!({ "verified": clip(&v.note), "served": clip(&head.text) }),
                episode,
            )
            .await?;
            return Ok(Step::Stuck);
        }
        if head.size == v.size && head.root != v.root {
            fork(m, log, &v.note, &head, None, episode).await?;
            return Ok(Step::Stuck);
        }
    }
    if pos.size > head.size {
        // entries read past what the log now signs, never verified: read again
        m.store.rewind(&log.name, pos.verified.as_ref()).await?;
        return Ok(Step::Read(0));
    }
    let mut frontier = Frontier::from_hashes(pos.size, &pos.frontier)
        .ok_or_else(|| anyhow::anyhow!("the stored tree edge of {} is damaged", log.name))?;
    if pos.size == head.size {
        return settle(m, log, &frontier, &head, pos.verified.as_ref(), episode).await;
    }
    let want = head.size.min(pos.size + m.batch);
    let leaves = sources::leaves(&m.http, log, pos.size, want, &shard).await?;
    // a batch may come back shorter (bounded in bytes)
    let end = pos.size + leaves.len() as u64;
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
            let (facts, time, uuid) = read_leaf(kind, l);
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
    // the last batch up to a signed head is checked before anything of it is kept: a
    // source that serves other entries than the log signed (a mirror, a cache) changes
    // nothing and is told apart from the log
    if end == head.size && frontier.root() != head.root {
        let kept = pos
            .verified
            .as_ref()
            .map(|v| v.note.clone())
            .unwrap_or_default();
        fork(m, log, &kept, &head, Some(frontier.root()), episode).await?;
        if pos.size > episode {
            m.store.rewind(&log.name, pos.verified.as_ref()).await?;
        }
        return Ok(Step::Stuck);
    }
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
        settle(m, log, &frontier, &head, pos.verified.as_ref(), episode).await?;
    }
    Ok(Step::Read(read))
}

/// The entries read make a tree of the head's size: its root must be the signed one.
/// If it is not, the entries read since the last verified head are forgotten (and read
/// again at the next poll), and the fork is an alert.
async fn settle(
    m: &Arc<Monitor>,
    log: &LogConfig,
    frontier: &Frontier,
    head: &Head,
    verified: Option<&Verified>,
    episode: u64,
) -> anyhow::Result<Step> {
    if verified.is_some_and(|v| v.size == head.size && v.root == head.root) {
        return Ok(Step::Idle);
    }
    let computed = frontier.root();
    if computed != head.root {
        let kept = verified.map(|v| v.note.clone()).unwrap_or_default();
        fork(m, log, &kept, head, Some(computed), episode).await?;
        m.store.rewind(&log.name, verified).await?;
        return Ok(Step::Stuck);
    }
    let v = Verified {
        size: head.size,
        root: head.root,
        note: head.text.clone(),
        at: super::now(),
        frontier: frontier.nodes().iter().map(|(_, h)| *h).collect(),
    };
    m.store.verified(&log.name, &v).await?;
    m.status(&log.name, |s| {
        s.verified = head.size;
        s.verified_at = v.at;
    });
    Ok(Step::Idle)
}

/// Evidence is kept and sent, but not without bound: the first 8 KiB of a text.
pub fn clip(s: &str) -> String {
    const MAX: usize = 8 << 10;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &s[..end], s.len())
}

async fn fork(
    m: &Arc<Monitor>,
    log: &LogConfig,
    kept: &str,
    head: &Head,
    computed: Option<sigstack_merkle::Hash>,
    episode: u64,
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
            "verified": clip(kept),
            "served": clip(&head.text),
            "computedRoot": computed.map(hex::encode),
        }),
        episode,
    )
    .await
}

/// The facts, time and ID of a leaf. An ID the log gave that is not the leaf's own
/// (80 hex digits ending in its hash) is replaced by the leaf hash.
fn read_leaf(kind: LogKind, l: &Leaf) -> (Facts, Option<i64>, String) {
    let leaf_hash = hex::encode(sigstack_merkle::leaf_hash(&l.data));
    match kind {
        LogKind::RekorV1 | LogKind::Tiles => {
            let named = l.uuid.len() == 80
                && l.uuid.bytes().all(|b| b.is_ascii_hexdigit())
                && l.uuid.to_ascii_lowercase().ends_with(&leaf_hash);
            let uuid = if named {
                l.uuid.to_ascii_lowercase()
            } else {
                leaf_hash
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
    if let Some(leaf) = uuid.get(16..).filter(|_| uuid.len() == 80) {
        // an entry ID is the tree ID then the leaf hash: the hash alone finds it too
        keys.push(format!("uuid:{}", leaf.to_ascii_lowercase()));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_the_log_made_up_is_not_used() {
        let body = br#"{"kind":"hashedrekord","spec":{}}"#.to_vec();
        let leaf = hex::encode(sigstack_merkle::leaf_hash(&body));
        let l = |uuid: String| Leaf {
            index: 0,
            data: body.clone(),
            uuid,
            time: Some(1),
        };
        // a multibyte character where an ID is sliced: no panic, the leaf hash instead
        let (_, _, id) = read_leaf(
            LogKind::RekorV1,
            &l(format!("{}é{}", "a".repeat(15), "a".repeat(63))),
        );
        assert_eq!(id, leaf);
        let (_, _, id) = read_leaf(
            LogKind::RekorV1,
            &l(format!("{}{}", "0".repeat(16), "f".repeat(64))),
        );
        assert_eq!(id, leaf, "an ID naming another leaf");
        let good = format!("{}{leaf}", "0123456789abcdef");
        let (_, _, id) = read_leaf(LogKind::RekorV1, &l(good.clone()));
        assert_eq!(id, good);
        let row = index_row(0, good, &Facts::default(), None);
        assert!(row.keys.contains(&format!("uuid:{leaf}")));
    }

    #[test]
    fn evidence_is_clipped_on_a_character_boundary() {
        let long = "é".repeat(10_000);
        let c = clip(&long);
        assert!(
            c.len() < 8300 && c.ends_with("(20000 bytes in all)"),
            "{}",
            c.len()
        );
        assert_eq!(clip("short"), "short");
    }
}
