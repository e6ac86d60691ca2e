//! `sigstackd init` on day 2: run again on a stack in production, with the offline
//! directory away, on a several-keyholder ceremony, and on a stack an older init laid out.

use crate::client::p;
use crate::keyless::run;
use crate::support::*;
use std::process::Command;

fn sigstackd(args: &[&str]) -> (bool, String) {
    run(Command::new(env!("CARGO_BIN_EXE_sigstackd")).args(args))
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `init` run again on a stack in production: it keeps the operator's edits and keys,
/// never makes a root or key behind their back (the offline keys are away), takes trust
/// from what TUF published, and publishes only what the stack uses and trust lacks — and
/// only with the targets key at hand.
pub fn init_again_keeps_what_the_operator_did() {
    let dir = temp_dir("init-again");
    let etc = dir.join("etc");
    let (keys, public, offline) = (etc.join("keys"), etc.join("public"), etc.join("offline"));
    let db = format!("sqlite://{}", dir.join("db.sqlite").display());
    let init = |extra: &[&str]| {
        let mut args = vec!["init", "--dir", p(&etc), "--database-url", &db];
        args.extend_from_slice(extra);
        sigstackd(&args)
    };
    let (ok, out) = init(&[]);
    assert!(ok && out.contains("prepared"), "init: {out}");
    let read = |f: &str| std::fs::read(etc.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    let text = |f: &str| String::from_utf8(read(f)).expect("utf-8");
    // the identity provider's public key, for `previous_keys` after a rotation
    assert!(text("keys/oidc/oidc.pub.pem").contains("BEGIN PUBLIC KEY"));

    // the operator edits a setting, rotates the intermediate and points the CA at it
    let oidc = text("oidc.toml").replacen("signing_key", "token_ttl_secs = 123\nsigning_key", 1);
    write_private(&etc.join("oidc.toml"), oidc);
    let (ok, out) = sigstackd(&[
        "ca",
        "new-intermediate",
        "--root-key",
        p(&offline.join("ca-root.pem")),
        "--chain",
        p(&public.join("ca-chain.pem")),
        "--out-key",
        p(&keys.join("ca/ca-intermediate-2.pem")),
        "--out-chain",
        p(&public.join("ca-chain-2.pem")),
    ]);
    assert!(ok, "{out}");
    let ca = text("ca.toml")
        .replace("ca-intermediate.pem", "ca-intermediate-2.pem")
        .replace("ca-chain.pem", "ca-chain-2.pem");
    write_private(&etc.join("ca.toml"), ca);
    // production: the offline directory leaves the machine
    let away = dir.join("away");
    let go_away = || std::fs::rename(&offline, &away).expect("move offline");
    let come_back = || std::fs::rename(&away, &offline).expect("bring back");
    go_away();
    let trusted_before = read("trusted_root.json");

    // the new chain is not in the published trust, and the targets key is away: refused,
    // naming the commands; no root is made
    let (ok, out) = init(&[]);
    assert!(
        !ok && out.contains("CA chain") && out.contains("sigstackd trust export"),
        "{out}"
    );
    assert!(
        !offline.exists(),
        "init made something offline (a root, a password)"
    );
    assert_eq!(read("trusted_root.json"), trusted_before);

    // with the targets key back for this run: a new targets version adds the new chain,
    // the old one stays
    come_back();
    let (ok, out) = init(&[]);
    assert!(
        ok && out.contains("publishing a new targets version") && out.contains("CA chain"),
        "{out}"
    );
    go_away();
    let trusted: serde_json::Value =
        serde_json::from_slice(&read("trusted_root.json")).expect("json");
    let cas = trusted["certificateAuthorities"].as_array().expect("cas");
    assert_eq!(cas.len(), 2, "{trusted}");
    assert!(!offline.exists(), "init made something offline");

    // once more, with another log URL on the command line: nothing to publish, every
    // file kept, the difference reported
    let published = read("trusted_root.json");
    let key_files = |d: &std::path::Path| {
        let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(d)
            .expect("keys")
            .map(|e| {
                let e = e.expect("entry");
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).expect("read"),
                )
            })
            .collect();
        v.sort();
        v
    };
    let keys_before = key_files(&keys.join("ca"));
    let (ok, out) = init(&["--log-url", "http://127.0.0.1:1"]);
    assert!(
        ok && out.contains("checked") && !out.contains("publishing"),
        "{out}"
    );
    assert!(out.contains("log.toml: kept public_url"), "{out}");
    assert_eq!(read("trusted_root.json"), published);
    assert_eq!(
        key_files(&keys.join("ca")),
        keys_before,
        "a key file changed"
    );
    assert!(text("ca.toml").contains("ca-intermediate-2.pem"));
    assert!(text("oidc.toml").contains("token_ttl_secs = 123"));
    assert!(text("log.toml").contains("http://localhost:3000"));
    let stack: serde_json::Value = serde_json::from_slice(&read("stack.json")).expect("json");
    assert!(
        stack["services"]["ca"]["chain"]
            .as_str()
            .is_some_and(|c| c.ends_with("ca-chain-2.pem")),
        "{stack}"
    );

    // --reconfigure: the URL flags go into the files and a new targets version names them
    come_back();
    let (ok, out) = init(&["--reconfigure", "--log-url", "http://127.0.0.1:1"]);
    assert!(
        ok && out.contains("publishing a new targets version")
            && out.contains("is now http://127.0.0.1:1"),
        "{out}"
    );
    go_away();
    assert!(text("log.toml").contains("public_url = \"http://127.0.0.1:1\""));
    assert!(text("log.toml").contains("listen = \"0.0.0.0:1\""));
    assert!(text("ca.toml").contains("tlog_url = \"http://127.0.0.1:1\""));
    assert!(
        text("ca.toml").contains("ca-intermediate-2.pem"),
        "key paths kept"
    );
    let trusted: serde_json::Value =
        serde_json::from_slice(&read("trusted_root.json")).expect("json");
    assert_eq!(
        trusted["tlogs"][0]["baseUrl"], "http://127.0.0.1:1",
        "{trusted}"
    );
    assert_eq!(
        trusted["certificateAuthorities"].as_array().map(Vec::len),
        Some(2)
    );
    let signing: serde_json::Value =
        serde_json::from_slice(&read("signing_config.v0.2.json")).expect("json");
    let v1 = signing["rekorTlogUrls"]
        .as_array()
        .and_then(|l| l.iter().find(|s| s["majorApiVersion"] == 1))
        .expect("the v1 log in the signing config");
    assert_eq!(v1["url"], "http://127.0.0.1:1", "{signing}");

    // a key gone: refused, never made anew
    let log_key = read("keys/log/log.pem");
    std::fs::remove_file(keys.join("log/log.pem")).expect("rm");
    let (ok, out) = init(&[]);
    assert!(
        !ok && out.contains("log.pem") && out.contains("never makes a new key"),
        "{out}"
    );
    assert!(!keys.join("log/log.pem").exists());
    write_private(&keys.join("log/log.pem"), &log_key);

    // a key other users can read: the service refuses to start, saying how to fix it
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let set = |mode| {
            std::fs::set_permissions(
                keys.join("log/log.pem"),
                std::fs::Permissions::from_mode(mode),
            )
            .expect("chmod")
        };
        set(0o644);
        let (ok, out) = crate::keyless::run_within(
            Command::new(env!("CARGO_BIN_EXE_sigstackd"))
                .args(["log", "--config", p(&etc.join("log.toml"))])
                .env("SIGSTACK_LOG_LISTEN", format!("127.0.0.1:{}", free_port())),
            std::time::Duration::from_secs(30),
        );
        assert!(!ok && out.contains("chmod 600"), "{out}");
        set(0o600);
    }

    // --owner: the directory goes to the services' user, the offline keys do not
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let root = effective_uid() == 0;
        let (ok, out) = init(&["--owner", "4242:4243"]);
        if root {
            assert!(ok, "{out}");
            for f in ["log.toml", "keys/log/log.pem", "keys/log", "stack.json"] {
                let m = std::fs::metadata(etc.join(f)).expect(f);
                assert_eq!((m.uid(), m.gid()), (4242, 4243), "{f}");
            }
            come_back();
            let (ok, out) = init(&["--owner", "4242"]);
            assert!(ok, "{out}");
            for f in [
                "tuf-ceremony/keys/targets-1.pem",
                "ca-root.pem",
                "admin-password",
            ] {
                let m = std::fs::metadata(offline.join(f)).expect(f);
                assert_ne!(m.uid(), 4242, "{f}, meant to go offline, was given away");
            }
        } else {
            assert!(!ok && out.contains("run init as root"), "{out}");
        }
    }
}

