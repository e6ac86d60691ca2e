//! Signed time-stamp responses. The token is a CMS SignedData (version 3) whose
//! encapsulated content is the DER `TSTInfo`; one SignerInfo, named by issuer and serial,
//! signs the signed attributes (content type, signing time, message digest of the
//! TSTInfo, and RFC 5035's signing-certificate-v2 naming the TSA certificate by hash,
//! which `openssl ts -verify` and Sigstore's verifiers require).

use crate::asn1::{
    Accuracy, EssCertIdV2, IssuerSerial, MessageImprint, PkiStatusInfo, SigningCertificateV2,
    TimeStampResp, TstInfo,
};
use crate::request::{HashAlg, Request, RequestError};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{GeneralizedTime, Int, ObjectIdentifier, OctetString, SetOfVec, UtcTime};
use der::{Any, Decode, Encode, Tag};
use sha2::Digest;
use sigstack_crypto::{Certificate, Signer};
use spki::AlgorithmIdentifierOwned;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;

const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ID_SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
const ID_SIGNING_CERTIFICATE_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");

/// Why a timestamp could not be made.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("signing the timestamp failed: {0}")]
    Internal(String),
}

fn internal(e: impl std::fmt::Display) -> IssueError {
    IssueError::Internal(e.to_string())
}

/// A timestamp authority: its signing key, its certificate chain (leaf first, checked
/// against the profile), its policy, and the accuracy it states.
pub struct Authority {
    signer: Arc<dyn Signer>,
    chain: Vec<Certificate>,
    policy: ObjectIdentifier,
    accepted: Vec<ObjectIdentifier>,
    accuracy: Duration,
    /// The signing-certificate-v2 attribute value, computed once.
    ess: Any,
    signature_algorithm: AlgorithmIdentifierOwned,
}

impl Authority {
    /// `chain` must pass [`crate::check_chain`] with the signer's key; `policy` is
    /// stamped when a request names none, and a request may name it or one of `accepted`.
    pub fn new(
        signer: Arc<dyn Signer>,
        chain: Vec<Certificate>,
        policy: &str,
        accepted: &[String],
        accuracy: Duration,
    ) -> Result<Self, String> {
        crate::check_chain(&chain, signer.public_key())?;
        let oid = |s: &str| {
            ObjectIdentifier::new(s).map_err(|_| format!("{s:?} is not an object identifier"))
        };
        let policy = oid(policy)?;
        let mut accepted_oids = vec![policy];
        for a in accepted {
            accepted_oids.push(oid(a)?);
        }
        let oid_sig = signer
            .public_key()
            .ecdsa_signature_oid()
            .ok_or("the TSA key must be ECDSA (P-256 or P-384)")?;
        let leaf = chain[0].parsed();
        let ess = SigningCertificateV2 {
            certs: vec![EssCertIdV2 {
                cert_hash: OctetString::new(sha2::Sha256::digest(chain[0].der()).to_vec())
                    .map_err(|e| e.to_string())?,
                issuer_serial: IssuerSerial {
                    issuer: vec![GeneralName::DirectoryName(
                        leaf.tbs_certificate.issuer.clone(),
                    )],
                    serial_number: leaf.tbs_certificate.serial_number.clone(),
                },
            }],
        };
        let ess = Any::encode_from(&ess).map_err(|e| e.to_string())?;
        Ok(Authority {
            signer,
            chain,
            policy,
            accepted: accepted_oids,
            accuracy,
            ess,
            signature_algorithm: AlgorithmIdentifierOwned {
                oid: oid_sig,
                parameters: None,
            },
        })
    }

    /// The chain, leaf first.
    pub fn chain(&self) -> &[Certificate] {
        &self.chain
    }

    /// The chain as PEM, leaf first (timestamp-authority's `certchain` answer).
    pub fn chain_pem(&self) -> String {
        self.chain.iter().map(Certificate::to_pem).collect()
    }

