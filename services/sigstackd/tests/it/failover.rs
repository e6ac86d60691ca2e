//! PostgreSQL failover under load: a primary with a synchronous streaming standby, the
//! log writing through a multi-host URL (`target_session_attrs=read-write`); the primary
//! is killed and the standby promoted. Every acknowledged entry must be there with a
//! valid proof, every checkpoint handed out must be consistent with the tree, and the
//! log must resume writing on its own.

use crate::api::check_consistency;
use crate::faults::{PrivatePg, audit, load};
use crate::support::*;
use sigstack_merkle::Hash;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-tAc", sql])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub async fn postgres_failover_loses_nothing() {
    let (primary, standby) = tokio::task::spawn_blocking(|| {
        let primary = PrivatePg::start();
        psql(&primary.admin_url(), "CREATE DATABASE sigstack");
        let standby = PrivatePg::standby_of(&primary);
        // synchronous: a commit returns once the standby has it on disk
        psql(
            &primary.admin_url(),
            "ALTER SYSTEM SET synchronous_standby_names = '*'",
        );
        psql(&primary.admin_url(), "SELECT pg_reload_conf()");
        let deadline = Instant::now() + Duration::from_secs(60);
        while psql(
            &primary.admin_url(),
            "SELECT string_agg(sync_state, ',') FROM pg_stat_replication",
        ) != "sync"
        {
            assert!(
                Instant::now() < deadline,
                "the standby did not become synchronous"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        (primary, standby)
    })
    .await
    .expect("clusters");
    let url = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/sigstack?target_session_attrs=read-write",
        primary.port(),
        standby.port()
    );
    let t0 = Instant::now();
    let server = Server::start_on(Backend::Postgres, url, &[]).await;

    // load, and a reader keeping every checkpoint `GET /api/v1/log` hands out
    let l = load(&server.url, 8);
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Arc<Mutex<Vec<(u64, Hash)>>> = Arc::default();
    let reader = {
        let (stop, seen, url, key) = (
            stop.clone(),
            seen.clone(),
            server.url.clone(),
            server.key.clone(),
        );
        tokio::spawn(async move {
            let c = http();
            while !stop.load(Ordering::Relaxed) {
                if let Ok(r) = c.get(format!("{url}/api/v1/log")).send().await
                    && r.status() == 200
                    && let Ok(v) = r.json::<serde_json::Value>().await
                {
                    let cp = v["signedTreeHead"].as_str().unwrap_or_default();
                    let cp = sigstack_log::checkpoint::verify(cp, "127.0.0.1", &key)
                        .expect("every checkpoint handed out verifies");
                    seen.lock().expect("lock").push((cp.size, cp.root));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let before = l.acked.lock().expect("lock").len();
    assert!(before >= 20, "load too light: {before} entries");

    // the primary is lost; the standby is promoted
    let standby = tokio::task::spawn_blocking(move || {
        primary.stop();
        standby.promote();
        drop(primary);
        standby
    })
    .await
    .expect("failover");
    let promoted = Instant::now();
    let deadline = promoted + Duration::from_secs(60);
    while l.acked.lock().expect("lock").len() < before + 20 {
        assert!(
            Instant::now() < deadline,
            "the log did not resume writing after the failover"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "failover: writing again {:.1} s after the promotion",
        promoted.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (acked, statuses) = l.finish().await;
    stop.store(true, Ordering::Relaxed);
    reader.await.expect("reader");
    let bad: Vec<u16> = statuses
        .iter()
        .map(|(_, s)| *s)
        .filter(|s| !matches!(s, 201 | 503 | 0))
        .collect();
    assert!(
        bad.is_empty(),
        "requests must succeed or fail cleanly, got {bad:?}"
    );

    // nothing acknowledged is lost, and every checkpoint seen is consistent with the tree
    println!(
        "failover: {} entries acknowledged, auditing ({:.1} s in)",
        acked.len(),
        t0.elapsed().as_secs_f64()
    );
    audit(&server, &acked).await;
    println!("failover: audited ({:.1} s in)", t0.elapsed().as_secs_f64());
    let c = http();
    let (_, info) = get_json(&c, &format!("{}/api/v1/log", server.url)).await;
    let size = info["treeSize"].as_u64().expect("size");
    let head: Hash = hex::decode(info["rootHash"].as_str().expect("root"))
        .expect("hex")
        .try_into()
        .expect("32");
    let mut seen = std::mem::take(&mut *seen.lock().expect("lock"));
    seen.sort();
    seen.dedup();
    assert!(seen.len() >= 2, "the reader saw too few checkpoints");
    for (s, root) in seen.into_iter().filter(|(s, _)| *s > 0) {
        check_consistency(&c, &server.url, s, &root, size, &head).await;
    }
    drop(server);
    drop(standby);
}
