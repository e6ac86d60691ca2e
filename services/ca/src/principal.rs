//! Verified token claims to a principal: the challenge a proof of possession signs, the one
//! Subject Alternative Name and the Fulcio certificate extensions.
//!
//! Facts from fulcio `pkg/identity/<type>/principal.go` (one function per issuer type: `ci` for
//! the fixed CI mappings, `ci_provider` for the template-driven one, `workload` for the others),
//! `pkg/certificate/extensions.go` (OIDs, encodings and order of `Extensions.Render`) and
//! `pkg/oauthflow/oidc.go` (e-mail and issuer claims).

mod ci;
mod ci_provider;
pub(crate) mod template;
pub(crate) mod url;
mod workload;

use der::Encode;
use der::asn1::Utf8StringRef;
use der::oid::ObjectIdentifier;
use serde_json::{Map, Value};

use crate::config::{Issuer, IssuerConfig, IssuerType};

pub use template::{Template, TemplateError};

/// Who the certificate is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The challenge: what a proof of possession signs (UTF-8 bytes of this string).
    pub name: String,
    /// The certificate's only Subject Alternative Name.
    pub san: San,
    /// Fulcio extensions in `Extensions.Render` order, none critical.
    pub extensions: Vec<Extension>,
}

/// The Subject Alternative Name of a principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum San {
    /// rfc822Name.
    Email(String),
    /// uniformResourceIdentifier.
    Uri(String),
    /// otherName with type-id [`Extension::OTHERNAME_USERNAME`] and value
    /// `[0] EXPLICIT UTF8String "<sub>!<subject-domain>"`; the SAN extension is critical.
    Username(String),
}

/// One non-critical certificate extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    pub oid: ObjectIdentifier,
    /// The exact bytes that go inside the extnValue OCTET STRING.
    pub value: Vec<u8>,
}

const fn fulcio_oid(s: &str) -> ObjectIdentifier {
    ObjectIdentifier::new_unwrap(s)
}

impl Extension {
    /// Deprecated issuer, raw bytes.
    pub const ISSUER_V1: ObjectIdentifier = fulcio_oid("1.3.6.1.4.1.57264.1.1");
    pub const GITHUB_WORKFLOW_TRIGGER: ObjectIdentifier = fulcio_oid("1.3.6.1.4.1.57264.1.2");
    pub const GITHUB_WORKFLOW_SHA: ObjectIdentifier = fulcio_oid("1.3.6.1.4.1.57264.1.3");
    pub const GITHUB_WORKFLOW_NAME: ObjectIdentifier = fulcio_oid("1.3.6.1.4.1.57264.1.4");
    pub const GITHUB_WORKFLOW_REPOSITORY: ObjectIdentifier = fulcio_oid("1.3.6.1.4.1.57264.1.5");
    pub const GITHUB_WORKFLOW_REF: ObjectIdentifier = fulcio_oid("1.3.6.1.4.1.57264.1.6");
    /// The otherName type-id of username SANs (not an extension of its own).
    pub const OTHERNAME_USERNAME: ObjectIdentifier = fulcio_oid("1.3.6.1.4.1.57264.1.7");
    pub const ISSUER_V2: ObjectIdentifier = fulcio_oid("1.3.6.1.4.1.57264.1.8");
    pub const BUILD_SIGNER_URI: ObjectIdentifier = fulcio_oid("1.3.6.1.4.1.57264.1.9");
    pub const BUILD_SIGNER_DIGEST: ObjectIdentifier = fulcio_oid("1.3.6.1.4.1.57264.1.10");
    pub const RUNNER_ENVIRONMENT: ObjectIdentifier = fulcio_oid("1.3.6.1.4.1.57264.1.11");
    pub const SOURCE_REPOSITORY_URI: ObjectIdentifier = fulcio_oid("1.3.6.1.4.1.57264.1.12");
    pub const SOURCE_REPOSITORY_DIGEST: ObjectIdentifier = fulcio_oid("1.3.6.1.4.1.57264.1.13");
    pub const SOURCE_REPOSITORY_REF: ObjectIdentifier = fulcio_oid("1.3.6.1.4.1.57264.1.14");
    pub const SOURCE_REPOSITORY_IDENTIFIER: ObjectIdentifier = fulcio_oid("1.3.6.1.4.1.57264.1.15");
    pub const SOURCE_REPOSITORY_OWNER_URI: ObjectIdentifier = fulcio_oid("1.3.6.1.4.1.57264.1.16");
    pub const SOURCE_REPOSITORY_OWNER_IDENTIFIER: ObjectIdentifier =
        fulcio_oid("1.3.6.1.4.1.57264.1.17");
    pub const BUILD_CONFIG_URI: ObjectIdentifier = fulcio_oid("1.3.6.1.4.1.57264.1.18");
    pub const BUILD_CONFIG_DIGEST: ObjectIdentifier = fulcio_oid("1.3.6.1.4.1.57264.1.19");
    pub const BUILD_TRIGGER: ObjectIdentifier = fulcio_oid("1.3.6.1.4.1.57264.1.20");
    pub const RUN_INVOCATION_URI: ObjectIdentifier = fulcio_oid("1.3.6.1.4.1.57264.1.21");
    pub const SOURCE_REPOSITORY_VISIBILITY_AT_SIGNING: ObjectIdentifier =
        fulcio_oid("1.3.6.1.4.1.57264.1.22");
    pub const DEPLOYMENT_ENVIRONMENT: ObjectIdentifier = fulcio_oid("1.3.6.1.4.1.57264.1.23");
    pub const TOKEN_SUBJECT: ObjectIdentifier = fulcio_oid("1.3.6.1.4.1.57264.1.24");
}

