//! `sigstackd monitor` against a running dev stack: watched identities signing with
//! sigstack (Rekor v1 and v2) and cosign v3 are reported by webhook (signed with the shared
//! secret) and e-mail (aiosmtpd) while 100 other entries a second go into the logs; a
//! delivery the receiver refuses is retried; a restart reports nothing twice and catches
//! up on what was signed while it was down.

use crate::cosign::Cosign;
use crate::keyless::{dev_stack, workspace};
use crate::monitor_kit::*;
use crate::sigstack_cli::p;
use crate::support::*;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn hmac_ok(secret: &[u8], g: &Got) -> bool {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let Some(hex_sig) = g.signature.strip_prefix("sha256=") else {
        return false;
    };
    let mut signed = format!("{}.{}.", g.delivery, g.timestamp).into_bytes();
    signed.extend_from_slice(&g.body);
    hex::decode(hex_sig).is_ok_and(|sig| aws_lc_rs::hmac::verify(&key, &signed, &sig).is_ok())
}

pub async fn watched_identities_are_reported_once() {
    let dir = temp_dir("monitor");
    let stack_dir = dir.join("stack");
    let (_stack, stack) = dev_stack(&stack_dir, None);
    let s = |ptr: &str| stack_str(&stack, ptr);
    let hook = Hook::start();
    let mail = MailSink::start(&dir);
    let secret = b"a shared secret of the webhook receiver";
    write_private(&dir.join("hook-secret"), secret);
    std::fs::write(
        dir.join("watch.yaml"),
        "monitoredValues:\n  certIdentities:\n    - certSubject: ^watched@example\\.org$\n      issuers: [\"^http://127\\\\.0\\\\.0\\\\.1:\"]\n",
    )
    .expect("watch");
    let listen = format!("127.0.0.1:{}", free_port());
    let cfg = monitor_config(
        &dir,
        &stack,
        &listen,
        &format!(
            "watch = \"{w}\"\n[webhook]\nurl = \"{h}\"\nsecret_file = \"{sf}\"\n[smtp]\nserver = \"{m}\"\nfrom = \"monitor@example.org\"\nto = [\"secops@example.org\"]\n[explorer]\npublic_url = \"http://{listen}\"\n\n[[log]]\nname = \"rekor-v2\"\nkind = \"tiles\"\nurl = \"{v2}\"\n",
            w = dir.join("watch.yaml").display(),
            h = hook.url,
            sf = dir.join("hook-secret").display(),
            m = mail.addr,
            v2 = s("/services/log_v2/url"),
        ),
    );
    let (mut monitor, _) = start_monitor(&dir, &cfg);
    let (stop, sent) = background_load(s("/services/log/url"), s("/services/log_v2/url"), 100);
    // the load is on before anyone watched signs
    tokio::time::sleep(Duration::from_secs(3)).await;

    let cli = sigstack_on(&dir, &stack);
    let artifact = dir.join("release.tar");
    std::fs::write(&artifact, b"a release someone signed in my name\n").expect("artifact");
    let watched = token(&stack_dir, "watched@example.org");
    let mut latencies = Vec::new();
    let mut expected = Vec::new();
    // sigstack through the signing config (the v2 log) and with --rekor-version 1
    for (name, log, extra) in [
        ("sigstack-v2", "rekor-v2", vec![]),
        ("sigstack-v1", "rekor", vec!["--rekor-version", "1"]),
    ] {
        let bundle = dir.join(format!("{name}.sigstore.json"));
        let mut args = vec![
            "sign-blob",
            "--yes",
            "--identity-token",
            &watched,
            "--bundle",
            p(&bundle),
        ];
        args.extend(extra);
        args.push(p(&artifact));
        let o = cli.run(&args);
        assert!(o.ok(), "{name}: {o}");
        let signed = Instant::now();
        let index = bundle_index(&bundle);
        let g = hook.wait(
            &format!("for {name}'s entry {log} #{index}"),
            PATIENCE,
            |g| {
                let v = g.json();
                v["event"] == "match" && v["log"] == log && v["index"] == index
            },
        );
        let mailed = mail.wait(
            &format!("for {name}"),
            PATIENCE,
            &[
                "watched@example.org",
                &format!("Log: {log}\n"),
                &format!("Index: {index}\n"),
            ],
        );
        latencies.push((name.to_string(), g.at - signed, mailed - signed));
        expected.push((log.to_string(), index));
        let v = g.json();
        assert_eq!(v["certSubject"], "watched@example.org", "{v}");
        assert_eq!(v["matchedType"], "certSubject", "{v}");
        assert_eq!(v["issuer"], s("/services/oidc/url"), "{v}");
        assert_eq!(
            v["digest"].as_str().expect("digest"),
            format!(
                "sha256:{}",
                hex::encode(sigstack_crypto::sha256(
                    &std::fs::read(&artifact).expect("a")
                ))
            ),
        );
        assert!(
            v["entryUrl"]
                .as_str()
                .is_some_and(|u| u.ends_with(&format!("/log/{log}/entry/{index}"))),
            "{v}"
        );
        assert!(
            hmac_ok(secret, &g),
            "the delivery's signature verifies with the shared secret"
        );
        assert_eq!(g.event, "match", "X-Sigstack-Event");
        assert!(!hmac_ok(b"another secret of the same length....", &g));
        let mut replayed = g.clone();
        replayed.delivery = format!("{}0", g.delivery);
        assert!(!hmac_ok(secret, &replayed), "the delivery ID is signed");
    }
    // cosign v3 signing through the stack's signing config
    let cosign = Cosign::v3(&dir.join("cosign-home"));
    let o = cosign.run(&[
        "initialize",
        "--mirror",
        &s("/services/tuf/url"),
        "--root",
        &s("/services/tuf/root"),
    ]);
    assert!(o.ok(), "cosign initialize: {o}");
    let bundle = dir.join("cosign.sigstore.json");
    let o = cosign.run(&[
        "sign-blob",
        "--yes",
        "--identity-token",
        &watched,
        "--bundle",
        p(&bundle),
        p(&artifact),
    ]);
    assert!(o.ok(), "cosign v3 sign-blob: {o}");
    let signed = Instant::now();
    let index = bundle_index(&bundle);
    let g = hook.wait("for cosign v3's entry", PATIENCE, |g| {
        let v = g.json();
        v["event"] == "match" && v["log"] == "rekor-v2" && v["index"] == index
    });
    let mailed = mail.wait(
        "for cosign v3",
        PATIENCE,
        &[
            "watched@example.org",
            "Log: rekor-v2\n",
            &format!("Index: {index}\n"),
        ],
    );
    latencies.push(("cosign-v3".into(), g.at - signed, mailed - signed));
    expected.push(("rekor-v2".into(), index));

    // someone not watched signs: no match
    let other = dir.join("other.sigstore.json");
    let o = cli.run(&[
        "sign-blob",
        "--yes",
        "--identity-token",
        &token(&stack_dir, "someone@example.org"),
        "--bundle",
        p(&other),
        p(&artifact),
    ]);
    assert!(o.ok(), "{o}");
    let other_index = bundle_index(&other);

    // a restart: down while the watched identity signs again, and the receiver refuses
    // the first two attempts afterwards
    monitor.kill();
    let while_down = dir.join("while-down.sigstore.json");
    let o = cli.run(&[
        "sign-blob",
        "--yes",
        "--identity-token",
        &watched,
        "--bundle",
        p(&while_down),
        p(&artifact),
    ]);
    assert!(o.ok(), "{o}");
    let down_index = bundle_index(&while_down);
    expected.push(("rekor-v2".into(), down_index));
    hook.fail_next(2);
    let (_monitor, url) = start_monitor(&dir, &cfg);
    hook.wait(
        "for the entry signed while the monitor was down",
        PATIENCE,
        |g| {
            let v = g.json();
            v["event"] == "match" && v["index"] == down_index && v["log"] == "rekor-v2"
        },
    );
    stop.store(true, Ordering::SeqCst);
    // everything read and verified up to the logs' current size, then no more deliveries
    let v2_size = text_of(&format!("{}/checkpoint", s("/services/log_v2/url")))
        .await
        .lines()
        .nth(1)
        .and_then(|l| l.parse::<u64>().ok())
        .expect("size");
    verified(&url, "rekor-v2", v2_size).await;
    // every watched entry's report, and its CT entry's, has arrived (a refused delivery
    // waits for its retry); then a moment more, in which nothing else may come
    let reports = |h: &Hook| {
        h.got()
            .iter()
            .filter(|g| g.json()["event"] == "match")
            .count()
    };
    let deadline = Instant::now() + PATIENCE;
    while reports(&hook) < expected.len() * 2
        || mail
            .messages()
            .iter()
            .filter(|m| m.contains("watched@example.org"))
            .count()
            < expected.len() * 2
    {
        assert!(
            Instant::now() < deadline,
            "not every report arrived: {:?}",
            hook.got()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let matches: Vec<(String, u64)> = hook
        .got()
        .iter()
        .map(Got::json)
        .filter(|v| v["event"] == "match")
        .map(|v| {
            (
                v["log"].as_str().unwrap_or("").to_string(),
                v["index"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let mut sorted: Vec<(String, u64)> = matches
        .iter()
        .filter(|(l, _)| l != "ctlog")
        .cloned()
        .collect();
    sorted.sort();
    let mut want = expected.clone();
    want.sort();
    assert_eq!(
        sorted, want,
        "each watched entry reported exactly once, across the restart"
    );
    assert!(
        !matches
            .iter()
            .any(|(l, i)| l == "rekor-v2" && *i == other_index)
    );
    // each watched signing's certificate is in the CT log too: reported once there
    let mut ct: Vec<u64> = matches
        .iter()
        .filter(|(l, _)| l == "ctlog")
        .map(|(_, i)| *i)
        .collect();
    ct.sort();
    ct.dedup();
    assert_eq!(
        ct.len(),
        expected.len(),
        "one CT match per watched certificate: {matches:?}"
    );
    assert_eq!(
        matches.len(),
        expected.len() * 2,
        "nothing reported twice: {matches:?}"
    );
    let deliveries: std::collections::HashSet<String> =
        hook.got().iter().map(|g| g.delivery.clone()).collect();
    assert_eq!(deliveries.len(), hook.got().len(), "no delivery ID twice");
    // one e-mail per watched entry, none for the other identity
    let mails = mail.messages();
    assert_eq!(
        mails
            .iter()
            .filter(|m| m.contains("watched@example.org"))
            .count(),
        expected.len() * 2,
        "one e-mail per watched entry (its log entry and its CT entry)"
    );
    assert!(!mails.iter().any(|m| m.contains("someone@example.org")));
    let text = text_of(&format!("{url}/metrics")).await;
    assert!(
        text.contains("sigstack_monitor_notifications_total{outcome=\"failed\"} 2"),
        "the two refused attempts are counted:\n{text}"
    );

    let report: Vec<String> = latencies
        .iter()
        .map(|(n, w, m)| {
            format!(
                "{n}: webhook {:.0} ms, e-mail {:.0} ms",
                w.as_secs_f64() * 1e3,
                m.as_secs_f64() * 1e3
            )
        })
        .collect();
    let report = format!(
        "monitor notification latency (signing command done -> delivery received), {} background entries at 100/s:\n{}\n",
        sent.load(Ordering::SeqCst),
        report.join("\n")
    );
    eprintln!("{report}");
    let artifacts = workspace().join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).ok();
    std::fs::write(artifacts.join("monitor-latency.txt"), report).ok();
}
