//! The year's steps, each as the README tells an operator to take it, with signatures
//! made and everything verified around it.

use super::*;

/// The CA's issuing certificate: a new intermediate under the root brought back from
/// offline, published before the CA uses it; after a day the CA switches; then the old
/// chain is end-dated.
pub(super) async fn intermediate(y: &mut Year) {
    let old_issuer = issuer_of(&y.signed[0].1);
    let (etc, public) = (&y.o.etc, y.o.etc.join("public"));
    let args = crate::rotation::reissue_args(
        ["ca", "new-intermediate"],
        &etc.join("offline/ca-root.pem"),
        &public.join("ca-chain.pem"),
        (
            &etc.join("keys/ca/ca-intermediate-2.pem"),
            &public.join("ca-chain-2.pem"),
        ),
        &[
            "--organization",
            "sigstack-test",
            "--common-name",
            "rotated intermediate",
        ],
    );
    sigstackd(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let chain = public.join("ca-chain-2.pem");
    let from = two_minutes_ago();
    y.o.publish_trust(&["--add-ca-chain", p(&chain), "--valid-from", &from])
        .await;
    assert_eq!(
        ended(&y.o.trusted_root(), "certificateAuthorities", &["validFor"]),
        (2, 0)
    );
    y.a_day_passes();
    // during: the CA still issues from the old intermediate
    y.sign_and_verify("during", "with the new chain published, before the switch")
        .await;

    // the switch: the CA restarts on the new intermediate
    y.o.edit("ca.toml", "ca-intermediate.pem", "ca-intermediate-2.pem");
    y.o.edit("ca.toml", "ca-chain.pem", "ca-chain-2.pem");
    y.restart("ca");
    let first_after = y.sign("after").await;
    for (_, b) in &y.signed[first_after..] {
        let issuer = issuer_of(b);
        assert!(
            issuer.contains("rotated intermediate") && issuer != old_issuer,
            "{} was issued by {issuer}",
            b.display()
        );
    }
    y.verify("after the switch");

    // the old chain end-dated: everything still verifies
    y.o.publish_trust(&[]).await;
    assert_eq!(
        ended(&y.o.trusted_root(), "certificateAuthorities", &["validFor"]),
        (2, 1)
    );
    y.verify("after the old chain was end-dated");
    y.doctor("after the CA rotation");
}

/// The timestamp authority's certificate: a new key and certificate under the TSA root
/// brought back from offline, published first; after a day the TSA switches; then the
/// old chain is end-dated. Bundles stamped before keep verifying by the old chain's
/// window (and five years on).
pub(super) async fn tsa_certificate(y: &mut Year) {
    let (etc, public) = (&y.o.etc, y.o.etc.join("public"));
    let args = crate::rotation::reissue_args(
        ["tsa", "new-certificate"],
        &etc.join("offline/tsa-root.pem"),
        &public.join("tsa-chain.pem"),
        (
            &etc.join("keys/tsa/tsa-2.pem"),
            &public.join("tsa-chain-2.pem"),
        ),
        &[],
    );
    sigstackd(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let chain = public.join("tsa-chain-2.pem");
    let from = two_minutes_ago();
    y.o.publish_trust(&["--add-tsa-chain", p(&chain), "--valid-from", &from])
        .await;
    assert_eq!(
        ended(&y.o.trusted_root(), "timestampAuthorities", &["validFor"]),
        (2, 0)
    );
    y.a_day_passes();
    y.sign_and_verify(
        "during-tsa",
        "with the new TSA chain published, before the switch",
    )
    .await;
    y.o.edit("tsa.toml", "tsa.pem", "tsa-2.pem");
    y.o.edit("tsa.toml", "tsa-chain.pem", "tsa-chain-2.pem");
    y.restart("tsa");
    let served = http()
        .get(format!("{}/api/v1/timestamp/certchain", y.o.url("tsa")))
        .send()
        .await
        .expect("certchain")
        .text()
        .await
        .expect("text");
    let new_chain = std::fs::read_to_string(&chain).expect("chain");
    assert_eq!(
        served.trim(),
        new_chain.trim(),
        "the TSA serves its new chain"
    );
    y.sign_and_verify("after-tsa", "after the TSA switched")
        .await;
    y.o.publish_trust(&[]).await;
    assert_eq!(
        ended(&y.o.trusted_root(), "timestampAuthorities", &["validFor"]),
        (2, 1)
    );
    y.verify("after the old TSA chain was end-dated");
    y.doctor("after the TSA rotation");
}

/// The CT log's key: a new key published first, then the CT log restarted on it under a
/// new log name and the CA pointed at it, then the old key end-dated.
pub(super) async fn ct_log_key(y: &mut Year) {
    let etc = y.o.etc.clone();
    let (key, public) = (
        etc.join("keys/ctlog/ctlog-2.pem"),
        etc.join("public/ctlog-2.pub.pem"),
    );
    let out = sigstackd(&[
        "ctlog",
        "new-key",
        "--out-key",
        p(&key),
        "--out-public",
        p(&public),
    ]);
    assert!(out.contains("log ID"), "{out}");
    let new_key = |at: &Path| {
        run(Command::new(env!("CARGO_BIN_EXE_sigstackd")).args([
            "ctlog",
            "new-key",
            "--out-key",
            p(at),
        ]))
    };
    let (ok, again) = new_key(&key);
    assert!(!ok && again.contains("never overwritten"), "{again}");
    // nor through a link planted at the name
    #[cfg(unix)]
    {
        let (link, target) = (etc.join("keys/ctlog/ctlog-3.pem"), y.dir.join("nowhere"));
        std::os::unix::fs::symlink(&target, &link).expect("link");
        let (ok, out) = new_key(&link);
        assert!(!ok && out.contains("never overwritten"), "{out}");
        assert!(!target.exists(), "new-key wrote through a link");
        std::fs::remove_file(&link).expect("rm");
    }
    let from = two_minutes_ago();
    y.o.publish_trust(&["--add-ctlog-key", p(&public), "--valid-from", &from])
        .await;
    assert_eq!(
        ended(&y.o.trusted_root(), "ctlogs", &["publicKey", "validFor"]),
        (2, 0)
    );
    y.a_day_passes();
    y.sign_and_verify(
        "during-the-ct-rotation",
        "with the new CT log key published",
    )
    .await;
    let report = y.doctor("with the next CT log key published");
    assert!(
        report.contains("1 more key(s) published for it"),
        "{report}"
    );

    // the switch: the CT log on the new key under a new name, then the CA
    y.o.edit(
        "ctlog.toml",
        "ctlog/ctlog.pem\"",
        "ctlog/ctlog-2.pem\"\nlog_name = \"ctlog-2\"",
    );
    y.restart("ctlog");
    y.o.edit("ca.toml", "public/ctlog.pub.pem", "public/ctlog-2.pub.pem");
    y.restart("ca");
    y.sign_and_verify("after-the-ct-rotation", "after the CA switched CT logs")
        .await;

    // the old key end-dated; what it signed still verifies
    y.o.publish_trust(&[]).await;
    assert_eq!(
        ended(&y.o.trusted_root(), "ctlogs", &["publicKey", "validFor"]),
        (2, 1)
    );
    y.verify("after the old CT log key was end-dated");
    y.doctor("after the CT log rotation");
}

/// The transparency log's key, rotated with a new shard: the next key published first,
/// then the shard started on it with the old key kept for the frozen shard, then the
/// old key end-dated.
pub(super) async fn log_key(y: &mut Year) {
    let etc = y.o.etc.clone();
    let (old_key, key, public) = (
        etc.join("keys/log/log.pem"),
        etc.join("keys/log/log-2.pem"),
        etc.join("public/log-2.pub.pem"),
    );
    let log = y.o.url("log");
    // the clients sign into the v2 log (the signing config lists it): an entry of the v1
    // log's own, made before its rotation
    let r = post_entry(
        &http(),
        &log,
        &Artifacts::new().hashedrekord(b"before the log key rotation"),
    )
    .await;
    assert_eq!(r.status().as_u16(), 201);
    let first_entry = || async {
        let (_, v) = get_json(&http(), &format!("{log}/api/v1/log/entries?logIndex=0")).await;
        v.as_object()
            .and_then(|m| m.values().next())
            .and_then(|e| e["logID"].as_str())
            .expect("entry 0")
            .to_string()
    };
    let old_log_id = first_entry().await;
    sigstackd(&[
        "log",
        "new-key",
        "--out-key",
        p(&key),
        "--out-public",
        p(&public),
    ]);
    let from = two_minutes_ago();
    y.o.publish_trust(&["--add-tlog-key", p(&public), "--valid-from", &from])
        .await;
    assert_eq!(
        ended(&y.o.trusted_root(), "tlogs", &["publicKey", "validFor"]),
        (3, 0),
        "the v1 log's key, its successor's and the v2 log's"
    );
    y.a_day_passes();
    y.sign_and_verify("during-the-log-rotation", "with the next log key published")
        .await;
    let report = y.doctor("with the next log key published");
    assert!(report.contains("1 more published for it"), "{report}");

    // the switch, with the log stopped: a new shard on the new key
    let at = y.procs.iter().position(|s| s.name == "log").expect("log");
    y.procs.remove(at).stop();
    let config = etc.join("log.toml");
    let out = sigstackd(&[
        "log",
        "--config",
        p(&config),
        "new-shard",
        "--signing-key",
        p(&key),
    ]);
    assert!(out.contains("previous_keys"), "{out}");
    let refusal = |config: &Path| {
        let (ok, out) = crate::keyless::run_within(
            Command::new(env!("CARGO_BIN_EXE_sigstackd")).args(["log", "--config", p(config)]),
            Duration::from_secs(30),
        );
        assert!(!ok, "the log started: {out}");
        out
    };
    // started on the old key alone, the log refuses: its active shard is the new key's
    let out = refusal(&config);
    assert!(out.contains("new-shard --signing-key"), "{out}");
    let signing = format!("signing_key = {:?}", p(&old_key));
    let rotated = format!(
        "signing_key = {:?}\nprevious_keys = [{:?}]",
        p(&key),
        p(&old_key)
    );
    y.o.edit("log.toml", &signing, &rotated);
    // a previous key that signed no shard: refused, a key kept online for nothing
    let stray = y.dir.join("stray-log-key.pem");
    sigstackd(&["log", "new-key", "--out-key", p(&stray)]);
    let with_stray = y.dir.join("log-stray.toml");
    let text = std::fs::read_to_string(&config).expect("log.toml");
    let stray_too = format!("previous_keys = [{:?}, ", p(&stray));
    write_private(&with_stray, text.replace("previous_keys = [", &stray_too));
    let out = refusal(&with_stray);
    assert!(out.contains("signed no shard"), "{out}");
    y.start("log");
    let (_, info) = get_json(&http(), &format!("{log}/api/v1/log")).await;
    assert_eq!(
        info["inactiveShards"].as_array().map(Vec::len),
        Some(1),
        "{info}"
    );
    // the frozen shard's entries keep their log ID and key
    assert_eq!(first_entry().await, old_log_id);
    y.sign_and_verify(
        "after-the-log-rotation",
        "after the log started its new shard",
    )
    .await;

    y.o.publish_trust(&[]).await;
    assert_eq!(
        ended(&y.o.trusted_root(), "tlogs", &["publicKey", "validFor"]),
        (3, 1)
    );
    y.verify("after the old log key was end-dated");
    y.doctor("after the log key rotation");
}

/// The identity provider's key: a new RSA key signs, the old one's public half (written
/// by init) stays published, so a token from before still gets a certificate. Returns
/// the old public half's path and bytes.
pub(super) async fn identity_provider_key(y: &mut Year) -> (PathBuf, Vec<u8>) {
    let keys = y.o.etc.join("keys/oidc");
    let old_token = workload_token(&y.o.url("oidc"), &keys.join("ci-secret")).await;
    let old_pub = keys.join("oidc.pub.pem");
    let old_pub_bytes = std::fs::read(&old_pub).expect("init wrote the public half");
    let new_key = keys.join("oidc-2.pem");
    openssl_rsa_key(&new_key);
    let previous = format!("previous_keys = [{:?}]\nsigning_key = ", p(&old_pub));
    y.o.edit("oidc.toml", "signing_key = ", &previous);
    y.o.edit(
        "oidc.toml",
        "keys/oidc/oidc.pem\"",
        "keys/oidc/oidc-2.pem\"",
    );
    y.restart("oidc");
    let artifact = y.dir.join("old-token.txt");
    std::fs::write(&artifact, b"signed with a token from the old key\n").expect("w");
    let bundle = y.dir.join("old-token.sigstore.json");
    let (ok, out) = y.c.sign("sigstack", &old_token, &artifact, &bundle);
    assert!(ok, "a token signed by the previous key: {out}");
    y.signed.push((artifact, bundle));
    y.sign_and_verify(
        "after-oidc-rotation",
        "after the identity provider's key rotated",
    )
    .await;
    y.doctor("after the identity provider's key rotated");
    (old_pub, old_pub_bytes)
}

/// The TUF roles renewed: a new root (same keys, a later expiry) signed with the root key
/// from the offline ceremony, then a new targets version.
pub(super) async fn renew_tuf_roles(y: &Year) {
    let tuf = y.o.url("tuf");
    let (_, first) = get_json(&http(), &format!("{tuf}/1.root.json")).await;
    let staged = y.dir.join("renewed-root");
    let root_key = y.o.etc.join("offline/tuf-ceremony/keys/root-1.pem");
    let db = y.o.db.as_str();
    sigstackd(&[
        "tuf",
        "stage-root",
        "--database-url",
        db,
        "--out",
        p(&staged),
        "--expires-days",
        "400",
        "--sign-key",
        p(&root_key),
    ]);
    let root = staged.join("2.root.json");
    sigstackd(&["tuf", "publish", "--database-url", db, p(&root)]);
    y.o.publish_trust(&[]).await;
    let (st, second) = get_json(&http(), &format!("{tuf}/2.root.json")).await;
    assert_eq!(st, 200, "the renewed root is served");
    let expires = |v: &Value| {
        v["signed"]["expires"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        expires(&second) > expires(&first),
        "renewed: {} after {}",
        expires(&second),
        expires(&first)
    );
}

/// A backup, more signatures, then the database restored from it: the entries made since
/// are gone from the log, but their bundles carry their proofs and still verify.
pub(super) async fn backup_and_restore(y: &mut Year) {
    let backup = y.dir.join("year.dump");
    let (ok, out) = run(Command::new("pg_dump")
        .args(["--format=custom", "--file", p(&backup)])
        .arg(&y.o.db));
    assert!(ok, "pg_dump: {out}");
    y.sign_and_verify("after-the-backup", "after the backup")
        .await;
    for s in y.procs.drain(..) {
        s.stop();
    }
    crate::production::restore(&pg_admin_url(), &y.o.db, &backup);
    y.procs = start_all(&y.o.etc, &y.dir, &y.o.urls);
    y.verify("after the restore");
    y.sign_and_verify("after-the-restore", "after signing on the restored stack")
        .await;
    y.doctor("after the restore");
}

/// A second `sigstackd log` on the same configuration and database: a stream of entries
/// goes to both processes while every signer signs, and every submission is accepted.
pub(super) async fn a_second_log_process(y: &mut Year) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let replica = format!("127.0.0.1:{}", free_port());
    let logs = y.dir.join("second-log");
    std::fs::create_dir_all(&logs).expect("dir");
    let second = Service::start_with("log", &y.o.etc, &logs, &[("SIGSTACK_LOG_LISTEN", &replica)]);
    let replica = format!("http://{replica}");
    crate::keyless::wait_for("the second log process", || {
        get_ok(&format!("{replica}/readyz"))
    });
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn({
        let (stop, urls) = (stop.clone(), [y.o.url("log"), replica.clone()]);
        async move {
            let (client, a) = (http(), Arc::new(Artifacts::new()));
            let mut statuses = Vec::new();
            let mut round = 0;
            while !stop.load(Ordering::Relaxed) || round < 4 {
                let batch = (0..16).map(|i| {
                    let (client, a, url) = (client.clone(), a.clone(), urls[i % 2].clone());
                    async move {
                        let entry = a.hashedrekord(format!("load {round}.{i}").as_bytes());
                        post_entry(&client, &url, &entry).await.status().as_u16()
                    }
                });
                statuses.extend(futures::future::join_all(batch).await);
                round += 1;
            }
            statuses
        }
    });
    y.sign("with-two-log-processes").await;
    stop.store(true, Ordering::Relaxed);
    let statuses = load.await.expect("load");
    let refused: Vec<_> = statuses.iter().filter(|s| **s != 201).collect();
    assert!(
        refused.is_empty(),
        "{} of {} submissions were not accepted: {refused:?}",
        refused.len(),
        statuses.len()
    );
    second.stop();
    y.verify("after a second log process ran under load");
    y.doctor("after the second log process");
}

/// The issuer name of a bundle's signing certificate.
fn issuer_of(bundle: &Path) -> String {
    use base64::Engine;
    let v: Value = serde_json::from_slice(&std::fs::read(bundle).expect("bundle")).expect("json");
    let m = &v["verificationMaterial"];
    let b64 = m["certificate"]["rawBytes"]
        .as_str()
        .or_else(|| m["x509CertificateChain"]["certificates"][0]["rawBytes"].as_str())
        .expect("a certificate");
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64");
    let cert = sigstack_crypto::Certificate::from_der(&der).expect("certificate");
    cert.parsed().tbs_certificate.issuer.to_string()
}
