//! Rekor v2 entries (`POST /api/v2/log/entries`, rekor-tiles' `CreateEntryRequest` in
//! protobuf JSON): validation, signature verification and the canonical body, byte for
//! byte as rekor-tiles stores it (protojson names and padded base64, then RFC 8785), so
//! that clients rebuilding the body from a bundle hash to the same leaf.
//!
//! `hashedRekordRequestV002` is what every current client sends (attestations as a
//! hashedrekord over the DSSE pre-authentication encoding); `dsseRequestV002` is kept for
//! sigstore-js, which still sends it (rekor-tiles has dropped it).

mod dsse;

use crate::{Canonical, EntryError, jcs};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::{Value, json};
use sigstack_crypto::{Certificate, HashAlg, PublicKey};
use sigstack_merkle::leaf_hash;

/// The largest canonical body a v2 log stores: tlog-tiles entry bundles prefix each
/// entry with a 16-bit length.
pub const MAX_BODY_BYTES: usize = u16::MAX as usize;

/// `CreateEntryRequest`: exactly one of the two kinds. Unknown fields are refused, as
/// rekor-tiles refuses them; protobuf's own field names are accepted as protojson does.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateEntryRequest {
    #[serde(alias = "hashed_rekord_request_v002")]
    hashed_rekord_request_v002: Option<HashedRekordRequest>,
    #[serde(alias = "dsse_request_v002")]
    dsse_request_v002: Option<dsse::DsseRequest>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HashedRekordRequest {
    digest: Option<String>,
    signature: Option<SignatureIn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureIn {
    content: Option<String>,
    verifier: Option<VerifierIn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct VerifierIn {
    #[serde(alias = "public_key")]
    public_key: Option<RawBytes>,
    #[serde(alias = "x509_certificate")]
    x509_certificate: Option<RawBytes>,
    #[serde(alias = "key_details")]
    key_details: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawBytes {
    #[serde(alias = "raw_bytes")]
    raw_bytes: Option<String>,
}

/// A verifier checked and ready: the key, the hash its `keyDetails` prescribes, and the
/// verifier as it goes into the body (raw bytes as submitted, re-encoded canonically).
pub(crate) struct Verifier {
    pub(crate) key: PublicKey,
    pub(crate) hash: HashAlg,
    pub(crate) body: Value,
    /// The raw certificate or key bytes (what tells two verifiers apart).
    pub(crate) raw: Vec<u8>,
    /// Search keys: the certificate's identities, the key's fingerprint.
    pub(crate) index_keys: Vec<String>,
}

fn invalid(msg: impl Into<String>) -> EntryError {
    EntryError::Invalid(msg.into())
}

/// protobuf JSON `bytes`: standard or URL-safe base64, padded or not.
pub(crate) fn bytes_field(field: &str, s: &str) -> Result<Vec<u8>, EntryError> {
    [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(s).ok())
        .ok_or_else(|| invalid(format!("{field} is not base64")))
}

/// The digest a `keyDetails` value prescribes, and the key it must name. Only what
/// rekor-tiles allows by default: ECDSA P-256/384/521, RSA PKCS#1 v1.5 2048–4096 with
/// SHA-256, and Ed25519ph (pure Ed25519 does not prehash, so hashedrekord cannot carry it).
fn algorithm(key_details: &str, key: &PublicKey) -> Result<HashAlg, EntryError> {
    let hash = match key_details {
        "PKIX_ECDSA_P256_SHA_256"
        | "PKIX_RSA_PKCS1V15_2048_SHA256"
        | "PKIX_RSA_PKCS1V15_3072_SHA256"
        | "PKIX_RSA_PKCS1V15_4096_SHA256" => HashAlg::Sha256,
        "PKIX_ECDSA_P384_SHA_384" => HashAlg::Sha384,
        "PKIX_ECDSA_P521_SHA_512" | "PKIX_ED25519_PH" => HashAlg::Sha512,
        "" | "PUBLIC_KEY_DETAILS_UNSPECIFIED" => {
            return Err(invalid("the verifier has no keyDetails"));
        }
        other => {
            return Err(invalid(format!(
                "keyDetails {other} is not allowed: use one of PKIX_ECDSA_P256_SHA_256, PKIX_ECDSA_P384_SHA_384, PKIX_ECDSA_P521_SHA_512, PKIX_RSA_PKCS1V15_{{2048,3072,4096}}_SHA256, PKIX_ED25519_PH"
            )));
        }
    };
    // the key must be what keyDetails says (a P-256 key cannot claim SHA-384)
    let expected = match key.key_details() {
        "PKIX_ED25519" => "PKIX_ED25519_PH",
        d => d,
    };
    if expected != key_details {
        return Err(invalid(format!(
            "keyDetails {key_details} does not fit the verifier's {} key",
            key.describe()
        )));
    }
    Ok(hash)
}

impl VerifierIn {
    pub(crate) fn check(self) -> Result<Verifier, EntryError> {
        let details = self.key_details.unwrap_or_default();
        let raw_of = |r: RawBytes, what: &str| -> Result<Vec<u8>, EntryError> {
            let raw = bytes_field(what, r.raw_bytes.as_deref().unwrap_or(""))?;
            if raw.is_empty() {
                return Err(invalid(format!("missing {what} raw bytes")));
            }
            Ok(raw)
        };
        let (key, raw, which, mut index_keys) = match (self.public_key, self.x509_certificate) {
            (Some(k), None) => {
                let raw = raw_of(k, "public key")?;
                let key = PublicKey::from_spki_der(&raw)
                    .map_err(|e| invalid(format!("parsing the public key: {e}")))?;
                (key, raw, "publicKey", Vec::new())
            }
            (None, Some(c)) => {
                let raw = raw_of(c, "X.509 certificate")?;
                let cert = Certificate::from_der(&raw)
                    .map_err(|e| invalid(format!("parsing the certificate: {e}")))?;
                (
                    cert.public_key().clone(),
                    raw,
                    "x509Certificate",
                    cert.subjects(),
                )
            }
            (None, None) => {
                return Err(invalid(
                    "the verifier must hold a public key or an X.509 certificate",
                ));
            }
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "the verifier holds both a public key and a certificate: one only",
                ));
            }
        };
        let hash = algorithm(&details, &key)?;
        index_keys.push(hex::encode(sigstack_crypto::sha256(key.spki_der())));
        Ok(Verifier {
            body: json!({ which: {"rawBytes": STANDARD.encode(&raw)}, "keyDetails": details }),
            key,
            hash,
            raw,
            index_keys,
        })
    }
}

