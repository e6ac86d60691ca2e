//! X.509 certificates as far as the log and its clients need them: the leaf's key, its
//! subject alternative names, validity, and whether one certificate signed another.

use crate::{CryptoError, PublicKey, pem};
use der::{Decode, Encode};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

/// Most certificates a hashedrekord may carry in one PEM chain (as Rekor).
pub const MAX_CHAIN: usize = 10;

#[derive(Clone, Debug)]
pub struct Certificate {
    der: Vec<u8>,
    parsed: x509_cert::Certificate,
    key: PublicKey,
}

fn bad_cert(e: impl std::fmt::Display) -> CryptoError {
    CryptoError::Certificate(e.to_string())
}

impl Certificate {
    pub fn from_der(der: &[u8]) -> Result<Self, CryptoError> {
        // certificates come from anyone: the DER decoder sorts every SET OF it reads, in
        // time quadratic in its length, so the input is bounded before it is decoded
        if der.len() > MAX_CERT_DER {
            return Err(CryptoError::Certificate(format!(
                "a certificate of {} bytes (at most {MAX_CERT_DER})",
                der.len()
            )));
        }
        let parsed = x509_cert::Certificate::from_der(der).map_err(bad_cert)?;
        // as Go's x509 (and so cosign): an extension named twice has no one meaning
        if let Some(exts) = &parsed.tbs_certificate.extensions {
            let mut seen = std::collections::HashSet::new();
            if !exts.iter().all(|e| seen.insert(e.extn_id)) {
                return Err(CryptoError::Certificate(
                    "the certificate repeats an extension".into(),
                ));
            }
        }
        let spki = parsed
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(bad_cert)?;
        let key = PublicKey::from_spki_der(&spki)?;
        Ok(Self {
            der: der.to_vec(),
            parsed,
            key,
        })
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    pub fn to_pem(&self) -> String {
        pem::encode("CERTIFICATE", &self.der)
    }

    /// The value (the contents of `extnValue`) of the extension `oid`, if present.
    pub fn extension(&self, oid: &str) -> Option<&[u8]> {
        let oid = spki::ObjectIdentifier::new(oid).ok()?;
        self.parsed
            .tbs_certificate
            .extensions
            .as_ref()?
            .iter()
            .find(|e| e.extn_id == oid)
            .map(|e| e.extn_value.as_bytes())
    }

    /// Whether this is a CA certificate: BasicConstraints CA:TRUE and, if KeyUsage is
    /// present, keyCertSign (RFC 5280 §4.2.1.9, §4.2.1.3).
    pub fn is_ca(&self) -> bool {
        use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
        let tbs = &self.parsed.tbs_certificate;
        let ca = matches!(tbs.get::<BasicConstraints>(), Ok(Some((_, bc))) if bc.ca);
        let sign = match tbs.get::<KeyUsage>() {
            Ok(Some((_, ku))) => ku.0.contains(KeyUsages::KeyCertSign),
            Ok(None) => true,
            Err(_) => false,
        };
        ca && sign
    }

    /// The subject key identifier, if the certificate carries one.
    pub fn subject_key_id(&self) -> Option<Vec<u8>> {
        match self
            .parsed
            .tbs_certificate
            .get::<x509_cert::ext::pkix::SubjectKeyIdentifier>()
        {
            Ok(Some((_, ski))) => Some(ski.0.as_bytes().to_vec()),
            _ => None,
        }
    }

    /// The extended key usages, as dotted OIDs (empty without the extension).
    pub fn extended_key_usages(&self) -> Vec<String> {
        match self
            .parsed
            .tbs_certificate
            .get::<x509_cert::ext::pkix::ExtendedKeyUsage>()
        {
            Ok(Some((_, eku))) => eku.0.iter().map(|o| o.to_string()).collect(),
            _ => Vec::new(),
        }
    }

    /// The DER TBSCertificate with the extension `oid` removed and every other byte kept,
    /// as RFC 6962 §3.2 defines a precertificate's signed TBS.
    pub fn tbs_without_extension(&self, oid: &str) -> Result<Vec<u8>, CryptoError> {
        let oid = spki::ObjectIdentifier::new(oid).map_err(bad_cert)?;
        let mut tbs = self.parsed.tbs_certificate.clone();
        if let Some(exts) = tbs.extensions.as_mut() {
            exts.retain(|e| e.extn_id != oid);
            if exts.is_empty() {
                tbs.extensions = None;
            }
        }
        tbs.to_der().map_err(bad_cert)
    }

    /// The decoded certificate, for callers that need fields this type does not expose.
    pub fn parsed(&self) -> &x509_cert::Certificate {
        &self.parsed
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.key
    }

    /// Validity as Unix seconds `(not_before, not_after)`.
    pub fn validity(&self) -> (u64, u64) {
        let v = &self.parsed.tbs_certificate.validity;
        (
            v.not_before.to_unix_duration().as_secs(),
            v.not_after.to_unix_duration().as_secs(),
        )
    }

    fn sans(&self) -> Vec<GeneralName> {
        match self.parsed.tbs_certificate.get::<SubjectAltName>() {
            Ok(Some((_, san))) => san.0,
            _ => Vec::new(),
        }
    }

    /// rfc822Name SANs.
    pub fn emails(&self) -> Vec<String> {
        self.sans()
            .into_iter()
            .filter_map(|n| match n {
                GeneralName::Rfc822Name(s) => Some(s.to_string()),
                _ => None,
            })
            .collect()
    }

    /// Every SAN rendered as a string: e-mail addresses, URIs, DNS names and IP
    /// addresses, in certificate order.
    pub fn subjects(&self) -> Vec<String> {
        self.sans()
            .into_iter()
            .filter_map(|n| match n {
                GeneralName::Rfc822Name(s) => Some(s.to_string()),
                GeneralName::UniformResourceIdentifier(s) => Some(s.to_string()),
                GeneralName::DnsName(s) => Some(s.to_string()),
                GeneralName::IpAddress(ip) => {
                    let b = ip.as_bytes();
                    match b.len() {
                        4 => Some(std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string()),
                        16 => {
                            let mut a = [0u8; 16];
                            a.copy_from_slice(b);
                            Some(std::net::Ipv6Addr::from(a).to_string())
                        }
                        _ => None,
                    }
                }
                _ => None,
            })
            .collect()
    }

    /// Checks that `issuer` names and signed this certificate.
    pub fn verify_issued_by(&self, issuer: &Certificate) -> Result<(), CryptoError> {
        if self.parsed.tbs_certificate.issuer != issuer.parsed.tbs_certificate.subject {
            return Err(CryptoError::Certificate(
                "certificate's issuer name does not match the next certificate's subject".into(),
            ));
        }
        let tbs = self.parsed.tbs_certificate.to_der().map_err(bad_cert)?;
        let sig = self
            .parsed
            .signature
            .as_bytes()
            .ok_or_else(|| bad_cert("signature has unused bits"))?;
        issuer
            .key
            .verify_signed(&self.parsed.signature_algorithm.oid, &tbs, sig)
            .map_err(|e| match e {
                CryptoError::Unsupported(m) => CryptoError::Unsupported(m),
                _ => CryptoError::Certificate(
                    "certificate signature does not verify with its issuer's key".into(),
                ),
            })
    }
}

/// What a client put in a `publicKey` field: a PEM public key, or a PEM certificate chain
/// (leaf first).
/// The largest certificate decoded (Fulcio's are 1–3 KiB; a CA's with many names a few more).
pub const MAX_CERT_DER: usize = 32 << 10;

#[derive(Clone, Debug)]
pub enum KeyMaterial {
    PublicKey(PublicKey),
    Certificates(Vec<Certificate>),
}

impl KeyMaterial {
    /// Parses PEM text: one `PUBLIC KEY` block, or 1 to [`MAX_CHAIN`] `CERTIFICATE` blocks.
    pub fn from_pem(text: &[u8]) -> Result<Self, CryptoError> {
        let blocks = pem::decode_all(text)?;
        match blocks[0].label.as_str() {
            "PUBLIC KEY" => {
                if blocks.len() != 1 {
                    return Err(CryptoError::Pem(
                        "expected a single PUBLIC KEY block".into(),
                    ));
                }
                Ok(Self::PublicKey(PublicKey::from_spki_der(&blocks[0].der)?))
            }
            "CERTIFICATE" => {
                if blocks.len() > MAX_CHAIN {
                    return Err(CryptoError::Certificate(format!(
                        "a chain may hold at most {MAX_CHAIN} certificates"
                    )));
                }
                let certs = blocks
                    .iter()
                    .map(|b| {
                        if b.label != "CERTIFICATE" {
                            return Err(CryptoError::Pem(format!(
                                "unexpected {} block in a certificate chain",
                                b.label
                            )));
                        }
                        Certificate::from_der(&b.der)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Self::Certificates(certs))
            }
            other => Err(CryptoError::Pem(format!(
                "expected a PUBLIC KEY or CERTIFICATE block, found {other}"
            ))),
        }
    }

    /// The key that made the signature: the public key, or the first certificate's.
    pub fn public_key(&self) -> &PublicKey {
        match self {
            Self::PublicKey(k) => k,
            Self::Certificates(c) => c[0].public_key(),
        }
    }

    pub fn leaf_certificate(&self) -> Option<&Certificate> {
        match self {
            Self::PublicKey(_) => None,
            Self::Certificates(c) => c.first(),
        }
    }

    /// Re-encoded PEM, 64-column lines, one block per key or certificate.
    pub fn canonical_pem(&self) -> String {
        match self {
            Self::PublicKey(k) => k.to_pem(),
            Self::Certificates(c) => c.iter().map(Certificate::to_pem).collect(),
        }
    }

    /// For a chain: each certificate must be signed by the next one.
    pub fn verify_chain(&self) -> Result<(), CryptoError> {
        if let Self::Certificates(c) = self {
            for pair in c.windows(2) {
                pair[0].verify_issued_by(&pair[1])?;
            }
        }
        Ok(())
    }

    /// Strings a search can find this material by: the certificate's SANs.
    pub fn subjects(&self) -> Vec<String> {
        match self.leaf_certificate() {
            Some(c) => c.subjects(),
            None => Vec::new(),
        }
    }
}
