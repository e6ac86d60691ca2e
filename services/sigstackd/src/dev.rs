//! `sigstackd dev`: the whole stack in one process for testers — transparency log, CT
//! log and CA, each on its own loopback port and talking to the others over HTTP as in
//! production. Keys and the CA chain are generated into the data directory on first
//! start and reused; the database is an SQLite file there; `stack.json` tells scripts
//! where everything is, and the trust files are written beside it.

use crate::bootstrap::*;
use crate::ca::CaService;
use crate::ca::config::CaConfig;
use crate::ctlog::CtLogService;
use crate::ctlog::config::CtLogConfig;
use crate::keys::KeyKind;
use crate::log::LogService;
use crate::log::config::LogConfig;
use crate::oidc::OidcService;
use crate::oidc::config::OidcConfig;
use crate::trust::{self, StackTrust};
use anyhow::Context;
use sigstack_oidc::login::LocalUser;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

mod token;
pub use token::{DevTokenArgs, dev_token};

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
    /// Port of the tiled transparency log, Rekor v2 (0: any free port).
    #[arg(long, default_value_t = 3003)]
    log_v2_port: u16,
    /// Port of the witness that cosigns the v2 log's checkpoints (0: any free port).
    #[arg(long, default_value_t = 3005)]
    witness_port: u16,
    /// Port of the CA (0: any free port).
    #[arg(long, default_value_t = 5555)]
    ca_port: u16,
    /// Port of the CT log (0: any free port).
    #[arg(long, default_value_t = 6962)]
    ctlog_port: u16,
    /// Port of the OIDC issuer (0: any free port).
    #[arg(long, default_value_t = 5556)]
    oidc_port: u16,
    /// Port of the TUF repository (0: any free port).
    #[arg(long, default_value_t = 8088)]
    tuf_port: u16,
    /// Port of the timestamp authority (0: any free port).
    #[arg(long, default_value_t = 3004)]
    tsa_port: u16,
    /// Port of the monitor and log explorer (0: any free port).
    #[arg(long, default_value_t = 3010)]
    monitor_port: u16,
    /// Also trust identity tokens from this OIDC issuer (an e-mail issuer with client ID
    /// `sigstore`); repeatable. The dev stack's own issuer is always trusted. Written to
    /// DATA_DIR/issuers.yaml at each start.
    #[arg(long = "oidc-issuer")]
    oidc_issuers: Vec<String>,
    /// Use this Fulcio-format issuer configuration instead of --oidc-issuer.
    #[arg(long, conflicts_with = "oidc_issuers")]
    issuers: Option<PathBuf>,
    /// Keep every signing key of the stack in this PKCS#11 token instead of files in
    /// DATA_DIR/keys: `pkcs11:token=LABEL?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=FILE`
    /// (or `pin-value=PIN`). Each key is the token object `sigstack-<name>` (log, log-v2,
    /// ctlog, ca, tsa, oidc, witness, tuf-online), created there on first start and never
    /// exported. The offline CA and TSA roots stay files.
    #[arg(long)]
    key_backend: Option<String>,
}

/// Where DATA_DIR records the OIDC key's reference when the keys are in a token (for
/// `dev-token`).
pub(crate) const OIDC_KEY_REF: &str = "oidc-key.ref";

async fn bind(host: IpAddr, port: u16, flag: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(SocketAddr::new(host, port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on {host}:{port} (is another sigstackd running? pass {flag} 0 for any free port)"
            )
        })
}

/// The dev CI client: `client_credentials` with this id and the secret in
/// DATA_DIR/dev-ci-secret give a workload token for this job.
pub const DEV_CI_CLIENT: &str = "dev-ci";

/// The dev witness's name (the key name on its cosignatures).
pub const DEV_WITNESS: &str = "sigstack-dev/witness";

