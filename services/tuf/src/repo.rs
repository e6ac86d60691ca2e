//! Building a repository's metadata: a root naming the role keys, targets over a set of
//! files, and the snapshot and timestamp that pin them (consistent snapshots, with
//! lengths and hashes so nothing can be swapped underneath).

use crate::metadata::*;
use sigstack_crypto::PublicKey;
use sigstack_types::time::rfc3339;
use std::collections::BTreeMap;

/// The keys and threshold of one role.
pub struct RoleSpec<'a> {
    pub keys: Vec<&'a PublicKey>,
    pub threshold: u32,
}

impl<'a> RoleSpec<'a> {
    /// One key, threshold 1.
    pub fn single(key: &'a PublicKey) -> Self {
        Self {
            keys: vec![key],
            threshold: 1,
        }
    }
}

/// A root (unsigned) for the four roles.
pub fn root(
    version: u64,
    expires: i64,
    roles: [(&str, &RoleSpec<'_>); 4],
) -> Result<Root, TufError> {
    let mut keys = BTreeMap::new();
    let mut role_map = BTreeMap::new();
    for (name, spec) in roles {
        if spec.threshold == 0 || spec.threshold as usize > spec.keys.len() {
            return Err(TufError::Malformed {
                role: ROOT.into(),
                msg: format!(
                    "{name}: threshold {} cannot be met by {} key(s)",
                    spec.threshold,
                    spec.keys.len()
                ),
            });
        }
        let mut keyids = Vec::new();
        for k in &spec.keys {
            let key = Key::from_public(k)?;
            let id = key.key_id();
            if !keyids.contains(&id) {
                keyids.push(id.clone());
            }
            keys.insert(id, key);
        }
        if keyids.len() < spec.threshold as usize {
            return Err(TufError::Malformed {
                role: ROOT.into(),
                msg: format!("{name}: threshold {} needs distinct keys", spec.threshold),
            });
        }
        role_map.insert(
            name.to_string(),
            RoleKeys {
                keyids,
                threshold: spec.threshold,
            },
        );
    }
    Ok(Root {
        typ: ROOT.into(),
        spec_version: SPEC_VERSION.into(),
        version,
        expires: rfc3339(expires),
        consistent_snapshot: true,
        keys,
        roles: role_map,
    })
}

pub fn targets(version: u64, expires: i64, files: BTreeMap<String, TargetFile>) -> Targets {
    Targets {
        typ: TARGETS.into(),
        spec_version: SPEC_VERSION.into(),
        version,
        expires: rfc3339(expires),
        targets: files,
    }
}

fn pinned(version: u64, bytes: &[u8]) -> MetaFile {
    MetaFile {
        version,
        length: Some(bytes.len() as u64),
        hashes: Some(BTreeMap::from([(
            "sha256".to_string(),
            hex::encode(sigstack_crypto::sha256(bytes)),
        )])),
    }
}

/// The snapshot pinning `targets.json` (version, length, hash).
pub fn snapshot(
    version: u64,
    expires: i64,
    targets_version: u64,
    targets_bytes: &[u8],
) -> SnapshotRole {
    SnapshotRole(MetaList {
        typ: SNAPSHOT.into(),
        spec_version: SPEC_VERSION.into(),
        version,
        expires: rfc3339(expires),
        meta: BTreeMap::from([(
            "targets.json".to_string(),
            pinned(targets_version, targets_bytes),
        )]),
    })
}

/// The timestamp pinning `snapshot.json`.
pub fn timestamp(
    version: u64,
    expires: i64,
    snapshot_version: u64,
    snapshot_bytes: &[u8],
) -> TimestampRole {
    TimestampRole(MetaList {
        typ: TIMESTAMP.into(),
        spec_version: SPEC_VERSION.into(),
        version,
        expires: rfc3339(expires),
        meta: BTreeMap::from([(
            "snapshot.json".to_string(),
            pinned(snapshot_version, snapshot_bytes),
        )]),
    })
}
