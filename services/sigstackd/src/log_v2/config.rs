//! `sigstackd log-v2` configuration: a TOML file, each key overridable by an environment
//! variable `SIGSTACK_LOG_V2_<KEY>` (upper case), validated once at start.

use anyhow::{Context, bail};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogV2Config {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The URL clients use to reach this log (the trusted root's `baseUrl`, the signing
    /// config's `url`). Its host is the checkpoint origin and key name, as Sigstore
    /// clients require. Default: `http://<listen>`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// `postgres://…` or `sqlite://PATH` (may be the v1 log's database: the tree is its own).
    pub database_url: String,
    /// PEM PKCS#8 Ed25519 private key that signs checkpoints.
    pub signing_key: crate::keys::KeyPath,
    /// The log's name in the database.
    #[serde(default = "default_log_name")]
    pub log_name: String,
    /// A frozen log answers reads and refuses new entries (405): what a log becomes once
    /// its successor (a new log at a new URL) takes the writes.
    #[serde(default)]
    pub frozen: bool,
    /// Largest accepted request body in bytes (413 above).
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    /// Most entries committed in one transaction.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// Most submissions in flight at once; more are turned away with 503 and
    /// `Retry-After` (pushback) instead of queueing without bound.
    #[serde(default = "default_max_outstanding")]
    pub max_outstanding: usize,
    /// Witnesses (C2SP tlog-witness) asked to cosign each new checkpoint.
    #[serde(default)]
    pub witnesses: Vec<WitnessRef>,
    /// How many witnesses must cosign a checkpoint before `/checkpoint` serves it
    /// (default: all of them).
    #[serde(default)]
    pub witness_quorum: Option<usize>,
}

/// A witness the log asks for cosignatures.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessRef {
    /// Its submission prefix (`<url>/add-checkpoint`).
    pub url: String,
    /// Its name (the key name on its cosignatures).
    pub name: String,
    /// Its Ed25519 public key (PEM).
    pub public_key: PathBuf,
}

impl std::fmt::Debug for LogV2Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogV2Config")
            .field("listen", &self.listen)
            .field("public_url", &self.public_url)
            .field(
                "database_url",
                &sigstack_storage::redact(&self.database_url),
            )
            .field("signing_key", &self.signing_key)
            .field("log_name", &self.log_name)
            .field("frozen", &self.frozen)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("max_batch", &self.max_batch)
            .field("max_outstanding", &self.max_outstanding)
            .field("witnesses", &self.witnesses)
            .field("witness_quorum", &self.witness_quorum)
            .finish()
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 3003))
}
fn default_log_name() -> String {
    "rekor-v2".into()
}
fn default_max_request_bytes() -> usize {
    256 << 10
}
fn default_max_batch() -> usize {
    1024
}
fn default_max_outstanding() -> usize {
    2048
}

/// The configuration keys, as environment overrides see them.
pub const KEYS: &[&str] = &[
    "listen",
    "public_url",
    "database_url",
    "signing_key",
    "log_name",
    "max_request_bytes",
    "max_batch",
    "max_outstanding",
];

impl LogV2Config {
    /// Reads `path` (if given), applies `SIGSTACK_LOG_V2_*` overrides, validates.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let cfg: Self = crate::settings::load(
            path,
            "SIGSTACK_LOG_V2_",
            KEYS,
            &["max_request_bytes", "max_batch", "max_outstanding"],
        )
        .context("invalid log-v2 configuration")?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if self.max_batch == 0 || self.max_batch > 10_000 {
            bail!("max_batch must be between 1 and 10000");
        }
        if self.max_request_bytes < 1024 {
            bail!("max_request_bytes must be at least 1024");
        }
        if self.max_outstanding == 0 {
            bail!("max_outstanding must be at least 1");
        }
        if let Some(q) = self.witness_quorum
            && (q == 0 || q > self.witnesses.len())
        {
            bail!(
                "witness_quorum {q} cannot be met by {} witnesses",
                self.witnesses.len()
            );
        }
        for (i, w) in self.witnesses.iter().enumerate() {
            if self.witnesses[..i]
                .iter()
                .any(|o| o.name == w.name || o.public_key == w.public_key)
            {
                bail!(
                    "witness {:?} is listed twice: each witness counts once toward the quorum",
                    w.name
                );
            }
            crate::settings::check_flag_url("witnesses.url", &w.url)?;
            if !sigstack_log::note::valid_name(&w.name) {
                bail!("witness name {:?} cannot name a note key", w.name);
            }
        }
        crate::settings::check_public_url(self.public_url.as_deref())?;
        let origin = self.origin()?;
        if !sigstack_log::note::valid_name(&origin) {
            bail!("the public URL's host {origin:?} cannot name a checkpoint key");
        }
        Ok(())
    }

    pub fn public_url(&self) -> String {
        crate::settings::public_url(self.public_url.as_deref(), self.listen)
    }

    /// The checkpoint origin and key name: the host of the public URL (sigstore-go
    /// verifies the checkpoint under exactly that name).
    pub fn origin(&self) -> anyhow::Result<String> {
        crate::log::config::host_of(&self.public_url())
    }

    /// The configuration `sigstackd dev` runs the v2 log with.
    pub fn for_dev(
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
            log_name: default_log_name(),
            frozen: false,
            max_request_bytes: default_max_request_bytes(),
            max_batch: default_max_batch(),
            max_outstanding: default_max_outstanding(),
            witnesses: Vec::new(),
            witness_quorum: None,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}
