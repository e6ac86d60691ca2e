//! Embedded SQLite: WAL journal, `synchronous=FULL`, one transaction per batch with
//! multi-row statements. Single-process by design (the `dev` stack and small installs).

use crate::{map_err, to_hash, to_u64};
use sigstack_log::store::{
    AppendOutcome, EntryAndNodes, NewEntry, SearchHit, Shard, StoreError, StoredEntry, TreeHead,
};
use sigstack_merkle::{Hash, NodeId};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};
use std::time::Duration;

/// SQLite allows 32766 bound parameters per statement; stay well below.
const MAX_PARAMS: usize = 30_000;

pub(crate) async fn connect(path: &str) -> Result<SqlitePool, StoreError> {
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true);
    SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(opts)
        .await
        .map_err(map_err)
}

fn shard_from_row(r: &SqliteRow) -> Result<Shard, StoreError> {
    let active: i64 = r.get("active");
    Ok(Shard {
        tree_id: r.get("tree_id"),
        ordinal: r.get::<i64, _>("ordinal") as i32,
        active: active != 0,
        head: head_from_row(r)?,
    })
}

fn head_from_row(r: &SqliteRow) -> Result<TreeHead, StoreError> {
    Ok(TreeHead {
        size: to_u64(r.get("size"))?,
        root: to_hash(r.get("root"))?,
        checkpoint: r.get("checkpoint"),
    })
}

pub(crate) async fn shards(p: &SqlitePool, log: &str) -> Result<Vec<Shard>, StoreError> {
    let rows = sqlx::query(
        "SELECT tree_id, ordinal, active, size, root, checkpoint FROM trees WHERE log_name = ? ORDER BY ordinal",
    )
    .bind(log)
    .fetch_all(p)
    .await
    .map_err(map_err)?;
    rows.iter().map(shard_from_row).collect()
}

