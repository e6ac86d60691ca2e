//! ID tokens (OpenID Connect Core §2) as compact JWS (RFC 7515 §7.1) signed ES256
//! (RFC 7518 §3.4: the fixed-width `r || s`, not DER), and the JWKS (RFC 7517 §5)
//! that publishes the keys.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sigstack_crypto::{CryptoError, PublicKey, Signer};
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    #[error("ID tokens are signed with ECDSA P-256 (ES256) or RSA (RS256) keys; got {0}")]
    KeyType(String),
    #[error("signing failed: {0}")]
    Signing(#[from] CryptoError),
    #[error("malformed ECDSA signature from the signer")]
    Signature,
}

/// Who authenticated the user upstream (Dex's `federated_claims`, read by Fulcio's
/// Dex issuer entry): the upstream issuer URL, or ours for local users.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FederatedClaims {
    pub connector_id: String,
    pub user_id: String,
}

/// `aud`: one audience, or several (RFC 7519 §4.1.3), as a workload token carries both
/// the relying party it is for (`sigstore`) and the client that asked (which cosign's
/// client-credentials flow requires).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl From<&str> for Audience {
    fn from(a: &str) -> Self {
        Self::One(a.to_string())
    }
}

impl From<String> for Audience {
    fn from(a: String) -> Self {
        Self::One(a)
    }
}

/// The claims of an ID token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub exp: i64,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub federated_claims: FederatedClaims,
    /// Further string claims (a workload's, for the CA's `ci-provider` templates).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
}

fn b64u(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

/// The key ID a key is published under: the first 16 bytes of the SHA-256 of its
/// SubjectPublicKeyInfo, base64url (stable across restarts, distinct across rotations).
pub fn key_id(key: &PublicKey) -> String {
    b64u(&sigstack_crypto::sha256(key.spki_der())[..16])
}

/// Converts an ASN.1 DER ECDSA signature to the JWS `r || s` form of `width`-byte
/// integers.
fn der_to_fixed(der_sig: &[u8], width: usize) -> Result<Vec<u8>, JwtError> {
    use der::{Decode, Reader};
    let mut r = der::SliceReader::new(der_sig).map_err(|_| JwtError::Signature)?;
    let (a, b) = r
        .sequence(|r| {
            let a = der::asn1::UintRef::decode(r)?;
            let b = der::asn1::UintRef::decode(r)?;
            Ok((a.as_bytes().to_vec(), b.as_bytes().to_vec()))
        })
        .map_err(|_| JwtError::Signature)?;
    if a.len() > width || b.len() > width {
        return Err(JwtError::Signature);
    }
    let mut out = vec![0u8; 2 * width];
    out[width - a.len()..width].copy_from_slice(&a);
    out[2 * width - b.len()..].copy_from_slice(&b);
    Ok(out)
}

/// The JWS algorithm a key signs with: `ES256` for P-256, `RS256` for RSA.
pub fn algorithm(key: &PublicKey) -> Result<&'static str, JwtError> {
    match key.key_details() {
        "PKIX_ECDSA_P256_SHA_256" => Ok("ES256"),
        d if d.starts_with("PKIX_RSA_PKCS1V15_") => Ok("RS256"),
        _ => Err(JwtError::KeyType(key.describe())),
    }
}

/// Signs `claims` into a compact JWS with `signer` (ECDSA P-256 or RSA).
pub fn mint(signer: &dyn Signer, claims: &IdClaims) -> Result<String, JwtError> {
    let key = signer.public_key();
    let alg = algorithm(key)?;
    let header = json!({"alg": alg, "typ": "JWT", "kid": key_id(key)});
    let claims = serde_json::to_vec(claims).map_err(|_| JwtError::Signature)?;
    let input = format!("{}.{}", b64u(header.to_string().as_bytes()), b64u(&claims));
    let sig = signer.sign(input.as_bytes())?;
    let sig = if alg == "ES256" {
        der_to_fixed(&sig, 32)?
    } else {
        sig
    };
    Ok(format!("{input}.{}", b64u(&sig)))
}

/// One public key as a JWK (`kty: EC`, `crv: P-256`; or `kty: RSA`).
pub fn jwk(key: &PublicKey) -> Result<Value, JwtError> {
    let spki = key.spki_der();
    if algorithm(key)? == "RS256" {
        use rsa::pkcs8::DecodePublicKey;
        use rsa::traits::PublicKeyParts;
        let rsa = rsa::RsaPublicKey::from_public_key_der(spki)
            .map_err(|_| JwtError::KeyType(key.describe()))?;
        return Ok(json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": key_id(key),
            "n": b64u(&rsa.n().to_bytes_be()), "e": b64u(&rsa.e().to_bytes_be()),
        }));
    }
    // the uncompressed point (0x04 || x || y) ends the SubjectPublicKeyInfo
    let point = &spki[spki.len() - 65..];
    Ok(json!({
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": key_id(key),
        "x": b64u(&point[1..33]), "y": b64u(&point[33..65]),
    }))
}

