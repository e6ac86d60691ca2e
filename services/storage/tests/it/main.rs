//! One storage suite, run against embedded SQLite and a real PostgreSQL
//! (`SIGSTACK_TEST_PG`, default `postgres://postgres@127.0.0.1:5432/postgres`; each test
//! gets a fresh database).

mod partitions;
mod proof_read;
mod support;

use sigstack_log::batch;
use sigstack_log::store::{AppendOutcome, LogStore, NewEntry, TreeHead};
use sigstack_merkle::{EMPTY_ROOT, Frontier, Hash, inclusion_plan, leaf_hash, verify_inclusion};
use sigstack_storage::Store;
use support::Backend;

fn head(f: &Frontier) -> TreeHead {
    TreeHead {
        size: f.size(),
        root: f.root(),
        checkpoint: format!("cp {}", f.size()),
    }
}

fn entries(from: u64, n: u64, tag: &str) -> Vec<NewEntry> {
    (from..from + n)
        .map(|i| {
            let body = format!("{tag}-{i}").into_bytes();
            NewEntry {
                index: i,
                leaf_hash: leaf_hash(&body),
                body,
                integrated_time: 1_700_000_000 + i as i64,
                index_keys: vec![format!("k{}", i % 3), format!("sha256:{tag}{i}")],
            }
        })
        .collect()
}

async fn append_batch(s: &Store, tree: i64, f: &mut Frontier, batch: &[NewEntry]) -> AppendOutcome {
    let leaves: Vec<Hash> = batch.iter().map(|e| e.leaf_hash).collect();
    let plan = batch::plan(f, &leaves);
    let out = s
        .append(
            tree,
            f.size(),
            batch,
            &plan.internal_nodes(),
            &head(&plan.frontier),
        )
        .await
        .expect("append");
    if out == AppendOutcome::Appended {
        *f = plan.frontier;
    }
    out
}

async fn new_tree(s: &Store) -> i64 {
    let tree = rand::random::<i64>().abs().max(1);
    let n = s.shards("rekor").await.expect("shards").len();
    let empty = TreeHead {
        size: 0,
        root: EMPTY_ROOT,
        checkpoint: "cp 0".into(),
    };
    assert!(
        s.create_shard("rekor", n, tree, &empty)
            .await
            .expect("create shard")
    );
    // a racing creator that saw the old count does nothing
    assert!(
        !s.create_shard("rekor", n, tree + 1, &empty)
            .await
            .expect("no-op")
    );
    tree
}

