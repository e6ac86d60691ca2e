//! Tests of configuration parsing, validation, lookup and the configuration response.

use super::*;

const DATA: &str = include_str!("../../tests/data/fulcio-config.yaml");

fn one(body: &str) -> Result<IssuerConfig, ConfigError> {
    IssuerConfig::parse(&format!(
        "oidc-issuers:\n  https://accounts.example.com:\n    client-id: sigstore\n{body}"
    ))
}

fn problem(r: Result<IssuerConfig, ConfigError>) -> String {
    match r {
        Err(e) => e.to_string(),
        Ok(_) => "accepted".into(),
    }
}

#[test]
fn parses_the_upstream_shaped_file() {
    let cfg = IssuerConfig::parse(DATA).expect("valid");
    assert_eq!(cfg.oidc_issuers().count(), 10);
    assert_eq!(cfg.meta_issuers().count(), 3);
    let dex = cfg
        .lookup("https://oauth2.sigstack.test/auth")
        .expect("configured");
    assert_eq!(dex.issuer_type, IssuerType::Email);
    assert_eq!(dex.client_id, "sigstore");
    assert_eq!(
        dex.issuer_claim.as_deref(),
        Some("$.federated_claims.connector_id")
    );
    assert_eq!(dex.environment.as_deref(), Some("staging"));
    let corp = cfg
        .lookup("https://idp.corp.sigstack.test")
        .expect("configured");
    assert!(corp.skip_email_verification && corp.ca_cert.is_some());
    let gh = cfg
        .lookup("https://token.actions.githubusercontent.com")
        .expect("configured");
    assert_eq!(gh.ci_provider.as_deref(), Some("github-workflow"));
    let meta = cfg.ci_provider("github-workflow").expect("metadata");
    assert_eq!(meta.extension_templates.len(), 20);
    assert_eq!(
        meta.default_template_values.get("url").map(String::as_str),
        Some("https://github.com")
    );
    assert_eq!(
        meta.extension_template("BuildSignerURI")
            .map(Template::source),
        Some("{{ .url }}/{{ .job_workflow_ref }}")
    );
    assert_eq!(
        meta.subject_alternative_name_template.source(),
        "{{ .url }}/{{ .job_workflow_ref }}"
    );
    let eks = cfg
        .lookup("https://oidc.eks.eu-west-1.amazonaws.com/id/B02C93B6A2D30341")
        .expect("meta issuer");
    assert_eq!(
        eks.issuer_url,
        "https://oidc.eks.eu-west-1.amazonaws.com/id/B02C93B6A2D30341"
    );
    assert_eq!(eks.issuer_type, IssuerType::Kubernetes);
    assert!(cfg.lookup("https://unknown.example.com").is_none());
}

#[test]
fn json_spelling_null_values_and_unknown_keys() {
    let json = r#"{"OIDCIssuers": {"https://accounts.example.com": {"IssuerURL": "https://accounts.example.com",
        "ClientID": "sigstore", "Type": "email", "Contact": null, "SomethingNew": [1]}},
        "MetaIssuers": {"https://*.example.com": {"ClientID": "sigstore", "Type": "kubernetes"}},
        "CIIssuerMetadata": {"p": {"DefaultTemplateValues": {"n": 1},
            "ExtensionTemplates": {"BuildTrigger": "event", "Issuer": "x", "Unknown": "y"},
            "SubjectAlternativeNameTemplate": "{{.n}}"}}}"#;
    let cfg = IssuerConfig::parse(json).expect("valid");
    let i = cfg
        .lookup("https://accounts.example.com")
        .expect("configured");
    assert_eq!(i.client_id, "sigstore");
    // upstream has no default client ID and then refuses every token; we refuse the file
    let empty = json.replacen(r#""ClientID": "sigstore""#, r#""ClientID": """#, 1);
    assert!(problem(IssuerConfig::parse(&empty)).contains("client-id is empty"));
    assert_eq!(i.contact, None);
    assert_eq!(
        cfg.lookup("https://a-b_c.example.com")
            .map(|i| i.issuer_type),
        Some(IssuerType::Kubernetes)
    );
    let p = cfg.ci_provider("p").expect("metadata");
    assert_eq!(
        p.default_template_values.get("n").map(String::as_str),
        Some("1")
    );
    assert_eq!(p.extension_templates.len(), 1);
    let yaml = "oidc-issuers:\nmeta-issuers: ~\ndefine: [1, 2]\n";
    assert_eq!(
        IssuerConfig::parse(yaml).map(|c| c.oidc_issuers().count()),
        Ok(0)
    );
    assert_eq!(
        IssuerConfig::parse("").map(|c| c.configuration().issuers.len()),
        Ok(0)
    );
    assert!(matches!(
        IssuerConfig::parse("oidc-issuers: [\n"),
        Err(ConfigError::Syntax(_))
    ));
    assert!(matches!(
        IssuerConfig::parse("{\"OIDCIssuers\": 3}"),
        Err(ConfigError::Syntax(_))
    ));
}

