//! `sigstackd`: the sigstack server. Each service runs as its own subcommand in
//! production; `sigstackd dev` runs every service in one process on an embedded
//! database for testing.

mod admission;
mod airgap;
mod bootstrap;
mod ca;
mod cpu_pool;
mod ctlog;
#[cfg(test)]
mod deploy_check;
mod dev;
mod doctor;
mod init;
mod keys;
mod log;
mod log_v2;
mod monitor;
mod oidc;
mod reissue;
mod sequencer;
mod settings;
mod time;
mod trust;
mod tsa;
mod tuf;
mod witness;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: a busy log allocates and frees many small buffers
/// per request on every worker thread, and glibc's arenas spent some 14 % of the server's
/// CPU on it under load (BENCHMARKS.md, "What bounds appends").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "sigstackd",
    version,
    about = "A self-hostable Sigstore server stack"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum LogAction {
    /// A key for the log's next shard: publish it with `trust export --add-tlog-key`,
    /// then start the shard with `new-shard --signing-key`.
    NewKey(reissue::NewKeyArgs),
    /// Freeze the active shard and start a new, empty one (run while the log is stopped).
    /// Entries keep their global indexes; the frozen shard is listed as inactive.
    NewShard {
        /// Start the new shard with this key (a key rotation; publish its public half with
        /// `trust export --add-tlog-key` first). Then set `signing_key` to it and add the
        /// old key to `previous_keys`. Default: the configured key.
        #[arg(long)]
        signing_key: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum CaAction {
    /// Make a new issuing certificate under the existing root (bring the root key back
    /// from offline for this): publish its chain in the trust files before the CA uses it.
    NewIntermediate(ca::intermediate::NewIntermediateArgs),
}

#[derive(Subcommand)]
enum CtlogAction {
    /// A key for the CT log that takes over (a new key is a new CT log: run it under a
    /// new `log_name`); publish it with `trust export --add-ctlog-key` first.
    NewKey(reissue::NewKeyArgs),
}

#[derive(Subcommand)]
enum TsaAction {
    /// A new signing key and certificate under the TSA's existing root (publish its
    /// chain with `trust export --add-tsa-chain` before pointing the TSA at it).
    NewCertificate(tsa::rotate::NewCertificateArgs),
}

#[derive(Subcommand)]
enum OidcAction {
    /// Read a password from standard input (first line) and print its argon2id hash for
    /// a `[[users]]` entry's `password_hash`.
    HashPassword,
}

#[derive(Subcommand)]
enum TufAction {
    /// The root ceremony: generate offline root and targets keys (threshold, several
    /// keyholders) and the online key, and write signed version-1 metadata to publish.
    Init(tuf::ceremony::InitArgs),
    /// Add keyholders' signatures to staged metadata files.
    Sign(tuf::ceremony::SignArgs),
    /// Stage a new targets version from changed trust files.
    StageTargets(tuf::ceremony::StageTargetsArgs),
    /// Stage a new root version (key rotation); sign it with old and new root keys.
    StageRoot(tuf::ceremony::StageRootArgs),
    /// Check signed root/targets metadata against the trusted root and store it; the
    /// running service then signs a snapshot and timestamp for it.
    Publish(tuf::ceremony::PublishArgs),
    /// Write the repository as static files (a web server's, or a `file://` mirror for
    /// clients across an air gap).
    Export(tuf::export::ExportArgs),
    /// Follow another TUF repository (public good, another stack) and write what it
    /// verified, byte for byte, into a directory (once, or --every SECS).
    Mirror(tuf::mirror::MirrorArgs),
    /// Benchmark: time re-signing snapshot and timestamp (and publishing them).
    #[command(hide = true)]
    BenchResign {
        #[arg(long, default_value_t = 1000)]
        iterations: usize,
        /// Also publish each pair into this (empty) database.
        #[arg(long)]
        database_url: Option<String>,
    },
}

#[derive(Subcommand)]
enum WitnessAction {
    /// Create the state file of a new witness (once; an existing one is never reset).
    InitState,
}

#[derive(Subcommand)]
enum TrustAction {
    /// Fetch the public keys and CA chain from running services, check them, and write
    /// the trust files clients use.
    Export(trust::ExportArgs),
}

#[derive(Subcommand)]
enum Command {
    /// Run every service on loopback with an embedded SQLite database and generated keys
    /// kept in the data directory; writes DATA_DIR/stack.json.
    Dev(dev::DevArgs),
    /// Prepare a stack for separate processes or containers: keys, a CA chain, one
    /// configuration file per service, the trust files and a TUF repository published
    /// into the (migrated) database. Safe to run again: keys and secrets are kept.
    Init(init::InitArgs),
    /// Check a running stack end to end from its TUF root, as a client sees it: TUF
    /// fresh, services serving the keys and chain the trust files name, the CA chain's
    /// validity horizon, the log's checkpoint and the CT log's tree head verifying.
    /// Exits 1 if anything is wrong.
    Doctor(doctor::DoctorArgs),
    /// Exit 0 if URL answers 200 within 5 seconds, else 1: a health check for containers
    /// (`sigstackd probe http://127.0.0.1:3000/readyz`) with no HTTP client in the image.
    Probe { url: String },
    /// Print a fresh ID token from the dev stack's OIDC issuer (for scripts).
    DevToken(dev::DevTokenArgs),
    /// Run the transparency log (Rekor v1 API), or administer it.
    Log {
        /// TOML configuration file; every key may also come from SIGSTACK_LOG_<KEY>.
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: Option<LogAction>,
    },
    /// Run the tiled transparency log: Rekor v2's write API and the C2SP tlog-tiles read
    /// API, checkpoints signed with an Ed25519 key.
    LogV2 {
        /// TOML configuration file; every key may also come from SIGSTACK_LOG_V2_<KEY>.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Run a transparency log witness (C2SP tlog-witness): cosigns the checkpoints of
    /// the logs it follows once they prove consistent with what it saw before.
    Witness {
        /// TOML configuration file; scalar keys may also come from SIGSTACK_WITNESS_<KEY>.
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: Option<WitnessAction>,
    },
    /// Run the certificate authority (Fulcio API v2 and legacy v1), or make it a new
    /// intermediate.
    Ca {
        /// TOML configuration file; every key may also come from SIGSTACK_CA_<KEY>.
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: Option<CaAction>,
    },
    /// Run the OIDC identity provider (login page, upstream connectors, device flow,
    /// workload tokens), or hash a password for its configuration.
    Oidc {
        /// TOML configuration file; scalar keys may also come from SIGSTACK_OIDC_<KEY>.
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: Option<OidcAction>,
    },
    /// Carry trust across an air gap: write a kit of TUF repositories, trust files and
    /// log checkpoints, and verify and publish it on the other side.
    Airgap {
        #[command(subcommand)]
        action: airgap::AirgapAction,
    },
    /// Run the Kubernetes admission webhook: admit only images whose signatures and
    /// attestations satisfy the ClusterImagePolicy documents (policy-controller's format).
    Admission {
        #[command(flatten)]
        args: admission::AdmissionArgs,
    },
    /// Run the TUF repository (consistent snapshots; timestamp and snapshot re-signed
    /// online), or run its offline ceremony commands.
    Tuf {
        /// TOML configuration file; every key may also come from SIGSTACK_TUF_<KEY>.
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: Option<TufAction>,
    },
    /// The stack's trust files (trusted_root.json, signing_config.v0.2.json, trust_config.json).
    Trust {
        #[command(subcommand)]
        action: TrustAction,
    },
    /// Run the RFC 6962 certificate-transparency log the CA submits precertificates to,
    /// or make a key for its successor.
    Ctlog {
        /// TOML configuration file; every key may also come from SIGSTACK_CTLOG_<KEY>.
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: Option<CtlogAction>,
    },
    /// Watch the transparency logs: audit each one (a fork or a rollback is an alert),
    /// report entries matching a watch list (rekor-monitor's format) by webhook and
    /// e-mail, and serve the log explorer.
    Monitor {
        /// TOML configuration file; scalar keys may also come from SIGSTACK_MONITOR_<KEY>.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Exit once every log is read and verified up to its current head, printing how
        /// many entries were read per second (for catch-up runs and benchmarks).
        #[arg(long)]
        until_caught_up: bool,
    },
    /// Run the RFC 3161 timestamp authority (timestamp-authority's API), or make it a
    /// new certificate.
    Tsa {
        /// TOML configuration file; every key may also come from SIGSTACK_TSA_<KEY>.
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: Option<TsaAction>,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        /// postgres://… or sqlite://PATH
        #[arg(long, env = "SIGSTACK_DATABASE_URL")]
        database_url: String,
    },
    /// Benchmark tool: append synthetic entries straight into a log's database.
    #[command(hide = true)]
    BenchFill {
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[arg(long)]
        entries: u64,
        #[arg(long, default_value_t = 20_000)]
        batch: usize,
    },
    /// Write the OpenAPI documents of every service into a directory.
    Openapi {
        #[arg(long, default_value = "openapi")]
        out: PathBuf,
        /// Exit non-zero if the files on disk differ instead of writing them.
        #[arg(long)]
        check: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    sigstack_http::init_tracing();
    // TLS for outgoing HTTPS (OIDC discovery and JWKS, CT log, trust export) uses
    // aws-lc-rs, the same crypto library as the rest of the server; roots come from the
    // system store.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        match cli.command {
            Command::Dev(args) => dev::run(args).await,
            Command::DevToken(args) => dev::dev_token(args),
            Command::Init(args) => init::run(args).await,
            Command::Probe { url } => {
                let ok = reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(5))
                    .build()?
                    .get(&url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == reqwest::StatusCode::OK);
                std::process::exit(if ok { 0 } else { 1 })
            }
            Command::Doctor(args) => {
                if doctor::run(args).await? {
                    Ok(())
                } else {
                    std::process::exit(1)
                }
            }
            Command::Log {
                config,
                action: None,
            } => run_log(config).await,
            Command::Log {
                action: Some(LogAction::NewKey(a)),
                ..
            } => reissue::new_log_key(
                &a,
                "transparency log",
                "publish it (`sigstackd trust export --previous … --add-tlog-key PUBLIC`, stage, publish), wait out the clients' TUF cache, then stop the log, run `sigstackd log --config … new-shard --signing-key KEY`, set signing_key to it and the old key in previous_keys, and start the log",
            ),
            Command::Log {
                config,
                action: Some(LogAction::NewShard { signing_key }),
            } => {
                let cfg = log::config::LogConfig::load(config.as_deref())?;
                let tree = log::new_shard(&cfg, signing_key.as_deref()).await?;
                match signing_key {
                    Some(k) if k.as_path() != &*cfg.signing_key => println!(
                        "new active shard {tree}, signed by {}: set signing_key to it, add {} to previous_keys, and restart the log",
                        k.display(),
                        cfg.signing_key.display()
                    ),
                    _ => println!("new active shard {tree}; restart the log to serve it"),
                }
                Ok(())
            }
            Command::LogV2 { config } => run_log_v2(config).await,
            Command::Witness {
                config,
                action: Some(WitnessAction::InitState),
            } => {
                let cfg = witness::config::WitnessConfig::load(config.as_deref())?;
                witness::init_state(&cfg)?;
                println!("created {}", cfg.state_file.display());
                Ok(())
            }
            Command::Witness {
                config,
                action: None,
            } => {
                let cfg = witness::config::WitnessConfig::load(config.as_deref())?;
                tracing::info!(config = ?cfg, "starting witness");
                let svc = witness::WitnessService::start(&cfg)?;
                serve_until_stopped("witness", cfg.listen, svc.router()).await
            }
            Command::Ctlog {
                config,
                action: None,
            } => run_ctlog(config).await,
            Command::Ctlog {
                action: Some(CtlogAction::NewKey(a)),
                ..
            } => reissue::new_log_key(
                &a,
                "CT log",
                "publish it (`sigstackd trust export --previous … --add-ctlog-key PUBLIC`, stage, publish), wait out the clients' TUF cache, run the CT log with it under a new log_name, then point the CA's ctlog_public_key (and ctlog_url) at that log",
            ),
            Command::Ca {
                config,
                action: None,
            } => run_ca(config).await,
            Command::Ca {
                action: Some(CaAction::NewIntermediate(a)),
                ..
            } => ca::intermediate::run(&a),
            Command::Monitor {
                config,
                until_caught_up,
            } => {
                let cfg = monitor::config::MonitorConfig::load(config.as_deref())?;
                monitor::run(cfg, until_caught_up).await
            }
            Command::Tsa {
                action: Some(TsaAction::NewCertificate(a)),
                ..
            } => tsa::rotate::run(&a),
            Command::Tsa {
                config,
                action: None,
            } => {
                let cfg = tsa::config::TsaConfig::load(config.as_deref())?;
                let svc = tsa::TsaService::start(&cfg)?;
                tracing::info!(listen = %cfg.listen, policy = cfg.policy_oid, "starting timestamp authority");
                serve_until_stopped("timestamp authority", cfg.listen, svc.router()).await
            }
            Command::Oidc {
                action: Some(OidcAction::HashPassword),
                ..
            } => {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                let password = line.trim_end_matches(['\r', '\n']);
                anyhow::ensure!(!password.is_empty(), "no password on standard input");
                println!(
                    "{}",
                    sigstack_oidc::login::hash_password(password, rand::random())?
                );
                Ok(())
            }
            Command::Oidc {
                config,
                action: None,
            } => {
                let cfg = oidc::config::OidcConfig::load(config.as_deref())?;
                let svc = oidc::OidcService::start(&cfg)?;
                tracing::info!(issuer = svc.issuer(), "starting OIDC issuer");
                serve_until_stopped("OIDC issuer", cfg.listen, svc.router()).await
            }
            Command::Trust {
                action: TrustAction::Export(args),
            } => trust::export(args).await,
            Command::Airgap { action } => airgap::run(action).await,
            Command::Admission { args } => admission::run(args).await,
            Command::Tuf { config, action } => match action {
                None => run_tuf(config).await,
                Some(TufAction::Init(a)) => {
                    println!("{}", tuf::ceremony::init(&a)?);
                    Ok(())
                }
                Some(TufAction::Sign(a)) => tuf::ceremony::sign(&a),
                Some(TufAction::StageTargets(a)) => {
                    let p = tuf::ceremony::stage_targets(&a).await?;
                    println!("staged {} (sign it with `sigstackd tuf sign` if needed, then publish)", p.display());
                    Ok(())
                }
                Some(TufAction::StageRoot(a)) => {
                    let p = tuf::ceremony::stage_root(&a).await?;
                    println!("staged {}: it needs the thresholds of both the old and the new root keys (`sigstackd tuf sign`), then publish", p.display());
                    Ok(())
                }
                Some(TufAction::BenchResign {
                    iterations,
                    database_url,
                }) => tuf::bench_resign(iterations, database_url.as_deref()).await,
                Some(TufAction::Mirror(a)) => tuf::mirror::run(&a).await,
                Some(TufAction::Export(a)) => {
                    let (n, version, expires) = tuf::export::run(&a).await?;
                    println!(
                        "wrote {n} files in {} (timestamp version {version}); clients refuse the copy after {expires}: export again before then",
                        a.out.display()
                    );
                    Ok(())
                }
                Some(TufAction::Publish(a)) => {
                    for p in tuf::ceremony::publish(&a).await? {
                        println!("published {p}");
                    }
                    Ok(())
                }
            },
            Command::Migrate { database_url } => {
                let store = sigstack_storage::Store::connect(&database_url).await?;
                sigstack_storage::migrate(&store).await?;
                println!("migrated {}", sigstack_storage::redact(&database_url));
                Ok(())
            }
            Command::BenchFill {
                config,
                entries,
                batch,
            } => {
                let cfg = log::config::LogConfig::load(config.as_deref())?;
                log::fill::run(&cfg, entries, batch).await
            }
            Command::Openapi { out, check } => openapi(&out, check),
        }
    })
}

