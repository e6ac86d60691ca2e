//! Workload and custom-IdP principals: fulcio `pkg/identity/chainguard`, `kubernetes`,
//! `spiffe`, `uri` and `username` (`principal.go` in each).

use serde_json::{Map, Value};

use super::{
    ExtensionValues, IdentityError, Principal, San, claim_str, email_verified, required, uri_san,
    url,
};
use crate::config::Issuer;

fn misconfigured(issuer: &Issuer, reason: &str) -> IdentityError {
    IdentityError::Misconfigured {
        issuer: issuer.issuer_url.clone(),
        reason: reason.to_owned(),
    }
}

/// A principal whose challenge, SAN subject and `.1.24` value is `sub`.
fn by_subject(issuer: &Issuer, sub: &str, san: San) -> Result<Principal, IdentityError> {
    Ok(Principal {
        name: sub.to_owned(),
        san,
        extensions: ExtensionValues::new(issuer.issuer_url.clone(), sub).render()?,
    })
}

/// `chainguard-identity`: SAN `<issuer>/<sub>`; the challenge is the e-mail when the token has
/// one (it must then be verified), else `sub` (sigstore `oauthflow.SubjectFromToken`).
pub(super) fn chainguard(
    issuer: &Issuer,
    claims: &Map<String, Value>,
) -> Result<Principal, IdentityError> {
    let email = claim_str(claims, "email")?;
    let verified = email_verified(claims)?;
    let sub = required(claims, "sub")?;
    let name = match email {
        "" => sub,
        _ if !verified => return Err(IdentityError::EmailNotVerified),
        e => e,
    };
    let san =
        url::join_path(&issuer.issuer_url, &[sub]).ok_or_else(|| IdentityError::InvalidUrl {
            what: "issuer".into(),
            value: issuer.issuer_url.clone(),
        })?;
    Ok(Principal {
        name: name.to_owned(),
        san: San::Uri(san),
        extensions: ExtensionValues::new(issuer.issuer_url.clone(), sub).render()?,
    })
}

/// `kubernetes`: SAN `https://kubernetes.io/namespaces/<ns>/serviceaccounts/<name>` from the
/// `kubernetes.io` claim object.
pub(super) fn kubernetes(
    issuer: &Issuer,
    claims: &Map<String, Value>,
) -> Result<Principal, IdentityError> {
    let not_object = |claim: &str| IdentityError::ClaimType {
        claim: claim.to_owned(),
        expected: "JSON object",
    };
    let k8s = match claims.get("kubernetes.io") {
        None | Some(Value::Null) => {
            return Err(IdentityError::MissingClaim("kubernetes.io".into()));
        }
        Some(Value::Object(m)) => m,
        Some(_) => return Err(not_object("kubernetes.io")),
    };
    let nested = |obj: &Map<String, Value>, key: &str, label: &str| match claim_str(obj, key) {
        Ok("") => Err(IdentityError::MissingClaim(label.to_owned())),
        Ok(s) => Ok(s.to_owned()),
        Err(_) => Err(IdentityError::ClaimType {
            claim: label.to_owned(),
            expected: "string",
        }),
    };
    let namespace = nested(k8s, "namespace", "kubernetes.io.namespace")?;
    let account = match k8s.get("serviceaccount") {
        Some(Value::Object(m)) => nested(m, "name", "kubernetes.io.serviceaccount.name")?,
        None | Some(Value::Null) => {
            return Err(IdentityError::MissingClaim(
                "kubernetes.io.serviceaccount.name".into(),
            ));
        }
        Some(_) => return Err(not_object("kubernetes.io.serviceaccount")),
    };
    let sub = required(claims, "sub")?;
    let uri = format!("https://kubernetes.io/namespaces/{namespace}/serviceaccounts/{account}");
    by_subject(issuer, sub, uri_san("service account URI", &uri)?)
}

