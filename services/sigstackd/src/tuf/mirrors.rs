//! Copies of other TUF repositories served beside ours: each directory `NAME` under the
//! configured `mirrors_dir` (written by `tuf mirror --out DIR/NAME` or `airgap import`)
//! is served byte for byte at `/mirrors/NAME/…`, so clients on a network that cannot
//! reach the upstream fetch its metadata, signed by the upstream's keys, from this
//! service. Nothing here is signed by us; clients verify it against the upstream's root.

use std::io::Read;
use std::path::{Component, Path};

/// Largest file served from a mirror.
const MAX_FILE: u64 = 16 << 20;

/// Whether a file of a repository copy never changes: versioned metadata
/// (`3.snapshot.json`) and targets (named by their hash). `timestamp.json`, `root.json`
/// and anything else are revalidated.
fn immutable(rel: &str) -> bool {
    match rel.split_once('/') {
        Some((dir, rest)) => dir == "targets" && !rest.is_empty(),
        None => rel.split_once('.').is_some_and(|(n, rest)| {
            !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && rest.ends_with("json")
        }),
    }
}

/// The file at `path` (`NAME/REL`) under `dir`: `None` when there is none, or when the
/// path is not plainly inside (no `..`, no hidden names, no symbolic links on the way).
pub fn read(dir: &Path, path: &str) -> Option<super::Served> {
    let rel = Path::new(path);
    let plain = rel.components().all(|c| match c {
        Component::Normal(s) => s.to_str().is_some_and(|s| !s.starts_with('.')),
        _ => false,
    });
    if !plain || rel.components().count() < 2 || path.ends_with('/') {
        return None;
    }
    // every step is a real directory or, at the end, a regular file: a link planted in
    // the directory leads nowhere
    let mut at = dir.to_path_buf();
    let n = rel.components().count();
    for (i, c) in rel.components().enumerate() {
        at.push(c);
        let meta = std::fs::symlink_metadata(&at).ok()?;
        let want_file = i + 1 == n;
        if meta.file_type().is_symlink() || meta.is_file() != want_file {
            return None;
        }
    }
    let file = std::fs::File::open(&at).ok()?;
    // what was opened is what was checked: a regular file (not a link swapped in since)
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut body = Vec::new();
    file.take(MAX_FILE + 1).read_to_end(&mut body).ok()?;
    if body.len() as u64 > MAX_FILE {
        tracing::warn!(path, "mirror file larger than {MAX_FILE} bytes: not served");
        return None;
    }
    let (_, inner) = path.split_once('/')?;
    Some(super::served(&body, immutable(inner)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_paths_inside_are_served() {
        let dir = std::env::temp_dir().join(format!("sigstack-mirrors-{}", std::process::id()));
        let repo = dir.join("up");
        std::fs::create_dir_all(repo.join("targets")).expect("dir");
        std::fs::write(repo.join("timestamp.json"), b"{}").expect("w");
        std::fs::write(repo.join("2.snapshot.json"), b"{}").expect("w");
        std::fs::write(repo.join("targets/ab.trusted_root.json"), b"{}").expect("w");
        std::fs::write(dir.join("secret"), b"no").expect("w");
        std::os::unix::fs::symlink(dir.join("secret"), repo.join("link.json")).expect("ln");
        assert!(!read(&dir, "up/timestamp.json").expect("served").immutable);
        assert!(read(&dir, "up/2.snapshot.json").expect("served").immutable);
        assert!(
            read(&dir, "up/targets/ab.trusted_root.json")
                .expect("served")
                .immutable
        );
        for bad in [
            "up/../secret",
            "secret",
            "up/link.json",
            "up",
            "up/targets",
            "/etc/passwd",
            "up/.hidden",
            "up/missing.json",
        ] {
            assert!(read(&dir, bad).is_none(), "{bad} was served");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
