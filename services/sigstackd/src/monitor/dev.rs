//! The monitor in `sigstackd dev`: it follows the stack's three logs, serves the explorer
//! with sign-in through the dev issuer (client `sigstack-explorer`), and reads a watch
//! list from DATA_DIR/monitor-watch.yaml when there is one.

use super::config::{ExplorerConfig, LogConfig, LogKind, MonitorConfig};
use crate::oidc::config::ClientConfig;
use std::net::SocketAddr;
use std::path::Path;

/// The explorer's client at the dev issuer.
pub const EXPLORER_CLIENT: &str = "sigstack-explorer";

/// The watch list `sigstackd dev` reads, if present.
pub const WATCH_FILE: &str = "monitor-watch.yaml";

/// The explorer's confidential client, its secret kept in DATA_DIR/explorer-secret.
/// Its redirect is the loopback callback, which the issuer matches on any port.
pub fn explorer_client(dir: &Path, url: &str) -> anyhow::Result<ClientConfig> {
    let secret_file = dir.join("explorer-secret");
    crate::bootstrap::secret(&secret_file)?;
    Ok(ClientConfig {
        id: EXPLORER_CLIENT.into(),
        redirect_uris: vec![format!("{url}/login/callback")],
        secret_file: Some(secret_file),
        consent: false,
        workload: None,
    })
}

pub struct DevUrls<'a> {
    pub log: &'a str,
    pub log_v2: &'a str,
    pub ct: &'a str,
    pub tuf: &'a str,
    pub oidc: &'a str,
}

pub fn config(dir: &Path, listen: SocketAddr, url: &str, u: &DevUrls<'_>) -> MonitorConfig {
    let watch = dir.join(WATCH_FILE);
    let log = |name: &str, kind, url: &str| LogConfig {
        name: name.into(),
        kind,
        url: url.into(),
        trusted_url: None,
    };
    MonitorConfig {
        listen,
        database: dir.join("monitor.db"),
        trusted_root: dir.join(crate::trust::TRUSTED_ROOT_FILE),
        watch: watch.exists().then_some(watch),
        poll_ms: 1000,
        batch: 8192,
        logs: vec![
            log("rekor", LogKind::RekorV1, u.log),
            log("rekor-v2", LogKind::Tiles, u.log_v2),
            log("ctlog", LogKind::Ct, u.ct),
        ],
        webhook: None,
        smtp: None,
        explorer: ExplorerConfig {
            public_url: Some(url.into()),
            tuf_url: Some(u.tuf.into()),
            oidc_issuer: Some(u.oidc.into()),
            client_id: Some(EXPLORER_CLIENT.into()),
            client_secret_file: Some(dir.join("explorer-secret")),
            session_key_file: Some(dir.join("explorer-session-key")),
        },
    }
}