/// What is wrong with a token (or, for `Misconfigured`, with the issuer configuration).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    #[error("token has no {0} claim")]
    MissingClaim(String),
    #[error("claim {claim} is not a {expected}")]
    ClaimType {
        claim: String,
        expected: &'static str,
    },
    #[error("email is not verified")]
    EmailNotVerified,
    #[error("claim email_verified is neither true nor false")]
    InvalidEmailVerified,
    #[error("email {0:?} is not a valid email address")]
    InvalidEmail(String),
    #[error("subject must not be an email address")]
    SubjectIsEmail,
    #[error("subject must not contain the character '!'")]
    SubjectHasBang,
    #[error("subject URI scheme {actual:?} does not match the subject domain scheme {expected:?}")]
    SubjectScheme { actual: String, expected: String },
    #[error("subject host {actual:?} does not match the subject domain host {expected:?}")]
    SubjectHost { actual: String, expected: String },
    #[error("subject {0:?} is not a valid SPIFFE ID")]
    InvalidSpiffeId(String),
    #[error("SPIFFE ID trust domain {actual:?} does not match the trust domain {expected:?}")]
    SpiffeTrustDomain { actual: String, expected: String },
    #[error("claim ref_type {0:?} is neither branch nor tag")]
    InvalidRefType(String),
    #[error("{what} {value:?} is not a valid URL")]
    InvalidUrl { what: String, value: String },
    #[error("cannot render {target} from the token: {reason}")]
    Template { target: String, reason: String },
    #[error("token issuer is empty")]
    EmptyIssuer,
    #[error("issuer {issuer} is misconfigured: {reason}")]
    Misconfigured { issuer: String, reason: String },
    #[error("extension value cannot be DER-encoded: {0}")]
    Encoding(String),
}

/// Turns claims that token validation already accepted (signature, `iss` = `issuer.issuer_url`,
/// audience, times) into the principal Fulcio would certify for this issuer type.
pub fn principal(
    issuer: &Issuer,
    config: &IssuerConfig,
    claims: &Map<String, Value>,
) -> Result<Principal, IdentityError> {
    match issuer.issuer_type {
        IssuerType::Email => email(issuer, claims),
        IssuerType::GithubWorkflow => ci::github(issuer, claims),
        IssuerType::GitlabPipeline => ci::gitlab(issuer, claims),
        IssuerType::BuildkiteJob => ci::buildkite(issuer, claims),
        IssuerType::CodefreshWorkflow => ci::codefresh(issuer, claims),
        IssuerType::CiProvider => ci_provider::ci_provider(issuer, config, claims),
        IssuerType::ChainguardIdentity => workload::chainguard(issuer, claims),
        IssuerType::Kubernetes => workload::kubernetes(issuer, claims),
        IssuerType::Spiffe => workload::spiffe(issuer, claims),
        IssuerType::Uri => workload::uri(issuer, claims),
        IssuerType::Username => workload::username(issuer, claims),
    }
}

