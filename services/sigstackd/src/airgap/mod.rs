//! `sigstackd airgap`: carrying trust across an air gap on a disk. `export` writes a kit
//! — TUF repositories (ours, mirrored ones, or both) in the consistent-snapshot layout
//! clients fetch, their trust files, the logs' checkpoints, and a manifest with the
//! SHA-256 of every file; `import` verifies all of it on the far side (manifest, TUF
//! signatures from a root handed over out of band, checkpoint signatures) before it
//! publishes anything, and refuses to go back to older metadata or smaller trees.

pub mod checkpoints;
pub mod export;
pub mod import;
mod kit;

use anyhow::{Context, ensure};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum AirgapAction {
    /// Write a transfer kit (a directory, or one `.tar` file).
    Export(export::ExportArgs),
    /// Verify a kit and publish it into a directory (`mirrors_dir` of `sigstackd tuf`,
    /// or any web server's), refusing rollbacks.
    Import(import::ImportArgs),
}

pub async fn run(action: AirgapAction) -> anyhow::Result<()> {
    match action {
        AirgapAction::Export(a) => export::run(&a).await,
        AirgapAction::Import(a) => import::run(&a).await,
    }
}

/// Names the kit reserves for itself beside the repositories.
const RESERVED: [&str; 5] = [
    "trust",
    "checkpoints",
    "targets",
    kit::MANIFEST,
    import::RECORD,
];

/// A repository's name in a kit: one plain path component, not a reserved one.
fn check_name(name: &str) -> anyhow::Result<()> {
    ensure!(
        kit::plain(name) && !name.contains('/') && !RESERVED.contains(&name),
        "{name:?} is not a usable repository name (plain letters, digits, `.-_`; not one of {RESERVED:?})"
    );
    Ok(())
}

/// `NAME=VALUE` flags, by name.
fn named(flag: &str, values: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for v in values {
        let (name, value) = v
            .split_once('=')
            .with_context(|| format!("{flag} takes NAME=VALUE, not {v:?}"))?;
        check_name(name)?;
        ensure!(
            out.insert(name.to_string(), value.to_string()).is_none(),
            "{flag} names {name} twice"
        );
    }
    Ok(out)
}

/// The roots handed over out of band, read from `NAME=FILE` flags.
fn roots(values: &[String]) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    named("--root", values)?
        .into_iter()
        .map(|(n, f)| {
            let path = PathBuf::from(&f);
            std::fs::read(&path)
                .with_context(|| format!("reading --root {n}={f}"))
                .map(|b| (n, b))
        })
        .collect()
}

/// The trusted root among a repository's targets, parsed.
fn trusted_root_of(targets: &[(String, Vec<u8>)]) -> Option<sigstack_types::trust::TrustedRoot> {
    let (_, bytes) = targets.iter().find(|(n, _)| n == "trusted_root.json")?;
    serde_json::from_slice(bytes).ok()
}
