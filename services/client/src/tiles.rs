//! Reading a tiled (Rekor v2, C2SP tlog-tiles) log as `sigstack log` does: its checkpoint
//! verified with the key the trusted root names for the log's URL (under the URL's host),
//! entries from the entry bundles, and inclusion and consistency proven from the tiles
//! themselves: every node a proof needs is computed from the tiles of the checkpoint's
//! tree, and the proof then checked against the signed root.

use crate::verify::VerifyError;
use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sigstack_crypto::PublicKey;
use sigstack_log::checkpoint::Checkpoint;
use sigstack_log::tiles::{TileRef, WIDTH};
use sigstack_merkle::{Hash, NodeId, node_hash};
use sigstack_types::trust::TrustedRoot;
use std::collections::HashMap;

/// A tiled log at `url`, its tiles cached for one command.
pub struct TiledLog<'a> {
    pub http: &'a reqwest::Client,
    pub url: String,
    tiles: std::sync::Mutex<HashMap<String, Vec<u8>>>,
}

/// The Ed25519 keys the trusted root names for a tiled log at `url`.
pub fn trusted_keys(root: &TrustedRoot, url: &str) -> Vec<PublicKey> {
    let url = url.trim_end_matches('/');
    let now = crate::trust::now();
    root.tlogs
        .iter()
        .filter(|t| t.base_url.trim_end_matches('/') == url)
        // a key the trusted root has end-dated no longer signs this log's checkpoints
        .filter(|t| {
            t.public_key
                .valid_for
                .end
                .as_deref()
                .and_then(sigstack_types::time::parse_rfc3339)
                .is_none_or(|end| now < end)
        })
        .filter_map(|t| STANDARD.decode(&t.public_key.raw_bytes).ok())
        .filter_map(|d| PublicKey::from_spki_der(&d).ok())
        .filter(|k| k.key_details() == "PKIX_ED25519")
        .collect()
}

/// The host of a URL: the name a tiled log's checkpoints are signed under.
pub fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6).to_string(),
        None => authority.split(':').next().unwrap_or(authority).to_string(),
    }
}

impl<'a> TiledLog<'a> {
    pub fn new(http: &'a reqwest::Client, url: &str) -> Self {
        Self {
            http,
            url: url.trim_end_matches('/').to_string(),
            tiles: Default::default(),
        }
    }

    async fn get(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        let url = format!("{}/{path}", self.url);
        let res = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("reaching the transparency log at {url}"))?;
        let status = res.status();
        if !status.is_success() {
            bail!("GET {url}: HTTP {status}");
        }
        // the largest resource: an entry bundle of 256 entries of 64 KiB
        const MAX: usize = 256 * (2 + 65_535);
        if res.content_length().is_some_and(|n| n > MAX as u64) {
            bail!("GET {url}: larger than any tlog-tiles resource");
        }
        let body = res.bytes().await?.to_vec();
        if body.len() > MAX {
            bail!("GET {url}: larger than any tlog-tiles resource");
        }
        Ok(body)
    }

    /// The log's checkpoint, verified with a key the trusted root names for this URL.
    pub async fn checkpoint(&self, root: &TrustedRoot) -> anyhow::Result<(String, Checkpoint)> {
        let note = String::from_utf8(self.get("checkpoint").await?)
            .context("the checkpoint is not text")?;
        let cp = verify_checkpoint(&note, &self.url, root)?;
        Ok((note, cp))
    }

    /// The hashes of a tile of the tree of `size` (full, or as wide as that tree has it).
    async fn tile(&self, level: u8, index: u64, size: u64) -> anyhow::Result<Vec<Hash>> {
        let count = size >> (u32::from(level) * 8);
        let width = (count - index * WIDTH).min(WIDTH);
        let t = TileRef {
            level: Some(level),
            index,
            partial: (width < WIDTH).then_some(width as u8),
        };
        let path = t.path();
        let cached = self.tiles.lock().ok().and_then(|c| c.get(&path).cloned());
        let bytes = match cached {
            Some(b) => b,
            None => {
                let b = self.get(&path).await?;
                if let Ok(mut c) = self.tiles.lock() {
                    c.insert(path.clone(), b.clone());
                }
                b
            }
        };
        if bytes.len() as u64 != width * 32 {
            bail!("{path} has {} bytes, not {}", bytes.len(), width * 32);
        }
        Ok(bytes
            .chunks_exact(32)
            .map(|c| <Hash>::try_from(c).unwrap_or_default())
            .collect())
    }

    /// A complete node of the tree of `size`, from the tile that holds its level (hashed
    /// up within the tile when the level falls between tile levels).
    async fn node(&self, id: NodeId, size: u64) -> anyhow::Result<Hash> {
        let (tile_level, r) = (id.level / 8, id.level % 8);
        let first = id.index << r;
        let span = 1u64 << r;
        let mut hashes = Vec::with_capacity(span as usize);
        for i in first..first + span {
            let tile = self.tile(tile_level, i / WIDTH, size).await?;
            hashes.push(
                *tile
                    .get((i % WIDTH) as usize)
                    .context("a tile is narrower than the tree needs")?,
            );
        }
        while hashes.len() > 1 {
            hashes = hashes.chunks(2).map(|p| node_hash(&p[0], &p[1])).collect();
        }
        hashes.pop().context("an empty span")
    }

    /// The entry at `index` and its inclusion proof in the tree of `cp`, verified.
    pub async fn entry(&self, index: u64, cp: &Checkpoint) -> anyhow::Result<(Vec<u8>, Vec<Hash>)> {
        if index >= cp.size {
            bail!(
                "no entry at index {index}: the log's published checkpoint covers {} entries",
                cp.size
            );
        }
        let n = index / WIDTH;
        let width = (cp.size - n * WIDTH).min(WIDTH);
        let t = TileRef {
            level: None,
            index: n,
            partial: (width < WIDTH).then_some(width as u8),
        };
        let bundle = self.get(&t.path()).await?;
        let entries =
            sigstack_log::tiles::bundle_entries(&bundle).context("a truncated entry bundle")?;
        let body = entries
            .get((index % WIDTH) as usize)
            .map(|e| e.to_vec())
            .context("the entry bundle is short")?;
        let plan = sigstack_merkle::inclusion_plan(index, cp.size).context("no proof")?;
        let mut nodes = HashMap::new();
        for id in plan.nodes() {
            nodes.insert(id, self.node(id, cp.size).await?);
        }
        let proof = plan
            .assemble(|id| nodes.get(&id).copied())
            .context("missing nodes")?;
        sigstack_merkle::verify_inclusion(
            &sigstack_merkle::leaf_hash(&body),
            index,
            cp.size,
            &proof,
            &cp.root,
        )
        .map_err(|e| VerifyError(format!("entry {index} is not in the signed tree: {e}")))?;
        Ok((body, proof))
    }
}

