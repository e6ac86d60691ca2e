//! hashedrekord 0.0.1: a signature over a digest, with the key or certificate that made
//! it (Rekor `pkg/types/hashedrekord/v0.0.1`).

use super::{b64_std, key_index_keys, key_material, parse_spec};
use crate::{EntryError, jcs};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::json;
use sigstack_crypto::{CryptoError, HashAlg, KeyMaterial};

#[derive(Deserialize)]
struct Spec {
    signature: Option<Signature>,
    data: Option<Data>,
}

#[derive(Deserialize)]
struct Signature {
    content: Option<String>,
    #[serde(rename = "publicKey")]
    public_key: Option<Content>,
}

#[derive(Deserialize)]
struct Content {
    content: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    hash: Option<HashValue>,
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
    let spec: Spec = parse_spec(spec, "hashedrekord")?;
    let sig = spec
        .signature
        .ok_or_else(|| EntryError::invalid("missing signature"))?;
    let key_b64 = sig
        .public_key
        .and_then(|k| k.content)
        .ok_or_else(|| EntryError::invalid("missing public key"))?;
    let sig_bytes = b64_std("signature content", sig.content.as_deref().unwrap_or(""))?;
    let km = key_material("public key content", &key_b64)?;
    let hash = spec
        .data
        .ok_or_else(|| EntryError::invalid("missing data"))?
        .hash
        .ok_or_else(|| EntryError::invalid("missing hash"))?;
    let alg_name = hash.algorithm.unwrap_or_default();
    let alg = HashAlg::parse(&alg_name).ok_or_else(|| {
        EntryError::invalid(format!(
            "data.hash.algorithm {alg_name:?} should be one of [sha256 sha384 sha512]"
        ))
    })?;
    let value = hash
        .value
        .ok_or_else(|| EntryError::invalid("missing hash value"))?;
    if value.len() != alg.len() * 2 {
        return Err(EntryError::invalid(format!(
            "invalid value for hash: a {} digest is {} hex digits, got {}",
            alg.name(),
            alg.len() * 2,
            value.len()
        )));
    }
    let digest = hex::decode(&value)
        .map_err(|e| EntryError::invalid(format!("invalid value for hash: {e}")))?;
    // one digest, one spelling: the same signature cannot be logged twice by changing
    // the case of its hex (clients write lowercase, as Rekor's examples do)
    let value = crate::ids::hex(&digest);
    if sig_bytes.is_empty() {
        return Err(EntryError::invalid("missing signature content"));
    }
    if check == super::Check::Verify {
        verify_chain(&km)?;
        km.public_key()
            .verify_digest(alg, &digest, &sig_bytes)
            .map_err(|e| match e {
                CryptoError::Unsupported(what) => {
                    EntryError::invalid(format!("entry algorithms are not allowed: {what}"))
                }
                other => EntryError::invalid(format!("verifying signature: {other}")),
            })?;
    }

    let pem = km.canonical_pem();
    let body = json!({
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": alg.name(), "value": value}},
            "signature": {
                "content": STANDARD.encode(&sig_bytes),
                "publicKey": {"content": STANDARD.encode(pem.as_bytes())}
            }
        }
    });
    let mut keys = Vec::new();
    key_index_keys(&km, "", &mut keys);
    keys.push(format!("{}:{}", alg.name(), value));
    Ok((jcs::to_vec(&body), keys))
}

/// A chain must be signed certificate by certificate, each valid at the leaf's
/// NotBefore (Rekor verifies chains at that instant).
fn verify_chain(km: &KeyMaterial) -> Result<(), EntryError> {
    let KeyMaterial::Certificates(certs) = km else {
        return Ok(());
    };
    if certs.len() < 2 {
        return Ok(());
    }
    km.verify_chain()
        .map_err(|e| EntryError::invalid(format!("verifying signature: {e}")))?;
    let at = certs[0].validity().0;
    for c in certs {
        let (nb, na) = c.validity();
        if at < nb || at > na {
            return Err(EntryError::invalid(
                "verifying signature: a certificate in the chain was not valid when the leaf was issued",
            ));
        }
    }
    Ok(())
}