/// `spiffe`: SAN = `sub`, a SPIFFE ID in the configured trust domain.
pub(super) fn spiffe(
    issuer: &Issuer,
    claims: &Map<String, Value>,
) -> Result<Principal, IdentityError> {
    let configured = issuer.spiffe_trust_domain.as_deref().unwrap_or_default();
    let Some(expected) = url::spiffe_trust_domain(configured) else {
        return Err(misconfigured(
            issuer,
            "its spiffe-trust-domain is not a trust domain",
        ));
    };
    let sub = required(claims, "sub")?;
    let actual = url::spiffe_id_trust_domain(sub)
        .ok_or_else(|| IdentityError::InvalidSpiffeId(sub.to_owned()))?;
    if actual != expected {
        return Err(IdentityError::SpiffeTrustDomain {
            actual: actual.to_owned(),
            expected: configured.to_owned(),
        });
    }
    by_subject(issuer, sub, uri_san("subject", sub)?)
}

/// `uri`: SAN = `sub`, whose scheme and host must be those of `subject-domain`.
pub(super) fn uri(
    issuer: &Issuer,
    claims: &Map<String, Value>,
) -> Result<Principal, IdentityError> {
    let domain = issuer.subject_domain.as_deref().unwrap_or_default();
    let Some(want) = url::parse(domain).filter(|d| !d.scheme.is_empty()) else {
        return Err(misconfigured(
            issuer,
            "its subject-domain is not a URL with a scheme",
        ));
    };
    let sub = required(claims, "sub")?;
    if url::is_email(sub) {
        return Err(IdentityError::SubjectIsEmail);
    }
    let got = url::parse(sub).ok_or_else(|| IdentityError::InvalidUrl {
        what: "subject".into(),
        value: sub.to_owned(),
    })?;
    if got.scheme != want.scheme {
        return Err(IdentityError::SubjectScheme {
            actual: got.scheme,
            expected: want.scheme,
        });
    }
    if got.host != want.host {
        return Err(IdentityError::SubjectHost {
            actual: got.host.to_owned(),
            expected: want.host.to_owned(),
        });
    }
    by_subject(issuer, sub, uri_san("subject", sub)?)
}

/// `username`: otherName SAN `<sub>!<subject-domain>`.
pub(super) fn username(
    issuer: &Issuer,
    claims: &Map<String, Value>,
) -> Result<Principal, IdentityError> {
    let Some(domain) = issuer.subject_domain.as_deref() else {
        return Err(misconfigured(issuer, "it has no subject-domain"));
    };
    let sub = required(claims, "sub")?;
    if sub.contains('!') {
        return Err(IdentityError::SubjectHasBang);
    }
    if url::is_email(sub) {
        return Err(IdentityError::SubjectIsEmail);
    }
    by_subject(issuer, sub, San::Username(format!("{sub}!{domain}")))
}

#[cfg(test)]
mod tests {
    use super::super::principal;
    use super::super::tests::{claims, hex_exts, issuer};
    use super::*;
    use serde_json::json;

    #[test]
    fn chainguard_name_rule() {
        let (iss, cfg) = issuer("    client-id: x\n    type: chainguard-identity\n");
        let p = principal(&iss, &cfg, &claims(json!({"sub": "abc/def"}))).expect("valid");
        assert_eq!(p.name, "abc/def");
        assert_eq!(p.san, San::Uri("https://issuer.example.com/abc/def".into()));
        let c = claims(json!({"sub": "abc", "email": "a@b.dev", "email_verified": true}));
        assert_eq!(
            principal(&iss, &cfg, &c).map(|p| p.name),
            Ok("a@b.dev".into())
        );
        let c = claims(json!({"sub": "abc", "email": "a@b.dev"}));
        assert_eq!(
            principal(&iss, &cfg, &c),
            Err(IdentityError::EmailNotVerified)
        );
        assert_eq!(
            principal(&iss, &cfg, &claims(json!({}))),
            Err(IdentityError::MissingClaim("sub".into()))
        );
    }

