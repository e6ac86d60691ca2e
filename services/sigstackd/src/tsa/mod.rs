//! `sigstackd tsa`: an RFC 3161 timestamp authority with timestamp-authority's HTTP API.
//! Timestamps are stamped from the host's system clock (`CLOCK_REALTIME`, which NTP or
//! chrony keeps on UTC) with the configured accuracy stated in each one; the service keeps
//! no state, so it scales by running more copies with the same key and chain.

pub mod api;
pub mod config;
pub mod rotate;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use config::TsaConfig;
use sigstack_crypto::{Certificate, KeyMaterial};
use sigstack_tsa::Authority;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

pub struct TsaService {
    authority: Authority,
    issued: AtomicU64,
    refused: AtomicU64,
    http: Arc<sigstack_http::metrics::HttpMetrics>,
}

impl TsaService {
    /// Loads the key and chain and checks them against the TSA certificate profile.
    pub fn start(cfg: &TsaConfig) -> anyhow::Result<Arc<Self>> {
        let signer = crate::keys::open(&cfg.signing_key, "the TSA key")?;
        let pem = std::fs::read(&cfg.cert_chain)
            .with_context(|| format!("reading {}", cfg.cert_chain.display()))?;
        let chain: Vec<Certificate> = match KeyMaterial::from_pem(&pem)
            .with_context(|| format!("parsing {}", cfg.cert_chain.display()))?
        {
            KeyMaterial::Certificates(c) => c,
            _ => anyhow::bail!(
                "{} must hold the TSA's certificate chain (PEM certificates, leaf first)",
                cfg.cert_chain.display()
            ),
        };
        let authority = Authority::new(
            signer,
            chain,
            &cfg.policy_oid,
            &cfg.accepted_policy_oids,
            Duration::from_millis(cfg.accuracy_ms),
        )
        .map_err(|e| anyhow::anyhow!("{}: {e}", cfg.cert_chain.display()))?;
        Ok(Arc::new(TsaService {
            authority,
            issued: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            http: sigstack_http::metrics::HttpMetrics::new("tsa"),
        }))
    }

    pub fn router(self: &Arc<Self>) -> Router {
        api::routes()
            .with_state(self.clone())
            .layer(DefaultBodyLimit::max(
                sigstack_tsa::request::MAX_REQUEST_BYTES,
            ))
            .layer(axum::middleware::from_fn_with_state(
                self.http.clone(),
                sigstack_http::metrics::observe,
            ))
    }

    /// The chain, leaf first.
    pub fn chain(&self) -> &[Certificate] {
        self.authority.chain()
    }
}
