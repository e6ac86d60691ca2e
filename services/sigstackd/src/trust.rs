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
            tlogs: vec![log_instance(
                &self.tlog_url,
                &self.tlog_key,
                &self.valid_from,
            )],
            certificate_authorities: vec![trust::CertificateAuthority {
                subject: trust::DistinguishedName {
                    organization: self.operator.clone(),
                    common_name: self.operator.clone(),
                },
                uri: self.ca_url.clone(),
                cert_chain: trust::CertChain {
                    certificates: self
                        .ca_chain
                        .iter()
                        .map(|c| trust::RawBytes {
                            raw_bytes: STANDARD.encode(c.der()),
                        })
                        .collect(),
                },
                valid_for: self.range(),
            }],
            ctlogs: vec![log_instance(
                &self.ctlog_url,
                &self.ctlog_key,
                &self.valid_from,
            )],
            timestamp_authorities: Vec::new(),
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
            tsa_urls: Vec::new(),
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

    /// Writes the three files into `dir` (each replaced atomically).
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        write_json(&dir.join(TRUSTED_ROOT_FILE), &self.trusted_root())?;
        write_json(&dir.join(SIGNING_CONFIG_FILE), &self.signing_config())?;
        write_json(
            &dir.join(CLIENT_TRUST_CONFIG_FILE),
            &self.client_trust_config(),
        )
    }
}

pub fn write_json(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(value)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
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
    /// Who runs the stack (the `operator` of every service; the CA's subject).
    #[arg(long, default_value = "sigstack")]
    operator: String,
    /// Start of the validity windows (RFC 3339); default: the CA root's notBefore.
    #[arg(long)]
    valid_from: Option<String>,
    /// Directory to write trusted_root.json, signing_config.v0.2.json, trust_config.json.
    #[arg(long, default_value = ".")]
    out: std::path::PathBuf,
}

async fn get_text(http: &reqwest::Client, url: &str) -> anyhow::Result<String> {
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
    Ok(res.text().await?)
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
    let valid_from = args
        .valid_from
        .unwrap_or_else(|| crate::time::rfc3339(root.validity().0 as i64));
    let trust = StackTrust {
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
    trust.write(&args.out)?;
    println!(
        "wrote {}, {} and {} in {}",
        TRUSTED_ROOT_FILE,
        SIGNING_CONFIG_FILE,
        CLIENT_TRUST_CONFIG_FILE,
        args.out.display()
    );
    Ok(())
}
