//! `sigstackd airgap import`: verifies a kit and publishes it. Nothing is written until
//! the manifest, every repository (from a root handed over out of band, or the newest
//! one already published) and every checkpoint verified; then each repository is
//! published with its timestamp last, so a reader never sees half a repository.

use super::checkpoints::{Record, Tree, refuse_going_back};
use super::kit::Kit;
use crate::tuf::copy::{Held, Verified, verify};
use anyhow::{Context, bail, ensure};
use sigstack_tuf::TufError;
use sigstack_tuf::client::Fetch;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What the last import published (`DIR/imported.json`).
pub const RECORD: &str = "imported.json";

#[derive(clap::Args)]
pub struct ImportArgs {
    /// The kit: a directory or a `.tar` file written by `sigstackd airgap export`.
    #[arg(long)]
    pub kit: PathBuf,
    /// The root to verify repository NAME from (NAME=FILE), handed over out of band.
    /// Needed the first time a repository is imported; later imports start from the
    /// newest root already published.
    #[arg(long = "root", value_name = "NAME=FILE")]
    pub root: Vec<String>,
    /// The directory to publish into: each repository at `DIR/NAME/` (point
    /// `mirrors_dir` of `sigstackd tuf` here to serve them at `/mirrors/NAME/`), trust
    /// files at `DIR/trust/NAME/`, checkpoints at `DIR/checkpoints/`.
    #[arg(long)]
    pub out: PathBuf,
}

/// The repository `NAME/` inside a kit, as a TUF client fetches it.
struct KitFetch<'a> {
    kit: &'a Kit,
    name: &'a str,
}

impl Fetch for KitFetch<'_> {
    async fn fetch(&self, path: &str, max_len: u64) -> Result<Option<Vec<u8>>, TufError> {
        match self.kit.files.get(&format!("{}/{path}", self.name)) {
            Some(b) if b.len() as u64 > max_len => Err(TufError::Fetch {
                what: path.to_string(),
                msg: format!("longer than {max_len} bytes"),
            }),
            other => Ok(other.cloned()),
        }
    }
}

