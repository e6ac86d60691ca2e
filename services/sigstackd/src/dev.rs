//! `sigstackd dev`: the whole stack in one process for testers. Keys are generated into
//! the data directory on first start and reused; the database is an SQLite file there;
//! `stack.json` tells scripts where everything is.

use crate::log::LogService;
use crate::log::config::LogConfig;
use anyhow::Context;
use serde::Serialize;
use sigstack_crypto::{Curve, FileSigner, Signer};
use sigstack_types::trust::{TRUSTED_ROOT_MEDIA_TYPE, TrustedRoot};
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
}

/// What `stack.json` holds: where each running service is and where the trust files are.
#[derive(Serialize)]
struct StackFile {
    version: u32,
    data_dir: String,
    database_url: String,
    services: Services,
    trusted_root: String,
}

#[derive(Serialize)]
struct Services {
    log: LogEntry,
}

#[derive(Serialize)]
struct LogEntry {
    url: String,
    log_id: String,
    tree_id: String,
    public_key: String,
}

fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// Creation time of the key file, as the start of its validity in the trusted root.
fn key_created(path: &Path) -> i64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64 - 60)
        .unwrap_or(0)
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
    let database_url = format!("sqlite://{}", dir.join("sigstack.db").display());

    let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.host, args.log_port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}:{} (is another sigstackd running? pass --log-port 0 for any free port)",
                args.host, args.log_port
            )
        })?;
    let addr = listener.local_addr()?;
    let url = format!("http://{}", addr);
    let cfg = LogConfig::load_for_dev(addr, &url, &database_url, &log_key_path)?;
    let store = sigstack_storage::Store::open(&database_url).await?;
    let log = LogService::with_parts(&cfg, store, log_key.clone()).await?;

    let start = crate::time::rfc3339(key_created(&log_key_path));
    let root = TrustedRoot {
        media_type: TRUSTED_ROOT_MEDIA_TYPE.into(),
        tlogs: vec![log.trust_instance(&start)],
        ..Default::default()
    };
    let root_path = dir.join("trusted_root.json");
    write_atomic(&root_path, &serde_json::to_vec_pretty(&root)?)?;
    let stack = StackFile {
        version: 1,
        data_dir: dir.display().to_string(),
        database_url: database_url.clone(),
        services: Services {
            log: LogEntry {
                url: url.clone(),
                log_id: log.log_id_hex().to_string(),
                tree_id: log.active_tree().to_string(),
                public_key: log_pub_path.display().to_string(),
            },
        },
        trusted_root: root_path.display().to_string(),
    };
    let stack_path = dir.join("stack.json");
    write_atomic(&stack_path, &serde_json::to_vec_pretty(&stack)?)?;

    println!("sigstack dev stack is up (data in {})", dir.display());
    println!("  transparency log (Rekor v1): {url}");
    println!("  trusted root:                {}", root_path.display());
    println!("  stack description:           {}", stack_path.display());
    println!("Stop with Ctrl-C; the log and keys are kept for the next start.");

    sigstack_http::serve(
        listener,
        log.router(cfg.max_request_bytes),
        sigstack_http::shutdown_signal(),
    )
    .await?;
    log.store().close().await;
    Ok(())
}
