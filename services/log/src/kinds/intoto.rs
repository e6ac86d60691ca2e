//! intoto 0.0.2: a DSSE envelope whose payload and signatures travel base64-encoded a
//! second time, with the keys inline (Rekor `pkg/types/intoto/v0.0.2`). The canonical
//! body drops the payload and keeps `hash` as the client computed it.

use super::{b64_flexible, b64_std, in_toto_keys, key_index_keys, key_material, pae, parse_spec};
use crate::{EntryError, jcs};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::json;
use sigstack_crypto::sha256;

#[derive(Deserialize)]
struct Spec {
    content: Option<Content>,
}

#[derive(Deserialize)]
struct Content {
    envelope: Option<Envelope>,
    hash: Option<HashValue>,
    #[serde(rename = "payloadHash")]
    payload_hash: Option<HashValue>,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "payloadType")]
    payload_type: Option<String>,
    payload: Option<String>,
    #[serde(default)]
    signatures: Vec<Signature>,
}

#[derive(Deserialize)]
struct Signature {
    #[serde(default)]
    keyid: Option<String>,
    sig: Option<String>,
    #[serde(rename = "publicKey")]
    public_key: Option<String>,
}

#[derive(Deserialize)]
struct HashValue {
    algorithm: Option<String>,
    value: Option<String>,
}

pub(super) fn canonicalize(
    spec: &serde_json::Value,
    check: super::Check,
) -> Result<(Vec<u8>, Vec<String>), EntryError> {
    let spec: Spec = parse_spec(spec, "intoto")?;
    let content = spec
        .content
        .ok_or_else(|| EntryError::invalid("missing content"))?;
    let env = content
        .envelope
        .ok_or_else(|| EntryError::invalid("missing content.envelope"))?;
    let payload_type = env
        .payload_type
        .ok_or_else(|| EntryError::invalid("missing content.envelope.payloadType"))?;
    if env.signatures.is_empty() {
        return Err(EntryError::invalid(
            "content.envelope.signatures must hold at least one signature",
        ));
    }
    if env.signatures.len() > super::MAX_SIGNATURES {
        return Err(EntryError::invalid(format!(
            "at most {} signatures are accepted",
            super::MAX_SIGNATURES
        )));
    }
    let hash = content
        .hash
        .ok_or_else(|| EntryError::invalid("missing content.hash"))?;
    if hash.algorithm.as_deref() != Some("sha256") {
        return Err(EntryError::invalid("content.hash.algorithm must be sha256"));
    }
    let hash_value = hash
        .value
        .ok_or_else(|| EntryError::invalid("missing content.hash.value"))?;
    // a SHA-256 digest in hex, stored in lowercase: nothing else rides along in the body
    if hash_value.len() != 64 || !hash_value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(EntryError::invalid(
            "content.hash.value must be a SHA-256 digest: 64 hex digits",
        ));
    }
    let hash_value = hash_value.to_ascii_lowercase();
    if let Some(ph) = &content.payload_hash
        && ph.algorithm.as_deref() != Some("sha256")
    {
        return Err(EntryError::invalid(
            "content.payloadHash.algorithm must be sha256",
        ));
    }
    let outer_payload = env.payload.unwrap_or_default();
    if outer_payload.is_empty() {
        return Err(EntryError::invalid(
            "entry not insertable into log: missing envelope content",
        ));
    }
    let inner_payload = b64_std("envelope payload", &outer_payload)?;
    let inner_payload = String::from_utf8(inner_payload)
        .map_err(|_| EntryError::invalid("could not decode envelope payload: not base64 text"))?;
    let payload = STANDARD
        .decode(inner_payload.as_bytes())
        .map_err(|e| EntryError::invalid(format!("could not decode envelope payload: {e}")))?;
    let message = pae(&payload_type, &payload);

    struct Sig {
        keyid: Option<String>,
        outer_sig: Vec<u8>,
        raw_sig: Vec<u8>,
        key_pem: Vec<u8>,
    }
    let mut sigs = Vec::new();
    let mut keys = Vec::new();
    let mut materials = Vec::new();
    for s in &env.signatures {
        let outer = b64_std(
            "signature",
            s.sig
                .as_deref()
                .ok_or_else(|| EntryError::invalid("missing signature sig"))?,
        )?;
        let raw = std::str::from_utf8(&outer)
            .ok()
            .and_then(b64_flexible)
            .ok_or_else(|| {
                EntryError::invalid("could not verify envelope: unable to base64 decode signature")
            })?;
        let pk_b64 = s
            .public_key
            .as_deref()
            .ok_or_else(|| EntryError::invalid("missing signature publicKey"))?;
        if s.keyid
            .as_ref()
            .is_some_and(|k| k.len() > super::MAX_KEYID_BYTES)
        {
            return Err(EntryError::invalid(format!(
                "a signature's keyid is longer than {} bytes",
                super::MAX_KEYID_BYTES
            )));
        }
        let km = key_material("public key", pk_b64)?;
        key_index_keys(&km, "sha256:", &mut keys);
        sigs.push(Sig {
            keyid: s.keyid.clone().filter(|k| !k.is_empty()),
            outer_sig: outer,
            raw_sig: raw,
            key_pem: b64_std("public key", pk_b64)?,
        });
        materials.push(km);
    }
    // each signature carries its own key: one verification per signature, never every
    // key against every signature (16 RSA-4096 signers would cost 256 verifications)
    for (i, (km, s)) in materials.iter().zip(&sigs).enumerate() {
        if check == super::Check::Verify
            && km
                .public_key()
                .verify_message(&message, &s.raw_sig)
                .is_err()
        {
            return Err(EntryError::invalid(format!(
                "could not verify envelope: signature {i} does not verify with its public key"
            )));
        }
    }
    let payload_hash = hex::encode(sha256(&payload));
    let signatures: Vec<serde_json::Value> = sigs
        .iter()
        .map(|s| {
            let mut v = json!({
                "publicKey": STANDARD.encode(&s.key_pem),
                "sig": STANDARD.encode(&s.outer_sig),
            });
            if let Some(k) = &s.keyid {
                v["keyid"] = json!(k);
            }
            v
        })
        .collect();
    let body = json!({
        "apiVersion": "0.0.2",
        "kind": "intoto",
        "spec": {"content": {
            "envelope": {"payloadType": payload_type, "signatures": signatures},
            "hash": {"algorithm": "sha256", "value": hash_value},
            "payloadHash": {"algorithm": "sha256", "value": payload_hash}
        }}
    });
    keys.push(format!("sha256:{payload_hash}"));
    in_toto_keys(&payload_type, &payload, &mut keys);
    Ok((jcs::to_vec(&body), keys))
}
