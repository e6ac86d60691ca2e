//! A mutation fuzzer over real bundles of every kind (see `corpus`): every string, number,
//! object member and list element of each bundle — and of the log entry bodies and DSSE
//! payloads inside them — is changed in turn (bits flipped in its decoded bytes, text
//! altered, emptied, incremented, removed, duplicated), and each mutant is verified. A
//! mutant that verifies must be semantically equivalent to the original: it touched only
//! what the verifier documents as unauthenticated (key hints and ids, a v0.1/v0.2 chain's
//! certificates past the leaf, certificates embedded in an RFC 3161 token) or removed or
//! repeated one of several independently verified pieces of evidence — and it must yield
//! the same verified statement. Anything else accepted is a forgery and fails the test.

use crate::corpus::{Case, KINDS};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

/// One change to a bundle, named by the JSON pointer it applies at.
struct Mutant {
    path: String,
    what: &'static str,
    bundle: Value,
}

/// Every pointer to a node in `v`, with the node.
fn nodes(v: &Value, at: String, out: &mut Vec<(String, Value)>) {
    out.push((at.clone(), v.clone()));
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                nodes(c, format!("{at}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                nodes(c, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn set(root: &mut Value, path: &str, new: Value) {
    if let Some(slot) = root.pointer_mut(path) {
        *slot = new;
    }
}

fn parent_and_key(path: &str) -> (&str, &str) {
    let i = path.rfind('/').expect("a child path");
    (&path[..i], &path[i + 1..])
}

/// Changes to one value (a leaf of the bundle, or of JSON inside one of its strings).
fn value_mutations(v: &Value) -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    match v {
        Value::String(s) => {
            if let Ok(bytes) = STANDARD.decode(s)
                && !bytes.is_empty()
            {
                for (what, at) in [
                    ("flip first byte", 0),
                    ("flip middle byte", bytes.len() / 2),
                    ("flip last byte", bytes.len() - 1),
                ] {
                    let mut b = bytes.clone();
                    b[at] ^= 0x01;
                    out.push((what, json!(STANDARD.encode(&b))));
                }
            }
            let mut t = s.clone();
            t.push('x');
            out.push(("append", json!(t)));
            if let Some(c) = s.chars().next() {
                let flipped = if c == 'a' { 'b' } else { 'a' };
                out.push((
                    "change first char",
                    json!(format!("{flipped}{}", &s[c.len_utf8()..])),
                ));
            }
            if !s.is_empty() {
                out.push(("empty", json!("")));
            }
            if let Ok(n) = s.parse::<i64>() {
                out.push(("increment", json!((n + 1).to_string())));
            }
        }
        Value::Number(n) => {
            out.push(("increment", json!(n.as_i64().unwrap_or(0) + 1)));
        }
        Value::Bool(b) => out.push(("negate", json!(!b))),
        _ => {}
    }
    out
}

/// Strings holding base64 JSON (log entry bodies, DSSE payloads) are mutated inside too.
fn inner_json(s: &str) -> Option<Value> {
    let bytes = STANDARD.decode(s).ok()?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()
        .filter(Value::is_object)
}

fn mutants(bundle: &Value) -> Vec<Mutant> {
    let mut all = Vec::new();
    nodes(bundle, String::new(), &mut all);
    let mut out = Vec::new();
    for (path, v) in &all {
        if path.is_empty() {
            continue;
        }
        for (what, new) in value_mutations(v) {
            let mut b = bundle.clone();
            set(&mut b, path, new);
            out.push(Mutant {
                path: path.clone(),
                what,
                bundle: b,
            });
        }
        if let Some(inner) = v.as_str().and_then(inner_json) {
            let mut inner_nodes = Vec::new();
            nodes(&inner, String::new(), &mut inner_nodes);
            for (ip, iv) in inner_nodes.iter().filter(|(p, _)| !p.is_empty()) {
                for (what, new) in value_mutations(iv) {
                    let mut m = inner.clone();
                    set(&mut m, ip, new);
                    let mut b = bundle.clone();
                    set(
                        &mut b,
                        path,
                        json!(STANDARD.encode(serde_json::to_vec(&m).expect("json"))),
                    );
                    out.push(Mutant {
                        path: format!("{path}#{ip}"),
                        what,
                        bundle: b,
                    });
                }
            }
        }
        // remove a member or an element; repeat an element
        let (parent, key) = parent_and_key(path);
        let mut b = bundle.clone();
        match b.pointer_mut(parent) {
            Some(Value::Object(m)) => {
                m.remove(key);
                out.push(Mutant {
                    path: path.clone(),
                    what: "remove",
                    bundle: b,
                });
            }
            Some(Value::Array(a)) => {
                let i: usize = key.parse().expect("index");
                let mut dup = a.clone();
                a.remove(i);
                out.push(Mutant {
                    path: path.clone(),
                    what: "remove",
                    bundle: b.clone(),
                });
                dup.insert(i, dup[i].clone());
                let mut d = bundle.clone();
                set(&mut d, parent, Value::Array(dup));
                out.push(Mutant {
                    path: path.clone(),
                    what: "repeat",
                    bundle: d,
                });
            }
            _ => {}
        }
    }
    out
}

/// Whether an accepted mutant changed only what the verifier does not rely on.
fn equivalent(case: &Case, original: &Value, m: &Mutant) -> bool {
    let p = m.path.as_str();
    let evidence_count = |list: &str| {
        original
            .pointer(list)
            .and_then(Value::as_array)
            .map_or(0, Vec::len)
    };
    // hints and key ids name nothing the verifier trusts
    if p.ends_with("/hint") || p.ends_with("/keyid") {
        return true;
    }
    // a v0.1/v0.2 chain past the leaf: trust comes from the trusted root alone (repeating
    // the leaf puts its copy past the leaf)
    if let Some(rest) = p.strip_prefix("/verificationMaterial/x509CertificateChain/certificates/")
        && (!rest.starts_with('0') || m.what == "repeat")
    {
        return true;
    }
    // removing a member that holds protobuf's default is no change at all
    if m.what == "remove"
        && original.pointer(p).is_some_and(|v| {
            v.as_array().is_some_and(Vec::is_empty)
                || v.as_str() == Some("")
                || v.as_str() == Some("0")
        })
    {
        return true;
    }
    // the optional message digest, when removed (the signature is still checked)
    if p == "/messageSignature/messageDigest" && m.what == "remove" {
        return true;
    }
    // a repeated piece of evidence, or one of several removed, leaves genuine evidence
    for list in [
        "/verificationMaterial/tlogEntries",
        "/verificationMaterial/timestampVerificationData/rfc3161Timestamps",
    ] {
        if let Some(rest) = p.strip_prefix(list)
            && rest.len() > 1
            && !rest[1..].contains('/')
            && (m.what == "repeat" || (m.what == "remove" && evidence_count(list) > 1))
        {
            return true;
        }
    }
    // removing the timestamps of a bundle whose log entry dates it by itself, or the
    // signed entry timestamp of one that timestamps also date (the proof remains)
    if m.what == "remove"
        && (p == "/verificationMaterial/timestampVerificationData"
            || p == "/verificationMaterial/timestampVerificationData/rfc3161Timestamps"
            || (p.ends_with("/inclusionPromise")
                && evidence_count(
                    "/verificationMaterial/timestampVerificationData/rfc3161Timestamps",
                ) > 0))
    {
        return true;
    }
    if p.starts_with("/verificationMaterial/timestampVerificationData/rfc3161Timestamps/")
        && m.what == "remove"
    {
        return true;
    }
    // a v0.1 bundle's inclusion proof is optional beside its signed entry timestamp
    if case.name == "happy-path-v0.1" && p.ends_with("/inclusionProof") && m.what == "remove" {
        return true;
    }
    // bits of an RFC 3161 token outside what its signature covers: the certificates it
    // embeds, which are never trusted
    if p.ends_with("/signedTimestamp") {
        return only_embedded_certificates_differ(
            original.pointer(p).and_then(Value::as_str).unwrap_or(""),
            m.bundle.pointer(p).and_then(Value::as_str).unwrap_or(""),
        );
    }
    false
}

/// The two tokens are the same once the certificates they embed are set aside.
fn only_embedded_certificates_differ(a: &str, b: &str) -> bool {
    use cms::content_info::ContentInfo;
    use cms::signed_data::SignedData;
    use der::{Decode, Encode};
    let strip = |s: &str| -> Option<Vec<u8>> {
        let bytes = STANDARD.decode(s).ok()?;
        // a bundle may hold the TimeStampResp: its token follows the status
        let ci = ContentInfo::from_der(&bytes).ok().or_else(|| {
            let resp = der::asn1::Any::from_der(&bytes).ok()?;
            let mut r = der::SliceReader::new(resp.value()).ok()?;
            let _status = der::asn1::Any::decode(&mut r).ok()?;
            ContentInfo::decode(&mut r).ok()
        })?;
        let mut sd: SignedData = ci.content.decode_as().ok()?;
        sd.certificates = None;
        sd.to_der().ok()
    };
    matches!((strip(a), strip(b)), (Some(x), Some(y)) if x == y)
}

#[test]
fn no_mutation_of_a_real_bundle_is_a_forgery() {
    let mut tried = 0;
    let mut accepted_equivalent = 0;
    let mut forgeries = Vec::new();
    for name in KINDS {
        let case = Case::load(name);
        let original = case
            .verify(&case.bundle)
            .unwrap_or_else(|e| panic!("{name}: the original must verify: {e}"));
        let bundle: Value = serde_json::from_slice(&case.bundle).expect("json");
        for m in mutants(&bundle) {
            tried += 1;
            let bytes = serde_json::to_vec(&m.bundle).expect("json");
            let Ok(v) = case.verify(&bytes) else { continue };
            if equivalent(&case, &bundle, &m) && v.statement == original.statement {
                accepted_equivalent += 1;
            } else {
                forgeries.push(format!("{name}: {} ({})", m.path, m.what));
            }
        }
    }
    assert!(tried > 2000, "only {tried} mutants");
    assert!(
        forgeries.is_empty(),
        "{} of {tried} mutants verified though they change what was signed:\n{}",
        forgeries.len(),
        forgeries.join("\n")
    );
    eprintln!("{tried} mutants, {accepted_equivalent} accepted as equivalent, none a forgery");
}
