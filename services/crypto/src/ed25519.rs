//! Ed25519 keys kept in PEM files: what signs the checkpoints of a tiled (Rekor v2) log
//! and a witness's cosignatures, since the C2SP witness network verifies Ed25519 only.

use crate::signer::{bad_private, write_private_pem};
use crate::{CryptoError, PublicKey, Signer, pem};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use std::path::Path;

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410), before the 32 key bytes.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// An Ed25519 private key in a PKCS#8 PEM file (`openssl genpkey -algorithm ed25519`).
pub struct Ed25519Signer {
    pair: Ed25519KeyPair,
    public: PublicKey,
    raw_public: [u8; 32],
}

impl std::fmt::Debug for Ed25519Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ed25519Signer")
            .field("public", &hex_short(&self.raw_public))
            .field("private", &"<redacted>")
            .finish()
    }
}

fn hex_short(b: &[u8]) -> String {
    b.iter().take(4).map(|x| format!("{x:02x}")).collect()
}

impl Ed25519Signer {
    fn from_pair(pair: Ed25519KeyPair) -> Result<Self, CryptoError> {
        let raw_public: [u8; 32] = pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| bad_private("an Ed25519 public key is 32 bytes"))?;
        let mut spki = SPKI_PREFIX.to_vec();
        spki.extend_from_slice(&raw_public);
        Ok(Self {
            pair,
            public: PublicKey::from_spki_der(&spki)?,
            raw_public,
        })
    }

    pub fn generate() -> Self {
        let doc = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new())
            .expect("the system RNG works");
        Self::from_pair(Ed25519KeyPair::from_pkcs8(doc.as_ref()).expect("a fresh key parses"))
            .expect("a fresh key has a public key")
    }

    /// Reads a PKCS#8 (v1 or v2) `PRIVATE KEY` PEM block holding an Ed25519 key.
    pub fn from_pem(text: &str) -> Result<Self, CryptoError> {
        let blocks = pem::decode_all(text.as_bytes())?;
        let block = blocks
            .iter()
            .find(|b| b.label == "PRIVATE KEY")
            .ok_or_else(|| bad_private("expected a PRIVATE KEY PEM block"))?;
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&block.der)
            .map_err(|e| bad_private(format!("not an Ed25519 private key: {e}")))?;
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
        Self::from_pem(&text).map_err(|e| bad_private(format!("{}: {e}", path.display())))
    }

    /// Loads the key at `path`, or generates one and writes it there (mode 0600, through
    /// a temporary file and a rename).
    pub fn load_or_generate(path: &Path) -> Result<Self, CryptoError> {
        if path.exists() {
            return Self::load(path);
        }
        let key = Self::generate();
        write_private_pem(path, &key.to_pkcs8_pem()?)?;
        Ok(key)
    }

    /// The 32 raw public key bytes (what signed-note key IDs hash).
    pub fn raw_public_key(&self) -> &[u8; 32] {
        &self.raw_public
    }
}

impl Signer for Ed25519Signer {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Ok(self.pair.sign(msg).as_ref().to_vec())
    }
}

/// The 32 raw bytes of an Ed25519 public key given as DER SubjectPublicKeyInfo.
pub fn ed25519_raw(spki_der: &[u8]) -> Option<[u8; 32]> {
    spki_der
        .strip_prefix(&SPKI_PREFIX[..])
        .and_then(|k| k.try_into().ok())
}
