//! `sigstackd log`: the transparency log with the Rekor v1 REST API.

pub mod api;
mod bundles;
pub mod config;
mod entries;
pub mod fill;
pub(crate) mod info;
pub(crate) mod replicas;

use crate::sequencer::{HeadCache, HeadSigner, Sequencer, SequencerConfig};
use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use config::LogConfig;
use sigstack_crypto::{Signer, log_id};
use sigstack_http::ApiError;
use sigstack_log::checkpoint::{Checkpoint, rekor_origin};
use sigstack_log::store::{LogStore, Shard, StoreError, TreeHead};
use sigstack_merkle::{EMPTY_ROOT, Hash, NodeId, ProofPlan, inclusion_plan};
use sigstack_storage::Store;
use std::collections::HashMap;
use std::sync::Arc;

/// The key that signs one shard's checkpoints and SETs.
pub(crate) struct ShardKey {
    pub(crate) signer: Arc<dyn Signer>,
    pub(crate) log_id_hex: String,
}

impl ShardKey {
    fn new(signer: Arc<dyn Signer>) -> Self {
        Self {
            log_id_hex: hex::encode(log_id(signer.public_key().spki_der())),
            signer,
        }
    }
}

/// Everything a request handler needs.
pub struct LogService {
    store: Store,
    /// Every shard's key, by tree ID: the active shard's is `signing_key`; a frozen
    /// shard's may be one of `previous_keys`.
    keys: HashMap<i64, Arc<ShardKey>>,
    log_id_hex: String,
    active_tree: i64,
    /// Frozen shards, oldest first, with their (final) heads.
    frozen: Vec<Shard>,
    sequencer: Sequencer,
    head_cache: HeadCache,
    /// Complete nodes of level >= [`CACHED_LEVEL`]: immutable, shared by most proofs, and
    /// few (one per 1024 leaves), so they are kept after the first read.
    node_cache: std::sync::RwLock<HashMap<(i64, NodeId), Hash>>,
    /// Bounds how many submitted entries are parsed and verified at once.
    validation: tokio::sync::Semaphore,
    /// Most entry IDs one search page answers.
    search_page_size: usize,
    /// Where entries are parsed and their signatures verified: a thread per core, twice
    /// as many entries in flight. Expensive entries queue there instead of occupying the
    /// async workers that answer reads.
    verify: Arc<crate::cpu_pool::CpuPool>,
    http: Arc<sigstack_http::metrics::HttpMetrics>,
    /// The active shard's size when this process last saw it change, and when (Unix
    /// seconds): the age of the newest checkpoint, for the metrics.
    seen_head: std::sync::Mutex<(u64, i64)>,
    /// The sequencer election among replicas (`advertise_url` on PostgreSQL).
    replication: Option<Arc<replicas::Replication>>,
    /// Entry bundles read from the database at once (each up to 256 entries).
    bundle_reads: tokio::sync::Semaphore,
}

const CACHED_LEVEL: u8 = 10;
/// Entry submissions read, parsed and verified at once; more requests wait, so parsing
/// stays bounded in memory (and a batch holds at most this many entries).
const VALIDATION_PERMITS: usize = 512;
/// Bound on the node cache (about 8 MiB): enough for the upper levels of a 200M-entry tree.
const NODE_CACHE_MAX: usize = 200_000;

/// How long a head learnt from the database (rather than from our own sequencer) is reused.
const HEAD_TTL: std::time::Duration = std::time::Duration::from_secs(1);

impl LogService {
    /// Opens the database (migrating it), loads the key, creates the first shard if the
    /// log has none, and starts the sequencer.
    pub async fn start(cfg: &LogConfig) -> anyhow::Result<Arc<Self>> {
        let signer = crate::keys::open(&cfg.signing_key, "the log key")?;
        let store = Store::open(&cfg.database_url)
            .await
            .with_context(|| format!("opening {}", sigstack_storage::redact(&cfg.database_url)))?;
        Self::with_parts(cfg, store, signer).await
    }

