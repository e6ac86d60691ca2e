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
            rekor_tlog_urls: vec![self.service(&self.tlog_url)],
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

#[derive(clap::Args)]
pub struct ExportArgs {
    /// Base URL of the CA (`sigstackd ca`).
    #[arg(long)]
    ca_url: String,
    /// Base URL of the transparency log (`sigstackd log`).
    #[arg(long)]
    tlog_url: String,
    /// Base URL of the CT log (`sigstackd ctlog`).
    #[arg(long)]
    ctlog_url: String,
    /// Base URL of the OIDC issuer clients should use (optional).
    #[arg(long)]
    oidc_url: Option<String>,
    /// A CA chain to publish beside the one the running CA serves (PEM, issuing
    /// certificate first): a new intermediate from `sigstackd ca new-intermediate`,
    /// published before the CA is pointed at it, valid from --valid-from (or now).
    #[arg(long)]
    add_ca_chain: Option<std::path::PathBuf>,
    /// Base URL of the timestamp authority (`sigstackd tsa`), if the stack runs one: its
    /// chain goes into the trusted root and its endpoint into the signing config.
    #[arg(long)]
    tsa_url: Option<String>,
    /// A timestamp authority chain to publish beside the one the running TSA serves
    /// (PEM, leaf first): a new certificate from `sigstackd tsa new-certificate`,
    /// published before the TSA is pointed at it. Needs --tsa-url.
    #[arg(long, requires = "tsa_url")]
    add_tsa_chain: Option<std::path::PathBuf>,
    /// A CT log key to publish beside the running CT log's (PEM public key, from
    /// `sigstackd ctlog new-key`): the CT log that takes over, published before the CA
    /// is pointed at it, valid from --valid-from (or now).
    #[arg(long)]
    add_ctlog_key: Option<std::path::PathBuf>,
    /// A transparency log key to publish beside the running log's (PEM public key): the
    /// key of the log's next shard, published before `sigstackd log new-shard
    /// --signing-key` starts it, valid from --valid-from (or now).
    #[arg(long)]
    add_tlog_key: Option<std::path::PathBuf>,
    /// Who runs the stack (the `operator` of every service; the CA's subject).
    #[arg(long, default_value = "sigstack")]
    operator: String,
    /// Start of the validity windows (RFC 3339); default: the CA root's notBefore.
    #[arg(long)]
    valid_from: Option<String>,
    /// Directory to write trusted_root.json, signing_config.v0.2.json, trust_config.json.
    #[arg(long, default_value = ".")]
    out: std::path::PathBuf,
    /// The trusted_root.json published so far: CAs and keys the services no longer use
    /// are kept, their validity ended now, so earlier signatures still verify.
    #[arg(long)]
    previous: Option<std::path::PathBuf>,
}

/// The TSA's chain from its `certchain` endpoint, checked against the TSA profile
/// (its leaf's key is the one that signs).
pub(crate) async fn fetch_tsa(http: &reqwest::Client, url: &str) -> anyhow::Result<TsaTrust> {
    let pem = get_bytes(http, &format!("{url}/api/v1/timestamp/certchain")).await?;
    let chain = match KeyMaterial::from_pem(&pem).context("the TSA's certificate chain")? {
        KeyMaterial::Certificates(c) => c,
        KeyMaterial::PublicKey(_) => anyhow::bail!("the TSA's chain holds no certificates"),
    };
    let leaf_key = chain
        .first()
        .context("empty TSA chain")?
        .public_key()
        .clone();
    sigstack_tsa::check_chain(&chain, &leaf_key)
        .map_err(|e| anyhow::anyhow!("the TSA at {url}: {e}"))?;
    Ok(TsaTrust {
        url: url.to_string(),
        chain,
    })
}

/// The body of a successful GET.
pub(crate) async fn get_bytes(http: &reqwest::Client, url: &str) -> anyhow::Result<Vec<u8>> {
    let res = http
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    anyhow::ensure!(
        res.status().is_success(),
        "GET {url}: HTTP {}",
        res.status()
    );
    Ok(res.bytes().await?.to_vec())
}

async fn get_text(http: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    String::from_utf8(get_bytes(http, url).await?).with_context(|| format!("GET {url}: not text"))
}

/// The public keys of the transparency log and the CT log, from their endpoints.
pub async fn fetch_log_keys(
    http: &reqwest::Client,
    tlog_url: &str,
    ctlog_url: &str,
) -> anyhow::Result<(PublicKey, PublicKey)> {
    let tlog_key = PublicKey::from_pem(
        get_text(http, &format!("{tlog_url}/api/v1/log/publicKey"))
            .await?
            .as_bytes(),
    )
    .context("the transparency log's key")?;
    let ctlog_key = PublicKey::from_pem(
        get_text(http, &format!("{ctlog_url}/ct/v1/public-key"))
            .await?
            .as_bytes(),
    )
    .context("the CT log's key")?;
    Ok((tlog_key, ctlog_key))
}

