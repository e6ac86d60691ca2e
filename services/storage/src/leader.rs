//! Electing one sequencer among the replicas of a log on one PostgreSQL database: the
//! replica whose session holds an advisory lock (named after the log) sequences and
//! advertises its URL in `log_leaders`; the others forward writes to it. The lock goes
//! with the session, so a replica that dies (or loses its connection) gives it up at
//! once and another takes it on its next step. Safety does not rest on the election:
//! the tree row is locked for every commit, so two replicas that both believe they lead
//! (for the moment a partition lasts) still append one consistent tree.

use crate::{Store, map_err};
use sigstack_log::store::StoreError;
use sqlx::PgPool;
use sqlx::postgres::PgConnection;

/// What this replica should do with a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// It holds the lock: sequence.
    Leader,
    /// Another replica leads, at this URL: forward.
    Follower(String),
    /// No one is known to lead (the database is unreachable, or the leader has not
    /// advertised yet): sequence locally, which the tree row lock keeps safe.
    Unknown,
}

pub struct Election {
    pool: PgPool,
    conn: Option<PgConnection>,
    key: String,
    log: String,
    me: String,
    leading: bool,
}

impl Store {
    /// An election for `log` in which this replica is reachable at `me`; `None` on
    /// SQLite (one process per database file).
    pub fn election(&self, log: &str, me: &str) -> Option<Election> {
        match self {
            Store::Postgres(p) => Some(Election {
                pool: p.clone(),
                conn: None,
                key: format!("sigstack-sequencer/{log}"),
                log: log.to_string(),
                me: me.to_string(),
                leading: false,
            }),
            Store::Sqlite(_) => None,
        }
    }
}

impl Election {
    /// Takes the lock if it is free (keeps it if held) and says what this replica is.
    pub async fn step(&mut self) -> Role {
        match self.try_step().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "sequencer election: the database is unreachable");
                // a broken session has lost its lock with it
                self.conn = None;
                self.leading = false;
                Role::Unknown
            }
        }
    }

    async fn try_step(&mut self) -> Result<Role, StoreError> {
        if self.conn.is_none() {
            // a session of its own, outside the pool: the lock lives as long as it does
            self.conn = Some(self.pool.acquire().await.map_err(map_err)?.detach());
        }
        let Some(c) = self.conn.as_mut() else {
            return Ok(Role::Unknown);
        };
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
            .bind(&self.key)
            .fetch_one(&mut *c)
            .await
            .map_err(map_err)?;
        if got {
            if self.leading {
                // the lock is re-entrant: keep one hold, not one per step
                sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
                    .bind(&self.key)
                    .execute(&mut *c)
                    .await
                    .map_err(map_err)?;
            } else {
                sqlx::query(
                    "INSERT INTO log_leaders (log_name, url, since) VALUES ($1, $2, now())
                     ON CONFLICT (log_name) DO UPDATE SET url = excluded.url, since = now()",
                )
                .bind(&self.log)
                .bind(&self.me)
                .execute(&mut *c)
                .await
                .map_err(map_err)?;
                self.leading = true;
                tracing::info!(log = %self.log, url = %self.me, "this replica is now the log's sequencer");
            }
            return Ok(Role::Leader);
        }
        if self.leading {
            tracing::warn!(log = %self.log, "this replica is no longer the log's sequencer");
        }
        self.leading = false;
        let url: Option<String> =
            sqlx::query_scalar("SELECT url FROM log_leaders WHERE log_name = $1")
                .bind(&self.log)
                .fetch_optional(&mut *c)
                .await
                .map_err(map_err)?;
        Ok(match url {
            Some(u) if u != self.me => Role::Follower(u),
            _ => Role::Unknown,
        })
    }
}
