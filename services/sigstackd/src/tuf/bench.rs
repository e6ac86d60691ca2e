//! `sigstackd tuf bench-resign`: the cost of keeping the online roles fresh.

use super::*;

/// `sigstackd tuf bench-resign`: times signing a fresh snapshot and timestamp (in
/// memory), and the same plus publishing both into a database.
pub async fn bench_resign(iterations: usize, database_url: Option<&str>) -> anyhow::Result<()> {
    let root_key = FileSigner::generate(sigstack_crypto::Curve::P256);
    let online = FileSigner::generate(sigstack_crypto::Curve::P256);
    let now = crate::sequencer::unix_now();
    let (r, o) = (
        repo::RoleSpec::single(root_key.public_key()),
        repo::RoleSpec::single(online.public_key()),
    );
    let root = repo::root(
        1,
        now + 86_400,
        [(ROOT, &r), (TARGETS, &r), (SNAPSHOT, &o), (TIMESTAMP, &o)],
    )?;
    let mut root_env = Envelope::new(&root)?;
    root_env.sign(&root_key)?;
    let files = std::collections::BTreeMap::from([
        (
            "trusted_root.json".to_string(),
            TargetFile::of(&[b'x'; 6000], None),
        ),
        (
            "signing_config.v0.2.json".to_string(),
            TargetFile::of(&[b'y'; 1500], None),
        ),
    ]);
    let mut targets_env = Envelope::new(&repo::targets(1, now + 86_400, files))?;
    targets_env.sign(&root_key)?;
    let mut base = Repo::default();
    base.apply(vec![
        TufFile {
            seq: 1,
            path: "1.root.json".into(),
            role: ROOT.into(),
            version: 1,
            body: root_env.to_bytes(),
        },
        TufFile {
            seq: 2,
            path: "1.targets.json".into(),
            role: TARGETS.into(),
            version: 1,
            body: targets_env.to_bytes(),
        },
    ])?;
    let report = |what: &str, mut us: Vec<u128>| {
        us.sort_unstable();
        let p = |q: f64| us[((us.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
        println!(
            "{what}: n={} p50={:.3} ms p99={:.3} ms max={:.3} ms",
            us.len(),
            p(0.5),
            p(0.99),
            p(1.0)
        );
    };
    let mut times = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t = std::time::Instant::now();
        let files =
            online_update(&base, &online, (86_400, 7 * 86_400), now, false)?.context("update")?;
        times.push(t.elapsed().as_micros());
        anyhow::ensure!(files.len() == 2);
    }
    report("sign snapshot+timestamp", times);
    if let Some(url) = database_url {
        let store = Store::open(url).await?;
        store
            .tuf_publish(&[
                TufFile {
                    seq: 0,
                    path: "1.root.json".into(),
                    role: ROOT.into(),
                    version: 1,
                    body: root_env.to_bytes(),
                },
                TufFile {
                    seq: 0,
                    path: "1.targets.json".into(),
                    role: TARGETS.into(),
                    version: 1,
                    body: targets_env.to_bytes(),
                },
            ])
            .await?;
        let mut repo = Repo::default();
        repo.apply(store.tuf_files(0).await?)?;
        let mut times = Vec::with_capacity(iterations);
        for i in 0..iterations {
            let t = std::time::Instant::now();
            // due by expiry: the clock moves a timestamp lifetime on each round
            let at = now + i as i64 * 86_400;
            let files =
                online_update(&repo, &online, (86_400, 86_400), at, false)?.context("update")?;
            anyhow::ensure!(store.tuf_publish(&files).await?, "conflict");
            repo.apply(store.tuf_files(repo.last_seq).await?)?;
            times.push(t.elapsed().as_micros());
        }
        report(&format!("sign + publish ({})", store.backend()), times);
    }
    Ok(())
}
