//! intoto 0.0.1: a DSSE envelope (as a JSON string) and the one key or certificate that
//! signed it (Rekor `pkg/types/intoto/v0.0.1`), what cosign's `attest --rekor-entry-type
//! intoto` uploads and what its online lookup of attestations asks for. The canonical body
//! keeps the key, the SHA-256 of the envelope string and of the payload.
//!
//! Unlike Rekor, a proposal must carry its envelope: Rekor also takes bare hashes with a
//! key, which would let anyone log a hash under someone else's key with no signature.

use super::{b64_flexible, in_toto_keys, key_index_keys, key_material, pae, parse_spec};
use crate::{EntryError, jcs};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::json;
use sigstack_crypto::sha256;

#[derive(Deserialize)]
struct Spec {
    content: Option<Content>,
    #[serde(rename = "publicKey")]
    public_key: Option<String>,
}

#[derive(Deserialize)]
struct Content {
    envelope: Option<String>,
}

pub(super) fn canonicalize(
    spec: &serde_json::Value,
    check: super::Check,
) -> Result<(Vec<u8>, Vec<String>), EntryError> {
    let spec: Spec = parse_spec(spec, "intoto")?;
    let key_b64 = spec
        .public_key
        .filter(|k| !k.is_empty())
        .ok_or_else(|| EntryError::invalid("missing public key in intoto v0.0.1 entry"))?;
    let km = key_material("public key", &key_b64)?;
    let envelope_text = spec
        .content
        .and_then(|c| c.envelope)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| EntryError::invalid("missing content.envelope in intoto v0.0.1 entry"))?;
    let (env, payload) = super::dsse::parse_envelope(&envelope_text)?;
    let message = pae(&env.payload_type, &payload);
    // one verifier, threshold one: some signature must verify with the key
    let verified = check == super::Check::LookupOnly
        || env.signatures.iter().any(|s| {
            b64_flexible(&s.sig)
                .is_some_and(|raw| km.public_key().verify_message(&message, &raw).is_ok())
        });
    if !verified {
        return Err(EntryError::invalid(
            "could not verify envelope: accepted signatures do not match threshold, Found: 0, Expected 1",
        ));
    }
    let envelope_hash = hex::encode(sha256(envelope_text.as_bytes()));
    let payload_hash = hex::encode(sha256(&payload));
    let body = json!({
        "apiVersion": "0.0.1",
        "kind": "intoto",
        "spec": {
            "content": {
                "hash": {"algorithm": "sha256", "value": envelope_hash},
                "payloadHash": {"algorithm": "sha256", "value": payload_hash}
            },
            "publicKey": STANDARD.encode(km.canonical_pem().as_bytes())
        }
    });
    let mut keys = vec![
        format!("sha256:{envelope_hash}"),
        format!("sha256:{payload_hash}"),
    ];
    key_index_keys(&km, "sha256:", &mut keys);
    in_toto_keys(&env.payload_type, &payload, &mut keys);
    Ok((jcs::to_vec(&body), keys))
}
