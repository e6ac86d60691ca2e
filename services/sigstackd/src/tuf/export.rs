//! `sigstackd tuf export`: the repository as static files, in the layout TUF clients
//! fetch (consistent snapshots: `N.root.json`, `N.snapshot.json`, `N.targets.json`,
//! `timestamp.json`, `targets/<sha256>.<name>`) — for a plain web server, or for a
//! `file://` mirror on a disk carried across an air gap
//! (`sigstack initialize --mirror file:///media/usb/tuf --root 1.root.json`).

use anyhow::{Context, ensure};
use sigstack_storage::Store;
use std::path::{Component, Path, PathBuf};

#[derive(clap::Args)]
pub struct ExportArgs {
    /// The database the TUF service publishes from.
    #[arg(long, env = "SIGSTACK_TUF_DATABASE_URL")]
    pub database_url: String,
    /// The directory to write (created); a copy exported earlier is brought up to date.
    #[arg(long)]
    pub out: PathBuf,
}

/// Writes every file the repository serves; returns (files, timestamp version, expiry).
pub async fn run(a: &ExportArgs) -> anyhow::Result<(usize, u64, String)> {
    let store = Store::open(&a.database_url).await?;
    let repo = super::ceremony::load(&store).await?;
    store.close().await;
    let ts = repo.timestamp.as_ref().context(
        "the repository has no timestamp yet: start `sigstackd tuf` once, so that it signs one",
    )?;
    // a copy is never taken back to older metadata (clients holding it would refuse it)
    let existing = a.out.join("timestamp.json");
    if let Ok(bytes) = std::fs::read(&existing) {
        let held: serde_json::Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not TUF metadata", existing.display()))?;
        let version = held["signed"]["version"].as_u64().unwrap_or(0);
        ensure!(
            version <= ts.version,
            "{} holds timestamp version {version}, newer than this repository's {}: not exporting an older repository over it",
            a.out.display(),
            ts.version
        );
    }
    let mut written = 0;
    let mut paths: Vec<&str> = repo.paths().collect();
    // the timestamp last: a reader of a half-written copy sees the previous, complete one
    paths.sort_by_key(|p| *p == "timestamp.json");
    for path in paths {
        let rel = Path::new(path);
        ensure!(
            rel.components().all(|c| matches!(c, Component::Normal(_))),
            "the repository names a file outside it: {path:?}"
        );
        let dest = a.out.join(rel);
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let body = &repo.get(path).context("listed, not served")?.body;
        crate::bootstrap::write_atomic(&dest, body)?;
        written += 1;
    }
    Ok((written, ts.version, ts.parsed.expires.clone()))
}
