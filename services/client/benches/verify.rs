//! Verification cost: one real bundle of each kind, and the worst cases within the caps
//! (32 copies of a valid RFC 3161 timestamp with 31 bad log entries before the good one;
//! 64 MiB of junk; a 64 MiB bundle whose DSSE payload fills it). Run with
//! `cargo bench -p sigstack --bench verify`; figures go in BENCHMARKS.md.
//!
//! A plain harness: each case is run repeatedly and the median and worst times printed.

use serde_json::{Value, json};
use sigstack::verify::{Artifact, Matcher, Policy, verify};
use sigstack_types::trust::TrustedRoot;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn cases() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance-assets/test/assets/bundle-verify")
}

fn root(case: &str) -> TrustedRoot {
    let p = cases().join(case).join("trusted_root.json");
    let p = if p.exists() {
        p
    } else {
        cases().join("../../../extra/public-good-trusted_root.json")
    };
    serde_json::from_slice(&std::fs::read(p).expect("root")).expect("root")
}

fn any_identity() -> Policy {
    Policy::Identity {
        identity: Matcher::Regex(regex::Regex::new(".").expect("re")),
        issuer: Matcher::Regex(regex::Regex::new(".").expect("re")),
    }
}

fn time(name: &str, runs: usize, mut f: impl FnMut() -> bool) {
    let mut t = Vec::with_capacity(runs);
    let mut ok = true;
    for _ in 0..runs {
        let s = Instant::now();
        ok = f();
        t.push(s.elapsed());
    }
    t.sort();
    let med = t[t.len() / 2];
    let max = t.last().copied().unwrap_or(Duration::ZERO);
    println!(
        "{name:<58} {:>10.3} ms median {:>10.3} ms max  ({})",
        med.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
        if ok { "verified" } else { "refused" }
    );
}

fn main() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let artifact = Artifact::Bytes(std::fs::read(cases().join("a.txt")).expect("a.txt"));
    for case in [
        "happy-path-v0.3",
        "happy-path-intoto-in-dsse-v3",
        "rekor2-happy-path",
    ] {
        let bundle = std::fs::read(cases().join(case).join("bundle.sigstore.json")).expect("b");
        let r = root(case);
        time(case, 200, || {
            verify(&bundle, &r, &artifact, &any_identity(), now).is_ok()
        });
    }
    // the worst case within the caps
    let case = "rekor2-happy-path";
    let r = root(case);
    let b: Value = serde_json::from_slice(
        &std::fs::read(cases().join(case).join("bundle.sigstore.json")).expect("b"),
    )
    .expect("json");
    let ts = b["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"][0].clone();
    let good = b["verificationMaterial"]["tlogEntries"][0].clone();
    let mut bad = good.clone();
    bad["inclusionProof"]["hashes"][0] = json!("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    let mut worst = b.clone();
    worst["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"] =
        json!(vec![ts; 32]);
    let mut entries = vec![bad; 31];
    entries.push(good);
    worst["verificationMaterial"]["tlogEntries"] = json!(entries);
    let worst = serde_json::to_vec(&worst).expect("json");
    time("32 timestamps x 32 entries (31 bad), rekor v2", 50, || {
        verify(&worst, &r, &artifact, &any_identity(), now).is_ok()
    });
    // 64 MiB: junk, and a DSSE payload that fills the bundle
    let max = sigstack::bundle::MAX_BUNDLE_BYTES;
    let mut junk =
        String::from(r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","y":["#);
    let item = r#"{"a":[1,2,3],"b":"c"},"#;
    junk.push_str(&item.repeat((max - 200) / item.len()));
    junk.push_str("0]}");
    time("64 MiB of small JSON objects", 5, || {
        verify(junk.as_bytes(), &r, &artifact, &any_identity(), now).is_ok()
    });
    let dsse = cases().join("happy-path-intoto-in-dsse-v3/bundle.sigstore.json");
    let mut big: Value = serde_json::from_slice(&std::fs::read(dsse).expect("b")).expect("json");
    let payload = "A".repeat((max - 100_000) / 4 * 4);
    big["dsseEnvelope"]["payload"] = json!(payload);
    let big = serde_json::to_vec(&big).expect("json");
    let pr = root("happy-path-intoto-in-dsse-v3");
    time("64 MiB DSSE payload (signature refused)", 5, || {
        verify(&big, &pr, &artifact, &any_identity(), now).is_ok()
    });
}
