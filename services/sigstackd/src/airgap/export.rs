//! `sigstackd airgap export`: the kit. Each repository is read the way a client reads it
//! and verified before it goes in, so a kit never carries a broken or expired copy.

use super::checkpoints::Record;
use super::kit::{CheckpointSummary, FORMAT, Kit, Manifest, RepoSummary};
use anyhow::{Context, bail};
use sigstack_tuf::http::HttpFetch;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ExportArgs {
    /// Where to write the kit: a new directory, or a `.tar` file.
    #[arg(long)]
    pub out: PathBuf,
    /// A TUF repository to carry, as NAME=SOURCE: the repository's URL (this stack's
    /// `sigstackd tuf`, or an upstream), or a directory written by `tuf export` or
    /// `tuf mirror`. Repeatable: `--tuf private=https://tuf.example --tuf
    /// public-good=/srv/mirrors/public-good`.
    #[arg(long = "tuf", value_name = "NAME=SOURCE", required = true)]
    pub tuf: Vec<String>,
    /// The root to verify repository NAME from (NAME=FILE); without it, the source's own
    /// `1.root.json` (the importer verifies against a root it was handed).
    #[arg(long = "root", value_name = "NAME=FILE")]
    pub root: Vec<String>,
    /// A Rekor v1 log whose checkpoint to carry (its base URL). Repeatable.
    #[arg(long = "rekor", value_name = "URL")]
    pub rekor: Vec<String>,
    /// A tiled (Rekor v2) log whose checkpoint to carry. Repeatable.
    #[arg(long = "rekor-v2", value_name = "URL")]
    pub rekor_v2: Vec<String>,
    /// A CT log whose signed tree head to carry. Repeatable.
    #[arg(long = "ctlog", value_name = "URL")]
    pub ctlog: Vec<String>,
}

/// A source as the TUF fetcher takes it: a URL, or a directory as `file://`.
fn source_url(source: &str) -> anyhow::Result<String> {
    if source.contains("://") {
        if !source.starts_with("file://") {
            crate::settings::check_flag_url("--tuf", source)?;
        }
        return Ok(source.trim_end_matches('/').to_string());
    }
    let dir = std::fs::canonicalize(source)
        .with_context(|| format!("--tuf {source}: no such directory"))?;
    reqwest::Url::from_directory_path(&dir)
        .map(|u| u.to_string().trim_end_matches('/').to_string())
        .map_err(|_| anyhow::anyhow!("--tuf {source}: not a directory path"))
}

pub async fn run(a: &ExportArgs) -> anyhow::Result<()> {
    let sources = super::named("--tuf", &a.tuf)?;
    let mut roots = super::roots(&a.root)?;
    if let Some(n) = roots.keys().find(|n| !sources.contains_key(*n)) {
        bail!("--root {n}=… names no --tuf repository");
    }
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let now = crate::sequencer::unix_now();
    let mut kit = Kit::default();
    let mut repositories = BTreeMap::new();
    let mut trusted_roots = Vec::new();
    for (name, source) in &sources {
        let base = source_url(source)?;
        let fetch = || HttpFetch {
            http: http.clone(),
            base: base.clone(),
        };
        let start = match roots.remove(name) {
            Some(r) => r,
            None => sigstack_tuf::client::Fetch::fetch(&fetch(), "1.root.json", 1 << 20)
                .await
                .with_context(|| format!("repository {name} at {source}"))?
                .with_context(|| format!("repository {name} at {source} has no 1.root.json"))?,
        };
        let v = crate::tuf::copy::verify(fetch(), &start, None, now)
            .await
            .with_context(|| format!("repository {name} at {source} does not verify"))?;
        for (path, bytes) in &v.files {
            kit.add(&format!("{name}/{path}"), bytes.clone())?;
        }
        // the trust files, as files, for clients that take them that way
        for (target, bytes) in &v.targets {
            if super::kit::plain(target) && !target.contains('/') {
                kit.add(&format!("trust/{name}/{target}"), bytes.clone())?;
            }
        }
        if let Some(tr) = super::trusted_root_of(&v.targets) {
            trusted_roots.push((name.clone(), tr));
        }
        repositories.insert(
            name.clone(),
            RepoSummary {
                root_version: v.trusted.root.1.version,
                timestamp_version: v.timestamp_version(),
                expires: v.expires(),
            },
        );
    }
    let mut checkpoints = Vec::new();
    let logs = [
        ("rekor-v1", &a.rekor),
        ("rekor-v2", &a.rekor_v2),
        ("ct", &a.ctlog),
    ];
    for (kind, urls) in logs {
        for url in urls {
            let record = Record::fetch(&http, kind, url).await?;
            let tree = record.verify(&trusted_roots)?;
            let file = record.file();
            kit.add(&file, serde_json::to_vec_pretty(&record)?)?;
            checkpoints.push(CheckpointSummary {
                file,
                kind: kind.to_string(),
                url: record.url.clone(),
                tree_size: tree.size,
                repository: tree.repository,
            });
        }
    }
    let stale = repositories
        .values()
        .map(|r| r.expires.clone())
        .min()
        .unwrap_or_default();
    let summary: Vec<String> = repositories
        .iter()
        .map(|(n, r)| {
            format!(
                "{n} (root v{}, timestamp v{})",
                r.root_version, r.timestamp_version
            )
        })
        .collect();
    kit.seal(Manifest {
        format: FORMAT.into(),
        created: sigstack_types::time::rfc3339(now),
        repositories,
        checkpoints: checkpoints.clone(),
        files: BTreeMap::new(),
    })?;
    kit.write(&a.out, u64::try_from(now).unwrap_or(0))?;
    println!(
        "wrote the kit {}: {} files; repositories {}; {} checkpoints",
        a.out.display(),
        kit.files.len(),
        summary.join(", "),
        checkpoints.len()
    );
    println!("import it before {stale} (when the first timestamp in it expires)");
    Ok(())
}