/// The dev issuer: its key, one user whose random password is kept (mode 0600) in the
/// data directory, and one CI client whose secret is kept beside it.
fn dev_oidc(
    dir: &Path,
    key_path: PathBuf,
    listen: SocketAddr,
    url: &str,
    explorer: crate::oidc::config::ClientConfig,
) -> anyhow::Result<(OidcConfig, LocalUser, PathBuf)> {
    // RS256, as Dex: cosign takes `--identity-token VALUE` as a token only when RS256
    crate::keys::open_or_generate(&key_path, KeyKind::Rsa2048, "the OIDC key")?;
    let reference = dir.join(OIDC_KEY_REF);
    if crate::keys::is_reference(&key_path) {
        write_secret(&reference, &key_path.to_string_lossy())?;
    } else if reference.exists() {
        std::fs::remove_file(&reference)
            .with_context(|| format!("removing {}", reference.display()))?;
    }
    let password_file = dir.join("dev-password");
    let password = secret(&password_file)?;
    let ci_secret_file = dir.join("dev-ci-secret");
    secret(&ci_secret_file)?;
    let user = LocalUser {
        username: "dev".into(),
        email: "dev@sigstack.test".into(),
        name: Some("sigstack dev user".into()),
        password_hash: sigstack_oidc::login::hash_password(&password, rand::random())?,
    };
    let cfg = OidcConfig {
        listen,
        public_url: Some(url.to_string()),
        signing_key: key_path.into(),
        previous_keys: Vec::new(),
        token_ttl_secs: 600,
        users: vec![user.clone()],
        clients: vec![
            explorer,
            crate::oidc::config::ClientConfig {
                id: DEV_CI_CLIENT.into(),
                redirect_uris: Vec::new(),
                secret_file: Some(ci_secret_file),
                consent: false,
                workload: Some(crate::oidc::config::WorkloadConfig {
                    subject: format!("{url}/jobs/dev"),
                    audiences: vec!["sigstore".into()],
                    claims: Default::default(),
                }),
            },
        ],
        connectors: Vec::new(),
    };
    cfg.validate()?;
    Ok((cfg, user, password_file))
}

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let dir = std::fs::canonicalize(&args.data_dir)?;
    let keys = dir.join("keys");
    // each signing key: a file in DATA_DIR/keys, or an object in --key-backend's token
    let key_at = |file: &str, name: &str| -> anyhow::Result<PathBuf> {
        match &args.key_backend {
            Some(b) => crate::keys::in_backend(b, name),
            None => Ok(keys.join(file)),
        }
    };
    let log_key_path = key_at("log.pem", "log")?;
    let log_key = crate::keys::open_or_generate(&log_key_path, KeyKind::P256, "the log key")?;
    let log_pub_path = keys.join("log.pub.pem");
    std::fs::create_dir_all(&keys).with_context(|| format!("creating {}", keys.display()))?;
    write_atomic(&log_pub_path, log_key.public_key().to_pem().as_bytes())?;
    let log_v2_key_path = key_at("log-v2.pem", "log-v2")?;
    let log_v2_key =
        crate::keys::open_or_generate(&log_v2_key_path, KeyKind::Ed25519, "the v2 log key")?;
    crate::keys::expect(
        log_v2_key.as_ref(),
        &["PKIX_ED25519"],
        &log_v2_key_path,
        "the v2 log key",
    )?;
    let log_v2_pub_path = keys.join("log-v2.pub.pem");
    write_atomic(
        &log_v2_pub_path,
        log_v2_key.public_key().to_pem().as_bytes(),
    )?;
    let ct_key_path = key_at("ctlog.pem", "ctlog")?;
    let ct_key = crate::keys::open_or_generate(&ct_key_path, KeyKind::P256, "the CT log key")?;
    let ct_pub_path = keys.join("ctlog.pub.pem");
    write_atomic(&ct_pub_path, ct_key.public_key().to_pem().as_bytes())?;
    let mut ca_files =
        ChainFiles::beside(&keys, "ca-intermediate.pem", "ca-root.pem", "ca-chain.pem");
    ca_files.key = key_at("ca-intermediate.pem", "ca")?;
    let chain = ca_chain(&ca_files, "sigstack", "sigstack dev")?;
    let (ca_key_path, ca_chain_path) = (ca_files.key, ca_files.chain);
    let mut tsa_files = ChainFiles::beside(&keys, "tsa.pem", "tsa-root.pem", "tsa-chain.pem");
    tsa_files.key = key_at("tsa.pem", "tsa")?;
    let tsa_chain = tsa_chain(&tsa_files, "sigstack", "sigstack dev timestamp authority")?;
    let (tsa_key_path, tsa_chain_path) = (tsa_files.key, tsa_files.chain);
    let root_path = keys.join("ca-root.crt.pem");
    write_atomic(&root_path, chain[1].to_pem().as_bytes())?;
    let database_url = format!("sqlite://{}", dir.join("sigstack.db").display());

    let oidc_listener = bind(args.host, args.oidc_port, "--oidc-port").await?;
    let oidc_addr = oidc_listener.local_addr()?;
    let oidc_url = format!("http://{oidc_addr}");
    let issuers_path =
        match &args.issuers {
            Some(p) => {
                std::fs::canonicalize(p).with_context(|| format!("reading {}", p.display()))?
            }
            None => {
                let p = dir.join("issuers.yaml");
                write_atomic(&p, issuer_yaml(
                    "written by `sigstackd dev` at each start (its own issuer, then --oidc-issuer)",
                    &oidc_url,
                    &args.oidc_issuers,
                ).as_bytes())?;
                p
            }
        };
    let monitor_listener = bind(args.host, args.monitor_port, "--monitor-port").await?;
    let monitor_url = format!("http://{}", monitor_listener.local_addr()?);
    let (oidc_cfg, dev_user, password_file) = dev_oidc(
        &dir,
        key_at("oidc.pem", "oidc")?,
        oidc_addr,
        &oidc_url,
        crate::monitor::dev::explorer_client(&dir, &monitor_url)?,
    )?;
    let oidc = OidcService::start(&oidc_cfg)?;

    let log_listener = bind(args.host, args.log_port, "--log-port").await?;
    let log_v2_listener = bind(args.host, args.log_v2_port, "--log-v2-port").await?;
    let log_v2_url = format!("http://{}", log_v2_listener.local_addr()?);
    let ct_listener = bind(args.host, args.ctlog_port, "--ctlog-port").await?;
    let ca_listener = bind(args.host, args.ca_port, "--ca-port").await?;
    let (log_addr, ct_addr, ca_addr) = (
        log_listener.local_addr()?,
        ct_listener.local_addr()?,
        ca_listener.local_addr()?,
    );
    let tsa_listener = bind(args.host, args.tsa_port, "--tsa-port").await?;
    let tsa_addr = tsa_listener.local_addr()?;
    let tsa_url = format!("http://{tsa_addr}");
    let log_url = format!("http://{log_addr}");
    let ct_url = format!("http://{ct_addr}");
    let ca_url = format!("http://{ca_addr}");

    let log_cfg = LogConfig::load_for_dev(log_addr, &log_url, &database_url, &log_key_path)?;
    let store = sigstack_storage::Store::open(&database_url).await?;
    let log = LogService::with_parts(&log_cfg, store.clone(), log_key.clone()).await?;
    let log_v2_cfg = crate::log_v2::config::LogV2Config::for_dev(
        log_v2_listener.local_addr()?,
        &log_v2_url,
        &database_url,
        &log_v2_key_path,
    )?;
    // a witness of its own, so that the v2 log publishes cosigned checkpoints
    let witness_listener = bind(args.host, args.witness_port, "--witness-port").await?;
    let witness_url = format!("http://{}", witness_listener.local_addr()?);
    let witness_key_path = key_at("witness.pem", "witness")?;
    let witness_key =
        crate::keys::open_or_generate(&witness_key_path, KeyKind::Ed25519, "the witness key")?;
    crate::keys::expect(
        witness_key.as_ref(),
        &["PKIX_ED25519"],
        &witness_key_path,
        "the witness key",
    )?;
    let witness_pub_path = keys.join("witness.pub.pem");
    write_atomic(
        &witness_pub_path,
        witness_key.public_key().to_pem().as_bytes(),
    )?;
    let witness_cfg = crate::witness::config::WitnessConfig {
        listen: witness_listener.local_addr()?,
        name: DEV_WITNESS.into(),
        signing_key: witness_key_path.into(),
        state_file: dir.join("witness-state.json"),
        logs: vec![crate::witness::config::WitnessedLog {
            origin: log_v2_cfg.origin()?,
            public_key: Some(log_v2_pub_path.clone()),
            vkey: None,
        }],
    };
    if !witness_cfg.state_file.exists() {
        crate::witness::init_state(&witness_cfg)?;
    }
    let witness = crate::witness::WitnessService::start(&witness_cfg)?;
    let mut log_v2_cfg = log_v2_cfg;
    log_v2_cfg.witnesses = vec![crate::log_v2::config::WitnessRef {
        url: witness_url.clone(),
        name: DEV_WITNESS.into(),
        public_key: witness_pub_path.clone(),
    }];
    log_v2_cfg.validate()?;
    let log_v2 =
        crate::log_v2::LogV2Service::with_parts(&log_v2_cfg, store, log_v2_key.clone()).await?;
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
    ca_cfg.tlog_v2_url = Some(log_v2_url.clone());
    ca_cfg.tlog_v2_public_key = Some(log_v2_pub_path.clone());
    ca_cfg.oidc_url = Some(oidc_url.clone());
    ca_cfg.tsa_url = Some(tsa_url.clone());
    ca_cfg.tsa_chain = Some(tsa_chain_path.clone());
    ca_cfg.operator = "sigstack-dev".into();
    let ca = CaService::start(&ca_cfg).await?;
    let tsa = crate::tsa::TsaService::start(&crate::tsa::config::TsaConfig::for_dev(
        tsa_addr,
        &tsa_key_path,
        &tsa_chain_path,
    ))?;

    let stack_trust = StackTrust {
        operator: "sigstack-dev".into(),
        valid_from: crate::time::rfc3339(chain[1].validity().0 as i64),
        ca_url: ca_url.clone(),
        ca_chain: chain,
        tlog_url: log_url.clone(),
        tlog_key: log_key.public_key().clone(),
        tlog_v2: Some(trust::TlogV2Trust {
            url: log_v2_url.clone(),
            key: log_v2_key.public_key().clone(),
        }),
        ctlog_url: ct_url.clone(),
        ctlog_key: ct_key.public_key().clone(),
        oidc_url: Some(oidc_url.clone()),
        tsa: Some(trust::TsaTrust {
            url: tsa_url.clone(),
            chain: tsa_chain,
        }),
        extra_ca_chains: Vec::new(),
        extra_tsa_chains: Vec::new(),
        extra_ctlog_keys: Vec::new(),
        extra_tlog_keys: Vec::new(),
        extra_tlog_v2: Vec::new(),
    };
    // a changed CA chain or log key keeps the old one, end-dated, in the trusted root
    let previous = trust::read_trusted_root(&dir.join(trust::TRUSTED_ROOT_FILE))?;
    stack_trust.write(&dir, previous.as_ref(), None)?;

    let tuf_listener = bind(args.host, args.tuf_port, "--tuf-port").await?;
    let tuf_addr = tuf_listener.local_addr()?;
    let tuf_url = format!("http://{tuf_addr}");
    let tuf_root = tuf_repository(
        &TufFiles {
            trust_dir: &dir,
            ceremony: dir.join("tuf-ceremony"),
            online_key: key_at("tuf-online.pem", "tuf-online")?,
            root_keys: (1, 1),
        },
        &database_url,
    )
    .await?;
    let mirrors_dir = dir.join("mirrors");
    std::fs::create_dir_all(&mirrors_dir)
        .with_context(|| format!("creating {}", mirrors_dir.display()))?;
    let tuf_cfg = crate::tuf::config::TufConfig {
        listen: tuf_addr,
        database_url: database_url.clone(),
        online_key: key_at("tuf-online.pem", "tuf-online")?.into(),
        timestamp_ttl_secs: 86_400,
        snapshot_ttl_secs: 7 * 86_400,
        expiry_alarm_secs: 30 * 86_400,
        poll_secs: 5,
        mirrors_dir: Some(mirrors_dir.clone()),
    };
    tuf_cfg.validate()?;
    let tuf = crate::tuf::TufService::start(&tuf_cfg).await?;
    tokio::spawn(tuf.clone().run_maintenance());

    let services = Services {
        log: LogEntry {
            url: log_url.clone(),
            log_id: log.log_id_hex().to_string(),
            tree_id: Some(log.active_tree().to_string()),
            public_key: log_pub_path.display().to_string(),
        },
        log_v2: Some(LogV2Entry {
            url: log_v2_url.clone(),
            log_id: hex::encode(log_v2.log_id()),
            origin: log_v2.origin().to_string(),
            public_key: log_v2_pub_path.display().to_string(),
        }),
        witness: Some(crate::bootstrap::WitnessEntry {
            url: witness_url.clone(),
            name: DEV_WITNESS.into(),
            public_key: witness_pub_path.display().to_string(),
        }),
        ctlog: CtEntry::new(&ct_url, ct_key.public_key(), &ct_pub_path),
        ca: CaEntry {
            url: ca_url.clone(),
            chain: ca_chain_path.display().to_string(),
        },
        oidc: OidcEntry {
            url: oidc_url.clone(),
            username: dev_user.username.clone(),
            email: dev_user.email.clone(),
            password_file: password_file.display().to_string(),
            workload_issuer: oidc.workload_issuer(),
            ci_client_id: DEV_CI_CLIENT.into(),
            ci_secret_file: dir.join("dev-ci-secret").display().to_string(),
        },
        tuf: TufEntry {
            url: tuf_url.clone(),
            root: tuf_root.display().to_string(),
            mirrors: Some(crate::bootstrap::MirrorsEntry {
                url: format!("{tuf_url}/mirrors"),
                dir: mirrors_dir.display().to_string(),
            }),
        },
        tsa: Some(TsaEntry {
            url: tsa_url.clone(),
            chain: tsa_chain_path.display().to_string(),
        }),
        monitor: Some(crate::bootstrap::MonitorEntry {
            url: monitor_url.clone(),
        }),
    };
    let stack_path = StackFile::write(&dir, database_url.clone(), services, &issuers_path)?;
    let monitor = crate::monitor::Monitor::start(&crate::monitor::dev::config(
        &dir,
        monitor_listener.local_addr()?,
        &monitor_url,
        &crate::monitor::dev::DevUrls {
            log: &log_url,
            log_v2: &log_v2_url,
            ct: &ct_url,
            tuf: &tuf_url,
            oidc: &oidc_url,
        },
    ))
    .await?;
    monitor.spawn();

    let exe = std::env::current_exe().ok();
    let client = exe
        .as_ref()
        .map(|e| e.with_file_name("sigstack"))
        .filter(|c| c.exists())
        .map_or("sigstack".to_string(), |c| c.display().to_string());
    let server = exe.map_or("sigstackd".to_string(), |e| e.display().to_string());
    let password = std::fs::read_to_string(&password_file).unwrap_or_default();
    println!("sigstack dev stack is up (data in {})", dir.display());
    println!("  transparency log (Rekor v1): {log_url}");
    println!("  transparency log (Rekor v2): {log_v2_url}");
    println!("  witness of the v2 log:       {witness_url}");
    println!("  certificate authority:       {ca_url}");
    println!("  CT log:                      {ct_url}");
    println!("  OIDC issuer:                 {oidc_url}");
    println!("  TUF repository:              {tuf_url}");
    println!("  timestamp authority:         {tsa_url}");
    println!("  monitor and log explorer:    {monitor_url}");
    println!("  stack description:           {}", stack_path.display());
    println!();
    println!("Trust this stack (once per machine):");
    println!(
        "  {client} initialize --mirror {tuf_url} --root {}",
        tuf_root.display()
    );
    println!(
        "  sigstore --instance {tuf_url} trust-instance {}      # sigstore-python",
        tuf_root.display()
    );
    println!(
        "Sign in on the page a client opens as `{}`, password {} (kept in {}), or for scripts:",
        dev_user.username,
        password.trim(),
        password_file.display()
    );
    println!(
        "  export SIGSTORE_ID_TOKEN=$({server} dev-token --data-dir {})",
        dir.display()
    );
    println!(
        "Verify as --certificate-identity {} --certificate-oidc-issuer {oidc_url}",
        dev_user.email
    );
    println!(
        "CI jobs: client {DEV_CI_CLIENT} (secret in {}) gets workload tokens from {}",
        dir.join("dev-ci-secret").display(),
        oidc.workload_issuer()
    );
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
    let (a, b, c, d, e, f, g, h, i) = tokio::join!(
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
        sigstack_http::serve(oidc_listener, oidc.router(), stopped()),
        sigstack_http::serve(tuf_listener, tuf.router(), stopped()),
        sigstack_http::serve(tsa_listener, tsa.router(), stopped()),
        sigstack_http::serve(log_v2_listener, log_v2.router(), stopped()),
        sigstack_http::serve(witness_listener, witness.router(), stopped()),
        sigstack_http::serve(
            monitor_listener,
            crate::monitor::explorer::router(&monitor),
            stopped()
        ),
    );
    a?;
    b?;
    c?;
    d?;
    e?;
    f?;
    g?;
    h?;
    i?;
    log.store().close().await;
    Ok(())
}
