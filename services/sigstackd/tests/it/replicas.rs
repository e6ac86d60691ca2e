//! Three `sigstackd log` replicas on one PostgreSQL database with `advertise_url`: they
//! elect one sequencer, the others forward submissions to it; the sequencer is killed
//! (SIGKILL) under load, and writes go on through the others while one of them takes
//! over. Every acknowledged entry is in the one tree afterwards, at the index it was
//! acknowledged with, and its proof verifies.

use crate::support::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

async fn leads(url: &str) -> Option<bool> {
    let text = http()
        .get(format!("{url}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("sigstack_log_sequencer_leader "))
        .map(|v| v.trim() == "1")
}

async fn forwarded(url: &str) -> u64 {
    let text = http()
        .get(format!("{url}/metrics"))
        .send()
        .await
        .expect("m")
        .text()
        .await
        .expect("t");
    text.lines()
        .find_map(|l| l.strip_prefix("sigstack_log_forwarded_total{outcome=\"answered\"} "))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// Waits for exactly one of `urls` to lead; returns its position.
async fn one_leader(urls: &[String]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut leaders = Vec::new();
        for (i, u) in urls.iter().enumerate() {
            if leads(u).await == Some(true) {
                leaders.push(i);
            }
        }
        if leaders.len() == 1 {
            return leaders[0];
        }
        assert!(
            Instant::now() < deadline,
            "no single sequencer elected among {urls:?} ({leaders:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn replicas_elect_a_sequencer_and_survive_its_death() {
    let db = fresh_pg_database(&pg_admin_url()).await;
    let mut servers = vec![
        Server::start_on(
            Backend::Postgres,
            db,
            &[("SIGSTACK_LOG_ADVERTISE_URL", "self")],
        )
        .await,
    ];
    servers.push(servers[0].replica().await);
    servers.push(servers[0].replica().await);
    let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    let leader = one_leader(&urls).await;
    let key = servers[0].key.clone();

    // load through every replica, acknowledged answers kept
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(std::sync::Mutex::new(Vec::<(Answer, Instant)>::new()));
    let art = Arc::new(Artifacts::new());
    let mut tasks = Vec::new();
    for w in 0..24u64 {
        let (stop, acked, art, urls) = (stop.clone(), acked.clone(), art.clone(), urls.clone());
        tasks.push(tokio::spawn(async move {
            let c = http();
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let url = &urls[((w + i) % 3) as usize];
                let entry = art.hashedrekord(format!("replicated {w} {i}").as_bytes());
                let Ok(r) = c
                    .post(format!("{url}/api/v1/log/entries"))
                    .json(&entry)
                    .send()
                    .await
                else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                if r.status() == 201
                    && let Ok(v) = r.json::<serde_json::Value>().await
                {
                    acked
                        .lock()
                        .expect("lock")
                        .push((Answer::from_map(&v), Instant::now()));
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = acked.lock().expect("lock").len();
    assert!(before > 100, "writes flow through the replicas ({before})");
    let followers: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let mut forwarded_before = 0;
    for &f in &followers {
        forwarded_before += forwarded(&urls[f]).await;
    }
    assert!(
        forwarded_before > 0,
        "the followers forward to the sequencer"
    );

    servers[leader].kill();
    let killed = Instant::now();
    let survivors: Vec<String> = followers.iter().map(|&f| urls[f].clone()).collect();
    let new_leader = one_leader(&survivors).await;
    let elected_after = killed.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.expect("task");
    }
    let acked = acked.lock().expect("lock").clone();
    let first_after = acked
        .iter()
        .filter(|(_, at)| *at > killed)
        .map(|(_, at)| *at - killed)
        .min()
        .expect("writes acknowledged after the sequencer died");
    eprintln!(
        "replicas: {} entries acknowledged; sequencer killed after {before}; first write acknowledged {:.0} ms later; {} elected after {:.0} ms",
        acked.len(),
        first_after.as_secs_f64() * 1e3,
        survivors[new_leader],
        elected_after.as_secs_f64() * 1e3
    );
    assert!(first_after < Duration::from_secs(30), "writes resumed");

    // every acknowledged entry, in the one tree at its acknowledged index
    let c = http();
    let reader = &survivors[0];
    let mut indexes: Vec<u64> = acked.iter().map(|(a, _)| a.global_index()).collect();
    indexes.sort();
    indexes.dedup();
    assert_eq!(indexes.len(), acked.len(), "no index acknowledged twice");
    for (a, _) in &acked {
        a.verify(&key);
        let (status, v) = get_json(&c, &format!("{reader}/api/v1/log/entries/{}", a.id)).await;
        assert_eq!(status, 200, "acknowledged entry {} is in the log", a.id);
        let stored = Answer::from_map(&v);
        assert_eq!(stored.global_index(), a.global_index());
        assert_eq!(stored.body(), a.body());
    }
    let (_, info) = get_json(&c, &format!("{reader}/api/v1/log")).await;
    let size = info["treeSize"].as_u64().expect("size");
    assert!(
        size >= acked.len() as u64,
        "the tree holds every acknowledged entry"
    );
    // the last answer's checkpoint is consistent with the tree as it is now
    let root: sigstack_merkle::Hash = hex::decode(info["rootHash"].as_str().expect("root"))
        .expect("hex")
        .try_into()
        .expect("32");
    let last = acked
        .iter()
        .max_by_key(|(a, _)| a.global_index())
        .expect("one");
    let cp = sigstack_log::checkpoint::verify(&last.0.checkpoint(), "127.0.0.1", &key).expect("cp");
    crate::api::check_consistency(&c, reader, cp.size, &cp.root, size, &root).await;
}
