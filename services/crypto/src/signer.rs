//! Signing keys. Services sign through [`Signer`], so a KMS or PKCS#11 backend can stand
//! in for the key files used today.

use crate::{CryptoError, PublicKey};
use ecdsa::signature::Signer as _;
use pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use std::path::Path;

/// A private key that signs. ECDSA signatures are ASN.1 DER over the key's default hash
/// (SHA-256 for P-256, SHA-384 for P-384).
pub trait Signer: Send + Sync {
    fn public_key(&self) -> &PublicKey;
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, CryptoError>;
}

enum Inner {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
}

/// An ECDSA key kept in a PEM file (PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY`).
pub struct FileSigner {
    inner: Inner,
    public: PublicKey,
}

impl std::fmt::Debug for FileSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSigner")
            .field("public", &self.public.describe())
            .field("private", &"<redacted>")
            .finish()
    }
}

/// Which curve a generated key uses.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
}

fn bad_private(e: impl std::fmt::Display) -> CryptoError {
    CryptoError::PrivateKey(e.to_string())
}

impl FileSigner {
    pub fn generate(curve: Curve) -> Self {
        let mut rng = rand::rngs::OsRng;
        let inner = match curve {
            Curve::P256 => Inner::P256(p256::ecdsa::SigningKey::random(&mut rng)),
            Curve::P384 => Inner::P384(p384::ecdsa::SigningKey::random(&mut rng)),
        };
        Self::from_inner(inner).expect("a fresh key has a public key")
    }

    fn from_inner(inner: Inner) -> Result<Self, CryptoError> {
        let der = match &inner {
            Inner::P256(k) => k.verifying_key().to_public_key_der(),
            Inner::P384(k) => k.verifying_key().to_public_key_der(),
        }
        .map_err(bad_private)?;
        let public = PublicKey::from_spki_der(der.as_bytes())?;
        Ok(Self { inner, public })
    }

    /// Reads a PKCS#8 or SEC1 PEM private key (P-256 or P-384).
    pub fn from_pem(text: &str) -> Result<Self, CryptoError> {
        let inner = if text.contains("-----BEGIN EC PRIVATE KEY-----") {
            use p256::elliptic_curve::SecretKey;
            if let Ok(k) = SecretKey::<p256::NistP256>::from_sec1_pem(text) {
                Inner::P256(k.into())
            } else {
                let k = SecretKey::<p384::NistP384>::from_sec1_pem(text).map_err(|_| {
                    bad_private("EC PRIVATE KEY is neither a P-256 nor a P-384 key")
                })?;
                Inner::P384(k.into())
            }
        } else if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_pem(text) {
            Inner::P256(k)
        } else {
            Inner::P384(p384::ecdsa::SigningKey::from_pkcs8_pem(text).map_err(|_| {
                bad_private("expected a PKCS#8 or SEC1 PEM ECDSA P-256 or P-384 private key")
            })?)
        };
        Self::from_inner(inner)
    }

    pub fn to_pkcs8_pem(&self) -> Result<String, CryptoError> {
        let pem = match &self.inner {
            Inner::P256(k) => k.to_pkcs8_pem(LineEnding::LF),
            Inner::P384(k) => k.to_pkcs8_pem(LineEnding::LF),
        }
        .map_err(bad_private)?;
        Ok(pem.to_string())
    }

    pub fn load(path: &Path) -> Result<Self, CryptoError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CryptoError::Io(format!("reading {}: {e}", path.display())))?;
        Self::from_pem(&text)
    }

    /// Loads the key at `path`, or generates one and writes it there (mode 0600, written
    /// to a temporary file and renamed so a crash never leaves half a key).
    pub fn load_or_generate(path: &Path, curve: Curve) -> Result<Self, CryptoError> {
        if path.exists() {
            return Self::load(path);
        }
        let key = Self::generate(curve);
        let pem = key.to_pkcs8_pem()?;
        let io = |e: std::io::Error| CryptoError::Io(format!("writing {}: {e}", path.display()));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = path.with_extension("tmp");
        {
            use std::io::Write;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(&tmp).map_err(io)?;
            f.write_all(pem.as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)?;
        Ok(key)
    }
}

impl Signer for FileSigner {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Ok(match &self.inner {
            Inner::P256(k) => {
                let s: p256::ecdsa::Signature = k
                    .try_sign(msg)
                    .map_err(|e| CryptoError::Signing(e.to_string()))?;
                s.to_der().as_bytes().to_vec()
            }
            Inner::P384(k) => {
                let s: p384::ecdsa::Signature = k
                    .try_sign(msg)
                    .map_err(|e| CryptoError::Signing(e.to_string()))?;
                s.to_der().as_bytes().to_vec()
            }
        })
    }
}
