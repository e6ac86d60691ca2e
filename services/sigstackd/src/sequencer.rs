//! The sequencer: one task per log process (transparency log or CT log) that turns queued entries into committed tree
//! growth. Requests queue while a batch commits and are taken together next time (group
//! commit): one transaction and one signed checkpoint per batch. A request is answered
//! only after its batch is durably committed, with an inclusion proof computed from
//! memory. Several processes may sequence the same tree; the store serialises them and
//! a stale in-memory frontier is reloaded (`AppendOutcome::Stale`).

use sigstack_log::Canonical;
use sigstack_log::batch;
use sigstack_log::store::{AppendOutcome, LogStore, NewEntry, StoreError, TreeHead};
use sigstack_merkle::{Frontier, Hash};
use sigstack_storage::Store;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// An entry in the tree, as its submitter learns it.
#[derive(Clone, Debug)]
pub struct Integrated {
    pub index: u64,
    pub integrated_time: i64,
    pub proof: Vec<Hash>,
    pub head: Arc<TreeHead>,
}

#[derive(Clone, Debug)]
pub enum SequenceError {
    /// The leaf is already in the tree.
    Duplicate,
    Unavailable(String),
    Internal(String),
}

/// Most entry bytes committed in one transaction.
const MAX_BATCH_BYTES: usize = 16 << 20;

struct Job {
    entry: Canonical,
    reply: oneshot::Sender<Result<Integrated, SequenceError>>,
}

#[derive(Clone)]
pub struct Sequencer {
    tx: mpsc::Sender<Job>,
}

/// The newest head this process knows for the active tree, and when it learnt it.
pub type HeadCache = Arc<std::sync::RwLock<Option<(Arc<TreeHead>, std::time::Instant)>>>;

/// Signs a new tree head in the log's own format (a Rekor checkpoint, a CT STH); the
/// result is stored with the head.
pub trait HeadSigner: Send + Sync {
    fn sign_head(&self, size: u64, root: &Hash) -> Result<String, String>;
}

pub struct SequencerConfig {
    /// Updated after every commit, so readers need not ask the database.
    pub head_cache: HeadCache,
    pub tree_id: i64,
    pub head_signer: Arc<dyn HeadSigner>,
    pub max_batch: usize,
}

impl Sequencer {
    pub fn spawn(store: Store, cfg: SequencerConfig) -> Self {
        let (tx, rx) = mpsc::channel(cfg.max_batch.max(1) * 64);
        let worker = Worker {
            store,
            cfg,
            frontier: None,
        };
        tokio::spawn(worker.run(rx));
        Self { tx }
    }

    /// Queues an entry and waits until it is committed (or refused).
    pub async fn submit(&self, entry: Canonical) -> Result<Integrated, SequenceError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job { entry, reply })
            .await
            .map_err(|_| SequenceError::Internal("sequencer stopped".into()))?;
        rx.await
            .map_err(|_| SequenceError::Internal("sequencer dropped the request".into()))?
    }
}

struct Worker {
    store: Store,
    cfg: SequencerConfig,
    frontier: Option<Frontier>,
}

fn store_err(e: StoreError) -> SequenceError {
    match e {
        StoreError::Unavailable(m) => SequenceError::Unavailable(m),
        other => SequenceError::Internal(other.to_string()),
    }
}

