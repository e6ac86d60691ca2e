//! Real public-good data for tests, read from the shared conformance assets beside the
//! checkout (`../shared/conformance-assets`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use sigstack_crypto::PublicKey;
use std::path::PathBuf;

fn assets() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance-assets")
}

/// A conformance case's bundle.
pub fn bundle(case: &str) -> Value {
    let path = assets()
        .join("test/assets/bundle-verify")
        .join(case)
        .join("bundle.sigstore.json");
    serde_json::from_slice(&std::fs::read(path).expect("bundle")).expect("json")
}

/// The first tlog entry of a conformance case's bundle.
pub fn tlog_entry(case: &str) -> Value {
    bundle(case)["verificationMaterial"]["tlogEntries"][0].clone()
}

/// The Rekor keys of the public-good trusted root.
pub fn public_good_tlog_keys() -> Vec<PublicKey> {
    public_good_root()["tlogs"]
        .as_array()
        .expect("tlogs")
        .iter()
        .filter_map(|t| STANDARD.decode(t["publicKey"]["rawBytes"].as_str()?).ok())
        .filter_map(|der| PublicKey::from_spki_der(&der).ok())
        .collect()
}

fn public_good_root() -> Value {
    serde_json::from_slice(
        &std::fs::read(assets().join("extra/public-good-trusted_root.json")).expect("trusted root"),
    )
    .expect("json")
}

/// The signing certificate of a conformance case's bundle (v0.3: `certificate`).
pub fn leaf_certificate(case: &str) -> sigstack_crypto::Certificate {
    let der = STANDARD
        .decode(
            bundle(case)["verificationMaterial"]["certificate"]["rawBytes"]
                .as_str()
                .expect("certificate"),
        )
        .expect("b64");
    sigstack_crypto::Certificate::from_der(&der).expect("certificate")
}

/// The first certificate (the issuing intermediate) of every public-good CA.
pub fn public_good_intermediates() -> Vec<sigstack_crypto::Certificate> {
    public_good_root()["certificateAuthorities"]
        .as_array()
        .expect("CAs")
        .iter()
        .filter_map(|ca| {
            STANDARD
                .decode(ca["certChain"]["certificates"][0]["rawBytes"].as_str()?)
                .ok()
        })
        .filter_map(|der| sigstack_crypto::Certificate::from_der(&der).ok())
        .collect()
}

/// The CT log keys of the public-good trusted root.
pub fn public_good_ctlog_keys() -> Vec<PublicKey> {
    public_good_root()["ctlogs"]
        .as_array()
        .expect("ctlogs")
        .iter()
        .filter_map(|t| STANDARD.decode(t["publicKey"]["rawBytes"].as_str()?).ok())
        .filter_map(|der| PublicKey::from_spki_der(&der).ok())
        .collect()
}
