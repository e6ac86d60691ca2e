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

/// Applies every pending migration. Safe to run concurrently from several processes
/// (PostgreSQL takes an advisory lock while migrating).
pub async fn migrate(store: &Store) -> Result<(), StoreError> {
    let res = match store {
        Store::Postgres(p) => migrator(POSTGRES).run(p).await,
        Store::Sqlite(p) => migrator(SQLITE).run(p).await,
    };
    res.map_err(|e| match e {
        sqlx::migrate::MigrateError::Execute(e) => map_err(e),
        other => StoreError::Other(format!("migration failed: {other}")),
    })
}
