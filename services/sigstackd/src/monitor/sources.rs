//! Reading the three kinds of log the monitor follows: the newest signed tree head,
//! verified with the key the trusted root names for that log's URL, and the leaves of a
//! range, as the bytes the log hashed into its tree.

use super::config::{LogConfig, LogKind};
use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::StreamExt;
use serde_json::{Value, json};
use sigstack_crypto::PublicKey;
use sigstack_merkle::Hash;
use sigstack_types::trust::{TransparencyLogInstance, TrustedRoot};

/// A tree head as signed, with its text for evidence.
#[derive(Clone, Debug)]
pub struct Head {
    pub size: u64,
    pub root: Hash,
    /// The checkpoint note (Rekor) or the STH JSON (CT), as served.
    pub text: String,
}

/// Where a tree sits in its log: Rekor v1 numbers entries across shards (frozen shards
/// first) and names them by tree ID and leaf hash.
#[derive(Clone, Debug, Default)]
pub struct Shard {
    pub offset: u64,
    /// The active tree's ID as 16 hex digits (Rekor v1), the prefix of entry IDs.
    pub tree_id: Option<String>,
}

/// Why no verified head could be had.
#[derive(Debug)]
pub enum HeadError {
    /// The log answered with a tree head no trusted key signed: an alert.
    Unverified { text: String, why: String },
    /// The log could not be reached or answered nonsense: retried.
    Unreachable(anyhow::Error),
}

/// One leaf of a range.
#[derive(Clone, Debug)]
pub struct Leaf {
    pub index: u64,
    /// The bytes hashed into the tree: the canonical body (Rekor) or the
    /// `MerkleTreeLeaf` (CT).
    pub data: Vec<u8>,
    /// The entry's ID as the log names it (Rekor v1: 80 hex digits), else empty.
    pub uuid: String,
    /// Unix seconds, when the log states it.
    pub time: Option<i64>,
}

/// Concurrent requests a catch-up keeps in flight.
const IN_FLIGHT: usize = 16;

/// Most entry bytes one batch holds.
const BATCH_BYTES: usize = 256 << 20;

async fn get(http: &reqwest::Client, url: &str, max: usize) -> anyhow::Result<Vec<u8>> {
    let res = http
        .get(url)
        .send()
        .await
        .with_context(|| format!("reaching {url}"))?;
    let status = res.status();
    if !status.is_success() {
        bail!("GET {url}: HTTP {status}");
    }
    bounded(res, max, url).await
}