/// `email` (fulcio `pkg/identity/email/principal.go`).
fn email(issuer: &Issuer, claims: &Map<String, Value>) -> Result<Principal, IdentityError> {
    let address = claim_str(claims, "email")?;
    let verified = email_verified(claims)?;
    if address.is_empty() {
        return Err(IdentityError::MissingClaim("email".into()));
    }
    if !issuer.skip_email_verification && !verified {
        return Err(IdentityError::EmailNotVerified);
    }
    if !url::is_email(address) {
        return Err(IdentityError::InvalidEmail(address.to_owned()));
    }
    let iss = match &issuer.issuer_claim {
        None => issuer.issuer_url.clone(),
        Some(path) => claim_at_path(claims, path)?,
    };
    let exts = ExtensionValues::new(iss, claim_str(claims, "sub")?);
    Ok(Principal {
        name: address.to_owned(),
        san: San::Email(address.to_owned()),
        extensions: exts.render()?,
    })
}

/// `email_verified` as sigstore's `stringAsBool`: absent is false; JSON booleans or the strings
/// `true`/`True`/`false`/`False`; anything else (null included) is an error.
pub(crate) fn email_verified(claims: &Map<String, Value>) -> Result<bool, IdentityError> {
    match claims.get("email_verified") {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s == "true" || s == "True" => Ok(true),
        Some(Value::String(s)) if s == "false" || s == "False" => Ok(false),
        Some(_) => Err(IdentityError::InvalidEmailVerified),
    }
}

/// Splits a simple JSONPath (`$.a.b`, `$['a'].b`) into keys; `None` if it is not one.
pub(crate) fn claim_path(path: &str) -> Option<Vec<String>> {
    let mut rest = path.strip_prefix('$')?;
    let mut keys = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            keys.push(r[..end].to_owned());
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let quote = r.chars().next().filter(|c| *c == '\'' || *c == '"')?;
            let end = r[1..].find(quote)?;
            keys.push(r[1..1 + end].to_owned());
            rest = r[2 + end..].strip_prefix(']')?;
        } else {
            return None;
        }
    }
    (!keys.is_empty() && keys.iter().all(|k| !k.is_empty())).then_some(keys)
}

/// The value at an `issuer-claim` JSONPath, formatted as Go's `%v` does.
fn claim_at_path(claims: &Map<String, Value>, path: &str) -> Result<String, IdentityError> {
    let missing = || IdentityError::MissingClaim(path.to_owned());
    let keys = claim_path(path).ok_or_else(missing)?;
    let mut obj = claims;
    let (last, parents) = keys.split_last().ok_or_else(missing)?;
    for k in parents {
        obj = obj.get(k).and_then(Value::as_object).ok_or_else(missing)?;
    }
    obj.get(last).map(template::go_v).ok_or_else(missing)
}

/// A string claim: empty when absent or null, an error when of another JSON type (as Go's
/// decoding into a `string` field).
pub(crate) fn claim_str<'a>(
    claims: &'a Map<String, Value>,
    name: &str,
) -> Result<&'a str, IdentityError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(IdentityError::ClaimType {
            claim: name.to_owned(),
            expected: "string",
        }),
    }
}

/// A string claim that must be non-empty.
pub(crate) fn required<'a>(
    claims: &'a Map<String, Value>,
    name: &str,
) -> Result<&'a str, IdentityError> {
    match claim_str(claims, name)? {
        "" => Err(IdentityError::MissingClaim(name.to_owned())),
        s => Ok(s),
    }
}

/// A URI SAN as Go's `url.Parse(value).String()` would put it in the certificate.
pub(crate) fn uri_san(what: &str, value: &str) -> Result<San, IdentityError> {
    match url::normalize(value) {
        Some(uri) if !uri.is_empty() => Ok(San::Uri(uri)),
        _ => Err(IdentityError::InvalidUrl {
            what: what.to_owned(),
            value: value.to_owned(),
        }),
    }
}

