//! The identity monitor's own database (embedded SQLite, WAL, `synchronous=FULL`): for
//! each followed log its position, the right edge of the tree it has rebuilt from every
//! entry, and the checkpoints it verified; an index of every entry by the keys the
//! explorer searches; matches, alerts and the notification outbox.
//!
//! A batch of entries, the matches they produce and those matches' deliveries commit in
//! one transaction, so a restart neither skips nor repeats a match; a delivery is marked
//! done once the receiver acknowledged it.

use sigstack_merkle::Hash;
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::time::Duration;

mod read;

pub type Result<T> = std::result::Result<T, sqlx::Error>;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS logs (
        name TEXT PRIMARY KEY, size INTEGER NOT NULL, frontier BLOB NOT NULL,
        verified_size INTEGER NOT NULL DEFAULT 0, verified_root BLOB, verified_note TEXT,
        verified_at INTEGER, verified_frontier BLOB, tree TEXT, tree_offset INTEGER)",
    "CREATE TABLE IF NOT EXISTS checkpoints (
        log TEXT NOT NULL, size INTEGER NOT NULL, root BLOB NOT NULL, note TEXT NOT NULL,
        seen_at INTEGER NOT NULL, PRIMARY KEY (log, size))",
    "CREATE TABLE IF NOT EXISTS entries (
        log TEXT NOT NULL, idx INTEGER NOT NULL, uuid TEXT NOT NULL, kind TEXT NOT NULL,
        digest TEXT, time INTEGER, PRIMARY KEY (log, idx))",
    "CREATE TABLE IF NOT EXISTS entry_keys (key TEXT NOT NULL, log TEXT NOT NULL, idx INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS entry_keys_by_key ON entry_keys (key)",
    "CREATE INDEX IF NOT EXISTS entry_keys_by_entry ON entry_keys (log, idx)",
    "CREATE TABLE IF NOT EXISTS matches (
        id INTEGER PRIMARY KEY, log TEXT NOT NULL, idx INTEGER NOT NULL, uuid TEXT NOT NULL,
        matched_type TEXT NOT NULL, matched TEXT NOT NULL, cert_subject TEXT, issuer TEXT,
        digest TEXT, time INTEGER, found_at INTEGER NOT NULL,
        UNIQUE (log, idx, matched_type, matched))",
    "CREATE TABLE IF NOT EXISTS alerts (
        id INTEGER PRIMARY KEY, log TEXT NOT NULL, kind TEXT NOT NULL,
        fingerprint TEXT NOT NULL UNIQUE, message TEXT NOT NULL, evidence TEXT NOT NULL,
        at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS outbox (
        id INTEGER PRIMARY KEY, uid TEXT NOT NULL, channel TEXT NOT NULL, recipient TEXT NOT NULL,
        event TEXT NOT NULL, payload TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        next_at INTEGER NOT NULL, delivered_at INTEGER, last_error TEXT)",
    "CREATE INDEX IF NOT EXISTS outbox_due ON outbox (delivered_at, next_at)",
    "CREATE TABLE IF NOT EXISTS subscriptions (email TEXT PRIMARY KEY, created INTEGER NOT NULL)",
];

/// Where a log's audit stands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Position {
    /// Entries read and indexed (the tree rebuilt from them has this size).
    pub size: u64,
    /// The hashes of that tree's right edge (`Frontier::node_ids(size)`), in order.
    pub frontier: Vec<Hash>,
    /// The newest checkpoint whose root the rebuilt tree matched.
    pub verified: Option<Verified>,
    /// The tree this position is in (Rekor v1: its tree ID) and where that tree starts
    /// in the log's index space, as first seen.
    pub tree: Option<(String, u64)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub size: u64,
    pub root: Hash,
    pub note: String,
    pub at: i64,
    /// The right edge of the tree at `size`: where a rewind goes back to.
    pub frontier: Vec<Hash>,
}

