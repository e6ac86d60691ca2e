//! The fuzz targets' bodies: each takes arbitrary bytes to one family of parsers exactly
//! as the services and the client meet them from outside — submissions, tokens, TUF
//! metadata, timestamps, bundles. Each must accept or refuse, never panic, and where a
//! parser's output can be checked against its input (canonical JSON), it is.
//!
//! `fuzz/` wraps each in a cargo-fuzz target; `tests/it` replays the committed corpus
//! (`fuzz/corpus/<target>`) and deterministic mutations of it in CI.

use sigstack::verify::{Artifact, Matcher, Policy};
use sigstack_types::trust::TrustedRoot;
use std::sync::OnceLock;

/// A target's body.
pub type Target = fn(&[u8]);

/// Every target, by the name of its corpus directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("verify_bundle", verify_bundle),
    ("proposed_entry", proposed_entry),
    ("x509", x509),
    ("jwt", jwt),
    ("tuf_metadata", tuf_metadata),
    ("rfc3161", rfc3161),
    ("dsse_statement", dsse_statement),
    ("checkpoint", checkpoint),
    ("trust_files", trust_files),
    ("canonical_json", canonical_json),
    ("rekor_v2_entry", rekor_v2_entry),
    ("tlog_tiles", tlog_tiles),
];

/// The public-good trusted root (it names timestamp authorities too).
pub fn public_good() -> &'static TrustedRoot {
    static ROOT: OnceLock<TrustedRoot> = OnceLock::new();
    ROOT.get_or_init(|| {
        serde_json::from_slice(include_bytes!(
            "../../client/trust/public-good/trusted_root.json"
        ))
        .unwrap_or_default()
    })
}

fn conformance_policy() -> Policy {
    Policy::Identity {
        identity: Matcher::Exact(
            "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main".into(),
        ),
        issuer: Matcher::Exact("https://token.actions.githubusercontent.com".into()),
    }
}

/// A Sigstore bundle (any version, cosign v2's too), verified with and without an
/// artifact.
pub fn verify_bundle(data: &[u8]) {
    let artifact = Artifact::Bytes(b"Hello, World!".to_vec());
    let p = conformance_policy();
    let _ = sigstack::verify::verify(data, public_good(), &artifact, &p, 1_700_000_000);
    let _ = sigstack::verify::verify(data, public_good(), &Artifact::Unchecked, &p, 1_700_000_000);
}

/// A log submission body (`POST /api/v1/log/entries`), canonicalised as for a
/// submission and as for `/entries/retrieve`; a canonical body must be RFC 8785 JSON.
pub fn proposed_entry(data: &[u8]) {
    let Ok(entry) = serde_json::from_slice::<sigstack_types::rekor::ProposedEntry>(data) else {
        return;
    };
    for c in [
        sigstack_log::kinds::canonicalize(&entry),
        sigstack_log::kinds::canonicalize_for_lookup(&entry),
    ]
    .into_iter()
    .flatten()
    {
        let v: serde_json::Value =
            serde_json::from_slice(&c.body).expect("a canonical body is JSON");
        assert_eq!(
            sigstack_log::jcs::to_vec(&v),
            c.body,
            "a canonical body is its own canonical form"
        );
    }
}

/// Certificates (DER, PEM), PEM blocks, CSRs (the CA's input) and SCT lists (inside
/// certificates).
pub fn x509(data: &[u8]) {
    if let Ok(c) = sigstack_crypto::Certificate::from_der(data) {
        let _ = c.public_key();
        let _ = c.validity();
        let _ = c.to_pem();
        let _ = c.verify_issued_by(&c);
    }
    let _ = sigstack_crypto::KeyMaterial::from_pem(data);
    let _ = sigstack_crypto::pem::decode_all(data);
    let _ = sigstack_crypto::parse_csr(data);
    let _ = sigstack_log::ct::decode_sct_list(data);
    let _ = sigstack_crypto::PublicKey::from_spki_der(data);
}

