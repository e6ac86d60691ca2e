//! Public JSON Web Keys (RFC 7517 §4) and key sets (RFC 7517 §5) for verifying ID-token
//! signatures, and the JWS algorithms they verify (RFC 7518 §3.3–3.5, RFC 8037 §3.1).
//!
//! Key parameters follow RFC 7518 §6.2.1 (EC: `crv`, `x`, `y`, full-length coordinates),
//! §6.3.1 (RSA: `n`, `e`) and RFC 8037 §2 (OKP: `crv` `Ed25519`, `x`). Every signature is
//! checked with aws-lc-rs.

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaParameters, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;

use super::TokenError;

/// A JWS signature algorithm this verifier implements (RFC 7518 §3.1 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// RSASSA-PSS with SHA-384.
    Ps384,
    /// RSASSA-PSS with SHA-512.
    Ps512,
    /// ECDSA P-256 with SHA-256, signature `r || s` (64 bytes).
    Es256,
    /// ECDSA P-384 with SHA-384, signature `r || s` (96 bytes).
    Es384,
    /// ECDSA P-521 with SHA-512, signature `r || s` (132 bytes).
    Es512,
    /// Ed25519 (RFC 8037 §3.1).
    EdDsa,
}

impl Algorithm {
    /// Every algorithm implemented, in the order go-oidc lists them.
    pub const ALL: [Algorithm; 10] = [
        Self::Rs256,
        Self::Rs384,
        Self::Rs512,
        Self::Es256,
        Self::Es384,
        Self::Es512,
        Self::Ps256,
        Self::Ps384,
        Self::Ps512,
        Self::EdDsa,
    ];

    /// The algorithm with this exact (case-sensitive) `alg` name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::Es512 => "ES512",
            Self::EdDsa => "EdDSA",
        }
    }

    fn rsa_parameters(self) -> Option<&'static RsaParameters> {
        match self {
            Self::Rs256 => Some(&signature::RSA_PKCS1_2048_8192_SHA256),
            Self::Rs384 => Some(&signature::RSA_PKCS1_2048_8192_SHA384),
            Self::Rs512 => Some(&signature::RSA_PKCS1_2048_8192_SHA512),
            Self::Ps256 => Some(&signature::RSA_PSS_2048_8192_SHA256),
            Self::Ps384 => Some(&signature::RSA_PSS_2048_8192_SHA384),
            Self::Ps512 => Some(&signature::RSA_PSS_2048_8192_SHA512),
            _ => None,
        }
    }

    fn curve(self) -> Option<Curve> {
        match self {
            Self::Es256 => Some(Curve::P256),
            Self::Es384 => Some(Curve::P384),
            Self::Es512 => Some(Curve::P521),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "P-256" => Some(Self::P256),
            "P-384" => Some(Self::P384),
            "P-521" => Some(Self::P521),
            _ => None,
        }
    }

    /// RFC 7518 §6.2.1.2: coordinates are the full field-element length.
    fn coordinate_len(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
            Self::P521 => 66,
        }
    }

    fn verification(self) -> &'static signature::EcdsaVerificationAlgorithm {
        match self {
            Self::P256 => &signature::ECDSA_P256_SHA256_FIXED,
            Self::P384 => &signature::ECDSA_P384_SHA384_FIXED,
            Self::P521 => &signature::ECDSA_P521_SHA512_FIXED,
        }
    }
}

#[derive(Debug, Clone)]
enum KeyMaterial {
    /// Big-endian modulus and exponent without leading zero bytes.
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// Uncompressed SEC 1 point `04 || x || y`, checked to lie on the curve.
    Ec {
        curve: Curve,
        point: Vec<u8>,
    },
    Ed25519(Vec<u8>),
}

/// One public signature-verification key from an issuer's key set.
#[derive(Debug, Clone)]
pub struct Jwk {
    kid: Option<String>,
    alg: Option<String>,
    key: KeyMaterial,
}

