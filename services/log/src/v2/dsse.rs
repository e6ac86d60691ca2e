//! `dsseRequestV002`: a DSSE envelope with the verifiers of its signatures. Every
//! signature must verify with one of the verifiers over the pre-authentication encoding;
//! the body lists each signature with the verifier that checked it, sorted by the raw
//! signature bytes, and the payload's SHA-256 (never the payload itself).

use super::{VerifierIn, bytes_field, invalid};
use crate::EntryError;
use crate::kinds::{MAX_SIGNATURES, pae};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DsseRequest {
    envelope: Option<Envelope>,
    #[serde(default)]
    verifiers: Vec<VerifierIn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Envelope {
    payload: Option<String>,
    #[serde(alias = "payload_type")]
    payload_type: Option<String>,
    #[serde(default)]
    signatures: Vec<EnvelopeSignature>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvelopeSignature {
    sig: Option<String>,
    #[allow(dead_code)]
    keyid: Option<String>,
}

pub(super) fn canonicalize(d: DsseRequest) -> Result<(Value, Vec<String>), EntryError> {
    let env = d.envelope.ok_or_else(|| invalid("missing envelope"))?;
    if d.verifiers.is_empty() {
        return Err(invalid("missing verifiers"));
    }
    if d.verifiers.len() > MAX_SIGNATURES || env.signatures.len() > MAX_SIGNATURES {
        return Err(invalid(format!(
            "at most {MAX_SIGNATURES} signatures and {MAX_SIGNATURES} verifiers"
        )));
    }
    if env.signatures.is_empty() {
        return Err(invalid("the envelope has no signatures"));
    }
    let verifiers = d
        .verifiers
        .into_iter()
        .map(VerifierIn::check)
        .collect::<Result<Vec<_>, _>>()?;
    for (i, v) in verifiers.iter().enumerate() {
        if verifiers[..i].iter().any(|w| w.raw == v.raw) {
            return Err(invalid("duplicate verifier"));
        }
    }
    let payload = bytes_field("payload", env.payload.as_deref().unwrap_or(""))?;
    let payload_type = env.payload_type.unwrap_or_default();
    let pae = pae(&payload_type, &payload);
    // the PAE hashed once per algorithm the verifiers use, not once per pair
    let mut digests: Vec<(sigstack_crypto::HashAlg, Vec<u8>)> = Vec::new();
    for v in &verifiers {
        if !digests.iter().any(|(h, _)| *h == v.hash) {
            digests.push((v.hash, v.hash.digest(&pae)));
        }
    }
    let digest_of = |h: sigstack_crypto::HashAlg| {
        digests
            .iter()
            .find(|(a, _)| *a == h)
            .map(|(_, d)| d.as_slice())
            .unwrap_or_default()
    };
    let mut signed: Vec<(Vec<u8>, usize)> = Vec::new();
    for s in &env.signatures {
        let sig = bytes_field("signature", s.sig.as_deref().unwrap_or(""))?;
        if sig.is_empty() {
            return Err(invalid("an envelope signature is empty"));
        }
        if signed.iter().any(|(other, _)| *other == sig) {
            return Err(invalid("duplicate signature"));
        }
        let by = verifiers
            .iter()
            .position(|v| {
                super::check_encoding(v, &sig).is_ok()
                    && v.key.verify_digest(v.hash, digest_of(v.hash), &sig).is_ok()
            })
            .ok_or_else(|| invalid("an envelope signature verifies with none of the verifiers"))?;
        signed.push((sig, by));
    }
    signed.sort();
    let mut keys: Vec<String> = Vec::new();
    for (_, by) in &signed {
        keys.extend(verifiers[*by].index_keys.iter().cloned());
    }
    crate::kinds::in_toto_keys(&payload_type, &payload, &mut keys);
    let signatures: Vec<Value> = signed
        .iter()
        .map(|(sig, by)| json!({"content": STANDARD.encode(sig), "verifier": verifiers[*by].body}))
        .collect();
    Ok((
        json!({"dsseV002": {
            "payloadHash": {"algorithm": "SHA2_256", "digest": STANDARD.encode(sigstack_crypto::sha256(&payload))},
            "signatures": signatures,
        }}),
        keys,
    ))
}
