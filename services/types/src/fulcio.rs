//! Fulcio's HTTP/JSON messages (`dev.sigstore.fulcio.v2` through grpc-gateway, and the
//! legacy v1 API), with the field names real clients send.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateSigningCertificateRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_request: Option<PublicKeyRequest>,
    /// Base64 of a PEM `CERTIFICATE REQUEST`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_signing_request: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    #[serde(default)]
    pub oidc_identity_token: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicKeyRequest {
    pub public_key: PublicKey,
    /// Base64 signature over the identity's challenge (e-mail or subject).
    pub proof_of_possession: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicKey {
    /// Ignored (the key type comes from the key); any value is tolerated.
    #[serde(default)]
    pub algorithm: Option<String>,
    /// PEM or DER (as a string) public key.
    pub content: String,
}

/// v2 answer: always the embedded-SCT form, leaf first.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SigningCertificate {
    pub signed_certificate_embedded_sct: SignedCertificateEmbeddedSct,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SignedCertificateEmbeddedSct {
    pub chain: CertificateChain,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CertificateChain {
    /// PEM certificates.
    pub certificates: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TrustBundle {
    pub chains: Vec<CertificateChain>,
}

/// Legacy `POST /api/v1/signingCert` body (token in `Authorization: Bearer`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LegacySigningCertRequest {
    #[serde(default)]
    pub public_key: Option<LegacyPublicKey>,
    /// Base64 signature over the challenge.
    #[serde(default)]
    pub signed_email_address: Option<String>,
    /// Base64 of a PEM CSR.
    #[serde(default)]
    pub certificate_signing_request: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct LegacyPublicKey {
    #[serde(default)]
    pub algorithm: Option<String>,
    /// Base64 of a PEM or DER public key.
    pub content: String,
}

/// grpc-gateway's error body: `{"code": <gRPC code>, "message": "...", "details": []}`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RpcStatus {
    pub code: i32,
    pub message: String,
    #[serde(default)]
    pub details: Vec<serde_json::Value>,
}
