//! dsse 0.0.1: a DSSE envelope and the keys that signed it (Rekor
//! `pkg/types/dsse/v0.0.1`). The canonical body keeps hashes of the envelope and payload
//! and the signatures with their verifiers, not the payload itself.

use super::{b64_flexible, in_toto_keys, key_index_keys, key_material, pae, parse_spec};
use crate::{EntryError, jcs};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::json;
use sigstack_crypto::sha256;
use std::collections::BTreeMap;

#[derive(Deserialize)]
struct Spec {
    #[serde(rename = "proposedContent")]
    proposed_content: Option<ProposedContent>,
}

#[derive(Deserialize)]
struct ProposedContent {
    envelope: Option<String>,
    #[serde(default)]
    verifiers: Vec<String>,
}

#[derive(Deserialize)]
pub(super) struct Envelope {
    #[serde(default)]
    pub payload: String,
    #[serde(default, rename = "payloadType")]
    pub payload_type: String,
    #[serde(default)]
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Deserialize)]
pub(super) struct EnvelopeSignature {
    #[serde(default)]
    pub sig: String,
}

/// A DSSE envelope as JSON text: one to `MAX_SIGNATURES` signatures and a payload that
/// decodes; returns the envelope and the payload's bytes.
pub(super) fn parse_envelope(text: &str) -> Result<(Envelope, Vec<u8>), EntryError> {
    let env: Envelope = serde_json::from_str(text)
        .map_err(|e| EntryError::invalid(format!("invalid DSSE envelope: {e}")))?;
    if env.signatures.is_empty() {
        return Err(EntryError::invalid(
            "DSSE envelope must contain 1 or more signatures",
        ));
    }
    if env.signatures.len() > super::MAX_SIGNATURES {
        return Err(EntryError::invalid(format!(
            "at most {} signatures are accepted",
            super::MAX_SIGNATURES
        )));
    }
    let payload = b64_flexible(&env.payload)
        .ok_or_else(|| EntryError::invalid("could not decode envelope payload"))?;
    Ok((env, payload))
}

pub(super) fn canonicalize(spec: &serde_json::Value) -> Result<(Vec<u8>, Vec<String>), EntryError> {
    let spec: Spec = parse_spec(spec, "dsse")?;
    let pc = spec
        .proposed_content
        .ok_or_else(|| EntryError::invalid("missing proposedContent"))?;
    let envelope_text = pc
        .envelope
        .ok_or_else(|| EntryError::invalid("missing proposedContent.envelope"))?;
    let verifiers = pc
        .verifiers
        .iter()
        .filter(|v| !v.is_empty())
        .map(|v| key_material("verifier", v))
        .collect::<Result<Vec<_>, _>>()?;
    if pc.verifiers.len() > super::MAX_SIGNATURES {
        return Err(EntryError::invalid(format!(
            "at most {} verifiers are accepted",
            super::MAX_SIGNATURES
        )));
    }
    if verifiers.is_empty() {
        return Err(EntryError::invalid(
            "proposedContent.verifiers must hold at least one public key or certificate",
        ));
    }
    let (env, payload) = parse_envelope(&envelope_text)?;
    let message = pae(&env.payload_type, &payload);
    let sigs: Vec<Vec<u8>> = env
        .signatures
        .iter()
        .map(|s| {
            b64_flexible(&s.sig).ok_or_else(|| {
                EntryError::invalid("could not verify envelope: unable to base64 decode signature")
            })
        })
        .collect::<Result<_, _>>()?;

    // Each verifier must verify one signature not yet verified; every signature needs one.
    let mut verified: BTreeMap<String, String> = BTreeMap::new();
    let mut keys = Vec::new();
    for km in &verifiers {
        // as Rekor: once every signature is verified, further verifiers are not consulted
        if env.signatures.iter().all(|s| verified.contains_key(&s.sig)) {
            break;
        }
        let hit = env.signatures.iter().zip(&sigs).find(|(s, raw)| {
            !verified.contains_key(&s.sig) && km.public_key().verify_message(&message, raw).is_ok()
        });
        let Some((s, _)) = hit else {
            return Err(EntryError::invalid(
                "could not verify envelope: accepted signatures do not match threshold, Found: 0, Expected 1",
            ));
        };
        verified.insert(
            s.sig.clone(),
            STANDARD.encode(km.canonical_pem().as_bytes()),
        );
        key_index_keys(km, "sha256:", &mut keys);
    }
    if env
        .signatures
        .iter()
        .any(|s| !verified.contains_key(&s.sig))
    {
        return Err(EntryError::invalid(
            "all signatures must have a key that verifies it",
        ));
    }
    let envelope_hash = hex::encode(sha256(envelope_text.as_bytes()));
    let payload_hash = hex::encode(sha256(&payload));
    let signatures: Vec<serde_json::Value> = verified
        .iter()
        .map(|(sig, verifier)| json!({"signature": sig, "verifier": verifier}))
        .collect();
    let body = json!({
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {
            "envelopeHash": {"algorithm": "sha256", "value": envelope_hash},
            "payloadHash": {"algorithm": "sha256", "value": payload_hash},
            "signatures": signatures
        }
    });
    keys.push(format!("sha256:{payload_hash}"));
    keys.push(format!("sha256:{envelope_hash}"));
    in_toto_keys(&env.payload_type, &payload, &mut keys);
    Ok((jcs::to_vec(&body), keys))
}
