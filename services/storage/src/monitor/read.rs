//! The monitor's store, read side: what the explorer shows (search, entries, verified
//! checkpoints, alerts, matches) and the subscriptions people make there.

use super::{AlertRow, CheckpointRow, EntryRow, MatchRow, MonitorStore, Result, hash};
use sqlx::Row;

impl MonitorStore {
    /// Entries a search key finds, newest first.
    pub async fn search(&self, key: &str, limit: i64) -> Result<Vec<EntryRow>> {
        let rows = sqlx::query(
            "SELECT DISTINCT e.log, e.idx, e.uuid, e.kind, e.digest, e.time FROM entry_keys k
             JOIN entries e ON e.log = k.log AND e.idx = k.idx
             WHERE k.key = ? ORDER BY e.time DESC, e.idx DESC LIMIT ?",
        )
        .bind(key)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(entry_row).collect())
    }

    pub async fn entry(&self, log: &str, idx: u64) -> Result<Option<EntryRow>> {
        let row = sqlx::query(
            "SELECT log, idx, uuid, kind, digest, time FROM entries WHERE log = ? AND idx = ?",
        )
        .bind(log)
        .bind(idx as i64)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(entry_row))
    }

    /// The newest entries of a log.
    pub async fn latest(&self, log: &str, limit: i64) -> Result<Vec<EntryRow>> {
        let rows = sqlx::query(
            "SELECT log, idx, uuid, kind, digest, time FROM entries WHERE log = ? ORDER BY idx DESC LIMIT ?",
        )
        .bind(log)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(entry_row).collect())
    }

    pub async fn checkpoints(&self, log: &str, limit: i64) -> Result<Vec<CheckpointRow>> {
        let rows = sqlx::query(
            "SELECT size, root, note, seen_at FROM checkpoints WHERE log = ? ORDER BY size DESC LIMIT ?",
        )
        .bind(log)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(CheckpointRow {
                    size: r.get::<i64, _>("size") as u64,
                    root: hash(r.get("root"))?,
                    note: r.get("note"),
                    seen_at: r.get("seen_at"),
                })
            })
            .collect())
    }

    pub async fn alerts(&self, log: Option<&str>, limit: i64) -> Result<Vec<AlertRow>> {
        let rows = sqlx::query(
            "SELECT id, log, kind, message, evidence, at FROM alerts
             WHERE (?1 IS NULL OR log = ?1) ORDER BY id DESC LIMIT ?2",
        )
        .bind(log)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| AlertRow {
                id: r.get("id"),
                log: r.get("log"),
                kind: r.get("kind"),
                message: r.get("message"),
                evidence: r.get("evidence"),
                at: r.get("at"),
            })
            .collect())
    }

    pub async fn matches(&self, limit: i64) -> Result<Vec<MatchRow>> {
        let rows = sqlx::query(
            "SELECT log, idx, uuid, matched_type, matched, cert_subject, issuer, digest, time
             FROM matches ORDER BY id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| MatchRow {
                log: r.get("log"),
                index: r.get::<i64, _>("idx") as u64,
                uuid: r.get("uuid"),
                matched_type: r.get("matched_type"),
                matched: r.get("matched"),
                cert_subject: r.get("cert_subject"),
                issuer: r.get("issuer"),
                digest: r.get("digest"),
                time: r.get("time"),
            })
            .collect())
    }

    /// The number of matches and alerts recorded (for metrics).
    pub async fn totals(&self) -> Result<(i64, i64)> {
        let m: i64 = sqlx::query("SELECT COUNT(*) FROM matches")
            .fetch_one(&self.pool)
            .await?
            .get(0);
        let a: i64 = sqlx::query("SELECT COUNT(*) FROM alerts")
            .fetch_one(&self.pool)
            .await?
            .get(0);
        Ok((m, a))
    }

    pub async fn subscribe(&self, email: &str, now: i64) -> Result<()> {
        sqlx::query("INSERT OR IGNORE INTO subscriptions (email, created) VALUES (?, ?)")
            .bind(email)
            .bind(now)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    pub async fn unsubscribe(&self, email: &str) -> Result<()> {
        sqlx::query("DELETE FROM subscriptions WHERE email = ?")
            .bind(email)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    pub async fn subscriptions(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT email FROM subscriptions ORDER BY email")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| r.get("email")).collect())
    }
}

pub(super) fn entry_row(r: &sqlx::sqlite::SqliteRow) -> EntryRow {
    EntryRow {
        log: r.get("log"),
        idx: r.get::<i64, _>("idx") as u64,
        uuid: r.get("uuid"),
        kind: r.get("kind"),
        digest: r.get("digest"),
        time: r.get("time"),
    }
}