    pub async fn with_parts(
        cfg: &LogConfig,
        store: Store,
        signer: Arc<dyn Signer>,
    ) -> anyhow::Result<Arc<Self>> {
        let hostname = cfg.hostname()?;
        let mut shards = store.shards(&cfg.log_name).await?;
        if shards.is_empty() {
            let tree_id = new_tree_id();
            let head = empty_head(&hostname, tree_id, signer.as_ref())?;
            store.create_shard(&cfg.log_name, 0, tree_id, &head).await?;
            shards = store.shards(&cfg.log_name).await?;
        }
        // Each shard is served with the key that signed its checkpoints: the active one with
        // `signing_key`, a frozen one with that or one of `previous_keys`. Anything else
        // would yield SETs and checkpoints no client can verify: refused.
        let mut candidates = vec![Arc::new(ShardKey::new(signer.clone()))];
        for p in &cfg.previous_keys {
            let k = crate::keys::open(p, "the previous log key")?;
            candidates.push(Arc::new(ShardKey::new(k)));
        }
        let mut keys = HashMap::new();
        for s in &shards {
            let signed = |k: &Arc<ShardKey>| {
                sigstack_log::checkpoint::verify_any_name(&s.head.checkpoint, k.signer.public_key())
                    .is_ok()
            };
            let key = if s.active {
                candidates.first().filter(|k| signed(k))
            } else {
                candidates.iter().find(|k| signed(k))
            };
            let Some(key) = key else {
                anyhow::bail!(
                    "the {} shard {} of log {:?} was not signed by {}: start with the key that signed it{}",
                    if s.active { "active" } else { "frozen" },
                    s.tree_id,
                    cfg.log_name,
                    if s.active {
                        format!("signing_key {}", crate::keys::shown(&cfg.signing_key))
                    } else {
                        "signing_key or any of previous_keys".into()
                    },
                    if s.active {
                        " (after `log new-shard --signing-key NEW`, signing_key is NEW and the old key goes to previous_keys)"
                    } else {
                        ""
                    }
                );
            };
            keys.insert(s.tree_id, key.clone());
        }
        // a previous key that signed no shard is a mistake in the configuration (a key
        // listed by accident is a key kept online for nothing)
        for (k, p) in candidates.iter().skip(1).zip(&cfg.previous_keys) {
            anyhow::ensure!(
                keys.values().any(|used| Arc::ptr_eq(used, k)),
                "previous_keys names {}, which signed no shard of log {:?}: remove it",
                crate::keys::shown(p),
                cfg.log_name
            );
        }
        let active = shards
            .iter()
            .find(|s| s.active)
            .context("the log has no active shard")?
            .tree_id;
        let frozen: Vec<Shard> = shards.into_iter().filter(|s| !s.active).collect();
        let head_cache = HeadCache::default();
        let replication = match &cfg.advertise_url {
            Some(me) => replicas::Replication::start(&store, &cfg.log_name, me)?,
            None => None,
        };
        let sequencer = Sequencer::spawn(
            store.clone(),
            SequencerConfig {
                head_cache: head_cache.clone(),
                tree_id: active,
                head_signer: Arc::new(CheckpointSigner {
                    origin: rekor_origin(&hostname, active),
                    key_name: hostname,
                    signer: signer.clone(),
                }),
                max_batch: cfg.max_batch,
            },
        );
        Ok(Arc::new(Self {
            log_id_hex: hex::encode(log_id(signer.public_key().spki_der())),
            store,
            keys,
            active_tree: active,
            frozen,
            sequencer,
            head_cache,
            node_cache: Default::default(),
            validation: tokio::sync::Semaphore::new(VALIDATION_PERMITS),
            search_page_size: cfg.search_page_size,
            verify: crate::cpu_pool::CpuPool::per_core("log-verify")?,
            http: sigstack_http::metrics::HttpMetrics::new("log"),
            seen_head: std::sync::Mutex::new((u64::MAX, crate::sequencer::unix_now())),
            replication,
            bundle_reads: tokio::sync::Semaphore::new(4),
        }))
    }

    pub fn router(self: &Arc<Self>, max_request_bytes: usize) -> Router {
        api::routes(self, max_request_bytes)
            .with_state(self.clone())
            .layer(DefaultBodyLimit::max(max_request_bytes))
            .layer(axum::middleware::from_fn_with_state(
                self.http.clone(),
                sigstack_http::metrics::observe,
            ))
    }

