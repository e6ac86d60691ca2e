//! PostgreSQL: batch writes as array parameters (`UNNEST`), one transaction per batch,
//! the tree row locked `FOR UPDATE` so only one sequencer writes a tree at a time even
//! when several processes share the database.

use crate::{map_err, to_hash, to_u64};
use sigstack_log::store::{
    AppendOutcome, EntryAndNodes, NewEntry, SearchHit, Shard, StoreError, StoredEntry, TreeHead,
};
use sigstack_merkle::{Hash, NodeId};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};
use std::str::FromStr;
use std::time::Duration;

pub(crate) async fn connect(url: &str) -> Result<PgPool, StoreError> {
    let bad = |e: String| StoreError::Other(format!("bad PostgreSQL URL: {e}"));
    let hosts = crate::failover::split(url).map_err(bad)?;
    let servers = hosts
        .urls
        .iter()
        .map(|u| {
            Ok(PgConnectOptions::from_str(u)
                .map_err(|e| bad(e.to_string()))?
                .application_name("sigstackd")
                // Plan every execution with its parameters: a generic plan cached while a
                // table was empty (a sequential scan) would otherwise stay in use as the
                // table grows.
                .options([("plan_cache_mode", "force_custom_plan")]))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(5))
        .test_before_acquire(true);
    if servers.len() == 1 && !hosts.read_write {
        return pool.connect_with(servers[0].clone()).await.map_err(map_err);
    }
    let first = crate::failover::pick(&servers, 0, hosts.read_write)
        .await
        .map_err(StoreError::Unavailable)?;
    let pool = pool
        .connect_with(servers[first].clone())
        .await
        .map_err(map_err)?;
    crate::failover::watch(pool.clone(), servers, first, hosts.read_write);
    Ok(pool)
}

fn shard_from_row(r: &sqlx::postgres::PgRow) -> Result<Shard, StoreError> {
    Ok(Shard {
        tree_id: r.get("tree_id"),
        ordinal: r.get("ordinal"),
        active: r.get("active"),
        head: head_from_row(r)?,
    })
}

fn head_from_row(r: &sqlx::postgres::PgRow) -> Result<TreeHead, StoreError> {
    Ok(TreeHead {
        size: to_u64(r.get("size"))?,
        root: to_hash(r.get("root"))?,
        checkpoint: r.get("checkpoint"),
    })
}

pub(crate) async fn shards(p: &PgPool, log: &str) -> Result<Vec<Shard>, StoreError> {
    let rows = sqlx::query(
        "SELECT tree_id, ordinal, active, size, root, checkpoint FROM trees WHERE log_name = $1 ORDER BY ordinal",
    )
    .bind(log)
    .fetch_all(p)
    .await
    .map_err(map_err)?;
    rows.iter().map(shard_from_row).collect()
}

pub(crate) async fn create_shard(
    p: &PgPool,
    log: &str,
    expected: usize,
    tree_id: i64,
    head: &TreeHead,
) -> Result<bool, StoreError> {
    let mut tx = p.begin().await.map_err(map_err)?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
        .bind(log)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    let next: i32 = sqlx::query_scalar("SELECT COUNT(*)::INTEGER FROM trees WHERE log_name = $1")
        .bind(log)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
    if next as usize != expected {
        return Ok(false);
    }
    sqlx::query("UPDATE trees SET active = FALSE WHERE log_name = $1 AND active")
        .bind(log)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    sqlx::query(
        "INSERT INTO trees (tree_id, log_name, ordinal, active, size, root, checkpoint) VALUES ($1, $2, $3, TRUE, $4, $5, $6)",
    )
    .bind(tree_id)
    .bind(log)
    .bind(next)
    .bind(head.size as i64)
    .bind(head.root.as_slice())
    .bind(&head.checkpoint)
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    tx.commit().await.map_err(map_err)?;
    Ok(true)
}

pub(crate) async fn head(p: &PgPool, tree_id: i64) -> Result<Option<TreeHead>, StoreError> {
    let row = sqlx::query("SELECT size, root, checkpoint FROM trees WHERE tree_id = $1")
        .bind(tree_id)
        .fetch_optional(p)
        .await
        .map_err(map_err)?;
    row.as_ref().map(head_from_row).transpose()
}

/// The expression `entries_leaf_key` indexes (migration 5): a leaf hash's first 8 bytes
/// as a signed big-endian integer. Queries must spell it the same to use the index.
const LEAF_KEY: &str = "('x' || encode(substr(leaf_hash, 1, 8), 'hex'))::BIT(64)::BIGINT";

fn leaf_key(h: &Hash) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    i64::from_be_bytes(b)
}

