//! `sigstackd log-v2`: a tiled transparency log with Rekor v2's write API
//! (`POST /api/v2/log/entries`) and the C2SP tlog-tiles read API (`/checkpoint`,
//! `/tile/…`), over the same Merkle storage, sequencer and databases as the v1 log.
//! Checkpoints are C2SP signed notes by an Ed25519 key named after the log's host; there
//! are no signed entry timestamps (clients take signing time from a timestamp authority).

pub mod api;
pub mod config;
mod read;
mod witnessing;

use crate::sequencer::{HeadCache, HeadSigner, Sequencer, SequencerConfig};
use anyhow::Context;
use axum::Router;
use config::LogV2Config;
use sigstack_crypto::Signer;
use sigstack_http::ApiError;
use sigstack_log::checkpoint::Checkpoint;
use sigstack_log::store::{LogStore, TreeHead};
use sigstack_merkle::{EMPTY_ROOT, Hash};
use sigstack_storage::Store;
use std::sync::Arc;

pub struct LogV2Service {
    store: Store,
    tree_id: i64,
    origin: String,
    /// The full 32-byte log ID (C2SP key hash of origin and key): the trusted root's
    /// `logId.keyId`, and the `logId` of every answer.
    log_id: [u8; 32],
    frozen: bool,
    sequencer: Sequencer,
    head_cache: HeadCache,
    /// Submissions in flight; none left means pushback (503).
    outstanding: Arc<tokio::sync::Semaphore>,
    /// Where signature checks run, off the async workers.
    verify: Arc<crate::cpu_pool::CpuPool>,
    tiles: read::TileCache,
    /// Bounds the tile reads that go to the database at once.
    tile_reads: tokio::sync::Semaphore,
    witnesses: Vec<witnessing::Witness>,
    quorum: usize,
    cosigned: std::sync::RwLock<witnessing::Cosigned>,
    http: Arc<sigstack_http::metrics::HttpMetrics>,
    max_request_bytes: usize,
}

/// How long a head read from the database is reused by readers.
const HEAD_TTL: std::time::Duration = std::time::Duration::from_secs(1);

impl LogV2Service {
    pub async fn start(cfg: &LogV2Config) -> anyhow::Result<Arc<Self>> {
        let signer = crate::keys::open(&cfg.signing_key, "the log's Ed25519 key")?;
        crate::keys::expect(
            signer.as_ref(),
            &["PKIX_ED25519"],
            &cfg.signing_key,
            "the log's key (make one with `openssl genpkey -algorithm ed25519`)",
        )?;
        let store = Store::open(&cfg.database_url)
            .await
            .with_context(|| format!("opening {}", sigstack_storage::redact(&cfg.database_url)))?;
        Self::with_parts(cfg, store, signer).await
    }