/// The fields of Fulcio's `certificate.Extensions` that a CI principal or template can set, in
/// render order (the deprecated raw ones first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum CiField {
    GithubWorkflowTrigger,
    GithubWorkflowSha,
    GithubWorkflowName,
    GithubWorkflowRepository,
    GithubWorkflowRef,
    BuildSignerUri,
    BuildSignerDigest,
    RunnerEnvironment,
    SourceRepositoryUri,
    SourceRepositoryDigest,
    SourceRepositoryRef,
    SourceRepositoryIdentifier,
    SourceRepositoryOwnerUri,
    SourceRepositoryOwnerIdentifier,
    BuildConfigUri,
    BuildConfigDigest,
    BuildTrigger,
    RunInvocationUri,
    SourceRepositoryVisibilityAtSigning,
    DeploymentEnvironment,
}

impl CiField {
    pub(crate) const ALL: [CiField; 20] = {
        use CiField::*;
        [
            GithubWorkflowTrigger,
            GithubWorkflowSha,
            GithubWorkflowName,
            GithubWorkflowRepository,
            GithubWorkflowRef,
            BuildSignerUri,
            BuildSignerDigest,
            RunnerEnvironment,
            SourceRepositoryUri,
            SourceRepositoryDigest,
            SourceRepositoryRef,
            SourceRepositoryIdentifier,
            SourceRepositoryOwnerUri,
            SourceRepositoryOwnerIdentifier,
            BuildConfigUri,
            BuildConfigDigest,
            BuildTrigger,
            RunInvocationUri,
            SourceRepositoryVisibilityAtSigning,
            DeploymentEnvironment,
        ]
    };

    /// (YAML key, JSON key, OID) as in fulcio's `certificate.Extensions` tags.
    fn info(self) -> (&'static str, &'static str, ObjectIdentifier) {
        use CiField::*;
        match self {
            GithubWorkflowTrigger => (
                "github-workflow-trigger",
                "GithubWorkflowTrigger",
                Extension::GITHUB_WORKFLOW_TRIGGER,
            ),
            GithubWorkflowSha => (
                "github-workflow-sha",
                "GithubWorkflowSHA",
                Extension::GITHUB_WORKFLOW_SHA,
            ),
            GithubWorkflowName => (
                "github-workflow-name",
                "GithubWorkflowName",
                Extension::GITHUB_WORKFLOW_NAME,
            ),
            GithubWorkflowRepository => (
                "github-workflow-repository",
                "GithubWorkflowRepository",
                Extension::GITHUB_WORKFLOW_REPOSITORY,
            ),
            GithubWorkflowRef => (
                "github-workflow-ref",
                "GithubWorkflowRef",
                Extension::GITHUB_WORKFLOW_REF,
            ),
            BuildSignerUri => (
                "build-signer-uri",
                "BuildSignerURI",
                Extension::BUILD_SIGNER_URI,
            ),
            BuildSignerDigest => (
                "build-signer-digest",
                "BuildSignerDigest",
                Extension::BUILD_SIGNER_DIGEST,
            ),
            RunnerEnvironment => (
                "runner-environment",
                "RunnerEnvironment",
                Extension::RUNNER_ENVIRONMENT,
            ),
            SourceRepositoryUri => (
                "source-repository-uri",
                "SourceRepositoryURI",
                Extension::SOURCE_REPOSITORY_URI,
            ),
            SourceRepositoryDigest => (
                "source-repository-digest",
                "SourceRepositoryDigest",
                Extension::SOURCE_REPOSITORY_DIGEST,
            ),
            SourceRepositoryRef => (
                "source-repository-ref",
                "SourceRepositoryRef",
                Extension::SOURCE_REPOSITORY_REF,
            ),
            SourceRepositoryIdentifier => (
                "source-repository-identifier",
                "SourceRepositoryIdentifier",
                Extension::SOURCE_REPOSITORY_IDENTIFIER,
            ),
            SourceRepositoryOwnerUri => (
                "source-repository-owner-uri",
                "SourceRepositoryOwnerURI",
                Extension::SOURCE_REPOSITORY_OWNER_URI,
            ),
            SourceRepositoryOwnerIdentifier => (
                "source-repository-owner-identifier",
                "SourceRepositoryOwnerIdentifier",
                Extension::SOURCE_REPOSITORY_OWNER_IDENTIFIER,
            ),
            BuildConfigUri => (
                "build-config-uri",
                "BuildConfigURI",
                Extension::BUILD_CONFIG_URI,
            ),
            BuildConfigDigest => (
                "build-config-digest",
                "BuildConfigDigest",
                Extension::BUILD_CONFIG_DIGEST,
            ),
            BuildTrigger => ("build-trigger", "BuildTrigger", Extension::BUILD_TRIGGER),
            RunInvocationUri => (
                "run-invocation-uri",
                "RunInvocationURI",
                Extension::RUN_INVOCATION_URI,
            ),
            SourceRepositoryVisibilityAtSigning => (
                "source-repository-visibility-at-signing",
                "SourceRepositoryVisibilityAtSigning",
                Extension::SOURCE_REPOSITORY_VISIBILITY_AT_SIGNING,
            ),
            DeploymentEnvironment => (
                "deployment-environment",
                "DeploymentEnvironment",
                Extension::DEPLOYMENT_ENVIRONMENT,
            ),
        }
    }

