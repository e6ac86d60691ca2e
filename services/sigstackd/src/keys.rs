//! Server signing keys by reference (see [`sigstack_keys`]): a PEM file, which other
//! users must not be able to read, or a key in a PKCS#11 token (`pkcs11:…`) or a KMS
//! (`awskms://…`). Every service's `signing_key` (and the TUF `online_key`) is such a
//! reference; the private half of a token or KMS key never reaches this process.

use anyhow::Context;
use sigstack_crypto::Signer;
use std::path::Path;
use std::sync::Arc;

pub use sigstack_keys::KeyKind;

/// A configuration's `signing_key` (or `online_key`): a path or a key reference, which
/// its `Debug` (the "starting" log line) shows without PIN or module.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct KeyPath(std::path::PathBuf);

impl std::ops::Deref for KeyPath {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for KeyPath {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl From<std::path::PathBuf> for KeyPath {
    fn from(p: std::path::PathBuf) -> Self {
        Self(p)
    }
}

impl From<&Path> for KeyPath {
    fn from(p: &Path) -> Self {
        Self(p.to_path_buf())
    }
}

impl std::fmt::Debug for KeyPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", shown(&self.0))
    }
}

/// The reference as logs and messages may show it: a path, or a URI without its PIN.
pub fn shown(p: &Path) -> String {
    sigstack_keys::KeyRef::parse(&p.to_string_lossy())
        .map(|r| r.describe())
        .unwrap_or_else(|_| "<an unreadable key reference>".into())
}

/// Whether the key lives in a token or KMS rather than a file.
pub fn is_reference(p: &Path) -> bool {
    sigstack_keys::is_reference(&p.to_string_lossy())
}

/// The signer `p` names; `what` says which key it is in messages.
pub fn open(p: &Path, what: &str) -> anyhow::Result<Arc<dyn Signer>> {
    if !is_reference(p) {
        crate::settings::check_private(p)?;
    }
    let signer = sigstack_keys::open(&p.to_string_lossy())
        .with_context(|| format!("loading {what} {}", shown(p)))?;
    Ok(Arc::from(signer))
}

/// The signer `p` names, created (file, token or KMS) when there is none yet.
pub fn open_or_generate(p: &Path, kind: KeyKind, what: &str) -> anyhow::Result<Arc<dyn Signer>> {
    let signer = sigstack_keys::open_or_generate(&p.to_string_lossy(), kind)
        .with_context(|| format!("{what} {}", shown(p)))?;
    Ok(Arc::from(signer))
}

/// Refuses a key of another kind than the service signs with (`details` as the trusted
/// root names them, e.g. `PKIX_ED25519`).
pub fn expect(signer: &dyn Signer, details: &[&str], p: &Path, what: &str) -> anyhow::Result<()> {
    let got = signer.public_key().key_details();
    anyhow::ensure!(
        details.contains(&got),
        "{what} {} is {} ({got}); it must be {}",
        shown(p),
        signer.public_key().describe(),
        details.join(" or ")
    );
    Ok(())
}

/// A key reference for each named key of a stack whose keys all live in one token:
/// `pkcs11:token=T?module-path=…` gives `pkcs11:token=T;object=sigstack-NAME?…`.
pub fn in_backend(backend: &str, name: &str) -> anyhow::Result<std::path::PathBuf> {
    let Some(rest) = backend.strip_prefix("pkcs11:") else {
        anyhow::bail!(
            "--key-backend {backend}: only pkcs11: tokens can hold every key of the stack"
        )
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    anyhow::ensure!(
        !path
            .split(';')
            .any(|a| a.starts_with("object=") || a.starts_with("id=")),
        "--key-backend names the token only (no object= or id=): each key gets its own object"
    );
    let path = path.trim_end_matches(';');
    let sep = if path.is_empty() { "" } else { ";" };
    let q = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    let r = format!("pkcs11:{path}{sep}object=sigstack-{name}{q}");
    sigstack_keys::KeyRef::parse(&r)?;
    Ok(r.into())
}

/// Whether the key a reference names exists (a file: is there; a token or KMS key: opens).
pub fn exists(p: &Path) -> bool {
    if is_reference(p) {
        sigstack_keys::open(&p.to_string_lossy()).is_ok()
    } else {
        p.exists()
    }
}

/// Checks that `--key-backend`'s token can be logged in to, before anything is written.
pub fn check_backend(backend: &str) -> anyhow::Result<()> {
    let probe = in_backend(backend, "probe")?;
    sigstack_keys::check_reachable(&probe.to_string_lossy())
        .with_context(|| format!("--key-backend {}", shown(&probe)))
}

/// The name a key in a backend has in `init`'s layout (`sigstack-log` → `log`).
pub fn backend_name(p: &Path) -> Option<String> {
    match sigstack_keys::KeyRef::parse(&p.to_string_lossy()).ok()? {
        sigstack_keys::KeyRef::Pkcs11(u) => {
            let o = u.object?;
            Some(o.strip_prefix("sigstack-").unwrap_or(&o).to_string())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backend_names_one_object_per_key_and_hides_its_pin() {
        let r = in_backend("pkcs11:token=stack?module-path=/m.so&pin-value=1234", "log")
            .expect("a backend");
        assert_eq!(
            r.to_string_lossy(),
            "pkcs11:token=stack;object=sigstack-log?module-path=/m.so&pin-value=1234"
        );
        assert_eq!(shown(&r), "pkcs11:token=stack;object=sigstack-log");
        assert!(in_backend("pkcs11:token=s;object=k", "log").is_err());
        assert!(in_backend("awskms:///alias/x", "log").is_err());
        assert!(is_reference(&r));
        assert!(!is_reference(Path::new("/keys/log.pem")));
        assert_eq!(backend_name(&r).as_deref(), Some("log"));
        let k = KeyPath::from(r);
        assert_eq!(
            format!("{k:?}"),
            "\"pkcs11:token=stack;object=sigstack-log\""
        );
    }
}
