//! OIDC endpoints under the issuer URL (Dex's layout): discovery, keys, the authorization
//! page with its consent step and upstream connectors, the token endpoint (authorization
//! code, device code and client credentials grants; client authentication by HTTP Basic
//! or form), the device flow (RFC 8628) and userinfo. OAuth errors carry the RFC 6749
//! §4.1.2.1 / §5.2 and RFC 8628 §3.5 codes.

use super::{
    CODE_TTL, ConsentPrompt, DEVICE_INTERVAL, DEVICE_TTL, OidcService, PROMPT_TTL, UpstreamSignIn,
    lock, pages, unix_now,
};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect as HttpRedirect, Response};
use axum::routing::get;
use axum::{Form, Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::json;
use sigstack_oidc::grants::{self, GrantError};
use sigstack_oidc::login::{self, LoginError};
use sigstack_oidc::{discovery, jwt, pkce, redirect};
use std::net::SocketAddr;
use std::sync::Arc;

mod connector;
mod device;
mod signin;
mod token;

use connector::*;
use device::*;
use signin::*;
use token::*;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "sigstack identity provider",
        description = "OpenID Connect issuer served by `sigstackd oidc` (Dex's endpoint layout): \
                       discovery, keys, the login page (authorization code flow with PKCE S256, \
                       consent, upstream connectors), the token endpoint (authorization code, \
                       device code and client credentials grants), the device flow (RFC 8628) \
                       and userinfo. Machine identities come from the workload issuer \
                       `<issuer>/workload`.",
        license(name = "Apache-2.0")
    ),
    paths(
        discovery_doc,
        workload_discovery,
        keys,
        authorize,
        login_submit,
        consent_submit,
        connector_start,
        connector_callback,
        token,
        device_code,
        device_page,
        device_submit,
        userinfo,
        healthz
    ),
    components(schemas(
        TokenForm,
        TokenAnswer,
        OAuthError,
        DeviceCodeForm,
        DeviceAnswer,
        LoginForm,
        ConsentForm,
        DeviceForm
    ))
)]
pub struct OidcApi;

pub fn document() -> String {
    <OidcApi as utoipa::OpenApi>::openapi()
        .to_pretty_json()
        .unwrap_or_default()
        + "\n"
}

/// Liveness (and readiness: the issuer keeps no external state).
#[utoipa::path(get, path = "/healthz", tag = "oidc", responses((status = 200, body = String)))]
async fn healthz() -> &'static str {
    "ok"
}

/// Prometheus metrics: HTTP requests by route and status with latencies.
#[utoipa::path(get, path = "/metrics", tag = "oidc",
    responses((status = 200, content_type = "text/plain", body = String)))]
async fn metrics(State(svc): State<Arc<OidcService>>) -> axum::response::Response {
    let mut out = String::new();
    svc.http_metrics.render(&mut out);
    sigstack_http::metrics::response(out)
}

pub fn routes() -> Router<Arc<OidcService>> {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery_doc))
        .route(discovery::KEYS, get(keys))
        .route(discovery::AUTHORIZE, get(authorize).post(login_submit))
        .route(discovery::TOKEN, axum::routing::post(token))
        .route(discovery::DEVICE_CODE, axum::routing::post(device_code))
        .route(
            discovery::DEVICE_VERIFY,
            get(device_page).post(device_submit),
        )
        .route(discovery::USERINFO, get(userinfo))
        .route(CONSENT, axum::routing::post(consent_submit))
        .route("/auth/connector/{id}", get(connector_start))
        .route(CALLBACK, get(connector_callback))
        .route(
            "/workload/.well-known/openid-configuration",
            get(workload_discovery),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(healthz))
        .route("/metrics", get(metrics))
}

/// Where upstream identity providers send people back (register
/// `<issuer>/callback` with them).
pub const CALLBACK: &str = "/callback";
const CONSENT: &str = "/auth/consent";

/// The OpenID Connect discovery document.
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "oidc",
    responses((status = 200, body = Object)))]
async fn discovery_doc(State(svc): State<Arc<OidcService>>) -> Json<serde_json::Value> {
    Json(discovery::document(&svc.issuer, &svc.algs))
}