/// Serves one service on its configured address until SIGINT/SIGTERM.
async fn serve_until_stopped(
    name: &str,
    listen: std::net::SocketAddr,
    router: axum::Router,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    tracing::info!(addr = %listener.local_addr()?, "{name} ready");
    sigstack_http::serve(listener, router, sigstack_http::shutdown_signal()).await?;
    Ok(())
}

async fn run_log(config: Option<PathBuf>) -> anyhow::Result<()> {
    let cfg = log::config::LogConfig::load(config.as_deref())?;
    tracing::info!(config = ?cfg, "starting log");
    let svc = log::LogService::start(&cfg).await?;
    tracing::info!(tree = svc.active_tree(), "active shard");
    serve_until_stopped("log", cfg.listen, svc.router(cfg.max_request_bytes)).await
}

async fn run_log_v2(config: Option<PathBuf>) -> anyhow::Result<()> {
    let cfg = log_v2::config::LogV2Config::load(config.as_deref())?;
    tracing::info!(config = ?cfg, "starting log-v2");
    let svc = log_v2::LogV2Service::start(&cfg).await?;
    tracing::info!(tree = svc.tree_id(), origin = svc.origin(), "serving");
    serve_until_stopped("log-v2", cfg.listen, svc.router()).await
}

async fn run_ctlog(config: Option<PathBuf>) -> anyhow::Result<()> {
    let cfg = ctlog::config::CtLogConfig::load(config.as_deref())?;
    tracing::info!(
        listen = %cfg.listen,
        database = %sigstack_storage::redact(&cfg.database_url),
        log_name = cfg.log_name,
        "starting CT log"
    );
    let svc = ctlog::CtLogService::start(&cfg).await?;
    serve_until_stopped("CT log", cfg.listen, svc.router(cfg.max_request_bytes)).await
}