async fn appends_reads_and_proves(b: Backend) {
    let s = b.store().await;
    let tree = new_tree(&s).await;
    let mut f = Frontier::new();
    let mut all = Vec::new();
    for (from, n) in [(0u64, 1u64), (1, 2), (3, 13), (16, 64), (80, 1), (81, 120)] {
        let batch = entries(from, n, "e");
        assert_eq!(
            append_batch(&s, tree, &mut f, &batch).await,
            AppendOutcome::Appended
        );
        all.extend(batch);
    }
    let h = s.head(tree).await.expect("head").expect("exists");
    assert_eq!(h, head(&f));
    // every entry reads back and proves against the head from one node read
    for e in &all {
        let got = s
            .entry_by_index(tree, e.index)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(got.body, e.body);
        assert_eq!(got.integrated_time, e.integrated_time);
        let by_leaf = s.entries_by_leaf(None, &e.leaf_hash).await.expect("read");
        assert_eq!(by_leaf.len(), 1);
        assert_eq!(by_leaf[0].index, e.index);
        let plan = inclusion_plan(e.index, h.size).expect("plan");
        let ids = plan.nodes();
        let nodes: std::collections::HashMap<_, _> = s
            .nodes(tree, &ids)
            .await
            .expect("nodes")
            .into_iter()
            .collect();
        assert_eq!(nodes.len(), ids.len(), "every node of the plan is stored");
        let proof = plan
            .assemble(|id| nodes.get(&id).copied())
            .expect("assemble");
        verify_inclusion(&e.leaf_hash, e.index, h.size, &proof, &h.root).expect("verifies");
        // the same in one proof read, whole or with only some nodes asked for
        let (entry, got) = s
            .entry_and_nodes(tree, e.index, &ids)
            .await
            .expect("proof read");
        let entry = entry.expect("the entry comes with its nodes");
        assert_eq!((entry.tree_id, entry.index), (tree, e.index));
        assert_eq!((entry.leaf_hash, &entry.body), (e.leaf_hash, &e.body));
        assert_eq!(entry.integrated_time, e.integrated_time);
        assert_eq!(
            got.into_iter().collect::<std::collections::HashMap<_, _>>(),
            nodes
        );
        let some = &ids[ids.len() / 2..];
        let (_, got) = s
            .entry_and_nodes(tree, e.index, some)
            .await
            .expect("proof read");
        assert_eq!(got.len(), some.len());
        assert!(
            got.iter()
                .all(|(id, h)| some.contains(id) && nodes[id] == *h)
        );
    }
    let (entry, got) = s.entry_and_nodes(tree, 0, &[]).await.expect("proof read");
    assert_eq!(entry.expect("entry 0").body, all[0].body);
    assert!(got.is_empty());
    // beyond the tree: no entry, and nodes that do not exist are left out
    let absent = [
        sigstack_merkle::NodeId::new(0, 5_000),
        sigstack_merkle::NodeId::new(3, 5_000),
        sigstack_merkle::NodeId::new(1, 0),
    ];
    let (entry, got) = s
        .entry_and_nodes(tree, 10_000, &absent)
        .await
        .expect("proof read");
    assert!(entry.is_none());
    assert_eq!(got.len(), 1, "only node (1, 0) exists: {got:?}");
    assert_eq!(got[0].0, absent[2]);
    // ranges (what tlog-tiles entry bundles read): in order, clipped to the tree
    let range = s.entries_range(tree, 3, 19).await.expect("range");
    assert_eq!(
        range.iter().map(|e| e.index).collect::<Vec<_>>(),
        (3..19).collect::<Vec<_>>()
    );
    assert!(range.iter().zip(&all[3..19]).all(|(g, e)| g.body == e.body));
    let tail = s.entries_range(tree, 190, 1_000).await.expect("range");
    assert_eq!(tail.len(), 11, "201 entries: 190..201");
    assert!(
        s.entries_range(tree, 500, 600)
            .await
            .expect("range")
            .is_empty()
    );
    assert!(
        s.entries_range(tree, 0, u64::MAX)
            .await
            .expect("range")
            .len()
            == 201
    );
    assert!(
        s.entry_by_index(tree, 10_000)
            .await
            .expect("read")
            .is_none()
    );
    assert!(
        s.entries_by_leaf(Some(tree), &[0u8; 32])
            .await
            .expect("read")
            .is_empty()
    );
    // search
    let hits = s
        .search(&["k1".into(), "sha256:e7".into()])
        .await
        .expect("search");
    assert!(hits.iter().any(|h| h.key == "sha256:e7"
        && h.tree_id == tree
        && h.index == 7
        && h.leaf_hash == all[7].leaf_hash));
    assert_eq!(hits.iter().filter(|h| h.key == "k1").count(), all.len() / 3);
    s.close().await;
}

async fn stale_and_duplicate_batches_write_nothing(b: Backend) {
    let s = b.store().await;
    let tree = new_tree(&s).await;
    let mut f = Frontier::new();
    let first = entries(0, 5, "d");
    assert_eq!(
        append_batch(&s, tree, &mut f, &first).await,
        AppendOutcome::Appended
    );
    // planned against an old size
    let mut old = Frontier::new();
    let out = append_batch(&s, tree, &mut old, &entries(0, 2, "x")).await;
    assert_eq!(out, AppendOutcome::Stale { size: 5 });
    // a batch containing an existing leaf
    let mut dup = entries(5, 3, "d");
    dup[1].body = first[2].body.clone();
    dup[1].leaf_hash = first[2].leaf_hash;
    let out = append_batch(&s, tree, &mut f, &dup).await;
    assert_eq!(
        out,
        AppendOutcome::Duplicates(vec![(first[2].leaf_hash, 2)])
    );
    let h = s.head(tree).await.expect("head").expect("exists");
    assert_eq!(h.size, 5);
    assert!(
        s.entry_by_index(tree, 5).await.expect("read").is_none(),
        "nothing half-written"
    );
    s.close().await;
}

