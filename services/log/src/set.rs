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
        let e = crate::testdata::tlog_entry("managed-key-happy-path");
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
        let keys = crate::testdata::public_good_tlog_keys();
        let verifies = |t: i64| {
            keys.iter()
                .any(|k| verify(k, &sig, body, t, &log_id_hex, idx).is_ok())
        };
        assert!(
            verifies(it),
            "the real SET verifies with our payload construction"
        );
        assert!(!verifies(it + 1), "and not for another integrated time");
    }
}
