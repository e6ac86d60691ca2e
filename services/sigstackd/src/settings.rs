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

/// A service URL given on the command line (`--tuf-url`, `--ca-url`, ...) must be an
/// absolute http(s) URL: a bare host name is named as the mistake it is.
pub fn check_flag_url(flag: &str, u: &str) -> anyhow::Result<()> {
    match reqwest::Url::parse(u) {
        Ok(p) if matches!(p.scheme(), "http" | "https") && p.host_str().is_some() => Ok(()),
        _ => anyhow::bail!("{flag} {u:?} is not an http(s) URL: write it as https://host[:port]"),
    }
}

/// Refuses a private key or secret file that other users may read (or write): the
/// message names the file, its mode and the `chmod` that fixes it. Group access is left
/// alone — Kubernetes gives mounted secrets to the pod's `fsGroup`.
pub fn check_private(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("reading {}", path.display()))?
            .permissions()
            .mode()
            & 0o777;
        anyhow::ensure!(
            mode & 0o007 == 0,
            "{} holds a private key or secret and other users may read it (mode {mode:04o}): run `chmod 600 {}` (or `chmod 640` for a group)",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

/// A configured `public_url` must be an absolute http(s) URL with a host and no query or
/// fragment (`oidc.example.org` alone would become tokens' `iss` and trust files' URLs).
pub fn check_public_url(configured: Option<&str>) -> anyhow::Result<()> {
    let Some(u) = configured else { return Ok(()) };
    let parsed = reqwest::Url::parse(u).map_err(|e| {
        anyhow::anyhow!(
            "public_url {u:?} is not an absolute URL ({e}): write it as https://host[:port]"
        )
    })?;
    if !matches!(parsed.scheme(), "http" | "https")
        || parsed.host_str().is_none_or(str::is_empty)
        || parsed.query().is_some()
        || parsed.fragment().is_some()
    {
        anyhow::bail!(
            "public_url {u:?} must be an http(s) URL with a host, such as https://host[:port]"
        );
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_absolute_http() {
        for good in [
            "https://oidc.example.org",
            "http://127.0.0.1:5556",
            "https://h/prefix",
        ] {
            assert!(check_public_url(Some(good)).is_ok(), "{good}");
            assert!(check_flag_url("--x", good).is_ok(), "{good}");
        }
        for bad in [
            "oidc.example.org",
            "ftp://h",
            "https://h/?q=1",
            "https://h/#f",
            "//h",
            "",
        ] {
            let e = check_public_url(Some(bad)).expect_err(bad).to_string();
            assert!(e.contains("public_url"), "{e}");
        }
        for bad in ["oidc.example.org", "ftp://h", "//h", "", "localhost:8088"] {
            assert!(check_flag_url("--tuf-url", bad).is_err(), "{bad}");
        }
        assert!(check_public_url(None).is_ok());
        let e = check_flag_url("--tuf-url", "localhost:8088").expect_err("scheme-less");
        assert!(e.to_string().contains("--tuf-url"), "{e}");
    }
}
