//! `sigstackd init`: prepares a production (or staging) stack in one directory — keys,
//! a CA chain, one configuration file per service, the trust files, and a one-key TUF
//! ceremony published into the database. Every service then starts with
//! `sigstackd <service> --config DIR/<service>.toml`. Running it again keeps the keys,
//! the CA chain, the secrets and the TUF keys, rewrites the configuration from the
//! flags, and publishes a new targets version only if the trust files changed. The
//! compose file's one-shot `init` container runs it.

use crate::bootstrap::{
    CaEntry, CtEntry, LogEntry, OidcEntry, Services, StackFile, TufEntry, write_atomic,
};
use crate::trust::{self, StackTrust};
use anyhow::Context;
use sigstack_crypto::{Curve, FileSigner, Signer};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct InitArgs {
    /// Directory for keys, configuration, trust files and the TUF ceremony (created,
    /// mode 0700). Every path in the configuration files points inside it, so mount it
    /// at the same place wherever the services run.
    #[arg(long, env = "SIGSTACK_INIT_DIR", default_value = "/etc/sigstack")]
    pub dir: PathBuf,
    /// The database every service shares: postgres://… (migrated here) or sqlite://PATH.
    #[arg(long, env = "SIGSTACK_DATABASE_URL")]
    pub database_url: String,
    /// Where clients reach the transparency log (the trusted root's baseUrl).
    #[arg(
        long,
        env = "SIGSTACK_INIT_LOG_URL",
        default_value = "http://localhost:3000"
    )]
    pub log_url: String,
    /// Where clients reach the CA.
    #[arg(
        long,
        env = "SIGSTACK_INIT_CA_URL",
        default_value = "http://localhost:5555"
    )]
    pub ca_url: String,
    /// Where clients reach the CT log.
    #[arg(
        long,
        env = "SIGSTACK_INIT_CTLOG_URL",
        default_value = "http://localhost:6962"
    )]
    pub ctlog_url: String,
    /// The OIDC issuer URL (tokens' `iss`; what verifiers pass as the OIDC issuer).
    #[arg(
        long,
        env = "SIGSTACK_INIT_OIDC_URL",
        default_value = "http://localhost:5556"
    )]
    pub oidc_url: String,
    /// Where clients reach the timestamp authority (its chain goes into the trusted root,
    /// its endpoint into the signing config).
    #[arg(
        long,
        env = "SIGSTACK_INIT_TSA_URL",
        default_value = "http://localhost:3004"
    )]
    pub tsa_url: String,
    /// Where clients reach the TUF repository (the mirror they bootstrap from).
    #[arg(
        long,
        env = "SIGSTACK_INIT_TUF_URL",
        default_value = "http://localhost:8088"
    )]
    pub tuf_url: String,
    /// Where the CA reaches the CT log, if not at --ctlog-url (e.g. http://ctlog:6962).
    #[arg(long, env = "SIGSTACK_INIT_CTLOG_INTERNAL_URL")]
    pub ctlog_internal_url: Option<String>,
    /// Where the CA fetches the issuer's discovery and keys, if not at --oidc-url
    /// (e.g. http://oidc:5556 inside a compose network).
    #[arg(long, env = "SIGSTACK_INIT_OIDC_INTERNAL_URL")]
    pub oidc_internal_url: Option<String>,
    /// Address the services listen on. Each listens on its URL's port, or, for a URL
    /// without one (behind a TLS-terminating proxy), on its standard port: log 3000,
    /// CA 5555, OIDC 5556, CT log 6962, TUF 8088, TSA 3004.
    #[arg(long, env = "SIGSTACK_INIT_LISTEN_HOST", default_value = "0.0.0.0")]
    pub listen_host: IpAddr,
    /// Who runs the stack (trust files' operator, the CA's subject organisation).
    #[arg(long, env = "SIGSTACK_INIT_OPERATOR", default_value = "sigstack")]
    pub operator: String,
    /// The first local account of the identity provider (password written to
    /// DIR/admin-password, mode 0600).
    #[arg(
        long,
        env = "SIGSTACK_INIT_ADMIN_EMAIL",
        default_value = "admin@sigstack.test"
    )]
    pub admin_email: String,
}

/// Where each service listens when its URL names no port.
pub const STANDARD_PORTS: [(&str, u16); 6] = [
    ("log", 3000),
    ("tsa", 3004),
    ("ca", 5555),
    ("oidc", 5556),
    ("ctlog", 6962),
    ("tuf", 8088),
];

