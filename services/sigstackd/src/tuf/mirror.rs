//! `sigstackd tuf mirror`: follows a TUF repository — the public-good instance, another
//! stack — and writes what it verified, byte for byte, into a directory: the same layout
//! `tuf export` writes, for a web server or a `file://` mirror on the other side of an
//! air gap. Clients of the copy see the upstream's signatures, never ours. Each run
//! verifies with the TUF client workflow (root rotations, thresholds, versions, hashes,
//! expiry) from the newest root the copy holds, and never takes the copy back to older
//! metadata than it has.

use anyhow::Context;
use sigstack_tuf::TufError;
use sigstack_tuf::client::{Fetch, Updater};
use sigstack_tuf::http::HttpFetch;
use sigstack_tuf::metadata::{Envelope, ROOT, Root, TIMESTAMP, TimestampRole};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(clap::Args)]
pub struct MirrorArgs {
    /// The repository to follow: its metadata base URL (https://tuf-repo-cdn.sigstore.dev).
    #[arg(long)]
    pub from: String,
    /// The root to start from, handed over out of band (a copy that holds a newer one
    /// starts from that).
    #[arg(long)]
    pub root: PathBuf,
    /// The directory to write (created).
    #[arg(long)]
    pub out: PathBuf,
    /// Keep following: refresh every this many seconds (default: once).
    #[arg(long)]
    pub every: Option<u64>,
}

/// A fetcher that keeps every file it fetched, to be written once all of them verified.
struct Recording {
    inner: HttpFetch,
    fetched: Mutex<Vec<(String, Vec<u8>)>>,
}

impl Fetch for Recording {
    async fn fetch(&self, path: &str, max_len: u64) -> Result<Option<Vec<u8>>, TufError> {
        let body = self.inner.fetch(path, max_len).await?;
        if let (Some(b), Ok(mut f)) = (&body, self.fetched.lock()) {
            f.push((path.to_string(), b.clone()));
        }
        Ok(body)
    }
}

fn read(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

/// One refresh; returns the files written and the upstream's timestamp version.
pub async fn once(a: &MirrorArgs) -> anyhow::Result<(usize, u64)> {
    crate::settings::check_flag_url("--from", &a.from)?;
    let given = std::fs::read(&a.root).with_context(|| format!("reading {}", a.root.display()))?;
    let start = read(&a.out.join("root.json")).unwrap_or_else(|| given.clone());
    let fetch = Recording {
        inner: HttpFetch {
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()?,
            base: a.from.clone(),
        },
        fetched: Mutex::new(Vec::new()),
    };
    let mut up = Updater::new(fetch, &start).context("the root to start from is not valid")?;
    // what the copy holds: the upstream may never take it back
    let held_ts = read(&a.out.join("timestamp.json"));
    let held_snapshot = held_ts.as_deref().and_then(|b| {
        let ts = Envelope::parse(b, TIMESTAMP)
            .ok()?
            .role::<TimestampRole>()
            .ok()?
            .0;
        let v = ts.meta.get("snapshot.json")?.version;
        read(&a.out.join(format!("{v}.snapshot.json")))
    });
    up = up
        .with_cached(held_ts.as_deref(), held_snapshot.as_deref())
        .with_context(|| format!("the copy in {} does not verify", a.out.display()))?;
    up.refresh(crate::sequencer::unix_now())
        .await
        .with_context(|| format!("following {}", a.from))?;
    let names: Vec<String> = up
        .trusted()
        .targets
        .as_ref()
        .map(|t| t.1.targets.keys().cloned().collect())
        .unwrap_or_default();
    for name in &names {
        up.download(name)
            .await
            .with_context(|| format!("target {name} from {}", a.from))?;
    }
    // everything verified: written, the timestamp last
    let trusted = up.trusted().clone();
    let given_root: Root = Envelope::parse(&given, ROOT)?.role()?;
    let mut files = vec![(format!("{}.root.json", given_root.version), given)];
    files.extend(
        up.fetcher()
            .fetched
            .lock()
            .map(|f| f.clone())
            .unwrap_or_default(),
    );
    files.push(("root.json".into(), trusted.root.0.clone()));
    files.sort_by_key(|(p, _)| p == "timestamp.json");
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    for (path, bytes) in &files {
        let dest = a.out.join(path);
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir)?;
        }
        crate::bootstrap::write_atomic(&dest, bytes)?;
    }
    let version = trusted.timestamp.as_ref().map_or(0, |t| t.1.version);
    Ok((files.len(), version))
}

pub async fn run(a: &MirrorArgs) -> anyhow::Result<()> {
    loop {
        match once(a).await {
            Ok((n, v)) => println!(
                "mirrored {} into {} (timestamp version {v}, {n} files)",
                a.from,
                a.out.display()
            ),
            Err(e) if a.every.is_some() => {
                tracing::warn!(error = %format!("{e:#}"), "mirror refresh failed; the copy is unchanged")
            }
            Err(e) => return Err(e),
        }
        match a.every {
            Some(s) => tokio::time::sleep(std::time::Duration::from_secs(s.max(1))).await,
            None => return Ok(()),
        }
    }
}
