//! Signing keys. Services sign through [`Signer`], so a KMS or PKCS#11 backend can stand
//! in for the key files used today. File keys sign with aws-lc-rs.

use crate::{CryptoError, PublicKey, pem};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair,
    EcdsaSigningAlgorithm, KeyPair,
};
use std::path::Path;

/// A private key that signs. ECDSA signatures are ASN.1 DER over the key's default hash
/// (SHA-256 for P-256, SHA-384 for P-384).
pub trait Signer: Send + Sync {
    fn public_key(&self) -> &PublicKey;
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, CryptoError>;
    /// Signs a message known only by its SHA-256 digest, where the key signs SHA-256.
    fn sign_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>, CryptoError> {
        let _ = digest;
        Err(CryptoError::Unsupported(
            "this key cannot sign a digest alone".into(),
        ))
    }
}

/// An ECDSA key kept in a PEM file (PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY`).
pub struct FileSigner {
    pair: EcdsaKeyPair,
    public: PublicKey,
    rng: SystemRandom,
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

impl Curve {
    fn alg(self) -> &'static EcdsaSigningAlgorithm {
        match self {
            Curve::P256 => &ECDSA_P256_SHA256_ASN1_SIGNING,
            Curve::P384 => &ECDSA_P384_SHA384_ASN1_SIGNING,
        }
    }
}

pub(crate) fn bad_private(e: impl std::fmt::Display) -> CryptoError {
    CryptoError::PrivateKey(e.to_string())
}

impl FileSigner {
    pub fn generate(curve: Curve) -> Self {
        let pair = EcdsaKeyPair::generate(curve.alg()).expect("the system RNG works");
        Self::from_pair(pair).expect("a fresh key has a public key")
    }

    fn from_pair(pair: EcdsaKeyPair) -> Result<Self, CryptoError> {
        let der = pair
            .public_key()
            .as_der()
            .map_err(|_| bad_private("cannot encode the public key"))?;
        let public = PublicKey::from_spki_der(der.as_ref())?;
        Ok(Self {
            pair,
            public,
            rng: SystemRandom::new(),
        })
    }

    /// Reads a PKCS#8 or SEC1 PEM private key (P-256 or P-384).
    pub fn from_pem(text: &str) -> Result<Self, CryptoError> {
        let blocks = pem::decode_all(text.as_bytes())?;
        let block = blocks
            .iter()
            .find(|b| b.label == "PRIVATE KEY" || b.label == "EC PRIVATE KEY")
            .ok_or_else(|| bad_private("expected a PRIVATE KEY or EC PRIVATE KEY PEM block"))?;
        let pair = [Curve::P256, Curve::P384].iter().find_map(|c| {
            if block.label == "PRIVATE KEY" {
                EcdsaKeyPair::from_pkcs8(c.alg(), &block.der).ok()
            } else {
                EcdsaKeyPair::from_private_key_der(c.alg(), &block.der).ok()
            }
        });
        let pair =
            pair.ok_or_else(|| bad_private("expected an ECDSA P-256 or P-384 private key"))?;
        Self::from_pair(pair)
    }

    pub fn to_pkcs8_pem(&self) -> Result<String, CryptoError> {
        let doc = self
            .pair
            .to_pkcs8v1()
            .map_err(|_| bad_private("cannot encode the private key"))?;
        Ok(pem::encode("PRIVATE KEY", doc.as_ref()))
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
        write_private_pem(path, &key.to_pkcs8_pem()?)?;
        Ok(key)
    }
}

impl FileSigner {
    /// Signs a message known only by its SHA-256 digest (a P-256 key signs SHA-256, so
    /// the signature equals one over the message). P-384 keys sign SHA-384 and refuse.
    pub fn sign_sha256_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>, CryptoError> {
        let d = aws_lc_rs::digest::Digest::import_less_safe(digest, &aws_lc_rs::digest::SHA256)
            .map_err(|_| CryptoError::Signing("bad digest".into()))?;
        self.pair
            .sign_digest(&d)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| {
                CryptoError::Signing("this key does not sign SHA-256 digests (P-256 only)".into())
            })
    }
}

