//! Certificates the CA issues and is made of (RFC 5280 profiles as Fulcio and real
//! verifiers expect them; sigstore-protocols §1.8):
//!
//! * the code-signing leaf: empty subject, critical SAN, critical KeyUsage
//!   digitalSignature, EKU codeSigning, SKI (RFC 5280 §4.2.1.2 method 1), AKI, the
//!   Fulcio extensions, a 20-byte random positive serial, 10 minutes of validity;
//! * its RFC 6962 §3.1 precertificate: the same TBS with the critical poison extension
//!   last, replaced by the SCT list in the final certificate (§3.3);
//! * the CA chain: a self-signed root and an intermediate (CA:TRUE, keyCertSign and
//!   cRLSign; the intermediate with pathlen 0 and EKU codeSigning, which Fulcio requires).

use crate::principal::{Principal, San};
use der::asn1::{BitString, Ia5String, OctetString, UtcTime, Utf8StringRef};
use der::{Any, Decode, Encode};
use sigstack_crypto::{Certificate, CryptoError, Signer};
use std::str::FromStr;
use std::time::Duration;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::name::{GeneralName, OtherName};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};
use x509_cert::{TbsCertificate, Version};

/// Lifetime of a code-signing certificate.
pub const LEAF_VALIDITY: Duration = Duration::from_secs(10 * 60);

const CODE_SIGNING: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
const POISON: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.11129.2.4.3");
const SCT_LIST: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.11129.2.4.2");

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    #[error("encoding a certificate: {0}")]
    Encoding(String),
    #[error("the identity cannot be put in a certificate: {0}")]
    Identity(String),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

fn enc(e: impl std::fmt::Display) -> CertError {
    CertError::Encoding(e.to_string())
}

fn ext(
    oid: der::oid::ObjectIdentifier,
    critical: bool,
    value: &impl Encode,
) -> Result<Extension, CertError> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value.to_der().map_err(enc)?).map_err(enc)?,
    })
}

fn raw_ext(
    oid: der::oid::ObjectIdentifier,
    critical: bool,
    value: Vec<u8>,
) -> Result<Extension, CertError> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value).map_err(enc)?,
    })
}

/// SHA-1 of the subjectPublicKey bits (RFC 5280 §4.2.1.2, method 1).
pub fn key_identifier(spki_der: &[u8]) -> Result<Vec<u8>, CertError> {
    let spki = SubjectPublicKeyInfoOwned::from_der(spki_der).map_err(enc)?;
    let d = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
        spki.subject_public_key.raw_bytes(),
    );
    Ok(d.as_ref().to_vec())
}

fn time(unix: u64) -> Result<Time, CertError> {
    let d = Duration::from_secs(unix);
    // UTCTime up to 2049 (RFC 5280 §4.1.2.5), GeneralizedTime after
    if unix < 2_524_608_000 {
        Ok(Time::UtcTime(UtcTime::from_unix_duration(d).map_err(enc)?))
    } else {
        Ok(Time::GeneralTime(
            der::asn1::GeneralizedTime::from_unix_duration(d).map_err(enc)?,
        ))
    }
}

/// A 20-byte positive serial from `random` (the first byte is forced into 0x01..=0x7f).
pub fn serial(mut random: [u8; 20]) -> Result<SerialNumber, CertError> {
    random[0] = (random[0] & 0x7f).max(1);
    SerialNumber::new(&random).map_err(enc)
}

fn signature_algorithm(signer: &dyn Signer) -> Result<AlgorithmIdentifierOwned, CertError> {
    let oid = signer
        .public_key()
        .ecdsa_signature_oid()
        .ok_or_else(|| CertError::Encoding("CA keys must be ECDSA (P-256 or P-384)".into()))?;
    Ok(AlgorithmIdentifierOwned {
        oid,
        parameters: None,
    })
}

/// Signs a TBSCertificate into a DER certificate.
pub fn sign(tbs: &TbsCertificate, signer: &dyn Signer) -> Result<Vec<u8>, CertError> {
    let der = tbs.to_der().map_err(enc)?;
    let sig = signer.sign(&der)?;
    x509_cert::Certificate {
        tbs_certificate: tbs.clone(),
        signature_algorithm: tbs.signature.clone(),
        signature: BitString::from_bytes(&sig).map_err(enc)?,
    }
    .to_der()
    .map_err(enc)
}