/// One entry as indexed: `keys` are what finds it (`id:<identity>`, `fp:<hex>`,
/// `digest:<alg:hex>`, `uuid:<hex>`, `serial:<hex>`), lower-case.
#[derive(Clone, Debug, Default)]
pub struct Indexed {
    pub idx: u64,
    pub uuid: String,
    pub kind: String,
    pub digest: Option<String>,
    pub time: Option<i64>,
    pub keys: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct EntryRow {
    pub log: String,
    pub idx: u64,
    pub uuid: String,
    pub kind: String,
    pub digest: Option<String>,
    pub time: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchRow {
    pub log: String,
    pub index: u64,
    pub uuid: String,
    pub matched_type: String,
    pub matched: String,
    pub cert_subject: Option<String>,
    pub issuer: Option<String>,
    pub digest: Option<String>,
    pub time: Option<i64>,
}

/// A notification to send: `channel` is `webhook` or `email`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// A random ID, the same for every attempt (receivers drop repeats by it).
    pub uid: String,
    pub channel: String,
    pub recipient: String,
    pub event: String,
    pub payload: String,
}

#[derive(Clone, Debug)]
pub struct Due {
    pub id: i64,
    pub delivery: Delivery,
    pub attempts: i64,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct AlertRow {
    pub id: i64,
    pub log: String,
    pub kind: String,
    pub message: String,
    pub evidence: String,
    pub at: i64,
}

#[derive(Clone, Debug)]
pub struct CheckpointRow {
    pub size: u64,
    pub root: Hash,
    pub note: String,
    pub seen_at: i64,
}

#[derive(Clone, Debug)]
pub struct MonitorStore {
    pool: SqlitePool,
}

fn hash(v: Option<Vec<u8>>) -> Option<Hash> {
    v.and_then(|b| b.try_into().ok())
}

fn hashes(b: &[u8]) -> Vec<Hash> {
    b.chunks_exact(32)
        .filter_map(|c| c.try_into().ok())
        .collect()
}

impl MonitorStore {
    pub async fn open(path: &std::path::Path) -> Result<Self> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await?;
        for s in SCHEMA {
            sqlx::query(s).execute(&pool).await?;
        }
        Ok(Self { pool })
    }

    pub async fn position(&self, log: &str) -> Result<Position> {
        let row = sqlx::query(
            "SELECT size, frontier, verified_size, verified_root, verified_note, verified_at, verified_frontier, tree, tree_offset FROM logs WHERE name = ?",
        )
        .bind(log)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else {
            return Ok(Position::default());
        };
        let frontier: Vec<u8> = r.get("frontier");
        let verified = match (
            hash(r.get("verified_root")),
            r.get::<Option<String>, _>("verified_note"),
        ) {
            (Some(root), Some(note)) => Some(Verified {
                size: r.get::<i64, _>("verified_size") as u64,
                root,
                note,
                at: r.get::<Option<i64>, _>("verified_at").unwrap_or(0),
                frontier: hashes(
                    &r.get::<Option<Vec<u8>>, _>("verified_frontier")
                        .unwrap_or_default(),
                ),
            }),
            _ => None,
        };
        let tree = match (
            r.get::<Option<String>, _>("tree"),
            r.get::<Option<i64>, _>("tree_offset"),
        ) {
            (Some(t), Some(o)) => Some((t, o as u64)),
            _ => None,
        };
        Ok(Position {
            size: r.get::<i64, _>("size") as u64,
            frontier: hashes(&frontier),
            verified,
            tree,
        })
    }

