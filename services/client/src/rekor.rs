//! rekor-cli's jobs against a Rekor v1 log: search the index, fetch entries, verify each
//! fetched entry (signed entry timestamp, inclusion proof against a checkpoint signed by a
//! log the trusted root names), and keep the last checkpoint seen per log on disk, proving
//! every newer (or older) checkpoint consistent with it, so a forked or rewritten log is
//! caught on the next call.

use crate::bundle::TlogEntry;
use crate::verify::trust::Trust;
use crate::verify::{VerifyError, verify_log_entry};
use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sigstack_log::checkpoint::Checkpoint;
use sigstack_types::rekor::{ConsistencyProof, LogEntry, LogEntryAnon, LogInfo};
use sigstack_types::trust::TrustedRoot;
use std::path::PathBuf;

pub struct Rekor<'a> {
    pub http: &'a reqwest::Client,
    pub url: String,
}

async fn answer(res: reqwest::Response, what: &str) -> anyhow::Result<Value> {
    let status = res.status();
    let body = res
        .text()
        .await
        .with_context(|| format!("{what}: reading"))?;
    if !status.is_success() {
        let msg = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| body.trim().to_string());
        bail!("{what}: HTTP {status}: {msg}");
    }
    serde_json::from_str(&body).with_context(|| format!("{what}: the answer is not JSON"))
}

impl Rekor<'_> {
    fn api(&self, path: &str) -> String {
        format!("{}/api/v1/{path}", self.url.trim_end_matches('/'))
    }

    async fn get(&self, path: &str, what: &str) -> anyhow::Result<Value> {
        let url = self.api(path);
        let res = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("reaching the transparency log at {url}"))?;
        answer(res, what).await
    }

    async fn post(&self, path: &str, body: &Value, what: &str) -> anyhow::Result<Value> {
        let url = self.api(path);
        let res = self
            .http
            .post(&url)
            .json(body)
            .send()
            .await
            .with_context(|| format!("reaching the transparency log at {url}"))?;
        answer(res, what).await
    }

    pub async fn info(&self) -> anyhow::Result<LogInfo> {
        Ok(serde_json::from_value(self.get("log", "log info").await?)?)
    }

    pub async fn entry_by_index(&self, index: u64) -> anyhow::Result<(String, LogEntryAnon)> {
        one(self
            .get(&format!("log/entries?logIndex={index}"), "the entry")
            .await?)
    }

    pub async fn entry_by_uuid(&self, uuid: &str) -> anyhow::Result<(String, LogEntryAnon)> {
        if !(uuid.len() == 64 || uuid.len() == 80) || !uuid.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("an entry UUID is 64 or 80 hex digits");
        }
        one(self
            .get(&format!("log/entries/{uuid}"), "the entry")
            .await?)
    }

    /// Entries whose content is `proposed` (an entry as it would be uploaded).
    pub async fn entries_like(
        &self,
        proposed: &Value,
    ) -> anyhow::Result<Vec<(String, LogEntryAnon)>> {
        let v = self
            .post(
                "log/entries/retrieve",
                &json!({"entries": [proposed]}),
                "retrieving entries",
            )
            .await?;
        let list: Vec<LogEntry> = serde_json::from_value(v).context("the log's answer")?;
        Ok(list.into_iter().flatten().collect())
    }

    /// `POST /api/v1/index/retrieve`: the UUIDs matching the query.
    /// Entry IDs matching `query`, newest first. A sigstack log answers in pages and
    /// names the next in `X-Sigstack-Next-Page`: every page is fetched (up to
    /// [`MAX_SEARCH_PAGES`]), so entries logged under someone else's name in bulk cannot
    /// hide theirs. Rekor answers in one piece, without the header.
    pub async fn search(&self, query: &Value) -> anyhow::Result<Vec<String>> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_SEARCH_PAGES {
            let mut url = self.api("index/retrieve");
            if let Some(c) = &cursor {
                url.push_str(&format!("?before={c}"));
            }
            let res = self
                .http
                .post(&url)
                .json(query)
                .send()
                .await
                .with_context(|| format!("reaching the transparency log at {url}"))?;
            let next = res
                .headers()
                .get("x-sigstack-next-page")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let page: Vec<String> =
                serde_json::from_value(answer(res, "searching the index").await?)
                    .context("the log's answer is not a list of UUIDs")?;
            all.extend(page);
            match next {
                Some(n) if Some(&n) != cursor.as_ref() => cursor = Some(n),
                _ => return Ok(all),
            }
        }
        bail!(
            "the search matches more than {MAX_SEARCH_PAGES} pages of entries: narrow it (e.g. --operator and with a digest)"
        )
    }

    async fn consistency(
        &self,
        first: u64,
        last: u64,
        tree_id: &str,
    ) -> anyhow::Result<ConsistencyProof> {
        let v = self
            .get(
                &format!("log/proof?firstSize={first}&lastSize={last}&treeID={tree_id}"),
                "the consistency proof",
            )
            .await?;
        Ok(serde_json::from_value(v)?)
    }
}

