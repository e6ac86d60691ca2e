//! `sigstackd dev`: the whole stack in one process for testers — transparency log, CT
//! log and CA, each on its own loopback port and talking to the others over HTTP as in
//! production. Keys and the CA chain are generated into the data directory on first
//! start and reused; the database is an SQLite file there; `stack.json` tells scripts
//! where everything is, and the trust files are written beside it.

use crate::ca::CaService;
use crate::ca::config::CaConfig;
use crate::ctlog::CtLogService;
use crate::ctlog::config::CtLogConfig;
use crate::log::LogService;
use crate::log::config::LogConfig;
use crate::trust::{self, StackTrust};
use anyhow::Context;
use serde::Serialize;
use sigstack_ca::cert;
use sigstack_crypto::{Certificate, Curve, FileSigner, KeyMaterial, Signer};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(clap::Args)]
pub struct DevArgs {
    /// Where keys, the database and stack.json live (created if missing).
    #[arg(long, default_value = ".sigstack-dev")]
    data_dir: PathBuf,
    /// Address every service listens on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port of the transparency log (0: any free port).
    #[arg(long, default_value_t = 3000)]
    log_port: u16,
    /// Port of the CA (0: any free port).
    #[arg(long, default_value_t = 5555)]
    ca_port: u16,
    /// Port of the CT log (0: any free port).
    #[arg(long, default_value_t = 6962)]
    ctlog_port: u16,
    /// Trust identity tokens from this OIDC issuer (an e-mail issuer with client ID
    /// `sigstore`); repeatable. Written to DATA_DIR/issuers.yaml at each start.
    #[arg(long = "oidc-issuer")]
    oidc_issuers: Vec<String>,
    /// Use this Fulcio-format issuer configuration instead of --oidc-issuer.
    #[arg(long, conflicts_with = "oidc_issuers")]
    issuers: Option<PathBuf>,
}

/// What `stack.json` holds: where each running service is and where the trust files are.
#[derive(Serialize)]
struct StackFile {
    version: u32,
    data_dir: String,
    database_url: String,
    services: Services,
    trusted_root: String,
    signing_config: String,
    trust_config: String,
    issuers: String,
}

#[derive(Serialize)]
struct Services {
    log: LogEntry,
    ctlog: CtEntry,
    ca: CaEntry,
}

#[derive(Serialize)]
struct LogEntry {
    url: String,
    log_id: String,
    tree_id: String,
    public_key: String,
}

#[derive(Serialize)]
struct CtEntry {
    url: String,
    log_id: String,
    public_key: String,
}

#[derive(Serialize)]
struct CaEntry {
    url: String,
    chain: String,
}

fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

async fn bind(host: IpAddr, port: u16, flag: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(SocketAddr::new(host, port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on {host}:{port} (is another sigstackd running? pass {flag} 0 for any free port)"
            )
        })
}

/// The dev CA: a P-384 root and a P-256 intermediate, created once.
fn ca_chain(keys: &Path) -> anyhow::Result<(PathBuf, PathBuf, Vec<Certificate>)> {
    let root_key = FileSigner::load_or_generate(&keys.join("ca-root.pem"), Curve::P384)?;
    let inter_path = keys.join("ca-intermediate.pem");
    let inter_key = FileSigner::load_or_generate(&inter_path, Curve::P256)?;
    let chain_path = keys.join("ca-chain.pem");
    if let Ok(pem) = std::fs::read(&chain_path)
        && let Ok(KeyMaterial::Certificates(c)) = KeyMaterial::from_pem(&pem)
        && c.len() == 2
        && c[0].public_key() == inter_key.public_key()
        && c[1].public_key() == root_key.public_key()
    {
        return Ok((inter_path, chain_path, c));
    }
    let now = crate::sequencer::unix_now() as u64 - 60;
    let until = now + 10 * 365 * 86_400;
    let root_name = cert::ca_name("sigstack", "sigstack dev root")?;
    let root = cert::ca_certificate(
        root_name.clone(),
        &root_key,
        None,
        cert::serial(rand::random())?,
        now,
        until,
        None,
        false,
    )?;
    let inter = cert::ca_certificate(
        cert::ca_name("sigstack", "sigstack dev intermediate")?,
        &inter_key,
        Some((&root_name, &root_key)),
        cert::serial(rand::random())?,
        now,
        until,
        Some(0),
        true,
    )?;
    let chain = vec![
        Certificate::from_der(&inter)?,
        Certificate::from_der(&root)?,
    ];
    let pem: String = chain.iter().map(Certificate::to_pem).collect();
    write_atomic(&chain_path, pem.as_bytes())?;
    Ok((inter_path, chain_path, chain))
}

