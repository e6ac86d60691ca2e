//! `sigstackd oidc`: the OIDC identity provider (Dex's endpoint layout). People log in on
//! a server-rendered page (authorization code flow with PKCE S256 for the public client
//! `sigstore`, loopback redirects on any port, out-of-band codes) or approve a device
//! code; the token endpoint answers with an ES256 ID token our CA accepts.

pub mod api;
pub mod config;
mod pages;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use config::OidcConfig;
use sigstack_crypto::{FileSigner, PublicKey, Signer};
use sigstack_oidc::grants::{Codes, Devices, Grant};
use sigstack_oidc::jwt::{self, FederatedClaims, IdClaims};
use sigstack_oidc::login::{Limiter, LocalUser};
use std::sync::{Arc, Mutex};

pub struct OidcService {
    issuer: String,
    signer: Arc<dyn Signer>,
    /// The JWKS document (the signing key, then previous keys still published), and the
    /// same keys as the verifier `/userinfo` checks tokens with; both built once.
    jwks_doc: serde_json::Value,
    verify_keys: sigstack_ca::token::Jwks,
    users: Vec<LocalUser>,
    clients: Vec<config::ClientConfig>,
    token_ttl: i64,
    codes: Mutex<Codes>,
    devices: Mutex<Devices>,
    limiter: Mutex<Limiter>,
}

/// Lifetime of authorization codes and device codes, in seconds.
const CODE_TTL: i64 = 60;
const DEVICE_TTL: i64 = 600;
const DEVICE_INTERVAL: i64 = 5;

pub fn unix_now() -> i64 {
    crate::sequencer::unix_now()
}

impl OidcService {
    pub fn start(cfg: &OidcConfig) -> anyhow::Result<Arc<Self>> {
        let signer = FileSigner::load(&cfg.signing_key)
            .with_context(|| format!("loading OIDC key {}", cfg.signing_key.display()))?;
        anyhow::ensure!(
            signer.public_key().key_details() == "PKIX_ECDSA_P256_SHA_256",
            "the OIDC signing key must be ECDSA P-256 (ES256)"
        );
        let mut published = vec![signer.public_key().clone()];
        for p in &cfg.previous_keys {
            let k = PublicKey::from_pem(
                &std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
            )
            .with_context(|| format!("previous key {}", p.display()))?;
            jwt::jwk(&k).with_context(|| format!("previous key {}", p.display()))?;
            published.push(k);
        }
        let jwks_doc = jwt::jwks(&published.iter().collect::<Vec<_>>())?;
        let verify_keys = sigstack_ca::token::Jwks::from_json(jwks_doc.to_string().as_bytes())?;
        Ok(Arc::new(Self {
            jwks_doc,
            verify_keys,
            issuer: cfg.public_url(),
            signer: Arc::new(signer),
            users: cfg.users.clone(),
            clients: cfg.clients.clone(),
            token_ttl: cfg.token_ttl_secs,
            codes: Default::default(),
            devices: Default::default(),
            limiter: Default::default(),
        }))
    }

    pub fn router(self: &Arc<Self>) -> Router {
        api::routes()
            .with_state(self.clone())
            .layer(DefaultBodyLimit::max(64 << 10))
            .layer(axum::middleware::from_fn(sigstack_http::log_requests))
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The registered redirect URIs of a client; `None` for an unknown client.
    fn client_redirects(&self, client_id: &str) -> Option<Vec<String>> {
        if client_id == "sigstore" {
            return Some(Vec::new());
        }
        self.clients
            .iter()
            .find(|c| c.id == client_id)
            .map(|c| c.redirect_uris.clone())
    }

    fn grant_for(&self, user: &LocalUser, client_id: &str, nonce: Option<String>) -> Grant {
        Grant {
            client_id: client_id.to_string(),
            subject: user.username.clone(),
            email: Some(user.email.clone()),
            nonce,
            connector_id: self.issuer.clone(),
        }
    }

    /// Mints the ID token for a redeemed grant.
    pub fn id_token(&self, grant: &Grant) -> Result<String, jwt::JwtError> {
        let now = unix_now();
        let user = self.users.iter().find(|u| u.username == grant.subject);
        jwt::mint(
            self.signer.as_ref(),
            &IdClaims {
                iss: self.issuer.clone(),
                sub: grant.subject.clone(),
                aud: grant.client_id.clone(),
                exp: now + self.token_ttl,
                iat: now,
                nonce: grant.nonce.clone(),
                email: grant.email.clone(),
                email_verified: grant.email.as_ref().map(|_| true),
                name: user.and_then(|u| u.name.clone()),
                federated_claims: FederatedClaims {
                    connector_id: grant.connector_id.clone(),
                    user_id: grant.subject.clone(),
                },
            },
        )
    }
}