#[test]
fn wildcards() {
    let m = meta_matches;
    assert!(m(
        "https://oidc.eks.*.amazonaws.com/id/*",
        "https://oidc.eks.us-west-2.amazonaws.com/id/B02C"
    ));
    assert!(m(
        "https://*.example.com/*/x",
        "https://a_b-9.example.com/Q/x"
    ));
    assert!(
        m("https://x/*-y", "https://x/a-b-y"),
        "needs backtracking in a naive matcher"
    );
    assert!(
        !m("https://*.example.com", "https://a.b.example.com"),
        "* must not match ."
    );
    assert!(!m("https://x/*", "https://x/a/b"), "* must not match /");
    assert!(
        !m("https://x/*", "https://x/"),
        "* matches at least one character"
    );
    assert!(!m("https://x/*", "https://x/a?b"));
    assert!(!m("https://x/*", "https://x/ä"));
    assert!(
        !m("https://x.com/*", "http://localhost:3000?https://x.com/a"),
        "anchored at the start"
    );
    assert!(
        !m("https://x.com/*", "https://x.com/a/"),
        "anchored at the end"
    );
    assert!(!m("https://x.com/a", "https://xxcom/a"), ". is literal");
    assert!(m("https://x.com/a", "https://x.com/a"));
}

#[test]
fn configuration_body() {
    let text = "oidc-issuers:\n  https://b.example.com:\n    client-id: sigstore\n    type: email\n    skip-email-verification: true\n  https://s.example.com:\n    client-id: c\n    type: spiffe\n    spiffe-trust-domain: example.com\n  https://u.example.com:\n    client-id: u\n    type: username\n    subject-domain: example.com\n    challenge-claim: preferred_username\nmeta-issuers:\n  https://*.a.example.com:\n    client-id: k\n    type: kubernetes\n";
    let cfg = IssuerConfig::parse(text).expect("valid");
    let body = serde_json::to_string(&cfg.configuration()).expect("serializes");
    assert_eq!(
        body,
        concat!(
            r#"{"issuers":["#,
            r#"{"wildcardIssuerUrl":"https://*.a.example.com","audience":"k","challengeClaim":"sub","spiffeTrustDomain":"","issuerType":"kubernetes","subjectDomain":"","skipEmailVerification":false},"#,
            r#"{"issuerUrl":"https://b.example.com","audience":"sigstore","challengeClaim":"email","spiffeTrustDomain":"","issuerType":"email","subjectDomain":"","skipEmailVerification":true},"#,
            r#"{"issuerUrl":"https://s.example.com","audience":"c","challengeClaim":"sub","spiffeTrustDomain":"example.com","issuerType":"spiffe","subjectDomain":"","skipEmailVerification":false},"#,
            r#"{"issuerUrl":"https://u.example.com","audience":"u","challengeClaim":"preferred_username","spiffeTrustDomain":"","issuerType":"username","subjectDomain":"example.com","skipEmailVerification":false}"#,
            "]}"
        )
    );
    let back: Configuration = serde_json::from_str(&body).expect("round trip");
    assert_eq!(back, cfg.configuration());
}