impl Signer for FileSigner {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>, CryptoError> {
        self.sign_sha256_digest(digest)
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.pair
            .sign(&self.rng, msg)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| CryptoError::Signing("ECDSA signing failed".into()))
    }
}

/// An RSA key kept in a PEM file (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`),
/// signing RSASSA-PKCS1-v1_5 with SHA-256 (JWS `RS256`).
pub struct RsaFileSigner {
    pair: aws_lc_rs::rsa::KeyPair,
    public: PublicKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for RsaFileSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaFileSigner")
            .field("public", &self.public.describe())
            .field("private", &"<redacted>")
            .finish()
    }
}

impl RsaFileSigner {
    /// Reads a PEM RSA private key of 2048 to 4096 bits.
    pub fn from_pem(text: &str) -> Result<Self, CryptoError> {
        let blocks = pem::decode_all(text.as_bytes())?;
        let block = blocks
            .iter()
            .find(|b| b.label == "PRIVATE KEY" || b.label == "RSA PRIVATE KEY")
            .ok_or_else(|| bad_private("expected a PRIVATE KEY or RSA PRIVATE KEY PEM block"))?;
        let pair = if block.label == "PRIVATE KEY" {
            aws_lc_rs::rsa::KeyPair::from_pkcs8(&block.der)
        } else {
            aws_lc_rs::rsa::KeyPair::from_der(&block.der)
        }
        .map_err(|e| bad_private(format!("not a usable RSA private key: {e}")))?;
        let der = pair
            .public_key()
            .as_der()
            .map_err(|_| bad_private("cannot encode the public key"))?;
        let public = PublicKey::from_spki_der(der.as_ref())?;
        Ok(Self {
            pair,
            public,
            rng: SystemRandom::new(),
        })
    }

    /// A fresh 2048-bit key, as PKCS#8 PEM (for tests and generated configurations).
    pub fn generate_pem() -> Result<String, CryptoError> {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .map_err(|_| bad_private("RSA key generation failed"))?;
        let doc = pair
            .as_der()
            .map_err(|_| bad_private("cannot encode the private key"))?;
        Ok(pem::encode("PRIVATE KEY", doc.as_ref()))
    }
}

impl Signer for RsaFileSigner {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &self.rng,
                msg,
                &mut sig,
            )
            .map_err(|_| CryptoError::Signing("RSA signing failed".into()))?;
        Ok(sig)
    }
}

/// Writes a private key file (mode 0600) through a synced temporary file and a rename.
pub(crate) fn write_private_pem(path: &Path, pem: &str) -> Result<(), CryptoError> {
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
    std::fs::rename(&tmp, path).map_err(io)
}

/// The key at `path` of either kind, or (when there is none) a new RSA-2048 key written
/// there: what ID-token issuers use, since cosign takes `--identity-token VALUE` as a
/// token only when it is RS256.
pub fn load_or_generate_rsa(path: &Path) -> Result<Box<dyn Signer>, CryptoError> {
    if !path.exists() {
        write_private_pem(path, &RsaFileSigner::generate_pem()?)?;
    }
    load_signer(path)
}

/// Loads a PEM private key of either kind: ECDSA (P-256, P-384) or RSA.
pub fn load_signer(path: &Path) -> Result<Box<dyn Signer>, CryptoError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CryptoError::Io(format!("reading {}: {e}", path.display())))?;
    match FileSigner::from_pem(&text) {
        Ok(k) => Ok(Box::new(k)),
        Err(ec) => RsaFileSigner::from_pem(&text)
            .map(|k| Box::new(k) as Box<dyn Signer>)
            .map_err(|rsa| {
                bad_private(format!(
                    "{}: neither an ECDSA key ({ec}) nor an RSA key ({rsa})",
                    path.display()
                ))
            }),
    }
}
