//! Keys, signatures and the small encodings around them that every sigstack service and
//! the client share: PEM blocks, public keys and certificates as clients send them,
//! signature verification under Rekor's algorithm allowlist, log IDs, and the
//! [`Signer`] trait behind which file, KMS or PKCS#11 keys sit.

mod cert;
mod csr;
mod ed25519;
mod error;
mod key;
pub mod pem;
mod signer;

pub use cert::{Certificate, KeyMaterial};
pub use csr::parse_csr;
pub use ed25519::{Ed25519Signer, ed25519_raw};
pub use error::CryptoError;
pub use key::{HashAlg, PublicKey, sig_oid};
pub use signer::{Curve, FileSigner, RsaFileSigner, Signer, load_or_generate_rsa, load_signer};

use sha2::{Digest, Sha256};

/// The Rekor v1 / CT log ID: SHA-256 of the DER SubjectPublicKeyInfo.
pub fn log_id(spki_der: &[u8]) -> [u8; 32] {
    Sha256::digest(spki_der).into()
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

#[cfg(test)]
mod tests;
