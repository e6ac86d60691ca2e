//! `sigstackd tsa` configuration: a TOML file, each key overridable by
//! `SIGSTACK_TSA_<KEY>`, validated once at start.

use anyhow::{Context, bail};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsaConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// PEM ECDSA (P-256 or P-384) private key that signs timestamps.
    pub signing_key: crate::keys::KeyPath,
    /// PEM certificate chain of that key: the TSA certificate first, then its issuers up
    /// to the root (at least two certificates; the profile is checked at start).
    pub cert_chain: PathBuf,
    /// The policy OID stamped when a request names none.
    #[serde(default = "default_policy")]
    pub policy_oid: String,
    /// Further policy OIDs a request may name (comma-separated in the environment).
    #[serde(default)]
    pub accepted_policy_oids: Vec<String>,
    /// The accuracy stated in every timestamp, in milliseconds: how far the host's clock
    /// may be from UTC (keep it synchronised with NTP).
    #[serde(default = "default_accuracy_ms")]
    pub accuracy_ms: u64,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 3004))
}
fn default_policy() -> String {
    sigstack_tsa::DEFAULT_POLICY.into()
}
fn default_accuracy_ms() -> u64 {
    1000
}

pub const KEYS: &[&str] = &[
    "listen",
    "signing_key",
    "cert_chain",
    "policy_oid",
    "accuracy_ms",
];

impl TsaConfig {
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let mut cfg: Self = crate::settings::load(path, "SIGSTACK_TSA_", KEYS, &["accuracy_ms"])
            .context("invalid TSA configuration")?;
        if let Ok(v) = std::env::var("SIGSTACK_TSA_ACCEPTED_POLICY_OIDS") {
            cfg.accepted_policy_oids = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
        }
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn for_dev(listen: SocketAddr, signing_key: &Path, cert_chain: &Path) -> Self {
        Self {
            listen,
            signing_key: signing_key.into(),
            cert_chain: cert_chain.into(),
            policy_oid: default_policy(),
            accepted_policy_oids: Vec::new(),
            accuracy_ms: default_accuracy_ms(),
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.accuracy_ms == 0 || self.accuracy_ms > 60_000 {
            bail!("accuracy_ms must be between 1 and 60000");
        }
        Ok(())
    }
}
