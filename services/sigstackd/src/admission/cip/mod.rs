//! policy-controller's `ClusterImagePolicy` documents (`policy.sigstore.dev/v1alpha1` and
//! `v1beta1`), read and compiled: image globs as policy-controller matches them, the
//! authorities (`keyless`, `key`, `static`) with their sources and attestation policies,
//! and `mode`. A field we do not act on is refused when the policy loads, never ignored:
//! a policy must not be quietly weaker than its author wrote it.

use anyhow::{Context, bail};
use serde::Deserialize;
use sigstack::attached::Layouts;
use sigstack::policy::Embedded;
use sigstack::verify::{Matcher, Policy};
use sigstack_crypto::PublicKey;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc {
    api_version: String,
    kind: String,
    metadata: Meta,
    spec: Spec,
}

#[derive(Deserialize)]
struct Meta {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Spec {
    images: Vec<ImagePattern>,
    #[serde(default)]
    authorities: Vec<AuthoritySpec>,
    #[serde(default)]
    mode: Option<String>,
    policy: Option<serde_json::Value>,
    #[serde(rename = "match")]
    match_: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImagePattern {
    glob: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AuthoritySpec {
    #[serde(default)]
    name: Option<String>,
    key: Option<KeyRef>,
    keyless: Option<KeylessRef>,
    #[serde(rename = "static")]
    static_: Option<StaticRef>,
    #[serde(default)]
    source: Vec<SourceRef>,
    /// The log (`url`, `trustRootRef`): the stack's trust root names the logs we accept.
    ctlog: Option<serde_json::Value>,
    #[serde(default)]
    attestations: Vec<AttestationSpec>,
    rfc3161timestamp: Option<serde_json::Value>,
    #[serde(default)]
    signature_format: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KeyRef {
    data: Option<String>,
    secret_ref: Option<SecretRef>,
    kms: Option<String>,
    hash_algorithm: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretRef {
    name: String,
    #[serde(default)]
    namespace: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KeylessRef {
    /// The CA's URL: informational (the trust root names the CAs we accept).
    url: Option<String>,
    #[serde(default)]
    identities: Vec<IdentitySpec>,
    #[serde(rename = "ca-cert")]
    ca_cert: Option<KeyRef>,
    trust_root_ref: Option<String>,
    #[serde(rename = "insecureIgnoreSCT")]
    insecure_ignore_sct: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct IdentitySpec {
    issuer: Option<String>,
    subject: Option<String>,
    #[serde(rename = "issuerRegExp")]
    issuer_regexp: Option<String>,
    #[serde(rename = "subjectRegExp")]
    subject_regexp: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StaticRef {
    action: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SourceRef {
    oci: Option<String>,
    signature_pull_secrets: Option<serde_json::Value>,
    tag_prefix: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AttestationSpec {
    name: String,
    predicate_type: String,
    policy: Option<PolicySpec>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PolicySpec {
    #[serde(rename = "type")]
    kind: String,
    data: Option<String>,
    url: Option<String>,
    config_map_ref: Option<serde_json::Value>,
    remote: Option<serde_json::Value>,
}

/// `enforce` denies; `warn` admits with the failures as warnings.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Enforce,
    Warn,
}

/// A compiled ClusterImagePolicy.
pub struct Cip {
    pub name: String,
    globs: Vec<(String, regex::Regex)>,
    pub mode: Mode,
    pub authorities: Vec<Authority>,
}

pub struct Authority {
    pub name: String,
    pub kind: AuthorityKind,
    /// Where the signatures live, when not beside the image (`source: [{oci: …}]`).
    pub source: Option<sigstack::registry::Reference>,
    pub attestations: Vec<WantedAttestation>,
    /// The layouts signatures and attestations are read from (`signatureFormat`).
    pub layouts: Layouts,
}

pub enum AuthorityKind {
    /// Signed with one of these identities (any), under the trust root named (or the
    /// default).
    Keyless {
        policies: Vec<Policy>,
        trust_root: Option<String>,
        ignore_sct: bool,
    },
    Key(PublicKey),
    Static {
        pass: bool,
        message: String,
    },
}

pub struct WantedAttestation {
    pub name: String,
    /// The predicate type URI.
    pub predicate_type: String,
    pub policy: Option<Embedded>,
}

/// policy-controller's glob: `*` is any run of characters but `/`, `**` any run at
/// all, the whole name must match; `*` alone and `*/*` mean Docker Hub's.
pub fn compile_glob(glob: &str) -> anyhow::Result<regex::Regex> {
    let glob = match glob {
        "*/*" => "index.docker.io/*/*",
        "*" => "index.docker.io/library/*",
        g => g,
    };
    let ok = !glob.is_empty()
        && glob
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_:/*.@".contains(&b));
    if !ok {
        bail!("invalid glob {glob:?}");
    }
    let mut re = String::from("^");
    let mut rest = glob;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("**") {
            re.push_str(".*");
            rest = r;
        } else if let Some(r) = rest.strip_prefix('*') {
            re.push_str("[^/]*");
            rest = r;
        } else {
            let c = rest.chars().next().unwrap_or_default();
            re.push_str(&regex::escape(&c.to_string()));
            rest = &rest[c.len_utf8()..];
        }
    }
    re.push('$');
    Ok(regex::Regex::new(&re)?)
}

/// The name an image is matched by, as go-containerregistry writes it: Docker Hub as
/// `index.docker.io`, its official images under `library/`, `:latest` when the
/// reference has neither tag nor digest.
pub fn match_name(image: &str) -> Option<String> {
    let r = sigstack::registry::parse(image).ok()?;
    let registry = match r.registry() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "index.docker.io",
        other => other,
    };
    let mut name = format!("{registry}/{}", r.repository());
    match (r.tag(), r.digest()) {
        (_, Some(d)) => name.push_str(&format!("@{d}")),
        (Some(t), None) => name.push_str(&format!(":{t}")),
        (None, None) => name.push_str(":latest"),
    }
    Some(name)
}

impl Cip {
    /// Whether one of the policy's globs matches `image` (as written, or fully named).
    pub fn matches(&self, image: &str) -> bool {
        let full = match_name(image);
        self.globs
            .iter()
            .any(|(_, re)| full.as_deref().is_some_and(|n| re.is_match(n)) || re.is_match(image))
    }
}

fn matcher(exact: &Option<String>, re: &Option<String>, what: &str) -> anyhow::Result<Matcher> {
    match (exact, re) {
        (Some(e), _) if !e.is_empty() => Ok(Matcher::Exact(e.clone())),
        (_, Some(r)) if !r.is_empty() => Ok(Matcher::Regex(
            regex::Regex::new(r).with_context(|| format!("{what}RegExp {r:?}"))?,
        )),
        _ => bail!("an identity needs {what} or {what}RegExp"),
    }
}

/// The one value of the Secret `name`, mounted as a directory under `secrets`
/// (Kubernetes' secret volume: a file per key, hidden bookkeeping entries). As
/// policy-controller, the Secret must hold exactly one entry.
fn secret_value(secrets: Option<&Path>, name: &str, what: &str) -> anyhow::Result<String> {
    let Some(dir) = secrets else {
        bail!(
            "{what}: secretRef {name}: the webhook reads Secrets from the directory --secrets-dir names (mount the Secret at DIR/{name}), and none is given"
        );
    };
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        bail!("{what}: secretRef name {name:?} is not a Secret's name");
    }
    let at = dir.join(name);
    let entries: Vec<PathBuf> = std::fs::read_dir(&at)
        .with_context(|| format!("{what}: secretRef {name}: reading {}", at.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    match entries.as_slice() {
        [one] => std::fs::read_to_string(one)
            .with_context(|| format!("{what}: secretRef {name}: reading {}", one.display())),
        [] => bail!("{what}: secret {name:?} contains no data"),
        _ => bail!("{what}: secret {name:?} contains multiple data entries, only one is supported"),
    }
}

fn key_data(k: &KeyRef, what: &str, secrets: Option<&Path>) -> anyhow::Result<String> {
    match k.hash_algorithm.as_deref() {
        None | Some("" | "sha256") => {}
        Some(h) => bail!("{what}: hashAlgorithm {h} is not supported (sha256 only)"),
    }
    if let Some(uri) = &k.kms {
        if k.data.is_some() || k.secret_ref.is_some() {
            bail!("{what}: give one of data, secretRef and kms");
        }
        // the public key, fetched from the KMS (its credentials from the environment)
        if !sigstack::keyref::is_kms(uri) {
            bail!(
                "{what}: kms {uri}: not a KMS key (awskms://, gcpkms://, azurekms://, hashivault://)"
            );
        }
        let key = sigstack::keyref::public_key(uri).with_context(|| what.to_string())?;
        return Ok(key.to_pem());
    }
    match (&k.data, &k.secret_ref) {
        (Some(d), None) if !d.trim().is_empty() => Ok(d.clone()),
        (None, Some(r)) => {
            let _ = &r.namespace;
            secret_value(secrets, &r.name, what)
        }
        (Some(_), Some(_)) => bail!("{what}: give data or secretRef, not both"),
        _ => bail!("{what}: no `data`"),
    }
}

fn compile_authority(
    a: AuthoritySpec,
    index: usize,
    secrets: Option<&Path>,
) -> anyhow::Result<Authority> {
    let name = a
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| format!("authority{index}"));
    let what = format!("authority {name}");
    if a.rfc3161timestamp.is_some() {
        // the trust root's timestamp authorities are used whenever a bundle carries one
        tracing::debug!("{what}: rfc3161timestamp uses the trust root's authorities");
    }
    let _ = &a.ctlog;
    // unset: every layout cosign writes (policy-controller reads only the legacy one then)
    let layouts = match a.signature_format.as_deref() {
        None | Some("") => Layouts::All,
        Some("simplesigning") => Layouts::Legacy,
        Some("bundle") => Layouts::Bundles,
        Some(f) => bail!("{what}: signatureFormat {f:?} is not simplesigning or bundle"),
    };
    let kind = match (a.key, a.keyless, a.static_) {
        (Some(k), None, None) => {
            let pem = key_data(&k, &format!("{what} key"), secrets)?;
            AuthorityKind::Key(
                PublicKey::from_pem(pem.as_bytes())
                    .with_context(|| format!("{what}: key data is not a PEM public key"))?,
            )
        }
        (None, Some(k), None) => {
            let _ = &k.url;
            if k.identities.is_empty() {
                bail!("{what}: keyless needs at least one identity");
            }
            let policies = k
                .identities
                .iter()
                .map(|i| {
                    Ok(Policy::Identity {
                        issuer: matcher(&i.issuer, &i.issuer_regexp, "issuer")?,
                        identity: matcher(&i.subject, &i.subject_regexp, "subject")?,
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()
                .with_context(|| what.clone())?;
            if k.ca_cert.is_some() {
                bail!(
                    "{what}: ca-cert is not supported; put the CA in a trusted root and name it with trustRootRef (--trust-root NAME=trusted_root.json)"
                );
            }
            AuthorityKind::Keyless {
                policies,
                trust_root: k.trust_root_ref.clone().filter(|t| !t.is_empty()),
                ignore_sct: k.insecure_ignore_sct.unwrap_or(false),
            }
        }
        (None, None, Some(s)) => AuthorityKind::Static {
            pass: match s.action.as_str() {
                "pass" => true,
                "fail" => false,
                other => bail!("{what}: static action {other:?} is not pass or fail"),
            },
            message: s.message,
        },
        _ => bail!("{what}: give exactly one of key, keyless and static"),
    };
    let source = match a.source.as_slice() {
        [] => None,
        [s] => {
            if s.signature_pull_secrets.is_some() || s.tag_prefix.is_some() {
                bail!(
                    "{what}: source signaturePullSecrets and tagPrefix are not supported (registry credentials come from the webhook's Docker config)"
                );
            }
            match &s.oci {
                Some(repo) => Some(
                    sigstack::registry::parse(repo)
                        .with_context(|| format!("{what}: source oci {repo:?}"))?,
                ),
                None => None,
            }
        }
        _ => bail!("{what}: one source only"),
    };
    if matches!(kind, AuthorityKind::Static { .. })
        && (!a.attestations.is_empty() || source.is_some())
    {
        bail!("{what}: a static authority takes no attestations or source");
    }
    let attestations = a
        .attestations
        .into_iter()
        .map(|w| {
            let predicate_type = sigstack::layout::predicate_type(&w.predicate_type)
                .with_context(|| format!("{what} attestation {}", w.name))?;
            let policy = match w.policy {
                None => None,
                Some(p) => {
                    if p.url.is_some() || p.config_map_ref.is_some() || p.remote.is_some() {
                        bail!(
                            "{what} attestation {}: only inline policies (`data`) are supported, not url, configMapRef or remote",
                            w.name
                        );
                    }
                    let data = p.data.with_context(|| {
                        format!("{what} attestation {}: the policy has no data", w.name)
                    })?;
                    Some(Embedded::new(&w.name, &p.kind, &data)?)
                }
            };
            Ok(WantedAttestation {
                name: w.name,
                predicate_type,
                policy,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Authority {
        name,
        kind,
        source,
        attestations,
        layouts,
    })
}

fn compile(doc: Doc, secrets: Option<&Path>) -> anyhow::Result<Cip> {
    let name = doc.metadata.name;
    let what = format!("ClusterImagePolicy {name}");
    if !matches!(
        doc.api_version.as_str(),
        "policy.sigstore.dev/v1alpha1" | "policy.sigstore.dev/v1beta1"
    ) {
        bail!(
            "{what}: apiVersion {} is not policy.sigstore.dev/v1alpha1 or v1beta1",
            doc.api_version
        );
    }
    let s = doc.spec;
    if s.policy.is_some() {
        bail!(
            "{what}: spec.policy (a policy over the authorities' results) is not supported; put policies on the attestations"
        );
    }
    if s.match_.is_some() {
        bail!(
            "{what}: spec.match (resource selection) is not supported: the webhook checks Pods and the workloads that make them"
        );
    }
    if s.images.is_empty() {
        bail!("{what}: no images");
    }
    let globs = s
        .images
        .iter()
        .map(|i| {
            Ok((
                i.glob.clone(),
                compile_glob(&i.glob).with_context(|| what.clone())?,
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mode = match s.mode.as_deref() {
        None | Some("" | "enforce") => Mode::Enforce,
        Some("warn") => Mode::Warn,
        Some(m) => bail!("{what}: mode {m:?} is not enforce or warn"),
    };
    if s.authorities.is_empty() {
        bail!("{what}: no authorities");
    }
    let authorities = s
        .authorities
        .into_iter()
        .enumerate()
        .map(|(i, a)| compile_authority(a, i, secrets).with_context(|| what.clone()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Cip {
        name,
        globs,
        mode,
        authorities,
    })
}

/// Every ClusterImagePolicy in a YAML text (documents of other kinds are skipped; a
/// `List` of them is read).
pub fn parse(text: &str, origin: &str, secrets: Option<&Path>) -> anyhow::Result<Vec<Cip>> {
    let mut out = Vec::new();
    for d in serde_yaml::Deserializer::from_str(text) {
        let v = serde_json::Value::deserialize(d).with_context(|| format!("{origin}: not YAML"))?;
        let items = match v["kind"].as_str() {
            Some("ClusterImagePolicy") => vec![v],
            Some(k) if k.ends_with("List") => v["items"].as_array().cloned().unwrap_or_default(),
            _ => continue,
        };
        for item in items {
            if item["kind"] != "ClusterImagePolicy" {
                continue;
            }
            let doc: Doc = serde_json::from_value(item)
                .with_context(|| format!("{origin}: a ClusterImagePolicy"))?;
            if doc.kind != "ClusterImagePolicy" {
                continue;
            }
            out.push(compile(doc, secrets).with_context(|| origin.to_string())?);
        }
    }
    Ok(out)
}

/// The `.yaml`/`.yml`/`.json` files at `path` (a file, or a directory's, sorted).
pub fn files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("reading {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
                && p.is_file()
        })
        .collect();
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests;
