//! `sigstackd oidc`: the OIDC identity provider (Dex's endpoint layout). People log in on
//! a server-rendered page with a local account or through an upstream identity provider
//! (authorization code flow with PKCE S256, loopback redirects on any port, out-of-band
//! codes, consent where configured) or approve a device code; machines use the
//! `client_credentials` grant. The token endpoint answers with an ID token (ES256 or
//! RS256, as the signing key is) our CA accepts.

pub mod api;
pub mod config;
pub(crate) mod pages;
pub mod upstream;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use config::{ClientConfig, OidcConfig, WorkloadConfig};
use sigstack_crypto::{PublicKey, Signer};
use sigstack_oidc::discovery;
use sigstack_oidc::grants::{Codes, Devices, Grant, Pending};
use sigstack_oidc::jwt::{self, FederatedClaims, IdClaims};
use sigstack_oidc::login::{Limiter, LocalUser};
use sigstack_oidc::pkce;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A registered client, as the token endpoint knows it.
pub struct Client {
    pub id: String,
    pub redirect_uris: Vec<String>,
    /// SHA-256 of the secret of a confidential client.
    secret_digest: Option<[u8; 32]>,
    pub consent: bool,
    pub workload: Option<WorkloadConfig>,
}

impl Client {
    fn from_config(c: &ClientConfig) -> anyhow::Result<Self> {
        let secret_digest = c
            .secret_file
            .as_deref()
            .map(config::read_secret)
            .transpose()
            .with_context(|| format!("client {:?}", c.id))?
            .map(|s| sigstack_crypto::sha256(s.as_bytes()));
        Ok(Self {
            id: c.id.clone(),
            redirect_uris: c.redirect_uris.clone(),
            secret_digest,
            consent: c.consent,
            workload: c.workload.clone(),
        })
    }

    fn public(id: &str) -> Self {
        Self {
            id: id.to_string(),
            redirect_uris: Vec::new(),
            secret_digest: None,
            consent: false,
            workload: None,
        }
    }

    /// Whether `secret` authenticates this client: a confidential client must present
    /// its secret; a public one nothing (or an empty secret, as sigstore-python sends).
    pub fn authenticates(&self, secret: Option<&str>) -> bool {
        match (&self.secret_digest, secret) {
            (Some(digest), Some(s)) => {
                pkce::constant_time_eq(&sigstack_crypto::sha256(s.as_bytes()), digest)
            }
            (Some(_), None) => false,
            (None, s) => s.is_none_or(str::is_empty),
        }
    }
}

/// A sign-in waiting for the person's consent.
pub struct ConsentPrompt {
    pub params: api::AuthParams,
    pub grant: Grant,
}

/// A sign-in in progress at an upstream identity provider.
pub struct UpstreamSignIn {
    pub connector: usize,
    pub params: api::AuthParams,
    pub verifier: String,
    pub nonce: String,
}

pub struct OidcService {
    http_metrics: Arc<sigstack_http::metrics::HttpMetrics>,
    issuer: String,
    signer: Arc<dyn Signer>,
    /// The JWS algorithms of the published keys, the signing key's first.
    algs: Vec<&'static str>,
    /// The JWKS document (the signing key, then previous keys still published), and the
    /// same keys as the verifier `/userinfo` checks tokens with; both built once.
    jwks_doc: serde_json::Value,
    verify_keys: sigstack_ca::token::Jwks,
    users: Vec<LocalUser>,
    clients: Vec<Client>,
    connectors: Vec<upstream::Connector>,
    http: crate::ca::fetch::HttpFetcher,
    token_ttl: i64,
    codes: Mutex<Codes>,
    devices: Mutex<Devices>,
    consents: Mutex<Pending<ConsentPrompt>>,
    upstream: Mutex<Pending<UpstreamSignIn>>,
    limiter: Mutex<Limiter>,
}

/// Lifetime of authorization codes and device codes, in seconds.
const CODE_TTL: i64 = 60;
const DEVICE_TTL: i64 = 600;
const DEVICE_INTERVAL: i64 = 5;
/// How long a consent page or an upstream sign-in may take, in seconds.
const PROMPT_TTL: i64 = 600;

pub fn unix_now() -> i64 {
    crate::sequencer::unix_now()
}

