//! Verifying a parsed token against a key set: algorithm policy (RFC 7518 §3.1, RFC 8725
//! §3.1–3.2), key selection by `kid` (RFC 7515 §4.1.4), the JWS signature (RFC 7515 §5.2)
//! and then the claims (RFC 7519 §7.2).

use super::claims::into_verified;
use super::{Algorithm, Claims, Jwk, Jwks, TokenError, UnverifiedToken};

/// What a token must satisfy besides a valid signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectations {
    /// `iss` must equal this exactly.
    pub issuer: String,
    /// `aud` must contain this (the issuer's client id).
    pub audience: String,
    /// The current time, in Unix seconds (injected; never read from a clock here).
    pub now: i64,
    /// Allowed clock skew in seconds for `exp`, `nbf` and `iat`.
    pub leeway: i64,
    /// The `alg` values the issuer advertises (`id_token_signing_alg_values_supported`);
    /// empty means `RS256` only, as in go-oidc.
    pub allowed_algs: Vec<String>,
}

/// The algorithm OpenID Connect Core §15.1 makes mandatory, and go-oidc's default.
pub const DEFAULT_ALG: &str = "RS256";

/// Decides whether `alg` may be used at all: never `none` or HMAC, only implemented
/// algorithms, and only those in `allowed` (or `RS256` when `allowed` is empty).
///
/// # Errors
/// [`TokenError::AlgNone`], [`TokenError::HmacNotAllowed`],
/// [`TokenError::UnsupportedAlgorithm`] or [`TokenError::AlgorithmNotAllowed`].
pub fn check_algorithm(alg: &str, allowed: &[String]) -> Result<Algorithm, TokenError> {
    if alg.eq_ignore_ascii_case("none") {
        return Err(TokenError::AlgNone);
    }
    if alg.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("HS")) {
        return Err(TokenError::HmacNotAllowed {
            alg: alg.to_owned(),
        });
    }
    let Some(algorithm) = Algorithm::from_name(alg) else {
        return Err(TokenError::UnsupportedAlgorithm {
            alg: alg.to_owned(),
        });
    };
    let permitted = if allowed.is_empty() {
        alg == DEFAULT_ALG
    } else {
        allowed.iter().any(|a| a == alg)
    };
    if !permitted {
        let allowed = if allowed.is_empty() {
            vec![DEFAULT_ALG.to_owned()]
        } else {
            allowed.to_vec()
        };
        return Err(TokenError::AlgorithmNotAllowed {
            alg: alg.to_owned(),
            allowed,
        });
    }
    Ok(algorithm)
}

/// Verifies `token` against `jwks`: the algorithm policy, then the signature, then the
/// claims (see [`Expectations`]).
///
/// Key selection follows go-oidc: with a `kid`, only keys with that `kid` are tried;
/// without one, every key whose type fits the algorithm is tried.
///
/// # Errors
/// The first check that fails, as a [`TokenError`].
pub fn verify(
    token: &UnverifiedToken,
    jwks: &Jwks,
    expected: &Expectations,
) -> Result<Claims, TokenError> {
    let alg = check_algorithm(token.header().alg(), &expected.allowed_algs)?;
    verify_signature(token, alg, jwks)?;
    into_verified(token.unverified_claims().clone(), expected)
}