pub(crate) async fn append(
    p: &PgPool,
    tree_id: i64,
    expected_size: u64,
    entries: &[NewEntry],
    nodes: &[(NodeId, Hash)],
    head: &TreeHead,
) -> Result<AppendOutcome, StoreError> {
    let mut tx = p.begin().await.map_err(map_err)?;
    let size: Option<i64> =
        sqlx::query_scalar("SELECT size FROM trees WHERE tree_id = $1 AND active FOR UPDATE")
            .bind(tree_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
    let size = match size {
        Some(s) => to_u64(s)?,
        None => {
            return Err(StoreError::Other(format!(
                "tree {tree_id} is not an active shard"
            )));
        }
    };
    if size != expected_size {
        return Ok(AppendOutcome::Stale { size });
    }
    let leaves: Vec<&[u8]> = entries.iter().map(|e| e.leaf_hash.as_slice()).collect();
    let idx: Vec<i64> = entries.iter().map(|e| e.index as i64).collect();
    let bodies: Vec<&[u8]> = entries.iter().map(|e| e.body.as_slice()).collect();
    let times: Vec<i64> = entries.iter().map(|e| e.integrated_time).collect();
    let leaf_keys: Vec<i64> = entries.iter().map(|e| leaf_key(&e.leaf_hash)).collect();
    let distinct: std::collections::HashSet<&[u8]> = leaves.iter().copied().collect();
    if distinct.len() != leaves.len() {
        return Err(StoreError::Other(
            "a batch holds the same entry twice".into(),
        ));
    }
    // Duplicates by the 8-byte key's index, then by the whole hash. The tree's row lock,
    // held since the first statement, keeps every other writer from adding one meanwhile.
    let dups = sqlx::query(&format!(
        "SELECT leaf_hash, idx FROM entries \
         WHERE {LEAF_KEY} = ANY($2) AND tree_id = $1 AND leaf_hash = ANY($3)"
    ))
    .bind(tree_id)
    .bind(&leaf_keys)
    .bind(&leaves)
    .fetch_all(&mut *tx)
    .await
    .map_err(map_err)?;
    if !dups.is_empty() {
        tx.rollback().await.map_err(map_err)?;
        let found = dups
            .iter()
            .map(|r| Ok((to_hash(r.get("leaf_hash"))?, to_u64(r.get("idx"))?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        return Ok(AppendOutcome::Duplicates(found));
    }
    sqlx::query(
        "INSERT INTO entries (tree_id, idx, leaf_hash, body, integrated_time) \
         SELECT $1, * FROM UNNEST($2::BIGINT[], $3::BYTEA[], $4::BYTEA[], $5::BIGINT[])",
    )
    .bind(tree_id)
    .bind(&idx)
    .bind(&leaves)
    .bind(&bodies)
    .bind(&times)
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    if !nodes.is_empty() {
        let levels: Vec<i16> = nodes.iter().map(|(n, _)| n.level as i16).collect();
        let nidx: Vec<i64> = nodes.iter().map(|(n, _)| n.index as i64).collect();
        let hashes: Vec<&[u8]> = nodes.iter().map(|(_, h)| h.as_slice()).collect();
        sqlx::query(
            "INSERT INTO nodes (tree_id, level, idx, hash) SELECT $1, * FROM UNNEST($2::SMALLINT[], $3::BIGINT[], $4::BYTEA[])",
        )
        .bind(tree_id)
        .bind(&levels)
        .bind(&nidx)
        .bind(&hashes)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    }
    let (keys, kidx): (Vec<&str>, Vec<i64>) = entries
        .iter()
        .flat_map(|e| {
            e.index_keys
                .iter()
                .map(move |k| (k.as_str(), e.index as i64))
        })
        .unzip();
    if !keys.is_empty() {
        // into the partition of their entries' range, made first if missing (migration 4)
        sqlx::query("SELECT sigstack_index_keys($1, $2::TEXT[], $3::BIGINT[])")
            .bind(tree_id)
            .bind(&keys)
            .bind(&kidx)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
    }
    sqlx::query("UPDATE trees SET size = $2, root = $3, checkpoint = $4 WHERE tree_id = $1")
        .bind(tree_id)
        .bind(head.size as i64)
        .bind(head.root.as_slice())
        .bind(&head.checkpoint)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    tx.commit().await.map_err(map_err)?;
    Ok(AppendOutcome::Appended)
}

fn entry_from_row(r: &sqlx::postgres::PgRow) -> Result<StoredEntry, StoreError> {
    Ok(StoredEntry {
        tree_id: r.get("tree_id"),
        index: to_u64(r.get("idx"))?,
        leaf_hash: to_hash(r.get("leaf_hash"))?,
        body: r.get("body"),
        integrated_time: r.get("integrated_time"),
    })
}

pub(crate) async fn entry_by_index(
    p: &PgPool,
    tree_id: i64,
    index: u64,
) -> Result<Option<StoredEntry>, StoreError> {
    let row = sqlx::query(
        "SELECT tree_id, idx, leaf_hash, body, integrated_time FROM entries WHERE tree_id = $1 AND idx = $2",
    )
    .bind(tree_id)
    .bind(index as i64)
    .fetch_optional(p)
    .await
    .map_err(map_err)?;
    row.as_ref().map(entry_from_row).transpose()
}

pub(crate) async fn entries_range(
    p: &PgPool,
    tree_id: i64,
    start: u64,
    end: u64,
) -> Result<Vec<StoredEntry>, StoreError> {
    let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let rows = sqlx::query(
        "SELECT tree_id, idx, leaf_hash, body, integrated_time FROM entries WHERE tree_id = $1 AND idx >= $2 AND idx < $3 ORDER BY idx",
    )
    .bind(tree_id)
    .bind(clamp(start))
    .bind(clamp(end))
    .fetch_all(p)
    .await
    .map_err(map_err)?;
    rows.iter().map(entry_from_row).collect()
}

pub(crate) async fn entries_by_leaf(
    p: &PgPool,
    tree_id: Option<i64>,
    leaf: &Hash,
) -> Result<Vec<StoredEntry>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT tree_id, idx, leaf_hash, body, integrated_time FROM entries \
         WHERE {LEAF_KEY} = $3 AND leaf_hash = $1 AND ($2::BIGINT IS NULL OR tree_id = $2)"
    ))
    .bind(leaf.as_slice())
    .bind(tree_id)
    .bind(leaf_key(leaf))
    .fetch_all(p)
    .await
    .map_err(map_err)?;
    rows.iter().map(entry_from_row).collect()
}

/// Node ids as array parameters: leaves (level 0, read from `entries`) by index, inner
/// nodes as parallel level and index arrays.
struct NodeArrays {
    leaf_idx: Vec<i64>,
    levels: Vec<i16>,
    idx: Vec<i64>,
}

impl NodeArrays {
    fn of(ids: &[NodeId]) -> Self {
        let (leaves, inner): (Vec<&NodeId>, Vec<&NodeId>) = ids.iter().partition(|n| n.level == 0);
        NodeArrays {
            leaf_idx: leaves.iter().map(|n| n.index as i64).collect(),
            levels: inner.iter().map(|n| n.level as i16).collect(),
            idx: inner.iter().map(|n| n.index as i64).collect(),
        }
    }
}

pub(crate) async fn nodes(
    p: &PgPool,
    tree_id: i64,
    ids: &[NodeId],
) -> Result<Vec<(NodeId, Hash)>, StoreError> {
    let ids = NodeArrays::of(ids);
    let rows = sqlx::query(
        "SELECT n.level, n.idx, n.hash FROM nodes n \
           JOIN UNNEST($2::SMALLINT[], $3::BIGINT[]) AS w(l, i) ON n.level = w.l AND n.idx = w.i \
          WHERE n.tree_id = $1 \
         UNION ALL \
         SELECT 0::SMALLINT, idx, leaf_hash FROM entries WHERE tree_id = $1 AND idx = ANY($4)",
    )
    .bind(tree_id)
    .bind(&ids.levels)
    .bind(&ids.idx)
    .bind(&ids.leaf_idx)
    .fetch_all(p)
    .await
    .map_err(map_err)?;
    rows.iter()
        .map(|r| {
            let (level, at, hash) = level_idx_hash(r)?;
            Ok((NodeId::new(level as u8, at), hash))
        })
        .collect()
}

/// The first three columns of a node row: level (a proof read's entry: -1), index, hash.
fn level_idx_hash(r: &sqlx::postgres::PgRow) -> Result<(i16, u64, Hash), StoreError> {
    Ok((r.get(0), to_u64(r.get(1))?, to_hash(r.get(2))?))
}

/// The entry and the nodes of a proof read in one statement, through the function of
/// migration 6 (its plan made once per connection).
pub(crate) async fn entry_and_nodes(
    p: &PgPool,
    tree_id: i64,
    index: u64,
    ids: &[NodeId],
) -> Result<EntryAndNodes, StoreError> {
    let ids = NodeArrays::of(ids);
    let rows = sqlx::query(
        "SELECT level, idx, hash, body, integrated_time FROM sigstack_proof_read($1, $2, $3, $4, $5)",
    )
    .bind(tree_id)
    .bind(index as i64)
    .bind(&ids.levels)
    .bind(&ids.idx)
    .bind(&ids.leaf_idx)
    .fetch_all(p)
    .await
    .map_err(map_err)?;
    let mut entry = None;
    let mut nodes = Vec::with_capacity(rows.len());
    for r in &rows {
        let (level, at, hash) = level_idx_hash(r)?;
        if level < 0 {
            entry = Some(StoredEntry {
                tree_id,
                index: at,
                leaf_hash: hash,
                body: r.get(3),
                integrated_time: r.get(4),
            });
        } else {
            nodes.push((NodeId::new(level as u8, at), hash));
        }
    }
    Ok((entry, nodes))
}

pub(crate) async fn search(p: &PgPool, keys: &[String]) -> Result<Vec<SearchHit>, StoreError> {
    let rows = sqlx::query(
        "SELECT i.key, i.tree_id, i.idx, e.leaf_hash FROM entry_index i \
           JOIN entries e ON e.tree_id = i.tree_id AND e.idx = i.idx WHERE i.key = ANY($1) LIMIT 10000",
    )
    .bind(keys)
    .fetch_all(p)
    .await
    .map_err(map_err)?;
    rows.iter()
        .map(|r| {
            Ok(SearchHit {
                key: r.get(0),
                tree_id: r.get(1),
                index: to_u64(r.get(2))?,
                leaf_hash: to_hash(r.get(3))?,
            })
        })
        .collect()
}

pub(crate) async fn search_page(
    p: &PgPool,
    q: &sigstack_log::store::SearchQuery,
) -> Result<Vec<(i64, u64, Hash)>, StoreError> {
    if q.keys.is_empty() || q.trees.is_empty() {
        return Ok(Vec::new());
    }
    let (bt, bi) = q.before.map_or((i64::MAX, i64::MAX), |(t, i)| {
        (t, i64::try_from(i).unwrap_or(i64::MAX))
    });
    let need = if q.all { q.keys.len() as i64 } else { 1 };
    let rows = sqlx::query(
        "SELECT m.tree_id, m.idx, e.leaf_hash FROM ( \
           SELECT i.tree_id, i.idx FROM entry_index i \
            WHERE i.key = ANY($1) AND i.tree_id = ANY($2) AND (i.tree_id, i.idx) < ($3, $4) \
            GROUP BY i.tree_id, i.idx HAVING COUNT(DISTINCT i.key) >= $5 \
            ORDER BY i.tree_id DESC, i.idx DESC LIMIT $6) m \
         JOIN entries e ON e.tree_id = m.tree_id AND e.idx = m.idx \
         ORDER BY m.tree_id DESC, m.idx DESC",
    )
    .bind(&q.keys)
    .bind(&q.trees)
    .bind(bt)
    .bind(bi)
    .bind(need)
    .bind(i64::try_from(q.limit).unwrap_or(i64::MAX))
    .fetch_all(p)
    .await
    .map_err(map_err)?;
    rows.iter()
        .map(|r| Ok((r.get(0), to_u64(r.get(1))?, to_hash(r.get(2))?)))
        .collect()
}

pub(crate) async fn tuf_files(
    p: &PgPool,
    after_seq: i64,
) -> Result<Vec<crate::TufFile>, StoreError> {
    let rows = sqlx::query(
        "SELECT seq, path, role, version, body FROM tuf_files WHERE seq > $1 ORDER BY seq",
    )
    .bind(after_seq)
    .fetch_all(p)
    .await
    .map_err(map_err)?;
    Ok(rows
        .iter()
        .map(|r| crate::TufFile {
            seq: r.get("seq"),
            path: r.get("path"),
            role: r.get("role"),
            version: r.get("version"),
            body: r.get("body"),
        })
        .collect())
}

pub(crate) async fn tuf_publish(p: &PgPool, files: &[crate::TufFile]) -> Result<bool, StoreError> {
    let mut tx = p.begin().await.map_err(map_err)?;
    for f in files {
        let done = sqlx::query(
            "INSERT INTO tuf_files (path, role, version, body) VALUES ($1, $2, $3, $4) ON CONFLICT (path) DO NOTHING",
        )
        .bind(&f.path)
        .bind(&f.role)
        .bind(f.version)
        .bind(&f.body)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            tx.rollback().await.map_err(map_err)?;
            return Ok(false);
        }
    }
    tx.commit().await.map_err(map_err)?;
    Ok(true)
}