    #[test]
    fn kubernetes_service_account() {
        let (iss, cfg) = issuer("    client-id: x\n    type: kubernetes\n");
        let c = claims(json!({"sub": "system:serviceaccount:ns1:sa1",
            "kubernetes.io": {"namespace": "ns1", "serviceaccount": {"name": "sa1", "uid": "u"}}}));
        let p = principal(&iss, &cfg, &c).expect("valid");
        assert_eq!(p.name, "system:serviceaccount:ns1:sa1");
        assert_eq!(
            p.san,
            San::Uri("https://kubernetes.io/namespaces/ns1/serviceaccounts/sa1".into())
        );
        assert_eq!(hex_exts(&p).len(), 3);
        let run = |v| principal(&iss, &cfg, &claims(v));
        assert_eq!(
            run(json!({"sub": "s"})),
            Err(IdentityError::MissingClaim("kubernetes.io".into()))
        );
        assert_eq!(
            run(json!({"sub": "s", "kubernetes.io": {"namespace": "ns1"}})),
            Err(IdentityError::MissingClaim(
                "kubernetes.io.serviceaccount.name".into()
            ))
        );
        assert_eq!(
            run(json!({"sub": "s", "kubernetes.io": {"namespace": 1}})),
            Err(IdentityError::ClaimType {
                claim: "kubernetes.io.namespace".into(),
                expected: "string"
            })
        );
    }

    #[test]
    fn spiffe_trust_domain() {
        let (iss, cfg) =
            issuer("    client-id: x\n    type: spiffe\n    spiffe-trust-domain: example.com\n");
        let c = claims(json!({"sub": "spiffe://example.com/ns/foo/sa/bar"}));
        let p = principal(&iss, &cfg, &c).expect("valid");
        assert_eq!(p.name, "spiffe://example.com/ns/foo/sa/bar");
        assert_eq!(p.san, San::Uri("spiffe://example.com/ns/foo/sa/bar".into()));
        let run = |s: &str| principal(&iss, &cfg, &claims(json!({ "sub": s })));
        assert_eq!(
            run("spiffe://other.com/foo"),
            Err(IdentityError::SpiffeTrustDomain {
                actual: "other.com".into(),
                expected: "example.com".into()
            })
        );
        assert_eq!(
            run("https://example.com/foo"),
            Err(IdentityError::InvalidSpiffeId(
                "https://example.com/foo".into()
            ))
        );
    }

    #[test]
    fn uri_subject_domain() {
        let (iss, cfg) =
            issuer("    client-id: x\n    type: uri\n    subject-domain: https://example.com\n");
        let p = principal(
            &iss,
            &cfg,
            &claims(json!({"sub": "https://example.com/users/1"})),
        )
        .expect("valid");
        assert_eq!(p.name, "https://example.com/users/1");
        assert_eq!(p.san, San::Uri("https://example.com/users/1".into()));
        let run = |s: &str| principal(&iss, &cfg, &claims(json!({ "sub": s })));
        assert_eq!(
            run("http://example.com/u"),
            Err(IdentityError::SubjectScheme {
                actual: "http".into(),
                expected: "https".into()
            })
        );
        assert_eq!(
            run("https://evil.com/u"),
            Err(IdentityError::SubjectHost {
                actual: "evil.com".into(),
                expected: "example.com".into()
            })
        );
        assert_eq!(run("alice@example.com"), Err(IdentityError::SubjectIsEmail));
        assert_eq!(
            IdentityError::SubjectHost {
                actual: "evil.com".into(),
                expected: "example.com".into()
            }
            .to_string(),
            "subject host \"evil.com\" does not match the subject domain host \"example.com\""
        );
    }

    #[test]
    fn username_other_name() {
        let (iss, cfg) =
            issuer("    client-id: x\n    type: username\n    subject-domain: example.com\n");
        let p = principal(&iss, &cfg, &claims(json!({"sub": "alice"}))).expect("valid");
        assert_eq!(p.name, "alice");
        assert_eq!(p.san, San::Username("alice!example.com".into()));
        assert_eq!(hex_exts(&p)[2], "1.3.6.1.4.1.57264.1.24=0c05616c696365");
        let run = |s: &str| principal(&iss, &cfg, &claims(json!({ "sub": s })));
        assert_eq!(run("a!b"), Err(IdentityError::SubjectHasBang));
        assert_eq!(run("alice@example.com"), Err(IdentityError::SubjectIsEmail));
        assert_eq!(run(""), Err(IdentityError::MissingClaim("sub".into())));
    }
}
