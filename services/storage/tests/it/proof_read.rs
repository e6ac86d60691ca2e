//! A proof read on PostgreSQL is one call to `sigstack_proof_read` (migration 6), whose
//! plan is made once per connection and then reused. That plan must be index lookups even
//! when it was made on empty tables that were never analysed: the plans are read back from
//! PostgreSQL's own `auto_explain`, through psql.

use super::support;
use sigstack_storage::Store;
use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `script` in one psql session; returns (stdout, stderr).
fn psql(url: &str, script: &str) -> (String, String) {
    let mut child = Command::new("psql")
        .args([url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("psql (PostgreSQL's client) on PATH");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write the script");
    let out = child.wait_with_output().expect("psql");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "psql failed: {stderr}");
    (stdout, stderr)
}

#[tokio::test]
async fn proof_read_plan_made_on_empty_tables_stays_index_lookups() {
    let url = support::fresh_pg_url().await;
    Store::open(&url)
        .await
        .expect("open and migrate")
        .close()
        .await;
    let (out, log) = psql(
        &url,
        r"
        LOAD 'auto_explain';
        SET auto_explain.log_min_duration = 0;
        SET auto_explain.log_nested_statements = on;
        SET client_min_messages = log;
        SET plan_cache_mode = force_custom_plan; -- as sigstackd's connections have it
        -- the first call plans, on empty tables that were never analysed
        SELECT count(*) FROM sigstack_proof_read(7, 0, '{1,2}'::SMALLINT[], '{0,0}', '{1}');
        INSERT INTO entries SELECT 7, g, sha256(int8send(g)), '\x00', 0
          FROM generate_series(0, 19999) g;
        INSERT INTO nodes SELECT 7, 1, g, sha256(int8send(g)) FROM generate_series(0, 9999) g;
        -- later calls reuse that plan, now on 20,000 entries
        SELECT count(*) FROM sigstack_proof_read(7, 5, '{1,1,2}'::SMALLINT[], '{2,3,99999}', '{4}');
        SELECT count(*) FROM sigstack_proof_read(7, 20000, '{}'::SMALLINT[], '{}', '{}');
        ",
    );
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["0", "4", "0"],
        "rows found: none in empty tables; the entry, two of three nodes and a leaf; \
         nothing beyond the tree"
    );
    // the function's statement, as auto_explain logged it at each of the three calls
    let inner: Vec<&str> = log
        .split("LOG:")
        .filter(|plan| plan.contains("FROM entries e WHERE e.tree_id = p_tree"))
        .collect();
    assert_eq!(inner.len(), 3, "one plan per call:\n{log}");
    for plan in &inner {
        assert!(!plan.contains("Seq Scan"), "a sequential scan:\n{plan}");
        assert!(
            plan.contains("Index Scan using entries_pkey")
                && plan.contains("Index Scan using nodes_pkey"),
            "not the index lookups:\n{plan}"
        );
        // a generic plan, kept from the first call: parameters, not the call's values
        assert!(
            plan.contains("tree_id = $1"),
            "not the generic plan:\n{plan}"
        );
    }
}