/// Most pages of search results fetched (a million entries at 10,000 a page).
pub const MAX_SEARCH_PAGES: usize = 100;

fn one(v: Value) -> anyhow::Result<(String, LogEntryAnon)> {
    let e: LogEntry = serde_json::from_value(v).context("the log's answer is not an entry")?;
    e.into_iter().next().context("the log answered no entry")
}

fn hex_to_b64(h: &str) -> anyhow::Result<String> {
    Ok(STANDARD.encode(hex::decode(h).context("not hex")?))
}

/// A log entry as a bundle's `tlogEntries` item (protobuf JSON), with kind and version
/// from its body.
pub fn bundle_entry(e: &LogEntryAnon) -> anyhow::Result<Value> {
    let body: Value = serde_json::from_slice(
        &STANDARD
            .decode(&e.body)
            .context("the entry body is not base64")?,
    )
    .context("the entry body is not JSON")?;
    let mut out = json!({
        "logIndex": e.log_index.to_string(),
        "logId": {"keyId": hex_to_b64(&e.log_id)?},
        "kindVersion": {"kind": body["kind"], "version": body["apiVersion"]},
        "integratedTime": e.integrated_time.to_string(),
        "canonicalizedBody": e.body,
    });
    if let Some(v) = &e.verification {
        if let Some(set) = &v.signed_entry_timestamp {
            out["inclusionPromise"] = json!({"signedEntryTimestamp": set});
        }
        if let Some(p) = &v.inclusion_proof {
            out["inclusionProof"] = json!({
                "logIndex": p.log_index.to_string(),
                "rootHash": hex_to_b64(&p.root_hash)?,
                "treeSize": p.tree_size.to_string(),
                "hashes": p.hashes.iter().map(|h| hex_to_b64(h)).collect::<anyhow::Result<Vec<_>>>()?,
                "checkpoint": {"envelope": p.checkpoint},
            });
        }
    }
    Ok(out)
}

/// Verifies an entry from the log (its SET and its inclusion proof against a checkpoint
/// signed by a trusted log); returns the checkpoint it was proven against.
pub fn verify_entry(e: &LogEntryAnon, root: &TrustedRoot, now: i64) -> anyhow::Result<Checkpoint> {
    let b = bundle_entry(e)?;
    let t: TlogEntry = serde_json::from_value(b)?;
    if t.inclusion_proof.is_none() {
        bail!("the log returned the entry without an inclusion proof");
    }
    if t.inclusion_promise.is_none() {
        bail!("the log returned the entry without a signed entry timestamp");
    }
    let trust = Trust::new(root);
    verify_log_entry(&t, &trust, now).map_err(|e| anyhow::anyhow!("{e}"))?;
    let text = e
        .verification
        .as_ref()
        .and_then(|v| v.inclusion_proof.as_ref())
        .map(|p| p.checkpoint.clone())
        .unwrap_or_default();
    let log_id = hex::decode(&e.log_id)?;
    let (_, key) = trust.tlog(&log_id, e.integrated_time)?;
    sigstack_log::checkpoint::verify_any_name(&text, key).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Verifies a signed tree head against the trusted logs; returns it parsed.
pub fn verify_tree_head(text: &str, root: &TrustedRoot) -> anyhow::Result<Checkpoint> {
    let mut last = String::from("the trusted root names no transparency log");
    for log in &root.tlogs {
        let key = match STANDARD
            .decode(&log.public_key.raw_bytes)
            .ok()
            .and_then(|d| sigstack_crypto::PublicKey::from_spki_der(&d).ok())
        {
            Some(k) => k,
            None => continue,
        };
        match sigstack_log::checkpoint::verify_any_name(text, &key) {
            Ok(c) => return Ok(c),
            Err(e) => last = e,
        }
    }
    Err(VerifyError(format!(
        "the log's checkpoint is not signed by a trusted log: {last}"
    ))
    .into())
}

/// Where the last checkpoint seen of each log (by origin) is kept.
pub fn state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SIGSTACK_LOG_STATE").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    PathBuf::from(home)
        .join(".sigstore")
        .join("sigstack")
        .join("checkpoints")
}

