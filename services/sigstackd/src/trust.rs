//! The stack's trust files, as clients consume them: `trusted_root.json` (what to
//! verify with), `signing_config.v0.2.json` (where to sign) and the ClientTrustConfig
//! combining both (sigstore-python `--trust-config`). Built from the services' public
//! parts; `sigstackd trust export` fetches those from running services and checks them
//! before writing.

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sigstack_crypto::{Certificate, KeyMaterial, PublicKey, log_id};
use sigstack_types::trust::{
    self, CLIENT_TRUST_CONFIG_MEDIA_TYPE, ClientTrustConfig, SIGNING_CONFIG_MEDIA_TYPE, Service,
    ServiceConfiguration, SigningConfig, TRUSTED_ROOT_MEDIA_TYPE, TrustedRoot,
};
use std::path::Path;

/// File names written by [`StackTrust::write`].
pub const TRUSTED_ROOT_FILE: &str = "trusted_root.json";
pub const SIGNING_CONFIG_FILE: &str = "signing_config.v0.2.json";
pub const CLIENT_TRUST_CONFIG_FILE: &str = "trust_config.json";

/// The public parts of one stack.
pub struct StackTrust {
    pub operator: String,
    /// RFC 3339 start of every validity window.
    pub valid_from: String,
    pub ca_url: String,
    /// Issuing certificate first, root last.
    pub ca_chain: Vec<Certificate>,
    pub tlog_url: String,
    pub tlog_key: PublicKey,
    /// The tiled (Rekor v2) log, if the stack runs one: listed beside the v1 log, which
    /// older clients keep using.
    pub tlog_v2: Option<TlogV2Trust>,
    pub ctlog_url: String,
    pub ctlog_key: PublicKey,
    pub oidc_url: Option<String>,
    /// The timestamp authority, if the stack runs one: its URL and chain (leaf first).
    pub tsa: Option<TsaTrust>,
    /// CA chains published beside the running CA's (a new intermediate, before the CA
    /// switches to it), valid from `valid_from`.
    pub extra_ca_chains: Vec<Vec<Certificate>>,
    /// Timestamp authority chains published beside the running TSA's (a new certificate
    /// from `sigstackd tsa new-certificate`, before the TSA switches to it).
    pub extra_tsa_chains: Vec<Vec<Certificate>>,
    /// CT log keys published beside the running CT log's (the CT log that takes over,
    /// from `sigstackd ctlog new-key`, before the CA switches to it), valid from
    /// `valid_from`.
    pub extra_ctlog_keys: Vec<PublicKey>,
    /// Transparency log keys published beside the running log's (the key of the next
    /// shard, before `log new-shard --signing-key` starts it), valid from `valid_from`.
    pub extra_tlog_keys: Vec<PublicKey>,
    /// Tiled logs published beside the running one (its successor: a new log with its own
    /// URL and key, before the signing config switches to it), valid from `valid_from`.
    pub extra_tlog_v2: Vec<TlogV2Trust>,
}

/// A tiled (Rekor v2) log as the trust files name it: its URL (whose host is its
/// checkpoint origin) and Ed25519 key.
#[derive(Clone)]
pub struct TlogV2Trust {
    pub url: String,
    pub key: PublicKey,
}

impl TlogV2Trust {
    fn instance(&self, start: &str) -> anyhow::Result<trust::TransparencyLogInstance> {
        let origin = crate::log::config::host_of(&self.url)?;
        let mut i = log_instance(&self.url, &self.key, start);
        i.log_id.key_id = STANDARD.encode(sigstack_log::note::log_id(&origin, &self.key));
        Ok(i)
    }
}

/// A timestamp authority as the trust files name it.
#[derive(Clone)]
pub struct TsaTrust {
    pub url: String,
    pub chain: Vec<Certificate>,
}

fn chain_of(certs: &[Certificate]) -> trust::CertChain {
    trust::CertChain {
        certificates: certs
            .iter()
            .map(|c| trust::RawBytes {
                raw_bytes: STANDARD.encode(c.der()),
            })
            .collect(),
    }
}

fn log_instance(url: &str, key: &PublicKey, start: &str) -> trust::TransparencyLogInstance {
    trust::TransparencyLogInstance {
        base_url: url.to_string(),
        hash_algorithm: "SHA2_256".into(),
        public_key: trust::PublicKey {
            raw_bytes: STANDARD.encode(key.spki_der()),
            key_details: key.key_details().into(),
            valid_for: trust::TimeRange {
                start: start.into(),
                end: None,
            },
        },
        log_id: trust::LogId {
            key_id: STANDARD.encode(log_id(key.spki_der())),
        },
    }
}