fn san_extension(san: &San) -> Result<Extension, CertError> {
    let ia5 = |s: &str| {
        Ia5String::new(s).map_err(|_| CertError::Identity(format!("{s:?} is not an IA5 string")))
    };
    let name = match san {
        San::Email(e) => GeneralName::Rfc822Name(ia5(e)?),
        San::Uri(u) => GeneralName::UniformResourceIdentifier(ia5(u)?),
        San::Username(v) => GeneralName::OtherName(OtherName {
            type_id: crate::principal::Extension::OTHERNAME_USERNAME,
            value: Any::encode_from(&Utf8StringRef::new(v).map_err(enc)?).map_err(enc)?,
        }),
    };
    // the subject is empty, so the SAN is critical (RFC 5280 §4.2.1.6)
    ext(
        der::oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME,
        true,
        &SubjectAltName(vec![name]),
    )
}

/// What the CA signs with: its key and the certificate of that key (the intermediate).
pub struct Authority<'a> {
    pub signer: &'a dyn Signer,
    pub certificate: &'a Certificate,
    /// The issuing certificate's key identifier, from [`authority_key_id`].
    pub key_id: &'a [u8],
}

/// The key identifier leaves name in their AKI: the issuing certificate's SKI as it states
/// it, else computed from its key (RFC 5280 §4.2.1.2 method 1).
pub fn authority_key_id(certificate: &Certificate) -> Result<Vec<u8>, CertError> {
    match certificate.subject_key_id() {
        Some(id) => Ok(id),
        None => key_identifier(certificate.public_key().spki_der()),
    }
}

/// The leaf's TBS without the CT tail: every byte the precertificate and the final
/// certificate share.
pub fn leaf_template(
    ca: &Authority<'_>,
    spki_der: &[u8],
    principal: &Principal,
    serial_number: SerialNumber,
    not_before: u64,
) -> Result<TbsCertificate, CertError> {
    let issuer_tbs = &ca.certificate.parsed().tbs_certificate;
    let mut extensions = vec![
        ext(
            der::oid::db::rfc5280::ID_CE_KEY_USAGE,
            true,
            &KeyUsage(KeyUsages::DigitalSignature.into()),
        )?,
        ext(
            der::oid::db::rfc5280::ID_CE_EXT_KEY_USAGE,
            false,
            &ExtendedKeyUsage(vec![CODE_SIGNING]),
        )?,
    ];
    extensions.extend(key_id_extensions(spki_der, ca.key_id.to_vec())?);
    extensions.push(san_extension(&principal.san)?);
    for e in &principal.extensions {
        extensions.push(raw_ext(e.oid, false, e.value.clone())?);
    }
    Ok(TbsCertificate {
        version: Version::V3,
        serial_number,
        signature: signature_algorithm(ca.signer)?,
        issuer: issuer_tbs.subject.clone(),
        validity: Validity {
            not_before: time(not_before)?,
            not_after: time(not_before + LEAF_VALIDITY.as_secs())?,
        },
        subject: Name::default(),
        subject_public_key_info: SubjectPublicKeyInfoOwned::from_der(spki_der).map_err(enc)?,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    })
}

fn with_tail(template: &TbsCertificate, tail: Extension) -> TbsCertificate {
    let mut tbs = template.clone();
    tbs.extensions.get_or_insert_with(Vec::new).push(tail);
    tbs
}

/// The template's DER: what an RFC 6962 §3.2 precert entry signs (the precertificate's
/// TBS without the poison), so the CA need not re-parse the precertificate.
pub fn tbs_der(template: &TbsCertificate) -> Result<Vec<u8>, CertError> {
    template.to_der().map_err(enc)
}

/// The precertificate: the template with the critical CT poison (ASN.1 NULL) last.
pub fn precertificate(
    template: &TbsCertificate,
    signer: &dyn Signer,
) -> Result<Vec<u8>, CertError> {
    sign(
        &with_tail(template, raw_ext(POISON, true, vec![0x05, 0x00])?),
        signer,
    )
}

/// The final certificate: the template with the SCT list (a TLS
/// `SignedCertificateTimestampList`) last, wrapped in an OCTET STRING.
pub fn with_scts(
    template: &TbsCertificate,
    sct_list: &[u8],
    signer: &dyn Signer,
) -> Result<Vec<u8>, CertError> {
    let value = OctetString::new(sct_list.to_vec()).map_err(enc)?;
    sign(&with_tail(template, ext(SCT_LIST, false, &value)?), signer)
}

