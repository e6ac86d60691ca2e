//! `sigstackd tuf mirror`: follows a TUF repository — the public-good instance, another
//! stack — and writes what it verified, byte for byte, into a directory: the same layout
//! `tuf export` writes, for a web server or a `file://` mirror on the other side of an
//! air gap. Clients of the copy see the upstream's signatures, never ours. Each run
//! verifies with the TUF client workflow (root rotations, thresholds, versions, hashes,
//! expiry) from the newest root the copy holds, and never takes the copy back to older
//! metadata than it has.

use super::copy::{Held, verify};
use anyhow::Context;
use sigstack_tuf::http::HttpFetch;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct MirrorArgs {
    /// The repository to follow: its metadata base URL (https://tuf-repo-cdn.sigstore.dev).
    #[arg(long)]
    pub from: String,
    /// The root to start from, handed over out of band (a copy that holds a newer one
    /// starts from that).
    #[arg(long)]
    pub root: PathBuf,
    /// The directory to write (created). To serve the copy from `sigstackd tuf` at
    /// `/mirrors/NAME/`, write it into `MIRRORS_DIR/NAME`.
    #[arg(long)]
    pub out: PathBuf,
    /// Keep following: refresh every this many seconds (default: once).
    #[arg(long)]
    pub every: Option<u64>,
}

/// One refresh; returns the files written and the upstream's timestamp version.
pub async fn once(a: &MirrorArgs) -> anyhow::Result<(usize, u64)> {
    crate::settings::check_flag_url("--from", &a.from)?;
    let given = std::fs::read(&a.root).with_context(|| format!("reading {}", a.root.display()))?;
    let held = Held::of(&a.out);
    let start = held.root.clone().unwrap_or(given);
    let fetch = HttpFetch {
        http: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()?,
        base: a.from.clone(),
    };
    let verified = verify(fetch, &start, Some(&held), crate::sequencer::unix_now())
        .await
        .with_context(|| format!("following {}", a.from))?;
    // everything verified: written, the timestamp last
    verified.write(&a.out)?;
    Ok((verified.files.len(), verified.timestamp_version()))
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
