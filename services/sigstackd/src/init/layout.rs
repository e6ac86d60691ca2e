//! What a first run of `init` writes: one configuration file per service, keys at their
//! default paths under `keys/`.

use super::files::{ConfigFile, q, qp};
use super::{InitArgs, STANDARD_PORTS, port_of};
use anyhow::Context;
use std::path::Path;

/// The service URLs, trimmed.
pub(super) struct Urls {
    pub(super) log: String,
    pub(super) ca: String,
    pub(super) ct: String,
    pub(super) oidc: String,
    pub(super) tuf: String,
    pub(super) tsa: String,
}

/// Every configuration file as a first run writes it (keys at their default paths).
pub(super) fn config_files(
    a: &InitArgs,
    u: &Urls,
    dir: &Path,
    password: &str,
) -> anyhow::Result<Vec<ConfigFile>> {
    let listen = |url: &str, service: &str| -> anyhow::Result<String> {
        let standard = STANDARD_PORTS
            .iter()
            .find(|(n, _)| *n == service)
            .map_or(0, |p| p.1);
        Ok(q(std::net::SocketAddr::new(
            a.listen_host,
            port_of(url, standard)?,
        )
        .to_string()))
    };
    let keys = dir.join("keys");
    let k = |n: &str| qp(&keys.join(n));
    let db = q(&a.database_url);
    let trim = |s: &str| s.trim_end_matches('/').to_string();
    // the hash is costly: made only for a file that will be written
    let password_hash = if dir.join("oidc.toml").exists() {
        String::new()
    } else {
        q(sigstack_oidc::login::hash_password(
            password,
            rand::random(),
        )?)
    };
    Ok(vec![
        ConfigFile {
            name: "log.toml",
            env: "SIGSTACK_LOG_",
            top: vec![
                ("listen", listen(&u.log, "log")?),
                ("public_url", q(&u.log)),
                ("database_url", db.clone()),
                ("signing_key", k("log.pem")),
            ],
            tables: String::new(),
        },
        ConfigFile {
            name: "ctlog.toml",
            env: "SIGSTACK_CTLOG_",
            top: vec![
                ("listen", listen(&u.ct, "ctlog")?),
                ("database_url", db.clone()),
                ("signing_key", k("ctlog.pem")),
                ("roots", k("ca-root.crt.pem")),
            ],
            tables: String::new(),
        },
        ConfigFile {
            name: "ca.toml",
            env: "SIGSTACK_CA_",
            top: vec![
                ("listen", listen(&u.ca, "ca")?),
                ("public_url", q(&u.ca)),
                ("signing_key", k("ca-intermediate.pem")),
                ("ca_chain", k("ca-chain.pem")),
                ("issuers", qp(&dir.join("issuers.yaml"))),
                (
                    "ctlog_url",
                    q(a.ctlog_internal_url.as_deref().map_or(u.ct.clone(), trim)),
                ),
                ("ctlog_public_key", k("ctlog.pub.pem")),
                ("tlog_url", q(&u.log)),
                ("oidc_url", q(&u.oidc)),
                ("tsa_url", q(&u.tsa)),
                ("tsa_chain", k("tsa-chain.pem")),
                ("operator", q(&a.operator)),
            ],
            tables: match &a.oidc_internal_url {
                Some(i) => format!("[issuer_routes]\n{} = {}\n", q(&u.oidc), q(trim(i))),
                None => String::new(),
            },
        },
        ConfigFile {
            name: "oidc.toml",
            env: "SIGSTACK_OIDC_",
            top: vec![
                ("listen", listen(&u.oidc, "oidc")?),
                ("public_url", q(&u.oidc)),
                ("signing_key", k("oidc.pem")),
            ],
            tables: format!(
                "[[users]]\nusername = {}\nemail = {}\npassword_hash = {password_hash}\n\n\
                 [[clients]]\nid = \"ci\"\nsecret_file = {}\n[clients.workload]\nsubject = {}\naudiences = [\"sigstore\"]\n",
                q(username(a)?),
                q(&a.admin_email),
                qp(&dir.join("ci-secret")),
                q(format!("{}/jobs/ci", u.oidc)),
            ),
        },
        ConfigFile {
            name: "tuf.toml",
            env: "SIGSTACK_TUF_",
            top: vec![
                ("listen", listen(&u.tuf, "tuf")?),
                ("database_url", db),
                ("online_key", k("tuf-online.pem")),
            ],
            tables: String::new(),
        },
        ConfigFile {
            name: "tsa.toml",
            env: "SIGSTACK_TSA_",
            top: vec![
                ("listen", listen(&u.tsa, "tsa")?),
                ("signing_key", k("tsa.pem")),
                ("cert_chain", k("tsa-chain.pem")),
            ],
            tables: String::new(),
        },
    ])
}

pub(super) fn username(a: &InitArgs) -> anyhow::Result<&str> {
    a.admin_email
        .split('@')
        .next()
        .filter(|u| !u.is_empty())
        .context("--admin-email must be an e-mail address")
}
