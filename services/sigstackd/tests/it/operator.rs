//! An operator's year as the README tells them to run it, on the production layout
//! (`init`, one process per service, PostgreSQL): a CA rotation with signatures made
//! before, during and after it by sigstack, sigstore-python and cosign v3; the identity
//! provider's key rotated; the TUF root and targets renewed; a backup, more signatures, a
//! restore; a second log process under load; `init` run again — every bundle made so far
//! verified by all three, with trust from the TUF repository, and `doctor` green, after
//! every step.

use crate::client::p;
use crate::keyless::run;
use crate::stack::{
    Clients, Identity, SERVICES, Service, doctor, get_ok, start_all, workload_token,
};
use crate::support::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const SIGNERS: [&str; 3] = ["sigstack", "sigstore-python", "cosign v3"];

fn sigstackd(args: &[&str]) -> String {
    let (ok, out) = run(Command::new(env!("CARGO_BIN_EXE_sigstackd")).args(args));
    assert!(ok, "sigstackd {args:?}: {out}");
    out
}

struct Operator {
    etc: PathBuf,
    db: String,
    urls: Vec<(&'static str, String)>,
}

impl Operator {
    fn url(&self, s: &str) -> String {
        self.urls.iter().find(|(n, _)| *n == s).expect(s).1.clone()
    }

