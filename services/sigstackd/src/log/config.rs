//! `sigstackd log` configuration: a TOML file, each key overridable by an environment
//! variable `SIGSTACK_LOG_<KEY>` (upper case), validated once at start.

use anyhow::{Context, bail};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The URL clients use to reach this log (the trusted root's `baseUrl`). Its host
    /// names the checkpoint key and origin. Default: `http://<listen>`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// `postgres://…` or `sqlite://PATH`.
    pub database_url: String,
    /// PEM ECDSA P-256 private key (PKCS#8 or SEC1) that signs checkpoints and SETs of
    /// the active shard.
    pub signing_key: crate::keys::KeyPath,
    /// The keys of frozen shards started with another key (before a rotation: `log
    /// new-shard --signing-key NEW`): each still signs its own shard's SETs on reads.
    #[serde(default)]
    pub previous_keys: Vec<PathBuf>,
    /// Largest accepted request body in bytes (413 above).
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    /// Most entries committed in one transaction.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// The log's name in the database (several logs may share one).
    #[serde(default = "default_log_name")]
    pub log_name: String,
    /// Most entry IDs one search answers, newest first; a full page names the next in
    /// the `X-Sigstack-Next-Page` header.
    #[serde(default = "default_search_page_size")]
    pub search_page_size: usize,
    /// The URL the other replicas of this log reach this process at (its own address,
    /// not the load balancer's). Set on every replica of a log sharing one PostgreSQL
    /// database: they elect one sequencer and the others forward writes to it.
    #[serde(default)]
    pub advertise_url: Option<String>,
}

impl std::fmt::Debug for LogConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogConfig")
            .field("listen", &self.listen)
            .field("public_url", &self.public_url)
            .field(
                "database_url",
                &sigstack_storage::redact(&self.database_url),
            )
            .field("signing_key", &self.signing_key)
            .field("previous_keys", &self.previous_keys)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("max_batch", &self.max_batch)
            .field("log_name", &self.log_name)
            .field("search_page_size", &self.search_page_size)
            .field("advertise_url", &self.advertise_url)
            .finish()
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 3000))
}
fn default_max_request_bytes() -> usize {
    4 << 20
}
fn default_max_batch() -> usize {
    1024
}
fn default_log_name() -> String {
    "rekor".into()
}
fn default_search_page_size() -> usize {
    10_000
}

/// The configuration keys, as environment overrides see them.
pub const KEYS: &[&str] = &[
    "listen",
    "public_url",
    "database_url",
    "signing_key",
    "max_request_bytes",
    "max_batch",
    "log_name",
    "search_page_size",
    "advertise_url",
];

impl LogConfig {
    /// Reads `path` (if given), applies `SIGSTACK_LOG_*` overrides, validates.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let cfg: LogConfig = crate::settings::load(
            path,
            "SIGSTACK_LOG_",
            KEYS,
            &["max_request_bytes", "max_batch", "search_page_size"],
        )
        .context("invalid log configuration")?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.max_batch == 0 || self.max_batch > 10_000 {
            bail!("max_batch must be between 1 and 10000");
        }
        if let Some(u) = &self.advertise_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            bail!("advertise_url must be an http(s) URL");
        }
        if self.max_request_bytes < 1024 {
            bail!("max_request_bytes must be at least 1024");
        }
        if self.search_page_size == 0 || self.search_page_size > 10_000 {
            bail!("search_page_size must be between 1 and 10000");
        }
        crate::settings::check_public_url(self.public_url.as_deref())?;
        self.hostname()?;
        Ok(())
    }

    pub fn public_url(&self) -> String {
        crate::settings::public_url(self.public_url.as_deref(), self.listen)
    }

    /// Host part of the public URL: checkpoint key name and origin prefix.
    pub fn hostname(&self) -> anyhow::Result<String> {
        host_of(&self.public_url())
    }
}

/// The host of `scheme://host[:port][/path]` (brackets kept off IPv6 literals).
pub fn host_of(url: &str) -> anyhow::Result<String> {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .with_context(|| format!("public URL {url:?} has no scheme"))?;
    let authority = rest.split('/').next().unwrap_or("");
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(authority)
    };
    if host.is_empty() || host.contains(' ') {
        bail!("public URL {url:?} has no host");
    }
    Ok(host.to_string())
}

impl LogConfig {
    /// The configuration `sigstackd dev` runs the log with.
    pub fn load_for_dev(
        listen: SocketAddr,
        public_url: &str,
        database_url: &str,
        signing_key: &Path,
    ) -> anyhow::Result<Self> {
        let cfg = Self {
            listen,
            public_url: Some(public_url.to_string()),
            database_url: database_url.to_string(),
            signing_key: signing_key.into(),
            previous_keys: Vec::new(),
            max_request_bytes: default_max_request_bytes(),
            max_batch: default_max_batch(),
            log_name: default_log_name(),
            search_page_size: default_search_page_size(),
            advertise_url: None,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}