/// A Fulcio issuer configuration trusting `issuers` as e-mail issuers.
fn issuer_yaml(issuers: &[String]) -> String {
    if issuers.is_empty() {
        return "# no issuers: start `sigstackd dev --oidc-issuer URL` to trust one\noidc-issuers: {}\n".into();
    }
    let mut out = String::from(
        "# written by `sigstackd dev` from --oidc-issuer at each start\noidc-issuers:\n",
    );
    for url in issuers {
        let url = url.trim_end_matches('/');
        out.push_str(&format!(
            "  {url:?}:\n    issuer-url: {url:?}\n    client-id: sigstore\n    type: email\n"
        ));
    }
    out
}

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let dir = std::fs::canonicalize(&args.data_dir)?;
    let keys = dir.join("keys");
    let log_key_path = keys.join("log.pem");
    let log_key = Arc::new(FileSigner::load_or_generate(&log_key_path, Curve::P256)?);
    let log_pub_path = keys.join("log.pub.pem");
    write_atomic(&log_pub_path, log_key.public_key().to_pem().as_bytes())?;
    let ct_key_path = keys.join("ctlog.pem");
    let ct_key = FileSigner::load_or_generate(&ct_key_path, Curve::P256)?;
    let ct_pub_path = keys.join("ctlog.pub.pem");
    write_atomic(&ct_pub_path, ct_key.public_key().to_pem().as_bytes())?;
    let (ca_key_path, ca_chain_path, chain) = ca_chain(&keys)?;
    let root_path = keys.join("ca-root.crt.pem");
    write_atomic(&root_path, chain[1].to_pem().as_bytes())?;
    let issuers_path = match &args.issuers {
        Some(p) => std::fs::canonicalize(p).with_context(|| format!("reading {}", p.display()))?,
        None => {
            let p = dir.join("issuers.yaml");
            write_atomic(&p, issuer_yaml(&args.oidc_issuers).as_bytes())?;
            p
        }
    };
    let database_url = format!("sqlite://{}", dir.join("sigstack.db").display());

    let log_listener = bind(args.host, args.log_port, "--log-port").await?;
    let ct_listener = bind(args.host, args.ctlog_port, "--ctlog-port").await?;
    let ca_listener = bind(args.host, args.ca_port, "--ca-port").await?;
    let (log_addr, ct_addr, ca_addr) = (
        log_listener.local_addr()?,
        ct_listener.local_addr()?,
        ca_listener.local_addr()?,
    );
    let log_url = format!("http://{log_addr}");
    let ct_url = format!("http://{ct_addr}");
    let ca_url = format!("http://{ca_addr}");

    let log_cfg = LogConfig::load_for_dev(log_addr, &log_url, &database_url, &log_key_path)?;
    let store = sigstack_storage::Store::open(&database_url).await?;
    let log = LogService::with_parts(&log_cfg, store, log_key.clone()).await?;
    let ct_cfg = CtLogConfig::for_dev(ct_addr, &database_url, &ct_key_path, &root_path);
    let ctlog = CtLogService::start(&ct_cfg).await?;
    let mut ca_cfg = CaConfig::for_dev(
        ca_addr,
        &ca_key_path,
        &ca_chain_path,
        &issuers_path,
        &ct_url,
        &ct_pub_path,
    );
    ca_cfg.tlog_url = Some(log_url.clone());
    ca_cfg.oidc_url = args.oidc_issuers.first().cloned();
    ca_cfg.operator = "sigstack-dev".into();
    let ca = CaService::start(&ca_cfg).await?;

    let stack_trust = StackTrust {
        operator: "sigstack-dev".into(),
        valid_from: crate::time::rfc3339(chain[1].validity().0 as i64),
        ca_url: ca_url.clone(),
        ca_chain: chain,
        tlog_url: log_url.clone(),
        tlog_key: log_key.public_key().clone(),
        ctlog_url: ct_url.clone(),
        ctlog_key: ct_key.public_key().clone(),
        oidc_url: args.oidc_issuers.first().cloned(),
    };
    stack_trust.write(&dir)?;
    let stack = StackFile {
        version: 2,
        data_dir: dir.display().to_string(),
        database_url: database_url.clone(),
        services: Services {
            log: LogEntry {
                url: log_url.clone(),
                log_id: log.log_id_hex().to_string(),
                tree_id: log.active_tree().to_string(),
                public_key: log_pub_path.display().to_string(),
            },
            ctlog: CtEntry {
                url: ct_url.clone(),
                log_id: hex::encode(sigstack_crypto::log_id(ct_key.public_key().spki_der())),
                public_key: ct_pub_path.display().to_string(),
            },
            ca: CaEntry {
                url: ca_url.clone(),
                chain: ca_chain_path.display().to_string(),
            },
        },
        trusted_root: dir.join(trust::TRUSTED_ROOT_FILE).display().to_string(),
        signing_config: dir.join(trust::SIGNING_CONFIG_FILE).display().to_string(),
        trust_config: dir
            .join(trust::CLIENT_TRUST_CONFIG_FILE)
            .display()
            .to_string(),
        issuers: issuers_path.display().to_string(),
    };
    let stack_path = dir.join("stack.json");
    write_atomic(&stack_path, &serde_json::to_vec_pretty(&stack)?)?;

    println!("sigstack dev stack is up (data in {})", dir.display());
    println!("  transparency log (Rekor v1): {log_url}");
    println!("  certificate authority:       {ca_url}");
    println!("  CT log:                      {ct_url}");
    println!("  trusted OIDC issuers:        {}", issuers_path.display());
    println!("  client trust config:         {}", stack.trust_config);
    println!("  stack description:           {}", stack_path.display());
    println!("Stop with Ctrl-C; logs and keys are kept for the next start.");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        sigstack_http::shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let (a, b, c) = tokio::join!(
        sigstack_http::serve(
            log_listener,
            log.router(log_cfg.max_request_bytes),
            stopped()
        ),
        sigstack_http::serve(
            ct_listener,
            ctlog.router(ct_cfg.max_request_bytes),
            stopped()
        ),
        sigstack_http::serve(ca_listener, ca.router(ca_cfg.max_request_bytes), stopped()),
    );
    a?;
    b?;
    c?;
    log.store().close().await;
    Ok(())
}
