//! PostgreSQL keeps search keys in range partitions of 2^18 entries (migration 4), so
//! that inserts stay in the newest partition's index however long the log grows.

use super::{append_batch, entries, new_tree, support};
use sigstack_log::store::LogStore;
use sigstack_merkle::Frontier;
use sigstack_storage::Store;

async fn partitions(pool: &sqlx::PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::TEXT FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'entry_index'::regclass ORDER BY c.relname",
    )
    .fetch_all(pool)
    .await
    .expect("partitions")
}

#[tokio::test]
async fn search_keys_move_into_range_partitions() {
    let url = support::fresh_pg_url().await;
    // a database as the release before made it, with entries the way it wrote them
    let s = Store::connect(&url).await.expect("connect");
    sigstack_storage::migrate_first(&s, 3)
        .await
        .expect("migrations 1-3");
    let Store::Postgres(pool) = &s else {
        unreachable!()
    };
    let old_tree = 4242i64;
    for e in entries(0, 30, "old") {
        sqlx::query(
            "INSERT INTO entries (tree_id, idx, leaf_hash, body, integrated_time) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(old_tree)
        .bind(e.index as i64)
        .bind(e.leaf_hash.as_slice())
        .bind(&e.body)
        .bind(e.integrated_time)
        .execute(pool)
        .await
        .expect("old entry");
        for k in &e.index_keys {
            sqlx::query("INSERT INTO entry_index (key, tree_id, idx) VALUES ($1, $2, $3)")
                .bind(k)
                .bind(old_tree)
                .bind(e.index as i64)
                .execute(pool)
                .await
                .expect("old key");
        }
    }
    let unpartitioned: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_class WHERE relname = 'entry_index' AND relkind = 'r'",
    )
    .fetch_one(pool)
    .await
    .expect("relkind");
    assert_eq!(
        unpartitioned, 1,
        "before migration 4 the index is one table"
    );

    // migrated in place: the keys are all there, in the first partition
    sigstack_storage::migrate(&s).await.expect("migration 4");
    assert_eq!(partitions(pool).await, ["entry_index_p0"]);
    let hits = s.search(&["sha256:old17".into()]).await.expect("search");
    assert_eq!(hits.len(), 1);
    assert_eq!((hits[0].tree_id, hits[0].index), (old_tree, 17));
    assert_eq!(s.search(&["k2".into()]).await.expect("search").len(), 10);

    // appends after the migration go on into the same partition
    let tree = new_tree(&s).await;
    let mut f = Frontier::new();
    append_batch(&s, tree, &mut f, &entries(30, 10, "new")).await;
    assert_eq!(s.search(&["k2".into()]).await.expect("search").len(), 13);

    // keys of entries past a partition's end make the partitions they reach, each from the
    // batch's first to its last (in the same transaction as the entries), and repeated
    // keys are ignored as before
    for _ in 0..2 {
        sqlx::query("SELECT sigstack_index_keys($1, $2::TEXT[], $3::BIGINT[])")
            .bind(tree)
            .bind(vec!["far", "far", "k2"])
            .bind(vec![(1i64 << 18) + 5, 3i64 << 18, 2])
            .execute(pool)
            .await
            .expect("keys past the first partition");
    }
    assert_eq!(
        partitions(pool).await,
        [
            "entry_index_p0",
            "entry_index_p1",
            "entry_index_p2",
            "entry_index_p3"
        ]
    );
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT tableoid::regclass::TEXT, idx FROM entry_index WHERE key = 'far' ORDER BY idx",
    )
    .fetch_all(pool)
    .await
    .expect("rows");
    assert_eq!(
        rows,
        [
            ("entry_index_p1".to_string(), (1i64 << 18) + 5),
            ("entry_index_p3".to_string(), 3i64 << 18)
        ]
    );
    assert_eq!(s.search(&["k2".into()]).await.expect("search").len(), 13);
    s.close().await;
}