/// An ID token and a JWKS (the first line is the token, the rest the key set), verified
/// as the CA verifies tokens.
pub fn jwt(data: &[u8]) {
    use sigstack_ca::token::{Expectations, Jwks, UnverifiedToken, verify};
    let (token, jwks) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let token = String::from_utf8_lossy(token);
    let parsed = UnverifiedToken::parse(&token);
    let keys = Jwks::from_json(jwks);
    if let (Ok(t), Ok(k)) = (parsed, keys) {
        let _ = t.unverified_issuer();
        let accepted = verify(
            &t,
            &k,
            &Expectations {
                issuer: "https://issuer.example".into(),
                audience: "sigstore".into(),
                now: 1_700_000_000,
                leeway: 60,
                allowed_algs: ["RS256", "ES256", "ES384", "EdDSA", "PS256"]
                    .map(String::from)
                    .to_vec(),
            },
        );
        if accepted.is_ok() {
            jwt_differential(&token, jwks);
        }
    }
}

/// A token our verifier accepts is one `jsonwebtoken` (aws-lc-rs) verifies too, with a
/// key of the same set: same signature verdict, same algorithm. (Claims are ours to
/// check: `jsonwebtoken` reads the clock, we are given the time.)
fn jwt_differential(token: &str, jwks: &[u8]) {
    use jsonwebtoken::{DecodingKey, Validation, decode, decode_header, jwk::Jwk};
    let header = decode_header(token).expect("a token we accept has a header jsonwebtoken reads");
    let keys: Vec<Jwk> = serde_json::from_slice::<serde_json::Value>(jwks)
        .ok()
        .and_then(|v| v.get("keys").cloned())
        .and_then(|k| k.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|k| serde_json::from_value(k).ok())
        .collect();
    if keys.is_empty() {
        // no key jsonwebtoken reads: nothing to compare
        return;
    }
    let mut v = Validation::new(header.alg);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let verified = keys.iter().any(|k| {
        DecodingKey::from_jwk(k)
            .ok()
            .is_some_and(|dk| decode::<serde_json::Value>(token, &dk, &v).is_ok())
    });
    assert!(
        verified,
        "a token we accept does not verify with jsonwebtoken"
    );
}

/// TUF metadata of every role, as the updater reads it; a root's signatures are checked
/// against itself, as a client checks a new root.
pub fn tuf_metadata(data: &[u8]) {
    use sigstack_tuf::Envelope;
    use sigstack_tuf::metadata::{Root, Targets};
    if let Ok(env) = Envelope::parse(data, "root")
        && let Ok(root) = env.role::<Root>()
    {
        let _ = env.verify_by(&root, "root");
    }
    if let Ok(env) = Envelope::parse(data, "targets") {
        let _ = env.role::<Targets>();
    }
    for role in ["snapshot", "timestamp"] {
        let _ = Envelope::parse(data, role);
    }
    let _ = sigstack_tuf::cjson::encode(&serde_json::from_slice(data).unwrap_or_default());
}

/// RFC 3161: a request as the TSA reads it (DER and timestamp-authority's JSON), and a
/// response and a token as the client reads them (against the public-good TSAs).
pub fn rfc3161(data: &[u8]) {
    let _ = sigstack_tsa::Request::from_json(data);
    let trust = sigstack::verify::trust::Trust::new(public_good());
    let verified = sigstack::tsa::verify(data, b"signature", &trust.tsas).ok();
    let _ = sigstack::tsa::check_response(data, &[7; 32], 1);
    rfc3161_differential(data, verified);
}

/// An in-toto statement as a DSSE payload, read as the verifier reads it.
pub fn dsse_statement(data: &[u8]) {
    let _ = sigstack::verify::dsse::statement("application/vnd.in-toto+json", data);
    let _ = sigstack::verify::dsse::statement("text/plain", data);
}

