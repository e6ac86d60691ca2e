//! Public keys as clients send them (DER SubjectPublicKeyInfo), and signature checks over
//! a digest (Rekor's hashedrekord) or over a message (DSSE).

use crate::CryptoError;
use aws_lc_rs::digest as awsd;
use aws_lc_rs::signature::{self as awss, UnparsedPublicKey, VerificationAlgorithm};
use sha2::digest::{FixedOutput, HashMarker, Output, OutputSizeUser, Update, typenum::U64};
use sha2::{Digest, Sha256, Sha384, Sha512};
use spki::der::Decode;
use spki::{DecodePublicKey, ObjectIdentifier, SubjectPublicKeyInfoRef};

const OID_EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// X.509 signature algorithm identifiers (RFC 5758 §3.2, RFC 4055 §5, RFC 8410 §3).
pub mod sig_oid {
    use spki::ObjectIdentifier;
    pub const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
    pub const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
    pub const ECDSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
    pub const RSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
    pub const RSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
    pub const RSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
    pub const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
}

/// A digest algorithm named in an entry (`sha256`, `sha384`, `sha512`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum HashAlg {
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "sha256" => Some(Self::Sha256),
            "sha384" => Some(Self::Sha384),
            "sha512" => Some(Self::Sha512),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    #[allow(clippy::len_without_is_empty)]
    pub fn len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => Sha256::digest(data).to_vec(),
            Self::Sha384 => Sha384::digest(data).to_vec(),
            Self::Sha512 => Sha512::digest(data).to_vec(),
        }
    }
}

/// An ECDSA public key as its uncompressed SEC1 point (aws-lc-rs verifies it).
#[derive(Clone, Debug)]
struct EcPoint(Vec<u8>);

#[derive(Clone, Debug)]
enum Kind {
    P256(EcPoint),
    P384(EcPoint),
    P521(EcPoint),
    Rsa(Box<rsa::RsaPublicKey>, usize),
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// A parsed public key that remembers the exact DER it came from.
#[derive(Clone, Debug)]
pub struct PublicKey {
    kind: Kind,
    spki: Vec<u8>,
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki == other.spki
    }
}
impl Eq for PublicKey {}

fn bad_key(e: impl std::fmt::Display) -> CryptoError {
    CryptoError::PublicKey(e.to_string())
}

