//! A transfer kit on disk: a directory, or one tar file, holding TUF repositories,
//! trust files and log checkpoints, with `manifest.json` naming the SHA-256 of every
//! other file. Reading a kit is bounded (files, bytes, plain paths, regular files only):
//! it arrives from another network and is not trusted until verified.

use anyhow::{Context, bail, ensure};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path};

pub const MANIFEST: &str = "manifest.json";
pub const FORMAT: &str = "sigstack-airgap-kit/1";
const MAX_FILES: usize = 20_000;
const MAX_FILE: u64 = 32 << 20;
const MAX_TOTAL: u64 = 256 << 20;
/// Directories a kit may hold (a tree of empty ones costs the reader too).
const MAX_DIRS: usize = 4_096;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RepoSummary {
    /// The newest root's version.
    pub root_version: u64,
    pub timestamp_version: u64,
    /// When the repository's timestamp expires: the kit is stale after it.
    pub expires: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CheckpointSummary {
    pub file: String,
    /// `rekor-v1`, `rekor-v2` or `ct`.
    pub kind: String,
    pub url: String,
    pub tree_size: u64,
    /// The repository whose trusted root holds the log's key.
    pub repository: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub created: String,
    pub repositories: BTreeMap<String, RepoSummary>,
    pub checkpoints: Vec<CheckpointSummary>,
    /// Every other file of the kit, with the hex SHA-256 of its bytes.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

/// A kit's files by relative path (`/`-separated).
#[derive(Default)]
pub struct Kit {
    pub files: BTreeMap<String, Vec<u8>>,
}

/// A relative path of plain names, none hidden: nothing a kit names can land outside
/// the directory it is published into.
pub fn plain(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 512
        && path.split('/').all(|c| {
            !c.is_empty()
                && !c.starts_with('.')
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-+@=".contains(&b))
        })
}

struct Budget {
    files: usize,
    dirs: usize,
    bytes: u64,
}

impl Budget {
    fn take(&mut self, path: &str, len: u64) -> anyhow::Result<()> {
        ensure!(
            plain(path),
            "the kit holds a file with a name that is not plain: {path:?}"
        );
        ensure!(
            len <= MAX_FILE,
            "{path} is larger than {MAX_FILE} bytes: not a kit file"
        );
        self.files += 1;
        self.bytes += len;
        ensure!(
            self.files <= MAX_FILES,
            "the kit holds more than {MAX_FILES} files"
        );
        ensure!(
            self.bytes <= MAX_TOTAL,
            "the kit is larger than {MAX_TOTAL} bytes"
        );
        Ok(())
    }
}

impl Kit {
    pub fn add(&mut self, path: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        ensure!(plain(path), "not a plain kit path: {path:?}");
        ensure!(
            self.files.insert(path.to_string(), bytes).is_none(),
            "{path} is in the kit twice"
        );
        Ok(())
    }

    /// Reads a kit from a directory or a `.tar` file.
    pub fn read(from: &Path) -> anyhow::Result<Self> {
        let meta = std::fs::symlink_metadata(from)
            .with_context(|| format!("reading the kit {}", from.display()))?;
        let mut kit = Kit::default();
        let mut budget = Budget {
            files: 0,
            dirs: 0,
            bytes: 0,
        };
        if meta.is_dir() {
            kit.read_dir(from, "", &mut budget)?;
        } else {
            // the whole archive is bounded before it is parsed: no header, extension
            // record or long name in it can make the reader hold more
            let limit = MAX_TOTAL + MAX_FILES as u64 * 1536;
            ensure!(
                meta.len() <= limit,
                "the kit {} is larger than {limit} bytes",
                from.display()
            );
            let file = std::fs::File::open(from)
                .with_context(|| format!("reading the kit {}", from.display()))?;
            let mut archive = tar::Archive::new(file);
            for entry in archive.entries().context("the kit is not a tar file")? {
                let mut entry = entry.context("the kit is not a readable tar file")?;
                let path = entry.path().context("a tar entry without a path")?;
                let path = path
                    .to_str()
                    .context("a tar entry whose name is not UTF-8")?
                    .trim_start_matches("./")
                    .trim_end_matches('/')
                    .to_string();
                match entry.header().entry_type() {
                    tar::EntryType::Directory => continue,
                    tar::EntryType::Regular => {}
                    other => {
                        bail!("the kit holds {path:?}, a {other:?}: only plain files are accepted")
                    }
                }
                // the size the reader will read (a PAX record may override the header's)
                let len = entry.size();
                budget.take(&path, len)?;
                let mut bytes = Vec::new();
                (&mut entry)
                    .take(MAX_FILE + 1)
                    .read_to_end(&mut bytes)
                    .with_context(|| format!("reading {path} from the kit"))?;
                ensure!(
                    bytes.len() as u64 == len,
                    "{path} in the kit is not as long as its header says"
                );
                kit.add(&path, bytes)?;
            }
        }
        Ok(kit)
    }

    fn read_dir(&mut self, dir: &Path, prefix: &str, budget: &mut Budget) -> anyhow::Result<()> {
        ensure!(
            prefix.len() <= 512,
            "the kit nests directories deeper than any kit path: {prefix}"
        );
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            let name = name
                .to_str()
                .with_context(|| format!("a file name in {} is not UTF-8", dir.display()))?;
            let rel = format!("{prefix}{name}");
            let ty = e.file_type()?;
            if ty.is_dir() {
                budget.dirs += 1;
                ensure!(
                    budget.dirs <= MAX_DIRS,
                    "the kit holds more than {MAX_DIRS} directories"
                );
                self.read_dir(&e.path(), &format!("{rel}/"), budget)?;
            } else if ty.is_file() {
                let len = e.metadata()?.len();
                budget.take(&rel, len)?;
                let mut bytes = Vec::new();
                std::fs::File::open(e.path())?
                    .take(len.min(MAX_FILE) + 1)
                    .read_to_end(&mut bytes)?;
                ensure!(
                    bytes.len() as u64 == len,
                    "{rel} changed while the kit was read"
                );
                self.add(&rel, bytes)?;
            } else {
                bail!("the kit holds {rel}, which is not a plain file or directory");
            }
        }
        Ok(())
    }

    /// Adds `manifest.json`, naming the hash of every file.
    pub fn seal(&mut self, mut manifest: Manifest) -> anyhow::Result<()> {
        manifest.files = self
            .files
            .iter()
            .map(|(p, b)| (p.clone(), hex::encode(sigstack_crypto::sha256(b))))
            .collect();
        let mut text = serde_json::to_vec_pretty(&manifest)?;
        text.push(b'\n');
        self.add(MANIFEST, text)
    }

    /// The manifest, once every file it names is here with its hash and nothing else is.
    pub fn check(&self) -> anyhow::Result<Manifest> {
        let text = self.files.get(MANIFEST).context(
            "the kit has no manifest.json: it was not written by `sigstackd airgap export`",
        )?;
        let m: Manifest =
            serde_json::from_slice(text).context("the kit's manifest.json is not valid")?;
        ensure!(
            m.format == FORMAT,
            "the kit's format is {:?}, not {FORMAT:?}",
            m.format
        );
        let mut problems = Vec::new();
        for (path, want) in &m.files {
            match self.files.get(path) {
                None => problems.push(format!("{path} is missing")),
                Some(b) if hex::encode(sigstack_crypto::sha256(b)) != *want => {
                    problems.push(format!("{path} does not match its SHA-256 in the manifest"))
                }
                Some(_) => {}
            }
        }
        for path in self.files.keys() {
            if path != MANIFEST && !m.files.contains_key(path) {
                problems.push(format!("{path} is not in the manifest"));
            }
        }
        if !problems.is_empty() {
            let n = problems.len();
            problems.truncate(10);
            bail!(
                "the kit does not match its manifest ({n} problems): {}",
                problems.join("; ")
            );
        }
        Ok(m)
    }

    /// Writes the kit: a `.tar` file (replaced whole), or a new or empty directory.
    pub fn write(&self, out: &Path, mtime: u64) -> anyhow::Result<()> {
        if out.extension().is_some_and(|e| e == "tar") {
            let tmp = out.with_extension("tar.tmp");
            let file = std::fs::File::create(&tmp)
                .with_context(|| format!("creating {}", tmp.display()))?;
            let mut b = tar::Builder::new(file);
            for (path, bytes) in &self.files {
                let mut h = tar::Header::new_ustar();
                h.set_size(bytes.len() as u64);
                h.set_mode(0o644);
                h.set_mtime(mtime);
                h.set_entry_type(tar::EntryType::Regular);
                b.append_data(&mut h, path, &bytes[..])
                    .with_context(|| format!("writing {path} into {}", tmp.display()))?;
            }
            b.into_inner()?.sync_all()?;
            std::fs::rename(&tmp, out).with_context(|| format!("writing {}", out.display()))?;
            return Ok(());
        }
        if out.exists() {
            let empty = std::fs::read_dir(out)
                .with_context(|| format!("{} is not a directory", out.display()))?
                .next()
                .is_none();
            ensure!(
                empty,
                "{} is not empty: write a kit into a new directory (or a .tar file)",
                out.display()
            );
        }
        for (path, bytes) in &self.files {
            let dest = out.join(path);
            debug_assert!(
                Path::new(path)
                    .components()
                    .all(|c| matches!(c, Component::Normal(_)))
            );
            if let Some(dir) = dest.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            std::fs::write(&dest, bytes).with_context(|| format!("writing {}", dest.display()))?;
        }
        Ok(())
    }

    /// The files under `NAME/`, keyed by their path inside it.
    pub fn under<'a>(&'a self, name: &str) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        let prefix = format!("{name}/");
        self.files
            .iter()
            .filter_map(move |(p, b)| p.strip_prefix(prefix.as_str()).map(|rest| (rest, &b[..])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Kit {
        let mut k = Kit::default();
        k.add("repo/timestamp.json", b"{}".to_vec()).expect("add");
        k.add("checkpoints/rekor-v1-log.json", b"cp".to_vec())
            .expect("add");
        k.seal(Manifest {
            format: FORMAT.into(),
            created: "2026-12-07T00:00:00Z".into(),
            repositories: BTreeMap::new(),
            checkpoints: vec![],
            files: BTreeMap::new(),
        })
        .expect("seal");
        k
    }

    #[test]
    fn a_kit_round_trips_through_tar_and_directories_and_catches_changes() {
        let dir = std::env::temp_dir().join(format!("sigstack-kit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let k = sample();
        for out in [dir.join("k.tar"), dir.join("k")] {
            k.write(&out, 0).expect("write");
            let back = Kit::read(&out).expect("read");
            assert_eq!(back.files, k.files);
            back.check().expect("intact");
        }
        assert!(k.write(&dir.join("k"), 0).is_err(), "wrote over a kit");
        let mut changed = Kit::read(&dir.join("k")).expect("read");
        changed
            .files
            .insert("repo/timestamp.json".into(), b"{ }".to_vec());
        let e = changed.check().expect_err("changed");
        assert!(format!("{e}").contains("does not match its SHA-256"), "{e}");
        let mut extra = Kit::read(&dir.join("k")).expect("read");
        extra.files.insert("repo/extra.json".into(), b"{}".to_vec());
        let e = extra.check().expect_err("extra");
        assert!(format!("{e}").contains("not in the manifest"), "{e}");
        std::os::unix::fs::symlink("/etc/passwd", dir.join("k/repo/link")).expect("ln");
        assert!(Kit::read(&dir.join("k")).is_err(), "a link was read");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn only_plain_paths() {
        for ok in [
            "a",
            "a/b.json",
            "targets/ab12.trusted_root.json",
            "1.root.json",
        ] {
            assert!(plain(ok), "{ok}");
        }
        for bad in [
            "", "/a", "a/../b", "../a", "a//b", ".hidden", "a/./b", "a\\b", "a b",
        ] {
            assert!(!plain(bad), "{bad}");
        }
    }
}
