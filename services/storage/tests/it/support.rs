//! Fresh databases for tests: a temporary SQLite file, or a new PostgreSQL database on
//! the server named by `SIGSTACK_TEST_PG`.

use sigstack_storage::Store;

#[derive(Copy, Clone, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn pg_admin_url() -> String {
    std::env::var("SIGSTACK_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Creates an empty database and returns its URL.
pub async fn fresh_pg_url() -> String {
    let admin_url = pg_admin_url();
    let admin = sqlx::PgPool::connect(&admin_url)
        .await
        .expect("PostgreSQL for tests");
    let name = format!("sigstack_t_{:016x}", rand::random::<u64>());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .expect("create database");
    admin.close().await;
    match admin_url.rfind('/') {
        Some(i) => format!("{}/{name}", &admin_url[..i]),
        None => panic!("SIGSTACK_TEST_PG must end in /<database>"),
    }
}

impl Backend {
    pub async fn store(self) -> Store {
        match self {
            Backend::Sqlite => {
                let dir = std::env::temp_dir()
                    .join(format!("sigstack-st-{:016x}", rand::random::<u64>()));
                std::fs::create_dir_all(&dir).expect("temp dir");
                Store::open(&format!("sqlite://{}", dir.join("t.db").display()))
                    .await
                    .expect("sqlite store")
            }
            Backend::Postgres => Store::open(&fresh_pg_url().await)
                .await
                .expect("postgres store"),
        }
    }
}
