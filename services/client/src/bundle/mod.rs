//! Sigstore bundles (protobuf-specs `dev.sigstore.bundle.v1.Bundle`, in protobuf JSON):
//! versions 0.1 to 0.3 under both media-type spellings, read strictly and within bounds
//! (see `strict`): at most `MAX_BUNDLE_BYTES`, no repeated keys, lists capped as they are
//! read, field names in protojson's camelCase or the proto's own snake_case.

pub mod strict;

use serde::Deserialize;
use std::io::Read;
use std::path::Path;

/// The largest bundle read (a DSSE attestation carries its whole statement; cosign's
/// default cap on an attachment is larger, but a bundle is read into memory at once).
pub const MAX_BUNDLE_BYTES: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
#[error("malformed bundle: {0}")]
pub struct BundleError(pub String);

fn bad(m: impl std::fmt::Display) -> BundleError {
    BundleError(m.to_string())
}

/// A protobuf `bytes` field's value.
pub fn b64(field: &str, v: &str) -> Result<Vec<u8>, BundleError> {
    strict::bytes(v).ok_or_else(|| bad(format!("{field} is not valid base64")))
}

/// Reads a bundle file, refusing one over `MAX_BUNDLE_BYTES` before reading it whole.
pub fn read_file(path: &Path) -> std::io::Result<Vec<u8>> {
    let f = std::fs::File::open(path)?;
    // the size the file says it has, within the cap: one allocation, no doubling
    let hint = f
        .metadata()
        .map_or(0, |m| m.len())
        .min(MAX_BUNDLE_BYTES as u64 + 1);
    let mut out = Vec::with_capacity(hint as usize);
    f.take(MAX_BUNDLE_BYTES as u64 + 1).read_to_end(&mut out)?;
    if out.len() > MAX_BUNDLE_BYTES {
        return Err(std::io::Error::other(format!(
            "{} is larger than a bundle may be ({} MiB)",
            path.display(),
            MAX_BUNDLE_BYTES >> 20
        )));
    }
    Ok(out)
}

/// Bundle format version (minor of 0.x).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    V01,
    V02,
    V03,
}

impl Version {
    pub fn from_media_type(m: &str) -> Result<Self, BundleError> {
        Ok(match m {
            "application/vnd.dev.sigstore.bundle+json;version=0.1" => Self::V01,
            "application/vnd.dev.sigstore.bundle+json;version=0.2" => Self::V02,
            "application/vnd.dev.sigstore.bundle+json;version=0.3"
            | "application/vnd.dev.sigstore.bundle.v0.3+json" => Self::V03,
            other => return Err(bad(format!("unsupported media type {other:?}"))),
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawBytes {
    #[serde(alias = "raw_bytes")]
    pub raw_bytes: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertChain {
    #[serde(default, deserialize_with = "strict::certificates")]
    pub certificates: Vec<RawBytes>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KindVersion {
    pub kind: String,
    pub version: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    pub envelope: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InclusionProof {
    #[serde(default, alias = "log_index", deserialize_with = "strict::int64")]
    pub log_index: i64,
    #[serde(alias = "root_hash")]
    pub root_hash: String,
    #[serde(default, alias = "tree_size", deserialize_with = "strict::int64")]
    pub tree_size: i64,
    #[serde(default, deserialize_with = "strict::proof_hashes")]
    pub hashes: Vec<String>,
    pub checkpoint: Option<Checkpoint>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InclusionPromise {
    #[serde(alias = "signed_entry_timestamp")]
    pub signed_entry_timestamp: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogId {
    #[serde(alias = "key_id")]
    pub key_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlogEntry {
    #[serde(default, alias = "log_index", deserialize_with = "strict::int64")]
    pub log_index: i64,
    #[serde(alias = "log_id")]
    pub log_id: LogId,
    #[serde(alias = "kind_version")]
    pub kind_version: KindVersion,
    /// 0 when absent (protobuf's default): Rekor v2 entries carry no time.
    #[serde(default, alias = "integrated_time", deserialize_with = "strict::int64")]
    pub integrated_time: i64,
    #[serde(default, alias = "inclusion_promise")]
    pub inclusion_promise: Option<InclusionPromise>,
    #[serde(default, alias = "inclusion_proof")]
    pub inclusion_proof: Option<InclusionProof>,
    #[serde(alias = "canonicalized_body")]
    pub canonicalized_body: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicKeyHint {
    #[serde(default)]
    pub hint: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rfc3161 {
    #[serde(alias = "signed_timestamp")]
    pub signed_timestamp: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimestampData {
    #[serde(
        default,
        alias = "rfc3161_timestamps",
        deserialize_with = "strict::timestamps"
    )]
    pub rfc3161_timestamps: Vec<Rfc3161>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Material {
    #[serde(default)]
    pub certificate: Option<RawBytes>,
    #[serde(default, alias = "x509_certificate_chain")]
    pub x509_certificate_chain: Option<CertChain>,
    #[serde(default, alias = "public_key")]
    pub public_key: Option<PublicKeyHint>,
    #[serde(
        default,
        alias = "tlog_entries",
        deserialize_with = "strict::tlog_entries"
    )]
    pub tlog_entries: Vec<TlogEntry>,
    #[serde(default, alias = "timestamp_verification_data")]
    pub timestamp_verification_data: Option<TimestampData>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageDigest {
    #[serde(deserialize_with = "strict::hash_algorithm")]
    pub algorithm: String,
    pub digest: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageSignature {
    #[serde(default, alias = "message_digest")]
    pub message_digest: Option<MessageDigest>,
    pub signature: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DsseSignature {
    pub sig: String,
    #[serde(default)]
    pub keyid: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DsseEnvelope {
    pub payload: String,
    #[serde(alias = "payload_type")]
    pub payload_type: String,
    #[serde(default, deserialize_with = "strict::dsse_signatures")]
    pub signatures: Vec<DsseSignature>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    #[serde(alias = "media_type")]
    pub media_type: String,
    #[serde(alias = "verification_material")]
    pub verification_material: Material,
    #[serde(default, alias = "message_signature")]
    pub message_signature: Option<MessageSignature>,
    #[serde(default, alias = "dsse_envelope")]
    pub dsse_envelope: Option<DsseEnvelope>,
}

impl Bundle {
    /// Parses a bundle: within `MAX_BUNDLE_BYTES`, no repeated keys, bounded lists.
    pub fn parse(bytes: &[u8]) -> Result<(Self, Version), BundleError> {
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err(bad(format!(
                "larger than a bundle may be ({} MiB)",
                MAX_BUNDLE_BYTES >> 20
            )));
        }
        let b: Bundle = strict::from_slice(bytes).map_err(bad)?;
        let version = Version::from_media_type(&b.media_type)?;
        match (&b.message_signature, &b.dsse_envelope) {
            (Some(_), None) | (None, Some(_)) => {}
            _ => return Err(bad("exactly one of messageSignature and dsseEnvelope")),
        }
        Ok((b, version))
    }
}