/// Verifies a tiled log's checkpoint with the keys the trusted root names for `url`.
pub fn verify_checkpoint(note: &str, url: &str, root: &TrustedRoot) -> anyhow::Result<Checkpoint> {
    let keys = trusted_keys(root, url);
    if keys.is_empty() {
        bail!(VerifyError(format!(
            "the trusted root names no tiled log at {url}"
        )));
    }
    let name = host_of(url);
    let mut last = String::new();
    for k in &keys {
        match sigstack_log::note::verify_ed25519(note, &name, k) {
            Ok(cp) if cp.origin == name => return Ok(cp),
            Ok(cp) => last = format!("its origin {:?} is not {name:?}", cp.origin),
            Err(e) => last = e,
        }
    }
    Err(VerifyError(format!("the checkpoint of {url} does not verify: {last}")).into())
}

/// Proves the checkpoint `note` (verified as `cp`) consistent with the one kept from
/// this log before, from the tiles of the larger tree, and keeps the larger. A smaller
/// tree than one the log signed before is a rollback; another root at a size seen is a
/// fork.
pub async fn observe(
    log: &TiledLog<'_>,
    note: &str,
    cp: &Checkpoint,
    root: &TrustedRoot,
) -> anyhow::Result<crate::rekor::Consistency> {
    use crate::rekor::Consistency;
    let path = crate::rekor::state_file(&log.url);
    let kept = match std::fs::read_to_string(&path) {
        Ok(text) => Some(
            verify_checkpoint(&text, &log.url, root)
                .with_context(|| format!("the kept checkpoint {}", path.display()))?,
        ),
        Err(_) => None,
    };
    let Some(kept) = kept else {
        crate::trust::write_atomic(&path, note.as_bytes())?;
        return Ok(Consistency::First);
    };
    if kept.size > cp.size {
        bail!(VerifyError(format!(
            "the log now has {} entries, fewer than the {} of a checkpoint it signed before ({}): it was rolled back or restored from an older backup",
            cp.size,
            kept.size,
            path.display()
        )));
    }
    if kept.size == cp.size {
        if kept.root != cp.root {
            bail!(VerifyError(format!(
                "the log presents two different trees of size {}: it has forked or been rewritten",
                cp.size
            )));
        }
    } else if kept.size > 0 {
        // one consistency proof, its nodes from the tiles of the new tree, checked against
        // both signed roots: the old tree is a prefix of the new one
        let plan = sigstack_merkle::consistency_plan(kept.size, cp.size)
            .context("no consistency proof between these sizes")?;
        let mut nodes = HashMap::new();
        for id in plan.nodes() {
            nodes.insert(id, log.node(id, cp.size).await?);
        }
        let proof = plan
            .assemble(|id| nodes.get(&id).copied())
            .context("missing nodes")?;
        sigstack_merkle::verify_consistency(kept.size, cp.size, &proof, &kept.root, &cp.root)
            .map_err(|e| {
                VerifyError(format!(
                    "the log's tree of size {} is not an extension of the one of size {} seen before ({e}): it has forked or been rewritten",
                    cp.size, kept.size
                ))
            })?;
    }
    if cp.size > kept.size {
        crate::trust::write_atomic(&path, note.as_bytes())?;
    }
    Ok(Consistency::From(kept.size))
}
