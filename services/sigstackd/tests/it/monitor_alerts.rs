//! The monitor's audit against a lying log: a proxy in front of the tiled log serves a
//! second tree of a size already verified (a fork), an older checkpoint (a rollback), one
//! signed by another key, and a signed head its entries do not make; each raises its
//! alert once with the evidence, nothing of the lie is kept, and the honest log is
//! followed again afterwards.

use crate::keyless::dev_stack;
use crate::monitor_kit::*;
use crate::support::*;
use std::time::Duration;

/// A checkpoint of the tiled log with `root` at `size`, signed with `key`.
fn forged(origin: &str, size: u64, root: [u8; 32], key: &sigstack_crypto::Ed25519Signer) -> String {
    sigstack_log::checkpoint::Checkpoint {
        origin: origin.into(),
        size,
        root,
    }
    .sign_ed25519(origin, key)
    .expect("sign")
}

pub async fn a_forked_log_raises_an_alert_with_both_checkpoints() {
    let dir = temp_dir("monitor-fork");
    let stack_dir = dir.join("stack");
    let (_stack, stack) = dev_stack(&stack_dir, None);
    let s = |ptr: &str| stack_str(&stack, ptr);
    let v2 = s("/services/log_v2/url");
    let proxy = Proxy::start(&v2);
    let hook = Hook::start();
    write_private(&dir.join("hook-secret"), b"0123456789abcdef0123456789");
    let listen = format!("127.0.0.1:{}", free_port());
    let cfg = monitor_config(
        &dir,
        &stack,
        &listen,
        &format!(
            "[webhook]\nurl = \"{}\"\nsecret_file = \"{}\"\n\n[[log]]\nname = \"rekor-v2\"\nkind = \"tiles\"\nurl = \"{}\"\ntrusted_url = \"{v2}\"\n",
            hook.url,
            dir.join("hook-secret").display(),
            proxy.url
        ),
    );
    // a log the trusted root does not name: refused at start, naming it
    let wrong = cfg
        .replace(&proxy.url, "http://127.0.0.1:9")
        .replace(&format!("trusted_url = \"{v2}\"\n"), "");
    std::fs::write(dir.join("wrong.toml"), &wrong).expect("w");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sigstackd"))
        .args(["monitor", "-c"])
        .arg(dir.join("wrong.toml"))
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("names no tiled, Rekor v2 log at http://127.0.0.1:9"),
        "{err}"
    );
    let (_monitor, url) = start_monitor(&dir, &cfg);
    let key = Artifacts::new();
    let append = |n: u64| {
        let (v2, key) = (v2.clone(), &key);
        async move {
            for i in 0..n {
                let r = http()
                    .post(format!("{v2}/api/v2/log/entries"))
                    .json(&v2_request(
                        key,
                        format!("entry {i} {}", rand::random::<u64>()).as_bytes(),
                    ))
                    .send()
                    .await
                    .expect("post");
                assert!(r.status().is_success(), "{}", r.status());
            }
        }
    };
    // the log's checkpoint once it covers `at_least` entries (it serves what its witness
    // cosigned, which may trail the appends a moment)
    let v2_cp = v2.clone();
    let checkpoint = |at_least: u64| {
        let v2 = v2_cp.clone();
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            loop {
                let note = text_of(&format!("{v2}/checkpoint")).await;
                let size: u64 = note
                    .lines()
                    .nth(1)
                    .and_then(|l| l.parse().ok())
                    .expect("size");
                if size >= at_least {
                    return (note, size);
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "the log's checkpoint stays at {size}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    append(3).await;
    let (old_note, old_size) = checkpoint(3).await;
    verified(&url, "rekor-v2", old_size).await;
    append(5).await;
    let (note, size) = checkpoint(old_size + 5).await;
    verified(&url, "rekor-v2", size).await;
    let origin = note.lines().next().expect("origin").to_string();
    let log_key =
        sigstack_crypto::Ed25519Signer::load(&stack_dir.join("keys/log-v2.pem")).expect("key");

    let alert = |kind: &'static str| {
        let hook = &hook;
        move || {
            hook.wait(&format!("of a {kind} alert"), PATIENCE, |g| {
                let v = g.json();
                v["event"] == "alert" && v["kind"] == kind
            })
            .json()
        }
    };
    // a second tree of the same size, signed with the log's own key: a fork
    let fork = forged(&origin, size, rand::random(), &log_key);
    proxy.serve_checkpoint(Some(fork.clone()));
    let v = alert("fork")();
    assert_eq!(v["evidence"]["served"], fork.as_str(), "{v}");
    // the checkpoint verified before (its body: witnesses may have cosigned it anew since)
    let body: String = note.lines().take(3).map(|l| format!("{l}\n")).collect();
    assert!(
        v["evidence"]["verified"]
            .as_str()
            .is_some_and(|t| t.starts_with(&body)),
        "{v}"
    );
    assert_eq!(v["log"], "rekor-v2");
    // the same evidence again is not a new alert
    tokio::time::sleep(Duration::from_millis(800)).await;
    let forks = |h: &Hook| {
        h.got()
            .iter()
            .filter(|g| g.json()["kind"] == "fork")
            .count()
    };
    assert_eq!(forks(&hook), 1, "one alert per piece of evidence");
    // an older checkpoint the log really signed: a rollback
    proxy.serve_checkpoint(Some(old_note.clone()));
    let v = alert("rollback")();
    assert_eq!(v["evidence"]["served"], old_note.as_str(), "{v}");
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains(&old_size.to_string())),
        "{v}"
    );
    // a bigger tree signed by someone else's key
    let stranger = sigstack_crypto::Ed25519Signer::generate();
    let bad = forged(&origin, size + 10, rand::random(), &stranger);
    proxy.serve_checkpoint(Some(bad.clone()));
    let v = alert("unverified-checkpoint")();
    assert_eq!(v["evidence"]["served"], bad.as_str(), "{v}");
    // a variation of the same trouble is not a new alert until the log verifies again
    let bad2 = forged(&origin, size + 11, rand::random(), &stranger);
    proxy.serve_checkpoint(Some(bad2));
    tokio::time::sleep(Duration::from_millis(800)).await;
    let unverified = |h: &Hook| {
        h.got()
            .iter()
            .filter(|g| g.json()["kind"] == "unverified-checkpoint")
            .count()
    };
    assert_eq!(
        unverified(&hook),
        1,
        "one alert per episode, however the lie varies"
    );
    // the honest log again: followed and verified further
    proxy.serve_checkpoint(None);
    append(1).await;
    verified(&url, "rekor-v2", size + 1).await;
    // a bigger tree signed by the log's key whose entries do not make its root: the
    // rebuilt tree differs, a fork too, and nothing of it is kept
    // (the lie is served before the entries exist, so the monitor cannot have verified
    // the honest checkpoint of that size first)
    let real_size = size + 3;
    let lie = forged(&origin, real_size, rand::random(), &log_key);
    proxy.serve_checkpoint(Some(lie.clone()));
    append(2).await;
    hook.wait("of the rebuilt tree's fork alert", PATIENCE, |g| {
        let v = g.json();
        v["kind"] == "fork"
            && v["evidence"]["served"] == lie.as_str()
            && v["evidence"]["computedRoot"].is_string()
    });
    assert_eq!(
        gauge(&url, "sigstack_monitor_entries_read", "rekor-v2").await,
        size + 1,
        "the entries of a head that does not verify are not kept"
    );
    // the alerts are on the explorer's page, and the honest log is followed again
    let page = text_of(&format!("{url}/alerts")).await;
    for kind in ["fork", "rollback", "unverified-checkpoint"] {
        assert!(
            page.contains(kind),
            "the alerts page shows the {kind} alert"
        );
    }
    proxy.serve_checkpoint(None);
    verified(&url, "rekor-v2", real_size).await;
    let metrics = text_of(&format!("{url}/metrics")).await;
    assert!(metrics.contains("sigstack_monitor_alerts 4"), "{metrics}");
}
