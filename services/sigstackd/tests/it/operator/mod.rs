//! An operator's year as the README tells them to run it, on the production layout
//! (`init`, one process per service, PostgreSQL): the CA's intermediate, the CT log's key
//! and the log's shard key rotated with signatures made before, during and after by
//! sigstack, sigstore-python and cosign v3; the identity provider's key rotated; the TUF
//! root and targets renewed; a backup, more signatures, a restore; a second log process
//! under load; `init` run again — every bundle made so far verified by all three, with
//! trust from the TUF repository, and `doctor` green, after every step. Then, five years
//! on with only the trust files, every bundle still verifies.

mod rotations;

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

/// The stack's directory, database and service URLs, and what the operator does with
/// them from the command line.
struct Operator {
    etc: PathBuf,
    db: String,
    urls: Vec<(&'static str, String)>,
}

impl Operator {
    fn url(&self, s: &str) -> String {
        self.urls.iter().find(|(n, _)| *n == s).expect(s).1.clone()
    }

    /// `sigstackd init` with the stack's URLs (a first run, or a run again).
    fn init(&self) -> String {
        let (ok, out) = run(Command::new(env!("CARGO_BIN_EXE_sigstackd"))
            .args(["init", "--dir", p(&self.etc), "--database-url", &self.db])
            .args(["--listen-host", "127.0.0.1", "--operator", "sigstack-test"])
            .args([
                "--log-url",
                &self.url("log"),
                "--ctlog-url",
                &self.url("ctlog"),
            ])
            .args(["--ca-url", &self.url("ca"), "--oidc-url", &self.url("oidc")])
            .args(["--tuf-url", &self.url("tuf"), "--tsa-url", &self.url("tsa")])
            .args(["--log-v2-url", &self.url("log-v2")]));
        assert!(ok, "init: {out}");
        out
    }

