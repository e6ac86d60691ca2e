//! A TUF client (the specification's §5 "detailed client workflow"): from a trusted root
//! it walks root rotations, then takes timestamp, snapshot and targets, refusing
//! signatures below threshold, rollbacks, expired metadata, mix-and-match (versions,
//! lengths and hashes must chain) and targets whose bytes differ from the metadata.

use crate::metadata::*;
use std::future::Future;

/// Fetches repository files by path relative to the metadata base URL (`1.root.json`,
/// `timestamp.json`, `targets/<sha256>.<name>`); `Ok(None)` for 404/403.
pub trait Fetch: Send + Sync {
    fn fetch(
        &self,
        path: &str,
        max_len: u64,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, TufError>> + Send;
}

/// Largest metadata file accepted when no length is known.
pub const MAX_METADATA: u64 = 1 << 20;
/// Most root rotations followed in one refresh.
const MAX_ROOT_ROTATIONS: u64 = 32;

/// What the client trusts, as bytes (to be cached) and parsed.
#[derive(Clone, Debug)]
pub struct Trusted {
    pub root: (Vec<u8>, Root),
    pub timestamp: Option<(Vec<u8>, MetaList)>,
    pub snapshot: Option<(Vec<u8>, MetaList)>,
    pub targets: Option<(Vec<u8>, Targets)>,
}

pub struct Updater<F> {
    fetch: F,
    trusted: Trusted,
}

fn missing(what: &str) -> TufError {
    TufError::Missing {
        what: what.to_string(),
    }
}

fn check_expiry(role: &str, expires: &str, now: i64) -> Result<(), TufError> {
    if is_expired(expires, now) {
        return Err(TufError::Expired {
            role: role.to_string(),
            expires: expires.to_string(),
        });
    }
    Ok(())
}

impl<F: Fetch> Updater<F> {
    /// Starts from a root the user trusts (shipped or handed over out of band); it must be
    /// signed by its own root threshold. Expiry is checked after the rotation walk.
    pub fn new(fetch: F, root_json: &[u8]) -> Result<Self, TufError> {
        let env = Envelope::parse(root_json, ROOT)?;
        let root: Root = env.role()?;
        env.verify_by(&root, ROOT)?;
        Ok(Self {
            fetch,
            trusted: Trusted {
                root: (root_json.to_vec(), root),
                timestamp: None,
                snapshot: None,
                targets: None,
            },
        })
    }

    /// Also trusts previously verified timestamp/snapshot/targets (from a cache), so a
    /// refresh refuses anything older.
    pub fn with_cached(
        mut self,
        timestamp: Option<&[u8]>,
        snapshot: Option<&[u8]>,
    ) -> Result<Self, TufError> {
        if let Some(b) = timestamp {
            let env = Envelope::parse(b, TIMESTAMP)?;
            env.verify_by(&self.trusted.root.1, TIMESTAMP)?;
            self.trusted.timestamp = Some((b.to_vec(), env.role::<TimestampRole>()?.0));
        }
        if let Some(b) = snapshot {
            let env = Envelope::parse(b, SNAPSHOT)?;
            env.verify_by(&self.trusted.root.1, SNAPSHOT)?;
            self.trusted.snapshot = Some((b.to_vec(), env.role::<SnapshotRole>()?.0));
        }
        Ok(self)
    }

    pub fn trusted(&self) -> &Trusted {
        &self.trusted
    }

    /// The fetcher given to [`Updater::new`].
    pub fn fetcher(&self) -> &F {
        &self.fetch
    }

    /// The whole §5.3–5.6 update at time `now` (Unix seconds).
    pub async fn refresh(&mut self, now: i64) -> Result<(), TufError> {
        self.update_root(now).await?;
        self.update_timestamp(now).await?;
        self.update_snapshot(now).await?;
        self.update_targets(now).await
    }

    async fn update_root(&mut self, now: i64) -> Result<(), TufError> {
        for _ in 0..MAX_ROOT_ROTATIONS {
            let next = self.trusted.root.1.version + 1;
            let path = format!("{next}.root.json");
            let Some(bytes) = self.fetch.fetch(&path, MAX_METADATA).await? else {
                break;
            };
            let env = Envelope::parse(&bytes, ROOT)?;
            // signed by the trusted root's threshold AND by its own
            env.verify_by(&self.trusted.root.1, ROOT)?;
            let new: Root = env.role()?;
            env.verify_by(&new, ROOT)?;
            if new.version != next {
                return Err(TufError::WrongVersion {
                    role: ROOT.into(),
                    got: new.version,
                    expected: next,
                });
            }
            // a new root invalidates what the old keys vouched for (§5.3.11)
            let rotated = |role: &str| {
                self.trusted.root.1.roles.get(role).map(|r| &r.keyids)
                    != new.roles.get(role).map(|r| &r.keyids)
            };
            if rotated(TIMESTAMP) || rotated(SNAPSHOT) {
                self.trusted.timestamp = None;
                self.trusted.snapshot = None;
            }
            self.trusted.root = (bytes, new);
        }
        let root = &self.trusted.root.1;
        check_expiry(ROOT, &root.expires, now)
    }

