//! `init --owner`: the directory to the services' user, the offline keys kept back.

use super::Layout;
#[cfg(unix)]
use anyhow::Context;
use std::path::Path;

/// Gives the directory to `owner` (`UID[:GID]`), except what is meant to go offline (the
/// offline directory; in a stack prepared before it, the CA and TSA roots' keys and the
/// TUF ceremony's keys): that stays with whoever ran init.
#[cfg(unix)]
pub(super) fn give_to(l: &Layout, owner: &str) -> anyhow::Result<()> {
    let dir = &l.dir;
    let (uid, gid) = match owner.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (owner, None),
    };
    let uid: u32 = uid
        .parse()
        .with_context(|| format!("--owner {owner}: give a numeric UID[:GID]"))?;
    let gid: Option<u32> = gid
        .map(|g| g.parse())
        .transpose()
        .with_context(|| format!("--owner {owner}: give a numeric UID[:GID]"))?;
    let offline = [
        l.offline.clone(),
        dir.join("keys/ca-root.pem"),
        dir.join("keys/tsa-root.pem"),
        dir.join("tuf-ceremony/keys"),
    ];
    fn walk(p: &Path, f: &mut dyn FnMut(&Path) -> anyhow::Result<()>) -> anyhow::Result<()> {
        f(p)?;
        if p.is_dir() && !p.is_symlink() {
            for e in std::fs::read_dir(p)? {
                walk(&e?.path(), f)?;
            }
        }
        Ok(())
    }
    walk(dir, &mut |p| {
        if offline.iter().any(|o| p.starts_with(o)) {
            return Ok(());
        }
        std::os::unix::fs::lchown(p, Some(uid), gid)
            .with_context(|| format!("giving {} to {owner} (run init as root)", p.display()))
    })
}

#[cfg(not(unix))]
pub(super) fn give_to(_: &Layout, _: &str) -> anyhow::Result<()> {
    anyhow::bail!("--owner works on Unix only")
}