impl StackTrust {
    fn range(&self) -> trust::TimeRange {
        trust::TimeRange {
            start: self.valid_from.clone(),
            end: None,
        }
    }

    pub fn trusted_root(&self) -> TrustedRoot {
        TrustedRoot {
            media_type: TRUSTED_ROOT_MEDIA_TYPE.into(),
            tlogs: std::iter::once(&self.tlog_key)
                .chain(&self.extra_tlog_keys)
                .map(|key| log_instance(&self.tlog_url, key, &self.valid_from))
                .chain(
                    self.tlog_v2
                        .iter()
                        .chain(&self.extra_tlog_v2)
                        .filter_map(|v| v.instance(&self.valid_from).ok()),
                )
                .collect(),
            certificate_authorities: std::iter::once(&self.ca_chain)
                .chain(&self.extra_ca_chains)
                .map(|chain| trust::CertificateAuthority {
                    subject: trust::DistinguishedName {
                        organization: self.operator.clone(),
                        common_name: self.operator.clone(),
                    },
                    uri: self.ca_url.clone(),
                    cert_chain: chain_of(chain),
                    valid_for: self.range(),
                })
                .collect(),
            ctlogs: std::iter::once(&self.ctlog_key)
                .chain(&self.extra_ctlog_keys)
                .map(|key| log_instance(&self.ctlog_url, key, &self.valid_from))
                .collect(),
            timestamp_authorities: self
                .tsa
                .iter()
                .flat_map(|t| {
                    std::iter::once(&t.chain)
                        .chain(&self.extra_tsa_chains)
                        .map(|chain| trust::CertificateAuthority {
                            subject: trust::DistinguishedName {
                                organization: self.operator.clone(),
                                common_name: format!("{} timestamp authority", self.operator),
                            },
                            uri: t.url.clone(),
                            cert_chain: chain_of(chain),
                            valid_for: trust::TimeRange {
                                start: crate::time::rfc3339(chain[0].validity().0 as i64),
                                end: None,
                            },
                        })
                })
                .collect(),
        }
    }

    fn service(&self, url: &str) -> Service {
        Service {
            url: url.to_string(),
            major_api_version: 1,
            valid_for: self.range(),
            operator: self.operator.clone(),
        }
    }

    pub fn signing_config(&self) -> SigningConfig {
        SigningConfig {
            media_type: SIGNING_CONFIG_MEDIA_TYPE.into(),
            ca_urls: vec![self.service(&self.ca_url)],
            oidc_urls: self.oidc_url.iter().map(|u| self.service(u)).collect(),
            // v2 for the clients that speak it, v1 for the others. v2 comes first:
            // sigstore-python and sigstore-go take the highest version they support,
            // sigstore-js the first of the newest start date.
            rekor_tlog_urls: self
                .tlog_v2
                .iter()
                .map(|v| Service {
                    major_api_version: 2,
                    ..self.service(&v.url)
                })
                .chain(std::iter::once(self.service(&self.tlog_url)))
                .collect(),
            // clients take the TSA's timestamp endpoint itself
            tsa_urls: self
                .tsa
                .iter()
                .map(|t| self.service(&format!("{}/api/v1/timestamp", t.url)))
                .collect(),
            rekor_tlog_config: ServiceConfiguration {
                selector: "ANY".into(),
                count: None,
            },
            tsa_config: ServiceConfiguration {
                selector: "ANY".into(),
                count: None,
            },
        }
    }

    pub fn client_trust_config(&self) -> ClientTrustConfig {
        ClientTrustConfig {
            media_type: CLIENT_TRUST_CONFIG_MEDIA_TYPE.into(),
            trusted_root: self.trusted_root(),
            signing_config: self.signing_config(),
        }
    }

