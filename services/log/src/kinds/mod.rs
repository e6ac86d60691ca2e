//! Entry kinds: validation of a proposed entry, its canonical body (the Merkle leaf) and
//! the search-index keys it is found by. Semantics follow Rekor's `pkg/types`.

mod dsse;
mod hashedrekord;
mod intoto;
mod intoto_v001;

use crate::EntryError;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use sigstack_crypto::{KeyMaterial, sha256};
use sigstack_merkle::{Hash, leaf_hash};
use sigstack_types::rekor::ProposedEntry;

/// A validated entry, ready to be logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Canonical {
    pub kind: &'static str,
    pub api_version: &'static str,
    /// RFC 8785 JSON of the canonical entry: the Merkle leaf.
    pub body: Vec<u8>,
    pub leaf_hash: Hash,
    /// Lower-case keys for `POST /api/v1/index/retrieve`.
    pub index_keys: Vec<String>,
}

/// Most signatures (and verifiers) one DSSE or in-toto entry may carry: each costs a
/// signature check, so the work per request stays bounded.
pub const MAX_SIGNATURES: usize = 8;
/// The longest DSSE `keyid` an entry may carry (it is stored in the body).
pub const MAX_KEYID_BYTES: usize = 256;

/// Most search keys one entry is indexed under, and the longest key kept.
const MAX_INDEX_KEYS: usize = 64;
const MAX_INDEX_KEY_LEN: usize = 256;

/// Kinds Rekor knows that this server does not accept for submission.
const OTHER_REKOR_KINDS: &[&str] = &[
    "rekord", "rpm", "jar", "alpine", "helm", "cose", "tuf", "rfc3161",
];

/// Whether signatures are checked while canonicalising.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Everything, as for a submission.
    Verify,
    /// Only what the canonical body depends on, to find an entry by its leaf hash
    /// (`/api/v1/log/entries/retrieve`): a body that was logged was verified then, and a
    /// lookup must not cost signature checks. DSSE entries are still verified: their body
    /// pairs each signature with the verifier that checked it.
    LookupOnly,
}

/// Validates a proposed entry (signatures included) and canonicalises it.
pub fn canonicalize(entry: &ProposedEntry) -> Result<Canonical, EntryError> {
    canonicalize_with(entry, Check::Verify)
}

/// The canonical body and leaf hash a proposed entry would have, for looking it up:
/// signatures are not checked where the body does not depend on them.
pub fn canonicalize_for_lookup(entry: &ProposedEntry) -> Result<Canonical, EntryError> {
    canonicalize_with(entry, Check::LookupOnly)
}

fn canonicalize_with(entry: &ProposedEntry, check: Check) -> Result<Canonical, EntryError> {
    if !is_semver(&entry.api_version) {
        return Err(EntryError::Shape(format!(
            "apiVersion {:?} is not a semantic version",
            entry.api_version
        )));
    }
    let (kind, version, spec) = (entry.kind.as_str(), entry.api_version.as_str(), &entry.spec);
    let (body, keys, kind, version) = match (kind, version) {
        ("hashedrekord", "0.0.1") => {
            let (b, k) = hashedrekord::canonicalize(spec, check)?;
            (b, k, "hashedrekord", "0.0.1")
        }
        ("dsse", "0.0.1") => {
            let (b, k) = dsse::canonicalize(spec)?;
            (b, k, "dsse", "0.0.1")
        }
        ("intoto", "0.0.1") => {
            let (b, k) = intoto_v001::canonicalize(spec, check)?;
            (b, k, "intoto", "0.0.1")
        }
        ("intoto", "0.0.2") => {
            let (b, k) = intoto::canonicalize(spec, check)?;
            (b, k, "intoto", "0.0.2")
        }
        ("hashedrekord" | "dsse" | "intoto", v) => {
            return Err(EntryError::Unsupported(format!(
                "{kind} implementation for version '{v}' not found: this server accepts hashedrekord 0.0.1, dsse 0.0.1 and intoto 0.0.1 and 0.0.2"
            )));
        }
        (k, _) if OTHER_REKOR_KINDS.contains(&k) => {
            return Err(EntryError::Unsupported(format!(
                "entry kind '{k}' is not enabled for submission on this server"
            )));
        }
        (k, _) => return Err(EntryError::UnknownKind(k.to_string())),
    };
    Ok(Canonical {
        kind,
        api_version: version,
        leaf_hash: leaf_hash(&body),
        body,
        index_keys: bounded_index_keys(keys),
    })
}

