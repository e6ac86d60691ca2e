//! The issuer configuration Fulcio is run with (`--config-path`, JSON or YAML): which OIDC
//! issuers are trusted and as what identity type, the meta (wildcard) issuers and the
//! `ci-provider` templates; its validation, the issuer lookup for a token's `iss`, and the body
//! of `GET /api/v2/configuration`.
//!
//! Facts from fulcio `pkg/config/config.go` (`FulcioConfig`, `OIDCIssuer`, `IssuerMetadata`,
//! `parseConfig`, `validateConfig`, `MetaRegex`, `GetIssuer`, `ToIssuers`,
//! `issuerToChallengeClaim`), `pkg/certificate/extensions.go` (extension-template keys),
//! `fulcio.proto` (`OIDCIssuer`) and `config/identity/config.yaml`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::principal::template::Template;
use crate::principal::{CiField, claim_path, url};
use raw::{RawIssuer, RawMetadata, Scalar, parse_raw};

mod raw;

/// The identity types Fulcio knows (`IssuerType*` constants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IssuerType {
    Email,
    GithubWorkflow,
    GitlabPipeline,
    BuildkiteJob,
    CodefreshWorkflow,
    ChainguardIdentity,
    Kubernetes,
    Spiffe,
    Uri,
    Username,
    CiProvider,
}

impl IssuerType {
    pub const ALL: [IssuerType; 11] = [
        IssuerType::Email,
        IssuerType::GithubWorkflow,
        IssuerType::GitlabPipeline,
        IssuerType::BuildkiteJob,
        IssuerType::CodefreshWorkflow,
        IssuerType::ChainguardIdentity,
        IssuerType::Kubernetes,
        IssuerType::Spiffe,
        IssuerType::Uri,
        IssuerType::Username,
        IssuerType::CiProvider,
    ];

    /// The `type` string of the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            IssuerType::Email => "email",
            IssuerType::GithubWorkflow => "github-workflow",
            IssuerType::GitlabPipeline => "gitlab-pipeline",
            IssuerType::BuildkiteJob => "buildkite-job",
            IssuerType::CodefreshWorkflow => "codefresh-workflow",
            IssuerType::ChainguardIdentity => "chainguard-identity",
            IssuerType::Kubernetes => "kubernetes",
            IssuerType::Spiffe => "spiffe",
            IssuerType::Uri => "uri",
            IssuerType::Username => "username",
            IssuerType::CiProvider => "ci-provider",
        }
    }

    /// The type for a `type` string.
    pub fn from_name(name: &str) -> Option<IssuerType> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The claim clients are told to sign when `challenge-claim` is not set.
    pub fn default_challenge_claim(self) -> &'static str {
        match self {
            IssuerType::Email => "email",
            _ => "sub",
        }
    }
}

impl fmt::Display for IssuerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One trusted issuer, resolved for a token's `iss`. Optional settings are `None` when absent
/// or empty in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    /// The `iss` this entry accepts; for a meta issuer, the concrete `iss` that matched.
    pub issuer_url: String,
    /// The audience tokens must carry. Fulcio has no default: when empty, no token can pass
    /// (go-oidc refuses to verify without a client ID).
    pub client_id: String,
    pub issuer_type: IssuerType,
    /// `ci-provider` issuers: the key into `ci-issuer-metadata`.
    pub ci_provider: Option<String>,
    /// `email` issuers: JSONPath of the claim to use as the issuer extension.
    pub issuer_claim: Option<String>,
    /// `uri` (with scheme) and `username` (without) issuers.
    pub subject_domain: Option<String>,
    /// `spiffe` issuers.
    pub spiffe_trust_domain: Option<String>,
    /// Overrides the challenge claim advertised by `/api/v2/configuration` (only there).
    pub challenge_claim: Option<String>,
    pub description: Option<String>,
    pub contact: Option<String>,
    pub environment: Option<String>,
    /// PEM CA certificate(s) for TLS to this IdP.
    pub ca_cert: Option<String>,
    pub skip_email_verification: bool,
}

impl Issuer {
    /// The claim clients are told to sign (`issuerToChallengeClaim`).
    pub fn advertised_challenge_claim(&self) -> &str {
        self.challenge_claim
            .as_deref()
            .unwrap_or(self.issuer_type.default_challenge_claim())
    }
}

/// One `ci-issuer-metadata` entry, templates parsed.
#[derive(Debug, Clone)]
pub struct CiIssuerMetadata {
    /// Values for template keys the token lacks.
    pub default_template_values: BTreeMap<String, String>,
    /// Non-blank templates by extension, in extension order.
    pub(crate) extension_templates: Vec<(CiField, Template)>,
    pub subject_alternative_name_template: Template,
}