impl PublicKey {
    /// Parses a DER SubjectPublicKeyInfo: ECDSA P-256 or P-384, RSA (2048 to 4096 bits) or
    /// Ed25519.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, CryptoError> {
        let info = SubjectPublicKeyInfoRef::from_der(der).map_err(bad_key)?;
        let kind = match info.algorithm.oid {
            OID_EC => {
                let curve: ObjectIdentifier = info
                    .algorithm
                    .parameters_oid()
                    .map_err(|_| bad_key("EC key without a named curve"))?;
                let point = EcPoint(info.subject_public_key.raw_bytes().to_vec());
                let (kind, len) = match curve {
                    OID_P256 => (Kind::P256(point), 65),
                    OID_P384 => (Kind::P384(point), 97),
                    OID_P521 => (Kind::P521(point), 133),
                    other => {
                        return Err(CryptoError::Unsupported(format!("elliptic curve {other}")));
                    }
                };
                let (Kind::P256(p) | Kind::P384(p) | Kind::P521(p)) = &kind else {
                    unreachable!()
                };
                if p.0.len() != len || p.0[0] != 4 {
                    return Err(bad_key(
                        "EC public keys must be uncompressed points of the named curve",
                    ));
                }
                // reject points not on the curve now rather than at the first signature
                let probe: &'static dyn VerificationAlgorithm = match &kind {
                    Kind::P256(_) => &awss::ECDSA_P256_SHA256_ASN1,
                    Kind::P384(_) => &awss::ECDSA_P384_SHA384_ASN1,
                    _ => &awss::ECDSA_P521_SHA512_ASN1,
                };
                if let Err(e) = UnparsedPublicKey::new(probe, &p.0).parse() {
                    return Err(bad_key(format!("EC point is not on the curve ({e})")));
                }
                kind
            }
            OID_RSA => {
                use rsa::traits::PublicKeyParts;
                let key = rsa::RsaPublicKey::from_public_key_der(der).map_err(bad_key)?;
                let bits = key.n().bits();
                if bits < 2048 {
                    return Err(CryptoError::Unsupported(format!(
                        "RSA keys of {bits} bits (2048 at least)"
                    )));
                }
                Kind::Rsa(Box::new(key), bits)
            }
            OID_ED25519 => Kind::Ed25519(
                ed25519_dalek::VerifyingKey::from_public_key_der(der).map_err(bad_key)?,
            ),
            other => return Err(CryptoError::Unsupported(format!("key algorithm {other}"))),
        };
        Ok(Self {
            kind,
            spki: der.to_vec(),
        })
    }

    /// Parses one PEM `PUBLIC KEY` block.
    pub fn from_pem(text: &[u8]) -> Result<Self, CryptoError> {
        let blocks = crate::pem::decode_all(text)?;
        match blocks.as_slice() {
            [b] if b.label == "PUBLIC KEY" => Self::from_spki_der(&b.der),
            [b] => Err(CryptoError::Pem(format!(
                "expected a PUBLIC KEY block, found {}",
                b.label
            ))),
            _ => Err(CryptoError::Pem(
                "expected a single PUBLIC KEY block".into(),
            )),
        }
    }

    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    pub fn to_pem(&self) -> String {
        crate::pem::encode("PUBLIC KEY", &self.spki)
    }

    /// A short human name: `ECDSA P-256`, `RSA-2048`, `Ed25519`.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::P256(_) => "ECDSA P-256".into(),
            Kind::P384(_) => "ECDSA P-384".into(),
            Kind::P521(_) => "ECDSA P-521".into(),
            Kind::Rsa(_, bits) => format!("RSA-{bits}"),
            Kind::Ed25519(_) => "Ed25519".into(),
        }
    }

    /// The protobuf-specs `PublicKeyDetails` name clients expect in a trusted root.
    pub fn key_details(&self) -> &'static str {
        match &self.kind {
            Kind::P256(_) => "PKIX_ECDSA_P256_SHA_256",
            Kind::P384(_) => "PKIX_ECDSA_P384_SHA_384",
            Kind::P521(_) => "PKIX_ECDSA_P521_SHA_512",
            Kind::Rsa(_, 2048) => "PKIX_RSA_PKCS1V15_2048_SHA256",
            Kind::Rsa(_, 3072) => "PKIX_RSA_PKCS1V15_3072_SHA256",
            Kind::Rsa(_, _) => "PKIX_RSA_PKCS1V15_4096_SHA256",
            Kind::Ed25519(_) => "PKIX_ED25519",
        }
    }

    /// Verifies a signature over an already computed digest, allowing only the pairs Rekor
    /// accepts by default: ECDSA P-256/SHA-256, P-384/SHA-384, P-521/SHA-512, RSA PKCS#1
    /// v1.5 2048/3072/4096 with SHA-256, and Ed25519ph (SHA-512).
    pub fn verify_digest(
        &self,
        alg: HashAlg,
        digest: &[u8],
        sig: &[u8],
    ) -> Result<(), CryptoError> {
        if digest.len() != alg.len() {
            return Err(CryptoError::MalformedSignature(format!(
                "a {} digest has {} bytes, got {}",
                alg.name(),
                alg.len(),
                digest.len()
            )));
        }
        let allowed = matches!(
            (&self.kind, alg),
            (Kind::P256(_), HashAlg::Sha256)
                | (Kind::P384(_), HashAlg::Sha384)
                | (Kind::P521(_), HashAlg::Sha512)
                | (Kind::Ed25519(_), HashAlg::Sha512)
        ) || matches!((&self.kind, alg), (Kind::Rsa(_, b), HashAlg::Sha256) if [2048, 3072, 4096].contains(b));
        if !allowed {
            return Err(CryptoError::Unsupported(format!(
                "{} key with a {} digest",
                self.describe(),
                alg.name()
            )));
        }
        self.verify_digest_any(alg, digest, sig)
    }

    /// Verifies an ECDSA signature over a SHA-256 digest whatever the curve: a
    /// `hashedrekord` records a SHA-256 digest, and some clients sign that digest with
    /// P-384 keys. Other key types refuse.
    pub fn verify_ecdsa_sha256_digest(&self, digest: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
        match &self.kind {
            Kind::P256(_) | Kind::P384(_) | Kind::P521(_) if digest.len() == 32 => {
                self.verify_digest_any(HashAlg::Sha256, digest, sig)
            }
            _ => Err(CryptoError::Unsupported(format!(
                "{} key with a SHA-256 prehash",
                self.describe()
            ))),
        }
    }

    /// Verifies over a digest without the allowlist (certificate signatures, where the
    /// issuer chooses the hash).
    pub(crate) fn verify_digest_any(
        &self,
        alg: HashAlg,
        digest: &[u8],
        sig: &[u8],
    ) -> Result<(), CryptoError> {
        match &self.kind {
            Kind::P256(p) | Kind::P384(p) | Kind::P521(p) => self.verify_ecdsa(p, alg, digest, sig),
            Kind::Rsa(key, _) => {
                let scheme = match alg {
                    HashAlg::Sha256 => rsa::Pkcs1v15Sign::new::<Sha256>(),
                    HashAlg::Sha384 => rsa::Pkcs1v15Sign::new::<Sha384>(),
                    HashAlg::Sha512 => rsa::Pkcs1v15Sign::new::<Sha512>(),
                };
                key.verify(scheme, digest, sig)
                    .map_err(|_| CryptoError::BadSignature)
            }
            Kind::Ed25519(vk) => {
                if alg != HashAlg::Sha512 {
                    return Err(CryptoError::Unsupported(
                        "Ed25519 prehash signatures need a sha512 digest".into(),
                    ));
                }
                let sig = ed25519_dalek::Signature::from_slice(sig).map_err(|_| {
                    CryptoError::MalformedSignature("not a 64-byte Ed25519 signature".into())
                })?;
                let mut pre = [0u8; 64];
                pre.copy_from_slice(digest);
                // strict: no small-order key or non-canonical signature verifies
                vk.verify_prehashed_strict(Precomputed(pre), None, &sig)
                    .map_err(|_| CryptoError::BadSignature)
            }
        }
    }

    /// ECDSA over a digest; the signature may be ASN.1 DER or fixed-width r||s (as Go's
    /// verifier in Rekor accepts both).
    fn verify_ecdsa(
        &self,
        p: &EcPoint,
        alg: HashAlg,
        digest: &[u8],
        sig: &[u8],
    ) -> Result<(), CryptoError> {
        use HashAlg::*;
        let der: &'static awss::EcdsaVerificationAlgorithm = match (&self.kind, alg) {
            (Kind::P256(_), Sha256) => &awss::ECDSA_P256_SHA256_ASN1,
            (Kind::P256(_), Sha384) => &awss::ECDSA_P256_SHA384_ASN1,
            (Kind::P256(_), Sha512) => &awss::ECDSA_P256_SHA512_ASN1,
            (Kind::P384(_), Sha256) => &awss::ECDSA_P384_SHA256_ASN1,
            (Kind::P384(_), Sha384) => &awss::ECDSA_P384_SHA384_ASN1,
            (Kind::P384(_), Sha512) => &awss::ECDSA_P384_SHA512_ASN1,
            (Kind::P521(_), Sha256) => &awss::ECDSA_P521_SHA256_ASN1,
            (Kind::P521(_), Sha384) => &awss::ECDSA_P521_SHA384_ASN1,
            (Kind::P521(_), Sha512) => &awss::ECDSA_P521_SHA512_ASN1,
            _ => return Err(CryptoError::Unsupported("not an ECDSA key".into())),
        };
        let dalg = match alg {
            Sha256 => &awsd::SHA256,
            Sha384 => &awsd::SHA384,
            Sha512 => &awsd::SHA512,
        };
        let d = awsd::Digest::import_less_safe(digest, dalg)
            .map_err(|_| CryptoError::MalformedSignature("digest has the wrong length".into()))?;
        let field = (p.0.len() - 1) / 2;
        let key = UnparsedPublicKey::new(der, &p.0);
        if sig.first() == Some(&0x30) && key.verify_digest(&d, sig).is_ok() {
            return Ok(());
        }
        // fixed-width r||s (whose first byte may happen to be 0x30)
        if sig.len() == 2 * field {
            let converted = fixed_to_der(&sig[..field], &sig[field..]);
            return key
                .verify_digest(&d, &converted)
                .map_err(|_| CryptoError::BadSignature);
        }
        if sig.first() == Some(&0x30) {
            Err(CryptoError::BadSignature)
        } else {
            Err(CryptoError::MalformedSignature(
                "not an ECDSA signature (DER or r||s)".into(),
            ))
        }
    }

    /// Verifies a signature over a whole message, as DSSE signatures are checked by Rekor:
    /// ECDSA and RSA over SHA-256 (a P-384 signature over SHA-384 is accepted too), Ed25519
    /// pure.
    pub fn verify_message(&self, msg: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
        match &self.kind {
            Kind::Ed25519(vk) => {
                let sig = ed25519_dalek::Signature::from_slice(sig).map_err(|_| {
                    CryptoError::MalformedSignature("not a 64-byte Ed25519 signature".into())
                })?;
                vk.verify_strict(msg, &sig)
                    .map_err(|_| CryptoError::BadSignature)
            }
            Kind::P384(_) => self
                .verify_digest_any(HashAlg::Sha384, &HashAlg::Sha384.digest(msg), sig)
                .or_else(|_| {
                    self.verify_digest_any(HashAlg::Sha256, &HashAlg::Sha256.digest(msg), sig)
                }),
            _ => self.verify_digest_any(HashAlg::Sha256, &HashAlg::Sha256.digest(msg), sig),
        }
    }

    /// Verifies an X.509-style signature (certificate, CSR) made with the algorithm named
    /// by `alg`: ECDSA or RSA PKCS#1 v1.5 with SHA-256/384/512, or pure Ed25519.
    pub fn verify_signed(
        &self,
        alg: &ObjectIdentifier,
        data: &[u8],
        sig: &[u8],
    ) -> Result<(), CryptoError> {
        use sig_oid::*;
        let hash = match *alg {
            ECDSA_SHA256 | RSA_SHA256 => HashAlg::Sha256,
            ECDSA_SHA384 | RSA_SHA384 => HashAlg::Sha384,
            ECDSA_SHA512 | RSA_SHA512 => HashAlg::Sha512,
            ED25519 => {
                return match &self.kind {
                    Kind::Ed25519(_) => self.verify_message(data, sig),
                    _ => Err(CryptoError::Unsupported(
                        "an Ed25519 signature from a non-Ed25519 key".into(),
                    )),
                };
            }
            other => {
                return Err(CryptoError::Unsupported(format!(
                    "signature algorithm {other}"
                )));
            }
        };
        let ecdsa_alg = matches!(*alg, ECDSA_SHA256 | ECDSA_SHA384 | ECDSA_SHA512);
        let ecdsa_key = matches!(self.kind, Kind::P256(_) | Kind::P384(_) | Kind::P521(_));
        if ecdsa_alg != ecdsa_key || matches!(self.kind, Kind::Ed25519(_)) {
            return Err(CryptoError::Unsupported(format!(
                "signature algorithm {alg} with a {} key",
                self.describe()
            )));
        }
        self.verify_digest_any(hash, &hash.digest(data), sig)
    }

    /// Verifies a signature over `msg` made the way Fulcio expects a proof of possession:
    /// with the key's default algorithm (P-256/SHA-256, P-384/SHA-384, P-521/SHA-512,
    /// RSA PKCS#1 v1.5/SHA-256, pure Ed25519).
    pub fn verify_default(&self, msg: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
        match &self.kind {
            Kind::Ed25519(_) => self.verify_message(msg, sig),
            _ => {
                let hash = self.default_hash();
                self.verify_digest_any(hash, &hash.digest(msg), sig)
            }
        }
    }

    /// The X.509 signature algorithm this key signs with by default (ECDSA keys only;
    /// the CA and logs sign with ECDSA).
    pub fn ecdsa_signature_oid(&self) -> Option<ObjectIdentifier> {
        match &self.kind {
            Kind::P256(_) => Some(sig_oid::ECDSA_SHA256),
            Kind::P384(_) => Some(sig_oid::ECDSA_SHA384),
            Kind::P521(_) => Some(sig_oid::ECDSA_SHA512),
            _ => None,
        }
    }

    /// The hash this key signs messages with by default.
    pub fn default_hash(&self) -> HashAlg {
        match &self.kind {
            Kind::P384(_) => HashAlg::Sha384,
            Kind::P521(_) | Kind::Ed25519(_) => HashAlg::Sha512,
            _ => HashAlg::Sha256,
        }
    }
}

