//! JWS compact serialization (RFC 7515 §7.1) of a JWT (RFC 7519 §7.2), parsed but not
//! yet verified.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::TokenError;

/// Tokens longer than this are refused before any decoding (64 KiB).
pub const MAX_TOKEN_LEN: usize = 64 * 1024;

/// The JOSE header parameters this verifier reads (RFC 7515 §4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwsHeader {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
}

impl JwsHeader {
    /// `alg`: the signature algorithm the token claims (not yet checked).
    pub fn alg(&self) -> &str {
        &self.alg
    }

    /// `kid`, if present and non-empty (an empty `kid` counts as absent, as in go-oidc).
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// `typ`, if present (informational; not checked).
    pub fn typ(&self) -> Option<&str> {
        self.typ.as_deref()
    }
}

/// A token split into header, claims and signature, with nothing verified yet.
#[derive(Debug, Clone)]
pub struct UnverifiedToken {
    header: JwsHeader,
    claims: Map<String, Value>,
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`, the JWS signing input.
    signing_input: String,
    signature: Vec<u8>,
}

impl UnverifiedToken {
    /// Splits and decodes a compact JWS: exactly three parts of strict unpadded base64url,
    /// a JSON-object header with a string `alg` and no `crit`, and a JSON-object payload.
    ///
    /// # Errors
    /// [`TokenError::TooLarge`], [`TokenError::WrongPartCount`],
    /// [`TokenError::InvalidBase64`], [`TokenError::InvalidJson`],
    /// [`TokenError::InvalidHeader`] or [`TokenError::UnsupportedCritical`].
    pub fn parse(token: &str) -> Result<Self, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLarge {
                len: token.len(),
                max: MAX_TOKEN_LEN,
            });
        }
        let parts: Vec<&str> = token.split('.').collect();
        let [header_b64, payload_b64, signature_b64] = parts[..] else {
            return Err(TokenError::WrongPartCount { found: parts.len() });
        };
        let header = decode_object(header_b64, "header")?;
        let claims = decode_object(payload_b64, "payload")?;
        let signature = decode_part(signature_b64, "signature")?;
        Ok(Self {
            header: parse_header(&header)?,
            claims,
            signing_input: format!("{header_b64}.{payload_b64}"),
            signature,
        })
    }

    /// The JOSE header.
    pub fn header(&self) -> &JwsHeader {
        &self.header
    }

    /// The claims, which nothing vouches for yet.
    pub fn unverified_claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// The `iss` claim, unverified: used only to pick which issuer's configuration and
    /// keys to verify the token with.
    pub fn unverified_issuer(&self) -> Option<&str> {
        self.claims.get("iss").and_then(Value::as_str)
    }

    pub(crate) fn signing_input(&self) -> &[u8] {
        self.signing_input.as_bytes()
    }

    pub(crate) fn signature(&self) -> &[u8] {
        &self.signature
    }
}

fn decode_part(part: &str, name: &'static str) -> Result<Vec<u8>, TokenError> {
    // URL_SAFE_NO_PAD refuses padding, characters outside the URL-safe alphabet
    // (including whitespace) and non-zero trailing bits.
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::InvalidBase64 { part: name })
}

fn decode_object(part: &str, name: &'static str) -> Result<Map<String, Value>, TokenError> {
    let bytes = decode_part(part, name)?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(TokenError::InvalidJson {
            part: name,
            reason: "not an object".to_owned(),
        }),
        Err(e) => Err(TokenError::InvalidJson {
            part: name,
            reason: e.to_string(),
        }),
    }
}

fn parse_header(header: &Map<String, Value>) -> Result<JwsHeader, TokenError> {
    // RFC 7515 §4.1.11: a recipient that does not understand a critical extension must
    // reject the JWS; we understand none.
    if header.contains_key("crit") {
        return Err(TokenError::UnsupportedCritical);
    }
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => alg.clone(),
        Some(_) => return Err(TokenError::InvalidHeader("\"alg\" is not a string")),
        None => return Err(TokenError::InvalidHeader("\"alg\" is missing")),
    };
    let kid = match header.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(kid)) if kid.is_empty() => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(TokenError::InvalidHeader("\"kid\" is not a string")),
    };
    let typ = match header.get("typ") {
        None | Some(Value::Null) => None,
        Some(Value::String(typ)) => Some(typ.clone()),
        Some(_) => return Err(TokenError::InvalidHeader("\"typ\" is not a string")),
    };
    // Keys embedded in or pointed to by the header (jwk, jku, x5c, x5u) are ignored:
    // only the issuer's published key set is trusted.
    Ok(JwsHeader { alg, kid, typ })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn compact(header: &str, payload: &str) -> String {
        format!("{}.{}.{}", b64(header), b64(payload), b64("sig"))
    }

    #[test]
    fn parses_header_claims_and_signature() {
        let t = compact(
            r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#,
            r#"{"iss":"https://issuer.example","sub":"alice"}"#,
        );
        let token = UnverifiedToken::parse(&t).expect("parses");
        assert_eq!(token.header().alg(), "RS256");
        assert_eq!(token.header().kid(), Some("k1"));
        assert_eq!(token.header().typ(), Some("JWT"));
        assert_eq!(token.unverified_issuer(), Some("https://issuer.example"));
        assert_eq!(token.signature(), b"sig");
        let dot = t.rfind('.').expect("has dots");
        assert_eq!(token.signing_input(), &t.as_bytes()[..dot]);
    }

    #[test]
    fn empty_kid_counts_as_absent() {
        let t = compact(r#"{"alg":"RS256","kid":""}"#, "{}");
        let token = UnverifiedToken::parse(&t).expect("parses");
        assert_eq!(token.header().kid(), None);
        assert_eq!(token.unverified_issuer(), None);
    }

    #[test]
    fn refuses_wrong_part_counts() {
        for (t, found) in [("", 1), ("a.b", 2), ("a.b.c.d", 4), ("a.b.c.d.e", 5)] {
            assert_eq!(
                UnverifiedToken::parse(t).expect_err("must be refused"),
                TokenError::WrongPartCount { found }
            );
        }
    }

    #[test]
    fn refuses_malformed_base64() {
        let good = compact(r#"{"alg":"RS256"}"#, "{}");
        let parts: Vec<&str> = good.split('.').collect();
        let cases = [
            // padding
            (format!("{}=.{}.{}", parts[0], parts[1], parts[2]), "header"),
            // standard (non-URL) alphabet
            (
                format!("{}.{}+/.{}", parts[0], parts[1], parts[2]),
                "payload",
            ),
            // whitespace
            (
                format!("{}.{}.{} ", parts[0], parts[1], parts[2]),
                "signature",
            ),
            // non-zero trailing bits: "cx" is a non-canonical spelling of "cw" ("s")
            (format!("{}.{}.cx", parts[0], parts[1]), "signature"),
        ];
        for (t, part) in cases {
            assert_eq!(
                UnverifiedToken::parse(&t).expect_err("must be refused"),
                TokenError::InvalidBase64 { part },
                "{t}"
            );
        }
    }

    #[test]
    fn refuses_malformed_json() {
        let not_json = compact(r#"{"alg":"RS256""#, "{}");
        assert!(matches!(
            UnverifiedToken::parse(&not_json).expect_err("must be refused"),
            TokenError::InvalidJson { part: "header", .. }
        ));
        let array = compact(r#"{"alg":"RS256"}"#, "[1,2]");
        assert!(matches!(
            UnverifiedToken::parse(&array).expect_err("must be refused"),
            TokenError::InvalidJson {
                part: "payload",
                ..
            }
        ));
        let not_utf8 = format!(
            "{}.{}.",
            b64(r#"{"alg":"RS256"}"#),
            URL_SAFE_NO_PAD.encode([0xff, 0xfe])
        );
        assert!(matches!(
            UnverifiedToken::parse(&not_utf8).expect_err("must be refused"),
            TokenError::InvalidJson {
                part: "payload",
                ..
            }
        ));
    }

    #[test]
    fn refuses_bad_headers() {
        let cases = [
            (
                r#"{"typ":"JWT"}"#,
                TokenError::InvalidHeader("\"alg\" is missing"),
            ),
            (
                r#"{"alg":256}"#,
                TokenError::InvalidHeader("\"alg\" is not a string"),
            ),
            (
                r#"{"alg":"RS256","kid":7}"#,
                TokenError::InvalidHeader("\"kid\" is not a string"),
            ),
            (
                r#"{"alg":"RS256","crit":["exp"],"exp":1}"#,
                TokenError::UnsupportedCritical,
            ),
        ];
        for (header, want) in cases {
            assert_eq!(
                UnverifiedToken::parse(&compact(header, "{}")).expect_err("must be refused"),
                want
            );
        }
    }

    #[test]
    fn refuses_oversize_tokens() {
        let big = "a".repeat(MAX_TOKEN_LEN);
        let t = compact(r#"{"alg":"RS256"}"#, &format!(r#"{{"x":"{big}"}}"#));
        assert!(matches!(
            UnverifiedToken::parse(&t).expect_err("must be refused"),
            TokenError::TooLarge {
                max: MAX_TOKEN_LEN,
                ..
            }
        ));
    }
}
