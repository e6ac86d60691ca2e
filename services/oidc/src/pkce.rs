//! Proof Key for Code Exchange (RFC 7636): only the S256 method, as cosign and
//! sigstore-python use it (`plain` offers no protection against a stolen code).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PkceError {
    #[error("code_challenge_method must be S256")]
    Method,
    #[error("code_challenge must be 43 base64url characters (SHA-256)")]
    Challenge,
    #[error("code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~] (RFC 7636 §4.1)")]
    Verifier,
    #[error("code_verifier does not match the code_challenge")]
    Mismatch,
}

/// Checks an authorization request's challenge (§4.3).
pub fn check_challenge(method: Option<&str>, challenge: &str) -> Result<(), PkceError> {
    if method != Some("S256") {
        return Err(PkceError::Method);
    }
    let ok = challenge.len() == 43
        && URL_SAFE_NO_PAD
            .decode(challenge)
            .is_ok_and(|d| d.len() == 32);
    if ok {
        Ok(())
    } else {
        Err(PkceError::Challenge)
    }
}

/// The S256 challenge of a verifier (§4.2).
pub fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Checks a token request's verifier against the stored challenge (§4.6), comparing in
/// constant time.
pub fn verify(verifier: &str, challenge: &str) -> Result<(), PkceError> {
    let syntax = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !syntax {
        return Err(PkceError::Verifier);
    }
    let computed = challenge_of(verifier);
    if constant_time_eq(computed.as_bytes(), challenge.as_bytes()) {
        Ok(())
    } else {
        Err(PkceError::Mismatch)
    }
}

/// Equality whose time depends only on the lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc7636_appendix_b() {
        assert_eq!(challenge_of(VERIFIER), CHALLENGE);
        assert_eq!(verify(VERIFIER, CHALLENGE), Ok(()));
        check_challenge(Some("S256"), CHALLENGE).expect("valid challenge");
    }

    #[test]
    fn refuses_what_it_must() {
        assert_eq!(
            check_challenge(Some("plain"), CHALLENGE),
            Err(PkceError::Method)
        );
        assert_eq!(check_challenge(None, CHALLENGE), Err(PkceError::Method));
        assert_eq!(
            check_challenge(Some("S256"), "short"),
            Err(PkceError::Challenge)
        );
        assert_eq!(
            check_challenge(Some("S256"), &format!("{}*", &CHALLENGE[..42])),
            Err(PkceError::Challenge)
        );
        let mut other = VERIFIER.to_string();
        other.replace_range(0..1, "e");
        assert_eq!(verify(&other, CHALLENGE), Err(PkceError::Mismatch));
        assert_eq!(verify("too-short", CHALLENGE), Err(PkceError::Verifier));
        assert_eq!(
            verify(&"a".repeat(129), CHALLENGE),
            Err(PkceError::Verifier)
        );
        assert_eq!(
            verify(&format!("{}!", &VERIFIER[..43]), CHALLENGE),
            Err(PkceError::Verifier)
        );
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(constant_time_eq(b"abc", b"abc"));
    }
}
