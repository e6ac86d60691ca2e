//! Storage: the one crate that speaks SQL. [`Store`] is PostgreSQL in production and an
//! embedded SQLite file by default; both implement the domain traits
//! ([`sigstack_log::store::LogStore`]) with the same semantics, proven by one test suite.
//!
//! Durability: PostgreSQL commits with `synchronous_commit` as configured on the server
//! (on by default); SQLite runs in WAL mode with `synchronous=FULL`, so a committed batch
//! survives a crash of the process or the machine.

mod failover;
pub mod leader;
mod migrate;
pub mod monitor;
mod pg;
mod sqlite;

use sigstack_log::store::{
    AppendOutcome, EntryAndNodes, LogStore, NewEntry, SearchHit, Shard, StoreError, StoredEntry,
    TreeHead,
};
use sigstack_merkle::{Hash, NodeId};

pub use migrate::{migrate, migrate_first};

/// A connection pool to one of the supported databases.
#[derive(Clone, Debug)]
pub enum Store {
    Postgres(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
}

impl Store {
    /// Connects to `postgres://…` or `sqlite://PATH` (created if missing).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            pg::connect(url).await.map(Store::Postgres)
        } else if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            sqlite::connect(path).await.map(Store::Sqlite)
        } else {
            Err(StoreError::Other(format!(
                "unsupported database URL {:?}: use postgres://… or sqlite://PATH",
                redact(url)
            )))
        }
    }

    /// Connects and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let store = Self::connect(url).await?;
        migrate(&store).await?;
        Ok(store)
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Store::Postgres(_) => "postgres",
            Store::Sqlite(_) => "sqlite",
        }
    }

    /// Cheap liveness probe for readiness endpoints.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Store::Postgres(p) => sqlx::query("SELECT 1").execute(p).await.map(|_| ()),
            Store::Sqlite(p) => sqlx::query("SELECT 1").execute(p).await.map(|_| ()),
        }
        .map_err(map_err)
    }

    pub async fn close(&self) {
        match self {
            Store::Postgres(p) => p.close().await,
            Store::Sqlite(p) => p.close().await,
        }
    }
}

/// One file of the TUF repository as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TufFile {
    /// Publication order (assigned by the database).
    pub seq: i64,
    /// Path under the repository URL (`3.root.json`, `7.timestamp.json`,
    /// `targets/<sha256>.trusted_root.json`).
    pub path: String,
    /// `root`, `targets`, `snapshot`, `timestamp` or `target`.
    pub role: String,
    pub version: i64,
    pub body: Vec<u8>,
}

/// A URL with any password replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Connection-level failures are `Unavailable` (retry later); the rest are `Other`.
pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Tls(_) => StoreError::Unavailable(e.to_string()),
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.to_string()).unwrap_or_default();
            // PostgreSQL classes 08 (connection), 57P (operator intervention), 53 (resources),
            // 3D (the database does not exist: dropped, or restoring), 28 (authorization);
            // SQLite BUSY (5) / LOCKED (6).
            // SQLite extended codes keep the primary code in their low byte (517 = BUSY_SNAPSHOT).
            let sqlite_busy = code
                .parse::<u32>()
                .is_ok_and(|c| c & 0xff == 5 || c & 0xff == 6);
            // 25006: a write reached a read-only server (a standby, during a failover)
            if code.starts_with("08")
                || code == "25006"
                || code.starts_with("57P")
                || code.starts_with("3D")
                || code.starts_with("28")
                || code.starts_with("53")
                || sqlite_busy
            {
                StoreError::Unavailable(e.to_string())
            } else {
                StoreError::Other(e.to_string())
            }
        }
        _ => StoreError::Other(e.to_string()),
    }
}

pub(crate) fn to_hash(v: Vec<u8>) -> Result<Hash, StoreError> {
    Hash::try_from(v.as_slice())
        .map_err(|_| StoreError::Corrupt(format!("a stored hash has {} bytes", v.len())))
}

pub(crate) fn to_u64(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative stored size or index {v}")))
}

macro_rules! dispatch {
    ($self:ident, $m:ident ( $($a:expr),* )) => {
        match $self {
            Store::Postgres(p) => pg::$m(p, $($a),*).await,
            Store::Sqlite(p) => sqlite::$m(p, $($a),*).await,
        }
    };
}

impl LogStore for Store {
    async fn shards(&self, log: &str) -> Result<Vec<Shard>, StoreError> {
        dispatch!(self, shards(log))
    }

    async fn create_shard(
        &self,
        log: &str,
        expected_shards: usize,
        tree_id: i64,
        empty_head: &TreeHead,
    ) -> Result<bool, StoreError> {
        dispatch!(
            self,
            create_shard(log, expected_shards, tree_id, empty_head)
        )
    }

    async fn head(&self, tree_id: i64) -> Result<Option<TreeHead>, StoreError> {
        dispatch!(self, head(tree_id))
    }

    async fn append(
        &self,
        tree_id: i64,
        expected_size: u64,
        entries: &[NewEntry],
        nodes: &[(NodeId, Hash)],
        head: &TreeHead,
    ) -> Result<AppendOutcome, StoreError> {
        dispatch!(self, append(tree_id, expected_size, entries, nodes, head))
    }

    async fn entry_by_index(
        &self,
        tree_id: i64,
        index: u64,
    ) -> Result<Option<StoredEntry>, StoreError> {
        dispatch!(self, entry_by_index(tree_id, index))
    }

    async fn entries_range(
        &self,
        tree_id: i64,
        start: u64,
        end: u64,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        dispatch!(self, entries_range(tree_id, start, end))
    }

    async fn entries_by_leaf(
        &self,
        tree_id: Option<i64>,
        leaf_hash: &Hash,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        dispatch!(self, entries_by_leaf(tree_id, leaf_hash))
    }

    async fn nodes(&self, tree_id: i64, ids: &[NodeId]) -> Result<Vec<(NodeId, Hash)>, StoreError> {
        dispatch!(self, nodes(tree_id, ids))
    }

    async fn entry_and_nodes(
        &self,
        tree_id: i64,
        index: u64,
        ids: &[NodeId],
    ) -> Result<EntryAndNodes, StoreError> {
        dispatch!(self, entry_and_nodes(tree_id, index, ids))
    }

    async fn search(&self, keys: &[String]) -> Result<Vec<SearchHit>, StoreError> {
        dispatch!(self, search(keys))
    }

    async fn search_page(
        &self,
        query: &sigstack_log::store::SearchQuery,
    ) -> Result<Vec<(i64, u64, Hash)>, StoreError> {
        dispatch!(self, search_page(query))
    }
}

impl Store {
    /// Files published after `after_seq`, in publication order.
    pub async fn tuf_files(&self, after_seq: i64) -> Result<Vec<TufFile>, StoreError> {
        dispatch!(self, tuf_files(after_seq))
    }

    /// Publishes files in one transaction (`seq` is ignored). Returns false, storing
    /// nothing, if any path is already taken (another publisher got there first); a
    /// path holding the same bytes counts as taken too.
    pub async fn tuf_publish(&self, files: &[TufFile]) -> Result<bool, StoreError> {
        dispatch!(self, tuf_publish(files))
    }
}
