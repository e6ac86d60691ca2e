//! The configuration file as written: both key spellings (YAML tags and Go JSON field names),
//! scalars read as strings and nulls as empty, the way Go's decoders fill `FulcioConfig`
//! (fulcio `pkg/config/config.go` struct tags, `parseConfig`).

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, Visitor};

use super::ConfigError;

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawConfig {
    #[serde(
        rename = "oidc-issuers",
        alias = "OIDCIssuers",
        deserialize_with = "nullable"
    )]
    pub(super) oidc_issuers: BTreeMap<String, RawIssuer>,
    #[serde(
        rename = "meta-issuers",
        alias = "MetaIssuers",
        deserialize_with = "nullable"
    )]
    pub(super) meta_issuers: BTreeMap<String, RawIssuer>,
    #[serde(
        rename = "ci-issuer-metadata",
        alias = "CIIssuerMetadata",
        deserialize_with = "nullable"
    )]
    pub(super) ci_issuer_metadata: BTreeMap<String, RawMetadata>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawIssuer {
    #[serde(
        rename = "issuer-url",
        alias = "IssuerURL",
        deserialize_with = "scalar"
    )]
    pub(super) issuer_url: String,
    #[serde(rename = "client-id", alias = "ClientID", deserialize_with = "scalar")]
    pub(super) client_id: String,
    #[serde(rename = "type", alias = "Type", deserialize_with = "scalar")]
    pub(super) issuer_type: String,
    #[serde(
        rename = "ci-provider",
        alias = "CIProvider",
        deserialize_with = "scalar"
    )]
    pub(super) ci_provider: String,
    #[serde(
        rename = "issuer-claim",
        alias = "IssuerClaim",
        deserialize_with = "scalar"
    )]
    pub(super) issuer_claim: String,
    #[serde(
        rename = "subject-domain",
        alias = "SubjectDomain",
        deserialize_with = "scalar"
    )]
    pub(super) subject_domain: String,
    #[serde(
        rename = "spiffe-trust-domain",
        alias = "SPIFFETrustDomain",
        deserialize_with = "scalar"
    )]
    pub(super) spiffe_trust_domain: String,
    #[serde(
        rename = "challenge-claim",
        alias = "ChallengeClaim",
        deserialize_with = "scalar"
    )]
    pub(super) challenge_claim: String,
    #[serde(
        rename = "description",
        alias = "Description",
        deserialize_with = "scalar"
    )]
    pub(super) description: String,
    #[serde(rename = "contact", alias = "Contact", deserialize_with = "scalar")]
    pub(super) contact: String,
    #[serde(
        rename = "environment",
        alias = "Environment",
        deserialize_with = "scalar"
    )]
    pub(super) environment: String,
    #[serde(rename = "ca-cert", alias = "CACert", deserialize_with = "scalar")]
    pub(super) ca_cert: String,
    #[serde(
        rename = "skip-email-verification",
        alias = "SkipEmailVerification",
        deserialize_with = "nullable"
    )]
    pub(super) skip_email_verification: bool,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawMetadata {
    #[serde(
        rename = "default-template-values",
        alias = "DefaultTemplateValues",
        deserialize_with = "nullable"
    )]
    pub(super) default_template_values: BTreeMap<String, Scalar>,
    #[serde(
        rename = "extension-templates",
        alias = "ExtensionTemplates",
        deserialize_with = "nullable"
    )]
    pub(super) extension_templates: BTreeMap<String, Scalar>,
    #[serde(
        rename = "subject-alternative-name-template",
        alias = "SubjectAlternativeNameTemplate",
        deserialize_with = "scalar"
    )]
    pub(super) subject_alternative_name_template: String,
}

/// A scalar read as a string, as Go's YAML decoder fills `string` fields (null is empty).
#[derive(Default)]
pub(super) struct Scalar(pub(super) String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor).map(Scalar)
    }
}

fn scalar<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_any(ScalarVisitor)
}

fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

struct ScalarVisitor;

impl Visitor<'_> for ScalarVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
    fn visit_bool<E>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_unit<E>(self) -> Result<String, E> {
        Ok(String::new())
    }
    fn visit_none<E>(self) -> Result<String, E> {
        Ok(String::new())
    }
}

/// JSON first when it looks like JSON (as `parseConfig` tries JSON first), else YAML.
pub(super) fn parse_raw(text: &str) -> Result<RawConfig, ConfigError> {
    if text.trim().is_empty() {
        return Ok(RawConfig::default());
    }
    if text.trim_start().starts_with('{') {
        return serde_json::from_str(text).or_else(|json_err| {
            serde_yaml::from_str(text).map_err(|_| ConfigError::Syntax(json_err.to_string()))
        });
    }
    serde_yaml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))
}