    /// The DER `TimeStampResp` (status granted) for `req`, stamped `now`.
    pub fn respond(&self, req: &Request, now: SystemTime) -> Result<Vec<u8>, IssueError> {
        let policy = match &req.policy {
            None => self.policy,
            Some(p) if self.accepted.contains(p) => *p,
            Some(p) => return Err(RequestError::UnacceptedPolicy(p.to_string()).into()),
        };
        let since = now.duration_since(UNIX_EPOCH).map_err(internal)?;
        let gen_time = GeneralizedTime::from_unix_duration(Duration::from_secs(since.as_secs()))
            .map_err(internal)?;
        // unique serials: 159 random bits
        let mut serial: [u8; 20] = rand::random();
        serial[0] = (serial[0] & 0x7f).max(1);
        let leaf = self.chain[0].parsed();
        let tst = TstInfo {
            version: 1,
            policy,
            message_imprint: MessageImprint {
                hash_algorithm: AlgorithmIdentifierOwned {
                    oid: req.hash.oid(),
                    parameters: None,
                },
                hashed_message: OctetString::new(req.hashed_message.clone()).map_err(internal)?,
            },
            serial_number: Int::new(&serial).map_err(internal)?,
            gen_time,
            accuracy: Some(accuracy_of(self.accuracy)),
            ordering: false,
            nonce: req.nonce.clone(),
            tsa: Some(GeneralName::DirectoryName(
                leaf.tbs_certificate.subject.clone(),
            )),
            extensions: None,
        };
        let tst_der = tst.to_der().map_err(internal)?;
        let attr = |oid, value: Any| -> Result<Attribute, IssueError> {
            Ok(Attribute {
                oid,
                values: SetOfVec::try_from(vec![value]).map_err(internal)?,
            })
        };
        let signing_time = match UtcTime::from_unix_duration(Duration::from_secs(since.as_secs())) {
            Ok(t) => Any::encode_from(&t).map_err(internal)?,
            Err(_) => Any::encode_from(&gen_time).map_err(internal)?,
        };
        let signed_attrs = SetOfVec::try_from(vec![
            attr(
                ID_CONTENT_TYPE,
                Any::encode_from(&ID_CT_TST_INFO).map_err(internal)?,
            )?,
            attr(ID_SIGNING_TIME, signing_time)?,
            attr(
                ID_MESSAGE_DIGEST,
                Any::encode_from(
                    &OctetString::new(sha2::Sha256::digest(&tst_der).to_vec()).map_err(internal)?,
                )
                .map_err(internal)?,
            )?,
            attr(ID_SIGNING_CERTIFICATE_V2, self.ess.clone())?,
        ])
        .map_err(internal)?;
        // the signature covers the attributes' DER with the SET OF tag (RFC 5652 §5.4)
        let to_sign = signed_attrs.to_der().map_err(internal)?;
        let signature = self.signer.sign(&to_sign).map_err(internal)?;
        let sha256 = AlgorithmIdentifierOwned {
            oid: HashAlg::Sha256.oid(),
            parameters: None,
        };
        let signer_info = SignerInfo {
            version: CmsVersion::V1,
            sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer: leaf.tbs_certificate.issuer.clone(),
                serial_number: leaf.tbs_certificate.serial_number.clone(),
            }),
            digest_alg: sha256.clone(),
            signed_attrs: Some(signed_attrs),
            signature_algorithm: self.signature_algorithm.clone(),
            signature: OctetString::new(signature).map_err(internal)?,
            unsigned_attrs: None,
        };
        let certificates = if req.cert_req {
            let c = x509_cert::Certificate::from_der(self.chain[0].der()).map_err(internal)?;
            Some(CertificateSet(
                SetOfVec::try_from(vec![CertificateChoices::Certificate(c)]).map_err(internal)?,
            ))
        } else {
            None
        };
        let signed_data = SignedData {
            version: CmsVersion::V3,
            digest_algorithms: SetOfVec::try_from(vec![sha256]).map_err(internal)?,
            encap_content_info: EncapsulatedContentInfo {
                econtent_type: ID_CT_TST_INFO,
                econtent: Some(Any::new(Tag::OctetString, tst_der).map_err(internal)?),
            },
            certificates,
            crls: None,
            signer_infos: SignerInfos(SetOfVec::try_from(vec![signer_info]).map_err(internal)?),
        };
        let token = ContentInfo {
            content_type: ID_SIGNED_DATA,
            content: Any::encode_from(&signed_data).map_err(internal)?,
        };
        TimeStampResp {
            status: PkiStatusInfo { status: 0 },
            time_stamp_token: Some(Any::encode_from(&token).map_err(internal)?),
        }
        .to_der()
        .map_err(internal)
    }
}

/// RFC 3161 `Accuracy` for a duration: whole seconds, then milliseconds (1..999).
fn accuracy_of(d: Duration) -> Accuracy {
    let millis = d.subsec_millis() as u16;
    Accuracy {
        seconds: (d.as_secs() > 0).then_some(d.as_secs() as u32),
        millis: (millis > 0).then_some(millis),
        micros: None,
    }
}