/// The port a service listens on: its public URL's when the URL names one; else (the
/// scheme's default port: the service is behind a TLS-terminating proxy) `standard`.
fn port_of(url: &str, standard: u16) -> anyhow::Result<u16> {
    let u = reqwest::Url::parse(url).with_context(|| format!("{url} is not a URL"))?;
    anyhow::ensure!(
        matches!(u.scheme(), "http" | "https") && u.path() == "/" && u.query().is_none(),
        "{url}: give a service's base URL (http or https, no path)"
    );
    Ok(u.port().unwrap_or(standard))
}

/// Refuses, before anything is written, what would leave the directory and the database
/// disagreeing: another stack's TUF repository in the database, or a republication that
/// needs the targets key when it has been moved offline.
fn refuse_mismatch(dir: &Path, published_root: Option<&[u8]>) -> anyhow::Result<()> {
    let ceremony = dir.join("tuf-ceremony");
    let ours = std::fs::read(ceremony.join("1.root.json")).ok();
    match (published_root, &ours) {
        (Some(db), Some(mine)) if db != mine.as_slice() => anyhow::bail!(
            "this database holds another stack's TUF repository (its 1.root.json differs from {}): use a new database, or the directory that stack was prepared in",
            ceremony.display()
        ),
        (Some(_), None) => anyhow::bail!(
            "this database already holds a TUF repository, and {} has no ceremony for it: use a new database, or the directory that stack was prepared in",
            dir.display()
        ),
        _ => {}
    }
    if ours.is_some() && !ceremony.join("keys/targets-1.pem").exists() {
        anyhow::bail!(
            "the TUF targets key is not in {} (moved offline, as it should be): `init` cannot publish changed trust files. Change them with `sigstackd trust export` and `sigstackd tuf stage-targets` (see the README), or bring the key back for this run",
            ceremony.join("keys").display()
        );
    }
    Ok(())
}

/// A TOML basic string.
fn q(s: impl AsRef<str>) -> String {
    // JSON string escapes are valid TOML basic-string escapes
    serde_json::to_string(s.as_ref()).unwrap_or_default()
}

fn qp(p: &Path) -> String {
    q(p.display().to_string())
}