/// The JWKS document for the current key and those still published after a rotation.
pub fn jwks(keys: &[&PublicKey]) -> Result<Value, JwtError> {
    Ok(json!({"keys": keys.iter().map(|k| jwk(k)).collect::<Result<Vec<_>, _>>()?}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sigstack_ca::token::{Expectations, Jwks, UnverifiedToken, verify};
    use sigstack_crypto::{Curve, FileSigner};

    const ISS: &str = "http://127.0.0.1:5556";

    fn claims(now: i64) -> IdClaims {
        IdClaims {
            iss: ISS.into(),
            sub: "CgVhbGljZRIFbG9jYWw".into(),
            aud: "sigstore".into(),
            exp: now + 300,
            iat: now,
            nonce: Some("n-0S6_WzA2Mj".into()),
            email: Some("alice@example.test".into()),
            email_verified: Some(true),
            name: None,
            federated_claims: FederatedClaims {
                connector_id: ISS.into(),
                user_id: "alice".into(),
            },
            extra: BTreeMap::new(),
        }
    }

    fn expect(now: i64) -> Expectations {
        Expectations {
            issuer: ISS.into(),
            audience: "sigstore".into(),
            now,
            leeway: 0,
            allowed_algs: vec!["ES256".into()],
        }
    }

    #[test]
    fn our_tokens_pass_our_cas_verifier() {
        let now = 1_790_000_000;
        let old = FileSigner::generate(Curve::P256);
        let key = FileSigner::generate(Curve::P256);
        let set = jwks(&[old.public_key(), key.public_key()]).expect("jwks");
        let set = Jwks::from_json(set.to_string().as_bytes()).expect("CA parses our JWKS");
        for signer in [&old, &key] {
            let token = mint(signer, &claims(now)).expect("mint");
            let parsed = UnverifiedToken::parse(&token).expect("parse");
            let verified = verify(&parsed, &set, &expect(now)).expect("verifies");
            assert_eq!(verified.email(), Some("alice@example.test"));
            assert!(verified.email_verified());
            assert_eq!(
                verified
                    .get("federated_claims")
                    .and_then(|f| f.get("connector_id")),
                Some(&json!(ISS))
            );
        }
        // a key no longer published does not verify
        let only_new = Jwks::from_json(
            jwks(&[key.public_key()])
                .expect("jwks")
                .to_string()
                .as_bytes(),
        )
        .expect("parse");
        let token = mint(&old, &claims(now)).expect("mint");
        assert!(
            verify(
                &UnverifiedToken::parse(&token).expect("parse"),
                &only_new,
                &expect(now)
            )
            .is_err()
        );
        // and an expired one is refused
        assert!(
            verify(
                &UnverifiedToken::parse(&mint(&key, &claims(now - 1000)).expect("mint"))
                    .expect("p"),
                &only_new,
                &expect(now)
            )
            .is_err()
        );
    }

    #[test]
    fn der_signatures_become_fixed_width() {
        // r = 1, s = 0x80 (needs a leading zero in DER)
        let der_sig = [0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x02, 0x00, 0x80];
        let fixed = der_to_fixed(&der_sig, 32).expect("convert");
        assert_eq!(fixed.len(), 64);
        assert_eq!(fixed[31], 1);
        assert_eq!(fixed[63], 0x80);
        assert!(fixed[..31].iter().all(|b| *b == 0));
        assert!(der_to_fixed(&[0x30, 0x00], 32).is_err());
    }

    #[test]
    fn rsa_keys_mint_rs256_tokens_our_ca_verifies() {
        let now = 1_790_000_000;
        let key = sigstack_crypto::RsaFileSigner::from_pem(
            &sigstack_crypto::RsaFileSigner::generate_pem().expect("generate"),
        )
        .expect("load");
        let set = jwks(&[key.public_key()]).expect("jwks");
        assert_eq!(set["keys"][0]["kty"], "RSA");
        assert_eq!(set["keys"][0]["e"], "AQAB");
        let set = Jwks::from_json(set.to_string().as_bytes()).expect("CA parses our JWKS");
        let token = mint(&key, &claims(now)).expect("mint");
        let parsed = UnverifiedToken::parse(&token).expect("parse");
        assert_eq!(parsed.header().alg(), "RS256");
        let mut e = expect(now);
        e.allowed_algs = vec!["RS256".into()];
        verify(&parsed, &set, &e).expect("verifies");
        // and not under the ES256-only policy
        assert!(verify(&parsed, &set, &expect(now)).is_err());
    }

    #[test]
    fn only_p256_keys_mint() {
        let k = FileSigner::generate(Curve::P384);
        assert!(mint(&k, &claims(0)).is_err());
        assert!(jwk(k.public_key()).is_err());
    }
}