async fn run_ca(config: Option<PathBuf>) -> anyhow::Result<()> {
    let cfg = ca::config::CaConfig::load(config.as_deref())?;
    tracing::info!(config = ?cfg, "starting CA");
    let svc = ca::CaService::start(&cfg).await?;
    serve_until_stopped("CA", cfg.listen, svc.router(cfg.max_request_bytes)).await
}

async fn run_tuf(config: Option<PathBuf>) -> anyhow::Result<()> {
    let cfg = tuf::config::TufConfig::load(config.as_deref())?;
    tracing::info!(
        listen = %cfg.listen,
        database = %sigstack_storage::redact(&cfg.database_url),
        "starting TUF repository"
    );
    let svc = tuf::TufService::start(&cfg).await?;
    tokio::spawn(svc.clone().run_maintenance());
    serve_until_stopped("TUF repository", cfg.listen, svc.router()).await
}

/// The OpenAPI documents, by file name.
pub fn openapi_documents() -> Vec<(&'static str, String)> {
    vec![
        ("log.json", log::api::document()),
        ("log-v2.json", log_v2::api::document()),
        ("ctlog.json", ctlog::api::document()),
        ("ca.json", ca::api::document()),
        ("oidc.json", oidc::api::document()),
        ("tuf.json", tuf::document()),
        ("tsa.json", tsa::api::document()),
        ("admission.json", admission::document()),
    ]
}

fn openapi(out: &std::path::Path, check: bool) -> anyhow::Result<()> {
    let mut stale = Vec::new();
    for (name, doc) in openapi_documents() {
        let path = out.join(name);
        if check {
            if std::fs::read_to_string(&path).ok().as_deref() != Some(doc.as_str()) {
                stale.push(path.display().to_string());
            }
        } else {
            std::fs::create_dir_all(out)?;
            std::fs::write(&path, doc).with_context(|| format!("writing {}", path.display()))?;
            println!("wrote {}", path.display());
        }
    }
    if !stale.is_empty() {
        anyhow::bail!(
            "OpenAPI documents out of date: {} (run `cargo run -p sigstackd -- openapi`)",
            stale.join(", ")
        );
    }
    Ok(())
}
