//! RFC 6962 §4 JSON messages of a certificate-transparency log (`/ct/v1/*`). Byte
//! strings are base64 (standard alphabet, padded).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Body of `add-chain` and `add-pre-chain`: the certificate (or precertificate) first,
/// then its chain towards a root.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AddChainRequest {
    pub chain: Vec<String>,
}

/// The SCT a log returns (§4.1).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AddChainResponse {
    pub sct_version: u8,
    /// Base64 log ID (SHA-256 of the log's public key).
    pub id: String,
    /// Milliseconds since the epoch.
    pub timestamp: u64,
    pub extensions: String,
    /// Base64 TLS `DigitallySigned`.
    pub signature: String,
}

/// A signed tree head (§4.3).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SignedTreeHead {
    pub tree_size: u64,
    pub timestamp: u64,
    pub sha256_root_hash: String,
    pub tree_head_signature: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ConsistencyProof {
    pub consistency: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub audit_path: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct LeafEntry {
    /// Base64 `MerkleTreeLeaf`.
    pub leaf_input: String,
    /// Base64 chain data (§4.6).
    pub extra_data: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Entries {
    pub entries: Vec<LeafEntry>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Roots {
    /// Base64 DER certificates the log accepts chains to.
    pub certificates: Vec<String>,
}