#[test]
fn validation_failures_name_issuer_and_problem() {
    let at = |p: &str| format!("issuer https://accounts.example.com: {p}");
    for (body, want) in [
        ("    description: x\n", at("it has no type")),
        ("    type: github\n", at("unknown type \"github\"")),
        (
            "    type: email\n    issuer-url: https://other.example.com\n",
            at("issuer-url https://other.example.com differs from its key"),
        ),
        (
            "    type: email\n    ca-cert: nope\n",
            at("ca-cert holds no PEM certificate"),
        ),
        (
            "    type: kubernetes\n    issuer-claim: $.a\n",
            at("only email issuers can use issuer-claim"),
        ),
        (
            "    type: email\n    issuer-claim: a.b\n",
            at("issuer-claim \"a.b\" is not a JSONPath like $.a.b"),
        ),
        (
            "    type: spiffe\n",
            at("spiffe issuer must have spiffe-trust-domain set"),
        ),
        (
            "    type: spiffe\n    spiffe-trust-domain: Bad_Domain!\n",
            at("spiffe-trust-domain \"Bad_Domain!\" is not a valid trust domain"),
        ),
        (
            "    type: uri\n",
            at("uri issuer must have subject-domain set"),
        ),
        (
            "    type: uri\n    subject-domain: example.com\n",
            at("subject-domain \"example.com\" for a uri issuer must contain a scheme"),
        ),
        (
            "    type: uri\n    subject-domain: http://example.com\n",
            at("subject-domain scheme \"http\" and issuer scheme \"https\" do not match"),
        ),
        (
            "    type: uri\n    subject-domain: https://example.org\n",
            at(
                "subject-domain host \"example.org\" and issuer host \"accounts.example.com\" differ in their top-level and second-level domains",
            ),
        ),
        (
            "    type: uri\n    subject-domain: https://localhost\n",
            at("hostname \"localhost\" is too short"),
        ),
        (
            "    type: username\n",
            at("username issuer must have subject-domain set"),
        ),
        (
            "    type: username\n    subject-domain: https://example.com\n",
            at(
                "subject-domain \"https://example.com\" for a username issuer must be a bare domain without scheme",
            ),
        ),
        (
            "    type: username\n    subject-domain: evil.com\n",
            at(
                "subject-domain host \"evil.com\" and issuer host \"accounts.example.com\" differ in their top-level and second-level domains",
            ),
        ),
        (
            "    type: ci-provider\n",
            at("ci-provider issuer must name a ci-provider"),
        ),
        (
            "    type: ci-provider\n    ci-provider: gh\n",
            at("ci-provider \"gh\" is not in ci-issuer-metadata"),
        ),
    ] {
        assert_eq!(problem(one(body)), want, "{body}");
    }
    for ok in [
        "    type: uri\n    subject-domain: https://users.example.com\n",
        "    type: username\n    subject-domain: example.com\n",
        "    type: spiffe\n    spiffe-trust-domain: spiffe://example.com\n",
    ] {
        assert!(one(ok).is_ok(), "{ok}");
    }
    let meta = "meta-issuers:\n  https://*.example.com:\n    client-id: sigstore\n    type: spiffe\n    spiffe-trust-domain: example.com\n";
    assert_eq!(
        problem(IssuerConfig::parse(meta)),
        "issuer https://*.example.com: SPIFFE meta issuers are not supported"
    );
    let yaml = "oidc-issuers:\n  https://x.example.com:\n    type: uri\n    issuer-url: ftp://x.example.com\n";
    assert!(problem(IssuerConfig::parse(yaml)).contains("differs from its key"));
}

#[test]
fn template_errors_fail_the_config() {
    let with = |templates: &str, san: &str| {
        IssuerConfig::parse(&format!(
            "ci-issuer-metadata:\n  p:\n    extension-templates:\n{templates}    subject-alternative-name-template: '{san}'\n"
        ))
    };
    assert_eq!(
        problem(with(
            "      build-trigger: '{{ range .x }}'\n",
            "{{ .url }}"
        )),
        "ci-issuer-metadata p: extension-templates build-trigger: {{range}} is not supported"
    );
    assert_eq!(
        problem(with("      build-trigger: 'event'\n", "{{ .url ")),
        "ci-issuer-metadata p: subject-alternative-name-template: unclosed action: {{ without }}"
    );
    assert_eq!(
        problem(with(
            "      build-trigger: 'a'\n      BuildTrigger: 'b'\n",
            "x"
        )),
        "ci-issuer-metadata p: extension-templates sets build-trigger twice"
    );
    assert_eq!(
        problem(with("      build-trigger: 'a'\n", " ")),
        "ci-issuer-metadata p: subject-alternative-name-template is empty"
    );
}
