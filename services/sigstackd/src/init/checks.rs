//! What `init` checks before it writes: keys a published stack must already have, the
//! CA chains it reads, and an organisation's CA chain to issue under.

use anyhow::Context;
use sigstack_crypto::{Certificate, KeyMaterial};
use std::path::Path;

/// A key of the stack at `path`: there, or (`make`: a first run, or a service new since)
/// made now. A stack whose trust is published never gets a key behind its operator's back.
pub(super) fn require_key(path: &Path, make: bool, what: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        make || crate::keys::exists(path),
        "{what} {} is missing, and this stack's trust is published: `init` never makes a new key for it. Restore the file from your backup, or rotate the key (README, \"Keys and rotation\") and point the configuration at the new one",
        crate::keys::shown(path)
    );
    Ok(())
}

pub(super) fn read_chain(path: &Path) -> anyhow::Result<Vec<Certificate>> {
    let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    match KeyMaterial::from_pem(&pem).with_context(|| format!("parsing {}", path.display()))? {
        KeyMaterial::Certificates(c) if !c.is_empty() => Ok(c),
        _ => anyhow::bail!("{} holds no certificates", path.display()),
    }
}

/// `--ca-chain` and `--ca-key`, checked: the chain the CA will issue under.
pub(super) fn own_ca(chain_path: &Path, key: &Path) -> anyhow::Result<Vec<Certificate>> {
    let chain = read_chain(chain_path)?;
    let signer = crate::keys::open(key, "--ca-key")?;
    let what = |e: anyhow::Error| e.context(format!("--ca-chain {}", chain_path.display()));
    anyhow::ensure!(
        chain[0].public_key() == signer.public_key(),
        "--ca-chain {}: its first certificate is not for --ca-key {} (put the CA's own certificate first, then its issuers)",
        chain_path.display(),
        crate::keys::shown(key)
    );
    crate::keys::expect(
        signer.as_ref(),
        &["PKIX_ECDSA_P256_SHA_256", "PKIX_ECDSA_P384_SHA_384"],
        key,
        "--ca-key",
    )?;
    crate::ca::check_chain_profile(&chain).map_err(what)?;
    KeyMaterial::Certificates(chain.clone())
        .verify_chain()
        .map_err(|e| {
            what(anyhow::anyhow!(
                "a certificate is not issued by the next: {e}"
            ))
        })?;
    let now = crate::sequencer::unix_now() as u64;
    let (from, until) = chain[0].validity();
    anyhow::ensure!(
        from <= now && until >= now + 86_400,
        "--ca-chain {}: the CA's certificate must be valid now and for at least a day more (it is valid {} to {})",
        chain_path.display(),
        crate::time::rfc3339(from as i64),
        crate::time::rfc3339(until as i64)
    );
    Ok(chain)
}