/// A signed note (checkpoint), as clients read a log's checkpoint.
pub fn checkpoint(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let key = sigstack_crypto::FileSigner::generate(sigstack_crypto::Curve::P256);
    let key = sigstack_crypto::Signer::public_key(&key);
    let _ = sigstack_log::checkpoint::verify_any_name(&text, key);
    let _ = sigstack_log::checkpoint::Checkpoint::parse_body(&text);
}

/// A Rekor v2 submission (`POST /api/v2/log/entries`): a canonical body must be RFC
/// 8785 JSON and fit an entry bundle.
pub fn rekor_v2_entry(data: &[u8]) {
    if let Ok(c) = sigstack_log::v2::canonicalize(data) {
        let v: serde_json::Value =
            serde_json::from_slice(&c.body).expect("a canonical body is JSON");
        assert_eq!(
            sigstack_log::jcs::to_vec(&v),
            c.body,
            "a canonical body is its own canonical form"
        );
        assert!(c.body.len() <= sigstack_log::v2::MAX_BODY_BYTES);
    }
}

/// What a tiled log, its witnesses and its readers parse from outside: tile paths (a
/// parsed path prints back as itself), `add-checkpoint` bodies, signed notes and the
/// witness's checks on them.
pub fn tlog_tiles(data: &[u8]) {
    use sigstack_log::{note, tiles, witness};
    let text = String::from_utf8_lossy(data);
    if let Some(t) = tiles::TileRef::parse(&text) {
        assert_eq!(tiles::TileRef::parse(&t.path()["tile/".len()..]), Some(t));
        let _ = t.exists_in(u64::MAX);
        let _ = t.node_level();
    }
    let key = log_key();
    let _ = note::split(&text);
    let _ = note::verify_ed25519(&text, "fuzz.example", key);
    let _ = note::parse_vkey(&text);
    if let Ok(req) = witness::AddCheckpoint::parse(&text) {
        let seen = witness::Seen {
            size: 3,
            root: [9; 32],
        };
        let _ = witness::check(&req, "fuzz.example", key, Some(seen));
        let _ = witness::check(&req, "fuzz.example", key, None);
        let _ = witness::verify_cosignature(&req.note, "witness.example", key);
    }
}

/// The Ed25519 key the tlog_tiles seeds are signed with (fixed, so they verify; a
/// throwaway key that signs nothing else).
pub fn log_key_signer() -> &'static sigstack_crypto::Ed25519Signer {
    static KEY: OnceLock<sigstack_crypto::Ed25519Signer> = OnceLock::new();
    KEY.get_or_init(|| {
        sigstack_crypto::Ed25519Signer::from_pem(
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIDJYNSvVq3dX4x5+EX3Qm0e+rKavPrZ9b00juZrXpU5d\n-----END PRIVATE KEY-----\n",
        )
        .expect("the fixed fuzz key")
    })
}

fn log_key() -> &'static sigstack_crypto::PublicKey {
    sigstack_crypto::Signer::public_key(log_key_signer())
}

/// Trust files a client is handed: a trusted root (its authorities decoded), a signing
/// config, a client trust config.
pub fn trust_files(data: &[u8]) {
    if let Ok(root) = serde_json::from_slice::<TrustedRoot>(data) {
        let trust = sigstack::verify::trust::Trust::new(&root);
        for log in trust.tlogs.iter().chain(&trust.ctlogs) {
            let _ = log.key();
            let _ = log.valid_at(1_700_000_000);
        }
    }
    let _ = serde_json::from_slice::<sigstack_types::trust::SigningConfig>(data);
    let _ = serde_json::from_slice::<sigstack_types::trust::ClientTrustConfig>(data);
}

