//! `ci-provider` principals (fulcio `pkg/identity/ciprovider/principal.go`): SAN and extensions
//! rendered from the `ci-issuer-metadata` templates of the issuer's provider.

use serde_json::{Map, Value};

use super::template::{Data, Template};
use super::{ExtensionValues, IdentityError, Principal, required, uri_san};
use crate::config::{Issuer, IssuerConfig};

/// `ci-provider` (fulcio `pkg/identity/ciprovider/principal.go`): SAN and extensions rendered
/// from the provider's templates over the claims and its default values.
pub(super) fn ci_provider(
    issuer: &Issuer,
    config: &IssuerConfig,
    claims: &Map<String, Value>,
) -> Result<Principal, IdentityError> {
    let misconfigured = |reason: String| IdentityError::Misconfigured {
        issuer: issuer.issuer_url.clone(),
        reason,
    };
    let provider = issuer
        .ci_provider
        .as_deref()
        .ok_or_else(|| misconfigured("it names no ci-provider".into()))?;
    let meta = config.ci_provider(provider).ok_or_else(|| {
        misconfigured(format!(
            "ci-provider {provider} is not in ci-issuer-metadata"
        ))
    })?;
    let sub = required(claims, "sub")?;
    let data = Data {
        claims,
        defaults: &meta.default_template_values,
    };
    let san_template = &meta.subject_alternative_name_template;
    if san_template.is_blank() {
        return Err(misconfigured(
            "its subject-alternative-name-template is empty".into(),
        ));
    }
    let rendered = |target: &str, t: &Template| {
        t.render(&data).map_err(|e| IdentityError::Template {
            target: target.to_owned(),
            reason: e.to_string(),
        })
    };
    let san = rendered("the subject alternative name", san_template)?;
    let mut e = ExtensionValues::new(issuer.issuer_url.clone(), sub);
    for (field, template) in &meta.extension_templates {
        if !template.is_blank() {
            e.set(*field, rendered(field.yaml_name(), template)?);
        }
    }
    Ok(Principal {
        name: sub.to_owned(),
        san: uri_san("subject alternative name", &san)?,
        extensions: e.render()?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{
        GITHUB_EXTS, GITHUB_SUB_EXT, claims, data_config, github_claims, hex_exts,
    };
    use super::super::{San, principal};
    use super::*;
    use serde_json::json;

    #[test]
    fn ci_provider_github_exact_bytes_match_fixed_mapping() {
        let cfg = data_config();
        let iss = cfg
            .lookup("https://token.actions.githubusercontent.com")
            .expect("configured");
        let mut c = claims(github_claims());
        c.insert("environment".into(), json!("production"));
        let p = principal(&iss, &cfg, &c).expect("valid");
        assert_eq!(p.name, "repo:o/r:ref:refs/heads/main");
        assert_eq!(
            p.san,
            San::Uri("https://github.com/o/r/.github/workflows/rel.yml@refs/heads/main".into())
        );
        let mut want: Vec<&str> = GITHUB_EXTS.to_vec();
        want.push("1.3.6.1.4.1.57264.1.23=0c0a70726f64756374696f6e");
        want.push(GITHUB_SUB_EXT);
        assert_eq!(hex_exts(&p), want);
        // Meta issuer, numeric claims rendered as Go does, optional environment absent.
        let iss = cfg
            .lookup("https://token.actions.githubusercontent.com/acme")
            .expect("meta");
        let mut c = claims(github_claims());
        c.insert("run_id".into(), json!(33));
        let p = principal(&iss, &cfg, &c).expect("valid");
        assert!(hex_exts(&p).contains(&GITHUB_EXTS[19].to_owned()));
        assert!(
            !hex_exts(&p)
                .iter()
                .any(|e| e.starts_with("1.3.6.1.4.1.57264.1.23="))
        );
    }

    #[test]
    fn ci_provider_gitlab_template_and_errors() {
        let cfg = data_config();
        let iss = cfg.lookup("https://gitlab.com").expect("configured");
        let mut c = claims(json!({
            "sub": "project_path:g/p:ref_type:tag:ref:v1", "project_path": "g/p",
            "ci_config_ref_uri": "gitlab.com/g/p//.gitlab-ci.yml@refs/tags/v1",
            "ci_config_sha": "def", "runner_environment": "gitlab-hosted", "sha": "def",
            "ref_type": "tag", "ref": "v1", "project_id": "7", "namespace_path": "g",
            "namespace_id": "8", "pipeline_source": "push", "job_id": "99",
            "project_visibility": "private",
        }));
        let p = principal(&iss, &cfg, &c).expect("valid");
        assert_eq!(
            p.san,
            San::Uri("https://gitlab.com/g/p//.gitlab-ci.yml@refs/tags/v1".into())
        );
        let exts = hex_exts(&p);
        assert!(exts.contains(&"1.3.6.1.4.1.57264.1.14=0c0c726566732f746167732f7631".to_owned()));
        assert!(exts.contains(&"1.3.6.1.4.1.57264.1.21=0c2068747470733a2f2f6769746c61622e636f6d2f672f702f2d2f6a6f62732f3939".to_owned()));
        c.remove("job_id");
        assert_eq!(
            principal(&iss, &cfg, &c),
            Err(IdentityError::Template {
                target: "run-invocation-uri".into(),
                reason: "claim job_id is missing and has no default value".into(),
            })
        );
        c.insert("job_id".into(), json!("99"));
        c.remove("project_id");
        assert_eq!(
            principal(&iss, &cfg, &c).map_err(|e| e.to_string()),
            Err("cannot render source-repository-identifier from the token: claim project_id is missing and has no default value".into())
        );
        c.insert("project_id".into(), json!("7"));
        c.remove("sub");
        assert_eq!(
            principal(&iss, &cfg, &c),
            Err(IdentityError::MissingClaim("sub".into()))
        );
    }

    #[test]
    fn ci_provider_san_must_be_a_url() {
        let text = "oidc-issuers:\n  https://ci.example.com:\n    client-id: x\n    type: ci-provider\n    ci-provider: p\nci-issuer-metadata:\n  p:\n    subject-alternative-name-template: '{{ .sub }}'\n";
        let cfg = IssuerConfig::parse(text).expect("valid");
        let iss = cfg.lookup("https://ci.example.com").expect("configured");
        let p = principal(
            &iss,
            &cfg,
            &claims(json!({"sub": "https://ci.example.com/job 1"})),
        );
        assert_eq!(
            p.map(|p| p.san),
            Ok(San::Uri("https://ci.example.com/job%201".into()))
        );
        let p = principal(&iss, &cfg, &claims(json!({"sub": ":nope"})));
        assert_eq!(
            p,
            Err(IdentityError::InvalidUrl {
                what: "subject alternative name".into(),
                value: ":nope".into()
            })
        );
    }
}