    /// The trusted root as last exported.
    fn trusted_root(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.etc.join("trusted_root.json")).expect("r"))
            .expect("json")
    }

    /// Replaces `from` with `to` in one of the stack's configuration files.
    fn edit(&self, file: &str, from: &str, to: &str) {
        let path = self.etc.join(file);
        let text = std::fs::read_to_string(&path).expect(file);
        assert!(text.contains(from), "{file}: {text}");
        write_private(&path, text.replace(from, to));
    }

    /// `trust export` (with the published trust as `--previous`), then the targets
    /// staged and published; returns once the TUF service serves a snapshot naming them.
    async fn publish_trust(&self, extra: &[&str]) {
        let tuf = self.url("tuf");
        let before = snapshot_version(&tuf).await;
        let mut args = vec!["trust".to_string(), "export".into()];
        for s in ["ca", "log", "ctlog", "oidc", "tsa"] {
            let flag = if s == "log" { "tlog" } else { s };
            args.extend([format!("--{flag}-url"), self.url(s)]);
        }
        args.extend([
            "--tlog-v2-url".into(),
            self.url("log-v2"),
            "--tlog-v2-key".into(),
            p(&self.etc.join("public/log-v2.pub.pem")).into(),
        ]);
        args.extend(["--operator", "sigstack-test", "--previous"].map(String::from));
        args.push(p(&self.etc.join("trusted_root.json")).into());
        args.extend(["--out".into(), p(&self.etc).into()]);
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

/// The year so far: the running services, the clients, and every bundle signed.
struct Year {
    o: Operator,
    c: Clients,
    who: Identity,
    dir: PathBuf,
    procs: Vec<Service>,
    signed: Vec<(PathBuf, PathBuf)>,
}

impl Year {
    /// Each signer signs a new artifact; returns how many bundles were made before.
    async fn sign(&mut self, phase: &str) -> usize {
        let before = self.signed.len();
        for s in SIGNERS {
            let name = s.replace(' ', "-");
            let artifact = self.dir.join(format!("{phase}-{name}.txt"));
            std::fs::write(&artifact, format!("signed {phase} by {s}\n")).expect("w");
            let bundle = self.dir.join(format!("{phase}-{name}.sigstore.json"));
            let ci_secret = self.o.etc.join("keys/oidc/ci-secret");
            let token = workload_token(&self.o.url("oidc"), &ci_secret).await;
            let (ok, out) = self.c.sign(s, &token, &artifact, &bundle);
            assert!(ok, "{s} signs {phase}: {out}");
            self.signed.push((artifact, bundle));
        }
        before
    }

    /// Every bundle, verified by every client: the three clients side by side, each
    /// going through the bundles in turn (a client's own TUF cache is never used by two
    /// at once).
    fn verify(&self, when: &str) {
        let (c, who, signed) = (&self.c, &self.who, &self.signed);
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

    /// Signs, then verifies everything signed so far.
    async fn sign_and_verify(&mut self, phase: &str, when: &str) {
        self.sign(phase).await;
        self.verify(when);
    }

    /// `sigstackd doctor` is green; returns its report.
    fn doctor(&self, when: &str) -> String {
        let (ok, out) = doctor(&self.o.etc.join("stack.json"));
        assert!(ok, "doctor {when}: {out}");
        out
    }

    /// Stops a service and starts it again on its (edited) configuration.
    fn restart(&mut self, name: &'static str) {
        let at = self.procs.iter().position(|s| s.name == name).expect(name);
        self.procs.remove(at).stop();
        self.start(name);
    }

    fn start(&mut self, name: &'static str) {
        self.procs
            .push(Service::start(name, &self.o.etc, &self.dir));
        let ready = format!("{}/readyz", self.o.url(name));
        crate::keyless::wait_for(&format!("{name} started again"), || get_ok(&ready));
    }

    /// The operator waits out the clients' TUF cache lifetime (a day for sigstack)
    /// before switching to what was published: here, sigstack's cache is made a day old.
    fn a_day_passes(&self) {
        let mut stack = vec![self.dir.join("home")];
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
        assert!(found > 0, "no TUF cache under {}", self.dir.display());
    }
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

/// How many of a trusted root's entries under `key` have their validity ended.
fn ended(trusted: &Value, key: &str, window: &[&str]) -> (usize, usize) {
    let all = trusted[key].as_array().cloned().unwrap_or_default();
    let ended = all
        .iter()
        .filter(|e| window.iter().fold(*e, |v, k| &v[*k])["end"].is_string())
        .count();
    (all.len(), ended)
}

pub async fn an_operators_year_keeps_every_signature_verifying() {
    let dir = temp_dir("operator");
    let o = Operator {
        etc: dir.join("etc"),
        db: fresh_pg_database(&pg_admin_url()).await,
        urls: SERVICES
            .iter()
            .map(|s| (*s, format!("http://127.0.0.1:{}", free_port())))
            .collect(),
    };
    o.init();
    // the operator's edit: the TUF service looks for new metadata every second
    let tuf_toml = std::fs::read_to_string(o.etc.join("tuf.toml")).expect("tuf.toml");
    write_private(
        &o.etc.join("tuf.toml"),
        format!("{tuf_toml}poll_secs = 1\n"),
    );
    let procs = start_all(&o.etc, &dir, &o.urls);
    let stack: Value =
        serde_json::from_slice(&std::fs::read(o.etc.join("stack.json")).expect("stack"))
            .expect("json");
    let oidc = o.url("oidc");
    let mut y = Year {
        c: Clients::new(&dir, &stack),
        who: Identity {
            identity: format!("{oidc}/jobs/ci"),
            issuer: format!("{oidc}/workload"),
        },
        o,
        dir,
        procs,
        signed: Vec::new(),
    };
    y.sign_and_verify("before", "before any rotation").await;

    rotations::intermediate(&mut y).await;
    rotations::ct_log_key(&mut y).await;
    rotations::log_key(&mut y).await;
    rotations::tsa_certificate(&mut y).await;
    let (old_pub, old_pub_bytes) = rotations::identity_provider_key(&mut y).await;
    rotations::renew_tuf_roles(&y).await;
    y.sign_and_verify("after-tuf-renewal", "after the TUF roles were renewed")
        .await;
    y.doctor("after the TUF roles were renewed");
    rotations::backup_and_restore(&mut y).await;
    rotations::a_second_log_process(&mut y).await;

    // init again, as an operator would after all this: nothing published, nothing undone
    let out = y.o.init();
    assert!(
        out.contains("checked") && !out.contains("publishing"),
        "{out}"
    );
    assert_eq!(
        std::fs::read(&old_pub).expect("old public half"),
        old_pub_bytes,
        "init overwrote the previous key's public half"
    );
    assert!(y.o.etc.join("keys/oidc/oidc-2.pub.pem").exists());
    let ca_toml = std::fs::read_to_string(y.o.etc.join("ca.toml")).expect("ca.toml");
    assert!(ca_toml.contains("ca-intermediate-2.pem"), "{ca_toml}");
    y.verify("after init ran again");
    y.doctor("after init ran again");
    for s in y.procs.drain(..) {
        s.stop();
    }
    five_years_on(&y);
}

/// Five years on (libfaketime), the services gone, only the trust files at hand: every
/// bundle of the year still verifies, each signed inside the window its keys are
/// published for — with sigstack and sigstore-python (cosign is a static Go binary, out of
/// libfaketime's reach).
fn five_years_on(y: &Year) {
    let later = "+1826 days";
    let sigstack = crate::client::Sigstack::new(&y.dir.join("five-years-on"));
    let (trusted_root, trust_config) = (
        y.o.etc.join("trusted_root.json"),
        y.o.etc.join("trust_config.json"),
    );
    let py_home = y.dir.join("five-years-on-python");
    let who = &y.who;
    let failed: Vec<String> = std::thread::scope(|scope| {
        let ours = scope.spawn(|| {
            y.signed
                .iter()
                .filter_map(|(artifact, bundle)| {
                    let o = sigstack.run_later(
                        later,
                        &[
                            "verify-blob",
                            "--trusted-root",
                            p(&trusted_root),
                            "--bundle",
                            p(bundle),
                            "--certificate-identity",
                            &who.identity,
                            "--certificate-oidc-issuer",
                            &who.issuer,
                            p(artifact),
                        ],
                    );
                    (!o.ok()).then(|| format!("sigstack on {}: {o}", bundle.display()))
                })
                .collect::<Vec<_>>()
        });
        let python = scope.spawn(|| {
            y.signed
                .iter()
                .filter_map(|(artifact, bundle)| {
                    let (ok, out) = crate::keyless::run_within(
                        Command::new("faketime")
                            .arg(later)
                            .arg(crate::keyless::venv().join("bin/sigstore"))
                            .env("HOME", &py_home)
                            .env("XDG_CACHE_HOME", py_home.join("cache"))
                            .env("XDG_DATA_HOME", py_home.join("data"))
                            .args(["--trust-config", p(&trust_config)])
                            .args(["verify", "identity", "--offline", "--bundle", p(bundle)])
                            .args(["--cert-identity", &who.identity])
                            .args(["--cert-oidc-issuer", &who.issuer, p(artifact)]),
                        Duration::from_secs(120),
                    );
                    (!ok).then(|| format!("sigstore-python on {}: {out}", bundle.display()))
                })
                .collect::<Vec<_>>()
        });
        [ours, python]
            .into_iter()
            .flat_map(|t| t.join().expect("a verifier thread"))
            .collect()
    });
    assert!(failed.is_empty(), "five years on:\n{}", failed.join("\n"));
}