/// A response's body, refused as soon as it passes `max` bytes (whatever its
/// Content-Length says, or without one).
async fn bounded(mut res: reqwest::Response, max: usize, what: &str) -> anyhow::Result<Vec<u8>> {
    if res.content_length().is_some_and(|n| n > max as u64) {
        bail!("{what}: answer larger than {max} bytes");
    }
    let mut body = Vec::new();
    while let Some(chunk) = res
        .chunk()
        .await
        .with_context(|| format!("reading {what}"))?
    {
        if body.len() + chunk.len() > max {
            bail!("{what}: answer larger than {max} bytes");
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn keys_for(instances: &[TransparencyLogInstance], url: &str) -> Vec<PublicKey> {
    let url = url.trim_end_matches('/');
    instances
        .iter()
        .filter(|t| t.base_url.trim_end_matches('/') == url)
        .filter_map(|t| STANDARD.decode(&t.public_key.raw_bytes).ok())
        .filter_map(|d| PublicKey::from_spki_der(&d).ok())
        .collect()
}

/// The newest tree head of `log`, verified.
pub async fn head(
    http: &reqwest::Client,
    log: &LogConfig,
    root: &TrustedRoot,
) -> Result<(Head, Shard), HeadError> {
    let base = log.url.trim_end_matches('/');
    let unreachable = HeadError::Unreachable;
    match log.kind {
        LogKind::RekorV1 => {
            let body = get(http, &format!("{base}/api/v1/log"), 1 << 20)
                .await
                .map_err(unreachable)?;
            let info: sigstack_types::rekor::LogInfo = serde_json::from_slice(&body)
                .map_err(|e| HeadError::Unreachable(anyhow::anyhow!("{base}/api/v1/log: {e}")))?;
            // entries of frozen shards come first in the log's index space
            let offset: u64 = info
                .inactive_shards
                .iter()
                .flatten()
                .map(|s| s.tree_size.max(0) as u64)
                .sum();
            let shard = Shard {
                offset,
                tree_id: info
                    .tree_id
                    .parse::<u64>()
                    .ok()
                    .map(|t| format!("{t:016x}")),
            };
            let text = info.signed_tree_head;
            let keys = keys_for(&root.tlogs, log.trusted_url());
            if keys.is_empty() {
                return Err(HeadError::Unverified {
                    text,
                    why: format!("the trusted root names no log at {}", log.trusted_url()),
                });
            }
            let mut why = String::new();
            for k in &keys {
                match sigstack_log::checkpoint::verify_any_name(&text, k) {
                    Ok(cp) => {
                        return Ok((
                            Head {
                                size: cp.size,
                                root: cp.root,
                                text,
                            },
                            shard,
                        ));
                    }
                    Err(e) => why = e,
                }
            }
            Err(HeadError::Unverified { text, why })
        }
        LogKind::Tiles => {
            let body = get(http, &format!("{base}/checkpoint"), 64 << 10)
                .await
                .map_err(unreachable)?;
            let text = String::from_utf8_lossy(&body).into_owned();
            match sigstack::tiles::verify_checkpoint(&text, log.trusted_url(), root) {
                Ok(cp) => Ok((
                    Head {
                        size: cp.size,
                        root: cp.root,
                        text,
                    },
                    Shard::default(),
                )),
                Err(e) => Err(HeadError::Unverified {
                    text,
                    why: format!("{e:#}"),
                }),
            }
        }
        LogKind::Ct => {
            let body = get(http, &format!("{base}/ct/v1/get-sth"), 64 << 10)
                .await
                .map_err(unreachable)?;
            let text = String::from_utf8_lossy(&body).into_owned();
            let sth: Value = serde_json::from_slice(&body)
                .map_err(|e| HeadError::Unreachable(anyhow::anyhow!("get-sth: {e}")))?;
            let parsed = (|| -> anyhow::Result<(u64, u64, Hash, Vec<u8>)> {
                let root: Hash = STANDARD
                    .decode(sth["sha256_root_hash"].as_str().context("no root hash")?)?
                    .try_into()
                    .map_err(|_| anyhow::anyhow!("the root hash is not 32 bytes"))?;
                Ok((
                    sth["tree_size"].as_u64().context("no tree_size")?,
                    sth["timestamp"].as_u64().context("no timestamp")?,
                    root,
                    STANDARD.decode(
                        sth["tree_head_signature"]
                            .as_str()
                            .context("no signature")?,
                    )?,
                ))
            })();
            let (size, ts, root_hash, sig) = match parsed {
                Ok(p) => p,
                Err(e) => {
                    return Err(HeadError::Unverified {
                        text,
                        why: format!("{e:#}"),
                    });
                }
            };
            let input = sigstack_log::ct::sth_signature_input(ts, size, &root_hash);
            let ok = sigstack_log::ct::DigitallySigned::from_bytes(&sig).is_ok_and(|s| {
                keys_for(&root.ctlogs, log.trusted_url())
                    .iter()
                    .any(|k| s.verify(k, &input).is_ok())
            });
            if !ok {
                return Err(HeadError::Unverified {
                    text,
                    why: format!(
                        "the tree head is not signed by the key the trusted root names for {}",
                        log.trusted_url()
                    ),
                });
            }
            Ok((
                Head {
                    size,
                    root: root_hash,
                    text,
                },
                Shard::default(),
            ))
        }
    }
}

/// The leaves `[start, end)` of the tree, in order.
pub async fn leaves(
    http: &reqwest::Client,
    log: &LogConfig,
    start: u64,
    end: u64,
    shard: &Shard,
) -> anyhow::Result<Vec<Leaf>> {
    let base = log.url.trim_end_matches('/').to_string();
    // requests aligned to entry bundles (256 entries), so bundles are full wherever the
    // tree has them
    const STEP: u64 = 256;
    let mut ranges = Vec::new();
    let mut at = start - start % STEP;
    while at < end {
        ranges.push((at.max(start), (at + STEP).min(end)));
        at += STEP;
    }
    let mut chunks = std::pin::pin!(
        futures::stream::iter(ranges)
            .map(|(a, b)| {
                let base = base.clone();
                async move {
                    match log.kind {
                        LogKind::RekorV1 => v1_range(http, &base, a, b, end, shard).await,
                        LogKind::Tiles => tiles_range(http, &base, "", a, b, end).await,
                        LogKind::Ct => ct_range(http, &base, a, b).await,
                    }
                }
            })
            .buffered(IN_FLIGHT)
    );
    // a batch holds at most BATCH_BYTES of entries: past that it ends early (the rest
    // is the next batch), so large entries cannot make a batch exhaust memory
    let mut out = Vec::with_capacity((end - start).min(65_536) as usize);
    let mut bytes = 0usize;
    while let Some(c) = chunks.next().await {
        let c = c?;
        bytes += c.iter().map(|l| l.data.len()).sum::<usize>();
        out.extend(c);
        if bytes > BATCH_BYTES {
            break;
        }
    }
    let got = out.len() as u64;
    if got == 0 || got > end - start || out.iter().zip(start..).any(|(l, i)| l.index != i) {
        bail!(
            "the log answered other entries than the {}..{} asked for",
            start,
            end
        );
    }
    if got < end - start && bytes <= BATCH_BYTES {
        bail!("the log answered {got} of the entries {start}..{end}");
    }
    Ok(out)
}

/// Entries of a Rekor v1 log: a sigstack log's entry bundles when it serves them, else
/// (upstream Rekor) `retrieve` by index, ten at a time.
async fn v1_range(
    http: &reqwest::Client,
    base: &str,
    a: u64,
    b: u64,
    size: u64,
    shard: &Shard,
) -> anyhow::Result<Vec<Leaf>> {
    if let Some(tree) = &shard.tree_id {
        match tiles_range(http, base, "/api/v1/log", a, b, size).await {
            Ok(mut leaves) => {
                for l in &mut leaves {
                    l.uuid = format!("{tree}{}", hex::encode(sigstack_merkle::leaf_hash(&l.data)));
                }
                return Ok(leaves);
            }
            // not served (upstream Rekor), or not servable (an entry over 64 KiB has no
            // place in a bundle): the entries one by one
            Err(e) => {
                if e.downcast_ref::<NotServed>().is_none() {
                    tracing::debug!(error = %format!("{e:#}"), "an entry bundle failed; reading its entries by index");
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut at = a;
    while at < b {
        let next = (at + 10).min(b);
        out.extend(v1_retrieve(http, base, at, next, shard.offset).await?);
        at = next;
    }
    Ok(out)
}

/// A log that does not serve entry bundles (404 on the first one asked for).
#[derive(Debug)]
struct NotServed;

impl std::fmt::Display for NotServed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("entry bundles are not served")
    }
}

impl std::error::Error for NotServed {}

async fn v1_retrieve(
    http: &reqwest::Client,
    base: &str,
    a: u64,
    b: u64,
    offset: u64,
) -> anyhow::Result<Vec<Leaf>> {
    let indexes: Vec<u64> = (a + offset..b + offset).collect();
    let url = format!("{base}/api/v1/log/entries/retrieve");
    let res = http
        .post(&url)
        .json(&json!({ "logIndexes": indexes }))
        .send()
        .await
        .with_context(|| format!("reaching {url}"))?;
    let status = res.status();
    if !status.is_success() {
        bail!("POST {url}: HTTP {status}");
    }
    // ten entries of at most a few MiB each
    let body = bounded(res, 64 << 20, &url).await?;
    let list: Vec<sigstack_types::rekor::LogEntry> =
        serde_json::from_slice(&body).context("entries")?;
    let mut out = Vec::new();
    for (uuid, e) in list.into_iter().flatten() {
        let index = (e.log_index.max(0) as u64)
            .checked_sub(offset)
            .context("an entry of another shard")?;
        out.push(Leaf {
            index,
            data: STANDARD
                .decode(&e.body)
                .context("an entry body is not base64")?,
            uuid,
            time: Some(e.integrated_time),
        });
    }
    out.sort_by_key(|l| l.index);
    Ok(out)
}

/// The leaves `[a, b)` from the entry bundle that holds them (`prefix`: where the
/// log serves `tile/entries/...`; the tree has `size` entries).
async fn tiles_range(
    http: &reqwest::Client,
    base: &str,
    prefix: &str,
    a: u64,
    b: u64,
    size: u64,
) -> anyhow::Result<Vec<Leaf>> {
    let n = a / 256;
    let width = (size - n * 256).min(256);
    let t = sigstack_log::tiles::TileRef {
        level: None,
        index: n,
        partial: (width < 256).then_some(width as u8),
    };
    let url = format!("{base}{prefix}/{}", t.path());
    let max = 256 * (2 + 65_535);
    let res = http
        .get(&url)
        .send()
        .await
        .with_context(|| format!("reaching {url}"))?;
    if res.status() == reqwest::StatusCode::NOT_FOUND && !prefix.is_empty() {
        return Err(NotServed.into());
    }
    if !res.status().is_success() {
        bail!("GET {url}: HTTP {}", res.status());
    }
    let bundle = bounded(res, max, &url).await?;
    let entries = sigstack_log::tiles::bundle_entries(&bundle)
        .with_context(|| format!("GET {url}: a truncated entry bundle"))?;
    Ok((n * 256..)
        .zip(entries)
        .filter(|(i, _)| (a..b).contains(i))
        .map(|(index, data)| Leaf {
            index,
            data: data.to_vec(),
            uuid: String::new(),
            time: None,
        })
        .collect())
}

async fn ct_range(http: &reqwest::Client, base: &str, a: u64, b: u64) -> anyhow::Result<Vec<Leaf>> {
    let mut out = Vec::new();
    let mut next = a;
    // a log may answer fewer entries than asked: ask again from where it stopped
    while next < b {
        let body = get(
            http,
            &format!("{base}/ct/v1/get-entries?start={next}&end={}", b - 1),
            64 << 20,
        )
        .await?;
        let v: Value = serde_json::from_slice(&body).context("get-entries")?;
        let entries = v["entries"].as_array().context("get-entries: no entries")?;
        if entries.is_empty() {
            bail!("get-entries answered no entries from {next}");
        }
        for e in entries {
            let data = STANDARD
                .decode(e["leaf_input"].as_str().context("no leaf_input")?)
                .context("leaf_input")?;
            out.push(Leaf {
                index: next,
                data,
                uuid: String::new(),
                time: None,
            });
            next += 1;
        }
    }
    out.truncate((b - a) as usize);
    Ok(out)
}