    async fn update_timestamp(&mut self, now: i64) -> Result<(), TufError> {
        let bytes = self
            .fetch
            .fetch("timestamp.json", MAX_METADATA)
            .await?
            .ok_or_else(|| missing("timestamp.json"))?;
        let env = Envelope::parse(&bytes, TIMESTAMP)?;
        env.verify_by(&self.trusted.root.1, TIMESTAMP)?;
        let new = env.role::<TimestampRole>()?.0;
        let snap = new
            .meta
            .get("snapshot.json")
            .ok_or_else(|| missing("timestamp meta for snapshot.json"))?;
        if let Some((_, old)) = &self.trusted.timestamp {
            if new.version < old.version {
                return Err(TufError::Rollback {
                    role: TIMESTAMP.into(),
                    got: new.version,
                    trusted: old.version,
                });
            }
            if let Some(old_snap) = old.meta.get("snapshot.json")
                && snap.version < old_snap.version
            {
                return Err(TufError::Rollback {
                    role: SNAPSHOT.into(),
                    got: snap.version,
                    trusted: old_snap.version,
                });
            }
        }
        check_expiry(TIMESTAMP, &new.expires, now)?;
        self.trusted.timestamp = Some((bytes, new));
        Ok(())
    }

    /// Fetches `<version>.<role>.json` as `meta` pins it (length and hashes), verifies it
    /// by the trusted root's keys for the role and checks its version.
    async fn fetch_pinned<R: Role>(&self, meta: &MetaFile) -> Result<(Vec<u8>, R), TufError> {
        let path = format!("{}.{}.json", meta.version, R::TYPE);
        let bytes = self
            .fetch
            .fetch(&path, meta.length.unwrap_or(MAX_METADATA))
            .await?
            .ok_or_else(|| missing(&path))?;
        meta.check(&path, &bytes)?;
        let env = Envelope::parse(&bytes, R::TYPE)?;
        env.verify_by(&self.trusted.root.1, R::TYPE)?;
        let new: R = env.role()?;
        if new.version() != meta.version {
            return Err(TufError::WrongVersion {
                role: R::TYPE.into(),
                got: new.version(),
                expected: meta.version,
            });
        }
        Ok((bytes, new))
    }

    async fn update_snapshot(&mut self, now: i64) -> Result<(), TufError> {
        let meta = self
            .trusted
            .timestamp
            .as_ref()
            .and_then(|(_, t)| t.meta.get("snapshot.json").cloned())
            .ok_or_else(|| missing("snapshot.json in the timestamp"))?;
        let (bytes, new) = self.fetch_pinned::<SnapshotRole>(&meta).await?;
        let new = new.0;
        if let Some((_, old)) = &self.trusted.snapshot {
            for (name, old_meta) in &old.meta {
                match new.meta.get(name) {
                    None => return Err(missing(&format!("{name} in the new snapshot"))),
                    Some(m) if m.version < old_meta.version => {
                        return Err(TufError::Rollback {
                            role: name.trim_end_matches(".json").to_string(),
                            got: m.version,
                            trusted: old_meta.version,
                        });
                    }
                    Some(_) => {}
                }
            }
        }
        check_expiry(SNAPSHOT, &new.expires, now)?;
        self.trusted.snapshot = Some((bytes, new));
        Ok(())
    }

    async fn update_targets(&mut self, now: i64) -> Result<(), TufError> {
        let meta = self
            .trusted
            .snapshot
            .as_ref()
            .and_then(|(_, s)| s.meta.get("targets.json").cloned())
            .ok_or_else(|| missing("targets.json in the snapshot"))?;
        let (bytes, new) = self.fetch_pinned::<Targets>(&meta).await?;
        check_expiry(TARGETS, &new.expires, now)?;
        self.trusted.targets = Some((bytes, new));
        Ok(())
    }

    /// The verified description of target `name`.
    pub fn target(&self, name: &str) -> Option<&TargetFile> {
        self.trusted.targets.as_ref()?.1.targets.get(name)
    }

    /// Downloads target `name` (`targets/<sha256>.<name>`) and checks length and hash.
    pub async fn download(&self, name: &str) -> Result<Vec<u8>, TufError> {
        let info = self
            .target(name)
            .ok_or_else(|| missing(&format!("target {name}")))?;
        let sha = info
            .sha256()
            .ok_or_else(|| missing(&format!("a sha256 for target {name}")))?;
        let path = format!("targets/{sha}.{name}");
        let bytes = self
            .fetch
            .fetch(&path, info.length)
            .await?
            .ok_or_else(|| missing(&path))?;
        if !info.matches(&bytes) {
            return Err(TufError::Mismatch {
                what: format!("target {name}"),
            });
        }
        Ok(bytes)
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