pub async fn run(a: &ImportArgs) -> anyhow::Result<()> {
    let kit = Kit::read(&a.kit)?;
    let manifest = kit.check()?;
    let mut roots = super::roots(&a.root)?;
    for name in manifest.repositories.keys() {
        super::check_name(name)?;
    }
    // nothing in the kit outside what the manifest describes
    for path in kit.files.keys() {
        let top = path.split('/').next().unwrap_or_default();
        ensure!(
            manifest.repositories.contains_key(top)
                || ["trust", "checkpoints"].contains(&top)
                || path == super::kit::MANIFEST,
            "the kit holds {path}, which belongs to no repository it lists"
        );
    }
    let now = crate::sequencer::unix_now();
    // 1. every repository, by the TUF client workflow
    let mut verified: BTreeMap<&str, Verified> = BTreeMap::new();
    for (name, summary) in &manifest.repositories {
        let dir = a.out.join(name);
        let held = Held::of(&dir);
        let start = match (&held.root, roots.remove(name.as_str())) {
            (Some(r), given) => {
                if given.is_some_and(|g| g != *r) {
                    eprintln!(
                        "note: {name} is already published in {}: its newest root is trusted, not the --root given",
                        a.out.display()
                    );
                }
                r.clone()
            }
            (None, Some(r)) => r,
            (None, None) => bail!(
                "repository {name} is new here: pass --root {name}=FILE with its root, handed over out of band"
            ),
        };
        let v = verify(KitFetch { kit: &kit, name }, &start, Some(&held), now)
            .await
            .with_context(|| format!("repository {name} in the kit"))?;
        ensure!(
            v.timestamp_version() == summary.timestamp_version,
            "repository {name}: the manifest says timestamp version {}, the kit holds {}",
            summary.timestamp_version,
            v.timestamp_version()
        );
        // the trust files are the verified targets, byte for byte
        for (path, bytes) in kit.under("trust") {
            let Some(target) = path.strip_prefix(&format!("{name}/")) else {
                continue;
            };
            let ok = v.targets.iter().any(|(t, b)| t == target && b == bytes);
            ensure!(
                ok,
                "trust/{name}/{target} in the kit is not the target {target} the repository signs"
            );
        }
        verified.insert(name, v);
    }
    if let Some(n) = roots.keys().next() {
        bail!("--root {n}=… names no repository in the kit");
    }
    for path in kit.files.keys() {
        if let Some(rest) = path.strip_prefix("trust/") {
            let repo = rest.split('/').next().unwrap_or_default();
            ensure!(
                verified.contains_key(repo),
                "the kit holds {path}, for no repository it lists"
            );
        }
    }
    // 2. every checkpoint, with the keys of the verified trusted roots; never back
    let trusted: Vec<(String, _)> = verified
        .iter()
        .filter_map(|(n, v)| Some((n.to_string(), super::trusted_root_of(&v.targets)?)))
        .collect();
    let mut checkpoints = Vec::new();
    for c in &manifest.checkpoints {
        let bytes = kit
            .files
            .get(&c.file)
            .with_context(|| format!("the manifest names {}, which the kit lacks", c.file))?;
        let record: Record = serde_json::from_slice(bytes)
            .with_context(|| format!("{} is not a checkpoint record", c.file))?;
        ensure!(
            record.file() == c.file && record.kind == c.kind && record.url == c.url,
            "{} does not hold the checkpoint the manifest says",
            c.file
        );
        let tree = record
            .verify(&trusted)
            .with_context(|| format!("the kit's checkpoint {}", c.file))?;
        if let Some(held) = held_tree(&a.out, &record, &trusted) {
            refuse_going_back(&record.url, &held, &tree)?;
        }
        checkpoints.push((c.file.clone(), bytes.clone(), tree));
    }
    for path in kit.files.keys() {
        if path.starts_with("checkpoints/") {
            ensure!(
                checkpoints.iter().any(|(f, _, _)| f == path),
                "the kit holds {path}, which its manifest does not list as a checkpoint"
            );
        }
    }
    // 3. all of it verified: published
    for (name, v) in &verified {
        v.write(&a.out.join(name))?;
        let trust = a.out.join("trust").join(name);
        for (target, bytes) in &v.targets {
            if super::kit::plain(target) && !target.contains('/') {
                std::fs::create_dir_all(&trust)?;
                crate::bootstrap::write_atomic(&trust.join(target), bytes)?;
            }
        }
    }
    for (file, bytes, _) in &checkpoints {
        let dest = a.out.join(file);
        if let Some(d) = dest.parent() {
            std::fs::create_dir_all(d)?;
        }
        crate::bootstrap::write_durable(&dest, bytes)?;
    }
    // what verified, not what the (unsigned) manifest says
    let repositories: BTreeMap<&str, serde_json::Value> = verified
        .iter()
        .map(|(n, v)| {
            (
                *n,
                serde_json::json!({
                    "root_version": v.trusted.root.1.version,
                    "timestamp_version": v.timestamp_version(),
                    "expires": v.expires(),
                }),
            )
        })
        .collect();
    let logs: Vec<serde_json::Value> = checkpoints
        .iter()
        .map(|(file, _, tree)| {
            serde_json::json!({"file": file, "tree_size": tree.size, "repository": tree.repository})
        })
        .collect();
    let record = serde_json::json!({
        "kit_created": manifest.created,
        "imported": sigstack_types::time::rfc3339(now),
        "repositories": repositories,
        "checkpoints": logs,
    });
    crate::bootstrap::write_atomic(&a.out.join(RECORD), &serde_json::to_vec_pretty(&record)?)?;
    for (name, v) in &verified {
        println!(
            "published {name} into {} (root v{}, timestamp v{}, stale after {})",
            a.out.join(name).display(),
            v.trusted.root.1.version,
            v.timestamp_version(),
            v.expires()
        );
    }
    for (file, _, tree) in &checkpoints {
        println!(
            "published {} ({} entries, signed by a log of {})",
            a.out.join(file).display(),
            tree.size,
            tree.repository
        );
    }
    Ok(())
}

/// The tree of the checkpoint published here before for the same log, when it still
/// verifies.
fn held_tree(
    out: &std::path::Path,
    record: &Record,
    trusted: &[(String, sigstack_types::trust::TrustedRoot)],
) -> Option<Tree> {
    let bytes = std::fs::read(out.join(record.file())).ok()?;
    let held: Record = serde_json::from_slice(&bytes).ok()?;
    if held.url != record.url || held.kind != record.kind {
        return None;
    }
    match held.verify(trusted) {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::warn!(file = %record.file(), cause = %format!("{e:#}"), "the checkpoint published before no longer verifies; replacing it");
            None
        }
    }
}