/// The members of a JWK this verifier reads; unknown members are ignored.
#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    #[serde(rename = "use")]
    use_: Option<String>,
    key_ops: Option<Vec<String>>,
    kid: Option<String>,
    alg: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

/// Smallest RSA modulus accepted, in bits (also aws-lc-rs's floor for these algorithms).
const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits (aws-lc-rs's ceiling).
const MAX_RSA_BITS: usize = 8192;

impl Jwk {
    /// Reads one JWK, refusing (with the reason) keys that are not for signatures
    /// (`use` other than `sig`, `key_ops` without `verify`), of an unsupported type or
    /// curve, or malformed: RSA moduli under 2048 bits, EC coordinates of the wrong
    /// length or off the curve, Ed25519 keys that are not 32 bytes.
    ///
    /// # Errors
    /// A sentence saying why the key is unusable.
    pub fn from_json_value(value: &Value) -> Result<Self, &'static str> {
        let raw = RawJwk::deserialize(value).map_err(|_| "not a JWK object with string members")?;
        if raw.use_.as_deref().is_some_and(|u| u != "sig") {
            return Err("\"use\" is not \"sig\"");
        }
        if raw
            .key_ops
            .as_ref()
            .is_some_and(|ops| !ops.iter().any(|op| op == "verify"))
        {
            return Err("\"key_ops\" does not include \"verify\"");
        }
        let key = match raw.kty.as_str() {
            "RSA" => rsa_key(&raw)?,
            "EC" => ec_key(&raw)?,
            "OKP" => okp_key(&raw)?,
            _ => return Err("unsupported \"kty\""),
        };
        Ok(Self {
            kid: raw.kid.filter(|k| !k.is_empty()),
            alg: raw.alg,
            key,
        })
    }

    /// `kid`, if present and non-empty.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// `alg`, if the key names one.
    pub fn alg(&self) -> Option<&str> {
        self.alg.as_deref()
    }

    /// True when this key may verify `alg` signatures: its type and curve fit the
    /// algorithm, and its own `alg`, if any, is the same algorithm (RFC 7517 §4.4).
    pub fn fits(&self, alg: Algorithm) -> bool {
        if self.alg.as_deref().is_some_and(|a| a != alg.name()) {
            return false;
        }
        match &self.key {
            KeyMaterial::Rsa { .. } => alg.rsa_parameters().is_some(),
            KeyMaterial::Ec { curve, .. } => alg.curve() == Some(*curve),
            KeyMaterial::Ed25519(_) => alg == Algorithm::EdDsa,
        }
    }

    /// True when `signature` is a valid `alg` signature of `message` under this key.
    /// Callers check [`Jwk::fits`] first; a key that does not fit never verifies.
    pub(crate) fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        if !self.fits(alg) {
            return false;
        }
        match &self.key {
            KeyMaterial::Rsa { n, e } => alg.rsa_parameters().is_some_and(|params| {
                RsaPublicKeyComponents {
                    n: &n[..],
                    e: &e[..],
                }
                .verify(params, message, signature)
                .is_ok()
            }),
            KeyMaterial::Ec { curve, point } => {
                signature::UnparsedPublicKey::new(curve.verification(), point)
                    .verify(message, signature)
                    .is_ok()
            }
            KeyMaterial::Ed25519(x) => signature::UnparsedPublicKey::new(&signature::ED25519, x)
                .verify(message, signature)
                .is_ok(),
        }
    }
}