    /// Canonicalises (parses and, with `Check::Verify`, verifies) a proposed entry off
    /// the async workers.
    pub(crate) async fn canonicalize(
        &self,
        proposed: sigstack_types::rekor::ProposedEntry,
        check: sigstack_log::Check,
    ) -> Result<Result<sigstack_log::Canonical, sigstack_log::EntryError>, ApiError> {
        Ok(self
            .verify
            .run(move || match check {
                sigstack_log::Check::Verify => sigstack_log::canonicalize(&proposed),
                sigstack_log::Check::LookupOnly => sigstack_log::canonicalize_for_lookup(&proposed),
            })
            .await?)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The active shard's log ID.
    pub fn log_id_hex(&self) -> &str {
        &self.log_id_hex
    }

    /// The key of a shard of this log.
    pub(crate) fn key_of(&self, tree_id: i64) -> Result<&ShardKey, ApiError> {
        self.keys
            .get(&tree_id)
            .map(Arc::as_ref)
            .ok_or_else(|| ApiError::internal(format!("no key for tree {tree_id}")))
    }

    pub fn active_tree(&self) -> i64 {
        self.active_tree
    }

    /// Global index of the first entry of `tree_id`, and whether the tree is ours.
    fn offset_of(&self, tree_id: i64) -> Option<u64> {
        let mut offset = 0;
        for s in &self.frozen {
            if s.tree_id == tree_id {
                return Some(offset);
            }
            offset += s.head.size;
        }
        (tree_id == self.active_tree).then_some(offset)
    }

    /// Maps a global index to (tree, index in tree), for frozen shards and the active one.
    fn locate(&self, global: u64) -> (i64, u64) {
        let mut offset = 0;
        for s in &self.frozen {
            if global < offset + s.head.size {
                return (s.tree_id, global - offset);
            }
            offset += s.head.size;
        }
        (self.active_tree, global - offset)
    }

    fn tree_ids(&self) -> impl Iterator<Item = i64> + '_ {
        std::iter::once(self.active_tree).chain(self.frozen.iter().rev().map(|s| s.tree_id))
    }

    /// The current head of a shard (frozen shards never change). The active shard's head
    /// comes from our sequencer, or from the database at most [`HEAD_TTL`] ago; a proof
    /// against a slightly older head is still a valid, consistent proof.
    async fn head(&self, tree_id: i64) -> Result<Arc<TreeHead>, ApiError> {
        if let Some(s) = self.frozen.iter().find(|s| s.tree_id == tree_id) {
            return Ok(Arc::new(s.head.clone()));
        }
        if let Ok(c) = self.head_cache.read()
            && let Some((h, at)) = c.as_ref()
            && at.elapsed() < HEAD_TTL
        {
            return Ok(h.clone());
        }
        self.fresh_head(tree_id).await
    }

    /// The head as the database has it now (other replicas may have grown the tree).
    async fn fresh_head(&self, tree_id: i64) -> Result<Arc<TreeHead>, ApiError> {
        let h = Arc::new(
            self.store
                .head(tree_id)
                .await
                .map_err(store_error)?
                .ok_or_else(|| ApiError::internal(format!("tree {tree_id} vanished")))?,
        );
        if tree_id == self.active_tree
            && let Ok(mut c) = self.head_cache.write()
        {
            let newer = c.as_ref().is_none_or(|(old, _)| old.size <= h.size);
            if newer {
                *c = Some((h.clone(), std::time::Instant::now()));
            }
        }
        Ok(h)
    }

    /// A head that covers `index`: the cached one, or a fresh one if the entry is newer.
    async fn head_covering(&self, tree_id: i64, index: u64) -> Result<Arc<TreeHead>, ApiError> {
        let head = self.head(tree_id).await?;
        if index < head.size {
            return Ok(head);
        }
        self.fresh_head(tree_id).await
    }

    /// An audit path for `index` against `head`, from the node cache and one read of
    /// stored nodes.
    async fn prove(
        &self,
        tree_id: i64,
        index: u64,
        head: &TreeHead,
    ) -> Result<Vec<Hash>, ApiError> {
        let mut path = self.path_from_cache(tree_id, index, head)?;
        if !path.missing.is_empty() {
            let fetched = self
                .store
                .nodes(tree_id, &path.missing)
                .await
                .map_err(store_error)?;
            self.remember(tree_id, &fetched);
            path.found.extend(fetched);
        }
        path.assemble(tree_id, index)
    }

