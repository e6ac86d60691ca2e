//! The signed entry timestamp (inclusion promise) of Rekor v1: a signature over the
//! RFC 8785 JSON of `{body, integratedTime, logID, logIndex}`, logIndex being the global
//! index across shards.

use crate::jcs;
use serde_json::json;
use sigstack_crypto::{CryptoError, PublicKey, Signer};

pub fn payload(body_b64: &str, integrated_time: i64, log_id_hex: &str, log_index: i64) -> Vec<u8> {
    jcs::to_vec(&json!({
        "body": body_b64,
        "integratedTime": integrated_time,
        "logID": log_id_hex,
        "logIndex": log_index,
    }))
}

pub fn sign(
    signer: &dyn Signer,
    body_b64: &str,
    integrated_time: i64,
    log_id_hex: &str,
    log_index: i64,
) -> Result<Vec<u8>, CryptoError> {
    signer.sign(&payload(body_b64, integrated_time, log_id_hex, log_index))
}

pub fn verify(
    key: &PublicKey,
    sig: &[u8],
    body_b64: &str,
    integrated_time: i64,
    log_id_hex: &str,
    log_index: i64,
) -> Result<(), CryptoError> {
    let msg = payload(body_b64, integrated_time, log_id_hex, log_index);
    let alg = key.default_hash();
    key.verify_digest(alg, &alg.digest(&msg), sig)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    #[test]
    fn verifies_a_real_public_good_set() {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/conformance-assets");
        let bundle: serde_json::Value = serde_json::from_slice(
            &std::fs::read(
                dir.join("test/assets/bundle-verify/managed-key-happy-path/bundle.sigstore.json"),
            )
            .expect("bundle"),
        )
        .expect("json");
        let root: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.join("extra/public-good-trusted_root.json")).expect("root"),
        )
        .expect("json");
        let e = &bundle["verificationMaterial"]["tlogEntries"][0];
        let log_id_hex = hex::encode(
            STANDARD
                .decode(e["logId"]["keyId"].as_str().expect("id"))
                .expect("b64"),
        );
        let sig = STANDARD
            .decode(
                e["inclusionPromise"]["signedEntryTimestamp"]
                    .as_str()
                    .expect("set"),
            )
            .expect("b64");
        let it: i64 = e["integratedTime"]
            .as_str()
            .expect("t")
            .parse()
            .expect("int");
        let idx: i64 = e["logIndex"].as_str().expect("i").parse().expect("int");
        let body = e["canonicalizedBody"].as_str().expect("body");
        let ok = root["tlogs"].as_array().expect("tlogs").iter().any(|t| {
            let der = STANDARD
                .decode(t["publicKey"]["rawBytes"].as_str().unwrap_or_default())
                .unwrap_or_default();
            PublicKey::from_spki_der(&der)
                .map(|k| verify(&k, &sig, body, it, &log_id_hex, idx).is_ok())
                .unwrap_or(false)
        });
        assert!(ok, "the real SET verifies with our payload construction");
        let wrong = root["tlogs"].as_array().expect("tlogs").iter().any(|t| {
            let der = STANDARD
                .decode(t["publicKey"]["rawBytes"].as_str().unwrap_or_default())
                .unwrap_or_default();
            PublicKey::from_spki_der(&der)
                .map(|k| verify(&k, &sig, body, it + 1, &log_id_hex, idx).is_ok())
                .unwrap_or(false)
        });
        assert!(!wrong);
    }
}
