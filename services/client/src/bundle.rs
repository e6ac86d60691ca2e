//! Sigstore bundles (protobuf-specs `dev.sigstore.bundle.v1.Bundle`, in protobuf JSON):
//! versions 0.1 to 0.3 under both media-type spellings.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
#[error("malformed bundle: {0}")]
pub struct BundleError(pub String);

fn bad(m: impl std::fmt::Display) -> BundleError {
    BundleError(m.to_string())
}

pub fn b64(field: &str, v: &str) -> Result<Vec<u8>, BundleError> {
    STANDARD
        .decode(v.trim())
        .map_err(|_| bad(format!("{field} is not valid base64")))
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
    pub raw_bytes: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertChain {
    #[serde(default)]
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
    pub log_index: String,
    pub root_hash: String,
    pub tree_size: String,
    #[serde(default)]
    pub hashes: Vec<String>,
    pub checkpoint: Option<Checkpoint>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InclusionPromise {
    pub signed_entry_timestamp: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogId {
    pub key_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlogEntry {
    pub log_index: String,
    pub log_id: LogId,
    pub kind_version: KindVersion,
    #[serde(default)]
    pub integrated_time: Option<String>,
    pub inclusion_promise: Option<InclusionPromise>,
    pub inclusion_proof: Option<InclusionProof>,
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
    pub signed_timestamp: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimestampData {
    #[serde(default)]
    pub rfc3161_timestamps: Vec<Rfc3161>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Material {
    pub certificate: Option<RawBytes>,
    pub x509_certificate_chain: Option<CertChain>,
    pub public_key: Option<PublicKeyHint>,
    #[serde(default)]
    pub tlog_entries: Vec<TlogEntry>,
    #[serde(default)]
    pub timestamp_verification_data: Option<TimestampData>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageDigest {
    pub algorithm: String,
    pub digest: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageSignature {
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
    pub payload_type: String,
    #[serde(default)]
    pub signatures: Vec<DsseSignature>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    pub media_type: String,
    pub verification_material: Material,
    pub message_signature: Option<MessageSignature>,
    pub dsse_envelope: Option<DsseEnvelope>,
}

impl Bundle {
    pub fn parse(bytes: &[u8]) -> Result<(Self, Version), BundleError> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
        let b: Bundle = serde_json::from_value(v).map_err(bad)?;
        let version = Version::from_media_type(&b.media_type)?;
        match (&b.message_signature, &b.dsse_envelope) {
            (Some(_), None) | (None, Some(_)) => {}
            _ => return Err(bad("exactly one of messageSignature and dsseEnvelope")),
        }
        Ok((b, version))
    }
}
