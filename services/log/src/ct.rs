//! Certificate Transparency (RFC 6962) structures, without I/O: the Merkle tree leaf of
//! an X.509 or precertificate entry (§3.4), the signed certificate timestamp and the
//! bytes it signs (§3.2), the SCT list carried in a certificate extension (§3.3), and
//! the signed tree head (§3.5). All integers are big-endian TLS encodings.

use sigstack_crypto::{CryptoError, PublicKey, Signer};
use sigstack_merkle::Hash;

/// `LogEntryType` (§3.1).
const X509_ENTRY: u16 = 0;
const PRECERT_ENTRY: u16 = 1;
/// `SignatureType` (§3.2).
const CERTIFICATE_TIMESTAMP: u8 = 0;
const TREE_HASH: u8 = 1;
/// TLS `HashAlgorithm.sha256` and `SignatureAlgorithm.ecdsa` (RFC 5246 §7.4.1.4.1).
const HASH_SHA256: u8 = 4;
const SIG_ECDSA: u8 = 3;
const SIG_RSA: u8 = 1;

/// What an SCT or a leaf is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A final certificate (DER).
    X509(Vec<u8>),
    /// A precertificate: the SHA-256 of its issuer's SubjectPublicKeyInfo and its
    /// TBSCertificate with the poison extension removed.
    Precert {
        issuer_key_hash: [u8; 32],
        tbs: Vec<u8>,
    },
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CtError {
    #[error("malformed {0}")]
    Malformed(&'static str),
    #[error("{0} is too long to encode")]
    TooLong(&'static str),
    #[error("invalid chain: {0}")]
    Chain(String),
    #[error("SCT: {0}")]
    Sct(String),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

fn put_u24(out: &mut Vec<u8>, data: &[u8], what: &'static str) -> Result<(), CtError> {
    let n = data.len();
    if n >= 1 << 24 {
        return Err(CtError::TooLong(what));
    }
    out.extend_from_slice(&(n as u32).to_be_bytes()[1..]);
    out.extend_from_slice(data);
    Ok(())
}

fn put_u16(out: &mut Vec<u8>, data: &[u8], what: &'static str) -> Result<(), CtError> {
    let n = u16::try_from(data.len()).map_err(|_| CtError::TooLong(what))?;
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(data);
    Ok(())
}

impl Entry {
    fn write_signed_entry(&self, out: &mut Vec<u8>) -> Result<(), CtError> {
        match self {
            Entry::X509(cert) => {
                out.extend_from_slice(&X509_ENTRY.to_be_bytes());
                put_u24(out, cert, "certificate")
            }
            Entry::Precert {
                issuer_key_hash,
                tbs,
            } => {
                out.extend_from_slice(&PRECERT_ENTRY.to_be_bytes());
                out.extend_from_slice(issuer_key_hash);
                put_u24(out, tbs, "TBSCertificate")
            }
        }
    }
}

/// `MerkleTreeLeaf` (§3.4): v1, timestamped_entry, then the `TimestampedEntry`.
pub fn merkle_tree_leaf(
    timestamp: u64,
    entry: &Entry,
    extensions: &[u8],
) -> Result<Vec<u8>, CtError> {
    let mut out = vec![0u8, 0u8];
    out.extend_from_slice(&timestamp.to_be_bytes());
    entry.write_signed_entry(&mut out)?;
    put_u16(&mut out, extensions, "CT extensions")?;
    Ok(out)
}

/// The bytes an SCT signs (§3.2 `digitally-signed struct`).
pub fn sct_signature_input(
    timestamp: u64,
    entry: &Entry,
    extensions: &[u8],
) -> Result<Vec<u8>, CtError> {
    let mut out = vec![0u8, CERTIFICATE_TIMESTAMP];
    out.extend_from_slice(&timestamp.to_be_bytes());
    entry.write_signed_entry(&mut out)?;
    put_u16(&mut out, extensions, "CT extensions")?;
    Ok(out)
}

/// A TLS `DigitallySigned` (RFC 5246 §4.7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigitallySigned {
    pub hash: u8,
    pub signature_algorithm: u8,
    pub signature: Vec<u8>,
}

impl DigitallySigned {
    /// Signs with a CT key: ECDSA P-256 over SHA-256, as RFC 6962 §2.1.4 requires.
    pub fn sign(signer: &dyn Signer, msg: &[u8]) -> Result<Self, CtError> {
        if signer.public_key().key_details() != "PKIX_ECDSA_P256_SHA_256" {
            return Err(CtError::Sct(
                "a CT log signs with an ECDSA P-256 key".into(),
            ));
        }
        Ok(Self {
            hash: HASH_SHA256,
            signature_algorithm: SIG_ECDSA,
            signature: signer.sign(msg)?,
        })
    }

    pub fn verify(&self, key: &PublicKey, msg: &[u8]) -> Result<(), CtError> {
        if self.hash != HASH_SHA256 {
            return Err(CtError::Sct("only SHA-256 signatures are accepted".into()));
        }
        if self.signature_algorithm != SIG_ECDSA && self.signature_algorithm != SIG_RSA {
            return Err(CtError::Sct(format!(
                "signature algorithm {} is not supported",
                self.signature_algorithm
            )));
        }
        let alg = sigstack_crypto::HashAlg::Sha256;
        key.verify_digest(alg, &alg.digest(msg), &self.signature)?;
        Ok(())
    }

    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), CtError> {
        out.push(self.hash);
        out.push(self.signature_algorithm);
        put_u16(out, &self.signature, "signature")
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, CtError> {
        Ok(Self {
            hash: r.u8()?,
            signature_algorithm: r.u8()?,
            signature: r.vec16()?.to_vec(),
        })
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, CtError> {
        let mut out = Vec::new();
        self.encode(&mut out)?;
        Ok(out)
    }

    pub fn from_bytes(data: &[u8]) -> Result<Self, CtError> {
        let mut r = Reader(data);
        let ds = Self::decode(&mut r)?;
        r.end("digitally-signed struct")?;
        Ok(ds)
    }
}

/// A v1 signed certificate timestamp (§3.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sct {
    pub log_id: [u8; 32],
    pub timestamp: u64,
    pub extensions: Vec<u8>,
    pub signature: DigitallySigned,
}

impl Sct {
    pub fn sign(
        signer: &dyn Signer,
        log_id: [u8; 32],
        timestamp: u64,
        entry: &Entry,
    ) -> Result<Self, CtError> {
        let msg = sct_signature_input(timestamp, entry, &[])?;
        Ok(Self {
            log_id,
            timestamp,
            extensions: Vec::new(),
            signature: DigitallySigned::sign(signer, &msg)?,
        })
    }

    pub fn verify(&self, key: &PublicKey, entry: &Entry) -> Result<(), CtError> {
        if sigstack_crypto::log_id(key.spki_der()) != self.log_id {
            return Err(CtError::Sct("the SCT names another log".into()));
        }
        let msg = sct_signature_input(self.timestamp, entry, &self.extensions)?;
        self.signature.verify(key, &msg)
    }

    /// The TLS `SignedCertificateTimestamp` serialization.
    pub fn encode(&self) -> Result<Vec<u8>, CtError> {
        let mut out = vec![0u8];
        out.extend_from_slice(&self.log_id);
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        put_u16(&mut out, &self.extensions, "SCT extensions")?;
        self.signature.encode(&mut out)?;
        Ok(out)
    }

    pub fn decode(data: &[u8]) -> Result<Self, CtError> {
        let mut r = Reader(data);
        if r.u8()? != 0 {
            return Err(CtError::Sct("only v1 SCTs are understood".into()));
        }
        let log_id = r
            .take(32)?
            .try_into()
            .map_err(|_| CtError::Malformed("SCT"))?;
        let timestamp = u64::from_be_bytes(
            r.take(8)?
                .try_into()
                .map_err(|_| CtError::Malformed("SCT"))?,
        );
        let extensions = r.vec16()?.to_vec();
        let signature = DigitallySigned::decode(&mut r)?;
        r.end("SCT")?;
        Ok(Self {
            log_id,
            timestamp,
            extensions,
            signature,
        })
    }
}

/// `SignedCertificateTimestampList` (§3.3): the TLS list, without the OCTET STRING the
/// X.509 extension wraps it in.
pub fn encode_sct_list(scts: &[Sct]) -> Result<Vec<u8>, CtError> {
    let mut inner = Vec::new();
    for s in scts {
        put_u16(&mut inner, &s.encode()?, "SCT")?;
    }
    let mut out = Vec::new();
    put_u16(&mut out, &inner, "SCT list")?;
    Ok(out)
}

pub fn decode_sct_list(data: &[u8]) -> Result<Vec<Sct>, CtError> {
    let mut r = Reader(data);
    let mut list = Reader(r.vec16()?);
    r.end("SCT list")?;
    let mut out = Vec::new();
    while !list.0.is_empty() {
        out.push(Sct::decode(list.vec16()?)?);
    }
    Ok(out)
}

/// The bytes a signed tree head signs (§3.5 `TreeHeadSignature`).
pub fn sth_signature_input(timestamp: u64, tree_size: u64, root: &Hash) -> Vec<u8> {
    let mut out = vec![0u8, TREE_HASH];
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&tree_size.to_be_bytes());
    out.extend_from_slice(root);
    out
}

/// `extra_data` of a `get-entries` answer (§4.6): for a precert, the
/// `PrecertChainEntry` (the precertificate, then its chain); for a certificate, its
/// chain.
pub fn extra_data(precert: Option<&[u8]>, chain: &[Vec<u8>]) -> Result<Vec<u8>, CtError> {
    let mut list = Vec::new();
    for c in chain {
        put_u24(&mut list, c, "chain certificate")?;
    }
    let mut out = Vec::new();
    if let Some(p) = precert {
        put_u24(&mut out, p, "precertificate")?;
    }
    put_u24(&mut out, &list, "certificate chain")?;
    Ok(out)
}

/// The CT poison extension marking a precertificate (§3.1), value ASN.1 NULL.
pub const POISON_OID: &str = "1.3.6.1.4.1.11129.2.4.3";
/// The embedded SCT list extension (§3.3).
pub const SCT_LIST_OID: &str = "1.3.6.1.4.1.11129.2.4.2";
/// The precertificate-signing EKU (§3.1); we do not accept such issuers.
pub const PRECERT_SIGNING_EKU: &str = "1.3.6.1.4.1.11129.2.4.4";

/// The entry a precertificate stands for: its TBS without the poison, and its issuer's
/// key hash.
pub fn precert_entry(
    precert: &sigstack_crypto::Certificate,
    issuer: &sigstack_crypto::Certificate,
) -> Result<Entry, CtError> {
    if precert.extension(POISON_OID).is_none() {
        return Err(CtError::Malformed("precertificate (no poison extension)"));
    }
    Ok(Entry::Precert {
        issuer_key_hash: sigstack_crypto::sha256(issuer.public_key().spki_der()),
        tbs: precert.tbs_without_extension(POISON_OID)?,
    })
}

/// The precertificate entry a final certificate's embedded SCTs were issued over (§3.3):
/// its TBS without the SCT list.
pub fn embedded_entry(
    cert: &sigstack_crypto::Certificate,
    issuer: &sigstack_crypto::Certificate,
) -> Result<Entry, CtError> {
    Ok(Entry::Precert {
        issuer_key_hash: sigstack_crypto::sha256(issuer.public_key().spki_der()),
        tbs: cert.tbs_without_extension(SCT_LIST_OID)?,
    })
}

/// The SCTs embedded in a certificate (the extension value is a DER OCTET STRING holding
/// the TLS list).
pub fn embedded_scts(cert: &sigstack_crypto::Certificate) -> Result<Vec<Sct>, CtError> {
    let Some(v) = cert.extension(SCT_LIST_OID) else {
        return Ok(Vec::new());
    };
    decode_sct_list(der_octet_string(v).ok_or(CtError::Malformed("SCT list extension"))?)
}

/// Checks a submitted chain (§4.1): each certificate is signed by the next, and the last
/// is one of `roots` or signed by one of them. Returns the root it ends in.
pub fn validate_chain<'r>(
    chain: &[sigstack_crypto::Certificate],
    roots: &'r [sigstack_crypto::Certificate],
) -> Result<&'r sigstack_crypto::Certificate, CtError> {
    let Some(last) = chain.last() else {
        return Err(CtError::Chain("the chain is empty".into()));
    };
    for (i, pair) in chain.windows(2).enumerate() {
        if !pair[1].is_ca() {
            return Err(CtError::Chain(format!(
                "certificate {} issues certificate {i} but is not a CA certificate",
                i + 1
            )));
        }
        pair[0].verify_issued_by(&pair[1]).map_err(|e| {
            CtError::Chain(format!(
                "certificate {i} is not issued by certificate {}: {e}",
                i + 1
            ))
        })?;
    }
    if let Some(r) = roots.iter().find(|r| r.der() == last.der()) {
        return Ok(r);
    }
    roots
        .iter()
        .find(|r| r.is_ca() && last.verify_issued_by(r).is_ok())
        .ok_or_else(|| CtError::Chain("the chain does not lead to a root this log accepts".into()))
}

/// The DER encoding of an OCTET STRING holding `content`.
pub fn der_octet_string_of(content: &[u8]) -> Vec<u8> {
    let mut out = vec![0x04];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = (n as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (8 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

fn der_octet_string(v: &[u8]) -> Option<&[u8]> {
    let (&tag, rest) = v.split_first()?;
    if tag != 0x04 {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let k = (first & 0x7f) as usize;
        if k == 0 || k > 4 || rest.len() < k {
            return None;
        }
        let len = rest[..k].iter().fold(0usize, |a, b| (a << 8) | *b as usize);
        (len, &rest[k..])
    };
    (rest.len() == len).then_some(rest)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CtError> {
        if self.0.len() < n {
            return Err(CtError::Malformed("TLS structure (truncated)"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, CtError> {
        Ok(self.take(1)?[0])
    }
    fn vec16(&mut self) -> Result<&'a [u8], CtError> {
        let n = self.take(2)?;
        let n = u16::from_be_bytes([n[0], n[1]]) as usize;
        self.take(n)
    }
    fn end(&self, what: &'static str) -> Result<(), CtError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(CtError::Malformed(what))
        }
    }
}

#[cfg(test)]
mod tests;
