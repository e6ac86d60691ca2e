//! Day 2 as the README tells an operator to run it, on the production layout (`init`,
//! one process per service, PostgreSQL): a CA rotation with signatures made before,
//! during and after it by sigstack, sigstore-python and cosign v3, then the identity
//! provider's key rotated, then `init` run again — every bundle verified by all three,
//! with trust from the TUF repository, at every step.

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
            p(&self.etc.join("tuf-ceremony/keys/targets-1.pem")),
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

/// Each signer signs a new artifact; returns (artifact, bundle) pairs.
async fn sign_all(c: &Clients, o: &Operator, dir: &Path, phase: &str) -> Vec<(PathBuf, PathBuf)> {
    let mut out = Vec::new();
    for s in SIGNERS {
        let name = s.replace(' ', "-");
        let artifact = dir.join(format!("{phase}-{name}.txt"));
        std::fs::write(&artifact, format!("signed {phase} the rotation by {s}\n")).expect("w");
        let bundle = dir.join(format!("{phase}-{name}.sigstore.json"));
        let token = workload_token(&o.url("oidc"), &o.etc.join("ci-secret")).await;
        let (ok, out_) = c.sign(s, &token, &artifact, &bundle);
        assert!(ok, "{s} signs {phase} the rotation: {out_}");
        out.push((artifact, bundle));
    }
    out
}

fn verify_all(c: &Clients, who: &Identity, signed: &[(PathBuf, PathBuf)], when: &str) {
    let mut failed = Vec::new();
    for (artifact, bundle) in signed {
        for v in SIGNERS {
            let (ok, out) = c.verify(v, who, artifact, bundle);
            if !ok {
                failed.push(format!("{v} on {}: {out}", bundle.display()));
            }
        }
    }
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

pub async fn ca_rotation_keeps_every_signature_verifying() {
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
    let keys = etc.join("keys");
    let args = crate::rotation::reissue_args(
        ["ca", "new-intermediate"],
        &keys.join("ca-root.pem"),
        &keys.join("ca-chain.pem"),
        (
            &keys.join("ca-intermediate-2.pem"),
            &keys.join("ca-chain-2.pem"),
        ),
        &[
            "--organization",
            "sigstack-test",
            "--common-name",
            "rotated intermediate",
        ],
    );
    sigstackd(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let (ok, valid_from) = run(Command::new("date").args([
        "-u",
        "-d",
        &format!("@{}", now - 120),
        "+%Y-%m-%dT%H:%M:%SZ",
    ]));
    assert!(ok);
    o.publish_trust(&[
        "--add-ca-chain",
        p(&keys.join("ca-chain-2.pem")),
        "--valid-from",
        valid_from.trim(),
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

    // the identity provider's key rotates: a new RSA key signs, the old one's public half
    // (written by init) stays published, so a token from before still gets a certificate
    let old_token = workload_token(&oidc, &etc.join("ci-secret")).await;
    let old_pub = keys.join("oidc.pub.pem");
    let old_pub_bytes = std::fs::read(&old_pub).expect("init wrote the public half");
    let new_key = keys.join("oidc-2.pem");
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
    let rotated = rotated.replace("keys/oidc.pem\"", "keys/oidc-2.pem\"");
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
    assert!(keys.join("oidc-2.pub.pem").exists());
    let ca_toml = std::fs::read_to_string(etc.join("ca.toml")).expect("ca.toml");
    assert!(ca_toml.contains("ca-intermediate-2.pem"), "{ca_toml}");
    verify_all(&c, &who, &signed, "after init ran again");
    let (ok, out) = doctor(&etc.join("stack.json"));
    assert!(ok, "doctor after init ran again: {out}");
    for s in procs {
        s.stop();
    }
}
