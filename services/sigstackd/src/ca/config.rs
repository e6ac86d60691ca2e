//! `sigstackd ca` configuration: a TOML file, each key overridable by
//! `SIGSTACK_CA_<KEY>`, validated once at start. The OIDC issuers the CA trusts live in a
//! separate file in Fulcio's own format, so an operator can carry theirs over.

use anyhow::{Context, bail};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// PEM private key of the issuing (intermediate) certificate: ECDSA P-256 or P-384.
    pub signing_key: crate::keys::KeyPath,
    /// PEM chain: the issuing certificate first, then up to the root.
    pub ca_chain: PathBuf,
    /// Fulcio-format issuer configuration (YAML or JSON: `oidc-issuers`, `meta-issuers`,
    /// `ci-issuer-metadata`).
    pub issuers: PathBuf,
    /// Base URL of the CT log that precertificates go to.
    pub ctlog_url: String,
    /// PEM public key of that CT log: every SCT is verified with it before it is
    /// embedded, and it is the key the trust files publish.
    pub ctlog_public_key: PathBuf,
    /// The URL clients reach the CA at (the trust files' CA `uri` and `caUrls`).
    /// Default: `http://<listen>`.
    #[serde(default)]
    pub public_url: Option<String>,
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    /// Trust export (`GET /api/v1/trust/*`): the transparency log clients should use.
    /// Without it those endpoints answer 404.
    #[serde(default)]
    pub tlog_url: Option<String>,
    /// Trust export: the tiled (Rekor v2) log, listed beside `tlog_url`, with
    /// `tlog_v2_public_key` (its Ed25519 key, PEM).
    #[serde(default)]
    pub tlog_v2_url: Option<String>,
    #[serde(default)]
    pub tlog_v2_public_key: Option<PathBuf>,
    /// Trust export: the OIDC issuer clients should use (signing config `oidcUrls`).
    #[serde(default)]
    pub oidc_url: Option<String>,
    /// Trust export: the timestamp authority clients should use (its endpoint goes into
    /// the signing config), with `tsa_chain`.
    #[serde(default)]
    pub tsa_url: Option<String>,
    /// Trust export: the timestamp authority's certificate chain (PEM, leaf first), for
    /// the trusted root.
    #[serde(default)]
    pub tsa_chain: Option<PathBuf>,
    /// Trust export: who runs the stack (`operator` of every service, the CA's subject).
    #[serde(default = "default_operator")]
    pub operator: String,
    /// Clock skew tolerated on token `exp`, `nbf` and `iat`, in seconds.
    #[serde(default = "default_leeway")]
    pub token_leeway_secs: i64,
    /// Where the CA fetches an issuer's discovery document and keys when the issuer's
    /// public URL does not reach it from where the CA runs (containers): a URL prefix,
    /// as in tokens' `iss`, mapped to the prefix to fetch from instead. The documents
    /// themselves are checked unchanged.
    #[serde(default)]
    pub issuer_routes: std::collections::BTreeMap<String, String>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 5555))
}
fn default_max_request_bytes() -> usize {
    64 << 10
}
fn default_operator() -> String {
    "sigstack".into()
}
fn default_leeway() -> i64 {
    60
}

pub const KEYS: &[&str] = &[
    "listen",
    "signing_key",
    "ca_chain",
    "issuers",
    "ctlog_url",
    "ctlog_public_key",
    "public_url",
    "tlog_url",
    "oidc_url",
    "tsa_url",
    "tsa_chain",
    "tlog_v2_url",
    "tlog_v2_public_key",
    "operator",
    "max_request_bytes",
    "token_leeway_secs",
];

fn is_http(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

impl CaConfig {
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let cfg: Self = crate::settings::load(
            path,
            "SIGSTACK_CA_",
            KEYS,
            &["max_request_bytes", "token_leeway_secs"],
        )
        .context("invalid CA configuration")?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn for_dev(
        listen: SocketAddr,
        signing_key: &Path,
        ca_chain: &Path,
        issuers: &Path,
        ctlog_url: &str,
        ctlog_public_key: &Path,
    ) -> Self {
        Self {
            listen,
            signing_key: signing_key.into(),
            ca_chain: ca_chain.into(),
            issuers: issuers.into(),
            ctlog_url: ctlog_url.into(),
            ctlog_public_key: ctlog_public_key.into(),
            public_url: None,
            tlog_url: None,
            tlog_v2_url: None,
            tlog_v2_public_key: None,
            oidc_url: None,
            tsa_url: None,
            tsa_chain: None,
            operator: default_operator(),
            max_request_bytes: default_max_request_bytes(),
            token_leeway_secs: default_leeway(),
            issuer_routes: Default::default(),
        }
    }

    pub fn public_url(&self) -> String {
        crate::settings::public_url(self.public_url.as_deref(), self.listen)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.max_request_bytes < 1024 {
            bail!("max_request_bytes must be at least 1024");
        }
        if !(0..=600).contains(&self.token_leeway_secs) {
            bail!("token_leeway_secs must be between 0 and 600");
        }
        crate::settings::check_public_url(self.public_url.as_deref())?;
        if !self.ctlog_url.starts_with("http://") && !self.ctlog_url.starts_with("https://") {
            bail!("ctlog_url must be an http(s) URL");
        }
        for (from, to) in &self.issuer_routes {
            if !is_http(from) || !is_http(to) {
                bail!("issuer_routes: {from:?} = {to:?} must both be http(s) URLs");
            }
        }
        Ok(())
    }
}