    pub async fn with_parts(
        cfg: &LogV2Config,
        store: Store,
        signer: Arc<dyn Signer>,
    ) -> anyhow::Result<Arc<Self>> {
        let origin = cfg.origin()?;
        let mut shards = store.shards(&cfg.log_name).await?;
        if shards.is_empty() {
            let tree_id = (rand::random::<u64>() >> 1).max(1) as i64;
            let empty = Checkpoint {
                origin: origin.clone(),
                size: 0,
                root: EMPTY_ROOT,
            }
            .sign_ed25519(&origin, signer.as_ref())?;
            let head = TreeHead {
                size: 0,
                root: EMPTY_ROOT,
                checkpoint: empty,
            };
            store.create_shard(&cfg.log_name, 0, tree_id, &head).await?;
            shards = store.shards(&cfg.log_name).await?;
        }
        anyhow::ensure!(
            shards.len() == 1,
            "log {:?} has {} trees: a v2 log is one tree (a successor is a new log at a new URL, with its own log_name)",
            cfg.log_name,
            shards.len()
        );
        let tree = &shards[0];
        // the stored head must be this key's, under this origin: a changed public URL or
        // key would publish checkpoints no client could tie to the earlier ones
        sigstack_log::note::verify_ed25519(&tree.head.checkpoint, &origin, signer.public_key())
            .map_err(|e| {
                anyhow::anyhow!(
                    "log {:?} was not signed by {} as {origin:?} ({e}): start it with the key and public_url it was created with",
                    cfg.log_name,
                    crate::keys::shown(&cfg.signing_key)
                )
            })?;
        let head_cache = HeadCache::default();
        let sequencer = Sequencer::spawn(
            store.clone(),
            SequencerConfig {
                head_cache: head_cache.clone(),
                tree_id: tree.tree_id,
                head_signer: Arc::new(NoteSigner {
                    origin: origin.clone(),
                    signer: signer.clone(),
                }),
                max_batch: cfg.max_batch,
            },
        );
        let mut witnesses = Vec::new();
        for w in &cfg.witnesses {
            let key = crate::tuf::ceremony::load_public(&w.public_key)?;
            anyhow::ensure!(
                key.key_details() == "PKIX_ED25519",
                "witness {}: {} is not an Ed25519 key",
                w.name,
                w.public_key.display()
            );
            witnesses.push(witnessing::Witness::new(&w.url, &w.name, key));
        }
        let quorum = cfg.witness_quorum.unwrap_or(witnesses.len());
        let svc = Arc::new(Self {
            witnesses,
            quorum,
            cosigned: Default::default(),
            log_id: sigstack_log::note::log_id(&origin, signer.public_key()),
            store,
            tree_id: tree.tree_id,
            origin,
            frozen: cfg.frozen,
            sequencer,
            head_cache,
            outstanding: Arc::new(tokio::sync::Semaphore::new(cfg.max_outstanding)),
            verify: crate::cpu_pool::CpuPool::per_core("log-v2-verify")?,
            tiles: read::TileCache::default(),
            tile_reads: tokio::sync::Semaphore::new(read::DB_READS),
            http: sigstack_http::metrics::HttpMetrics::new("log_v2"),
            max_request_bytes: cfg.max_request_bytes,
        });
        if !svc.witnesses.is_empty() {
            tokio::spawn(svc.clone().witness_loop());
        }
        Ok(svc)
    }

    /// What `/checkpoint` serves: with witnesses, the newest checkpoint a quorum
    /// cosigned (the plain one until the first is in); without, the newest.
    async fn served_checkpoint(&self) -> Result<String, ApiError> {
        if !self.witnesses.is_empty()
            && let Ok(c) = self.cosigned.read()
            && let Some(note) = &c.note
        {
            return Ok(note.as_ref().clone());
        }
        Ok(self.head().await?.checkpoint.clone())
    }

    fn cosigned_size(&self) -> Option<u64> {
        self.cosigned
            .read()
            .ok()
            .and_then(|c| c.note.as_ref().map(|_| c.size))
    }

    pub fn router(self: &Arc<Self>) -> Router {
        api::routes(self)
            .with_state(self.clone())
            .layer(axum::middleware::from_fn_with_state(
                self.http.clone(),
                sigstack_http::metrics::observe,
            ))
    }

    pub fn tree_id(&self) -> i64 {
        self.tree_id
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn log_id(&self) -> &[u8; 32] {
        &self.log_id
    }

    /// The current head: our sequencer's, or the database's at most [`HEAD_TTL`] old.
    async fn head(&self) -> Result<Arc<TreeHead>, ApiError> {
        if let Ok(c) = self.head_cache.read()
            && let Some((h, at)) = c.as_ref()
            && at.elapsed() < HEAD_TTL
        {
            return Ok(h.clone());
        }
        self.fresh_head().await
    }

    async fn fresh_head(&self) -> Result<Arc<TreeHead>, ApiError> {
        let h = Arc::new(
            self.store
                .head(self.tree_id)
                .await
                .map_err(crate::log::store_error)?
                .ok_or_else(|| ApiError::internal(format!("tree {} vanished", self.tree_id)))?,
        );
        if let Ok(mut c) = self.head_cache.write()
            && c.as_ref().is_none_or(|(old, _)| old.size <= h.size)
        {
            *c = Some((h.clone(), std::time::Instant::now()));
        }
        Ok(h)
    }
}

/// Signs checkpoints as C2SP signed notes with the log's Ed25519 key.
struct NoteSigner {
    origin: String,
    signer: Arc<dyn Signer>,
}

impl HeadSigner for NoteSigner {
    fn sign_head(&self, size: u64, root: &Hash) -> Result<String, String> {
        Checkpoint {
            origin: self.origin.clone(),
            size,
            root: *root,
        }
        .sign_ed25519(&self.origin, self.signer.as_ref())
        .map_err(|e| e.to_string())
    }
}