    /// `trust export` (with the published trust as `--previous`), then the targets
    /// staged and published; returns once the TUF service serves a snapshot naming them.
    async fn publish_trust(&self, extra: &[&str]) {
        let tuf = self.url("tuf");
        let before = snapshot_version(&tuf).await;
        let mut args = vec![
            "trust".to_string(),
            "export".into(),
            "--ca-url".into(),
            self.url("ca"),
            "--tlog-url".into(),
            self.url("log"),
            "--ctlog-url".into(),
            self.url("ctlog"),
            "--oidc-url".into(),
            self.url("oidc"),
            "--tsa-url".into(),
            self.url("tsa"),
            "--operator".into(),
            "sigstack-test".into(),
            "--previous".into(),
            p(&self.etc.join("trusted_root.json")).into(),
            "--out".into(),
            p(&self.etc).into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        sigstackd(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let staged = self.etc.join(format!("staged-{}", rand::random::<u32>()));
        let out = sigstackd(&[
            "tuf",
            "stage-targets",
            "--database-url",
            &self.db,
            "--trust-dir",
            p(&self.etc),
            "--out",
            p(&staged),
            "--key",
            p(&self.etc.join("offline/tuf-ceremony/keys/targets-1.pem")),
        ]);
        let file = std::fs::read_dir(&staged)
            .expect("staged")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.to_string_lossy().ends_with(".targets.json"))
            .unwrap_or_else(|| panic!("nothing staged: {out}"));
        sigstackd(&["tuf", "publish", "--database-url", &self.db, p(&file)]);
        let deadline = Instant::now() + Duration::from_secs(60);
        while snapshot_version(&tuf).await == before {
            assert!(
                Instant::now() < deadline,
                "the TUF service did not pick up the targets"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

async fn snapshot_version(tuf: &str) -> u64 {
    let (_, ts) = get_json(&http(), &format!("{tuf}/timestamp.json")).await;
    ts["signed"]["meta"]["snapshot.json"]["version"]
        .as_u64()
        .expect("snapshot version")
}

/// RFC 3339, two minutes ago: a `--valid-from` for material published now.
fn two_minutes_ago() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let (ok, out) = run(Command::new("date").args([
        "-u",
        "-d",
        &format!("@{}", now - 120),
        "+%Y-%m-%dT%H:%M:%SZ",
    ]));
    assert!(ok, "{out}");
    out.trim().to_string()
}

/// The CT log's key, rotated as the README says: a new key published first, then the
/// CT log restarted on it under a new log name and the CA pointed at it, then the old
/// key end-dated — with signatures before, during and after.
async fn rotate_ct_log(
    c: &Clients,
    who: &Identity,
    o: &Operator,
    dir: &Path,
    procs: &mut Vec<Service>,
    signed: &mut Vec<(PathBuf, PathBuf)>,
) {
    let etc = &o.etc;
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
    let (ok, again) = run(Command::new(env!("CARGO_BIN_EXE_sigstackd")).args([
        "ctlog",
        "new-key",
        "--out-key",
        p(&key),
    ]));
    assert!(!ok && again.contains("never overwritten"), "{again}");
    // nor through a link planted at the name
    #[cfg(unix)]
    {
        let (link, target) = (etc.join("keys/ctlog/ctlog-3.pem"), dir.join("nowhere"));
        std::os::unix::fs::symlink(&target, &link).expect("link");
        let (ok, out) = run(Command::new(env!("CARGO_BIN_EXE_sigstackd")).args([
            "ctlog",
            "new-key",
            "--out-key",
            p(&link),
        ]));
        assert!(!ok && out.contains("never overwritten"), "{out}");
        assert!(!target.exists(), "new-key wrote through a link");
        std::fs::remove_file(&link).expect("rm");
    }
    o.publish_trust(&[
        "--add-ctlog-key",
        p(&public),
        "--valid-from",
        &two_minutes_ago(),
    ])
    .await;
    let ctlogs = |t: &Value| t["ctlogs"].as_array().cloned().unwrap_or_default();
    let trusted = read_json(&etc.join("trusted_root.json"));
    assert_eq!(ctlogs(&trusted).len(), 2, "{trusted}");
    a_day_passes(&dir.join("home"));
    signed.extend(sign_all(c, o, dir, "during-the-ct-rotation").await);
    verify_all(c, who, signed, "with the new CT log key published");
    let (ok, out) = doctor(&etc.join("stack.json"));
    assert!(
        ok && out.contains("1 more key(s) published for it"),
        "doctor with the next CT log key published: {out}"
    );

    // the switch: the CT log on the new key under a new name, then the CA
    let edit = |file: &str, from: &str, to: &str| {
        let path = etc.join(file);
        let text = std::fs::read_to_string(&path).expect(file);
        assert!(text.contains(from), "{file}: {text}");
        write_private(&path, text.replace(from, to));
    };
    let restart = |procs: &mut Vec<Service>, name: &'static str| {
        let at = procs.iter().position(|s| s.name == name).expect(name);
        procs.remove(at).stop();
        procs.push(Service::start(name, etc, dir));
        let ready = format!("{}/readyz", o.url(name));
        crate::keyless::wait_for(&format!("{name} after the switch"), || get_ok(&ready));
    };
    edit(
        "ctlog.toml",
        "ctlog/ctlog.pem\"",
        "ctlog/ctlog-2.pem\"\nlog_name = \"ctlog-2\"",
    );
    restart(procs, "ctlog");
    edit("ca.toml", "public/ctlog.pub.pem", "public/ctlog-2.pub.pem");
    restart(procs, "ca");
    signed.extend(sign_all(c, o, dir, "after-the-ct-rotation").await);
    verify_all(c, who, signed, "after the CA switched CT logs");

    // the old key end-dated; what it signed still verifies
    o.publish_trust(&[]).await;
    let trusted = read_json(&etc.join("trusted_root.json"));
    let ended: Vec<bool> = ctlogs(&trusted)
        .iter()
        .map(|l| l["publicKey"]["validFor"]["end"].is_string())
        .collect();
    assert_eq!(ended.iter().filter(|e| **e).count(), 1, "{trusted}");
    verify_all(c, who, signed, "after the old CT log key was end-dated");
    let (ok, out) = doctor(&etc.join("stack.json"));
    assert!(ok, "doctor after the CT log rotation: {out}");
}

/// The transparency log's key, rotated with a new shard: the next key published first,
/// then the shard started on it with the old key kept for the frozen shard, then the old
/// key end-dated — with signatures before, during and after.
async fn rotate_log_key(
    c: &Clients,
    who: &Identity,
    o: &Operator,
    dir: &Path,
    procs: &mut Vec<Service>,
    signed: &mut Vec<(PathBuf, PathBuf)>,
) {
    let etc = &o.etc;
    let (old_key, key, public) = (
        etc.join("keys/log/log.pem"),
        etc.join("keys/log/log-2.pem"),
        etc.join("public/log-2.pub.pem"),
    );
    let log = o.url("log");
    let (_, first) = get_json(&http(), &format!("{log}/api/v1/log/entries?logIndex=0")).await;
    let old_log_id = first
        .as_object()
        .and_then(|m| m.values().next())
        .and_then(|e| e["logID"].as_str())
        .expect("entry 0")
        .to_string();
    sigstackd(&[
        "log",
        "new-key",
        "--out-key",
        p(&key),
        "--out-public",
        p(&public),
    ]);
    o.publish_trust(&[
        "--add-tlog-key",
        p(&public),
        "--valid-from",
        &two_minutes_ago(),
    ])
    .await;
    let trusted = read_json(&etc.join("trusted_root.json"));
    assert_eq!(
        trusted["tlogs"].as_array().map(Vec::len),
        Some(2),
        "{trusted}"
    );
    a_day_passes(&dir.join("home"));
    signed.extend(sign_all(c, o, dir, "during-the-log-rotation").await);
    verify_all(c, who, signed, "with the next log key published");
    let (ok, out) = doctor(&etc.join("stack.json"));
    assert!(
        ok && out.contains("1 more published for it"),
        "doctor with the next log key published: {out}"
    );

    // the switch, with the log stopped: a new shard on the new key
    let at = procs.iter().position(|s| s.name == "log").expect("log");
    procs.remove(at).stop();
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
    // started on the old key alone, the log refuses: its active shard is the new key's
    let (ok, refused) = crate::keyless::run_within(
        Command::new(env!("CARGO_BIN_EXE_sigstackd")).args(["log", "--config", p(&config)]),
        Duration::from_secs(30),
    );
    assert!(
        !ok && refused.contains("new-shard --signing-key"),
        "{refused}"
    );
    let text = std::fs::read_to_string(&config).expect("log.toml");
    let from = format!("signing_key = {:?}", p(&old_key));
    assert!(text.contains(&from), "{text}");
    write_private(
        &config,
        text.replace(
            &from,
            &format!(
                "signing_key = {:?}\nprevious_keys = [{:?}]",
                p(&key),
                p(&old_key)
            ),
        ),
    );
    // a previous key that signed no shard: refused, it would be a key kept online for nothing
    let stray = dir.join("stray-log-key.pem");
    sigstackd(&["log", "new-key", "--out-key", p(&stray)]);
    let with_stray = dir.join("log-stray.toml");
    write_private(
        &with_stray,
        std::fs::read_to_string(&config).expect("log.toml").replace(
            "previous_keys = [",
            &format!("previous_keys = [{:?}, ", p(&stray)),
        ),
    );
    let (ok, refused) = crate::keyless::run_within(
        Command::new(env!("CARGO_BIN_EXE_sigstackd")).args(["log", "--config", p(&with_stray)]),
        Duration::from_secs(30),
    );
    assert!(!ok && refused.contains("signed no shard"), "{refused}");
    procs.push(Service::start("log", etc, dir));
    crate::keyless::wait_for("the log on its new shard", || {
        get_ok(&format!("{log}/readyz"))
    });
    let (_, info) = get_json(&http(), &format!("{log}/api/v1/log")).await;
    assert_eq!(
        info["inactiveShards"].as_array().map(Vec::len),
        Some(1),
        "{info}"
    );
    // the frozen shard's entries keep their log ID and key
    let (_, again) = get_json(&http(), &format!("{log}/api/v1/log/entries?logIndex=0")).await;
    let entry = again
        .as_object()
        .and_then(|m| m.values().next())
        .expect("entry 0");
    assert_eq!(entry["logID"].as_str(), Some(old_log_id.as_str()));
    signed.extend(sign_all(c, o, dir, "after-the-log-rotation").await);
    verify_all(c, who, signed, "after the log started its new shard");

    o.publish_trust(&[]).await;
    let trusted = read_json(&etc.join("trusted_root.json"));
    let ended = trusted["tlogs"]
        .as_array()
        .expect("tlogs")
        .iter()
        .filter(|l| l["publicKey"]["validFor"]["end"].is_string())
        .count();
    assert_eq!(ended, 1, "{trusted}");
    verify_all(c, who, signed, "after the old log key was end-dated");
    let (ok, out) = doctor(&etc.join("stack.json"));
    assert!(ok, "doctor after the log key rotation: {out}");
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("read")).expect("json")
}

/// The TUF roles renewed as the README says: a new root (same keys, a later expiry)
/// signed with the root key from the offline ceremony, then a new targets version.
async fn renew_tuf_roles(o: &Operator, dir: &Path) {
    let tuf = o.url("tuf");
    let (_, first) = get_json(&http(), &format!("{tuf}/1.root.json")).await;
    let staged = dir.join("renewed-root");
    let root_key = o.etc.join("offline/tuf-ceremony/keys/root-1.pem");
    let db = o.db.as_str();
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
    sigstackd(&[
        "tuf",
        "publish",
        "--database-url",
        db,
        p(&staged.join("2.root.json")),
    ]);
    o.publish_trust(&[]).await;
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

/// Starts a second `sigstackd log` on the same configuration and database, sends a
/// stream of entries to both processes while every signer signs, and checks that every
/// submission was accepted; returns the signers' (artifact, bundle) pairs.
async fn with_a_second_log_process(
    c: &Clients,
    o: &Operator,
    dir: &Path,
) -> Vec<(PathBuf, PathBuf)> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let replica = format!("127.0.0.1:{}", free_port());
    std::fs::create_dir_all(dir.join("second-log")).expect("dir");
    let second = Service::start_with(
        "log",
        &o.etc,
        &dir.join("second-log"),
        &[("SIGSTACK_LOG_LISTEN", &replica)],
    );
    let replica = format!("http://{replica}");
    crate::keyless::wait_for("the second log process", || {
        get_ok(&format!("{replica}/readyz"))
    });
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn({
        let (stop, urls) = (stop.clone(), [o.url("log"), replica.clone()]);
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
    let signed = sign_all(c, o, dir, "with-two-log-processes").await;
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
    signed
}

/// Each signer signs a new artifact; returns (artifact, bundle) pairs.
async fn sign_all(c: &Clients, o: &Operator, dir: &Path, phase: &str) -> Vec<(PathBuf, PathBuf)> {
    let mut out = Vec::new();
    for s in SIGNERS {
        let name = s.replace(' ', "-");
        let artifact = dir.join(format!("{phase}-{name}.txt"));
        std::fs::write(&artifact, format!("signed {phase} the rotation by {s}\n")).expect("w");
        let bundle = dir.join(format!("{phase}-{name}.sigstore.json"));
        let token = workload_token(&o.url("oidc"), &o.etc.join("keys/oidc/ci-secret")).await;
        let (ok, out_) = c.sign(s, &token, &artifact, &bundle);
        assert!(ok, "{s} signs {phase} the rotation: {out_}");
        out.push((artifact, bundle));
    }
    out
}

/// Every bundle, verified by every client: the three clients side by side, each going
/// through the bundles in turn (a client's own TUF cache is never used by two at once).
fn verify_all(c: &Clients, who: &Identity, signed: &[(PathBuf, PathBuf)], when: &str) {
    let failed: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = SIGNERS
            .iter()
            .map(|v| {
                scope.spawn(move || {
                    let mut failed = Vec::new();
                    for (artifact, bundle) in signed {
                        let (ok, out) = c.verify(v, who, artifact, bundle);
                        if !ok {
                            failed.push(format!("{v} on {}: {out}", bundle.display()));
                        }
                    }
                    failed
                })
            })
            .collect();
        runs.into_iter()
            .flat_map(|r| r.join().expect("a verifier thread"))
            .collect()
    });
    assert!(failed.is_empty(), "{when}:\n{}", failed.join("\n"));
}

/// Makes every TUF cache under `home` look refreshed a day and an hour ago.
fn a_day_passes(home: &Path) {
    let mut stack = vec![home.to_path_buf()];
    let mut found = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n == "refreshed") {
                let t: i64 = std::fs::read_to_string(&path)
                    .expect("refreshed")
                    .trim()
                    .parse()
                    .expect("a time");
                std::fs::write(&path, (t - 25 * 3600).to_string()).expect("w");
                found += 1;
            }
        }
    }
    assert!(found > 0, "no TUF cache under {}", home.display());
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

pub async fn an_operators_year_keeps_every_signature_verifying() {
    let dir = temp_dir("operator");
    let etc = dir.join("etc");
    let db = fresh_pg_database(&pg_admin_url()).await;
    let urls: Vec<(&'static str, String)> = SERVICES
        .iter()
        .map(|s| (*s, format!("http://127.0.0.1:{}", free_port())))
        .collect();
    let o = Operator {
        etc: etc.clone(),
        db: db.clone(),
        urls,
    };
    let (ok, out) = run(Command::new(env!("CARGO_BIN_EXE_sigstackd"))
        .args(["init", "--dir", p(&etc), "--database-url", &db])
        .args(["--listen-host", "127.0.0.1", "--operator", "sigstack-test"])
        .args(["--log-url", &o.url("log"), "--ctlog-url", &o.url("ctlog")])
        .args(["--ca-url", &o.url("ca"), "--oidc-url", &o.url("oidc")])
        .args(["--tuf-url", &o.url("tuf"), "--tsa-url", &o.url("tsa")]));
    assert!(ok, "init: {out}");
    // the operator's edit: the TUF service looks for new metadata every second
    let tuf_toml = std::fs::read_to_string(etc.join("tuf.toml")).expect("tuf.toml");
    write_private(&etc.join("tuf.toml"), format!("{tuf_toml}poll_secs = 1\n"));
    let mut procs = start_all(&etc, &dir, &o.urls);
    let stack: Value =
        serde_json::from_slice(&std::fs::read(etc.join("stack.json")).expect("stack"))
            .expect("json");
    let c = Clients::new(&dir, &stack);
    let oidc = o.url("oidc");
    let who = Identity {
        identity: format!("{oidc}/jobs/ci"),
        issuer: format!("{oidc}/workload"),
    };

    // before
    let mut signed = sign_all(&c, &o, &dir, "before").await;
    verify_all(&c, &who, &signed, "before the rotation");
    let old_issuer = issuer_of(&signed[0].1);

    // a new intermediate, published before the CA uses it
    // the layout init made: keys/<service>/, public/, offline/ (the root key is brought
    // back from wherever it is kept for the occasion)
    let (keys, public) = (etc.join("keys"), etc.join("public"));
    let args = crate::rotation::reissue_args(
        ["ca", "new-intermediate"],
        &etc.join("offline/ca-root.pem"),
        &public.join("ca-chain.pem"),
        (
            &keys.join("ca/ca-intermediate-2.pem"),
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
    o.publish_trust(&[
        "--add-ca-chain",
        p(&public.join("ca-chain-2.pem")),
        "--valid-from",
        &two_minutes_ago(),
    ])
    .await;
    let trusted: Value =
        serde_json::from_slice(&std::fs::read(etc.join("trusted_root.json")).expect("r"))
            .expect("json");
    assert_eq!(
        trusted["certificateAuthorities"].as_array().map(Vec::len),
        Some(2),
        "{trusted}"
    );

    // the operator waits out the clients' TUF cache lifetime (a day for sigstack) before
    // switching: here, sigstack's cache is made a day old
    a_day_passes(&dir.join("home"));

    // during: the CA still issues from the old intermediate
    signed.extend(sign_all(&c, &o, &dir, "during").await);
    verify_all(
        &c,
        &who,
        &signed,
        "with the new chain published, before the switch",
    );

    // the switch: the CA restarts on the new intermediate
    let at = procs.iter().position(|s| s.name == "ca").expect("ca");
    procs.remove(at).stop();
    let ca_toml = std::fs::read_to_string(etc.join("ca.toml"))
        .expect("ca.toml")
        .replace("ca-intermediate.pem", "ca-intermediate-2.pem")
        .replace("ca-chain.pem", "ca-chain-2.pem");
    write_private(&etc.join("ca.toml"), ca_toml);
    procs.push(Service::start("ca", &etc, &dir));
    let ready = format!("{}/readyz", o.url("ca"));
    crate::keyless::wait_for("the CA on its new intermediate", || get_ok(&ready));
    let after = sign_all(&c, &o, &dir, "after").await;
    for (_, b) in &after {
        let issuer = issuer_of(b);
        assert!(
            issuer.contains("rotated intermediate") && issuer != old_issuer,
            "{} was issued by {issuer}",
            b.display()
        );
    }
    signed.extend(after);
    verify_all(&c, &who, &signed, "after the switch");

    // the old chain end-dated: everything still verifies
    o.publish_trust(&[]).await;
    let trusted: Value =
        serde_json::from_slice(&std::fs::read(etc.join("trusted_root.json")).expect("r"))
            .expect("json");
    let cas = trusted["certificateAuthorities"].as_array().expect("cas");
    assert_eq!(cas.len(), 2, "{trusted}");
    assert!(
        cas.iter()
            .filter(|c| c["validFor"]["end"].is_string())
            .count()
            == 1,
        "the old chain is end-dated, the new one open: {trusted}"
    );
    verify_all(&c, &who, &signed, "after the old chain was end-dated");
    let (ok, out) = doctor(&etc.join("stack.json"));
    assert!(ok, "doctor after the rotation: {out}");

    rotate_ct_log(&c, &who, &o, &dir, &mut procs, &mut signed).await;
    rotate_log_key(&c, &who, &o, &dir, &mut procs, &mut signed).await;

    // the identity provider's key rotates: a new RSA key signs, the old one's public half
    // (written by init) stays published, so a token from before still gets a certificate
    let old_token = workload_token(&oidc, &etc.join("keys/oidc/ci-secret")).await;
    let old_pub = keys.join("oidc/oidc.pub.pem");
    let old_pub_bytes = std::fs::read(&old_pub).expect("init wrote the public half");
    let new_key = keys.join("oidc/oidc-2.pem");
    let (ok, out) = run(Command::new("openssl").args([
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        p(&new_key),
    ]));
    assert!(ok, "{out}");
    write_private(&new_key, std::fs::read(&new_key).expect("key"));
    let oidc_toml = std::fs::read_to_string(etc.join("oidc.toml")).expect("oidc.toml");
    let rotated = oidc_toml.replacen(
        "signing_key = ",
        &format!("previous_keys = [{:?}]\nsigning_key = ", p(&old_pub)),
        1,
    );
    let rotated = rotated.replace("keys/oidc/oidc.pem\"", "keys/oidc/oidc-2.pem\"");
    assert_ne!(rotated, oidc_toml);
    write_private(&etc.join("oidc.toml"), rotated);
    let at = procs.iter().position(|s| s.name == "oidc").expect("oidc");
    procs.remove(at).stop();
    procs.push(Service::start("oidc", &etc, &dir));
    let ready = format!("{oidc}/readyz");
    crate::keyless::wait_for("the identity provider on its new key", || get_ok(&ready));
    let artifact = dir.join("old-token.txt");
    std::fs::write(&artifact, b"signed with a token from the old key\n").expect("w");
    let bundle = dir.join("old-token.sigstore.json");
    let (ok, out) = c.sign("sigstack", &old_token, &artifact, &bundle);
    assert!(ok, "a token signed by the previous key: {out}");
    signed.push((artifact, bundle));
    signed.extend(sign_all(&c, &o, &dir, "after-oidc-rotation").await);
    verify_all(
        &c,
        &who,
        &signed,
        "after the identity provider's key rotated",
    );

    let (ok, out) = doctor(&etc.join("stack.json"));
    assert!(
        ok,
        "doctor after the identity provider's key rotated: {out}"
    );

    renew_tuf_roles(&o, &dir).await;
    signed.extend(sign_all(&c, &o, &dir, "after-tuf-renewal").await);
    verify_all(&c, &who, &signed, "after the TUF roles were renewed");
    let (ok, out) = doctor(&etc.join("stack.json"));
    assert!(ok, "doctor after the TUF roles were renewed: {out}");

    // a backup, more signatures, then the database restored from it: the entries made
    // since are gone from the log, but their bundles carry their proofs and still verify
    let backup = dir.join("year.dump");
    let (ok, out) = run(Command::new("pg_dump")
        .args(["--format=custom", "--file", p(&backup)])
        .arg(&db));
    assert!(ok, "pg_dump: {out}");
    signed.extend(sign_all(&c, &o, &dir, "after-the-backup").await);
    verify_all(&c, &who, &signed, "after the backup");
    for s in procs.drain(..) {
        s.stop();
    }
    crate::stack::restore(&pg_admin_url(), &db, &backup);
    procs = start_all(&etc, &dir, &o.urls);
    verify_all(&c, &who, &signed, "after the restore");
    signed.extend(sign_all(&c, &o, &dir, "after-the-restore").await);
    verify_all(&c, &who, &signed, "after signing on the restored stack");
    let (ok, out) = doctor(&etc.join("stack.json"));
    assert!(ok, "doctor after the restore: {out}");

    // a second log process on the same database, under load while everyone signs
    signed.extend(with_a_second_log_process(&c, &o, &dir).await);
    verify_all(
        &c,
        &who,
        &signed,
        "after a second log process ran under load",
    );
    let (ok, out) = doctor(&etc.join("stack.json"));
    assert!(ok, "doctor after the second log process: {out}");

    // init again, as an operator would after all this: nothing published, nothing undone
    let (ok, out) = run(Command::new(env!("CARGO_BIN_EXE_sigstackd"))
        .args(["init", "--dir", p(&etc), "--database-url", &db])
        .args(["--listen-host", "127.0.0.1", "--operator", "sigstack-test"])
        .args(["--log-url", &o.url("log"), "--ctlog-url", &o.url("ctlog")])
        .args(["--ca-url", &o.url("ca"), "--oidc-url", &o.url("oidc")])
        .args(["--tuf-url", &o.url("tuf"), "--tsa-url", &o.url("tsa")]));
    assert!(
        ok && out.contains("checked") && !out.contains("publishing"),
        "{out}"
    );
    assert_eq!(
        std::fs::read(&old_pub).expect("old public half"),
        old_pub_bytes,
        "init overwrote the previous key's public half"
    );
    assert!(keys.join("oidc/oidc-2.pub.pem").exists());
    let ca_toml = std::fs::read_to_string(etc.join("ca.toml")).expect("ca.toml");
    assert!(ca_toml.contains("ca-intermediate-2.pem"), "{ca_toml}");
    verify_all(&c, &who, &signed, "after init ran again");
    let (ok, out) = doctor(&etc.join("stack.json"));
    assert!(ok, "doctor after init ran again: {out}");
    for s in procs {
        s.stop();
    }
}
