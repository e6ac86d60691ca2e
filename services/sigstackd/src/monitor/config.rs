//! `sigstackd monitor` configuration: a TOML file (logs, notifications and the explorer
//! are tables), scalar keys overridable by `SIGSTACK_MONITOR_<KEY>`. What to watch comes
//! from a separate YAML file in rekor-monitor's format ([`super::watch`]).

use anyhow::{Context, bail};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorConfig {
    /// Where the explorer, `/metrics` and the health checks are served.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The monitor's own SQLite database: positions, verified checkpoints, the entry
    /// index the explorer searches, matches, alerts and the notification outbox.
    pub database: PathBuf,
    /// The trusted root whose keys every checkpoint and tree head must verify with.
    pub trusted_root: PathBuf,
    /// rekor-monitor's configuration (`monitoredValues`); none: index and audit only.
    #[serde(default)]
    pub watch: Option<PathBuf>,
    /// How often each log's checkpoint is fetched, in milliseconds.
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
    /// Entries committed per step of a catch-up: what one step holds in memory and how
    /// often progress becomes visible.
    #[serde(default = "default_batch")]
    pub batch: u64,
    /// The logs to follow.
    #[serde(default, rename = "log")]
    pub logs: Vec<LogConfig>,
    #[serde(default)]
    pub webhook: Option<WebhookConfig>,
    #[serde(default)]
    pub smtp: Option<SmtpConfig>,
    #[serde(default)]
    pub explorer: ExplorerConfig,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum LogKind {
    /// Rekor v1 API (`/api/v1/log`, entries by index).
    RekorV1,
    /// C2SP tlog-tiles (Rekor v2's read API).
    Tiles,
    /// RFC 6962 certificate transparency (`/ct/v1/...`).
    Ct,
}

impl LogKind {
    pub fn label(self) -> &'static str {
        match self {
            LogKind::RekorV1 => "Rekor v1",
            LogKind::Tiles => "tiled, Rekor v2",
            LogKind::Ct => "certificate transparency",
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Short name used in URLs and reports (`rekor`, `rekor-v2`, `ctlog`).
    pub name: String,
    pub kind: LogKind,
    pub url: String,
    /// The URL the trusted root names the log under, when it is reached at another one
    /// (a mirror or a cache in front of it). Default: `url`.
    #[serde(default)]
    pub trusted_url: Option<String>,
}

impl LogConfig {
    pub fn trusted_url(&self) -> &str {
        self.trusted_url.as_deref().unwrap_or(&self.url)
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// A file holding the shared secret each delivery is signed with
    /// (`X-Sigstack-Signature: sha256=<hex HMAC-SHA256 of the body>`).
    pub secret_file: PathBuf,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// `host:port` of the mail relay (plain SMTP, as a relay on the local network takes
    /// it; put a TLS-terminating relay in between for anything else).
    pub server: String,
    pub from: String,
    /// Who gets every match and alert (people who subscribe in the explorer get their
    /// own matches besides).
    #[serde(default)]
    pub to: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplorerConfig {
    /// The explorer's public URL (for links in notifications and the sign-in redirect).
    #[serde(default)]
    pub public_url: Option<String>,
    /// The TUF repository shown on the TUF page.
    #[serde(default)]
    pub tuf_url: Option<String>,
    /// Sign-in with the stack's identity provider: its issuer URL, and this explorer's
    /// client there (confidential: `client_secret_file`). None: no sign-in.
    #[serde(default)]
    pub oidc_issuer: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// A file holding the key session cookies are signed with (created when missing).
    #[serde(default)]
    pub session_key_file: Option<PathBuf>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 3010))
}
fn default_poll_ms() -> u64 {
    1000
}
fn default_batch() -> u64 {
    8192
}

pub const KEYS: &[&str] = &[
    "listen",
    "database",
    "trusted_root",
    "watch",
    "poll_ms",
    "batch",
];

impl MonitorConfig {
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let cfg: Self =
            crate::settings::load(path, "SIGSTACK_MONITOR_", KEYS, &["poll_ms", "batch"])
                .context("invalid monitor configuration")?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if !(50..=3_600_000).contains(&self.poll_ms) {
            bail!("poll_ms must be between 50 and 3600000");
        }
        if !(256..=1_048_576).contains(&self.batch) {
            bail!("batch must be between 256 and 1048576");
        }
        if self.logs.is_empty() {
            bail!("name at least one [[log]] to follow");
        }
        let mut names = std::collections::HashSet::new();
        for l in &self.logs {
            if l.name.is_empty()
                || !l
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                bail!("log name {:?}: letters, digits, '-' and '_' only", l.name);
            }
            if !names.insert(&l.name) {
                bail!("two logs are named {:?}", l.name);
            }
            if !(l.url.starts_with("http://") || l.url.starts_with("https://")) {
                bail!("log {}: url must be http(s)", l.name);
            }
        }
        let e = &self.explorer;
        if let Some(u) = &e.public_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            bail!("[explorer] public_url must be an http(s) URL");
        }
        if e.oidc_issuer.is_some() != e.client_id.is_some() {
            bail!("[explorer] sign-in needs both oidc_issuer and client_id");
        }
        if e.oidc_issuer.is_some() && e.public_url.is_none() {
            bail!("[explorer] sign-in needs public_url (the redirect comes back to it)");
        }
        if let Some(s) = &self.smtp
            && !s.from.contains('@')
        {
            bail!("[smtp] from must be an e-mail address");
        }
        Ok(())
    }
}
