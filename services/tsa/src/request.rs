//! Time-stamp requests: RFC 3161's DER `TimeStampReq` (`application/timestamp-query`) and
//! timestamp-authority's JSON form (`application/json`: `artifactHash`, `hashAlgorithm`,
//! `nonce`, `certificates`, `tsaPolicyOID`), checked as upstream checks them.

use crate::asn1::TimeStampReq;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use der::Decode;
use der::asn1::{Int, ObjectIdentifier};

/// The largest request body read (DER or JSON).
pub const MAX_REQUEST_BYTES: usize = 16 << 10;
/// The largest nonce taken, in bytes (RFC 3161 asks for room for 160-bit serials; nonces
/// are usually 64-bit).
pub const MAX_NONCE_BYTES: usize = 32;

/// A hash algorithm a message imprint may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlg {
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    pub fn oid(self) -> ObjectIdentifier {
        ObjectIdentifier::new_unwrap(match self {
            HashAlg::Sha256 => "2.16.840.1.101.3.4.2.1",
            HashAlg::Sha384 => "2.16.840.1.101.3.4.2.2",
            HashAlg::Sha512 => "2.16.840.1.101.3.4.2.3",
        })
    }

    pub fn digest_len(self) -> usize {
        match self {
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    fn from_oid(oid: &ObjectIdentifier) -> Result<Self, RequestError> {
        match oid.to_string().as_str() {
            "2.16.840.1.101.3.4.2.1" => Ok(HashAlg::Sha256),
            "2.16.840.1.101.3.4.2.2" => Ok(HashAlg::Sha384),
            "2.16.840.1.101.3.4.2.3" => Ok(HashAlg::Sha512),
            "1.3.14.3.2.26" => Err(RequestError::WeakHash),
            other => Err(RequestError::Invalid(format!(
                "unsupported hash algorithm {other}: use SHA-256, SHA-384 or SHA-512"
            ))),
        }
    }

    fn from_name(name: &str) -> Result<Self, RequestError> {
        match name.to_ascii_lowercase().as_str() {
            "sha256" => Ok(HashAlg::Sha256),
            "sha384" => Ok(HashAlg::Sha384),
            "sha512" => Ok(HashAlg::Sha512),
            "sha1" => Err(RequestError::WeakHash),
            other => Err(RequestError::Invalid(format!(
                "unsupported hash algorithm {other:?}: use sha256, sha384 or sha512"
            ))),
        }
    }
}

/// Why a request is refused (HTTP 400, with this message).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("timestamp request is too large (at most {MAX_REQUEST_BYTES} bytes)")]
    TooLarge,
    #[error("Weak hash algorithm in timestamp request: use SHA-256, SHA-384 or SHA-512")]
    WeakHash,
    #[error(
        "Message digest has incorrect length for specified algorithm: expected {expected} bytes, got {got}"
    )]
    DigestLength { expected: usize, got: usize },
    #[error("unaccepted policy: requested TSA policy {0} is not supported by the TSA")]
    UnacceptedPolicy(String),
    #[error("unaccepted extension: requested extensions are not supported by the TSA")]
    UnacceptedExtension,
    #[error("the nonce is too large (at most {MAX_NONCE_BYTES} bytes)")]
    NonceTooLarge,
    #[error("{0}")]
    Invalid(String),
}

/// A checked request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub hash: HashAlg,
    pub hashed_message: Vec<u8>,
    /// The nonce as a DER INTEGER's content (two's complement, minimal).
    pub nonce: Option<Int>,
    /// Whether the TSA's certificate goes into the token.
    pub cert_req: bool,
    pub policy: Option<ObjectIdentifier>,
}

