//! Registered-claim checks (RFC 7519 §4.1, OpenID Connect Core §3.1.3.7) and the verified
//! claims they produce.

use serde_json::{Map, Value};

use super::{Expectations, TokenError};

/// The claims of a token whose signature, issuer, audience, times and subject checked out.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    issuer: String,
    subject: String,
    audience: Vec<String>,
    expires_at: i64,
    claims: Map<String, Value>,
}

impl Claims {
    /// `iss`, equal to the expected issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `sub`, non-empty.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// `aud`, as a list (a single-string `aud` becomes a one-element list).
    pub fn audience(&self) -> &[String] {
        &self.audience
    }

    /// `exp`, in Unix seconds.
    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }

    /// `iat`, in Unix seconds, if present.
    pub fn issued_at(&self) -> Option<i64> {
        self.claims.get("iat").and_then(|v| numeric_date(v).ok())
    }

    /// `email`, if it is a string.
    pub fn email(&self) -> Option<&str> {
        self.claims.get("email").and_then(Value::as_str)
    }

    /// `email_verified`: true for JSON `true` and for the strings `"true"` and `"True"`
    /// (some issuers send a string; Fulcio accepts both), false otherwise or when absent.
    pub fn email_verified(&self) -> bool {
        match self.claims.get("email_verified") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true" || s == "True",
            _ => false,
        }
    }

    /// Any claim by name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.claims.get(name)
    }

    /// All claims.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// All claims, by value.
    pub fn into_map(self) -> Map<String, Value> {
        self.claims
    }
}

/// Reads a NumericDate (RFC 7519 §2): a JSON number of seconds, fractions floored.
fn numeric_date(value: &Value) -> Result<i64, &'static str> {
    let Value::Number(n) = value else {
        return Err("not a number");
    };
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    match n.as_f64() {
        // The range check keeps the `as` conversion exact (no saturation surprises).
        Some(f) if f.is_finite() && f.abs() < 9.0e15 => Ok(f.floor() as i64),
        _ => Err("not a representable time"),
    }
}

fn time_claim(claims: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, TokenError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => numeric_date(v)
            .map(Some)
            .map_err(|reason| TokenError::InvalidClaim {
                claim: name,
                reason,
            }),
    }
}

fn string_claim(claims: &Map<String, Value>, name: &'static str) -> Result<String, TokenError> {
    match claims.get(name) {
        None | Some(Value::Null) => Err(TokenError::MissingClaim { claim: name }),
        Some(Value::String(s)) if s.is_empty() => Err(TokenError::MissingClaim { claim: name }),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(TokenError::InvalidClaim {
            claim: name,
            reason: "not a string",
        }),
    }
}

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3).
fn audience(claims: &Map<String, Value>) -> Result<Vec<String>, TokenError> {
    let invalid = TokenError::InvalidClaim {
        claim: "aud",
        reason: "not a string or an array of strings",
    };
    match claims.get("aud") {
        None | Some(Value::Null) => Err(TokenError::MissingClaim { claim: "aud" }),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or(invalid.clone()))
            .collect(),
        Some(_) => Err(invalid),
    }
}

/// Checks the claims against `expected`, in go-oidc's order: `iss` equal, `aud`
/// containing the audience, `exp` present and not passed, `nbf` if present reached; then
/// `iat`, if present, not in the future and `sub` present. `leeway` (negative counts as
/// 0) widens each time comparison in the token's favour.
pub(crate) fn check_claims(
    claims: &Map<String, Value>,
    expected: &Expectations,
) -> Result<(), TokenError> {
    let issuer = string_claim(claims, "iss")?;
    if issuer != expected.issuer {
        return Err(TokenError::WrongIssuer {
            expected: expected.issuer.clone(),
            actual: issuer,
        });
    }
    if !audience(claims)?.contains(&expected.audience) {
        return Err(TokenError::WrongAudience {
            expected: expected.audience.clone(),
        });
    }
    let leeway = expected.leeway.max(0);
    let now = expected.now;
    let exp = time_claim(claims, "exp")?.ok_or(TokenError::MissingClaim { claim: "exp" })?;
    if now > exp.saturating_add(leeway) {
        return Err(TokenError::Expired { exp });
    }
    if let Some(nbf) = time_claim(claims, "nbf")?
        && now.saturating_add(leeway) < nbf
    {
        return Err(TokenError::NotYetValid { nbf });
    }
    if let Some(iat) = time_claim(claims, "iat")?
        && iat > now.saturating_add(leeway)
    {
        return Err(TokenError::IssuedInFuture { iat });
    }
    string_claim(claims, "sub")?;
    Ok(())
}