/// An ECDSA signature must be ASN.1 DER, as rekor-tiles (Go's `VerifyASN1`) requires:
/// the same signature in fixed-width r||s would otherwise be a second entry, and one
/// other verifiers cannot check.
pub(crate) fn check_encoding(v: &Verifier, sig: &[u8]) -> Result<(), EntryError> {
    let ecdsa = v.body["keyDetails"]
        .as_str()
        .is_some_and(|d| d.starts_with("PKIX_ECDSA"));
    if ecdsa && !is_der_ecdsa(sig) {
        return Err(invalid(
            "an ECDSA signature must be ASN.1 DER (SEQUENCE of two INTEGERs)",
        ));
    }
    Ok(())
}

/// A DER `SEQUENCE { INTEGER r, INTEGER s }` with short or one-byte long lengths, and
/// nothing after it.
fn is_der_ecdsa(sig: &[u8]) -> bool {
    fn len_at(b: &[u8], at: usize) -> Option<(usize, usize)> {
        match *b.get(at)? {
            n if n < 0x80 => Some((n as usize, at + 1)),
            0x81 => {
                let n = *b.get(at + 1)? as usize;
                (n >= 0x80).then_some((n, at + 2))
            }
            _ => None,
        }
    }
    fn integer(b: &[u8], at: usize) -> Option<usize> {
        if *b.get(at)? != 0x02 {
            return None;
        }
        let (n, start) = len_at(b, at + 1)?;
        let v = b.get(start..start + n)?;
        // minimal and positive
        let minimal = match v {
            [] => false,
            [0x00, next, ..] => *next >= 0x80,
            [first, ..] => *first < 0x80,
        };
        minimal.then_some(start + n)
    }
    (|| {
        if *sig.first()? != 0x30 {
            return None;
        }
        let (n, start) = len_at(sig, 1)?;
        if start + n != sig.len() {
            return None;
        }
        let after_r = integer(sig, start)?;
        let after_s = integer(sig, after_r)?;
        (after_s == sig.len()).then_some(())
    })()
    .is_some()
}

