//! The production layout (`sigstackd init`, then one process per service on
//! PostgreSQL) against the interop matrix, with `sigstackd doctor` (healthy, then a
//! stopped CT log reported), `/metrics` and `/readyz` of every service, graceful shutdown
//! on SIGTERM, and backup and restore of the database with pg_dump/pg_restore: the
//! restored log has the same head, every entry's proof verifies, and the log grows
//! consistently with the checkpoint taken before the backup.

use crate::client::{json_of, p};
use crate::keyless::run;
use crate::stack::*;
use crate::support::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

async fn text(url: &str) -> String {
    let r = http().get(url).send().await.expect("GET");
    assert!(r.status().is_success(), "GET {url}: {}", r.status());
    r.text().await.expect("body")
}

/// The value of the first sample of `name` (with the given label text, if any).
fn sample(metrics: &str, name: &str, labels: &str) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']) && l.contains(labels)
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The log's signed head: (size, root, note).
async fn head(log: &str) -> (u64, String, String) {
    let v: Value = serde_json::from_str(&text(&format!("{log}/api/v1/log")).await).expect("json");
    (
        v["treeSize"].as_u64().expect("size"),
        v["rootHash"].as_str().expect("root").to_string(),
        v["signedTreeHead"].as_str().expect("sth").to_string(),
    )
}