/// Locks a mutex, carrying on past a panic elsewhere (the state stays consistent: every
/// critical section is a single map operation).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl OidcService {
    pub fn start(cfg: &OidcConfig) -> anyhow::Result<Arc<Self>> {
        let signer = crate::keys::open(&cfg.signing_key, "the OIDC key")?;
        let alg = jwt::algorithm(signer.public_key())
            .context("the OIDC signing key must be ECDSA P-256 (ES256) or RSA (RS256)")?;
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
        let mut algs = vec![alg];
        for k in &published {
            let a = jwt::algorithm(k)?;
            if !algs.contains(&a) {
                algs.push(a);
            }
        }
        let verify_keys = sigstack_ca::token::Jwks::from_json(jwks_doc.to_string().as_bytes())?;
        let mut clients = cfg
            .clients
            .iter()
            .map(Client::from_config)
            .collect::<anyhow::Result<Vec<_>>>()?;
        if !clients.iter().any(|c| c.id == "sigstore") {
            clients.push(Client::public("sigstore"));
        }
        let connectors = cfg
            .connectors
            .iter()
            .map(|c| upstream::Connector::new(c).with_context(|| format!("connector {:?}", c.id)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Arc::new(Self {
            http_metrics: sigstack_http::metrics::HttpMetrics::new("oidc"),
            jwks_doc,
            verify_keys,
            issuer: cfg.public_url(),
            signer,
            algs,
            users: cfg.users.clone(),
            clients,
            connectors,
            http: crate::ca::fetch::HttpFetcher::new(&Default::default())?,
            token_ttl: cfg.token_ttl_secs,
            codes: Default::default(),
            devices: Default::default(),
            consents: Default::default(),
            upstream: Default::default(),
            limiter: Default::default(),
        }))
    }

    pub fn router(self: &Arc<Self>) -> Router {
        api::routes()
            .with_state(self.clone())
            .layer(DefaultBodyLimit::max(64 << 10))
            .layer(axum::middleware::from_fn(page_headers))
            .layer(axum::middleware::from_fn_with_state(
                self.http_metrics.clone(),
                sigstack_http::metrics::observe,
            ))
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The issuer of workload tokens.
    pub fn workload_issuer(&self) -> String {
        format!("{}{}", self.issuer, discovery::WORKLOAD)
    }

    /// Where upstream identity providers send people back to.
    pub fn callback_url(&self) -> String {
        format!("{}{}", self.issuer, api::CALLBACK)
    }

    fn client(&self, client_id: &str) -> Option<&Client> {
        self.clients.iter().find(|c| c.id == client_id)
    }

    fn local_grant(&self, user: &LocalUser, client_id: &str, nonce: Option<String>) -> Grant {
        Grant {
            client_id: client_id.to_string(),
            subject: user.username.clone(),
            email: Some(user.email.clone()),
            email_verified: true,
            name: user.name.clone(),
            nonce,
            connector_id: self.issuer.clone(),
            user_id: user.username.clone(),
        }
    }

    /// Mints the ID token for a redeemed grant.
    pub fn id_token(&self, grant: &Grant) -> Result<String, jwt::JwtError> {
        let now = unix_now();
        jwt::mint(
            self.signer.as_ref(),
            &IdClaims {
                iss: self.issuer.clone(),
                sub: grant.subject.clone(),
                aud: grant.client_id.clone().into(),
                exp: now + self.token_ttl,
                iat: now,
                nonce: grant.nonce.clone(),
                email: grant.email.clone(),
                email_verified: grant.email.as_ref().map(|_| grant.email_verified),
                name: grant.name.clone(),
                federated_claims: FederatedClaims {
                    connector_id: grant.connector_id.clone(),
                    user_id: grant.user_id.clone(),
                },
                extra: BTreeMap::new(),
            },
        )
    }

    /// Mints a workload token (no e-mail) for a machine client.
    /// A workload token for `audience`, naming the requesting client as an audience too
    /// (OIDC clients such as cosign's client-credentials flow require their own id).
    pub fn workload_token(
        &self,
        workload: &WorkloadConfig,
        audience: &str,
        client_id: &str,
    ) -> Result<String, jwt::JwtError> {
        let now = unix_now();
        let iss = self.workload_issuer();
        jwt::mint(
            self.signer.as_ref(),
            &IdClaims {
                sub: workload.subject.clone(),
                aud: if audience == client_id {
                    audience.into()
                } else {
                    jwt::Audience::Many(vec![audience.to_string(), client_id.to_string()])
                },
                exp: now + self.token_ttl,
                iat: now,
                nonce: None,
                email: None,
                email_verified: None,
                name: None,
                federated_claims: FederatedClaims {
                    connector_id: iss.clone(),
                    user_id: workload.subject.clone(),
                },
                extra: workload.claims.clone(),
                iss,
            },
        )
    }
}

/// The HTML pages (login, consent, messages) may not be framed (clickjacking a sign-in
/// or a consent), load nothing from elsewhere and run no script: they have inline CSS
/// only. `form-action` is left out on purpose: browsers apply it to the redirect a login
/// answers with, and that goes to the client's own (loopback) redirect URI.
async fn page_headers(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let mut res = next.run(req).await;
    let is_html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_html {
        let h = res.headers_mut();
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
            ),
        );
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    res
}
