//! TUF 1.0 metadata (the specification's §4): the envelope every role file is, the four
//! top-level roles, keys in the form python-tuf and go-tuf read (`ecdsa`,
//! `ecdsa-sha2-nistp256`/`nistp384`, PEM SubjectPublicKeyInfo), signing and threshold
//! verification over the canonical JSON of `signed`.

use crate::cjson;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sigstack_crypto::{PublicKey, Signer};
use std::collections::{BTreeMap, BTreeSet};

pub const SPEC_VERSION: &str = "1.0";

/// The four top-level roles.
pub const ROOT: &str = "root";
pub const TARGETS: &str = "targets";
pub const SNAPSHOT: &str = "snapshot";
pub const TIMESTAMP: &str = "timestamp";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TufError {
    #[error("{role} metadata: {msg}")]
    Malformed { role: String, msg: String },
    #[error("{role} metadata has {valid} valid signature(s) of the {threshold} required")]
    Threshold {
        role: String,
        valid: usize,
        threshold: u32,
    },
    #[error("{role} metadata expired at {expires}")]
    Expired { role: String, expires: String },
    #[error("{role} metadata version {got} is older than the trusted version {trusted} (rollback)")]
    Rollback {
        role: String,
        got: u64,
        trusted: u64,
    },
    #[error("{role} metadata version {got} is not the expected version {expected}")]
    WrongVersion {
        role: String,
        got: u64,
        expected: u64,
    },
    #[error("{what} does not match its recorded length or hash")]
    Mismatch { what: String },
    #[error("{what} is missing from the repository")]
    Missing { what: String },
    #[error("unsupported key: {0}")]
    Key(String),
    #[error("signing failed: {0}")]
    Signing(String),
    #[error("fetching {what}: {msg}")]
    Fetch { what: String, msg: String },
}