pub async fn production_stack_on_postgres() {
    let dir = temp_dir("prod");
    let etc = dir.join("etc");
    let admin = pg_admin_url();
    let db = fresh_pg_database(&admin).await;
    let urls: Vec<(&str, String)> = SERVICES
        .iter()
        .map(|s| (*s, format!("http://127.0.0.1:{}", free_port())))
        .collect();
    let url = |s: &str| urls.iter().find(|(n, _)| *n == s).expect(s).1.clone();
    let init = |dir: &Path| {
        run(Command::new(env!("CARGO_BIN_EXE_sigstackd"))
            .args(["init", "--dir", p(dir), "--database-url", &db])
            .args(["--listen-host", "127.0.0.1", "--operator", "sigstack-test"])
            .args(["--log-url", &url("log"), "--ctlog-url", &url("ctlog")])
            .args(["--ca-url", &url("ca"), "--oidc-url", &url("oidc")])
            .args(["--tuf-url", &url("tuf"), "--tsa-url", &url("tsa")])
            .args(["--log-v2-url", &url("log-v2")]))
    };
    let (ok, out) = init(&etc);
    assert!(ok, "sigstackd init: {out}");
    assert!(out.contains("sigstack initialize --mirror"), "{out}");
    assert!(
        out.contains("login:  user admin (admin@sigstack.test)"),
        "{out}"
    );
    // again: the keys and the TUF repository are kept
    let key_before = std::fs::read(etc.join("keys/log/log.pem")).expect("key");
    let root_before = std::fs::read(etc.join("public/1.root.json")).expect("root");
    let (ok, out) = init(&etc);
    assert!(ok, "sigstackd init, again: {out}");
    assert_eq!(
        std::fs::read(etc.join("keys/log/log.pem")).expect("key"),
        key_before
    );
    assert_eq!(
        std::fs::read(etc.join("public/1.root.json")).expect("root"),
        root_before
    );
    // another directory on the same database: refused before anything is written
    let other = dir.join("other");
    let (ok, out) = init(&other);
    assert!(
        !ok && out.contains("already holds a TUF repository"),
        "{out}"
    );
    assert!(
        !other.join("log.toml").exists() && !other.join("keys").exists(),
        "init wrote before refusing"
    );
    // every secret file is private
    #[cfg(unix)]
    for f in [
        "keys/log/log.pem",
        "keys/ca/ca-intermediate.pem",
        "keys/oidc/ci-secret",
        "oidc.toml",
        "offline/admin-password",
        "offline/ca-root.pem",
        "offline/tuf-ceremony/keys/root-1.pem",
        "log.toml",
    ] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(etc.join(f))
            .expect(f)
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{f} is readable by others");
    }
    // the private keys are not in the database
    let log_key = std::fs::read_to_string(etc.join("keys/log/log.pem")).expect("key");
    let pem_body: String = log_key
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let (ok, dump) = run(Command::new("pg_dump").arg(&db));
    assert!(ok, "{dump}");
    assert!(
        !dump.contains(&pem_body[..40]),
        "a private key is in the database"
    );

    let procs = start_all(&etc, &dir, &urls);
    let stack_path = etc.join("stack.json");
    let stack: Value =
        serde_json::from_slice(&std::fs::read(&stack_path).expect("stack")).expect("json");
    let (ok, out) = doctor(&stack_path);
    assert!(
        ok && out.contains("17 checks: 0 failed"),
        "doctor on the production stack: {out}"
    );

    // the matrix signs as the CI job, with workload tokens from the real token endpoint
    let c = Clients::new(&dir, &stack);
    let oidc = url("oidc");
    let who = Identity {
        identity: format!("{oidc}/jobs/ci"),
        issuer: format!("{oidc}/workload"),
    };
    let mut tokens = Vec::new();
    // one per signer, and one for the v1 log's first entry
    for _ in 0..=CLIENTS.len() {
        tokens.push(workload_token(&oidc, &etc.join("keys/oidc/ci-secret")).await);
    }
    let next = std::sync::Mutex::new(tokens);
    let signed = interop_matrix("separate processes on PostgreSQL", &c, &who, || {
        next.lock()
            .expect("lock")
            .pop()
            .expect("a token per signer")
    });

    // metrics of every service
    let ca_m = text(&format!("{}/metrics", url("ca"))).await;
    assert_eq!(
        sample(&ca_m, "sigstack_ca_certificates_issued_total", ""),
        Some(CLIENTS.len() as f64 + 1.0),
        "one per signer, and the v1 log's first entry's: {ca_m}"
    );
    assert!(
        sample(&ca_m, "sigstack_ca_chain_expires_in_seconds", "").is_some_and(|s| s > 86_400.0)
    );
    assert!(
        sample(
            &ca_m,
            "sigstack_http_requests_total",
            "route=\"/api/v2/signingCert\",status=\"200\""
        )
        .is_some_and(|n| n >= 2.0),
        "{ca_m}"
    );
    assert!(ca_m.contains("sigstack_http_request_duration_seconds_bucket{service=\"ca\""));
    // the v1 log: the first entry and sigstore-js's; the v2 log: the four signers that
    // follow the signing config
    let log_m = text(&format!("{}/metrics", url("log"))).await;
    assert_eq!(
        sample(&log_m, "sigstack_log_entries", ""),
        Some(2.0),
        "{log_m}"
    );
    assert_eq!(
        sample(&log_m, "sigstack_log_tree_size", "tree="),
        Some(2.0),
        "{log_m}"
    );
    let log_v2_m = text(&format!("{}/metrics", url("log-v2"))).await;
    assert_eq!(
        sample(&log_v2_m, "sigstack_log_v2_tree_size", ""),
        Some(CLIENTS.len() as f64 - 1.0),
        "{log_v2_m}"
    );
    assert!(sample(&log_m, "sigstack_log_checkpoint_age_seconds", "").is_some());
    let ct_m = text(&format!("{}/metrics", url("ctlog"))).await;
    assert_eq!(
        sample(&ct_m, "sigstack_ctlog_tree_size", ""),
        Some(CLIENTS.len() as f64 + 1.0),
        "{ct_m}"
    );
    let tuf_m = text(&format!("{}/metrics", url("tuf"))).await;
    assert!(
        sample(
            &tuf_m,
            "sigstack_tuf_expires_in_seconds",
            "role=\"timestamp\""
        )
        .is_some_and(|s| s > 3600.0),
        "{tuf_m}"
    );
    let oidc_m = text(&format!("{oidc}/metrics")).await;
    assert!(
        sample(
            &oidc_m,
            "sigstack_http_requests_total",
            "route=\"/token\",status=\"200\""
        ) == Some(CLIENTS.len() as f64 + 1.0),
        "{oidc_m}"
    );
    // structured logs: JSON lines
    let ca_log = std::fs::read_to_string(dir.join("ca.log")).expect("ca log");
    let first = ca_log.lines().next().expect("a log line");
    let line: Value = serde_json::from_str(first)
        .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {first}"));
    assert!(
        line["level"].is_string() && line["timestamp"].is_string(),
        "{first}"
    );

    // a stopped CT log is reported, then every service shuts down gracefully
    let mut procs = procs;
    let ct = procs.remove(2);
    assert_eq!(ct.name, "ctlog");
    ct.stop();
    let (ok, out) = doctor(&stack_path);
    assert!(
        !ok && out.contains("FAIL  ctlog"),
        "doctor with the CT log down: {out}"
    );
    assert!(
        out.contains("1 failed") || out.contains("2 failed"),
        "{out}"
    );

    // backup: the checkpoint before, the dump
    let log = url("log");
    let (size, root, _) = head(&log).await;
    let o = c.ours.run(&["log", "info"]);
    assert!(o.ok(), "{o}");
    let backup = dir.join("sigstack.dump");
    let (ok, out) = run(Command::new("pg_dump")
        .args(["--format=custom", "--file", p(&backup)])
        .arg(&db));
    assert!(ok, "pg_dump: {out}");
    for s in procs {
        s.stop();
    }
    // wipe: the database is gone, then restored from the dump into a new one
    restore(&admin, &db, &backup);

    let procs = start_all(&etc, &dir, &urls);
    let (size2, root2, _) = head(&log).await;
    assert_eq!(
        (size2, &root2),
        (size, &root),
        "the restored log has the backed-up head"
    );
    // every entry, with its inclusion proof against a signed checkpoint, verifies
    for i in 0..size {
        let o = c.ours.run(&[
            "log",
            "get",
            "--log-index",
            &i.to_string(),
            "--output",
            "json",
        ]);
        assert!(o.ok(), "entry {i} after restore: {o}");
        assert_eq!(json_of(&o)["logIndex"], Value::from(i), "{o}");
    }
    for (artifact, bundle) in &signed {
        let (ok, out) = c.verify("sigstore-python", &who, artifact, bundle);
        assert!(ok, "{} after restore: {out}", bundle.display());
    }
    // the log grows on, consistent with the checkpoint from before the backup (our
    // client proves it against the one it kept)
    let artifact = dir.join("after.txt");
    std::fs::write(&artifact, b"signed after the restore\n").expect("w");
    let bundle = dir.join("after.sigstore.json");
    // into the v1 log, whose growth from the backed-up head is checked below
    let o = c.ours.run(&[
        "sign-blob",
        "--yes",
        "--rekor-version",
        "1",
        "--identity-token",
        &workload_token(&oidc, &etc.join("keys/oidc/ci-secret")).await,
        "--bundle",
        p(&bundle),
        p(&artifact),
    ]);
    assert!(o.ok(), "signing after the restore: {o}");
    let (size3, root3, _) = head(&log).await;
    assert_eq!(size3, size + 1);
    let old_root: [u8; 32] = hex::decode(&root).expect("hex").try_into().expect("32");
    let new_root: [u8; 32] = hex::decode(&root3).expect("hex").try_into().expect("32");
    crate::api::check_consistency(&http(), &log, size, &old_root, size3, &new_root).await;
    let o = c.ours.run(&["log", "info", "--output", "json"]);
    assert!(
        o.ok(),
        "log info proves consistency with the kept checkpoint: {o}"
    );
    let (ok, out) = doctor(&stack_path);
    assert!(ok, "doctor after the restore: {out}");
    // a TUF client refreshes now: it holds online metadata newer than the dump's
    let tuf_root = etc.join("public/1.root.json");
    let meta = dir.join("ptuf-meta");
    let (ok, out) = crate::tuf::python_tuf(&url("tuf"), &tuf_root, &meta, &dir.join("ptuf-dl"));
    assert!(ok, "python-tuf after the restore: {out}");

    // restoring that backup again loses the entry signed since: a client that saw it
    // reports the log as behind its checkpoint
    for s in procs {
        s.stop();
    }
    restore(&admin, &db, &backup);
    let _procs = start_all(&etc, &dir, &urls);
    // the TUF repository does not go back with the database: at start the service signs
    // a snapshot and timestamp above the clock, so that client keeps updating
    let (ok, out) = crate::tuf::python_tuf(&url("tuf"), &tuf_root, &meta, &dir.join("ptuf-dl"));
    assert!(
        ok,
        "python-tuf, holding newer metadata than the restored dump: {out}"
    );
    let (ok, out) = run(Command::new(env!("CARGO_BIN_EXE_sigstackd")).args([
        "doctor",
        "--stack",
        p(&stack_path),
        "--client-state",
        p(&meta),
    ]));
    assert!(
        ok && out.contains("not behind the client state"),
        "doctor with the client's state: {out}"
    );
    // a client holding a targets version the restored database lost: reported, with
    // what to do
    let ahead = dir.join("ahead");
    std::fs::create_dir_all(&ahead).expect("dir");
    let mut targets: Value =
        serde_json::from_slice(&std::fs::read(meta.join("targets.json")).expect("targets"))
            .expect("json");
    targets["signed"]["version"] = Value::from(999);
    std::fs::write(ahead.join("targets.json"), targets.to_string()).expect("w");
    let (ok, out) = run(Command::new(env!("CARGO_BIN_EXE_sigstackd")).args([
        "doctor",
        "--stack",
        p(&stack_path),
        "--client-state",
        p(&ahead),
    ]));
    assert!(
        !ok && out.contains("< v999") && out.contains("sigstackd tuf publish"),
        "doctor with a client ahead of the repository: {out}"
    );
    let o = c.ours.run(&["log", "info"]);
    assert!(
        !o.ok()
            && o.stderr.contains("fewer than the")
            && o.stderr.contains("rolled back or restored"),
        "a rolled-back log is reported: {o}"
    );
}

/// Wipes the database (drop, create) and restores `backup` into it.
pub(crate) fn restore(admin: &str, db: &str, backup: &Path) {
    let name = db.rsplit('/').next().expect("db name").to_string();
    let (ok, out) = run(Command::new("psql")
        .arg(admin)
        .args(["-qc", &format!("DROP DATABASE {name} WITH (FORCE)")]));
    assert!(ok, "{out}");
    let (ok, out) = run(Command::new("psql")
        .arg(admin)
        .args(["-qc", &format!("CREATE DATABASE {name}")]));
    assert!(ok, "{out}");
    let (ok, out) = run(Command::new("pg_restore").args(["--no-owner", "--dbname", db, p(backup)]));
    assert!(ok, "pg_restore: {out}");
}