/// [`check_claims`], then wraps the map.
pub(crate) fn into_verified(
    claims: Map<String, Value>,
    expected: &Expectations,
) -> Result<Claims, TokenError> {
    check_claims(&claims, expected)?;
    Ok(Claims {
        issuer: string_claim(&claims, "iss")?,
        subject: string_claim(&claims, "sub")?,
        audience: audience(&claims)?,
        expires_at: time_claim(&claims, "exp")?.ok_or(TokenError::MissingClaim { claim: "exp" })?,
        claims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::testkeys::{AUDIENCE, ISSUER, NOW, good_claims};
    use serde_json::json;

    fn expected() -> Expectations {
        Expectations {
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            now: NOW,
            leeway: 60,
            allowed_algs: vec![],
        }
    }

    fn check(edit: impl FnOnce(&mut Map<String, Value>)) -> Result<Claims, TokenError> {
        let Value::Object(mut map) = good_claims() else {
            unreachable!()
        };
        edit(&mut map);
        into_verified(map, &expected())
    }

    #[test]
    fn good_claims_pass_with_accessors() {
        let claims = check(|_| {}).expect("valid");
        assert_eq!(claims.issuer(), ISSUER);
        assert_eq!(claims.subject(), "alice");
        assert_eq!(claims.audience(), [AUDIENCE]);
        assert_eq!(claims.expires_at(), NOW + 600);
        assert_eq!(claims.issued_at(), Some(NOW - 10));
        assert_eq!(claims.email(), Some("alice@example.com"));
        assert!(claims.email_verified());
        assert_eq!(claims.get("sub"), Some(&json!("alice")));
    }

    #[test]
    fn email_verified_forms() {
        for (value, want) in [
            (json!(true), true),
            (json!("true"), true),
            (json!("True"), true),
            (json!(false), false),
            (json!("TRUE"), false),
            (json!("yes"), false),
            (json!(1), false),
        ] {
            let claims = check(|m| {
                m.insert("email_verified".into(), value.clone());
            })
            .expect("valid");
            assert_eq!(claims.email_verified(), want, "{value}");
        }
        let claims = check(|m| {
            m.remove("email_verified");
        })
        .expect("valid");
        assert!(!claims.email_verified());
    }

    #[test]
    fn issuer_must_match_exactly() {
        for iss in [
            "https://issuer.example/",
            "https://ISSUER.example",
            "issuer.example",
        ] {
            let err = check(|m| {
                m.insert("iss".into(), json!(iss));
            })
            .expect_err("must be refused");
            assert!(matches!(err, TokenError::WrongIssuer { .. }), "{iss}");
        }
        let err = check(|m| {
            m.remove("iss");
        })
        .expect_err("must be refused");
        assert_eq!(err, TokenError::MissingClaim { claim: "iss" });
    }

    #[test]
    fn audience_string_or_array() {
        let ok = check(|m| {
            m.insert("aud".into(), json!(["other", AUDIENCE]));
        })
        .expect("array containing the audience");
        assert_eq!(ok.audience(), ["other", AUDIENCE]);
        for aud in [json!("other"), json!(["other", "sigstore2"]), json!([])] {
            let err = check(|m| {
                m.insert("aud".into(), aud.clone());
            })
            .expect_err("must be refused");
            assert_eq!(
                err.to_string(),
                "token audience does not include \"sigstore\""
            );
        }
        for aud in [json!(7), json!([AUDIENCE, 7])] {
            let err = check(|m| {
                m.insert("aud".into(), aud.clone());
            })
            .expect_err("must be refused");
            assert!(matches!(err, TokenError::InvalidClaim { claim: "aud", .. }));
        }
        let err = check(|m| {
            m.remove("aud");
        })
        .expect_err("must be refused");
        assert_eq!(err, TokenError::MissingClaim { claim: "aud" });
    }

    #[test]
    fn expiry_is_required_and_enforced_with_leeway() {
        let set = |exp: Value| {
            check(move |m| {
                m.insert("exp".into(), exp);
            })
        };
        assert!(set(json!(NOW - 60)).is_ok(), "inside leeway");
        assert!(set(json!(NOW as f64 - 59.5)).is_ok(), "fractional");
        assert_eq!(
            set(json!(NOW - 61)).expect_err("must be refused"),
            TokenError::Expired { exp: NOW - 61 }
        );
        assert_eq!(
            set(json!(NOW - 61))
                .expect_err("must be refused")
                .to_string(),
            "token is expired"
        );
        assert!(matches!(
            set(json!("soon")).expect_err("must be refused"),
            TokenError::InvalidClaim { claim: "exp", .. }
        ));
        let err = check(|m| {
            m.remove("exp");
        })
        .expect_err("must be refused");
        assert_eq!(err, TokenError::MissingClaim { claim: "exp" });
    }

    #[test]
    fn not_before_is_honoured_with_leeway() {
        let set = |nbf: i64| {
            check(move |m| {
                m.insert("nbf".into(), json!(nbf));
            })
        };
        assert!(set(NOW + 60).is_ok());
        assert_eq!(
            set(NOW + 61).expect_err("must be refused"),
            TokenError::NotYetValid { nbf: NOW + 61 }
        );
    }

    #[test]
    fn issued_at_may_be_absent_but_not_in_the_future() {
        let set = |iat: i64| {
            check(move |m| {
                m.insert("iat".into(), json!(iat));
            })
        };
        assert!(set(NOW + 60).is_ok());
        assert_eq!(
            set(NOW + 61).expect_err("must be refused"),
            TokenError::IssuedInFuture { iat: NOW + 61 }
        );
        assert!(
            check(|m| {
                m.remove("iat");
            })
            .is_ok()
        );
    }

    #[test]
    fn subject_is_required() {
        for sub in [None, Some(json!("")), Some(json!(null))] {
            let err = check(|m| match sub {
                Some(v) => {
                    m.insert("sub".into(), v);
                }
                None => {
                    m.remove("sub");
                }
            })
            .expect_err("must be refused");
            assert_eq!(err, TokenError::MissingClaim { claim: "sub" });
        }
        let err = check(|m| {
            m.insert("sub".into(), json!(42));
        })
        .expect_err("must be refused");
        assert!(matches!(err, TokenError::InvalidClaim { claim: "sub", .. }));
    }
}