    /// The plan of an audit path for `index` against `head`, with the nodes the cache
    /// holds and the ids of those still to be read.
    fn path_from_cache(
        &self,
        tree_id: i64,
        index: u64,
        head: &TreeHead,
    ) -> Result<AuditPath, ApiError> {
        let plan = inclusion_plan(index, head.size).ok_or_else(|| {
            ApiError::internal(format!("index {index} beyond tree size {}", head.size))
        })?;
        let mut found: HashMap<NodeId, Hash> = HashMap::new();
        let mut missing = Vec::new();
        let cache = self
            .node_cache
            .read()
            .map_err(|_| ApiError::internal("node cache poisoned"))?;
        for id in plan.nodes() {
            match cache.get(&(tree_id, id)) {
                Some(h) => {
                    found.insert(id, *h);
                }
                None => missing.push(id),
            }
        }
        Ok(AuditPath {
            plan,
            found,
            missing,
        })
    }

    /// Keeps the read nodes of level >= [`CACHED_LEVEL`] (complete, so immutable).
    fn remember(&self, tree_id: i64, fetched: &[(NodeId, Hash)]) {
        let upper: Vec<_> = fetched
            .iter()
            .filter(|(id, _)| id.level >= CACHED_LEVEL)
            .copied()
            .collect();
        if !upper.is_empty()
            && let Ok(mut cache) = self.node_cache.write()
        {
            if cache.len() + upper.len() > NODE_CACHE_MAX {
                cache.clear();
            }
            cache.extend(upper.into_iter().map(|(id, h)| ((tree_id, id), h)));
        }
    }
}

/// An audit path being put together: its plan, the nodes at hand and those to read.
struct AuditPath {
    plan: ProofPlan,
    found: HashMap<NodeId, Hash>,
    missing: Vec<NodeId>,
}

impl AuditPath {
    fn assemble(&self, tree_id: i64, index: u64) -> Result<Vec<Hash>, ApiError> {
        self.plan
            .assemble(|id| self.found.get(&id).copied())
            .ok_or_else(|| {
                ApiError::internal(format!(
                    "tree {tree_id} is missing nodes for a proof of {index}"
                ))
            })
    }
}

/// Signs Rekor v1 checkpoints for one shard.
struct CheckpointSigner {
    origin: String,
    key_name: String,
    signer: Arc<dyn Signer>,
}

impl HeadSigner for CheckpointSigner {
    fn sign_head(&self, size: u64, root: &Hash) -> Result<String, String> {
        Checkpoint {
            origin: self.origin.clone(),
            size,
            root: *root,
        }
        .sign(&self.key_name, self.signer.as_ref())
        .map_err(|e| e.to_string())
    }
}

/// An empty shard's head, its checkpoint signed.
fn empty_head(hostname: &str, tree_id: i64, signer: &dyn Signer) -> anyhow::Result<TreeHead> {
    let empty = Checkpoint {
        origin: rekor_origin(hostname, tree_id),
        size: 0,
        root: EMPTY_ROOT,
    };
    Ok(TreeHead {
        size: 0,
        root: EMPTY_ROOT,
        checkpoint: empty.sign(hostname, signer)?,
    })
}

fn new_tree_id() -> i64 {
    (rand::random::<u64>() >> 1).max(1) as i64
}

/// Freezes the active shard of the configured log and creates a new one, signed by
/// `next_key` (a key rotation) or the configured key.
pub async fn new_shard(cfg: &LogConfig, next_key: Option<&std::path::Path>) -> anyhow::Result<i64> {
    let key_path = next_key.unwrap_or(&cfg.signing_key);
    let signer = crate::keys::open(key_path, "the log key")?;
    crate::keys::expect(
        signer.as_ref(),
        &["PKIX_ECDSA_P256_SHA_256"],
        key_path,
        "the log key",
    )?;
    let store = Store::open(&cfg.database_url).await?;
    let shards = store.shards(&cfg.log_name).await?;
    let tree_id = new_tree_id();
    let head = empty_head(&cfg.hostname()?, tree_id, signer.as_ref())?;
    if !store
        .create_shard(&cfg.log_name, shards.len(), tree_id, &head)
        .await?
    {
        anyhow::bail!("the log's shards changed meanwhile; run the command again");
    }
    store.close().await;
    Ok(tree_id)
}

pub(crate) fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Unavailable(m) => ApiError::unavailable(m),
        other => ApiError::internal(other),
    }
}