/// `sigstackd trust export`: asks the running services for their public parts, checks
/// them (the CA chain must verify and end in a self-signed root), writes the files.
pub async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()?;
    let trim = |u: &str| u.trim_end_matches('/').to_string();
    for (flag, u) in [
        ("--ca-url", Some(&args.ca_url)),
        ("--tlog-url", Some(&args.tlog_url)),
        ("--ctlog-url", Some(&args.ctlog_url)),
        ("--oidc-url", args.oidc_url.as_ref()),
        ("--tsa-url", args.tsa_url.as_ref()),
    ] {
        if let Some(u) = u {
            crate::settings::check_flag_url(flag, u)?;
        }
    }
    let (ca_url, tlog_url, ctlog_url) = (
        trim(&args.ca_url),
        trim(&args.tlog_url),
        trim(&args.ctlog_url),
    );
    let bundle: sigstack_types::fulcio::TrustBundle =
        serde_json::from_str(&get_text(&http, &format!("{ca_url}/api/v2/trustBundle")).await?)
            .context("the CA's trust bundle")?;
    let pems = bundle
        .chains
        .first()
        .context("the CA has no chain")?
        .certificates
        .concat();
    let chain = match KeyMaterial::from_pem(pems.as_bytes()).context("the CA's chain")? {
        KeyMaterial::Certificates(c) => c,
        KeyMaterial::PublicKey(_) => anyhow::bail!("the CA's chain holds no certificates"),
    };
    KeyMaterial::Certificates(chain.clone())
        .verify_chain()
        .context("the CA's chain does not verify")?;
    let root = chain.last().context("empty CA chain")?;
    root.verify_issued_by(root)
        .context("the CA's chain does not end in a self-signed root")?;
    let (tlog_key, ctlog_key) = fetch_log_keys(&http, &tlog_url, &ctlog_url).await?;
    let new_from = args.valid_from.clone();
    let valid_from = args
        .valid_from
        .unwrap_or_else(|| crate::time::rfc3339(root.validity().0 as i64));
    let tsa = match &args.tsa_url {
        Some(u) => Some(fetch_tsa(&http, &trim(u)).await?),
        None => None,
    };
    let extra_ca_chains = match &args.add_ca_chain {
        Some(p) => {
            let pem = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            let c = match KeyMaterial::from_pem(&pem)
                .with_context(|| format!("parsing {}", p.display()))?
            {
                KeyMaterial::Certificates(c) => c,
                KeyMaterial::PublicKey(_) => anyhow::bail!("{} holds no certificates", p.display()),
            };
            KeyMaterial::Certificates(c.clone())
                .verify_chain()
                .with_context(|| format!("the chain in {} does not verify", p.display()))?;
            vec![c]
        }
        None => Vec::new(),
    };
    let extra_tsa_chains = match &args.add_tsa_chain {
        Some(p) => {
            let pem = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            let c = match KeyMaterial::from_pem(&pem)
                .with_context(|| format!("parsing {}", p.display()))?
            {
                KeyMaterial::Certificates(c) if !c.is_empty() => c,
                _ => anyhow::bail!("{} holds no certificates", p.display()),
            };
            let leaf = c[0].public_key().clone();
            sigstack_tsa::check_chain(&c, &leaf)
                .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            vec![c]
        }
        None => Vec::new(),
    };
    let p256 = |p: &Option<std::path::PathBuf>, what: &str| -> anyhow::Result<Vec<PublicKey>> {
        let Some(p) = p else { return Ok(Vec::new()) };
        let key = crate::tuf::ceremony::load_public(p)?;
        anyhow::ensure!(
            key.key_details() == "PKIX_ECDSA_P256_SHA_256",
            "{}: a {what} key is ECDSA P-256",
            p.display()
        );
        Ok(vec![key])
    };
    let extra_ctlog_keys = p256(&args.add_ctlog_key, "CT log")?;
    let extra_tlog_keys = p256(&args.add_tlog_key, "transparency log")?;
    let trust = StackTrust {
        tsa,
        extra_ca_chains,
        extra_tsa_chains,
        extra_ctlog_keys,
        extra_tlog_keys,
        operator: args.operator,
        valid_from,
        ca_url,
        ca_chain: chain,
        tlog_url,
        tlog_key,
        ctlog_url,
        ctlog_key,
        oidc_url: args.oidc_url.map(|u| trim(&u)),
    };
    let previous = match &args.previous {
        Some(p) => {
            Some(read_trusted_root(p)?.with_context(|| format!("{} does not exist", p.display()))?)
        }
        None => None,
    };
    trust.write(&args.out, previous.as_ref(), new_from.as_deref())?;
    println!(
        "wrote {}, {} and {} in {}",
        TRUSTED_ROOT_FILE,
        SIGNING_CONFIG_FILE,
        CLIENT_TRUST_CONFIG_FILE,
        args.out.display()
    );
    Ok(())
}

pub mod continuity;
#[cfg(test)]
mod tests;