pub(crate) fn state_file(origin: &str) -> PathBuf {
    state_dir().join(crate::trust::file_name_for(origin))
}

/// What `observe` established.
pub enum Consistency {
    /// No earlier checkpoint of this log was kept.
    First,
    /// Proven consistent with the kept checkpoint of this size.
    From(u64),
}

/// Proves the checkpoint `note` (already verified as `seen`) consistent with the kept
/// checkpoint of the same log, whichever is older first, and keeps the larger. A failure
/// means the log forked or was rewritten.
pub async fn observe(
    rekor: &Rekor<'_>,
    note: &str,
    seen: &Checkpoint,
    root: &TrustedRoot,
) -> anyhow::Result<Consistency> {
    let path = state_file(&seen.origin);
    let kept = match std::fs::read_to_string(&path) {
        Ok(text) => Some(
            verify_tree_head(&text, root)
                .with_context(|| format!("the kept checkpoint {}", path.display()))?,
        ),
        Err(_) => None,
    };
    let Some(kept) = kept else {
        crate::trust::write_atomic(&path, note.as_bytes())?;
        return Ok(Consistency::First);
    };
    let (old, new) = if kept.size <= seen.size {
        (&kept, seen)
    } else {
        (seen, &kept)
    };
    if old.size == new.size {
        if old.root != new.root {
            bail!(
                "the log presents two different trees of size {}: it has forked or been rewritten",
                old.size
            );
        }
    } else if old.size > 0 {
        let tree_id = seen
            .origin
            .rsplit_once(" - ")
            .map(|(_, t)| t)
            .unwrap_or_default();
        let p = match rekor.consistency(old.size, new.size, tree_id).await {
            Ok(p) => p,
            // the log cannot prove a tree it signed before: it is behind that checkpoint
            Err(e) if kept.size > seen.size => bail!(
                "the log now has {} entries, fewer than the {} of a checkpoint it signed before ({}): it was rolled back or restored from an older backup ({e:#})",
                seen.size,
                kept.size,
                path.display()
            ),
            Err(e) => return Err(e),
        };
        let hashes = p
            .hashes
            .iter()
            .map(|h| {
                hex::decode(h)
                    .ok()
                    .and_then(|d| <[u8; 32]>::try_from(d).ok())
                    .context("a consistency proof hash is not 32 bytes of hex")
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        sigstack_merkle::verify_consistency(old.size, new.size, &hashes, &old.root, &new.root)
            .map_err(|e| {
                anyhow::anyhow!(
                    "the log's tree of size {} is not an extension of the one of size {} seen before ({e}): it has forked or been rewritten",
                    new.size,
                    old.size
                )
            })?;
    }
    if seen.size > kept.size {
        crate::trust::write_atomic(&path, note.as_bytes())?;
    }
    Ok(Consistency::From(kept.size))
}

/// A Rekor v1 `hashedrekord` 0.0.1 entry: a signature (base64) by the key or certificate
/// `verifier_pem` over a SHA-256 digest — to submit, or to find the logged one by content.
pub fn hashedrekord(digest: &[u8], signature_b64: &str, verifier_pem: &[u8]) -> serde_json::Value {
    use base64::Engine;
    serde_json::json!({
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": hex::encode(digest)}},
            "signature": {
                "content": signature_b64,
                "publicKey": {"content": base64::engine::general_purpose::STANDARD.encode(verifier_pem)}
            }
        }
    })
}