async fn concurrent_sequencers_serialise(b: Backend) {
    let s = b.store().await;
    let tree = new_tree(&s).await;
    // Two writers plan the same next batch; exactly one may land.
    let base = Frontier::new();
    let a = entries(0, 10, "a");
    let c = entries(0, 10, "c");
    let (mut fa, mut fc) = (base.clone(), base.clone());
    let (s1, s2) = (s.clone(), s.clone());
    let (ra, rc) = tokio::join!(
        async move { append_batch(&s1, tree, &mut fa, &a).await },
        async move { append_batch(&s2, tree, &mut fc, &c).await }
    );
    let landed = [&ra, &rc]
        .iter()
        .filter(|r| ***r == AppendOutcome::Appended)
        .count();
    assert_eq!(landed, 1, "{ra:?} {rc:?}");
    assert_eq!(s.head(tree).await.expect("head").expect("exists").size, 10);
    s.close().await;
}

async fn shards_rotate(b: Backend) {
    let s = b.store().await;
    let t1 = new_tree(&s).await;
    let mut f = Frontier::new();
    append_batch(&s, t1, &mut f, &entries(0, 4, "s")).await;
    let t2 = new_tree(&s).await;
    let shards = s.shards("rekor").await.expect("shards");
    assert_eq!(shards.len(), 2);
    assert_eq!(
        (shards[0].tree_id, shards[0].active, shards[0].head.size),
        (t1, false, 4)
    );
    assert_eq!(
        (shards[1].tree_id, shards[1].active, shards[1].ordinal),
        (t2, true, 1)
    );
    // the frozen shard refuses appends
    let mut f2 = f.clone();
    assert!(
        s.append(t1, 4, &entries(4, 1, "s"), &[], &head(&f2))
            .await
            .is_err()
    );
    let _ = &mut f2;
    assert!(s.shards("other-log").await.expect("shards").is_empty());
    s.close().await;
}

async fn migrations_are_idempotent(b: Backend) {
    let s = b.store().await;
    sigstack_storage::migrate(&s)
        .await
        .expect("second run is a no-op");
    s.ping().await.expect("ping");
    s.close().await;
}

async fn tuf_files_publish_atomically_in_order(b: Backend) {
    use sigstack_storage::TufFile;
    let s = b.store().await;
    let file = |path: &str, role: &str, version: i64| TufFile {
        seq: 0,
        path: path.into(),
        role: role.into(),
        version,
        body: format!("{{\"{path}\": true}}").into_bytes(),
    };
    assert!(s.tuf_files(0).await.expect("files").is_empty());
    assert!(
        s.tuf_publish(&[
            file("1.root.json", "root", 1),
            file("1.targets.json", "targets", 1)
        ])
        .await
        .expect("publish")
    );
    assert!(
        s.tuf_publish(&[file("1.timestamp.json", "timestamp", 1)])
            .await
            .expect("publish")
    );
    // a batch with one taken path stores nothing
    assert!(
        !s.tuf_publish(&[
            file("2.timestamp.json", "timestamp", 2),
            file("1.root.json", "root", 1)
        ])
        .await
        .expect("publish")
    );
    let all = s.tuf_files(0).await.expect("files");
    let paths: Vec<&str> = all.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["1.root.json", "1.targets.json", "1.timestamp.json"]);
    assert_eq!(all[0].body, b"{\"1.root.json\": true}");
    // incremental reads
    let after = s.tuf_files(all[1].seq).await.expect("files");
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].role, "timestamp");
    s.close().await;
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $name() { super::$name(super::Backend::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $name() { super::$name(super::Backend::Postgres).await } )*
        }
    };
}

both_backends!(
    appends_reads_and_proves,
    stale_and_duplicate_batches_write_nothing,
    concurrent_sequencers_serialise,
    shards_rotate,
    migrations_are_idempotent,
    tuf_files_publish_atomically_in_order,
);

#[test]
fn redacts_passwords() {
    assert_eq!(
        sigstack_storage::redact("postgres://u:secret@h/db"),
        "postgres://u:***@h/db"
    );
    assert_eq!(
        sigstack_storage::redact("sqlite:///tmp/x.db"),
        "sqlite:///tmp/x.db"
    );
}
