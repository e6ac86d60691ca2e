//! What a bundle can make the verifier do is bounded: lists are capped while they are
//! read, the size is capped before the file is read whole, repeated keys are refused,
//! protojson's equivalent spellings are accepted alike, and a bundle at every cap still
//! verifies (its cost is in BENCHMARKS.md, `cargo bench -p sigstack --bench verify`).

use crate::corpus::{Case, cases};
use serde_json::{Value, json};
use std::process::Command;

/// Runs a command under Python and returns its exit code, the kernel's peak RSS (KiB) for
/// it, and its standard error.
fn peak_rss(cmd: &mut Command) -> (i32, u64, String) {
    let script = r#"
import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], capture_output=True)
print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.stderr.write(r.stderr.decode())
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace();
    let code = it.next().and_then(|s| s.parse().ok()).expect("exit code");
    let kib = it.next().and_then(|s| s.parse().ok()).expect("peak RSS");
    (code, kib, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn to_vec(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("json")
}

fn refused(case: &Case, bundle: &[u8], why: &str) {
    match case.verify(bundle) {
        Ok(_) => panic!("{}: accepted, expected {why:?}", case.name),
        Err(e) => assert!(e.0.contains(why), "{}: {e}, expected {why:?}", case.name),
    }
}

/// The worst case within the caps: 32 copies of a valid timestamp and 31 bad entries
/// before the good one verifies; one more of either is refused as it is read.
#[test]
fn lists_are_capped_and_a_bundle_at_the_caps_verifies() {
    let case = Case::load("rekor2-happy-path");
    let b: Value = serde_json::from_slice(&case.bundle).expect("json");
    let ts = b["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"][0].clone();
    let good = b["verificationMaterial"]["tlogEntries"][0].clone();
    let mut bad = good.clone();
    bad["inclusionProof"]["hashes"][0] = json!("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    let with = |n_ts: usize, n_bad: usize| {
        let mut v = b.clone();
        v["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"] =
            json!(vec![ts.clone(); n_ts]);
        let mut entries = vec![bad.clone(); n_bad];
        entries.push(good.clone());
        v["verificationMaterial"]["tlogEntries"] = json!(entries);
        to_vec(&v)
    };
    case.verify(&with(32, 31)).expect("at the caps");
    refused(&case, &with(33, 0), "more than 32 RFC 3161 timestamps");
    refused(&case, &with(1, 32), "more than 32 transparency-log entries");
    let mut long = b.clone();
    long["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"] =
        json!(vec!["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="; 65]);
    refused(&case, &to_vec(&long), "more than 64 inclusion-proof hashes");
}

#[test]
fn repeated_keys_are_refused_and_protojson_spellings_accepted() {
    let case = Case::load("happy-path-v0.3");
    let text = String::from_utf8(case.bundle.clone()).expect("utf-8");
    // a second mediaType, a second messageSignature: two verifiers could read two bundles
    let dup = text.replacen('{', r#"{"mediaType": "x","#, 1);
    refused(&case, dup.as_bytes(), "repeats a key");
    let b: Value = serde_json::from_str(&text).expect("json");
    let mut dup_sig = b.clone();
    let sig = dup_sig["messageSignature"]["signature"].clone();
    dup_sig["messageSignature"]["signature"] = json!("AAAA");
    let spliced = String::from_utf8(to_vec(&dup_sig))
        .expect("utf-8")
        .replacen(
            r#""signature":"AAAA""#,
            &format!(r#""signature":"AAAA","signature":{sig}"#),
            1,
        );
    refused(&case, spliced.as_bytes(), "repeats a key");
    // the same bundle in protojson's other spellings verifies alike: proto field names,
    // int64 as a JSON number, bytes in the URL-safe alphabet without padding
    let mut alt = b.clone();
    let m = alt
        .as_object_mut()
        .and_then(|o| o.remove("verificationMaterial"))
        .expect("material");
    alt["verification_material"] = m;
    let e = &mut alt["verification_material"]["tlogEntries"][0];
    let idx: i64 = e["logIndex"].as_str().expect("s").parse().expect("n");
    e["logIndex"] = json!(idx);
    let s = b["messageSignature"]["signature"].as_str().expect("sig");
    let url = s
        .replace('+', "-")
        .replace('/', "_")
        .trim_end_matches('=')
        .to_string();
    alt["messageSignature"]["signature"] = json!(url);
    let v = case.verify(&to_vec(&alt)).expect("protojson spellings");
    assert_eq!(v.log_index, Some(idx));
    // both spellings of one field are one field named twice
    let mut both = b.clone();
    both["verification_material"] = b["verificationMaterial"].clone();
    assert!(case.verify(&to_vec(&both)).is_err());
}

/// A Rekor v2 entry's bare logIndex is not signed: it must equal the proven index, which
/// is what `--output json` reports.
#[test]
fn reported_numbers_come_from_signed_data() {
    let case = Case::load("rekor2-happy-path");
    let v = case.verify(&case.bundle).expect("verifies");
    let b: Value = serde_json::from_slice(&case.bundle).expect("json");
    let proven: i64 = b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["logIndex"]
        .as_str()
        .expect("s")
        .parse()
        .expect("n");
    assert_eq!(v.log_index, Some(proven));
    let mut lie = b.clone();
    lie["verificationMaterial"]["tlogEntries"][0]["logIndex"] = json!("7");
    refused(
        &case,
        &to_vec(&lie),
        "logIndex is not its inclusion proof's",
    );
    let mut dated = b.clone();
    dated["verificationMaterial"]["tlogEntries"][0]["integratedTime"] = json!("1700000000");
    refused(&case, &to_vec(&dated), "carries no integrated time");
}

/// A bundle over the size cap is refused before it is read whole; a large bundle of junk
/// under the cap is refused with memory in proportion to its size.
#[test]
fn size_and_memory_are_bounded() {
    let dir = std::env::temp_dir().join(format!("sigstack-bounds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let huge = dir.join("huge.json");
    let f = std::fs::File::create(&huge).expect("create");
    f.set_len((sigstack::bundle::MAX_BUNDLE_BYTES + 1) as u64)
        .expect("sparse file");
    let e = sigstack::bundle::read_file(&huge).expect_err("too large");
    assert!(e.to_string().contains("larger than a bundle may be"), "{e}");
    let _ = std::fs::remove_file(&huge);
    // 48 MiB of junk: one long string and deeply repeated small objects
    let mut junk =
        String::from(r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","x":""#);
    junk.push_str(&"A".repeat(24 << 20));
    junk.push_str(r#"","y":["#);
    junk.push_str(&vec![r#"{"a":[1,2,3],"b":"c"}"#; 1 << 20].join(","));
    junk.push_str("]}");
    let junk_path = dir.join("junk.json");
    std::fs::write(&junk_path, &junk).expect("write");
    let size = junk.len() as u64;
    // the peak memory of a `sigstack verify-blob` run on it, measured by the kernel
    let (code, max_rss_kib, err) = peak_rss(
        Command::new(env!("CARGO_BIN_EXE_sigstack"))
            .args(["verify-blob", "--offline", "--key"])
            .arg(cases().join("managed-key-happy-path/key.pub"))
            .arg("--bundle")
            .arg(&junk_path)
            .arg(cases().join("a.txt")),
    );
    assert_eq!(code, 1, "refused: {err}");
    assert!(
        max_rss_kib * 1024 < 3 * size + (64 << 20),
        "a {size}-byte bundle took {max_rss_kib} KiB"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A Rekor v1 entry with only an inclusion proof has no signed time of its own: its log's
/// key must have been valid at the signed timestamps' times, never at the unsigned
/// `integratedTime` (found by an attacker's review: a retired log key passed).
#[test]
fn a_retired_log_key_is_not_dated_by_an_unsigned_time() {
    let case = Case::load("intoto-with-custom-trust-root");
    let mut root: Value = serde_json::to_value(&case.root).expect("json");
    root["tlogs"][0]["publicKey"]["validFor"]["end"] = json!("2023-01-15T00:00:00Z");
    let root: sigstack_types::trust::TrustedRoot = serde_json::from_value(root).expect("root");
    let retired = Case {
        root,
        ..Case::load("intoto-with-custom-trust-root")
    };
    refused(&retired, &case.bundle, "not valid at the entry's time");
    let mut b: Value = serde_json::from_slice(&case.bundle).expect("json");
    let e = &mut b["verificationMaterial"]["tlogEntries"][0];
    e.as_object_mut().expect("entry").remove("inclusionPromise");
    e["integratedTime"] = json!("1673000000");
    refused(&retired, &to_vec(&b), "not valid at the entry's time");
}

/// A DSSE payload is read field by field until the signer is verified: a large statement
/// of tiny objects costs memory in proportion to its size (it cost 70 times its size).
#[test]
fn a_large_statement_is_not_built_before_the_signer_is_known() {
    use sigstack_crypto::{Curve, FileSigner, Signer};
    let dir = std::env::temp_dir().join(format!("sigstack-statement-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let signer = FileSigner::generate(Curve::P256);
    let mut payload = String::from(
        r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"00"}}],"predicateType":"x","predicate":["#,
    );
    payload.push_str(&vec![r#"{"":0}"#; 3 << 20].join(","));
    payload.push_str("]}");
    let pt = sigstack::verify::IN_TOTO;
    let sig = signer
        .sign(&sigstack::verify::pae(pt, payload.as_bytes()))
        .expect("sign");
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let bundle = json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": ""}, "tlogEntries": []},
        "dsseEnvelope": {"payload": b64(payload.as_bytes()), "payloadType": pt, "signatures": [{"sig": b64(&sig)}]},
    });
    let path = dir.join("big.json");
    std::fs::write(&path, to_vec(&bundle)).expect("w");
    let key = dir.join("key.pub");
    std::fs::write(&key, signer.public_key().to_pem()).expect("w");
    let size = std::fs::metadata(&path).expect("meta").len();
    let (code, max_rss_kib, err) = peak_rss(
        Command::new(env!("CARGO_BIN_EXE_sigstack"))
            .args(["verify-blob", "--offline", "--key"])
            .arg(&key)
            .arg("--bundle")
            .arg(&path)
            .arg(cases().join("a.txt")),
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not a subject"), "{err}");
    assert!(
        max_rss_kib * 1024 < 4 * size + (64 << 20),
        "a {size}-byte bundle took {max_rss_kib} KiB"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Data after an RFC 3161 timestamp is refused, not ignored.
#[test]
fn a_timestamp_with_trailing_data_is_refused() {
    let case = Case::load("rekor2-happy-path");
    let mut b: Value = serde_json::from_slice(&case.bundle).expect("json");
    let ts = &mut b["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"][0]["signedTimestamp"];
    use base64::Engine;
    let e = base64::engine::general_purpose::STANDARD;
    let mut raw = e.decode(ts.as_str().expect("s")).expect("b64");
    raw.push(0);
    *ts = json!(e.encode(&raw));
    assert!(case.verify(&to_vec(&b)).is_err());
}