impl Request {
    /// Parses a DER `TimeStampReq` (version 1; no extensions, which upstream refuses by
    /// default).
    pub fn from_der(bytes: &[u8]) -> Result<Self, RequestError> {
        if bytes.len() > MAX_REQUEST_BYTES {
            return Err(RequestError::TooLarge);
        }
        let req = TimeStampReq::from_der(bytes).map_err(|e| {
            RequestError::Invalid(format!("the body is not a DER TimeStampReq: {e}"))
        })?;
        if req.version != 1 {
            return Err(RequestError::Invalid(format!(
                "TimeStampReq version {} (only version 1 exists)",
                req.version
            )));
        }
        if req.extensions.is_some() {
            return Err(RequestError::UnacceptedExtension);
        }
        if req
            .message_imprint
            .hash_algorithm
            .parameters
            .as_ref()
            .is_some_and(|p| der::Tagged::tag(p) != der::Tag::Null)
        {
            return Err(RequestError::Invalid(
                "the hash algorithm has parameters (only an absent or NULL one is allowed)".into(),
            ));
        }
        let hash = HashAlg::from_oid(&req.message_imprint.hash_algorithm.oid)?;
        if let Some(n) = &req.nonce {
            check_nonce(n.as_bytes())?;
        }
        checked(Request {
            hash,
            hashed_message: req.message_imprint.hashed_message.as_bytes().to_vec(),
            nonce: req.nonce,
            cert_req: req.cert_req,
            policy: req.req_policy,
        })
    }

    /// Parses timestamp-authority's JSON request.
    pub fn from_json(bytes: &[u8]) -> Result<Self, RequestError> {
        if bytes.len() > MAX_REQUEST_BYTES {
            return Err(RequestError::TooLarge);
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Json {
            artifact_hash: String,
            hash_algorithm: String,
            #[serde(default)]
            nonce: Option<serde_json::Value>,
            #[serde(default)]
            certificates: bool,
            #[serde(default, rename = "tsaPolicyOID")]
            tsa_policy_oid: Option<String>,
        }
        let j: Json = serde_json::from_slice(bytes)
            .map_err(|e| RequestError::Invalid(format!("the body is not a JSON request: {e}")))?;
        let hash = HashAlg::from_name(&j.hash_algorithm)?;
        let hashed_message = STANDARD
            .decode(j.artifact_hash.trim())
            .map_err(|_| RequestError::Invalid("artifactHash is not base64".into()))?;
        let nonce = match j.nonce {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Number(n)) => Some(nonce_from_decimal(&n.to_string())?),
            Some(serde_json::Value::String(s)) => Some(nonce_from_decimal(&s)?),
            Some(_) => {
                return Err(RequestError::Invalid(
                    "nonce must be a non-negative integer".into(),
                ));
            }
        };
        let policy = match j.tsa_policy_oid.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(ObjectIdentifier::new(s).map_err(|_| {
                RequestError::Invalid(format!("tsaPolicyOID {s:?} is not an object identifier"))
            })?),
        };
        checked(Request {
            hash,
            hashed_message,
            nonce,
            cert_req: j.certificates,
            policy,
        })
    }
}

fn checked(r: Request) -> Result<Request, RequestError> {
    if r.hashed_message.len() != r.hash.digest_len() {
        return Err(RequestError::DigestLength {
            expected: r.hash.digest_len(),
            got: r.hashed_message.len(),
        });
    }
    Ok(r)
}

fn check_nonce(bytes: &[u8]) -> Result<(), RequestError> {
    if bytes.len() > MAX_NONCE_BYTES + 1 {
        return Err(RequestError::NonceTooLarge);
    }
    Ok(())
}

/// A non-negative decimal integer (a JSON number or string) as a DER INTEGER.
fn nonce_from_decimal(s: &str) -> Result<Int, RequestError> {
    let bad = || RequestError::Invalid("nonce must be a non-negative integer".into());
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    // 2^256 has 78 digits: anything longer is too large before converting
    if s.len() > 78 {
        return Err(RequestError::NonceTooLarge);
    }
    // big-endian base-256 digits, multiplied up by ten per decimal digit
    let mut out: Vec<u8> = vec![0];
    for d in s.bytes().map(|b| b - b'0') {
        let mut carry = u16::from(d);
        for byte in out.iter_mut().rev() {
            let v = u16::from(*byte) * 10 + carry;
            *byte = (v & 0xff) as u8;
            carry = v >> 8;
        }
        if carry > 0 {
            out.insert(0, carry as u8);
        }
    }
    while out.len() > 1 && out[0] == 0 {
        out.remove(0);
    }
    if out.len() > MAX_NONCE_BYTES {
        return Err(RequestError::NonceTooLarge);
    }
    if out[0] & 0x80 != 0 {
        out.insert(0, 0);
    }
    Int::new(&out).map_err(|_| bad())
}
