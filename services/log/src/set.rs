//! The signed entry timestamp (inclusion promise) of Rekor v1: a signature over the
//! RFC 8785 JSON of `{body, integratedTime, logID, logIndex}`, logIndex being the global
//! index across shards.

use crate::jcs;
use sigstack_crypto::{CryptoError, PublicKey, Signer};

/// The RFC 8785 form of the four fields, written directly (keys in their canonical order)
/// rather than through a JSON value: a log signs one per append, and the body is the
/// largest part of it.
pub fn payload(body_b64: &str, integrated_time: i64, log_id_hex: &str, log_index: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(body_b64.len() + log_id_hex.len() + 96);
    out.extend_from_slice(b"{\"body\":");
    jcs::write_str(body_b64, &mut out);
    out.extend_from_slice(b",\"integratedTime\":");
    jcs::write_i64(integrated_time, &mut out);
    out.extend_from_slice(b",\"logID\":");
    jcs::write_str(log_id_hex, &mut out);
    out.extend_from_slice(b",\"logIndex\":");
    jcs::write_i64(log_index, &mut out);
    out.push(b'}');
    out
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
    fn payload_is_the_canonical_json_of_the_four_fields() {
        for (body, time, id, index) in [
            ("eyJhIjoxfQ==", 1_700_000_000, "c0d23d6ad406973f", 0),
            ("", -1, "", i64::MAX),
            ("odd \"body\" \\ \n é", 0, "x", 9_007_199_254_740_993),
        ] {
            let want = crate::jcs::to_vec(&serde_json::json!({
                "body": body, "integratedTime": time, "logID": id, "logIndex": index,
            }));
            assert_eq!(payload(body, time, id, index), want);
        }
    }

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