    /// Commits a step of the audit: the entries read, the tree's new right edge, and the
    /// matches found with their deliveries. A match already recorded (the same entry,
    /// reason and value) is not recorded again, nor delivered. Returns the new matches.
    pub async fn commit(
        &self,
        log: &str,
        size: u64,
        frontier: &[Hash],
        entries: &[Indexed],
        matches: &[(MatchRow, Vec<Delivery>)],
        now: i64,
    ) -> Result<Vec<MatchRow>> {
        let mut tx = self.pool.begin().await?;
        let edge: Vec<u8> = frontier.iter().flatten().copied().collect();
        sqlx::query(
            "INSERT INTO logs (name, size, frontier) VALUES (?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET size = excluded.size, frontier = excluded.frontier",
        )
        .bind(log)
        .bind(size as i64)
        .bind(edge)
        .execute(&mut *tx)
        .await?;
        // many rows per statement: one round trip to SQLite per chunk, not per row
        for chunk in entries.chunks(100) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT OR REPLACE INTO entries (log, idx, uuid, kind, digest, time) ",
            );
            q.push_values(chunk, |mut b, e| {
                b.push_bind(log)
                    .push_bind(e.idx as i64)
                    .push_bind(&e.uuid)
                    .push_bind(&e.kind)
                    .push_bind(&e.digest)
                    .push_bind(e.time);
            });
            q.build().execute(&mut *tx).await?;
        }
        let keys: Vec<(&str, u64)> = entries
            .iter()
            .flat_map(|e| e.keys.iter().map(move |k| (k.as_str(), e.idx)))
            .collect();
        for chunk in keys.chunks(300) {
            let mut q = sqlx::QueryBuilder::new("INSERT INTO entry_keys (key, log, idx) ");
            q.push_values(chunk, |mut b, (k, i)| {
                b.push_bind(*k).push_bind(log).push_bind(*i as i64);
            });
            q.build().execute(&mut *tx).await?;
        }
        let mut fresh = Vec::new();
        for (m, deliveries) in matches {
            let done = sqlx::query(
                "INSERT OR IGNORE INTO matches (log, idx, uuid, matched_type, matched, cert_subject, issuer, digest, time, found_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&m.log)
            .bind(m.index as i64)
            .bind(&m.uuid)
            .bind(&m.matched_type)
            .bind(&m.matched)
            .bind(&m.cert_subject)
            .bind(&m.issuer)
            .bind(&m.digest)
            .bind(m.time)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                for d in deliveries {
                    enqueue(&mut tx, d, now).await?;
                }
                fresh.push(m.clone());
            }
        }
        tx.commit().await?;
        Ok(fresh)
    }

    /// Records a checkpoint the rebuilt tree matched.
    pub async fn verified(&self, log: &str, v: &Verified) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE logs SET verified_size = ?, verified_root = ?, verified_note = ?, verified_at = ?, verified_frontier = ? WHERE name = ?",
        )
        .bind(v.size as i64)
        .bind(v.root.to_vec())
        .bind(&v.note)
        .bind(v.at)
        .bind(v.frontier.iter().flatten().copied().collect::<Vec<u8>>())
        .bind(log)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT OR IGNORE INTO checkpoints (log, size, root, note, seen_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(log)
        .bind(v.size as i64)
        .bind(v.root.to_vec())
        .bind(&v.note)
        .bind(v.at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// Goes back to the last verified tree (size 0 if none): the entries read past it
    /// are forgotten and will be read again. Matches found in them stay recorded, so
    /// reading them again reports nothing twice.
    pub async fn rewind(&self, log: &str, to: Option<&Verified>) -> Result<()> {
        let (size, edge): (u64, Vec<u8>) = match to {
            Some(v) => (v.size, v.frontier.iter().flatten().copied().collect()),
            None => (0, Vec::new()),
        };
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE logs SET size = ?, frontier = ? WHERE name = ?")
            .bind(size as i64)
            .bind(edge)
            .bind(log)
            .execute(&mut *tx)
            .await?;
        for table in ["entries", "entry_keys"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE log = ? AND idx >= ?"))
                .bind(log)
                .bind(size as i64)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    /// Starts following a (new) tree of the log at `offset` in its index space: the
    /// position goes back to that tree's first entry.
    pub async fn set_tree(&self, log: &str, tree: &str, offset: u64) -> Result<()> {
        sqlx::query(
            "INSERT INTO logs (name, size, frontier, tree, tree_offset) VALUES (?, 0, x'', ?, ?)
             ON CONFLICT (name) DO UPDATE SET size = 0, frontier = x'', verified_size = 0,
             verified_root = NULL, verified_note = NULL, verified_frontier = NULL,
             tree = excluded.tree, tree_offset = excluded.tree_offset",
        )
        .bind(log)
        .bind(tree)
        .bind(offset as i64)
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    /// Records an alert once per `fingerprint` (the same evidence seen again is not a new
    /// alert), with its deliveries. Returns whether it was new.
    #[allow(clippy::too_many_arguments)]
    pub async fn alert(
        &self,
        log: &str,
        kind: &str,
        fingerprint: &str,
        message: &str,
        evidence: &str,
        deliveries: &[Delivery],
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "INSERT OR IGNORE INTO alerts (log, kind, fingerprint, message, evidence, at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(log)
        .bind(kind)
        .bind(fingerprint)
        .bind(message)
        .bind(evidence)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let new = done.rows_affected() == 1;
        if new {
            for d in deliveries {
                enqueue(&mut tx, d, now).await?;
            }
        }
        tx.commit().await?;
        Ok(new)
    }

    pub async fn due(&self, now: i64, limit: i64) -> Result<Vec<Due>> {
        let rows = sqlx::query(
            "SELECT id, uid, channel, recipient, event, payload, attempts FROM outbox
             WHERE delivered_at IS NULL AND next_at <= ? ORDER BY id LIMIT ?",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| Due {
                id: r.get("id"),
                attempts: r.get("attempts"),
                delivery: Delivery {
                    uid: r.get("uid"),
                    channel: r.get("channel"),
                    recipient: r.get("recipient"),
                    event: r.get("event"),
                    payload: r.get("payload"),
                },
            })
            .collect())
    }

    pub async fn delivered(&self, id: i64, now: i64) -> Result<()> {
        sqlx::query("UPDATE outbox SET delivered_at = ?, attempts = attempts + 1, last_error = NULL WHERE id = ?")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    pub async fn failed(&self, id: i64, error: &str, next_at: i64) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_at = ? WHERE id = ?",
        )
        .bind(error)
        .bind(next_at)
        .bind(id)
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    /// Undelivered notifications, and the oldest one's creation order (for metrics).
    pub async fn pending(&self) -> Result<i64> {
        sqlx::query("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL")
            .fetch_one(&self.pool)
            .await
            .map(|r| r.get(0))
    }
}

async fn enqueue(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    d: &Delivery,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO outbox (uid, channel, recipient, event, payload, next_at) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&d.uid)
    .bind(&d.channel)
    .bind(&d.recipient)
    .bind(&d.event)
    .bind(&d.payload)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map(|_| ())
}