/// JSON in both canonical forms we write — RFC 8785 (log bodies) and OLPC (TUF
/// signatures) — differentially against maintained crates (`serde_jcs`, `olpc-cjson`):
/// the same bytes, or both refuse.
pub fn canonical_json(data: &[u8]) {
    use serde::Serialize;
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let jcs = sigstack_log::jcs::to_vec(&v);
    let back: serde_json::Value = serde_json::from_slice(&jcs).expect("JCS output is JSON");
    assert_eq!(sigstack_log::jcs::to_vec(&back), jcs, "JCS is idempotent");
    if let Ok(theirs) = serde_jcs::to_vec(&v) {
        assert_eq!(
            String::from_utf8_lossy(&jcs),
            String::from_utf8_lossy(&theirs),
            "our JCS differs from serde_jcs"
        );
    }
    // olpc-cjson normalises strings to NFC; python-tuf and go-tuf sign without, as we
    // do: compare on input that normalisation leaves alone
    // olpc-cjson also sorts keys in their quoted, escaped form ("b!" before "b"); python-tuf
    // and go-tuf sort the keys themselves ("b" first), as we do: compare where the two
    // orders agree
    let v = nfc(&v);
    if key_orders_differ(&v) {
        return;
    }
    let ours = sigstack_tuf::cjson::encode(&v).ok();
    let mut theirs = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut theirs, olpc_cjson::CanonicalFormatter::new());
    let theirs = v.serialize(&mut ser).ok().map(|()| theirs);
    assert_eq!(
        ours.as_deref().map(String::from_utf8_lossy),
        theirs.as_deref().map(String::from_utf8_lossy),
        "our OLPC canonical JSON differs from olpc-cjson"
    );
}

/// RFC 3161 differentially against RustCrypto's `x509-tsp`: what our TSA accepts as a
/// request decodes there with the same fields; a token our client verifies decodes
/// there with the same time.
fn rfc3161_differential(data: &[u8], verified_time: Option<i64>) {
    use der::Decode;
    if let Ok(ours) = sigstack_tsa::Request::from_der(data) {
        let theirs = x509_tsp::TimeStampReq::from_der(data)
            .expect("a request our TSA accepts decodes with x509-tsp");
        assert_eq!(
            ours.hashed_message,
            theirs.message_imprint.hashed_message.as_bytes(),
            "message imprint"
        );
        assert_eq!(ours.cert_req, theirs.cert_req, "certReq");
        assert_eq!(
            ours.nonce.as_ref().map(|n| n.as_bytes()),
            theirs.nonce.as_ref().map(|n| n.as_bytes()),
            "nonce"
        );
        assert_eq!(ours.policy, theirs.req_policy, "policy");
    }
    if let Some(t) = verified_time {
        let ci = cms::content_info::ContentInfo::from_der(data)
            .expect("a verified token is a ContentInfo");
        let sd: cms::signed_data::SignedData = ci.content.decode_as().expect("SignedData");
        let econtent = sd
            .encap_content_info
            .econtent
            .expect("a verified token has content");
        let info = x509_tsp::TstInfo::from_der(econtent.value())
            .expect("a verified token's TSTInfo decodes with x509-tsp");
        let gen_time = info.gen_time.to_unix_duration().as_secs() as i64;
        assert_eq!(gen_time, t, "genTime");
    }
}

/// `v` with every string and key in Unicode NFC.
fn nfc(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    use unicode_normalization::UnicodeNormalization;
    match v {
        Value::String(s) => Value::String(s.nfc().collect()),
        Value::Array(a) => Value::Array(a.iter().map(nfc).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.nfc().collect(), nfc(v))).collect())
        }
        other => other.clone(),
    }
}

/// Whether some object in `v` has keys that sort differently as themselves (python-tuf,
/// go-tuf, us) and as their quoted, escaped JSON form (olpc-cjson): a key that prefixes
/// another, or keys with `"` or `\\` in them.
fn key_orders_differ(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Array(a) => a.iter().any(key_orders_differ),
        Value::Object(m) => {
            let mut raw: Vec<&String> = m.keys().collect();
            raw.sort();
            let mut quoted = raw.clone();
            quoted.sort_by_key(|k| format!("\"{}\"", k.replace('\\', "\\\\").replace('"', "\\\"")));
            raw != quoted || m.values().any(key_orders_differ)
        }
        _ => false,
    }
}
