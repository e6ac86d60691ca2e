//! `sigstackd oidc` configuration: a TOML file (users and clients are tables in it), the
//! scalar keys overridable by `SIGSTACK_OIDC_<KEY>`, validated once at start.

use anyhow::{Context, bail};
use serde::Deserialize;
use sigstack_oidc::login::LocalUser;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The issuer URL (`iss` of every token; endpoints live under it). Default
    /// `http://<listen>`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// PEM ECDSA P-256 private key that signs ID tokens (ES256).
    pub signing_key: PathBuf,
    /// PEM public keys of earlier signing keys, still published in the JWKS until the
    /// tokens they signed have expired.
    #[serde(default)]
    pub previous_keys: Vec<PathBuf>,
    /// Lifetime of ID tokens in seconds.
    #[serde(default = "default_token_ttl")]
    pub token_ttl_secs: i64,
    #[serde(default)]
    pub users: Vec<LocalUser>,
    /// Clients besides the built-in public client `sigstore`.
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub id: String,
    /// Exact redirect URIs (a loopback one matches on any port). Empty: loopback and
    /// out-of-band only, as for `sigstore`.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 5556))
}
fn default_token_ttl() -> i64 {
    600
}

pub const KEYS: &[&str] = &["listen", "public_url", "signing_key", "token_ttl_secs"];

impl OidcConfig {
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let cfg: Self = crate::settings::load(path, "SIGSTACK_OIDC_", KEYS, &["token_ttl_secs"])
            .context("invalid OIDC configuration")?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if !(60..=3600).contains(&self.token_ttl_secs) {
            bail!("token_ttl_secs must be between 60 and 3600");
        }
        for u in &self.users {
            if u.username.is_empty() || u.username.contains(char::is_whitespace) {
                bail!(
                    "user name {:?} must be non-empty without spaces",
                    u.username
                );
            }
        }
        Ok(())
    }

    pub fn public_url(&self) -> String {
        crate::settings::public_url(self.public_url.as_deref(), self.listen)
    }
}
