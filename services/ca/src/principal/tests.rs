//! Shared fixtures for the principal tests, and the tests of the e-mail principal and of the
//! extension rendering.

use super::*;
use serde_json::json;

/// A config holding one issuer of the given YAML body, and that issuer.
pub(crate) fn issuer(yaml_body: &str) -> (Issuer, IssuerConfig) {
    let text = format!("oidc-issuers:\n  https://issuer.example.com:\n{yaml_body}");
    let cfg = IssuerConfig::parse(&text).expect("test config is valid");
    let iss = cfg
        .lookup("https://issuer.example.com")
        .expect("configured");
    (iss, cfg)
}

pub(crate) fn claims(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// `oid=hex` lines, for exact comparisons.
pub(crate) fn hex_exts(p: &Principal) -> Vec<String> {
    p.extensions
        .iter()
        .map(|e| format!("{}={}", e.oid, hex(&e.value)))
        .collect()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn github_claims() -> Value {
    json!({
        "iss": "https://token.actions.githubusercontent.com",
        "sub": "repo:o/r:ref:refs/heads/main",
        "job_workflow_ref": "o/r/.github/workflows/rel.yml@refs/heads/main",
        "sha": "abc123", "event_name": "push", "repository": "o/r", "workflow": "rel",
        "ref": "refs/heads/main", "job_workflow_sha": "abc123",
        "runner_environment": "github-hosted", "repository_id": "11",
        "repository_owner": "o", "repository_owner_id": "22",
        "repository_visibility": "public",
        "workflow_ref": "o/r/.github/workflows/rel.yml@refs/heads/main",
        "workflow_sha": "abc123", "run_id": "33", "run_attempt": "1",
    })
}

pub(crate) const GITHUB_EXTS: [&str; 21] = [
    "1.3.6.1.4.1.57264.1.1=68747470733a2f2f746f6b656e2e616374696f6e732e67697468756275736572636f6e74656e742e636f6d",
    "1.3.6.1.4.1.57264.1.2=70757368",
    "1.3.6.1.4.1.57264.1.3=616263313233",
    "1.3.6.1.4.1.57264.1.4=72656c",
    "1.3.6.1.4.1.57264.1.5=6f2f72",
    "1.3.6.1.4.1.57264.1.6=726566732f68656164732f6d61696e",
    "1.3.6.1.4.1.57264.1.8=0c2b68747470733a2f2f746f6b656e2e616374696f6e732e67697468756275736572636f6e74656e742e636f6d",
    "1.3.6.1.4.1.57264.1.9=0c4068747470733a2f2f6769746875622e636f6d2f6f2f722f2e6769746875622f776f726b666c6f77732f72656c2e796d6c40726566732f68656164732f6d61696e",
    "1.3.6.1.4.1.57264.1.10=0c06616263313233",
    "1.3.6.1.4.1.57264.1.11=0c0d6769746875622d686f73746564",
    "1.3.6.1.4.1.57264.1.12=0c1668747470733a2f2f6769746875622e636f6d2f6f2f72",
    "1.3.6.1.4.1.57264.1.13=0c06616263313233",
    "1.3.6.1.4.1.57264.1.14=0c0f726566732f68656164732f6d61696e",
    "1.3.6.1.4.1.57264.1.15=0c023131",
    "1.3.6.1.4.1.57264.1.16=0c1468747470733a2f2f6769746875622e636f6d2f6f",
    "1.3.6.1.4.1.57264.1.17=0c023232",
    "1.3.6.1.4.1.57264.1.18=0c4068747470733a2f2f6769746875622e636f6d2f6f2f722f2e6769746875622f776f726b666c6f77732f72656c2e796d6c40726566732f68656164732f6d61696e",
    "1.3.6.1.4.1.57264.1.19=0c06616263313233",
    "1.3.6.1.4.1.57264.1.20=0c0470757368",
    "1.3.6.1.4.1.57264.1.21=0c3168747470733a2f2f6769746875622e636f6d2f6f2f722f616374696f6e732f72756e732f33332f617474656d7074732f31",
    "1.3.6.1.4.1.57264.1.22=0c067075626c6963",
];
pub(crate) const GITHUB_SUB_EXT: &str =
    "1.3.6.1.4.1.57264.1.24=0c1c7265706f3a6f2f723a7265663a726566732f68656164732f6d61696e";

pub(crate) fn data_config() -> IssuerConfig {
    IssuerConfig::parse(include_str!("../../tests/data/fulcio-config.yaml")).expect("valid")
}

const EMAIL: &str = "    client-id: sigstore\n    type: email\n";

#[test]
fn email_happy_path_exact_bytes() {
    let (iss, cfg) = issuer(EMAIL);
    let c = claims(json!({"iss": "https://issuer.example.com", "sub": "u1",
                          "email": "alice@example.com", "email_verified": true}));
    let p = principal(&iss, &cfg, &c).expect("valid");
    assert_eq!(p.name, "alice@example.com");
    assert_eq!(p.san, San::Email("alice@example.com".into()));
    assert_eq!(
        hex_exts(&p),
        [
            "1.3.6.1.4.1.57264.1.1=68747470733a2f2f6973737565722e6578616d706c652e636f6d",
            "1.3.6.1.4.1.57264.1.8=0c1a68747470733a2f2f6973737565722e6578616d706c652e636f6d",
            "1.3.6.1.4.1.57264.1.24=0c027531",
        ]
    );
}

#[test]
fn email_issuer_claim_and_verification_forms() {
    let body = format!("{EMAIL}    issuer-claim: $.federated_claims.connector_id\n");
    let (iss, cfg) = issuer(&body);
    let c = claims(json!({"email": "a@b.dev", "email_verified": "True",
                          "federated_claims": {"connector_id": "https://github.com/login/oauth"}}));
    let p = principal(&iss, &cfg, &c).expect("valid");
    assert_eq!(
        hex_exts(&p),
        [
            "1.3.6.1.4.1.57264.1.1=68747470733a2f2f6769746875622e636f6d2f6c6f67696e2f6f61757468",
            "1.3.6.1.4.1.57264.1.8=0c1e68747470733a2f2f6769746875622e636f6d2f6c6f67696e2f6f61757468",
        ]
    );
    let c = claims(json!({"email": "a@b.dev", "email_verified": true}));
    assert_eq!(
        principal(&iss, &cfg, &c),
        Err(IdentityError::MissingClaim(
            "$.federated_claims.connector_id".into()
        ))
    );
}

#[test]
fn email_errors() {
    let (iss, cfg) = issuer(EMAIL);
    let run = |v: Value| principal(&iss, &cfg, &claims(v));
    assert_eq!(
        run(json!({"sub": "x"})),
        Err(IdentityError::MissingClaim("email".into()))
    );
    assert_eq!(
        run(json!({"email": "a@b.dev"})),
        Err(IdentityError::EmailNotVerified)
    );
    assert_eq!(
        run(json!({"email": "a@b.dev", "email_verified": false})),
        Err(IdentityError::EmailNotVerified)
    );
    assert_eq!(
        run(json!({"email": "a@b.dev", "email_verified": "yes"})),
        Err(IdentityError::InvalidEmailVerified)
    );
    assert_eq!(
        run(json!({"email": 7, "email_verified": true})),
        Err(IdentityError::ClaimType {
            claim: "email".into(),
            expected: "string"
        })
    );
    assert_eq!(
        run(json!({"email": "not-an-email", "email_verified": true})),
        Err(IdentityError::InvalidEmail("not-an-email".into()))
    );
    let (iss, cfg) = issuer(&format!("{EMAIL}    skip-email-verification: true\n"));
    let p = principal(&iss, &cfg, &claims(json!({"email": "a@b.dev"}))).expect("skip");
    assert_eq!(p.name, "a@b.dev");
}

#[test]
fn claim_paths() {
    assert_eq!(claim_path("$.a.b"), Some(vec!["a".into(), "b".into()]));
    assert_eq!(
        claim_path("$['a.b'][\"c\"].d"),
        Some(vec!["a.b".into(), "c".into(), "d".into()])
    );
    for bad in ["", "$", "a.b", "$.", "$..a", "$[a]", "$['a'"] {
        assert_eq!(claim_path(bad), None, "{bad}");
    }
}

#[test]
fn render_order_encoding_and_empty_issuer() {
    let mut v = ExtensionValues::new("i", "s");
    v.set(CiField::DeploymentEnvironment, "prod");
    v.set(CiField::GithubWorkflowRef, "r");
    v.set(CiField::BuildSignerUri, "");
    let oids: Vec<String> = v
        .render()
        .expect("ok")
        .iter()
        .map(|e| e.oid.to_string())
        .collect();
    assert_eq!(
        oids,
        [
            "1.3.6.1.4.1.57264.1.1",
            "1.3.6.1.4.1.57264.1.6",
            "1.3.6.1.4.1.57264.1.8",
            "1.3.6.1.4.1.57264.1.23",
            "1.3.6.1.4.1.57264.1.24"
        ]
    );
    let long = "x".repeat(200);
    let e = utf8(Extension::BUILD_TRIGGER, &long).expect("ok");
    assert_eq!(&e.value[..3], &[0x0c, 0x81, 200]);
    assert_eq!(
        ExtensionValues::new("", "s").render(),
        Err(IdentityError::EmptyIssuer)
    );
    assert_eq!(
        CiField::from_config_key("BuildSignerURI"),
        Some(CiField::BuildSignerUri)
    );
    assert_eq!(
        CiField::from_config_key("run-invocation-uri"),
        Some(CiField::RunInvocationUri)
    );
    assert_eq!(CiField::from_config_key("issuer"), None);
}
