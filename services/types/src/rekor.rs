//! Rekor v1 REST API types (`openapi.yaml` of sigstore/rekor): field names as on the wire.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// An entry as submitted: `{"kind", "apiVersion", "spec"}`; `spec` depends on the kind.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProposedEntry {
    /// `hashedrekord`, `dsse` or `intoto`.
    pub kind: String,
    /// The kind's schema version: `0.0.1` (hashedrekord, dsse) or `0.0.2` (intoto).
    pub api_version: String,
    #[schema(value_type = Object)]
    pub spec: serde_json::Value,
}

/// A log entry without its ID (the value side of a [`LogEntry`] map).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogEntryAnon {
    /// Base64 of the canonicalised entry.
    pub body: String,
    /// Unix seconds at which the entry was integrated into the tree.
    pub integrated_time: i64,
    /// Hex SHA-256 of the log's DER public key.
    #[serde(rename = "logID")]
    pub log_id: String,
    /// Index across all shards of the log.
    pub log_index: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
}

/// `{"<80-hex entry ID>": LogEntryAnon}`.
pub type LogEntry = BTreeMap<String, LogEntryAnon>;

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inclusion_proof: Option<InclusionProof>,
    /// Base64 signature over the RFC 8785 JSON of body, integratedTime, logID and logIndex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_entry_timestamp: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InclusionProof {
    /// The signed checkpoint (note) for `treeSize` and `rootHash`.
    pub checkpoint: String,
    /// Hex hashes, leaf to root. Always present, `[]` for a tree of one.
    pub hashes: Vec<String>,
    /// Index of the entry within its shard.
    pub log_index: i64,
    pub root_hash: String,
    pub tree_size: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogInfo {
    /// Frozen earlier shards of this log, oldest first; `null` when there are none.
    pub inactive_shards: Option<Vec<InactiveShardLogInfo>>,
    pub root_hash: String,
    pub signed_tree_head: String,
    /// Decimal tree ID of the active shard.
    #[serde(rename = "treeID")]
    pub tree_id: String,
    pub tree_size: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InactiveShardLogInfo {
    pub root_hash: String,
    pub signed_tree_head: String,
    #[serde(rename = "treeID")]
    pub tree_id: String,
    pub tree_size: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsistencyProof {
    /// Root of the tree at `lastSize`.
    pub root_hash: String,
    pub hashes: Vec<String>,
}

/// Error body: `{"code": <HTTP status>, "message": "..."}`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Error {
    pub code: u16,
    pub message: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchIndex {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<SearchIndexPublicKey>,
    /// `[sha256:]<hex>` (also sha1/sha512 by length).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// `and` or `or` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SearchIndexPublicKey {
    /// Only `x509` (PEM public key or certificate) is supported.
    pub format: String,
    /// Base64 of the PEM key or certificate.
    #[serde(default)]
    pub content: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct SearchLogQuery {
    #[serde(
        rename = "entryUUIDs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub entry_uuids: Option<Vec<String>>,
    #[serde(
        rename = "logIndexes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub log_indexes: Option<Vec<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<Vec<ProposedEntry>>,
}
