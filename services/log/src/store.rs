//! What the log needs from storage. `sigstack-storage` implements it for PostgreSQL and
//! SQLite; the service is written against it.

use sigstack_merkle::{Hash, NodeId};
use std::future::Future;

/// A shard's current head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeHead {
    pub size: u64,
    pub root: Hash,
    /// The signed checkpoint for `size` and `root`.
    pub checkpoint: String,
}

/// One tree (shard) of a log. Frozen shards are the `inactiveShards` of Rekor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    pub tree_id: i64,
    /// Position among the log's shards, oldest first.
    pub ordinal: i32,
    pub active: bool,
    pub head: TreeHead,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEntry {
    pub tree_id: i64,
    pub index: u64,
    pub leaf_hash: Hash,
    pub body: Vec<u8>,
    pub integrated_time: i64,
}

/// An entry found under a search key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchHit {
    pub key: String,
    pub tree_id: i64,
    pub index: u64,
    pub leaf_hash: Hash,
}

#[derive(Clone, Debug)]
pub struct NewEntry {
    pub index: u64,
    pub leaf_hash: Hash,
    pub body: Vec<u8>,
    pub integrated_time: i64,
    pub index_keys: Vec<String>,
}

/// The result of an atomic batch append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Everything was written and committed.
    Appended,
    /// The tree is not at the size the batch was planned for (another sequencer moved
    /// it); nothing was written.
    Stale { size: u64 },
    /// These leaves already exist (leaf hash, index); nothing was written.
    Duplicates(Vec<(Hash, u64)>),
}

#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database cannot be reached or refused the work for now; retrying may succeed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Stored data contradicts itself.
    #[error("storage corrupt: {0}")]
    Corrupt(String),
    #[error("storage error: {0}")]
    Other(String),
}

/// Storage for one or more logs (each a list of shards). Every method is one round trip
/// or one transaction; `append` is atomic.
pub trait LogStore: Send + Sync {
    /// The shards of `log`, oldest first.
    fn shards(&self, log: &str) -> impl Future<Output = Result<Vec<Shard>, StoreError>> + Send;

    /// Adds a new active shard to `log` and freezes the current one, in one transaction,
    /// provided the log has exactly `expected_shards` shards (so that two processes
    /// starting at once create one first shard). Returns whether it was created.
    fn create_shard(
        &self,
        log: &str,
        expected_shards: usize,
        tree_id: i64,
        empty_head: &TreeHead,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn head(
        &self,
        tree_id: i64,
    ) -> impl Future<Output = Result<Option<TreeHead>, StoreError>> + Send;

    /// Atomically: if the tree is at `expected_size` and none of the leaves exist, write
    /// the entries, their index keys, the nodes and the new head.
    fn append(
        &self,
        tree_id: i64,
        expected_size: u64,
        entries: &[NewEntry],
        nodes: &[(NodeId, Hash)],
        head: &TreeHead,
    ) -> impl Future<Output = Result<AppendOutcome, StoreError>> + Send;

    fn entry_by_index(
        &self,
        tree_id: i64,
        index: u64,
    ) -> impl Future<Output = Result<Option<StoredEntry>, StoreError>> + Send;

    /// The entries of `tree_id` with indexes in `[start, end)`, in index order (fewer if
    /// the tree is smaller).
    fn entries_range(
        &self,
        tree_id: i64,
        start: u64,
        end: u64,
    ) -> impl Future<Output = Result<Vec<StoredEntry>, StoreError>> + Send;

    /// The entry with this leaf hash in `tree_id`, or in any tree when `None`.
    fn entries_by_leaf(
        &self,
        tree_id: Option<i64>,
        leaf_hash: &Hash,
    ) -> impl Future<Output = Result<Vec<StoredEntry>, StoreError>> + Send;

    /// Complete node hashes of `tree_id` (level 0 = leaf hashes). Missing ids are absent.
    fn nodes(
        &self,
        tree_id: i64,
        ids: &[NodeId],
    ) -> impl Future<Output = Result<Vec<(NodeId, Hash)>, StoreError>> + Send;

    /// One proof read: the entry at `index` of `tree_id` and the complete nodes `ids`
    /// (as [`LogStore::entry_by_index`] and [`LogStore::nodes`] together).
    fn entry_and_nodes(
        &self,
        tree_id: i64,
        index: u64,
        ids: &[NodeId],
    ) -> impl Future<Output = Result<EntryAndNodes, StoreError>> + Send;

    /// Entries indexed under any of `keys` (at most 10,000 hits).
    fn search(
        &self,
        keys: &[String],
    ) -> impl Future<Output = Result<Vec<SearchHit>, StoreError>> + Send;

    /// One page of a search over the trees `trees`, newest first: entries indexed under
    /// any of `keys` (or, with `all`, under every one of them, intersected before the
    /// limit), older than `before` (tree, index), at most `limit`. Returns (tree, index,
    /// leaf hash).
    fn search_page(
        &self,
        query: &SearchQuery,
    ) -> impl Future<Output = Result<Vec<(i64, u64, Hash)>, StoreError>> + Send;
}

/// What [`LogStore::entry_and_nodes`] returns: the entry (if the tree has one at that
/// index) and the nodes found.
pub type EntryAndNodes = (Option<StoredEntry>, Vec<(NodeId, Hash)>);

/// A page of a search: see [`LogStore::search_page`].
#[derive(Clone, Debug)]
pub struct SearchQuery {
    pub keys: Vec<String>,
    pub all: bool,
    pub trees: Vec<i64>,
    pub before: Option<(i64, u64)>,
    pub limit: usize,
}
