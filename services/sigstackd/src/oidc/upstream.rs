//! The generic upstream OIDC connector: people sign in at another identity provider
//! (Keycloak, Okta, Azure AD, Google, GitHub's OIDC, another sigstack) and we pass its
//! identity on, with `federated_claims.connector_id` naming the upstream issuer.
//!
//! We are an ordinary relying party to it: authorization code flow with PKCE S256, a
//! fresh `state` and `nonce` per sign-in, the code redeemed at its token endpoint (HTTP
//! Basic client authentication when we have a secret), and its ID token verified like
//! the CA verifies tokens — discovery must name the configured issuer, keys from its
//! JWKS (refetched on rotation), audience our client id, expiry, and the nonce we sent.

use super::config::{ConnectorConfig, read_secret};
use crate::ca::fetch::{HttpFetcher, read_document};
use sigstack_ca::token::{CachePolicy, IssuerKeys, KeyFetcher};
use sigstack_oidc::pkce;
use tokio::sync::OnceCell;

/// Endpoints read from the upstream's discovery document.
struct Endpoints {
    authorization: String,
    token: String,
}

pub struct Connector {
    pub cfg: ConnectorConfig,
    secret: Option<String>,
    endpoints: OnceCell<Endpoints>,
    keys: IssuerKeys,
}

/// Who the upstream says signed in.
#[derive(Debug)]
pub struct Identity {
    pub subject: String,
    pub email: String,
    /// What the upstream said (`skip_email_verification` lets an unverified address sign
    /// in, but never vouches for it).
    pub email_verified: bool,
    pub name: Option<String>,
}

/// Clock skew tolerated on upstream tokens, in seconds.
const LEEWAY: i64 = 60;

impl Connector {
    pub fn new(cfg: &ConnectorConfig) -> anyhow::Result<Self> {
        let secret = cfg
            .client_secret_file
            .as_deref()
            .map(read_secret)
            .transpose()?;
        Ok(Self {
            secret,
            endpoints: OnceCell::new(),
            keys: IssuerKeys::new(cfg.issuer.clone(), CachePolicy::default()),
            cfg: cfg.clone(),
        })
    }

    /// The discovery document's endpoints, fetched once (retried until it succeeds).
    async fn endpoints(&self, http: &HttpFetcher) -> Result<&Endpoints, String> {
        self.endpoints
            .get_or_try_init(|| async {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    self.cfg.issuer.trim_end_matches('/')
                );
                let body = http.get(&url).await.map_err(|e| e.to_string())?;
                let doc: serde_json::Value = serde_json::from_slice(&body)
                    .map_err(|e| format!("{url}: not a discovery document: {e}"))?;
                if doc["issuer"].as_str() != Some(self.cfg.issuer.as_str()) {
                    return Err(format!(
                        "{url} names issuer {}, not {}",
                        doc["issuer"], self.cfg.issuer
                    ));
                }
                let field = |k: &str| {
                    doc[k]
                        .as_str()
                        .map(str::to_string)
                        .ok_or_else(|| format!("{url} has no {k}"))
                };
                Ok(Endpoints {
                    authorization: field("authorization_endpoint")?,
                    token: field("token_endpoint")?,
                })
            })
            .await
    }

    /// Where to send the person's browser.
    pub async fn authorize_url(
        &self,
        http: &HttpFetcher,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        verifier: &str,
    ) -> Result<String, String> {
        let ep = self.endpoints(http).await?;
        Ok(super::api::with_query(
            &ep.authorization,
            &[
                ("client_id", &self.cfg.client_id),
                ("redirect_uri", redirect_uri),
                ("response_type", "code"),
                ("scope", &self.cfg.scopes.join(" ")),
                ("state", state),
                ("nonce", nonce),
                ("code_challenge", &pkce::challenge_of(verifier)),
                ("code_challenge_method", "S256"),
            ],
        ))
    }

    /// Redeems the upstream's code and verifies the ID token it answers with.
    pub async fn redeem(
        &self,
        http: &HttpFetcher,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
        nonce: &str,
        now: i64,
    ) -> Result<Identity, String> {
        let ep = self.endpoints(http).await?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ];
        let mut req = http.client().post(&ep.token);
        match &self.secret {
            Some(secret) => {
                req = req.basic_auth(
                    super::api::form_encode(&self.cfg.client_id),
                    Some(super::api::form_encode(secret)),
                )
            }
            None => form.push(("client_id", &self.cfg.client_id)),
        }
        let what = format!("POST {}", ep.token);
        let res = req
            .header("accept", "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| format!("{what}: {e}"))?;
        let body = read_document(res, &what).await.map_err(|e| e.to_string())?;
        let answer: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| format!("{what}: not JSON: {e}"))?;
        let id_token = answer["id_token"]
            .as_str()
            .ok_or_else(|| format!("{what}: the answer has no id_token"))?;
        let claims = self
            .keys
            .verify(http, id_token, &self.cfg.client_id, LEEWAY, now)
            .await
            .map_err(|e| format!("the upstream ID token was refused: {e}"))?;
        let sent_nonce = claims.get("nonce").and_then(|n| n.as_str());
        if !sent_nonce.is_some_and(|n| pkce::constant_time_eq(n.as_bytes(), nonce.as_bytes())) {
            return Err("the upstream ID token does not carry our nonce".into());
        }
        let email = claims
            .email()
            .ok_or("the upstream did not give an e-mail address (ask for the email scope)")?;
        if !claims.email_verified() && !self.cfg.skip_email_verification {
            return Err(format!("the upstream has not verified the address {email}"));
        }
        Ok(Identity {
            subject: claims.subject().to_string(),
            email: email.to_string(),
            email_verified: claims.email_verified(),
            name: claims
                .get("name")
                .and_then(|n| n.as_str())
                .map(str::to_string),
        })
    }
}