    /// The configuration key spelling (YAML tag), e.g. `build-signer-uri`.
    pub(crate) fn yaml_name(self) -> &'static str {
        self.info().0
    }

    /// The field for an `extension-templates` key in either spelling.
    pub(crate) fn from_config_key(key: &str) -> Option<CiField> {
        Self::ALL
            .into_iter()
            .find(|f| f.info().0 == key || f.info().1 == key)
    }

    fn raw(self) -> bool {
        self <= CiField::GithubWorkflowRef
    }
}

/// Fulcio's `certificate.Extensions`: issuer and subject plus the CI fields.
#[derive(Debug, Default)]
pub(crate) struct ExtensionValues {
    issuer: String,
    subject: String,
    fields: [String; 20],
}

impl ExtensionValues {
    pub(crate) fn new(issuer: impl Into<String>, subject: impl Into<String>) -> Self {
        ExtensionValues {
            issuer: issuer.into(),
            subject: subject.into(),
            ..Default::default()
        }
    }

    pub(crate) fn set(&mut self, field: CiField, value: impl Into<String>) {
        self.fields[field as usize] = value.into();
    }

    /// `Extensions.Render`: .1.1 raw issuer, the raw deprecated fields, .1.8 issuer, the other
    /// fields as DER UTF8String, .1.24 subject; empty values are left out, an empty issuer is an
    /// error.
    pub(crate) fn render(&self) -> Result<Vec<Extension>, IdentityError> {
        if self.issuer.is_empty() {
            return Err(IdentityError::EmptyIssuer);
        }
        let raw = |oid, v: &str| Extension {
            oid,
            value: v.as_bytes().to_vec(),
        };
        let mut out = vec![raw(Extension::ISSUER_V1, &self.issuer)];
        let set = |raw: bool| {
            CiField::ALL
                .into_iter()
                .filter(move |f| f.raw() == raw)
                .map(|f| (f.info().2, self.fields[f as usize].as_str()))
                .filter(|(_, v)| !v.is_empty())
        };
        out.extend(set(true).map(|(oid, v)| raw(oid, v)));
        out.push(utf8(Extension::ISSUER_V2, &self.issuer)?);
        for (oid, v) in set(false) {
            out.push(utf8(oid, v)?);
        }
        if !self.subject.is_empty() {
            out.push(utf8(Extension::TOKEN_SUBJECT, &self.subject)?);
        }
        Ok(out)
    }
}

fn utf8(oid: ObjectIdentifier, value: &str) -> Result<Extension, IdentityError> {
    let encoding = |e: der::Error| IdentityError::Encoding(e.to_string());
    let value = Utf8StringRef::new(value)
        .map_err(encoding)?
        .to_der()
        .map_err(encoding)?;
    Ok(Extension { oid, value })
}

#[cfg(test)]
pub(crate) mod tests;