    /// Writes the three files into `dir` (each replaced atomically). With `previous`, the
    /// trusted root keeps its history: see [`with_history`]; entries new since then start
    /// at `new_from` when given (an operator's `--valid-from`), else now.
    pub fn write(
        &self,
        dir: &Path,
        previous: Option<&TrustedRoot>,
        new_from: Option<&str>,
    ) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let now = crate::time::rfc3339(crate::sequencer::unix_now());
        let root = match previous {
            Some(p) => with_history(p, self.trusted_root(), &now, new_from.unwrap_or(&now)),
            None => self.trusted_root(),
        };
        write_json(&dir.join(TRUSTED_ROOT_FILE), &root)?;
        write_json(&dir.join(SIGNING_CONFIG_FILE), &self.signing_config())?;
        let mut config = self.client_trust_config();
        config.trusted_root = root;
        write_json(&dir.join(CLIENT_TRUST_CONFIG_FILE), &config)
    }
}

/// Reads a trusted root written earlier, if there is one.
pub fn read_trusted_root(path: &Path) -> anyhow::Result<Option<TrustedRoot>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(serde_json::from_slice(&b).with_context(|| {
            format!("{} is not a trusted root", path.display())
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The trusted root after a change of trust material: every CA, log and CT log of
/// `previous` that `current` no longer has stays, its validity window ended at `now`
/// (so what it signed before still verifies); entries in both keep their original
/// window; new entries start at `new_from` (now, or the time an operator chose: a chain
/// published before the CA uses it may start earlier than its publication). Entries are
/// matched by certificate chain or key.
pub fn with_history(
    previous: &TrustedRoot,
    current: TrustedRoot,
    now: &str,
    new_from: &str,
) -> TrustedRoot {
    fn merge_logs(
        old: &[trust::TransparencyLogInstance],
        new: Vec<trust::TransparencyLogInstance>,
        (now, new_from): (&str, &str),
        fresh: bool,
    ) -> Vec<trust::TransparencyLogInstance> {
        let mut out: Vec<_> = old
            .iter()
            .filter(|o| !new.iter().any(|n| n.log_id.key_id == o.log_id.key_id))
            .cloned()
            .map(|mut o| {
                o.public_key
                    .valid_for
                    .end
                    .get_or_insert_with(|| now.to_string());
                o
            })
            .collect();
        for mut n in new {
            match old.iter().find(|o| o.log_id.key_id == n.log_id.key_id) {
                Some(o) => n.public_key.valid_for = o.public_key.valid_for.clone(),
                None if fresh => n.public_key.valid_for.start = new_from.to_string(),
                None => {}
            }
            out.push(n);
        }
        out
    }
    let fresh = !(previous.tlogs.is_empty() && previous.certificate_authorities.is_empty());
    let same_ca = |a: &trust::CertificateAuthority, b: &trust::CertificateAuthority| {
        a.cert_chain.certificates.iter().map(|c| &c.raw_bytes).eq(b
            .cert_chain
            .certificates
            .iter()
            .map(|c| &c.raw_bytes))
    };
    // CAs and timestamp authorities alike, matched by chain
    let merge_cas = |old: &[trust::CertificateAuthority],
                     new: Vec<trust::CertificateAuthority>,
                     dated_by_chain: bool| {
        let mut out: Vec<_> = old
            .iter()
            .filter(|o| !new.iter().any(|n| same_ca(o, n)))
            .cloned()
            .map(|mut o| {
                o.valid_for.end.get_or_insert_with(|| now.to_string());
                o
            })
            .collect();
        for mut n in new {
            match old.iter().find(|o| same_ca(o, &n)) {
                Some(o) => n.valid_for = o.valid_for.clone(),
                // a TSA's window starts at its certificate's notBefore
                None if fresh && !dated_by_chain => n.valid_for.start = new_from.to_string(),
                None => {}
            }
            out.push(n);
        }
        out
    };
    TrustedRoot {
        media_type: current.media_type,
        tlogs: merge_logs(&previous.tlogs, current.tlogs, (now, new_from), fresh),
        certificate_authorities: merge_cas(
            &previous.certificate_authorities,
            current.certificate_authorities,
            false,
        ),
        ctlogs: merge_logs(&previous.ctlogs, current.ctlogs, (now, new_from), fresh),
        timestamp_authorities: merge_cas(
            &previous.timestamp_authorities,
            current.timestamp_authorities,
            true,
        ),
    }
}

pub fn write_json(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    crate::bootstrap::write_atomic(path, &serde_json::to_vec_pretty(value)?)
}

mod export;
pub(crate) use export::get_bytes;
pub use export::{ExportArgs, export, fetch_log_keys};

pub mod continuity;
#[cfg(test)]
mod tests;
