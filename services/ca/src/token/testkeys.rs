//! Test-only signing keys (generated with aws-lc-rs) and token minting.

use std::sync::{Arc, OnceLock};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair as _, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use der::{Decode as _, Reader as _};
use serde_json::{Value, json};

use super::Algorithm;

pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A private key to sign test tokens with.
#[derive(Clone)]
pub(crate) enum TestKey {
    Rsa(Arc<RsaKeyPair>),
    P256(Arc<EcdsaKeyPair>),
    P384(Arc<EcdsaKeyPair>),
    Ed25519(Arc<Ed25519KeyPair>),
}

impl TestKey {
    /// A fresh RSA-2048 key (slow to generate: prefer [`TestKey::rsa`]).
    pub(crate) fn fresh_rsa() -> Self {
        Self::Rsa(Arc::new(
            RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key generation"),
        ))
    }

    /// One RSA-2048 key shared by every test.
    pub(crate) fn rsa() -> Self {
        static KEY: OnceLock<TestKey> = OnceLock::new();
        KEY.get_or_init(Self::fresh_rsa).clone()
    }

    pub(crate) fn p256() -> Self {
        Self::P256(Arc::new(
            EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("P-256 generation"),
        ))
    }

    pub(crate) fn p384() -> Self {
        Self::P384(Arc::new(
            EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).expect("P-384 generation"),
        ))
    }

    pub(crate) fn ed25519() -> Self {
        Self::Ed25519(Arc::new(
            Ed25519KeyPair::generate().expect("Ed25519 generation"),
        ))
    }

    /// The algorithm a token signed with this key uses by default.
    pub(crate) fn alg(&self) -> Algorithm {
        match self {
            Self::Rsa(_) => Algorithm::Rs256,
            Self::P256(_) => Algorithm::Es256,
            Self::P384(_) => Algorithm::Es384,
            Self::Ed25519(_) => Algorithm::EdDsa,
        }
    }

    /// The RSA modulus and exponent, read from the DER `RSAPublicKey` (RFC 8017 A.1.1).
    pub(crate) fn rsa_components(&self) -> (Vec<u8>, Vec<u8>) {
        let Self::Rsa(kp) = self else {
            panic!("not an RSA key")
        };
        let der = kp.public_key().as_ref();
        let mut reader = der::SliceReader::new(der).expect("DER");
        reader
            .sequence(|r| {
                let n = der::asn1::UintRef::decode(r)?;
                let e = der::asn1::UintRef::decode(r)?;
                Ok((n.as_bytes().to_vec(), e.as_bytes().to_vec()))
            })
            .expect("RSAPublicKey")
    }

    /// The public JWK, without `alg` or `use`.
    pub(crate) fn jwk(&self, kid: &str) -> Value {
        match self {
            Self::Rsa(_) => {
                let (n, e) = self.rsa_components();
                json!({"kty": "RSA", "kid": kid, "n": b64(&n), "e": b64(&e)})
            }
            Self::P256(kp) | Self::P384(kp) => {
                let point = kp.public_key().as_ref();
                let (crv, len) = if matches!(self, Self::P256(_)) {
                    ("P-256", 32)
                } else {
                    ("P-384", 48)
                };
                json!({"kty": "EC", "kid": kid, "crv": crv,
                    "x": b64(&point[1..1 + len]), "y": b64(&point[1 + len..])})
            }
            Self::Ed25519(kp) => {
                json!({"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64(kp.public_key().as_ref())})
            }
        }
    }

    /// Signs `message` with `alg` (RSA keys take any RS*/PS* algorithm).
    pub(crate) fn sign(&self, alg: Algorithm, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            Self::Rsa(kp) => {
                let padding: &'static dyn aws_lc_rs::signature::RsaEncoding = match alg {
                    Algorithm::Rs256 => &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                    Algorithm::Rs384 => &aws_lc_rs::signature::RSA_PKCS1_SHA384,
                    Algorithm::Rs512 => &aws_lc_rs::signature::RSA_PKCS1_SHA512,
                    Algorithm::Ps256 => &aws_lc_rs::signature::RSA_PSS_SHA256,
                    other => panic!("RSA key cannot sign {other:?}"),
                };
                let mut sig = vec![0; kp.public_modulus_len()];
                kp.sign(padding, &rng, message, &mut sig).expect("RSA sign");
                sig
            }
            Self::P256(kp) | Self::P384(kp) => kp
                .sign(&rng, message)
                .expect("ECDSA sign")
                .as_ref()
                .to_vec(),
            Self::Ed25519(kp) => kp.sign(message).as_ref().to_vec(),
        }
    }

    /// A compact JWS of `claims` signed with this key's default algorithm.
    pub(crate) fn token(&self, kid: Option<&str>, claims: &Value) -> String {
        self.token_with(self.alg(), kid, claims)
    }

    /// A compact JWS of `claims` signed with `alg`.
    pub(crate) fn token_with(&self, alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
        let mut header = json!({"alg": alg.name(), "typ": "JWT"});
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        sign_compact(&header, claims, |input| self.sign(alg, input))
    }
}

/// `b64(header).b64(claims).b64(signer(signing input))`.
pub(crate) fn sign_compact(
    header: &Value,
    claims: &Value,
    signer: impl FnOnce(&[u8]) -> Vec<u8>,
) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = signer(input.as_bytes());
    format!("{input}.{}", b64(&sig))
}

pub(crate) const ISSUER: &str = "https://issuer.example";
pub(crate) const AUDIENCE: &str = "sigstore";
pub(crate) const NOW: i64 = 1_750_000_000;

/// Claims that pass every check at [`NOW`].
pub(crate) fn good_claims() -> Value {
    json!({
        "iss": ISSUER,
        "sub": "alice",
        "aud": AUDIENCE,
        "iat": NOW - 10,
        "exp": NOW + 600,
        "email": "alice@example.com",
        "email_verified": true,
    })
}

/// A key-set document holding these JWKs.
pub(crate) fn jwks_document(keys: &[Value]) -> Vec<u8> {
    json!({ "keys": keys }).to_string().into_bytes()
}