/// A SHA-512 "hasher" that already holds its output, so that Ed25519ph can be checked
/// against a digest received over the wire.
#[derive(Clone)]
struct Precomputed([u8; 64]);

impl Default for Precomputed {
    fn default() -> Self {
        Self([0u8; 64])
    }
}

impl Update for Precomputed {
    fn update(&mut self, _data: &[u8]) {}
}
impl OutputSizeUser for Precomputed {
    type OutputSize = U64;
}
impl FixedOutput for Precomputed {
    fn finalize_into(self, out: &mut Output<Self>) {
        out.copy_from_slice(&self.0);
    }
}
impl HashMarker for Precomputed {}

/// DER `SEQUENCE { INTEGER r, INTEGER s }` from fixed-width big-endian r and s.
fn fixed_to_der(r: &[u8], s: &[u8]) -> Vec<u8> {
    fn int(v: &[u8], out: &mut Vec<u8>) {
        let v = {
            let nz = v
                .iter()
                .position(|b| *b != 0)
                .unwrap_or(v.len().saturating_sub(1));
            &v[nz..]
        };
        let pad = v.first().is_some_and(|b| b & 0x80 != 0);
        out.push(0x02);
        push_len(v.len() + pad as usize, out);
        if pad {
            out.push(0);
        }
        out.extend_from_slice(v);
    }
    fn push_len(n: usize, out: &mut Vec<u8>) {
        if n < 0x80 {
            out.push(n as u8);
        } else {
            out.push(0x81);
            out.push(n as u8);
        }
    }
    let mut body = Vec::with_capacity(r.len() + s.len() + 8);
    int(r, &mut body);
    int(s, &mut body);
    let mut out = Vec::with_capacity(body.len() + 3);
    out.push(0x30);
    push_len(body.len(), &mut out);
    out.extend_from_slice(&body);
    out
}
