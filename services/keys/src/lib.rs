//! Key references: how every signing key of the stack (CA, CT log, transparency logs,
//! TSA, OIDC token key, TUF online key, witness) and `sigstack --key` is named, in the
//! spellings cosign uses:
//!
//! - a file path: a PEM private key (ECDSA P-256/P-384, RSA, Ed25519), as before;
//! - `pkcs11:…`: a key in a PKCS#11 token (RFC 7512; see [`pkcs11`]);
//! - `awskms://[ENDPOINT]/KEY`: a key in AWS KMS (see [`awskms`]);
//! - `env://NAME`: a PEM private key held in the environment variable NAME.
//!
//! - `gcpkms://…`, `azurekms://…`, `hashivault://…`: Google Cloud KMS, Azure Key Vault,
//!   Vault's transit engine (see [`cloud`]).
//!
//! Keys in a token or a KMS are never exported: the reference gives a [`Signer`] that
//! asks the token or service for each signature.

pub mod awskms;
pub mod cloud;
mod der;
pub mod pkcs11;

use anyhow::{Context, bail};
use sigstack_crypto::{Curve, Ed25519Signer, FileSigner, PublicKey, Signer};
use std::path::{Path, PathBuf};

/// The kind of key to create where none exists yet.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum KeyKind {
    P256,
    P384,
    Rsa2048,
    Ed25519,
}

/// The KMS schemes cosign names keys with.
const KMS_SCHEMES: &[&str] = &["awskms://", "gcpkms://", "azurekms://", "hashivault://"];

/// Whether `s` names a key in a KMS.
pub fn is_kms(s: &str) -> bool {
    KMS_SCHEMES.iter().any(|p| s.starts_with(p))
}

/// Whether `s` is a key reference other than a file path.
pub fn is_reference(s: &str) -> bool {
    s.starts_with("pkcs11:") || s.starts_with("env://") || is_kms(s)
}

/// A parsed key reference.
#[derive(Debug)]
pub enum KeyRef {
    File(PathBuf),
    Env(String),
    Pkcs11(pkcs11::Uri),
    AwsKms(String),
    /// Google Cloud KMS, Azure Key Vault or Vault.
    Cloud(String),
}

impl KeyRef {
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        if s.starts_with("pkcs11:") {
            return Ok(Self::Pkcs11(pkcs11::Uri::parse(s)?));
        }
        if let Some(name) = s.strip_prefix("env://") {
            if name.is_empty() {
                bail!("env://: name the environment variable that holds the key");
            }
            return Ok(Self::Env(name.to_string()));
        }
        if s.starts_with("awskms://") {
            return Ok(Self::AwsKms(s.to_string()));
        }
        if is_kms(s) {
            return Ok(Self::Cloud(s.to_string()));
        }
        Ok(Self::File(PathBuf::from(s)))
    }

    /// The reference as messages show it (never a PIN).
    pub fn describe(&self) -> String {
        match self {
            Self::File(p) => p.display().to_string(),
            Self::Env(n) => format!("env://{n}"),
            Self::Pkcs11(u) => u.describe(),
            Self::AwsKms(u) | Self::Cloud(u) => u.clone(),
        }
    }
}

/// A PEM private key of any kind the stack signs with.
fn signer_from_pem(text: &str, what: &str) -> anyhow::Result<Box<dyn Signer>> {
    if let Ok(k) = FileSigner::from_pem(text) {
        return Ok(Box::new(k));
    }
    if let Ok(k) = sigstack_crypto::RsaFileSigner::from_pem(text) {
        return Ok(Box::new(k));
    }
    match Ed25519Signer::from_pem(text) {
        Ok(k) => Ok(Box::new(k)),
        Err(_) => bail!("{what}: not an ECDSA, RSA or Ed25519 private key in PEM"),
    }
}

fn open_file(path: &Path) -> anyhow::Result<Box<dyn Signer>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    signer_from_pem(&text, &path.display().to_string())
}

/// The signer a reference names; it must exist.
pub fn open(reference: &str) -> anyhow::Result<Box<dyn Signer>> {
    match KeyRef::parse(reference)? {
        KeyRef::File(p) => open_file(&p),
        KeyRef::Env(name) => {
            let text = std::env::var(&name)
                .with_context(|| format!("env://{name}: the variable is not set"))?;
            signer_from_pem(&text, &format!("env://{name}"))
        }
        KeyRef::Pkcs11(u) => Ok(Box::new(pkcs11::Pkcs11Signer::open(&u)?)),
        KeyRef::AwsKms(u) => Ok(Box::new(awskms::KmsSigner::open(&u)?)),
        KeyRef::Cloud(u) => Ok(Box::new(cloud::RemoteSigner::open(
            &u,
            &cloud::process_env,
        )?)),
    }
}

/// The signer a reference names, created (in the file, token or KMS) when there is none.
pub fn open_or_generate(reference: &str, kind: KeyKind) -> anyhow::Result<Box<dyn Signer>> {
    match KeyRef::parse(reference)? {
        KeyRef::File(p) => Ok(match kind {
            KeyKind::P256 => Box::new(FileSigner::load_or_generate(&p, Curve::P256)?),
            KeyKind::P384 => Box::new(FileSigner::load_or_generate(&p, Curve::P384)?),
            KeyKind::Rsa2048 => sigstack_crypto::load_or_generate_rsa(&p)?,
            KeyKind::Ed25519 => Box::new(Ed25519Signer::load_or_generate(&p)?),
        }),
        KeyRef::Pkcs11(u) => Ok(match pkcs11::Pkcs11Signer::find(&u)? {
            Some(s) => Box::new(s),
            None => Box::new(pkcs11::Pkcs11Signer::generate(&u, kind)?),
        }),
        KeyRef::AwsKms(_) | KeyRef::Env(_) | KeyRef::Cloud(_) => open(reference),
    }
}

/// Creates a new key where the reference points (a token or a KMS); refuses when one is
/// there already.
pub fn generate(reference: &str, kind: KeyKind) -> anyhow::Result<Box<dyn Signer>> {
    match KeyRef::parse(reference)? {
        KeyRef::Pkcs11(u) => Ok(Box::new(pkcs11::Pkcs11Signer::generate(&u, kind)?)),
        KeyRef::AwsKms(u) => {
            let kms = awskms::AwsKms::parse(&u)?;
            awskms::block_on(kms.create(kind))?;
            Ok(Box::new(awskms::KmsSigner::open(&u)?))
        }
        KeyRef::Cloud(u) if u.starts_with("hashivault://") => {
            let vault = cloud::Vault::parse(&u, &cloud::process_env)?;
            awskms::block_on(vault.create(kind))?;
            Ok(Box::new(cloud::RemoteSigner::open(
                &u,
                &cloud::process_env,
            )?))
        }
        other => bail!(
            "{}: keys are created here in a pkcs11: token, AWS KMS or Vault (make Cloud KMS and Key Vault keys with their own tools)",
            other.describe()
        ),
    }
}

/// Checks that the place a reference points to can be reached (a token: its module,
/// the token and the PIN), without needing the key itself to exist.
pub fn check_reachable(reference: &str) -> anyhow::Result<()> {
    match KeyRef::parse(reference)? {
        KeyRef::Pkcs11(u) => pkcs11::check_login(&u),
        _ => Ok(()),
    }
}

/// The public half of the key a reference names.
pub fn public_key(reference: &str) -> anyhow::Result<PublicKey> {
    Ok(open(reference)?.public_key().clone())
}