/// The subject and authority key identifier extensions of a certificate for `spki`
/// issued by the key whose identifier is `issuer_key_id`.
fn key_id_extensions(spki: &[u8], issuer_key_id: Vec<u8>) -> Result<[Extension; 2], CertError> {
    Ok([
        ext(
            der::oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER,
            false,
            &SubjectKeyIdentifier(OctetString::new(key_identifier(spki)?).map_err(enc)?),
        )?,
        ext(
            der::oid::db::rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER,
            false,
            &AuthorityKeyIdentifier {
                key_identifier: Some(OctetString::new(issuer_key_id).map_err(enc)?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
        )?,
    ])
}

/// What a certificate that `issuer` signs says, apart from its extensions.
struct Issued<'a> {
    subject: Name,
    spki: &'a [u8],
    issuer_name: Name,
    issuer_key: &'a dyn Signer,
    serial_number: SerialNumber,
    not_before: u64,
    not_after: u64,
}

impl Issued<'_> {
    /// The signed DER certificate with `extensions`.
    fn sign(self, extensions: Vec<Extension>) -> Result<Vec<u8>, CertError> {
        let tbs = TbsCertificate {
            version: Version::V3,
            serial_number: self.serial_number,
            signature: signature_algorithm(self.issuer_key)?,
            issuer: self.issuer_name,
            validity: Validity {
                not_before: time(self.not_before)?,
                not_after: time(self.not_after)?,
            },
            subject: self.subject,
            subject_public_key_info: SubjectPublicKeyInfoOwned::from_der(self.spki).map_err(enc)?,
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(extensions),
        };
        sign(&tbs, self.issuer_key)
    }
}

/// Names for CA certificates.
pub fn ca_name(organization: &str, common_name: &str) -> Result<Name, CertError> {
    let esc = |s: &str| {
        s.replace('\\', "\\\\")
            .replace(',', "\\,")
            .replace('+', "\\+")
            .replace('=', "\\=")
    };
    Name::from_str(&format!("CN={},O={}", esc(common_name), esc(organization))).map_err(enc)
}

/// A CA certificate for `subject_key`, signed by `issuer` (`None`: self-signed root).
/// `path_len` and `code_signing` shape an intermediate.
#[allow(clippy::too_many_arguments)]
pub fn ca_certificate(
    subject: Name,
    subject_key: &dyn Signer,
    issuer: Option<(&Name, &dyn Signer)>,
    serial_number: SerialNumber,
    not_before: u64,
    not_after: u64,
    path_len: Option<u8>,
    code_signing: bool,
) -> Result<Vec<u8>, CertError> {
    let spki = subject_key.public_key().spki_der();
    let (issuer_name, issuer_key) = match issuer {
        Some((n, k)) => (n.clone(), k),
        None => (subject.clone(), subject_key),
    };
    let mut extensions = vec![
        ext(
            der::oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS,
            true,
            &BasicConstraints {
                ca: true,
                path_len_constraint: path_len,
            },
        )?,
        ext(
            der::oid::db::rfc5280::ID_CE_KEY_USAGE,
            true,
            &KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign),
        )?,
    ];
    extensions.extend(key_id_extensions(
        spki,
        key_identifier(issuer_key.public_key().spki_der())?,
    )?);
    if code_signing {
        extensions.push(ext(
            der::oid::db::rfc5280::ID_CE_EXT_KEY_USAGE,
            false,
            &ExtendedKeyUsage(vec![CODE_SIGNING]),
        )?);
    }
    Issued {
        subject,
        spki,
        issuer_name,
        issuer_key,
        serial_number,
        not_before,
        not_after,
    }
    .sign(extensions)
}

#[cfg(test)]
mod tests;

const TIME_STAMPING: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");

/// A timestamp authority's certificate for `subject_key`, issued by `issuer`: an
/// end-entity certificate (basic constraints CA false) for digital signatures whose only
/// extended key usage is timeStamping, critical (RFC 3161 §2.3).
pub fn tsa_certificate(
    subject: Name,
    subject_key: &sigstack_crypto::PublicKey,
    issuer: (&Name, &dyn Signer),
    serial_number: SerialNumber,
    not_before: u64,
    not_after: u64,
) -> Result<Vec<u8>, CertError> {
    let spki = subject_key.spki_der();
    let (issuer_name, issuer_key) = issuer;
    let mut extensions = vec![
        ext(
            der::oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS,
            true,
            &BasicConstraints {
                ca: false,
                path_len_constraint: None,
            },
        )?,
        ext(
            der::oid::db::rfc5280::ID_CE_KEY_USAGE,
            true,
            &KeyUsage(KeyUsages::DigitalSignature.into()),
        )?,
        ext(
            der::oid::db::rfc5280::ID_CE_EXT_KEY_USAGE,
            true,
            &ExtendedKeyUsage(vec![TIME_STAMPING]),
        )?,
    ];
    extensions.extend(key_id_extensions(
        spki,
        key_identifier(issuer_key.public_key().spki_der())?,
    )?);
    Issued {
        subject,
        spki,
        issuer_name: issuer_name.clone(),
        issuer_key,
        serial_number,
        not_before,
        not_after,
    }
    .sign(extensions)
}
