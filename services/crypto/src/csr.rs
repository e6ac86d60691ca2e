//! PKCS#10 certificate signing requests (RFC 2986) as Fulcio clients send them: a PEM
//! `CERTIFICATE REQUEST` (or `NEW CERTIFICATE REQUEST`) whose self-signature proves
//! possession of the key. Subject and requested extensions are ignored, as Fulcio does.

use crate::{CryptoError, PublicKey, pem};
use der::{Decode, Encode};

/// Parses a PEM CSR, checks its self-signature and returns the key it certifies.
pub fn parse_csr(pem_text: &[u8]) -> Result<PublicKey, CryptoError> {
    let blocks = pem::decode_all(pem_text)?;
    if blocks.len() != 1 {
        return Err(CryptoError::Pem(
            "expected exactly one CERTIFICATE REQUEST block".into(),
        ));
    }
    let block = &blocks[0];
    if block.label != "CERTIFICATE REQUEST" && block.label != "NEW CERTIFICATE REQUEST" {
        return Err(CryptoError::Pem(format!(
            "expected a CERTIFICATE REQUEST block, found {}",
            block.label
        )));
    }
    let req = x509_cert::request::CertReq::from_der(&block.der)
        .map_err(|e| CryptoError::Certificate(format!("malformed certificate request: {e}")))?;
    let spki = req
        .info
        .public_key
        .to_der()
        .map_err(|e| CryptoError::Certificate(format!("malformed certificate request: {e}")))?;
    let key = PublicKey::from_spki_der(&spki)?;
    let info = req
        .info
        .to_der()
        .map_err(|e| CryptoError::Certificate(format!("malformed certificate request: {e}")))?;
    let sig = req.signature.as_bytes().ok_or_else(|| {
        CryptoError::MalformedSignature("certificate request signature has unused bits".into())
    })?;
    key.verify_signed(&req.algorithm.oid, &info, sig)
        .map_err(|e| match e {
            CryptoError::Unsupported(m) => CryptoError::Unsupported(m),
            _ => CryptoError::Certificate(
                "certificate request signature does not verify with its own key".into(),
            ),
        })?;
    Ok(key)
}