/// Keys come from client input (certificate SANs, in-toto digests): keep the ones a
/// database index can hold, and a bounded number of them, lower-cased and sorted.
pub(crate) fn bounded_index_keys(keys: Vec<String>) -> Vec<String> {
    let mut index_keys: Vec<String> = keys
        .into_iter()
        .filter(|k| {
            !k.is_empty() && k.len() <= MAX_INDEX_KEY_LEN && !k.chars().any(char::is_control)
        })
        .map(|k| k.to_lowercase())
        .collect();
    index_keys.sort();
    index_keys.dedup();
    index_keys.truncate(MAX_INDEX_KEYS);
    index_keys
}

fn is_semver(v: &str) -> bool {
    let parts: Vec<&str> = v.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn parse_spec<T: serde::de::DeserializeOwned>(
    spec: &serde_json::Value,
    kind: &str,
) -> Result<T, EntryError> {
    // deserialised from the borrowed value: no copy of the spec
    T::deserialize(spec).map_err(|e| EntryError::invalid(format!("invalid {kind} spec: {e}")))
}

fn b64_std(field: &str, s: &str) -> Result<Vec<u8>, EntryError> {
    STANDARD
        .decode(s.as_bytes())
        .map_err(|e| EntryError::invalid(format!("failed parsing base64 data for {field}: {e}")))
}

/// Standard base64, falling back to URL-safe (DSSE payloads and signatures).
fn b64_flexible(s: &str) -> Option<Vec<u8>> {
    STANDARD.decode(s).ok().or_else(|| URL_SAFE.decode(s).ok())
}

/// Parses base64-encoded PEM key material.
fn key_material(field: &str, b64: &str) -> Result<KeyMaterial, EntryError> {
    let pem = b64_std(field, b64)?;
    KeyMaterial::from_pem(&pem).map_err(|e| EntryError::invalid(format!("invalid public key: {e}")))
}

/// Index keys of a verifier: hex SHA-256 of its canonical PEM (`prefix` + hex) and its SANs.
fn key_index_keys(km: &KeyMaterial, prefix: &str, out: &mut Vec<String>) {
    out.push(format!(
        "{prefix}{}",
        crate::ids::hex(&sha256(km.canonical_pem().as_bytes()))
    ));
    out.extend(km.subjects());
}

/// DSSE pre-authentication encoding (DSSE v1 protocol).
pub(crate) fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// `<alg>:<hex>` keys for the subjects of an in-toto statement (and SLSA v0.2 materials).
pub(crate) fn in_toto_keys(payload_type: &str, payload: &[u8], out: &mut Vec<String>) {
    if payload_type != "application/vnd.in-toto+json" {
        return;
    }
    let Ok(stmt) = serde_json::from_slice::<serde_json::Value>(payload) else {
        return;
    };
    let mut add = |list: Option<&Vec<serde_json::Value>>| {
        for item in list.into_iter().flatten() {
            if let Some(d) = item.get("digest").and_then(|d| d.as_object()) {
                for (alg, v) in d {
                    if let Some(v) = v.as_str() {
                        out.push(format!("{alg}:{v}"));
                    }
                }
            }
        }
    };
    add(stmt.get("subject").and_then(|s| s.as_array()));
    add(stmt
        .get("predicate")
        .and_then(|p| p.get("materials"))
        .and_then(|m| m.as_array()));
}

#[cfg(test)]
mod tests;
