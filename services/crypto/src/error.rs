/// Why a key, certificate or signature was not accepted. Messages are written for the
/// person who sent the input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    #[error("invalid PEM: {0}")]
    Pem(String),
    #[error("invalid public key: {0}")]
    PublicKey(String),
    #[error("invalid certificate: {0}")]
    Certificate(String),
    #[error("invalid private key: {0}")]
    PrivateKey(String),
    #[error("unsupported key type or algorithm: {0}")]
    Unsupported(String),
    #[error("signature verification failed")]
    BadSignature,
    #[error("malformed signature: {0}")]
    MalformedSignature(String),
    #[error("signing failed: {0}")]
    Signing(String),
    #[error("key file: {0}")]
    Io(String),
}