/// The name protobuf-specs gives a digest algorithm.
pub(crate) fn hash_name(h: HashAlg) -> &'static str {
    match h {
        HashAlg::Sha256 => "SHA2_256",
        HashAlg::Sha384 => "SHA2_384",
        HashAlg::Sha512 => "SHA2_512",
    }
}

/// Parses, verifies and canonicalises a `CreateEntryRequest` body.
pub fn canonicalize(request: &[u8]) -> Result<Canonical, EntryError> {
    let req: CreateEntryRequest = serde_json::from_slice(request)
        .map_err(|e| EntryError::Shape(format!("invalid CreateEntryRequest: {e}")))?;
    let (kind, body, keys) = match (req.hashed_rekord_request_v002, req.dsse_request_v002) {
        (Some(h), None) => {
            let (b, k) = hashed_rekord(h)?;
            ("hashedrekord", b, k)
        }
        (None, Some(d)) => {
            let (b, k) = dsse::canonicalize(d)?;
            ("dsse", b, k)
        }
        _ => {
            return Err(EntryError::Shape(
                "a CreateEntryRequest holds exactly one of hashedRekordRequestV002 and dsseRequestV002".into(),
            ));
        }
    };
    let body = jcs::to_vec(&json!({"apiVersion": "0.0.2", "kind": kind, "spec": body}));
    if body.len() > MAX_BODY_BYTES {
        return Err(invalid(format!(
            "the entry is {} bytes; this log stores entries up to {MAX_BODY_BYTES}",
            body.len()
        )));
    }
    Ok(Canonical {
        kind,
        api_version: "0.0.2",
        leaf_hash: leaf_hash(&body),
        body,
        index_keys: crate::kinds::bounded_index_keys(keys),
    })
}

fn hashed_rekord(h: HashedRekordRequest) -> Result<(Value, Vec<String>), EntryError> {
    let sig = h.signature.ok_or_else(|| invalid("missing signature"))?;
    let content = bytes_field("signature content", sig.content.as_deref().unwrap_or(""))?;
    if content.is_empty() {
        return Err(invalid("missing signature"));
    }
    let verifier = sig
        .verifier
        .ok_or_else(|| invalid("missing verifier"))?
        .check()?;
    let digest = bytes_field("digest", h.digest.as_deref().unwrap_or(""))?;
    if digest.is_empty() {
        return Err(invalid("missing digest"));
    }
    if digest.len() != verifier.hash.len() {
        return Err(invalid(format!(
            "the digest has {} bytes; {} takes a {}-byte {} digest",
            digest.len(),
            verifier.body["keyDetails"].as_str().unwrap_or(""),
            verifier.hash.len(),
            verifier.hash.name()
        )));
    }
    check_encoding(&verifier, &content)?;
    verifier
        .key
        .verify_digest(verifier.hash, &digest, &content)
        .map_err(|e| invalid(format!("verifying signature: {e}")))?;
    let mut keys = verifier.index_keys;
    keys.push(format!("{}:{}", verifier.hash.name(), hex::encode(&digest)));
    Ok((
        json!({"hashedRekordV002": {
            "data": {"algorithm": hash_name(verifier.hash), "digest": STANDARD.encode(&digest)},
            "signature": {"content": STANDARD.encode(&content), "verifier": verifier.body},
        }}),
        keys,
    ))
}

#[cfg(test)]
mod tests;
