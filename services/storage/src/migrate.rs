//! Migrations, embedded in the binary from `migrations/{postgres,sqlite}/` (append-only:
//! a landed file never changes) and applied with sqlx's migrator and its bookkeeping
//! table, so `sqlx migrate info` works on our databases too.

use crate::{Store, map_err};
use sigstack_log::store::StoreError;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use std::borrow::Cow;

// Versions are written without leading zeros here; the files carry them (0001_log.sql).
const POSTGRES: &[(i64, &str, &str)] = &[
    (
        1,
        "log",
        include_str!("../../../migrations/postgres/0001_log.sql"),
    ),
    (
        2,
        "tuf",
        include_str!("../../../migrations/postgres/0002_tuf.sql"),
    ),
    (
        3,
        "log_leaders",
        include_str!("../../../migrations/postgres/0003_log_leaders.sql"),
    ),
    (
        4,
        "entry_index_partitions",
        include_str!("../../../migrations/postgres/0004_entry_index_partitions.sql"),
    ),
    (
        5,
        "entries_leaf_key",
        include_str!("../../../migrations/postgres/0005_entries_leaf_key.sql"),
    ),
    (
        6,
        "proof_read",
        include_str!("../../../migrations/postgres/0006_proof_read.sql"),
    ),
];
const SQLITE: &[(i64, &str, &str)] = &[
    (
        1,
        "log",
        include_str!("../../../migrations/sqlite/0001_log.sql"),
    ),
    (
        2,
        "tuf",
        include_str!("../../../migrations/sqlite/0002_tuf.sql"),
    ),
    (
        3,
        "log_leaders",
        include_str!("../../../migrations/sqlite/0003_log_leaders.sql"),
    ),
];

fn migrator(set: &'static [(i64, &'static str, &'static str)]) -> Migrator {
    let migrations: Vec<Migration> = set
        .iter()
        .map(|(v, name, sql)| {
            Migration::new(
                *v,
                Cow::Borrowed(*name),
                MigrationType::Simple,
                Cow::Borrowed(*sql),
                false,
            )
        })
        .collect();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

/// Applies the first `n` migrations only: for tests of what a later one does to a database
/// an earlier release made.
#[doc(hidden)]
pub async fn migrate_first(store: &Store, n: usize) -> Result<(), StoreError> {
    let res = match store {
        Store::Postgres(p) => migrator(&POSTGRES[..n.min(POSTGRES.len())]).run(p).await,
        Store::Sqlite(p) => migrator(&SQLITE[..n.min(SQLITE.len())]).run(p).await,
    };
    res.map_err(map_migrate_err)
}

/// Applies every pending migration. Safe to run concurrently from several processes
/// (PostgreSQL takes an advisory lock while migrating).
pub async fn migrate(store: &Store) -> Result<(), StoreError> {
    let res = match store {
        Store::Postgres(p) => migrator(POSTGRES).run(p).await,
        Store::Sqlite(p) => migrator(SQLITE).run(p).await,
    };
    res.map_err(map_migrate_err)
}

fn map_migrate_err(e: sqlx::migrate::MigrateError) -> StoreError {
    match e {
        sqlx::migrate::MigrateError::Execute(e) => map_err(e),
        other => StoreError::Other(format!("migration failed: {other}")),
    }
}