/// Decodes a base64url member; trailing `=` padding is tolerated here (go-jose does the
/// same for key material), unlike in tokens.
fn member(value: Option<&String>, missing: &'static str) -> Result<Vec<u8>, &'static str> {
    let value = value.ok_or(missing)?;
    URL_SAFE_NO_PAD
        .decode(value.trim_end_matches('='))
        .map_err(|_| "a key parameter is not base64url")
}

fn strip_leading_zeros(bytes: &[u8]) -> Vec<u8> {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes[first..].to_vec()
}

fn rsa_key(raw: &RawJwk) -> Result<KeyMaterial, &'static str> {
    let n = strip_leading_zeros(&member(raw.n.as_ref(), "RSA key has no \"n\"")?);
    let e = strip_leading_zeros(&member(raw.e.as_ref(), "RSA key has no \"e\"")?);
    let bits = match n.first() {
        Some(top) => (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
        None => 0,
    };
    if bits < MIN_RSA_BITS {
        return Err("RSA modulus is shorter than 2048 bits");
    }
    if bits > MAX_RSA_BITS {
        return Err("RSA modulus is longer than 8192 bits");
    }
    RsaPublicKeyComponents {
        n: &n[..],
        e: &e[..],
    }
    .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
    .map_err(|_| "RSA key is invalid")?;
    Ok(KeyMaterial::Rsa { n, e })
}

fn ec_key(raw: &RawJwk) -> Result<KeyMaterial, &'static str> {
    let curve = raw
        .crv
        .as_deref()
        .and_then(Curve::from_name)
        .ok_or("EC key has a missing or unsupported \"crv\"")?;
    let x = member(raw.x.as_ref(), "EC key has no \"x\"")?;
    let y = member(raw.y.as_ref(), "EC key has no \"y\"")?;
    if x.len() != curve.coordinate_len() || y.len() != curve.coordinate_len() {
        return Err("EC key coordinates have the wrong length for the curve");
    }
    let mut point = Vec::with_capacity(1 + 2 * curve.coordinate_len());
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    ParsedPublicKey::new(curve.verification(), &point).map_err(|_| "EC key is not on its curve")?;
    Ok(KeyMaterial::Ec { curve, point })
}

fn okp_key(raw: &RawJwk) -> Result<KeyMaterial, &'static str> {
    if raw.crv.as_deref() != Some("Ed25519") {
        return Err("OKP key has a missing or unsupported \"crv\"");
    }
    let x = member(raw.x.as_ref(), "OKP key has no \"x\"")?;
    if x.len() != signature::ED25519_PUBLIC_KEY_LEN {
        return Err("Ed25519 key is not 32 bytes");
    }
    ParsedPublicKey::new(&signature::ED25519, &x).map_err(|_| "Ed25519 key is invalid")?;
    Ok(KeyMaterial::Ed25519(x))
}

/// An issuer's key set: its usable signature keys, in document order.
#[derive(Debug, Clone, Default)]
pub struct Jwks {
    keys: Vec<Jwk>,
    skipped: usize,
}

impl Jwks {
    /// A set of these keys.
    pub fn new(keys: Vec<Jwk>) -> Self {
        Self { keys, skipped: 0 }
    }

    /// Reads a JWK Set document (RFC 7517 §5), `{"keys":[...]}`. Keys that cannot be
    /// used (see [`Jwk::from_json_value`]) are skipped, not fatal, so one exotic key does
    /// not lock every token out.
    ///
    /// # Errors
    /// [`TokenError::KeysUnavailable`] when the document is not JSON or has no `keys` array.
    pub fn from_json(document: &[u8]) -> Result<Self, TokenError> {
        let value: Value = serde_json::from_slice(document)
            .map_err(|e| TokenError::KeysUnavailable(format!("key set is not JSON: {e}")))?;
        let Some(Value::Array(members)) = value.get("keys") else {
            return Err(TokenError::KeysUnavailable(
                "key set has no \"keys\" array".to_owned(),
            ));
        };
        let mut set = Self::default();
        for member in members {
            match Jwk::from_json_value(member) {
                Ok(key) => set.keys.push(key),
                Err(_) => set.skipped += 1,
            }
        }
        Ok(set)
    }

