//! `doctor --client-state DIR`: is the repository behind what a client already holds?
//! After a database restore from an older backup it can be: clients then refuse every
//! update (a rollback) until versions above theirs are published.

use super::Report;
use sigstack_tuf::client::Trusted;
use std::path::Path;

/// The version of each role's metadata a client kept in `dir` (`root.json`,
/// `timestamp.json`, `snapshot.json`, `targets.json`: python-tuf's, sigstore-go's and our
/// client's cache layout).
fn client_versions(dir: &Path) -> Vec<(&'static str, u64)> {
    ["root", "timestamp", "snapshot", "targets"]
        .into_iter()
        .filter_map(|role| {
            let bytes = std::fs::read(dir.join(format!("{role}.json"))).ok()?;
            let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
            Some((role, v["signed"]["version"].as_u64()?))
        })
        .collect()
}

pub fn check(dir: &Path, served: &Trusted, r: &mut Report) {
    let held = client_versions(dir);
    if held.is_empty() {
        return r.fail(
            "tuf",
            format!(
                "{} holds no TUF metadata (root.json, timestamp.json, …)",
                dir.display()
            ),
        );
    }
    let ours = |role: &str| match role {
        "root" => Some(served.root.1.version),
        "timestamp" => served.timestamp.as_ref().map(|t| t.1.version),
        "snapshot" => served.snapshot.as_ref().map(|t| t.1.version),
        _ => served.targets.as_ref().map(|t| t.1.version),
    };
    let mut behind = Vec::new();
    for (role, client) in &held {
        let repo = ours(role).unwrap_or(0);
        if repo < *client {
            behind.push(format!("{role} v{repo} < v{client}"));
        }
    }
    if behind.is_empty() {
        r.ok(
            "tuf",
            format!("not behind the client state in {}", dir.display()),
        );
    } else {
        r.fail(
            "tuf",
            format!(
                "the repository is older than the client state in {} ({}): it was restored from an older backup, and such clients refuse every update. Restart `sigstackd tuf` (it signs a snapshot and timestamp above the clock at start) and publish again, with `sigstackd tuf publish`, the root and targets versions signed since the backup (the ceremony directory keeps them)",
                dir.display(),
                behind.join(", ")
            ),
        );
    }
}
