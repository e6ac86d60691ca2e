//! Verifying a copy of a TUF repository — fetched from its upstream, read from a
//! directory or from an air-gap kit — with the TUF client workflow (root rotations,
//! thresholds, versions, hashes, expiry), and writing exactly the files that verified.
//! Shared by `tuf mirror`, `airgap export` and `airgap import`.

use anyhow::Context;
use sigstack_tuf::TufError;
use sigstack_tuf::client::{Fetch, Trusted, Updater};
use sigstack_tuf::metadata::{Envelope, ROOT, Root, TIMESTAMP, TimestampRole};
use std::path::Path;
use std::sync::Mutex;

/// A fetcher that keeps every file it fetched, to be written once all of them verified.
pub struct Recording<F> {
    inner: F,
    fetched: Mutex<Vec<(String, Vec<u8>)>>,
}

impl<F> Recording<F> {
    pub fn new(inner: F) -> Self {
        Self {
            inner,
            fetched: Mutex::new(Vec::new()),
        }
    }
}

impl<F: Fetch> Fetch for Recording<F> {
    async fn fetch(&self, path: &str, max_len: u64) -> Result<Option<Vec<u8>>, TufError> {
        let body = self.inner.fetch(path, max_len).await?;
        if let (Some(b), Ok(mut f)) = (&body, self.fetched.lock()) {
            f.push((path.to_string(), b.clone()));
        }
        Ok(body)
    }
}

/// What verified: every file of the repository as a client fetches it (the timestamp
/// last), the trusted metadata, and the targets by name.
pub struct Verified {
    pub files: Vec<(String, Vec<u8>)>,
    pub trusted: Trusted,
    pub targets: Vec<(String, Vec<u8>)>,
}

impl Verified {
    pub fn timestamp_version(&self) -> u64 {
        self.trusted.timestamp.as_ref().map_or(0, |t| t.1.version)
    }

    pub fn expires(&self) -> String {
        self.trusted
            .timestamp
            .as_ref()
            .map(|t| t.1.expires.clone())
            .unwrap_or_default()
    }

    /// Writes every file into `dir`, the timestamp last: a reader of a half-written copy
    /// sees the previous, complete one.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        // the names come from the repository's metadata: none may lead out of `dir`
        if let Some((path, _)) = self.files.iter().find(|(p, _)| {
            !Path::new(p)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
        }) {
            anyhow::bail!("the repository names a file outside it: {path:?}");
        }
        for (path, bytes) in &self.files {
            let dest = dir.join(path);
            if let Some(d) = dest.parent() {
                std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            }
            crate::bootstrap::write_atomic(&dest, bytes)?;
        }
        Ok(())
    }
}

fn read(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

/// What a published copy in `dir` holds: its newest root, timestamp and the snapshot the
/// timestamp names (an update never goes back from them).
pub struct Held {
    pub root: Option<Vec<u8>>,
    timestamp: Option<Vec<u8>>,
    snapshot: Option<Vec<u8>>,
}

impl Held {
    pub fn of(dir: &Path) -> Self {
        let timestamp = read(&dir.join("timestamp.json"));
        let snapshot = timestamp.as_deref().and_then(|b| {
            let ts = Envelope::parse(b, TIMESTAMP)
                .ok()?
                .role::<TimestampRole>()
                .ok()?
                .0;
            let v = ts.meta.get("snapshot.json")?.version;
            read(&dir.join(format!("{v}.snapshot.json")))
        });
        Self {
            root: read(&dir.join("root.json")),
            timestamp,
            snapshot,
        }
    }
}

/// Verifies the repository `fetch` reads, from `start` (a root trusted out of band, or
/// the newest one a published copy holds) and never older than `held`, at time `now`.
pub async fn verify<F: Fetch>(
    fetch: F,
    start: &[u8],
    held: Option<&Held>,
    now: i64,
) -> anyhow::Result<Verified> {
    let mut up = Updater::new(Recording::new(fetch), start)
        .context("the root to start from is not a valid, self-signed TUF root")?;
    if let Some(h) = held {
        up = up
            .with_cached(h.timestamp.as_deref(), h.snapshot.as_deref())
            .context("the copy already published does not verify")?;
    }
    up.refresh(now).await.map_err(|e| match e {
        TufError::Expired { role, expires } => anyhow::anyhow!(
            "its {role} metadata expired at {expires}: it is stale; fetch or export a fresh copy"
        ),
        TufError::Rollback { role, got, trusted } => anyhow::anyhow!(
            "its {role} metadata version {got} is older than version {trusted}, already held: refusing a rollback"
        ),
        e => anyhow::Error::new(e),
    })?;
    let names: Vec<String> = up
        .trusted()
        .targets
        .as_ref()
        .map(|t| t.1.targets.keys().cloned().collect())
        .unwrap_or_default();
    let mut targets = Vec::new();
    for name in names {
        let bytes = up
            .download(&name)
            .await
            .with_context(|| format!("target {name}"))?;
        targets.push((name, bytes));
    }
    let trusted = up.trusted().clone();
    let start_root: Root = Envelope::parse(start, ROOT)?.role()?;
    let mut files = vec![(format!("{}.root.json", start_root.version), start.to_vec())];
    files.extend(
        up.fetcher()
            .fetched
            .lock()
            .map(|f| f.clone())
            .unwrap_or_default(),
    );
    files.push(("root.json".into(), trusted.root.0.clone()));
    files.sort_by_key(|(p, _)| p == "timestamp.json");
    files.dedup_by(|a, b| a.0 == b.0);
    Ok(Verified {
        files,
        trusted,
        targets,
    })
}