/// The workload issuer's discovery document (`client_credentials` only).
#[utoipa::path(get, path = "/workload/.well-known/openid-configuration", tag = "oidc",
    responses((status = 200, body = Object)))]
async fn workload_discovery(State(svc): State<Arc<OidcService>>) -> Json<serde_json::Value> {
    Json(discovery::workload_document(&svc.issuer, &svc.algs))
}

/// The JWKS: the signing key, then earlier keys still published after a rotation.
#[utoipa::path(get, path = "/keys", tag = "oidc", responses((status = 200, body = Object)))]
async fn keys(State(svc): State<Arc<OidcService>>) -> Json<serde_json::Value> {
    Json(svc.jwks_doc.clone())
}

/// An authorization request's parameters (RFC 6749 §4.1.1, RFC 7636 §4.3, OIDC nonce).
#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams, utoipa::ToSchema)]
#[into_params(parameter_in = Query)]
pub struct AuthParams {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    response_type: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    code_challenge: String,
    #[serde(default)]
    code_challenge_method: Option<String>,
}

impl AuthParams {
    /// The request as a query string again (for the connector buttons).
    fn query(&self) -> String {
        let mut pairs = vec![
            ("client_id", self.client_id.as_str()),
            ("redirect_uri", &self.redirect_uri),
            ("response_type", &self.response_type),
            ("scope", &self.scope),
            ("code_challenge", &self.code_challenge),
        ];
        for (k, v) in [
            ("code_challenge_method", &self.code_challenge_method),
            ("state", &self.state),
            ("nonce", &self.nonce),
        ] {
            if let Some(v) = v {
                pairs.push((k, v));
            }
        }
        with_query("", &pairs)
    }

    fn hidden(&self, csrf: &str) -> Vec<(&'static str, String)> {
        let mut v = vec![
            ("client_id", self.client_id.clone()),
            ("redirect_uri", self.redirect_uri.clone()),
            ("response_type", self.response_type.clone()),
            ("scope", self.scope.clone()),
            ("code_challenge", self.code_challenge.clone()),
            ("csrf", csrf.to_string()),
        ];
        if let Some(m) = &self.code_challenge_method {
            v.push(("code_challenge_method", m.clone()));
        }
        if let Some(s) = &self.state {
            v.push(("state", s.clone()));
        }
        if let Some(n) = &self.nonce {
            v.push(("nonce", n.clone()));
        }
        v
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Encodes a client id or secret for HTTP Basic authentication (RFC 6749 §2.3.1).
pub fn form_encode(s: &str) -> String {
    pct(s)
}

/// Reverses form encoding (`+` is a space, `%XX` a byte); `None` if not UTF-8.
fn form_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

pub fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let q: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", pct(v)))
        .collect();
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{}", q.join("&"))
}

fn page(status: StatusCode, title: &str, text: &str) -> Response {
    (status, Html(pages::message(title, text, None))).into_response()
}

/// The signed-in person's claims, for a valid ID token of ours in `Authorization: Bearer`.
#[utoipa::path(get, path = "/userinfo", tag = "oidc",
    responses((status = 200, body = Object), (status = 401, description = "Missing or invalid token")))]
async fn userinfo(State(svc): State<Arc<OidcService>>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    // any of our clients' tokens; the audience is checked to be one of them
    let claims = sigstack_ca::token::UnverifiedToken::parse(token)
        .ok()
        .and_then(|parsed| {
            let aud = parsed.unverified_claims().get("aud")?.as_str()?.to_string();
            svc.client(&aud)?;
            sigstack_ca::token::verify(
                &parsed,
                &svc.verify_keys,
                &sigstack_ca::token::Expectations {
                    issuer: svc.issuer.clone(),
                    audience: aud,
                    now: unix_now(),
                    leeway: 0,
                    allowed_algs: svc.algs.iter().map(|a| a.to_string()).collect(),
                },
            )
            .ok()
        });
    match claims {
        Some(c) => Json(json!({
            "sub": c.subject(),
            "email": c.email(),
            "email_verified": c.email_verified(),
        }))
        .into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")],
            "",
        )
            .into_response(),
    }
}
