//! Why an identity token was refused, and why keys could not be fetched.

/// Why an identity token was refused.
///
/// Every variant except those for which [`TokenError::is_unavailable`] is true describes
/// something wrong with the token the client sent (HTTP 400/401); the unavailable ones
/// mean the issuer's discovery document or key set could not be obtained (HTTP 503).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token is longer than [`super::MAX_TOKEN_LEN`].
    #[error("token is {len} bytes long, more than the {max}-byte limit")]
    TooLarge {
        /// Length of the token sent.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The token does not have exactly three dot-separated parts (RFC 7515 §7.1).
    #[error(
        "token is not a JWS compact serialization: expected 3 dot-separated parts, found {found}"
    )]
    WrongPartCount {
        /// Number of parts found.
        found: usize,
    },
    /// A part of the token is not unpadded base64url (RFC 7515 §2).
    #[error("token {part} is not unpadded base64url")]
    InvalidBase64 {
        /// `header`, `payload` or `signature`.
        part: &'static str,
    },
    /// The header or payload is not a JSON object.
    #[error("token {part} is not a JSON object: {reason}")]
    InvalidJson {
        /// `header` or `payload`.
        part: &'static str,
        /// The JSON parser's complaint.
        reason: String,
    },
    /// A header parameter is missing or has the wrong type.
    #[error("token header is invalid: {0}")]
    InvalidHeader(&'static str),
    /// The header lists critical extensions (RFC 7515 §4.1.11); none are supported.
    #[error("token header marks extensions as critical (\"crit\"), which is not supported")]
    UnsupportedCritical,
    /// `alg` is `none` (RFC 7518 §3.6): an unsigned token.
    #[error("algorithm none is not allowed")]
    AlgNone,
    /// `alg` is an HMAC algorithm (RFC 7518 §3.2), which an issuer's public keys cannot verify.
    #[error("algorithm {alg} (HMAC with a shared secret) is not allowed")]
    HmacNotAllowed {
        /// The header's `alg`.
        alg: String,
    },
    /// `alg` names no algorithm this verifier implements.
    #[error("algorithm {alg:?} is not supported")]
    UnsupportedAlgorithm {
        /// The header's `alg`.
        alg: String,
    },
    /// `alg` is supported but the issuer does not advertise it.
    #[error("algorithm {alg} is not among the issuer's signing algorithms ({})", allowed.join(", "))]
    AlgorithmNotAllowed {
        /// The header's `alg`.
        alg: String,
        /// What the issuer allows.
        allowed: Vec<String>,
    },
    /// No key in the issuer's key set has the token's `kid`.
    #[error("unknown signing key id {kid:?}")]
    UnknownKeyId {
        /// The header's `kid`.
        kid: String,
    },
    /// The token has no `kid` and no key in the set can verify its algorithm.
    #[error("no key in the issuer's key set can verify {alg} signatures")]
    NoMatchingKey {
        /// The header's `alg`.
        alg: String,
    },
    /// The key named by `kid` has a type, curve or `alg` that does not fit the token's `alg`.
    #[error("signing key {kid:?} cannot be used with algorithm {alg}")]
    KeyAlgorithmMismatch {
        /// The header's `kid`.
        kid: String,
        /// The header's `alg`.
        alg: String,
    },
    /// The signature does not verify under any candidate key.
    #[error("token signature does not verify")]
    BadSignature,
    /// A required claim is absent.
    #[error("token has no {claim:?} claim")]
    MissingClaim {
        /// The claim's name.
        claim: &'static str,
    },
    /// A claim has the wrong JSON type or an unusable value.
    #[error("token claim {claim:?} is invalid: {reason}")]
    InvalidClaim {
        /// The claim's name.
        claim: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `iss` is not the expected issuer.
    #[error("token issuer {actual:?} is not the expected {expected:?}")]
    WrongIssuer {
        /// The issuer expected.
        expected: String,
        /// The token's `iss`.
        actual: String,
    },
    /// `aud` does not contain the expected audience.
    #[error("token audience does not include {expected:?}")]
    WrongAudience {
        /// The audience expected (the issuer's client id).
        expected: String,
    },
    /// `exp` (plus leeway) is in the past.
    #[error("token is expired")]
    Expired {
        /// The token's `exp`.
        exp: i64,
    },
    /// `nbf` (minus leeway) is in the future.
    #[error("token is not valid yet")]
    NotYetValid {
        /// The token's `nbf`.
        nbf: i64,
    },
    /// `iat` is further in the future than the leeway allows.
    #[error("token was issued in the future")]
    IssuedInFuture {
        /// The token's `iat`.
        iat: i64,
    },
    /// The issuer's discovery document could not be fetched or read.
    #[error("issuer discovery failed: {0}")]
    DiscoveryFailed(String),
    /// The discovery document names another issuer (OpenID Connect Discovery §4.3).
    #[error(
        "issuer discovery failed: the discovery document names issuer {actual:?}, not {expected:?}"
    )]
    DiscoveryIssuerMismatch {
        /// The configured issuer URL.
        expected: String,
        /// The document's `issuer`.
        actual: String,
    },
    /// The issuer's key set could not be fetched or read.
    #[error("issuer keys are unavailable: {0}")]
    KeysUnavailable(String),
}

impl TokenError {
    /// True when the issuer could not be reached or answered nonsense: not the client's
    /// fault, so the HTTP layer should answer 503 rather than 400.
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::DiscoveryFailed(_)
                | Self::DiscoveryIssuerMismatch { .. }
                | Self::KeysUnavailable(_)
        )
    }

    /// True when no key of the set could even be tried, or the token's algorithm is not
    /// (yet) advertised: a refreshed discovery document and key set might help (a key
    /// rotation, possibly to another algorithm).
    pub(crate) fn is_key_not_found(&self) -> bool {
        matches!(
            self,
            Self::UnknownKeyId { .. }
                | Self::NoMatchingKey { .. }
                | Self::AlgorithmNotAllowed { .. }
        )
    }
}

/// Why a [`super::KeyFetcher`] could not fetch a document (transport error, non-200
/// status, body too large, ...), as a sentence for the operator's logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

impl FetchError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}
