//! Service configuration files: TOML, each key overridable by an environment variable
//! `<PREFIX><KEY>` (upper case).

use anyhow::Context;
use serde::de::DeserializeOwned;
use std::path::Path;

/// Reads `path` (if given), applies environment overrides for `keys` (those in `numeric`
/// parse as integers) and deserializes.
pub fn load<T: DeserializeOwned>(
    path: Option<&Path>,
    env_prefix: &str,
    keys: &[&str],
    numeric: &[&str],
) -> anyhow::Result<T> {
    let mut table: toml::Table = match path {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("reading {}", p.display()))?
            .parse()
            .with_context(|| format!("parsing {}", p.display()))?,
        None => toml::Table::new(),
    };
    for key in keys {
        let var = format!("{env_prefix}{}", key.to_uppercase());
        if let Ok(v) = std::env::var(&var) {
            let value = if numeric.contains(key) {
                toml::Value::Integer(
                    v.parse()
                        .with_context(|| format!("{var} must be a whole number"))?,
                )
            } else {
                toml::Value::String(v)
            };
            table.insert((*key).to_string(), value);
        }
    }
    toml::Value::Table(table).try_into().map_err(|e| {
        let hint = match path {
            Some(p) => format!("in {}", p.display()),
            None => format!(
                "no --config file was given: pass --config FILE or set {env_prefix}<KEY> variables"
            ),
        };
        anyhow::anyhow!("{e} ({hint})")
    })
}

/// The URL clients reach a service at: the configured one without a trailing slash, or
/// `http://<listen address>`.
pub fn public_url(configured: Option<&str>, listen: std::net::SocketAddr) -> String {
    configured
        .map(str::to_string)
        .unwrap_or_else(|| format!("http://{listen}"))
        .trim_end_matches('/')
        .to_string()
}
