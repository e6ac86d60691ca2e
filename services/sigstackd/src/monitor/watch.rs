//! What to watch, in rekor-monitor's configuration format (`monitoredValues`), and how
//! an entry's facts match it. As rekor-monitor: `certSubject`, `issuers` and `subjects`
//! are regular expressions matched anywhere in the value (anchor them with `^…$` to match
//! whole values), fingerprints are hex SHA-256 of the DER certificate or public key
//! (case-insensitive), and OID matchers compare an extension's value exactly.

use super::entry::{FULCIO_EXTENSIONS, Facts};
use anyhow::{Context, bail};
use regex::Regex;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct File {
    // required: a misspelt key would otherwise watch nothing, silently
    monitored_values: MonitoredValues,
    // rekor-monitor's run settings (startIndex, outputIdentities, notifiers...) are
    // accepted and left to `sigstackd monitor`'s own configuration
    #[serde(flatten)]
    _other: BTreeMap<String, serde_yaml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MonitoredValues {
    #[serde(default)]
    cert_identities: Vec<CertIdentity>,
    #[serde(default)]
    subjects: Vec<String>,
    #[serde(default)]
    fingerprints: Vec<String>,
    #[serde(default)]
    oid_matchers: Option<OidMatchers>,
    #[serde(default)]
    fulcio_extensions: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    custom_extensions: Vec<OidMatcher>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CertIdentity {
    cert_subject: String,
    #[serde(default)]
    issuers: Vec<String>,
}

/// rekor-monitor has spelled this two ways: a list of matchers, and a table of
/// `oidExtensions`, `fulcioExtensions` and `customExtensions`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OidMatchers {
    List(Vec<OidMatcher>),
    Table(OidTable),
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OidTable {
    #[serde(default)]
    oid_extensions: Vec<OidMatcher>,
    #[serde(default)]
    fulcio_extensions: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    custom_extensions: Vec<OidMatcher>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OidMatcher {
    object_identifier: Oid,
    #[serde(default)]
    extension_values: Values,
}

/// An OID as Go's YAML writes `asn1.ObjectIdentifier` (a list of numbers) or dotted.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Oid {
    Dotted(String),
    Arcs(Vec<u64>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum Values {
    One(String),
    Many(Vec<String>),
    #[default]
    None,
}

impl Oid {
    fn dotted(&self) -> anyhow::Result<String> {
        let s = match self {
            Oid::Dotted(s) => s.trim().to_string(),
            Oid::Arcs(a) => a.iter().map(u64::to_string).collect::<Vec<_>>().join("."),
        };
        spki::ObjectIdentifier::new(&s).map_err(|e| anyhow::anyhow!("OID {s:?}: {e}"))?;
        Ok(s)
    }
}

/// A compiled watch list.
#[derive(Debug, Default)]
pub struct Watch {
    identities: Vec<(Regex, Vec<Regex>)>,
    subjects: Vec<Regex>,
    fingerprints: Vec<String>,
    oids: Vec<(String, Vec<String>)>,
}

/// One reason an entry matched.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hit {
    /// `certSubject`, `subject`, `fingerprint` or `extensionValue` (rekor-monitor's
    /// names), or `subscription` for a person's own alert.
    pub matched_type: String,
    /// The value that matched.
    pub matched: String,
    pub cert_subject: Option<String>,
    pub issuer: Option<String>,
}

fn regex(what: &str, s: &str) -> anyhow::Result<Regex> {
    Regex::new(s).with_context(|| format!("{what} {s:?} is not a valid regular expression"))
}

impl Watch {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let file: File = serde_yaml::from_str(text).context("not rekor-monitor's format")?;
        let mv = file.monitored_values;
        let mut w = Watch::default();
        for ci in &mv.cert_identities {
            let issuers = ci
                .issuers
                .iter()
                .map(|i| regex("issuer", i))
                .collect::<anyhow::Result<_>>()?;
            w.identities
                .push((regex("certSubject", &ci.cert_subject)?, issuers));
        }
        for s in &mv.subjects {
            w.subjects.push(regex("subject", s)?);
        }
        for f in &mv.fingerprints {
            let f = f.trim().to_ascii_lowercase();
            if f.is_empty() || !f.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!("fingerprint {f:?} is not hex (the SHA-256 of a DER key or certificate)");
            }
            w.fingerprints.push(f);
        }
        let mut matchers: Vec<&OidMatcher> = mv.custom_extensions.iter().collect();
        let mut fulcio: Vec<(&String, &Vec<String>)> = mv.fulcio_extensions.iter().collect();
        match &mv.oid_matchers {
            Some(OidMatchers::List(l)) => matchers.extend(l),
            Some(OidMatchers::Table(t)) => {
                matchers.extend(&t.oid_extensions);
                matchers.extend(&t.custom_extensions);
                fulcio.extend(t.fulcio_extensions.iter());
            }
            None => {}
        }
        for m in matchers {
            let values = match &m.extension_values {
                Values::One(v) => vec![v.clone()],
                Values::Many(v) => v.clone(),
                Values::None => Vec::new(),
            };
            if values.is_empty() {
                bail!(
                    "OID matcher {:?} lists no extensionValues",
                    m.object_identifier
                );
            }
            w.oids.push((m.object_identifier.dotted()?, values));
        }
        for (name, values) in fulcio {
            let oid = FULCIO_EXTENSIONS
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, o)| o.to_string())
                .with_context(|| {
                    format!(
                        "fulcioExtensions: unknown extension {name:?} (known: {})",
                        FULCIO_EXTENSIONS
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
            w.oids.push((oid, values.clone()));
        }
        Ok(w)
    }

    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
            && self.subjects.is_empty()
            && self.fingerprints.is_empty()
            && self.oids.is_empty()
    }

    /// Every reason `facts` match, each once.
    pub fn hits(&self, facts: &Facts) -> Vec<Hit> {
        let mut out: Vec<Hit> = Vec::new();
        let mut push = |h: Hit| {
            if !out.contains(&h) {
                out.push(h);
            }
        };
        for c in &facts.certs {
            let first_san = c.sans.first().cloned();
            for (subject, issuers) in &self.identities {
                for san in c.sans.iter().filter(|s| subject.is_match(s)) {
                    let issuer_ok = issuers.is_empty()
                        || c.issuer
                            .as_deref()
                            .is_some_and(|i| issuers.iter().any(|r| r.is_match(i)));
                    if issuer_ok {
                        push(Hit {
                            matched_type: "certSubject".into(),
                            matched: san.clone(),
                            cert_subject: Some(san.clone()),
                            issuer: c.issuer.clone(),
                        });
                    }
                }
            }
            for r in &self.subjects {
                for san in c.sans.iter().filter(|s| r.is_match(s)) {
                    push(Hit {
                        matched_type: "subject".into(),
                        matched: san.clone(),
                        cert_subject: Some(san.clone()),
                        issuer: c.issuer.clone(),
                    });
                }
            }
            if self.fingerprints.contains(&c.fingerprint) {
                push(Hit {
                    matched_type: "fingerprint".into(),
                    matched: c.fingerprint.clone(),
                    cert_subject: first_san.clone(),
                    issuer: c.issuer.clone(),
                });
            }
            for (oid, values) in &self.oids {
                for (eoid, value) in &c.extensions {
                    if eoid == oid && values.contains(value) {
                        push(Hit {
                            matched_type: "extensionValue".into(),
                            matched: format!("{oid}={value}"),
                            cert_subject: first_san.clone(),
                            issuer: c.issuer.clone(),
                        });
                    }
                }
            }
        }
        for k in &facts.key_fingerprints {
            if self.fingerprints.contains(k) {
                push(Hit {
                    matched_type: "fingerprint".into(),
                    matched: k.clone(),
                    cert_subject: None,
                    issuer: None,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::entry::CertFacts;

    fn cert(san: &str, issuer: &str) -> Facts {
        Facts {
            kind: "hashedrekord".into(),
            certs: vec![CertFacts {
                sans: vec![san.into()],
                issuer: Some(issuer.into()),
                fingerprint: "ab".repeat(32),
                extensions: vec![(
                    "1.3.6.1.4.1.57264.1.9".into(),
                    "https://ci/build.yml@refs/heads/main".into(),
                )],
                ..CertFacts::default()
            }],
            ..Facts::default()
        }
    }

    #[test]
    fn rekor_monitors_own_example_parses_and_matches() {
        let w = Watch::parse(
            r#"
startIndex: 1000
monitoredValues:
  certIdentities:
    - certSubject: user@domain\.com
    - certSubject: other@domain\.com
      issuers:
        - https://accounts\.example\.com
  subjects:
    - subject@domain\.com
  fingerprints:
    - ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB
  oidMatchers:
    - objectIdentifier: [1, 3, 6, 1, 4, 1, 57264, 1, 9]
      extensionValues: ["https://ci/build.yml@refs/heads/main"]
"#,
        )
        .expect("parses");
        let hits = w.hits(&cert("user@domain.com", "https://any"));
        let kinds: Vec<&str> = hits.iter().map(|h| h.matched_type.as_str()).collect();
        assert_eq!(kinds, ["certSubject", "fingerprint", "extensionValue"]);
        // the issuer constrains the second identity
        assert!(
            w.hits(&cert("other@domain.com", "https://evil"))
                .iter()
                .all(|h| h.matched_type != "certSubject")
        );
        assert!(
            w.hits(&cert("other@domain.com", "https://accounts.example.com"))
                .iter()
                .any(|h| h.matched_type == "certSubject")
        );
        let mut nobody = cert("nobody@else.org", "x");
        nobody.certs[0].fingerprint = "00".into();
        nobody.certs[0].extensions.clear();
        assert!(w.hits(&nobody).is_empty());
    }

    #[test]
    fn the_table_form_and_fulcio_names() {
        let w = Watch::parse(
            r#"
monitoredValues:
  oidMatchers:
    fulcioExtensions:
      build-signer-uri: ["https://ci/build.yml@refs/heads/main"]
    customExtensions:
      - objectIdentifier: 1.3.6.1.4.1.57264.1.12
        extensionValues: https://github.com/o/r
"#,
        )
        .expect("parses");
        assert_eq!(w.hits(&cert("a@b", "i")).len(), 1);
    }

    #[test]
    fn mistakes_are_named() {
        let e = Watch::parse("monitoredValues:\n  certIdentities:\n    - certSubject: '('\n")
            .expect_err("refused");
        assert!(format!("{e:#}").contains("certSubject"), "{e:#}");
        let e = Watch::parse("monitoredValues:\n  fulcioExtensions:\n    nope: [x]\n")
            .expect_err("refused");
        assert!(format!("{e:#}").contains("unknown extension"), "{e:#}");
        let e = Watch::parse("monitoredValues:\n  certIdentity: []\n").expect_err("refused");
        assert!(format!("{e:#}").contains("certIdentity"), "{e:#}");
        let e = Watch::parse("monitoredValue:\n  subjects: [a]\n").expect_err("refused");
        assert!(format!("{e:#}").contains("monitoredValues"), "{e:#}");
        let e = Watch::parse("monitoredValues:\n  fingerprints: [xyz]\n").expect_err("refused");
        assert!(format!("{e:#}").contains("not hex"), "{e:#}");
    }
}
