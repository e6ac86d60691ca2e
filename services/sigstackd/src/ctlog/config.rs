//! `sigstackd ctlog` configuration: a TOML file, each key overridable by
//! `SIGSTACK_CTLOG_<KEY>`, validated once at start.

use anyhow::{Context, bail};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CtLogConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// `postgres://…` or `sqlite://PATH` (may be the transparency log's database).
    pub database_url: String,
    /// PEM ECDSA P-256 private key that signs SCTs and tree heads.
    pub signing_key: crate::keys::KeyPath,
    /// PEM file of the root certificates whose chains this log accepts.
    pub roots: PathBuf,
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    #[serde(default = "default_log_name")]
    pub log_name: String,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 6962))
}
fn default_max_request_bytes() -> usize {
    256 << 10
}
fn default_max_batch() -> usize {
    1024
}
fn default_log_name() -> String {
    "ctlog".into()
}

pub const KEYS: &[&str] = &[
    "listen",
    "database_url",
    "signing_key",
    "roots",
    "max_request_bytes",
    "max_batch",
    "log_name",
];

impl CtLogConfig {
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let cfg: Self = crate::settings::load(
            path,
            "SIGSTACK_CTLOG_",
            KEYS,
            &["max_request_bytes", "max_batch"],
        )
        .context("invalid CT log configuration")?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn for_dev(
        listen: SocketAddr,
        database_url: &str,
        signing_key: &Path,
        roots: &Path,
    ) -> Self {
        Self {
            listen,
            database_url: database_url.into(),
            signing_key: signing_key.into(),
            roots: roots.into(),
            max_request_bytes: default_max_request_bytes(),
            max_batch: default_max_batch(),
            log_name: default_log_name(),
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.max_batch == 0 || self.max_batch > 10_000 {
            bail!("max_batch must be between 1 and 10000");
        }
        if self.max_request_bytes < 1024 {
            bail!("max_request_bytes must be at least 1024");
        }
        Ok(())
    }
}
