//! `sigstackd tuf` configuration: a TOML file, each key overridable by
//! `SIGSTACK_TUF_<KEY>`, validated once at start.

use anyhow::{Context, bail};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TufConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// `postgres://…` or `sqlite://PATH`: where the repository's files live.
    pub database_url: String,
    /// PEM ECDSA key of the online roles (snapshot and timestamp). Kept outside the
    /// database; the offline root and targets keys never reach this service.
    pub online_key: crate::keys::KeyPath,
    /// Lifetime of each timestamp, in seconds (re-signed at half of it).
    #[serde(default = "default_timestamp_ttl")]
    pub timestamp_ttl_secs: i64,
    /// Lifetime of each snapshot, in seconds (re-signed at half of it).
    #[serde(default = "default_snapshot_ttl")]
    pub snapshot_ttl_secs: i64,
    /// Alarm (logs, metrics, health) when root or targets expire sooner than this.
    #[serde(default = "default_alarm")]
    pub expiry_alarm_secs: i64,
    /// How often the database is checked for new metadata and expiry, in seconds.
    #[serde(default = "default_poll")]
    pub poll_secs: u64,
    /// A directory of copies of other repositories (`tuf mirror --out DIR/NAME`,
    /// `airgap import --out DIR`), each served byte for byte at `/mirrors/NAME/`.
    #[serde(default)]
    pub mirrors_dir: Option<PathBuf>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8088))
}
fn default_timestamp_ttl() -> i64 {
    86_400
}
fn default_snapshot_ttl() -> i64 {
    7 * 86_400
}
fn default_alarm() -> i64 {
    30 * 86_400
}
fn default_poll() -> u64 {
    10
}

pub const KEYS: &[&str] = &[
    "listen",
    "database_url",
    "online_key",
    "timestamp_ttl_secs",
    "snapshot_ttl_secs",
    "expiry_alarm_secs",
    "poll_secs",
    "mirrors_dir",
];

impl TufConfig {
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let cfg: Self = crate::settings::load(
            path,
            "SIGSTACK_TUF_",
            KEYS,
            &[
                "timestamp_ttl_secs",
                "snapshot_ttl_secs",
                "expiry_alarm_secs",
                "poll_secs",
            ],
        )
        .context("invalid TUF configuration")?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if self.timestamp_ttl_secs < 60 || self.snapshot_ttl_secs < self.timestamp_ttl_secs {
            bail!("timestamp_ttl_secs must be at least 60 and at most snapshot_ttl_secs");
        }
        if self.poll_secs == 0 || self.poll_secs as i64 * 4 > self.timestamp_ttl_secs {
            bail!("poll_secs must be positive and well below timestamp_ttl_secs");
        }
        if let Some(d) = self.mirrors_dir.as_ref().filter(|d| !d.is_dir()) {
            bail!("mirrors_dir {} is not a directory", d.display());
        }
        Ok(())
    }
}
