//! `sigstackd oidc` configuration: a TOML file (users, clients and connectors are tables
//! in it), the scalar keys overridable by `SIGSTACK_OIDC_<KEY>`, validated once at start.

use anyhow::{Context, bail};
use serde::Deserialize;
use sigstack_oidc::login::LocalUser;
use std::collections::BTreeMap;
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
    /// PEM private key that signs ID tokens: ECDSA P-256 (ES256) or RSA (RS256).
    pub signing_key: crate::keys::KeyPath,
    /// PEM public keys of earlier signing keys, still published in the JWKS until the
    /// tokens they signed have expired.
    #[serde(default)]
    pub previous_keys: Vec<PathBuf>,
    /// Lifetime of ID tokens in seconds.
    #[serde(default = "default_token_ttl")]
    pub token_ttl_secs: i64,
    #[serde(default)]
    pub users: Vec<LocalUser>,
    /// Clients besides the built-in public client `sigstore` (an entry with that id
    /// replaces the built-in one, e.g. to ask for consent).
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
    /// Upstream identity providers people may sign in with instead of a local account.
    #[serde(default)]
    pub connectors: Vec<ConnectorConfig>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub id: String,
    /// Exact redirect URIs (a loopback one matches on any port). Empty: loopback and
    /// out-of-band only, as for `sigstore`.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// A file holding the client secret: the client is then confidential and must
    /// authenticate at the token endpoint (HTTP Basic or `client_secret` in the form).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Show a consent page after sign-in before the application gets the identity.
    #[serde(default)]
    pub consent: bool,
    /// A machine identity: the client may use the `client_credentials` grant to obtain
    /// workload tokens from the workload issuer (`<issuer>/workload`).
    #[serde(default)]
    pub workload: Option<WorkloadConfig>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadConfig {
    /// The token's `sub`, naming the job (a URI for the CA's `uri` issuer type, a name
    /// for `username`).
    pub subject: String,
    /// Audiences the client may ask for (`audience` form field); the first is the
    /// default. Default `["sigstore"]`.
    #[serde(default = "default_audiences")]
    pub audiences: Vec<String>,
    /// Further string claims (for the CA's `ci-provider` templates), e.g.
    /// `repository = "org/app"`.
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorConfig {
    /// Short name, used in URLs (`/auth/connector/<id>`).
    pub id: String,
    /// What the login page's button says: "Continue with <name>".
    pub name: String,
    /// The upstream issuer URL (its discovery document must name it exactly).
    pub issuer: String,
    pub client_id: String,
    /// A file holding the client secret the upstream gave us; none for a public client.
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Scopes asked of the upstream. Default `["openid", "email"]`.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Accept an upstream e-mail address the upstream does not mark as verified.
    #[serde(default)]
    pub skip_email_verification: bool,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 5556))
}
fn default_token_ttl() -> i64 {
    600
}
fn default_audiences() -> Vec<String> {
    vec!["sigstore".into()]
}
fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "email".into()]
}

pub const KEYS: &[&str] = &["listen", "public_url", "signing_key", "token_ttl_secs"];

/// Claims a workload's extra claims may not replace.
const RESERVED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "nonce",
    "email",
    "email_verified",
    "federated_claims",
];

/// Reads a secret file: surrounding whitespace is not part of the secret.
pub fn read_secret(path: &Path) -> anyhow::Result<String> {
    crate::settings::check_private(path)?;
    let s = std::fs::read_to_string(path)
        .with_context(|| format!("reading secret {}", path.display()))?;
    let s = s.trim().to_string();
    if s.len() < 16 {
        bail!(
            "the secret in {} is shorter than 16 characters",
            path.display()
        );
    }
    Ok(s)
}

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
        crate::settings::check_public_url(self.public_url.as_deref())?;
        let mut names = std::collections::HashSet::new();
        for u in &self.users {
            if u.username.is_empty() || u.username.contains(char::is_whitespace) {
                bail!(
                    "user name {:?} must be non-empty without spaces",
                    u.username
                );
            }
            if !names.insert(&u.username) {
                bail!("user {:?} is configured twice", u.username);
            }
            if !sigstack_oidc::login::is_password_hash(&u.password_hash) {
                bail!(
                    "user {:?}: password_hash is not an argon2 PHC string (make one with `sigstackd oidc hash-password`)",
                    u.username
                );
            }
        }
        let mut ids = std::collections::HashSet::new();
        for c in &self.clients {
            if c.id.is_empty() || !ids.insert(&c.id) {
                bail!("client id {:?} is empty or configured twice", c.id);
            }
            if let Some(w) = &c.workload {
                if c.secret_file.is_none() {
                    bail!("client {:?}: a workload client needs a secret_file", c.id);
                }
                if w.subject.is_empty() || w.audiences.is_empty() {
                    bail!(
                        "client {:?}: workload subject and audiences must be set",
                        c.id
                    );
                }
                if let Some(k) = w
                    .claims
                    .keys()
                    .find(|k| RESERVED_CLAIMS.contains(&k.as_str()))
                {
                    bail!("client {:?}: workload claim {k:?} is reserved", c.id);
                }
            }
        }
        let mut ids = std::collections::HashSet::new();
        for c in &self.connectors {
            if c.id.is_empty()
                || !c
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                || !ids.insert(&c.id)
            {
                bail!(
                    "connector id {:?} must be unique, of letters, digits, '-' and '_'",
                    c.id
                );
            }
            if !(c.issuer.starts_with("https://") || c.issuer.starts_with("http://")) {
                bail!("connector {:?}: issuer must be an http(s) URL", c.id);
            }
            if !c.scopes.iter().any(|s| s == "openid") {
                bail!("connector {:?}: scopes must include openid", c.id);
            }
        }
        Ok(())
    }

    pub fn public_url(&self) -> String {
        crate::settings::public_url(self.public_url.as_deref(), self.listen)
    }
}