fn verify_signature(
    token: &UnverifiedToken,
    alg: Algorithm,
    jwks: &Jwks,
) -> Result<(), TokenError> {
    let kid = token.header().kid();
    let named: Vec<&Jwk> = match kid {
        Some(kid) => jwks
            .keys()
            .iter()
            .filter(|k| k.kid() == Some(kid))
            .collect(),
        None => jwks.keys().iter().collect(),
    };
    let candidates: Vec<&Jwk> = named.iter().copied().filter(|k| k.fits(alg)).collect();
    if candidates.is_empty() {
        return Err(match kid {
            Some(kid) if named.is_empty() => TokenError::UnknownKeyId {
                kid: kid.to_owned(),
            },
            Some(kid) => TokenError::KeyAlgorithmMismatch {
                kid: kid.to_owned(),
                alg: alg.name().to_owned(),
            },
            None => TokenError::NoMatchingKey {
                alg: alg.name().to_owned(),
            },
        });
    }
    if candidates
        .iter()
        .any(|k| k.verify(alg, token.signing_input(), token.signature()))
    {
        Ok(())
    } else {
        Err(TokenError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::testkeys::{
        AUDIENCE, ISSUER, NOW, TestKey, b64, good_claims, jwks_document, sign_compact,
    };
    use aws_lc_rs::hmac;
    use serde_json::{Value, json};

    fn expected(allowed: &[&str]) -> Expectations {
        Expectations {
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            now: NOW,
            leeway: 60,
            allowed_algs: allowed.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn set(keys: &[Value]) -> Jwks {
        Jwks::from_json(&jwks_document(keys)).expect("key set")
    }

    fn run(token: &str, jwks: &Jwks, allowed: &[&str]) -> Result<Claims, TokenError> {
        verify(&UnverifiedToken::parse(token)?, jwks, &expected(allowed))
    }

    const ALL: &[&str] = &[
        "RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA",
    ];

    #[test]
    fn each_algorithm_verifies() {
        for key in [
            TestKey::rsa(),
            TestKey::p256(),
            TestKey::p384(),
            TestKey::ed25519(),
        ] {
            let jwks = set(&[key.jwk("k1")]);
            let claims = run(&key.token(Some("k1"), &good_claims()), &jwks, ALL)
                .unwrap_or_else(|e| panic!("{:?}: {e}", key.alg()));
            assert_eq!(claims.subject(), "alice");
            // Without a kid, every key of a fitting type is tried.
            assert!(run(&key.token(None, &good_claims()), &jwks, ALL).is_ok());
        }
    }

    #[test]
    fn optional_rsa_algorithms_verify() {
        let key = TestKey::rsa();
        let jwks = set(&[key.jwk("k1")]);
        for alg in [Algorithm::Rs384, Algorithm::Rs512, Algorithm::Ps256] {
            let token = key.token_with(alg, Some("k1"), &good_claims());
            assert!(run(&token, &jwks, ALL).is_ok(), "{alg:?}");
        }
    }

    #[test]
    fn rs256_is_the_default_when_nothing_is_advertised() {
        let rsa = TestKey::rsa();
        assert!(run(&rsa.token(None, &good_claims()), &set(&[rsa.jwk("r")]), &[]).is_ok());
        let ec = TestKey::p256();
        let err = run(&ec.token(None, &good_claims()), &set(&[ec.jwk("e")]), &[])
            .expect_err("must be refused");
        assert_eq!(
            err,
            TokenError::AlgorithmNotAllowed {
                alg: "ES256".into(),
                allowed: vec!["RS256".into()]
            }
        );
    }

    #[test]
    fn algorithm_not_advertised_is_refused() {
        let key = TestKey::ed25519();
        let token = key.token(Some("k1"), &good_claims());
        let err =
            run(&token, &set(&[key.jwk("k1")]), &["RS256", "ES256"]).expect_err("must be refused");
        assert!(
            matches!(err, TokenError::AlgorithmNotAllowed { .. }),
            "{err}"
        );
    }

    #[test]
    fn wrong_key_signature_is_refused() {
        let signer = TestKey::p256();
        let published = TestKey::p256();
        let token = signer.token(Some("k1"), &good_claims());
        let err = run(&token, &set(&[published.jwk("k1")]), ALL).expect_err("must be refused");
        assert_eq!(err, TokenError::BadSignature);
        assert_eq!(err.to_string(), "token signature does not verify");
    }

    #[test]
    fn tampered_claims_are_refused() {
        let key = TestKey::rsa();
        let token = key.token(Some("k1"), &good_claims());
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut claims = good_claims();
        claims["sub"] = json!("mallory");
        parts[1] = b64(claims.to_string().as_bytes());
        let err = run(&parts.join("."), &set(&[key.jwk("k1")]), ALL).expect_err("must be refused");
        assert_eq!(err, TokenError::BadSignature);
    }

    #[test]
    fn alg_none_is_refused() {
        let key = TestKey::rsa();
        for alg in ["none", "None", "NONE"] {
            let token = sign_compact(&json!({"alg": alg}), &good_claims(), |_| Vec::new());
            let err = run(&token, &set(&[key.jwk("k1")]), &["none", "RS256"])
                .expect_err("must be refused");
            assert_eq!(err, TokenError::AlgNone);
        }
        assert_eq!(
            TokenError::AlgNone.to_string(),
            "algorithm none is not allowed"
        );
    }

    #[test]
    fn hs256_keyed_with_the_public_key_is_refused() {
        let key = TestKey::rsa();
        let jwk = key.jwk("k1");
        let (n, _) = key.rsa_components();
        let secrets: [Vec<u8>; 3] = [
            n,
            jwk.to_string().into_bytes(),
            jwk["n"].to_string().into_bytes(),
        ];
        for secret in secrets {
            let hmac_key = hmac::Key::new(hmac::HMAC_SHA256, &secret);
            let token = sign_compact(&json!({"alg": "HS256", "kid": "k1"}), &good_claims(), |m| {
                hmac::sign(&hmac_key, m).as_ref().to_vec()
            });
            // Even an issuer that (wrongly) advertises HS256 does not make it acceptable.
            let err = run(
                &token,
                &set(std::slice::from_ref(&jwk)),
                &["RS256", "HS256"],
            )
            .expect_err("must be refused");
            assert_eq!(
                err,
                TokenError::HmacNotAllowed {
                    alg: "HS256".into()
                }
            );
        }
        for alg in ["HS384", "HS512", "hs256"] {
            assert!(matches!(
                check_algorithm(alg, &[alg.to_owned()]),
                Err(TokenError::HmacNotAllowed { .. })
            ));
        }
    }

    #[test]
    fn unknown_algorithms_are_refused() {
        for alg in ["ES256K", "RSA-OAEP", "rs256", ""] {
            assert!(matches!(
                check_algorithm(alg, &[alg.to_owned()]),
                Err(TokenError::UnsupportedAlgorithm { .. })
            ));
        }
    }

    #[test]
    fn algorithm_and_key_type_must_match() {
        let rsa = TestKey::rsa();
        let ec = TestKey::p256();
        let p384 = TestKey::p384();
        // An ES256 token whose kid names an RSA key.
        let token = ec.token(Some("r"), &good_claims());
        let jwks = set(&[rsa.jwk("r"), ec.jwk("e")]);
        assert_eq!(
            run(&token, &jwks, ALL).expect_err("must be refused"),
            TokenError::KeyAlgorithmMismatch {
                kid: "r".into(),
                alg: "ES256".into()
            }
        );
        // ES384 signature presented as ES256 against a P-384 key.
        let token = p384.token_with(Algorithm::Es256, Some("p"), &good_claims());
        let err = run(&token, &set(&[p384.jwk("p")]), ALL).expect_err("must be refused");
        assert!(
            matches!(err, TokenError::KeyAlgorithmMismatch { .. }),
            "{err}"
        );
        // A key that names its alg cannot be used with another.
        let mut pinned = rsa.jwk("r");
        pinned["alg"] = json!("PS256");
        let token = rsa.token(Some("r"), &good_claims());
        let err = run(&token, &set(&[pinned]), ALL).expect_err("must be refused");
        assert!(
            matches!(err, TokenError::KeyAlgorithmMismatch { .. }),
            "{err}"
        );
        // No kid and no key of the right type.
        let token = ec.token(None, &good_claims());
        assert_eq!(
            run(&token, &set(&[rsa.jwk("r")]), ALL).expect_err("must be refused"),
            TokenError::NoMatchingKey {
                alg: "ES256".into()
            }
        );
    }

    #[test]
    fn unknown_kid_is_reported() {
        let key = TestKey::p256();
        let token = key.token(Some("rotated"), &good_claims());
        let err = run(&token, &set(&[key.jwk("old")]), ALL).expect_err("must be refused");
        assert_eq!(err.to_string(), "unknown signing key id \"rotated\"");
    }

    #[test]
    fn no_kid_tries_every_fitting_key() {
        let key = TestKey::p256();
        let jwks = set(&[
            TestKey::p256().jwk("a"),
            TestKey::rsa().jwk("b"),
            key.jwk("c"),
        ]);
        assert!(run(&key.token(None, &good_claims()), &jwks, ALL).is_ok());
    }

    #[test]
    fn claims_are_checked_after_the_signature() {
        let key = TestKey::ed25519();
        let jwks = set(&[key.jwk("k1")]);
        let mut claims = good_claims();
        claims["exp"] = json!(NOW - 3600);
        claims["iss"] = json!("https://elsewhere.example");
        // A bad signature wins over bad claims...
        let forged = TestKey::ed25519().token(Some("k1"), &claims);
        assert_eq!(
            run(&forged, &jwks, ALL).expect_err("must be refused"),
            TokenError::BadSignature
        );
        // ...and a good signature reaches the claim checks.
        let signed = key.token(Some("k1"), &claims);
        assert!(matches!(
            run(&signed, &jwks, ALL).expect_err("must be refused"),
            TokenError::WrongIssuer { .. }
        ));
        let mut claims = good_claims();
        claims["aud"] = json!(["a", "b"]);
        let err = run(&key.token(Some("k1"), &claims), &jwks, ALL).expect_err("must be refused");
        assert_eq!(
            err.to_string(),
            "token audience does not include \"sigstore\""
        );
    }
}