/// The effective user ID (from `id -u`).
fn effective_uid() -> u32 {
    let (ok, out) = run(Command::new("id").arg("-u"));
    assert!(ok, "{out}");
    out.trim().parse().expect("uid")
}

/// `init --offline-dir` with a several-keyholder root: the ceremony it holds is laid out
/// as `sigstackd tuf init` lays one out, and the offline TUF commands take it as it is —
/// here a root renewal signed by two of the three root keys.
pub fn init_ceremony_is_the_tuf_commands_layout() {
    let dir = temp_dir("init-ceremony");
    let (etc, offline) = (dir.join("etc"), dir.join("usb"));
    let db = format!("sqlite://{}", dir.join("db.sqlite").display());
    let init_on = |db: &str, extra: &[&str]| {
        let mut args = vec!["init", "--dir", p(&etc), "--offline-dir", p(&offline)];
        args.extend(["--database-url", db]);
        args.extend_from_slice(extra);
        sigstackd(&args)
    };
    let (ok, out) = init_on(&db, &["--tuf-root-keys", "3", "--tuf-root-threshold", "2"]);
    assert!(ok, "init: {out}");
    assert!(
        out.contains(p(&offline)),
        "init names the offline directory: {out}"
    );
    // nothing meant for offline stays in the services' directory
    assert!(!etc.join("offline").exists() && !etc.join("tuf-ceremony").exists());
    let ceremony = offline.join("tuf-ceremony");
    for f in ["root-1.pem", "root-2.pem", "root-3.pem", "targets-1.pem"] {
        assert!(ceremony.join("keys").join(f).exists(), "{f}");
    }
    for f in ["ca-root.pem", "tsa-root.pem", "admin-password"] {
        assert!(offline.join(f).exists(), "{f}");
    }
    let root: serde_json::Value =
        serde_json::from_slice(&std::fs::read(etc.join("public/1.root.json")).expect("root"))
            .expect("json");
    assert_eq!(root["signed"]["roles"]["root"]["threshold"], 2, "{root}");
    assert_eq!(
        root["signed"]["roles"]["root"]["keyids"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    let staged = dir.join("staged");
    let key = |n: u32| ceremony.join(format!("keys/root-{n}.pem"));
    let stage = |signers: &[u32]| {
        let mut args = vec![
            "tuf".to_string(),
            "stage-root".into(),
            "--database-url".into(),
            db.clone(),
            "--out".into(),
            p(&staged).into(),
        ];
        for n in signers {
            args.extend(["--sign-key".to_string(), p(&key(*n)).into()]);
        }
        let (ok, out) = sigstackd(&as_strs(&args));
        assert!(ok, "stage-root: {out}");
    };
    let publish = || {
        sigstackd(&[
            "tuf",
            "publish",
            "--database-url",
            &db,
            p(&staged.join("2.root.json")),
        ])
    };
    // one keyholder's signature is not enough; two are
    stage(&[1]);
    let (ok, out) = publish();
    assert!(
        !ok,
        "a root signed by one of three keys (threshold 2) was published: {out}"
    );
    stage(&[1, 3]);
    let (ok, out) = publish();
    assert!(ok, "publish: {out}");
    // trust files that take trust away from clients (a stale --previous moved the log
    // key's start; --tsa-url left out) are refused when staged, each loss named
    let trust = dir.join("trust");
    std::fs::create_dir_all(&trust).expect("dir");
    let mut root: serde_json::Value =
        serde_json::from_slice(&std::fs::read(etc.join("trusted_root.json")).expect("r"))
            .expect("json");
    root["tlogs"][0]["publicKey"]["validFor"]["start"] = "2099-01-01T00:00:00Z".into();
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(etc.join("signing_config.v0.2.json")).expect("r"))
            .expect("json");
    config["tsaUrls"] = serde_json::json!([]);
    std::fs::write(trust.join("trusted_root.json"), root.to_string()).expect("w");
    std::fs::write(trust.join("signing_config.v0.2.json"), config.to_string()).expect("w");
    let targets_key = ceremony.join("keys/targets-1.pem");
    let stage_targets = |extra: &[&str]| {
        let mut args = vec!["tuf", "stage-targets", "--database-url", &db];
        args.extend(["--trust-dir", p(&trust), "--out", p(&staged)]);
        args.extend(["--key", p(&targets_key)]);
        args.extend_from_slice(extra);
        sigstackd(&args)
    };
    let (ok, out) = stage_targets(&[]);
    assert!(
        !ok && out.contains("would be valid from 2099")
            && out.contains("signing config would name no timestamp authority")
            && out.contains("--allow-trust-loss"),
        "{out}"
    );
    let (ok, out) = stage_targets(&["--allow-trust-loss"]);
    assert!(ok && out.contains("WARNING (--allow-trust-loss)"), "{out}");
    // a re-run with the offline directory away: nothing needed from it
    std::fs::rename(&offline, dir.join("away")).expect("away");
    // a file planted at the name init writes through is replaced, never followed
    let victim = dir.join("victim");
    std::fs::write(&victim, "untouched").expect("w");
    #[cfg(unix)]
    std::os::unix::fs::symlink(&victim, etc.join("public/1.root.tmp")).expect("link");
    let (ok, out) = init_on(&db, &[]);
    assert!(ok && out.contains("checked"), "init again: {out}");
    assert!(!offline.exists(), "init made something offline");
    assert_eq!(std::fs::read_to_string(&victim).expect("r"), "untouched");
    let public_root = etc.join("public/1.root.json");
    assert!(!public_root.is_symlink());
    // a database without this stack's repository (a typo, a lost volume), the ceremony
    // away: refused, where it would otherwise have made a new root
    let before = std::fs::read(&public_root).expect("root");
    let other = format!("sqlite://{}", dir.join("other.sqlite").display());
    let (ok, out) = init_on(&other, &[]);
    assert!(!ok && out.contains("is not in this database"), "{out}");
    assert!(!offline.exists(), "init made something offline");
    assert_eq!(std::fs::read(&public_root).expect("root"), before);
    // an offline directory within the services' reach: refused before anything is written
    for inside in [
        dir.join("fresh"),
        dir.join("fresh/keys/ca/off"),
        dir.join("fresh/public/off"),
    ] {
        let fresh = dir.join("fresh");
        let (ok, out) = sigstackd(&[
            "init",
            "--dir",
            p(&fresh),
            "--offline-dir",
            p(&inside),
            "--database-url",
            &format!("sqlite://{}", dir.join("fresh.sqlite").display()),
        ]);
        assert!(!ok && out.contains("within the services' reach"), "{out}");
        assert!(!fresh.exists(), "init wrote before refusing");
    }
}

/// A stack prepared by an older init (every key in `keys/`, the ceremony in
/// `tuf-ceremony/`) keeps its layout: a configuration file moved away is written again
/// naming the keys where they are, and nothing is made or published.
pub fn init_keeps_an_older_layout() {
    let dir = temp_dir("init-older");
    let etc = dir.join("etc");
    let db = format!("sqlite://{}", dir.join("db.sqlite").display());
    let init = || sigstackd(&["init", "--dir", p(&etc), "--database-url", &db]);
    let (ok, out) = init();
    assert!(ok, "init: {out}");
    // the older layout, made from this one
    let keys = etc.join("keys");
    let mv = |from: std::path::PathBuf, to: std::path::PathBuf| {
        std::fs::rename(&from, &to).unwrap_or_else(|e| panic!("{}: {e}", from.display()))
    };
    for s in ["log", "ctlog", "ca", "oidc", "tuf", "tsa"] {
        for e in std::fs::read_dir(keys.join(s)).expect("dir").flatten() {
            mv(e.path(), keys.join(e.file_name()));
        }
        std::fs::remove_dir(keys.join(s)).expect("rmdir");
    }
    for e in std::fs::read_dir(etc.join("public"))
        .expect("dir")
        .flatten()
    {
        if e.file_name() != "1.root.json" {
            mv(e.path(), keys.join(e.file_name()));
        }
    }
    std::fs::remove_file(etc.join("public/1.root.json")).expect("rm");
    std::fs::remove_dir(etc.join("public")).expect("rmdir");
    for f in ["ca-root.pem", "tsa-root.pem"] {
        mv(etc.join("offline").join(f), keys.join(f));
    }
    mv(etc.join("offline/tuf-ceremony"), etc.join("tuf-ceremony"));
    mv(
        etc.join("offline/admin-password"),
        etc.join("admin-password"),
    );
    mv(keys.join("ci-secret"), etc.join("ci-secret"));
    std::fs::remove_dir(etc.join("offline")).expect("rmdir");
    let older = |text: String| {
        ["log", "ctlog", "ca", "oidc", "tuf", "tsa"]
            .iter()
            .fold(text, |t, s| t.replace(&format!("/keys/{s}/"), "/keys/"))
            .replace("/public/", "/keys/")
            .replace("/keys/ci-secret", "/ci-secret")
    };
    for f in [
        "log.toml",
        "ctlog.toml",
        "ca.toml",
        "oidc.toml",
        "tuf.toml",
        "tsa.toml",
    ] {
        let text = std::fs::read_to_string(etc.join(f)).expect(f);
        write_private(&etc.join(f), older(text));
    }
    let (ok, out) = init();
    assert!(
        ok && out.contains("checked") && !out.contains("publishing"),
        "{out}"
    );
    assert!(
        out.contains("tuf-ceremony/keys"),
        "names the older offline material: {out}"
    );
    // a configuration file moved away comes back naming the keys where they are
    for f in ["log.toml", "ca.toml"] {
        let kept = std::fs::read_to_string(etc.join(f)).expect(f);
        mv(etc.join(f), dir.join(f));
        let (ok, out) = init();
        assert!(
            ok && !out.contains("publishing"),
            "{f} written again: {out}"
        );
        let paths = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| l.contains("/keys/"))
                .map(String::from)
                .collect()
        };
        assert_eq!(
            paths(&std::fs::read_to_string(etc.join(f)).expect(f)),
            paths(&kept),
            "{f}"
        );
    }
    for made in ["keys/log", "keys/ca", "offline", "public/ca-chain.pem"] {
        assert!(!etc.join(made).exists(), "init made {made}");
    }
}
