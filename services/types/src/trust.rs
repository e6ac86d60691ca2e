//! `trusted_root.json` (protobuf-specs `dev.sigstore.trustroot.v1.TrustedRoot`, media type
//! version 0.1) in protobuf-JSON form: camelCase names, base64 bytes.

use serde::{Deserialize, Serialize};

pub const TRUSTED_ROOT_MEDIA_TYPE: &str =
    "application/vnd.dev.sigstore.trustedroot+json;version=0.1";

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustedRoot {
    pub media_type: String,
    #[serde(default)]
    pub tlogs: Vec<TransparencyLogInstance>,
    #[serde(default)]
    pub certificate_authorities: Vec<CertificateAuthority>,
    #[serde(default)]
    pub ctlogs: Vec<TransparencyLogInstance>,
    #[serde(default)]
    pub timestamp_authorities: Vec<CertificateAuthority>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransparencyLogInstance {
    pub base_url: String,
    pub hash_algorithm: String,
    pub public_key: PublicKey,
    pub log_id: LogId,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicKey {
    /// Base64 DER SubjectPublicKeyInfo.
    pub raw_bytes: String,
    pub key_details: String,
    pub valid_for: TimeRange,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogId {
    /// Base64 of the 32-byte log ID.
    pub key_id: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TimeRange {
    /// RFC 3339, UTC.
    pub start: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateAuthority {
    #[serde(default)]
    pub subject: DistinguishedName,
    #[serde(default)]
    pub uri: String,
    pub cert_chain: CertChain,
    pub valid_for: TimeRange,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DistinguishedName {
    pub organization: String,
    pub common_name: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CertChain {
    pub certificates: Vec<RawBytes>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawBytes {
    pub raw_bytes: String,
}

pub const SIGNING_CONFIG_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.signingconfig.v0.2+json";
pub const CLIENT_TRUST_CONFIG_MEDIA_TYPE: &str =
    "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json";

/// `signing_config.v0.2.json` (protobuf-specs `SigningConfig`): where clients sign.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SigningConfig {
    pub media_type: String,
    #[serde(default)]
    pub ca_urls: Vec<Service>,
    #[serde(default)]
    pub oidc_urls: Vec<Service>,
    #[serde(default)]
    pub rekor_tlog_urls: Vec<Service>,
    #[serde(default)]
    pub tsa_urls: Vec<Service>,
    pub rekor_tlog_config: ServiceConfiguration,
    pub tsa_config: ServiceConfiguration,
}

/// One service endpoint. `operator` is required by sigstore-python.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    pub url: String,
    pub major_api_version: u32,
    pub valid_for: TimeRange,
    pub operator: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServiceConfiguration {
    /// `ANY`, `ALL` or `EXACT`.
    pub selector: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
}

/// A trusted root and a signing config in one file (sigstore-python `--trust-config`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientTrustConfig {
    pub media_type: String,
    pub trusted_root: TrustedRoot,
    pub signing_config: SigningConfig,
}