    /// The usable keys.
    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    /// How many keys of the document were skipped as unusable.
    pub fn skipped(&self) -> usize {
        self.skipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::testkeys::{TestKey, b64};
    use serde_json::json;

    #[test]
    fn algorithm_names_round_trip() {
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(alg.name()), Some(alg));
        }
        for name in ["none", "HS256", "rs256", "ES256K", "RSA-OAEP", ""] {
            assert_eq!(Algorithm::from_name(name), None, "{name}");
        }
    }

    #[test]
    fn reads_each_key_type_and_checks_fit() {
        let cases = [
            (TestKey::rsa(), Algorithm::Rs256),
            (TestKey::p256(), Algorithm::Es256),
            (TestKey::p384(), Algorithm::Es384),
            (TestKey::ed25519(), Algorithm::EdDsa),
        ];
        for (key, alg) in &cases {
            let jwk = Jwk::from_json_value(&key.jwk("k")).expect("usable key");
            assert_eq!(jwk.kid(), Some("k"));
            for other in Algorithm::ALL {
                let fits = other == *alg
                    || (matches!(key, TestKey::Rsa(_)) && other.rsa_parameters().is_some());
                assert_eq!(jwk.fits(other), fits, "{alg:?} key with {other:?}");
            }
        }
    }

    #[test]
    fn key_alg_restricts_the_algorithm() {
        let mut value = TestKey::rsa().jwk("k");
        value["alg"] = json!("RS256");
        let jwk = Jwk::from_json_value(&value).expect("usable key");
        assert!(jwk.fits(Algorithm::Rs256));
        assert!(!jwk.fits(Algorithm::Ps256));
        assert!(!jwk.fits(Algorithm::Rs512));
    }

    #[test]
    fn skips_unusable_keys_without_failing_the_set() {
        let good = TestKey::p256().jwk("good");
        let mut enc = TestKey::p256().jwk("enc");
        enc["use"] = json!("enc");
        let mut no_verify = TestKey::p256().jwk("ops");
        no_verify["key_ops"] = json!(["encrypt"]);
        let mut short_y = TestKey::p256().jwk("short");
        short_y["y"] = json!(b64(&[1u8; 31]));
        let mut off_curve = TestKey::p256().jwk("off");
        off_curve["y"] = json!(b64(&[1u8; 32]));
        let mut p384_as_p256 = TestKey::p384().jwk("mixed");
        p384_as_p256["crv"] = json!("P-256");
        let mut top_bit = vec![0x80u8];
        top_bit.extend([0x11; 127]);
        let small_rsa = json!({"kty": "RSA", "kid": "small", "n": b64(&top_bit), "e": "AQAB"});
        let symmetric = json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"});
        let x25519 = json!({"kty": "OKP", "crv": "X25519", "x": b64(&[9u8; 32])});
        let doc = json!({"keys": [good, enc, no_verify, short_y, off_curve, p384_as_p256,
            small_rsa, symmetric, x25519, "not an object"]});
        let set = Jwks::from_json(doc.to_string().as_bytes()).expect("set parses");
        let kids: Vec<_> = set.keys().iter().map(Jwk::kid).collect();
        assert_eq!(kids, [Some("good")]);
        assert_eq!(set.skipped(), 9);
    }

    #[test]
    fn refuses_a_document_without_keys() {
        for doc in [&b"not json"[..], br#"{"keys":{}}"#, br#"[]"#] {
            assert!(
                Jwks::from_json(doc)
                    .expect_err("must be refused")
                    .is_unavailable()
            );
        }
        let empty = Jwks::from_json(br#"{"keys":[]}"#).expect("empty set is a set");
        assert!(empty.keys().is_empty());
    }

    #[test]
    fn tolerates_padding_and_leading_zeros_in_rsa_members() {
        let key = TestKey::rsa();
        let (n, e) = key.rsa_components();
        let mut padded_n = vec![0u8];
        padded_n.extend(&n);
        let value = json!({"kty": "RSA", "n": format!("{}==", b64(&padded_n)), "e": b64(&e)});
        let jwk = Jwk::from_json_value(&value).expect("usable key");
        let sig = key.sign(Algorithm::Rs256, b"msg");
        assert!(jwk.verify(Algorithm::Rs256, b"msg", &sig));
        assert!(!jwk.verify(Algorithm::Rs256, b"other", &sig));
    }
}