pub(crate) async fn create_shard(
    p: &SqlitePool,
    log: &str,
    expected: usize,
    tree_id: i64,
    head: &TreeHead,
) -> Result<bool, StoreError> {
    let mut tx = p.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
    let next: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM trees WHERE log_name = ?")
        .bind(log)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
    if next as usize != expected {
        return Ok(false);
    }
    sqlx::query("UPDATE trees SET active = 0 WHERE log_name = ? AND active = 1")
        .bind(log)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    sqlx::query(
        "INSERT INTO trees (tree_id, log_name, ordinal, active, size, root, checkpoint) VALUES (?, ?, ?, 1, ?, ?, ?)",
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

pub(crate) async fn head(p: &SqlitePool, tree_id: i64) -> Result<Option<TreeHead>, StoreError> {
    let row = sqlx::query("SELECT size, root, checkpoint FROM trees WHERE tree_id = ?")
        .bind(tree_id)
        .fetch_optional(p)
        .await
        .map_err(map_err)?;
    row.as_ref().map(head_from_row).transpose()
}

pub(crate) async fn append(
    p: &SqlitePool,
    tree_id: i64,
    expected_size: u64,
    entries: &[NewEntry],
    nodes: &[(NodeId, Hash)],
    head: &TreeHead,
) -> Result<AppendOutcome, StoreError> {
    // IMMEDIATE takes the write lock up front, so a concurrent writer waits (busy
    // timeout) instead of failing to upgrade a read snapshot.
    let mut tx = p.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
    let size: Option<i64> =
        sqlx::query_scalar("SELECT size FROM trees WHERE tree_id = ? AND active = 1")
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
    // The unique leaf index finds duplicates; only then is it worth asking which.
    let mut inserted = 0;
    for chunk in entries.chunks(MAX_PARAMS / 5) {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO entries (tree_id, idx, leaf_hash, body, integrated_time) ",
        );
        q.push_values(chunk, |mut b, e| {
            b.push_bind(tree_id)
                .push_bind(e.index as i64)
                .push_bind(e.leaf_hash.as_slice())
                .push_bind(e.body.as_slice())
                .push_bind(e.integrated_time);
        });
        q.push(" ON CONFLICT (leaf_hash, tree_id) DO NOTHING");
        inserted += q
            .build()
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected();
    }
    if inserted != entries.len() as u64 {
        tx.rollback().await.map_err(map_err)?;
        return duplicates(p, tree_id, entries).await;
    }
    for chunk in nodes.chunks(MAX_PARAMS / 4) {
        let mut q: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT INTO nodes (tree_id, level, idx, hash) ");
        q.push_values(chunk, |mut b, (n, h)| {
            b.push_bind(tree_id)
                .push_bind(n.level as i64)
                .push_bind(n.index as i64)
                .push_bind(h.as_slice());
        });
        q.build().execute(&mut *tx).await.map_err(map_err)?;
    }
    let keys: Vec<(&str, i64)> = entries
        .iter()
        .flat_map(|e| {
            e.index_keys
                .iter()
                .map(move |k| (k.as_str(), e.index as i64))
        })
        .collect();
    for chunk in keys.chunks(MAX_PARAMS / 3) {
        let mut q: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT OR IGNORE INTO entry_index (key, tree_id, idx) ");
        q.push_values(chunk, |mut b, (k, i)| {
            b.push_bind(*k).push_bind(tree_id).push_bind(*i);
        });
        q.build().execute(&mut *tx).await.map_err(map_err)?;
    }
    sqlx::query("UPDATE trees SET size = ?, root = ?, checkpoint = ? WHERE tree_id = ?")
        .bind(head.size as i64)
        .bind(head.root.as_slice())
        .bind(&head.checkpoint)
        .bind(tree_id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    tx.commit().await.map_err(map_err)?;
    Ok(AppendOutcome::Appended)
}

/// Which of `entries` already exist (after an insert found conflicts).
async fn duplicates(
    p: &SqlitePool,
    tree_id: i64,
    entries: &[NewEntry],
) -> Result<AppendOutcome, StoreError> {
    let mut dups = Vec::new();
    for chunk in entries.chunks(MAX_PARAMS - 1) {
        let mut q: QueryBuilder<Sqlite> =
            QueryBuilder::new("SELECT leaf_hash, idx FROM entries WHERE tree_id = ");
        q.push_bind(tree_id).push(" AND leaf_hash IN (");
        let mut sep = q.separated(", ");
        for e in chunk {
            sep.push_bind(e.leaf_hash.as_slice());
        }
        q.push(")");
        for r in q.build().fetch_all(p).await.map_err(map_err)? {
            dups.push((to_hash(r.get(0))?, to_u64(r.get(1))?));
        }
    }
    if dups.is_empty() {
        return Err(StoreError::Other(
            "entries conflicted but no duplicate was found".into(),
        ));
    }
    Ok(AppendOutcome::Duplicates(dups))
}

fn entry_from_row(r: &SqliteRow) -> Result<StoredEntry, StoreError> {
    Ok(StoredEntry {
        tree_id: r.get("tree_id"),
        index: to_u64(r.get("idx"))?,
        leaf_hash: to_hash(r.get("leaf_hash"))?,
        body: r.get("body"),
        integrated_time: r.get("integrated_time"),
    })
}

pub(crate) async fn entry_by_index(
    p: &SqlitePool,
    tree_id: i64,
    index: u64,
) -> Result<Option<StoredEntry>, StoreError> {
    let row = sqlx::query(
        "SELECT tree_id, idx, leaf_hash, body, integrated_time FROM entries WHERE tree_id = ? AND idx = ?",
    )
    .bind(tree_id)
    .bind(index as i64)
    .fetch_optional(p)
    .await
    .map_err(map_err)?;
    row.as_ref().map(entry_from_row).transpose()
}

/// The entry and the nodes of a proof read: `entry_by_index` and `nodes`, run concurrently.
pub(crate) async fn entry_and_nodes(
    p: &SqlitePool,
    tree_id: i64,
    index: u64,
    ids: &[NodeId],
) -> Result<EntryAndNodes, StoreError> {
    tokio::try_join!(entry_by_index(p, tree_id, index), nodes(p, tree_id, ids))
}

pub(crate) async fn entries_range(
    p: &SqlitePool,
    tree_id: i64,
    start: u64,
    end: u64,
) -> Result<Vec<StoredEntry>, StoreError> {
    let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let rows = sqlx::query(
        "SELECT tree_id, idx, leaf_hash, body, integrated_time FROM entries WHERE tree_id = ? AND idx >= ? AND idx < ? ORDER BY idx",
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
    p: &SqlitePool,
    tree_id: Option<i64>,
    leaf: &Hash,
) -> Result<Vec<StoredEntry>, StoreError> {
    let rows = sqlx::query(
        "SELECT tree_id, idx, leaf_hash, body, integrated_time FROM entries \
         WHERE leaf_hash = ? AND (? IS NULL OR tree_id = ?)",
    )
    .bind(leaf.as_slice())
    .bind(tree_id)
    .bind(tree_id)
    .fetch_all(p)
    .await
    .map_err(map_err)?;
    rows.iter().map(entry_from_row).collect()
}

pub(crate) async fn nodes(
    p: &SqlitePool,
    tree_id: i64,
    ids: &[NodeId],
) -> Result<Vec<(NodeId, Hash)>, StoreError> {
    // Two plain statements: a compound query joining `entries` got a full-scan plan from
    // the bundled SQLite (tens of milliseconds at 100k entries).
    let (leaves, inner): (Vec<&NodeId>, Vec<&NodeId>) = ids.iter().partition(|n| n.level == 0);
    let mut conn = p.acquire().await.map_err(map_err)?;
    let mut out = Vec::with_capacity(ids.len());
    if !inner.is_empty() {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new("WITH want(l, i) AS (VALUES ");
        let mut sep = q.separated(", ");
        for n in &inner {
            sep.push("(")
                .push_bind_unseparated(n.level as i64)
                .push_unseparated(", ")
                .push_bind_unseparated(n.index as i64)
                .push_unseparated(")");
        }
        q.push(") SELECT w.l, w.i, n.hash FROM want w JOIN nodes n ON n.tree_id = ")
            .push_bind(tree_id)
            .push(" AND n.level = w.l AND n.idx = w.i");
        for r in q.build().fetch_all(&mut *conn).await.map_err(map_err)? {
            let level: i64 = r.get(0);
            out.push((
                NodeId::new(level as u8, to_u64(r.get(1))?),
                to_hash(r.get(2))?,
            ));
        }
    }
    if !leaves.is_empty() {
        let mut q: QueryBuilder<Sqlite> =
            QueryBuilder::new("SELECT idx, leaf_hash FROM entries WHERE tree_id = ");
        q.push_bind(tree_id).push(" AND idx IN (");
        let mut sep = q.separated(", ");
        for n in &leaves {
            sep.push_bind(n.index as i64);
        }
        q.push(")");
        for r in q.build().fetch_all(&mut *conn).await.map_err(map_err)? {
            out.push((NodeId::new(0, to_u64(r.get(0))?), to_hash(r.get(1))?));
        }
    }
    Ok(out)
}

pub(crate) async fn search(p: &SqlitePool, keys: &[String]) -> Result<Vec<SearchHit>, StoreError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
        "SELECT i.key, i.tree_id, i.idx, e.leaf_hash FROM entry_index i \
           JOIN entries e ON e.tree_id = i.tree_id AND e.idx = i.idx WHERE i.key IN (",
    );
    let mut sep = q.separated(", ");
    for k in keys {
        sep.push_bind(k.as_str());
    }
    q.push(") LIMIT 10000");
    let rows = q.build().fetch_all(p).await.map_err(map_err)?;
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
    p: &SqlitePool,
    q: &sigstack_log::store::SearchQuery,
) -> Result<Vec<(i64, u64, Hash)>, StoreError> {
    if q.keys.is_empty() || q.trees.is_empty() {
        return Ok(Vec::new());
    }
    let (bt, bi) = q.before.map_or((i64::MAX, i64::MAX), |(t, i)| {
        (t, i64::try_from(i).unwrap_or(i64::MAX))
    });
    let need = if q.all { q.keys.len() as i64 } else { 1 };
    let mut b: QueryBuilder<Sqlite> = QueryBuilder::new(
        "SELECT m.tree_id, m.idx, e.leaf_hash FROM ( \
           SELECT i.tree_id, i.idx FROM entry_index i WHERE i.key IN (",
    );
    let mut sep = b.separated(", ");
    for k in &q.keys {
        sep.push_bind(k.as_str());
    }
    b.push(") AND i.tree_id IN (");
    let mut sep = b.separated(", ");
    for t in &q.trees {
        sep.push_bind(*t);
    }
    b.push(") AND (i.tree_id < ");
    b.push_bind(bt);
    b.push(" OR (i.tree_id = ");
    b.push_bind(bt);
    b.push(" AND i.idx < ");
    b.push_bind(bi);
    b.push(")) GROUP BY i.tree_id, i.idx HAVING COUNT(DISTINCT i.key) >= ");
    b.push_bind(need);
    b.push(" ORDER BY i.tree_id DESC, i.idx DESC LIMIT ");
    b.push_bind(i64::try_from(q.limit).unwrap_or(i64::MAX));
    b.push(
        ") m JOIN entries e ON e.tree_id = m.tree_id AND e.idx = m.idx \
         ORDER BY m.tree_id DESC, m.idx DESC",
    );
    let rows = b.build().fetch_all(p).await.map_err(map_err)?;
    rows.iter()
        .map(|r| Ok((r.get(0), to_u64(r.get(1))?, to_hash(r.get(2))?)))
        .collect()
}

pub(crate) async fn tuf_files(
    p: &SqlitePool,
    after_seq: i64,
) -> Result<Vec<crate::TufFile>, StoreError> {
    let rows = sqlx::query(
        "SELECT seq, path, role, version, body FROM tuf_files WHERE seq > ? ORDER BY seq",
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

pub(crate) async fn tuf_publish(
    p: &SqlitePool,
    files: &[crate::TufFile],
) -> Result<bool, StoreError> {
    let mut tx = p.begin().await.map_err(map_err)?;
    for f in files {
        let done = sqlx::query(
            "INSERT INTO tuf_files (path, role, version, body) VALUES (?, ?, ?, ?) ON CONFLICT (path) DO NOTHING",
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