impl CiIssuerMetadata {
    /// The template for an extension, by its configuration key (`build-signer-uri`).
    pub fn extension_template(&self, key: &str) -> Option<&Template> {
        let field = CiField::from_config_key(key)?;
        self.extension_templates
            .iter()
            .find_map(|(f, t)| (*f == field).then_some(t))
    }
}

/// A parsed and validated issuer configuration.
#[derive(Debug, Clone, Default)]
pub struct IssuerConfig {
    oidc_issuers: BTreeMap<String, Issuer>,
    meta_issuers: BTreeMap<String, Issuer>,
    ci_issuer_metadata: BTreeMap<String, CiIssuerMetadata>,
}

/// Why a configuration was refused; names the issuer or provider at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("issuer configuration is not valid JSON or YAML: {0}")]
    Syntax(String),
    #[error("issuer {issuer}: {problem}")]
    Issuer { issuer: String, problem: String },
    #[error("ci-issuer-metadata {provider}: {problem}")]
    CiProvider { provider: String, problem: String },
}

/// The body of `GET /api/v2/configuration` (`dev.sigstore.fulcio.v2.Configuration`, protojson as
/// grpc-gateway emits it: camelCase, every field present).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Configuration {
    pub issuers: Vec<ConfiguredIssuer>,
}

/// One `OIDCIssuer` of the configuration response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfiguredIssuer {
    #[serde(flatten)]
    pub url: IssuerMatch,
    pub audience: String,
    pub challenge_claim: String,
    pub spiffe_trust_domain: String,
    pub issuer_type: String,
    pub subject_domain: String,
    pub skip_email_verification: bool,
}

/// The `issuer` oneof of `OIDCIssuer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum IssuerMatch {
    #[serde(rename = "issuerUrl")]
    Exact(String),
    #[serde(rename = "wildcardIssuerUrl")]
    Wildcard(String),
}

impl IssuerMatch {
    pub fn as_str(&self) -> &str {
        match self {
            IssuerMatch::Exact(s) | IssuerMatch::Wildcard(s) => s,
        }
    }
}

impl IssuerConfig {
    /// Parses and validates the file Fulcio would be run with (JSON or YAML, either key
    /// spelling). Unknown keys are ignored, as upstream does.
    pub fn parse(text: &str) -> Result<IssuerConfig, ConfigError> {
        let raw = parse_raw(text)?;
        let mut ci_issuer_metadata = BTreeMap::new();
        for (name, m) in raw.ci_issuer_metadata {
            let meta = build_metadata(&name, m)?;
            ci_issuer_metadata.insert(name, meta);
        }
        let mut config = IssuerConfig {
            ci_issuer_metadata,
            ..IssuerConfig::default()
        };
        for (key, r) in raw.oidc_issuers {
            let issuer = build_issuer(&key, r, false, &config.ci_issuer_metadata)?;
            config.oidc_issuers.insert(key, issuer);
        }
        for (key, r) in raw.meta_issuers {
            let issuer = build_issuer(&key, r, true, &config.ci_issuer_metadata)?;
            config.meta_issuers.insert(key, issuer);
        }
        Ok(config)
    }

    /// The issuer for a token's `iss`: an exact `oidc-issuers` key, else the first meta issuer
    /// (in pattern order) whose pattern matches, with `issuer_url` set to `iss`.
    pub fn lookup(&self, iss: &str) -> Option<Issuer> {
        if let Some(issuer) = self.oidc_issuers.get(iss) {
            return Some(issuer.clone());
        }
        self.meta_issuers
            .iter()
            .find(|(pattern, _)| meta_matches(pattern, iss))
            .map(|(_, issuer)| Issuer {
                issuer_url: iss.to_owned(),
                ..issuer.clone()
            })
    }

    /// The configured `oidc-issuers`, by URL.
    pub fn oidc_issuers(&self) -> impl Iterator<Item = &Issuer> {
        self.oidc_issuers.values()
    }

    /// The configured `meta-issuers` as (pattern, settings), by pattern.
    pub fn meta_issuers(&self) -> impl Iterator<Item = (&str, &Issuer)> {
        self.meta_issuers.iter().map(|(p, i)| (p.as_str(), i))
    }

    /// A `ci-issuer-metadata` entry.
    pub fn ci_provider(&self, name: &str) -> Option<&CiIssuerMetadata> {
        self.ci_issuer_metadata.get(name)
    }