pub async fn run(a: InitArgs) -> anyhow::Result<()> {
    let trim = |u: &str| u.trim_end_matches('/').to_string();
    let tsa_url = trim(&a.tsa_url);
    let (log_url, ca_url, ct_url, oidc_url, tuf_url) = (
        trim(&a.log_url),
        trim(&a.ca_url),
        trim(&a.ctlog_url),
        trim(&a.oidc_url),
        trim(&a.tuf_url),
    );
    let listen = |url: &str, standard: u16| -> anyhow::Result<String> {
        Ok(std::net::SocketAddr::new(a.listen_host, port_of(url, standard)?).to_string())
    };
    let std_port = |s: &str| {
        STANDARD_PORTS
            .iter()
            .find(|(n, _)| *n == s)
            .map_or(0, |p| p.1)
    };
    let (log_listen, ca_listen, ct_listen, oidc_listen, tuf_listen) = (
        listen(&log_url, std_port("log"))?,
        listen(&ca_url, std_port("ca"))?,
        listen(&ct_url, std_port("ctlog"))?,
        listen(&oidc_url, std_port("oidc"))?,
        listen(&tuf_url, std_port("tuf"))?,
    );
    let tsa_listen = listen(&tsa_url, std_port("tsa"))?;
    let store = sigstack_storage::Store::connect(&a.database_url)
        .await
        .with_context(|| {
            format!(
                "connecting to {}",
                sigstack_storage::redact(&a.database_url)
            )
        })?;
    sigstack_storage::migrate(&store).await?;
    let published = store
        .tuf_files(0)
        .await?
        .into_iter()
        .find(|f| f.path == "1.root.json");
    store.close().await;
    refuse_mismatch(&a.dir, published.as_ref().map(|f| f.body.as_slice()))?;

    std::fs::create_dir_all(&a.dir).with_context(|| format!("creating {}", a.dir.display()))?;
    let dir = std::fs::canonicalize(&a.dir)?;
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys)?;
    #[cfg(unix)]
    for d in [&dir, &keys] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))?;
    }

    let log_key_path = keys.join("log.pem");
    let log_key = FileSigner::load_or_generate(&log_key_path, Curve::P256)?;
    let log_pub = keys.join("log.pub.pem");
    write_atomic(&log_pub, log_key.public_key().to_pem().as_bytes())?;
    let ct_key_path = keys.join("ctlog.pem");
    let ct_key = FileSigner::load_or_generate(&ct_key_path, Curve::P256)?;
    let ct_pub = keys.join("ctlog.pub.pem");
    write_atomic(&ct_pub, ct_key.public_key().to_pem().as_bytes())?;
    let (ca_key, ca_chain_path, chain) =
        crate::bootstrap::ca_chain(&keys, &a.operator, &format!("{} CA", a.operator))?;
    let ca_root = keys.join("ca-root.crt.pem");
    write_atomic(&ca_root, chain[chain.len() - 1].to_pem().as_bytes())?;
    let (tsa_key, tsa_chain_path, tsa_chain) = crate::bootstrap::tsa_chain(
        &keys,
        &a.operator,
        &format!("{} timestamp authority", a.operator),
    )?;
    let oidc_key = keys.join("oidc.pem");
    sigstack_crypto::load_or_generate_rsa(&oidc_key)?;
    let online_key = keys.join("tuf-online.pem");

    let issuers = dir.join("issuers.yaml");
    write_atomic(
        &issuers,
        crate::bootstrap::issuer_yaml(
            "written by `sigstackd init`: the stack's own issuer (people, by e-mail) and its workload issuer (CI jobs); edit it and restart the CA to trust more",
            &oidc_url,
            &[],
        )
        .as_bytes(),
    )?;
    let password_file = dir.join("admin-password");
    let password = crate::bootstrap::secret(&password_file)?;
    let ci_secret = dir.join("ci-secret");
    crate::bootstrap::secret(&ci_secret)?;
    let username = a
        .admin_email
        .split('@')
        .next()
        .filter(|u| !u.is_empty())
        .context("--admin-email must be an e-mail address")?
        .to_string();

    let db = q(&a.database_url);
    let files = [
        (
            "log.toml",
            format!(
                "# written by `sigstackd init`; every key may be overridden by SIGSTACK_LOG_<KEY>\n\
                 listen = {}\npublic_url = {}\ndatabase_url = {db}\nsigning_key = {}\n",
                q(&log_listen),
                q(&log_url),
                qp(&log_key_path)
            ),
        ),
        (
            "ctlog.toml",
            format!(
                "# written by `sigstackd init`; every key may be overridden by SIGSTACK_CTLOG_<KEY>\n\
                 listen = {}\ndatabase_url = {db}\nsigning_key = {}\nroots = {}\n",
                q(&ct_listen),
                qp(&ct_key_path),
                qp(&ca_root)
            ),
        ),
        (
            "ca.toml",
            format!(
                "# written by `sigstackd init`; every key may be overridden by SIGSTACK_CA_<KEY>\n\
                 listen = {}\npublic_url = {}\nsigning_key = {}\nca_chain = {}\nissuers = {}\n\
                 ctlog_url = {}\nctlog_public_key = {}\ntlog_url = {}\noidc_url = {}\ntsa_url = {}\ntsa_chain = {}\noperator = {}\n{}",
                q(&ca_listen),
                q(&ca_url),
                qp(&ca_key),
                qp(&ca_chain_path),
                qp(&issuers),
                q(a.ctlog_internal_url
                    .as_deref()
                    .map(trim)
                    .unwrap_or(ct_url.clone())),
                qp(&ct_pub),
                q(&log_url),
                q(&oidc_url),
                q(&tsa_url),
                qp(&tsa_chain_path),
                q(&a.operator),
                match &a.oidc_internal_url {
                    Some(i) => format!("\n[issuer_routes]\n{} = {}\n", q(&oidc_url), q(trim(i))),
                    None => String::new(),
                }
            ),
        ),
        (
            "oidc.toml",
            format!(
                "# written by `sigstackd init`; scalar keys may be overridden by SIGSTACK_OIDC_<KEY>\n\
                 listen = {}\npublic_url = {}\nsigning_key = {}\n\n\
                 [[users]]\nusername = {}\nemail = {}\npassword_hash = {}\n\n\
                 [[clients]]\nid = \"ci\"\nsecret_file = {}\n[clients.workload]\nsubject = {}\naudiences = [\"sigstore\"]\n",
                q(&oidc_listen),
                q(&oidc_url),
                qp(&oidc_key),
                q(&username),
                q(&a.admin_email),
                q(sigstack_oidc::login::hash_password(
                    &password,
                    rand::random()
                )?),
                qp(&ci_secret),
                q(format!("{oidc_url}/jobs/ci")),
            ),
        ),
        (
            "tuf.toml",
            format!(
                "# written by `sigstackd init`; every key may be overridden by SIGSTACK_TUF_<KEY>\n\
                 listen = {}\ndatabase_url = {db}\nonline_key = {}\n",
                q(&tuf_listen),
                qp(&online_key)
            ),
        ),
        (
            "tsa.toml",
            format!(
                "# written by `sigstackd init`; every key may be overridden by SIGSTACK_TSA_<KEY>\n\
                 listen = {}\nsigning_key = {}\ncert_chain = {}\n",
                q(&tsa_listen),
                qp(&tsa_key),
                qp(&tsa_chain_path)
            ),
        ),
    ];
    for (name, text) in &files {
        crate::bootstrap::write_secret(&dir.join(name), text)?;
    }
    // every file must load as the service will load it
    crate::log::config::LogConfig::load(Some(&dir.join("log.toml")))?;
    crate::ctlog::config::CtLogConfig::load(Some(&dir.join("ctlog.toml")))?;
    crate::ca::config::CaConfig::load(Some(&dir.join("ca.toml")))?;
    crate::oidc::config::OidcConfig::load(Some(&dir.join("oidc.toml")))?;
    crate::tuf::config::TufConfig::load(Some(&dir.join("tuf.toml")))?;
    crate::tsa::config::TsaConfig::load(Some(&dir.join("tsa.toml")))?;

    let stack_trust = StackTrust {
        operator: a.operator.clone(),
        valid_from: crate::time::rfc3339(chain[chain.len() - 1].validity().0 as i64),
        ca_url: ca_url.clone(),
        ca_chain: chain,
        tlog_url: log_url.clone(),
        tlog_key: log_key.public_key().clone(),
        ctlog_url: ct_url.clone(),
        ctlog_key: ct_key.public_key().clone(),
        oidc_url: Some(oidc_url.clone()),
        tsa: Some(trust::TsaTrust {
            url: tsa_url.clone(),
            chain: tsa_chain,
        }),
        extra_ca_chains: Vec::new(),
    };
    let previous = trust::read_trusted_root(&dir.join(trust::TRUSTED_ROOT_FILE))?;
    stack_trust.write(&dir, previous.as_ref(), None)?;
    let tuf_root = crate::bootstrap::tuf_repository(&dir, &keys, &a.database_url).await?;

    let services = Services {
        log: LogEntry {
            url: log_url.clone(),
            log_id: hex::encode(sigstack_crypto::log_id(log_key.public_key().spki_der())),
            tree_id: None,
            public_key: log_pub.display().to_string(),
        },
        ctlog: CtEntry::new(&ct_url, ct_key.public_key(), &ct_pub),
        ca: CaEntry {
            url: ca_url.clone(),
            chain: ca_chain_path.display().to_string(),
        },
        oidc: OidcEntry {
            url: oidc_url.clone(),
            username: username.clone(),
            email: a.admin_email.clone(),
            password_file: password_file.display().to_string(),
            workload_issuer: format!("{oidc_url}{}", sigstack_oidc::discovery::WORKLOAD),
            ci_client_id: "ci".into(),
            ci_secret_file: ci_secret.display().to_string(),
        },
        tuf: TufEntry {
            url: tuf_url.clone(),
            root: tuf_root.display().to_string(),
        },
        tsa: Some(crate::bootstrap::TsaEntry {
            url: tsa_url.clone(),
            chain: tsa_chain_path.display().to_string(),
        }),
    };
    StackFile::write(
        &dir,
        sigstack_storage::redact(&a.database_url),
        services,
        &issuers,
    )?;

    let d = dir.display();
    println!("sigstack stack prepared in {d}");
    for s in ["log", "ctlog", "ca", "oidc", "tuf", "tsa"] {
        println!("  start:  sigstackd {s} --config {d}/{s}.toml");
    }
    println!(
        "  check:  sigstackd doctor --tuf-url {tuf_url} --root {}",
        tuf_root.display()
    );
    println!(
        "  trust:  sigstack initialize --mirror {tuf_url} --root {}",
        tuf_root.display()
    );
    println!(
        "  login:  user {} ({}), password in {}",
        username,
        a.admin_email,
        password_file.display()
    );
    println!(
        "  For production, move {d}/keys/ca-root.pem and {d}/tuf-ceremony/keys offline (see the README)."
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_come_from_urls() {
        assert_eq!(port_of("http://localhost:3000", 1).ok(), Some(3000));
        assert_eq!(port_of("https://rekor.example.org", 3000).ok(), Some(3000));
        assert_eq!(port_of("http://oidc.example.org/", 5556).ok(), Some(5556));
        assert_eq!(
            port_of("https://oidc.example.org:8443", 5556).ok(),
            Some(8443)
        );
        assert!(port_of("http://h:1/api", 1).is_err());
        assert!(port_of("ftp://h:1", 1).is_err());
        assert!(port_of("not a url", 1).is_err());
    }

    #[test]
    fn toml_strings_escape() {
        let t: toml::Table = format!("a = {}", q("x\"y\\z\n")).parse().expect("toml");
        assert_eq!(t["a"].as_str(), Some("x\"y\\z\n"));
    }
}