fn malformed(role: &str, msg: impl std::fmt::Display) -> TufError {
    TufError::Malformed {
        role: role.to_string(),
        msg: msg.to_string(),
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub keyid: String,
    /// Hex of the DER ECDSA signature.
    pub sig: String,
}

/// A metadata file: `signed` kept as parsed JSON, so signatures are checked over exactly
/// what was signed (unknown fields included).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Envelope {
    pub signatures: Vec<Signature>,
    pub signed: Value,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVal {
    pub public: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    pub keytype: String,
    pub scheme: String,
    pub keyval: KeyVal,
}

impl Key {
    /// The TUF form of an ECDSA P-256 or P-384 public key.
    pub fn from_public(key: &PublicKey) -> Result<Self, TufError> {
        let scheme = match key.key_details() {
            "PKIX_ECDSA_P256_SHA_256" => "ecdsa-sha2-nistp256",
            "PKIX_ECDSA_P384_SHA_384" => "ecdsa-sha2-nistp384",
            _ => {
                return Err(TufError::Key(format!(
                    "{}: TUF keys here are ECDSA P-256 or P-384",
                    key.describe()
                )));
            }
        };
        Ok(Self {
            keytype: "ecdsa".into(),
            scheme: scheme.into(),
            keyval: KeyVal {
                public: key.to_pem(),
            },
        })
    }

    /// The key id: SHA-256 of the key's canonical JSON, hex (securesystemslib's).
    pub fn key_id(&self) -> String {
        let v = serde_json::to_value(self).unwrap_or(Value::Null);
        hex::encode(sigstack_crypto::sha256(
            &cjson::encode(&v).unwrap_or_default(),
        ))
    }

    pub fn public_key(&self) -> Result<PublicKey, TufError> {
        if self.keytype != "ecdsa"
            || !matches!(
                self.scheme.as_str(),
                "ecdsa-sha2-nistp256" | "ecdsa-sha2-nistp384"
            )
        {
            return Err(TufError::Key(format!(
                "{} / {} is not supported",
                self.keytype, self.scheme
            )));
        }
        PublicKey::from_pem(self.keyval.public.as_bytes()).map_err(|e| TufError::Key(e.to_string()))
    }
}

/// The key id a signer signs under.
pub fn key_id_of(key: &PublicKey) -> Result<String, TufError> {
    Ok(Key::from_public(key)?.key_id())
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleKeys {
    pub keyids: Vec<String>,
    pub threshold: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Root {
    #[serde(rename = "_type")]
    pub typ: String,
    pub spec_version: String,
    pub version: u64,
    pub expires: String,
    #[serde(default)]
    pub consistent_snapshot: bool,
    pub keys: BTreeMap<String, Key>,
    pub roles: BTreeMap<String, RoleKeys>,
}

/// A snapshot's or timestamp's record of another metadata file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaFile {
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashes: Option<BTreeMap<String, String>>,
}

/// Timestamp and snapshot metadata have the same shape.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MetaList {
    #[serde(rename = "_type")]
    pub typ: String,
    pub spec_version: String,
    pub version: u64,
    pub expires: String,
    pub meta: BTreeMap<String, MetaFile>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetFile {
    pub length: u64,
    pub hashes: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<Value>,
}

impl TargetFile {
    pub fn of(bytes: &[u8], custom: Option<Value>) -> Self {
        Self {
            length: bytes.len() as u64,
            hashes: BTreeMap::from([(
                "sha256".to_string(),
                hex::encode(sigstack_crypto::sha256(bytes)),
            )]),
            custom,
        }
    }

    /// The SHA-256 the repository names the file by (`targets/<sha256>.<name>`).
    pub fn sha256(&self) -> Option<&str> {
        self.hashes.get("sha256").map(String::as_str)
    }

    /// Whether `bytes` are this file: length and every known hash.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        bytes.len() as u64 == self.length && hashes_match(&self.hashes, bytes) == Some(true)
    }
}

/// `Some(true)` when every SHA-256/512 hash given matches (at least one known),
/// `Some(false)` on a mismatch, `None` with no hash we compute.
fn hashes_match(hashes: &BTreeMap<String, String>, bytes: &[u8]) -> Option<bool> {
    let mut checked = false;
    for (alg, want) in hashes {
        let got = match alg.as_str() {
            "sha256" => hex::encode(sigstack_crypto::sha256(bytes)),
            _ => continue,
        };
        if !got.eq_ignore_ascii_case(want) {
            return Some(false);
        }
        checked = true;
    }
    checked.then_some(true)
}

impl MetaFile {
    /// Checks `bytes` against the length and hashes, when recorded.
    pub fn check(&self, what: &str, bytes: &[u8]) -> Result<(), TufError> {
        let bad = || TufError::Mismatch {
            what: what.to_string(),
        };
        if self.length.is_some_and(|l| l != bytes.len() as u64) {
            return Err(bad());
        }
        if let Some(h) = &self.hashes
            && hashes_match(h, bytes) == Some(false)
        {
            return Err(bad());
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Targets {
    #[serde(rename = "_type")]
    pub typ: String,
    pub spec_version: String,
    pub version: u64,
    pub expires: String,
    pub targets: BTreeMap<String, TargetFile>,
}

/// Common header of every role's `signed`.
pub trait Role: serde::de::DeserializeOwned + Serialize {
    const TYPE: &'static str;
    fn version(&self) -> u64;
    fn expires(&self) -> &str;
}

impl Role for Root {
    const TYPE: &'static str = ROOT;
    fn version(&self) -> u64 {
        self.version
    }
    fn expires(&self) -> &str {
        &self.expires
    }
}
impl Role for Targets {
    const TYPE: &'static str = TARGETS;
    fn version(&self) -> u64 {
        self.version
    }
    fn expires(&self) -> &str {
        &self.expires
    }
}

/// Timestamp or snapshot: the same shape, told apart by `_type`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TimestampRole(pub MetaList);
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SnapshotRole(pub MetaList);

impl Role for TimestampRole {
    const TYPE: &'static str = TIMESTAMP;
    fn version(&self) -> u64 {
        self.0.version
    }
    fn expires(&self) -> &str {
        &self.0.expires
    }
}
impl Role for SnapshotRole {
    const TYPE: &'static str = SNAPSHOT;
    fn version(&self) -> u64 {
        self.0.version
    }
    fn expires(&self) -> &str {
        &self.0.expires
    }
}

impl Envelope {
    pub fn parse(bytes: &[u8], role: &str) -> Result<Self, TufError> {
        serde_json::from_slice(bytes).map_err(|e| malformed(role, e))
    }

    /// The typed `signed` of role `R`; its `_type` and `spec_version` must fit.
    pub fn role<R: Role>(&self) -> Result<R, TufError> {
        if self.signed.get("_type").and_then(Value::as_str) != Some(R::TYPE) {
            return Err(malformed(R::TYPE, "wrong _type"));
        }
        let spec = self
            .signed
            .get("spec_version")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if spec.split('.').next() != Some("1") {
            return Err(malformed(
                R::TYPE,
                format!("unsupported spec_version {spec:?}"),
            ));
        }
        serde_json::from_value(self.signed.clone()).map_err(|e| malformed(R::TYPE, e))
    }

    /// The bytes the signatures cover.
    pub fn canonical_signed(&self) -> Result<Vec<u8>, TufError> {
        cjson::encode(&self.signed).map_err(|e| malformed("metadata", e))
    }

    /// Wraps `signed` (unsigned).
    pub fn new<R: Role>(signed: &R) -> Result<Self, TufError> {
        Ok(Self {
            signatures: Vec::new(),
            signed: serde_json::to_value(signed).map_err(|e| malformed(R::TYPE, e))?,
        })
    }

    /// Adds (or replaces) the signature of `signer`.
    pub fn sign(&mut self, signer: &dyn Signer) -> Result<(), TufError> {
        let keyid = key_id_of(signer.public_key())?;
        let sig = signer
            .sign(&self.canonical_signed()?)
            .map_err(|e| TufError::Signing(e.to_string()))?;
        self.signatures.retain(|s| s.keyid != keyid);
        self.signatures.push(Signature {
            keyid,
            sig: hex::encode(sig),
        });
        Ok(())
    }

    /// The file's bytes (JSON; clients re-canonicalise `signed` to check signatures).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Key ids whose signatures verify, among those `role` lists with keys in `keys`.
    pub fn valid_signers(
        &self,
        role: &RoleKeys,
        keys: &BTreeMap<String, Key>,
    ) -> Result<BTreeSet<String>, TufError> {
        let msg = self.canonical_signed()?;
        let mut valid = BTreeSet::new();
        for s in &self.signatures {
            if valid.contains(&s.keyid) || !role.keyids.contains(&s.keyid) {
                continue;
            }
            let (Some(key), Ok(sig)) = (keys.get(&s.keyid), hex::decode(&s.sig)) else {
                continue;
            };
            let Ok(pk) = key.public_key() else { continue };
            if pk.verify_message(&msg, &sig).is_ok() {
                valid.insert(s.keyid.clone());
            }
        }
        Ok(valid)
    }

    /// Checks that `role_name`'s threshold of `root`'s keys signed this file.
    pub fn verify_by(&self, root: &Root, role_name: &str) -> Result<(), TufError> {
        let role = root
            .roles
            .get(role_name)
            .ok_or_else(|| malformed(ROOT, format!("no {role_name} role")))?;
        if role.threshold == 0 {
            return Err(malformed(ROOT, format!("{role_name} threshold is 0")));
        }
        let valid = self.valid_signers(role, &root.keys)?.len();
        if valid < role.threshold as usize {
            return Err(TufError::Threshold {
                role: role_name.to_string(),
                valid,
                threshold: role.threshold,
            });
        }
        Ok(())
    }
}

/// Whether metadata expiring at `expires` is expired at `now` (Unix seconds); an
/// unparseable date counts as expired.
pub fn is_expired(expires: &str, now: i64) -> bool {
    sigstack_types::time::parse_rfc3339(expires).is_none_or(|t| t <= now)
}

/// Seconds until `expires` (negative when past).
pub fn seconds_left(expires: &str, now: i64) -> i64 {
    sigstack_types::time::parse_rfc3339(expires).map_or(i64::MIN, |t| t - now)
}