    /// The body of `GET /api/v2/configuration` (`ToIssuers`), issuers sorted by URL.
    pub fn configuration(&self) -> Configuration {
        let entry = |url: IssuerMatch, i: &Issuer| ConfiguredIssuer {
            url,
            audience: i.client_id.clone(),
            challenge_claim: i.advertised_challenge_claim().to_owned(),
            spiffe_trust_domain: i.spiffe_trust_domain.clone().unwrap_or_default(),
            issuer_type: i.issuer_type.as_str().to_owned(),
            subject_domain: i.subject_domain.clone().unwrap_or_default(),
            skip_email_verification: i.skip_email_verification,
        };
        let exact = self
            .oidc_issuers
            .values()
            .map(|i| entry(IssuerMatch::Exact(i.issuer_url.clone()), i));
        let wildcard = self
            .meta_issuers
            .iter()
            .map(|(p, i)| entry(IssuerMatch::Wildcard(p.clone()), i));
        let mut issuers: Vec<ConfiguredIssuer> = exact.chain(wildcard).collect();
        issuers.sort_by(|a, b| a.url.as_str().cmp(b.url.as_str()));
        Configuration { issuers }
    }
}

/// `MetaRegex`: the pattern matches literally, except that each `*` matches one or more of
/// `[-_a-zA-Z0-9]`, anchored at both ends. A linear-time automaton, no backtracking.
pub fn meta_matches(pattern: &str, iss: &str) -> bool {
    let s = iss.as_bytes();
    let class = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    // reach[j]: the pattern consumed so far can end exactly before s[j].
    let mut reach = vec![false; s.len() + 1];
    reach[0] = true;
    for &p in pattern.as_bytes() {
        let mut next = vec![false; s.len() + 1];
        for j in 0..s.len() {
            next[j + 1] = if p == b'*' {
                class(s[j]) && (reach[j] || next[j])
            } else {
                reach[j] && s[j] == p
            };
        }
        reach = next;
    }
    reach[s.len()]
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn build_metadata(name: &str, raw: RawMetadata) -> Result<CiIssuerMetadata, ConfigError> {
    let problem = |problem: String| ConfigError::CiProvider {
        provider: name.to_owned(),
        problem,
    };
    let mut extension_templates: Vec<(CiField, Template)> = Vec::new();
    for (key, Scalar(source)) in raw.extension_templates {
        // `issuer`, `subject` and unknown keys are ignored, as upstream does.
        let Some(field) = CiField::from_config_key(&key) else {
            continue;
        };
        let template = Template::parse(&source)
            .map_err(|e| problem(format!("extension-templates {key}: {e}")))?;
        if extension_templates.iter().any(|(f, _)| *f == field) {
            return Err(problem(format!("extension-templates sets {key} twice")));
        }
        if !template.is_blank() {
            extension_templates.push((field, template));
        }
    }
    extension_templates.sort_by_key(|(f, _)| *f);
    let san = Template::parse(&raw.subject_alternative_name_template)
        .map_err(|e| problem(format!("subject-alternative-name-template: {e}")))?;
    if san.is_blank() {
        return Err(problem("subject-alternative-name-template is empty".into()));
    }
    Ok(CiIssuerMetadata {
        default_template_values: raw
            .default_template_values
            .into_iter()
            .map(|(k, Scalar(v))| (k, v))
            .collect(),
        extension_templates,
        subject_alternative_name_template: san,
    })
}

fn build_issuer(
    key: &str,
    raw: RawIssuer,
    meta: bool,
    providers: &BTreeMap<String, CiIssuerMetadata>,
) -> Result<Issuer, ConfigError> {
    let problem = |problem: String| ConfigError::Issuer {
        issuer: key.to_owned(),
        problem,
    };
    let issuer_type = match raw.issuer_type.as_str() {
        "" => return Err(problem("it has no type".into())),
        t => IssuerType::from_name(t).ok_or_else(|| problem(format!("unknown type {t:?}")))?,
    };
    if !meta && !raw.issuer_url.is_empty() && raw.issuer_url != key {
        return Err(problem(format!(
            "issuer-url {} differs from its key",
            raw.issuer_url
        )));
    }
    let issuer = Issuer {
        issuer_url: key.to_owned(),
        client_id: raw.client_id,
        issuer_type,
        ci_provider: non_empty(raw.ci_provider),
        issuer_claim: non_empty(raw.issuer_claim),
        subject_domain: non_empty(raw.subject_domain),
        spiffe_trust_domain: non_empty(raw.spiffe_trust_domain),
        challenge_claim: non_empty(raw.challenge_claim),
        description: non_empty(raw.description),
        contact: non_empty(raw.contact),
        environment: non_empty(raw.environment),
        ca_cert: non_empty(raw.ca_cert),
        skip_email_verification: raw.skip_email_verification,
    };
    validate(&issuer, meta, providers).map_err(problem)?;
    Ok(issuer)
}

/// `validateConfig` for one issuer; the error is the problem, in one sentence.
fn validate(
    issuer: &Issuer,
    meta: bool,
    providers: &BTreeMap<String, CiIssuerMetadata>,
) -> Result<(), String> {
    if issuer.client_id.trim().is_empty() {
        // go-oidc refuses every token for an empty client ID; say so at load time
        return Err("client-id is empty (tokens' aud must name it; Fulcio uses sigstore)".into());
    }
    if let Some(pem) = &issuer.ca_cert
        && !has_pem_certificate(pem)
    {
        return Err("ca-cert holds no PEM certificate".into());
    }
    if let Some(path) = &issuer.issuer_claim {
        if issuer.issuer_type != IssuerType::Email {
            return Err("only email issuers can use issuer-claim".into());
        }
        if claim_path(path).is_none() {
            return Err(format!(
                "issuer-claim {path:?} is not a JSONPath like $.a.b"
            ));
        }
    }
    let domain = issuer.subject_domain.as_deref().unwrap_or_default();
    let issuer_scheme_host = || match url::parse(&issuer.issuer_url) {
        Some(u) if !u.scheme.is_empty() => Ok((u.scheme, u.host.to_owned())),
        _ => Err(format!(
            "issuer URL for a {} issuer must contain a scheme",
            issuer.issuer_type
        )),
    };
    match issuer.issuer_type {
        IssuerType::Spiffe if meta => return Err("SPIFFE meta issuers are not supported".into()),
        IssuerType::Spiffe => match issuer.spiffe_trust_domain.as_deref() {
            None => return Err("spiffe issuer must have spiffe-trust-domain set".into()),
            Some(td) if url::spiffe_trust_domain(td).is_none() => {
                return Err(format!(
                    "spiffe-trust-domain {td:?} is not a valid trust domain"
                ));
            }
            Some(_) => {}
        },
        IssuerType::Uri => {
            if domain.is_empty() {
                return Err("uri issuer must have subject-domain set".into());
            }
            let d = url::parse(domain)
                .filter(|d| !d.scheme.is_empty())
                .ok_or_else(|| {
                    format!("subject-domain {domain:?} for a uri issuer must contain a scheme")
                })?;
            let (scheme, host) = issuer_scheme_host()?;
            if d.scheme != scheme {
                return Err(format!(
                    "subject-domain scheme {:?} and issuer scheme {scheme:?} do not match",
                    d.scheme
                ));
            }
            same_domain(d.host, &host)?;
        }
        IssuerType::Username => {
            if domain.is_empty() {
                return Err("username issuer must have subject-domain set".into());
            }
            match url::parse(domain) {
                Some(d) if d.scheme.is_empty() => {}
                _ => {
                    return Err(format!(
                        "subject-domain {domain:?} for a username issuer must be a bare domain without scheme"
                    ));
                }
            }
            let (_, host) = issuer_scheme_host()?;
            same_domain(domain, &host)?;
        }
        IssuerType::CiProvider => match issuer.ci_provider.as_deref() {
            None => return Err("ci-provider issuer must name a ci-provider".into()),
            Some(p) if !providers.contains_key(p) => {
                return Err(format!("ci-provider {p:?} is not in ci-issuer-metadata"));
            }
            Some(_) => {}
        },
        _ => {}
    }
    Ok(())
}

/// `validateAllowedDomain`: equal hosts, or the same last two DNS labels.
fn same_domain(subject: &str, issuer: &str) -> Result<(), String> {
    if subject == issuer {
        return Ok(());
    }
    let s: Vec<&str> = subject.split('.').collect();
    let i: Vec<&str> = issuer.split('.').collect();
    for (labels, host) in [(&s, subject), (&i, issuer)] {
        if labels.len() < 2 {
            return Err(format!("hostname {host:?} is too short"));
        }
    }
    if s[s.len() - 2..] == i[i.len() - 2..] {
        Ok(())
    } else {
        Err(format!(
            "subject-domain host {subject:?} and issuer host {issuer:?} differ in their top-level and second-level domains"
        ))
    }
}

/// Go's `AppendCertsFromPEM` succeeding: at least one CERTIFICATE block parses.
fn has_pem_certificate(pem: &str) -> bool {
    use der::DecodePem;
    const END: &str = "-----END CERTIFICATE-----";
    pem.split("-----BEGIN CERTIFICATE-----")
        .skip(1)
        .any(|block| {
            block.find(END).is_some_and(|end| {
                let text = format!("-----BEGIN CERTIFICATE-----{}{END}\n", &block[..end]);
                x509_cert::Certificate::from_pem(text.as_bytes()).is_ok()
            })
        })
}

#[cfg(test)]
mod tests;
