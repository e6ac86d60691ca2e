//! What every sigstack HTTP service shares: the error type and its one mapping to a
//! response, a JSON body extractor that answers bad input with the right status, request
//! logging, liveness, graceful serving, and logging setup.

mod error;
mod json;
pub mod metrics;
pub mod serve;

pub use error::ApiError;
pub use json::ApiJson;
pub use serve::{serve, serve_with};

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

/// Logging to stderr: `SIGSTACK_LOG` (env-filter syntax, default `info`), JSON lines when
/// `SIGSTACK_LOG_FORMAT=json`.
pub fn init_tracing() {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    // sqlx reports PostgreSQL's notices (e.g. "relation already exists, skipping" from
    // idempotent migrations) at info: only warnings and worse of those
    let filter = EnvFilter::try_from_env("SIGSTACK_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx::postgres::notice=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_writer(std::io::stderr);
    let res = if std::env::var("SIGSTACK_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    let _ = res;
}
pub use tokio_rustls;