/// Loads the frontier of a tree's stored head and checks that it reproduces the stored
/// root (a cheap integrity check at every (re)start of sequencing).
pub async fn load_frontier(store: &Store, tree: i64) -> Result<Frontier, SequenceError> {
    let head = store
        .head(tree)
        .await
        .map_err(store_err)?
        .ok_or_else(|| SequenceError::Internal(format!("tree {tree} does not exist")))?;
    let ids = Frontier::node_ids(head.size);
    let found: HashMap<_, _> = store
        .nodes(tree, &ids)
        .await
        .map_err(store_err)?
        .into_iter()
        .collect();
    let hashes = ids
        .iter()
        .map(|id| found.get(id).copied())
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| SequenceError::Internal(format!("tree {tree} is missing frontier nodes")))?;
    let f = Frontier::from_hashes(head.size, &hashes)
        .ok_or_else(|| SequenceError::Internal("frontier shape mismatch".into()))?;
    if f.root() != head.root {
        return Err(SequenceError::Internal(format!(
            "tree {tree}: stored nodes do not reproduce the stored root at size {}",
            head.size
        )));
    }
    Ok(f)
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut jobs = Vec::with_capacity(self.cfg.max_batch);
        while rx.recv_many(&mut jobs, self.cfg.max_batch).await > 0 {
            self.process(std::mem::take(&mut jobs)).await;
        }
    }

    async fn process(&mut self, jobs: Vec<Job>) {
        // Within one batch the first copy of a leaf is logged; later copies are duplicates of it.
        let mut pending: Vec<Job> = Vec::with_capacity(jobs.len());
        let mut repeats: Vec<Job> = Vec::new();
        let mut seen: HashMap<Hash, ()> = HashMap::new();
        for job in jobs {
            if seen.insert(job.entry.leaf_hash, ()).is_some() {
                repeats.push(job);
            } else {
                pending.push(job);
            }
        }
        // What became of each leaf, for the repeats.
        let mut fate: HashMap<Hash, Result<u64, SequenceError>> = HashMap::new();
        // Bound the bytes of one transaction as well as its entry count.
        let mut group: Vec<Job> = Vec::new();
        let mut bytes = 0usize;
        for job in pending {
            let size = job.entry.body.len() + 64;
            if !group.is_empty() && bytes + size > MAX_BATCH_BYTES {
                self.commit_group(std::mem::take(&mut group), &mut fate)
                    .await;
                bytes = 0;
            }
            bytes += size;
            group.push(job);
        }
        if !group.is_empty() {
            self.commit_group(group, &mut fate).await;
        }
        for job in repeats {
            let r = match fate.get(&job.entry.leaf_hash) {
                Some(Ok(_)) => Err(SequenceError::Duplicate),
                Some(Err(e)) => Err(e.clone()),
                None => Err(SequenceError::Internal(
                    "lost track of a batched entry".into(),
                )),
            };
            let _ = job.reply.send(r);
        }
    }

    /// Commits one group of distinct entries, retrying when another writer moved the
    /// tree or some entries turn out to exist already. If the group fails for a reason
    /// that is not a storage outage, its entries are retried one by one, so that one
    /// entry the database refuses cannot fail the others.
    async fn commit_group(
        &mut self,
        mut pending: Vec<Job>,
        fate: &mut HashMap<Hash, Result<u64, SequenceError>>,
    ) {
        for attempt in 0..12u32 {
            if pending.is_empty() {
                return;
            }
            match self.attempt(&pending).await {
                Attempt::Committed(done) => {
                    for (job, result) in pending.drain(..).zip(done) {
                        if let Ok(i) = &result {
                            fate.insert(job.entry.leaf_hash, Ok(i.index));
                        }
                        let _ = job.reply.send(result);
                    }
                }
                Attempt::Stale => {
                    // another replica committed first: back off a random, growing while
                    // so that replicas stop colliding (up to ~64 ms)
                    let cap = 2u64 << attempt.min(5);
                    let ms = 1 + rand::random::<u64>() % cap;
                    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                }
                Attempt::Duplicates(found) => {
                    let (dups, rest): (Vec<Job>, Vec<Job>) = pending
                        .drain(..)
                        .partition(|j| found.contains_key(&j.entry.leaf_hash));
                    for job in dups {
                        let index = found[&job.entry.leaf_hash];
                        fate.insert(job.entry.leaf_hash, Ok(index));
                        let _ = job.reply.send(Err(SequenceError::Duplicate));
                    }
                    pending = rest;
                }
                Attempt::Failed(SequenceError::Internal(cause)) if pending.len() > 1 => {
                    tracing::warn!(%cause, entries = pending.len(), "batch failed; retrying its entries one by one");
                    self.frontier = None;
                    for job in std::mem::take(&mut pending) {
                        Box::pin(self.commit_group(vec![job], fate)).await;
                    }
                }
                Attempt::Failed(e) => {
                    if let SequenceError::Internal(cause) = &e {
                        tracing::error!(%cause, "entry could not be committed");
                    }
                    self.frontier = None;
                    for job in pending.drain(..) {
                        fate.insert(job.entry.leaf_hash, Err(e.clone()));
                        let _ = job.reply.send(Err(e.clone()));
                    }
                }
            }
        }
        for job in pending {
            let e = SequenceError::Unavailable("the tree kept moving under this sequencer".into());
            fate.insert(job.entry.leaf_hash, Err(e.clone()));
            let _ = job.reply.send(Err(e));
        }
    }

    /// Plans, signs and writes one batch.
    async fn attempt(&mut self, jobs: &[Job]) -> Attempt {
        let frontier = match self.frontier.take() {
            Some(f) => f,
            None => match load_frontier(&self.store, self.cfg.tree_id).await {
                Ok(f) => f,
                Err(e) => return Attempt::Failed(e),
            },
        };
        let leaves: Vec<Hash> = jobs.iter().map(|j| j.entry.leaf_hash).collect();
        let plan = batch::plan(&frontier, &leaves);
        let now = unix_now();
        let base = frontier.size();
        let entries: Vec<NewEntry> = jobs
            .iter()
            .enumerate()
            .map(|(k, j)| NewEntry {
                index: base + k as u64,
                leaf_hash: j.entry.leaf_hash,
                body: j.entry.body.clone(),
                integrated_time: now,
                index_keys: j.entry.index_keys.clone(),
            })
            .collect();
        let checkpoint = match self
            .cfg
            .head_signer
            .sign_head(plan.new_size(), &plan.root())
        {
            Ok(c) => c,
            Err(e) => {
                return Attempt::Failed(SequenceError::Internal(format!(
                    "signing the tree head: {e}"
                )));
            }
        };
        let head = TreeHead {
            size: plan.new_size(),
            root: plan.root(),
            checkpoint,
        };
        let written = self
            .store
            .append(
                self.cfg.tree_id,
                base,
                &entries,
                &plan.internal_nodes(),
                &head,
            )
            .await;
        match written {
            Ok(AppendOutcome::Appended) => {
                let head = Arc::new(head);
                if let Ok(mut c) = self.cfg.head_cache.write() {
                    *c = Some((head.clone(), std::time::Instant::now()));
                }
                let done = (0..jobs.len() as u64)
                    .map(|k| {
                        let index = base + k;
                        let proof = plan.inclusion_proof(index).ok_or_else(|| {
                            SequenceError::Internal("batch plan lacks a proof".into())
                        })?;
                        Ok(Integrated {
                            index,
                            integrated_time: now,
                            proof,
                            head: head.clone(),
                        })
                    })
                    .collect();
                self.frontier = Some(plan.frontier);
                Attempt::Committed(done)
            }
            Ok(AppendOutcome::Stale { .. }) => Attempt::Stale,
            Ok(AppendOutcome::Duplicates(found)) => {
                self.frontier = Some(frontier);
                Attempt::Duplicates(found.into_iter().collect())
            }
            Err(e) => Attempt::Failed(store_err(e)),
        }
    }
}

enum Attempt {
    Committed(Vec<Result<Integrated, SequenceError>>),
    /// Another writer moved the tree; the frontier will be reloaded.
    Stale,
    Duplicates(HashMap<Hash, u64>),
    Failed(SequenceError),
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl std::fmt::Display for SequenceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Duplicate => f.write_str("duplicate entry"),
            Self::Unavailable(m) => write!(f, "storage unavailable: {m}"),
            Self::Internal(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for SequenceError {}
