//! The red-team cases of the attacker's review, each against the running stack: slow and
//! idle clients (headers that never finish, bodies that never arrive) must not stall any
//! service or hold the log's submission slots.

use crate::keyless::dev_stack;
use crate::support::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use sigstack_crypto::{Curve, FileSigner, Signer};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// More than the log's submission slots (512).
const SLOW_BODIES: usize = 520;

fn host_port(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

/// Reads until the peer closes (or sends something and closes); `None` if it is still
/// open after `wait`.
fn closed_within(s: &mut TcpStream, wait: Duration) -> Option<String> {
    s.set_read_timeout(Some(wait)).expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(String::from_utf8_lossy(&got).into_owned()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None;
            }
            Err(_) => return Some(String::from_utf8_lossy(&got).into_owned()),
        }
    }
}

pub async fn slow_clients_cannot_stall_the_stack() {
    let dir = temp_dir("attacks");
    let (_stack, stack) = dev_stack(&dir.join("stack"), None);
    let url = |s: &str| {
        stack
            .pointer(&format!("/services/{s}/url"))
            .and_then(Value::as_str)
            .expect(s)
            .to_string()
    };
    let log = host_port(&url("log"));

    // half-sent headers, on every service: closed by the server, not left hanging
    let handles: Vec<_> = ["log", "ca", "ctlog", "oidc", "tuf", "tsa"]
        .into_iter()
        .map(|s| {
            let addr = host_port(&url(s));
            std::thread::spawn(move || {
                let mut c = TcpStream::connect(&addr).expect("connect");
                c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                    .expect("write");
                (s, closed_within(&mut c, Duration::from_secs(60)))
            })
        })
        .collect();

    // bodies that never arrive, beyond the log's submission slots
    let mut slow = Vec::new();
    for _ in 0..SLOW_BODIES {
        let mut c = TcpStream::connect(&log).expect("connect");
        c.write_all(
            b"POST /api/v1/log/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{",
        )
        .expect("write");
        slow.push(c);
    }
    // a real submission still goes through while every slow body is pending
    let key = FileSigner::generate(Curve::P256);
    let digest = sigstack_crypto::sha256(b"submitted past the slow clients");
    let sig = key.sign_sha256_digest(&digest).expect("sign");
    let entry = sigstack::rekor::hashedrekord(
        &digest,
        &STANDARD.encode(sig),
        key.public_key().to_pem().as_bytes(),
    );
    // (before the fix the slow bodies held every slot and this waited for ever: the
    // request gives up well inside their 10 s deadline instead of hanging the test)
    let res = http()
        .post(format!("{}/api/v1/log/entries", url("log")))
        .timeout(Duration::from_secs(8))
        .json(&entry)
        .send()
        .await
        .expect("the log answers while the slow bodies are pending");
    assert_eq!(
        res.status().as_u16(),
        201,
        "{}",
        res.text().await.unwrap_or_default()
    );
    // ... and none of the slow ones had been answered before it was
    let mut still_open = 0;
    for c in slow.iter_mut() {
        if closed_within(c, Duration::from_millis(1)).is_none() {
            still_open += 1;
        }
    }
    assert_eq!(
        still_open, SLOW_BODIES,
        "the slow bodies were still pending"
    );
    // their deadline passes: each gets 408 and its connection back
    let answer = closed_within(&mut slow[0], Duration::from_secs(40)).expect("answered");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    for (s, r) in handles.into_iter().map(|h| h.join().expect("thread")) {
        assert!(
            r.is_some(),
            "{s}: half-sent headers left the connection open"
        );
    }
}

/// Bodies held at once past one service's budget (64 MiB, `BODY_BUDGET`): many clients
/// each sending most of a large body and then waiting cannot make the server hold more;
/// past the budget, requests are answered 503 with Retry-After, and once those clients
/// go, the service takes requests again.
pub async fn large_bodies_cannot_exhaust_a_service() {
    let dir = temp_dir("body-budget");
    let (_stack, stack) = dev_stack(&dir.join("stack"), None);
    let url = stack
        .pointer("/services/log_v2/url")
        .and_then(Value::as_str)
        .expect("log_v2")
        .to_string();
    let addr = host_port(&url);
    let part = vec![b' '; 250 * 1024];
    let mut held = Vec::new();
    // 270 × 250 KiB is past 64 MiB
    for _ in 0..270 {
        let mut c = TcpStream::connect(&addr).expect("connect");
        c.write_all(
            b"POST /api/v2/log/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 262144\r\n\r\n",
        )
        .expect("headers");
        c.write_all(&part).expect("most of the body");
        held.push(c);
    }
    std::thread::sleep(Duration::from_secs(1));
    // past the budget the server stopped taking bodies in: those clients were answered
    // 503 with Retry-After (and gave their share back), the others are still held
    let answers: Vec<String> = held
        .iter_mut()
        .filter_map(|c| closed_within(c, Duration::from_millis(1)))
        .collect();
    let refused = answers
        .iter()
        .filter(|a| {
            a.starts_with("HTTP/1.1 503") && a.to_ascii_lowercase().contains("retry-after: 1")
        })
        .count();
    assert!(
        refused > 0 && refused == answers.len() && refused < held.len(),
        "{refused} of {} answered 503, {} answered at all: {:?}",
        held.len(),
        answers.len(),
        answers.first()
    );
    drop(held);
    // they are gone: the budget is back
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let res = http()
            .post(format!("{url}/api/v2/log/entries"))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .expect("the log answers");
        if res.status().as_u16() == 400 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the budget did not come back: {}",
            res.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
