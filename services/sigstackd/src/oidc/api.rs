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
mod token;

use connector::*;
use device::*;
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

/// Validates a request. `Err` is the response: a page for a bad client or redirect URI
/// (never redirect to an unverified URI), else a redirect carrying the error.
fn validate(svc: &OidcService, p: &AuthParams) -> Result<redirect::Redirect, Box<Response>> {
    let Some(registered) = svc.client(&p.client_id).map(|c| c.redirect_uris.clone()) else {
        return Err(Box::new(page(
            StatusCode::BAD_REQUEST,
            "Unknown application",
            "The client_id is not registered with this identity provider.",
        )));
    };
    let target = redirect::check(&registered, &p.redirect_uri).map_err(|e| {
        Box::new(page(
            StatusCode::BAD_REQUEST,
            "Invalid redirect",
            &e.to_string(),
        ))
    })?;
    let fail = |error: &str, description: &str| -> Response {
        match &target {
            redirect::Redirect::Uri(u) => {
                let mut q = vec![("error", error), ("error_description", description)];
                if let Some(s) = &p.state {
                    q.push(("state", s));
                }
                HttpRedirect::to(&with_query(u, &q)).into_response()
            }
            redirect::Redirect::OutOfBand => page(StatusCode::BAD_REQUEST, error, description),
        }
    };
    if p.response_type != "code" {
        return Err(Box::new(fail(
            "unsupported_response_type",
            "only response_type=code is supported",
        )));
    }
    if !p.scope.split(' ').any(|s| s == "openid") {
        return Err(Box::new(fail(
            "invalid_scope",
            "the openid scope is required",
        )));
    }
    if let Err(e) = pkce::check_challenge(p.code_challenge_method.as_deref(), &p.code_challenge) {
        return Err(Box::new(fail("invalid_request", &e.to_string())));
    }
    Ok(target)
}

const CSRF_COOKIE: &str = "sigstack_csrf";

fn new_csrf() -> String {
    grants::handle(rand::random())
}

fn csrf_cookie(value: &str) -> String {
    format!("{CSRF_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict")
}

/// Double-submit check: the form's `csrf` must equal the cookie set with the form.
fn csrf_ok(headers: &HeaderMap, form_value: &str) -> bool {
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == CSRF_COOKIE)
        .map(|(_, v)| v.to_string());
    matches!(cookie, Some(c) if !c.is_empty() && pkce::constant_time_eq(c.as_bytes(), form_value.as_bytes()))
}

fn csrf_refused() -> Response {
    page(
        StatusCode::FORBIDDEN,
        "Session expired",
        "The sign-in form was not submitted from this page; reload it and try again.",
    )
}

fn login_page(
    svc: &OidcService,
    p: &AuthParams,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let csrf = new_csrf();
    let query = p.query();
    let connectors: Vec<(String, String)> = svc
        .connectors
        .iter()
        .map(|c| {
            (
                format!("/auth/connector/{}{query}", c.cfg.id),
                c.cfg.name.clone(),
            )
        })
        .collect();
    let html = pages::login(
        discovery::AUTHORIZE,
        &format!("to continue to {}", p.client_id),
        &p.hidden(&csrf),
        error,
        false,
        &connectors,
    );
    (
        status,
        [(header::SET_COOKIE, csrf_cookie(&csrf))],
        Html(html),
    )
        .into_response()
}

/// The login page for an authorization request (400 page for an unknown client or a
/// redirect URI it may not use; other request errors go back to the client).
#[utoipa::path(get, path = "/auth", tag = "oidc", params(AuthParams),
    responses(
        (status = 200, description = "Login page", content_type = "text/html", body = String),
        (status = 303, description = "Error sent back to the client's redirect URI"),
        (status = 400, description = "Unknown client or redirect URI not allowed", content_type = "text/html", body = String),
    ))]
async fn authorize(State(svc): State<Arc<OidcService>>, Query(p): Query<AuthParams>) -> Response {
    match validate(&svc, &p) {
        Ok(_) => login_page(&svc, &p, None, StatusCode::OK),
        Err(r) => *r,
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
struct LoginForm {
    #[serde(flatten)]
    params: AuthParams,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

/// Checks a password off the async runtime (argon2 takes tens of milliseconds), under the
/// failed-login limiter (per user and address, and per address).
async fn sign_in(
    svc: &Arc<OidcService>,
    username: &str,
    password: &str,
    addr: SocketAddr,
    now: i64,
) -> Result<sigstack_oidc::login::LocalUser, LoginError> {
    let (svc, username, password) = (svc.clone(), username.to_string(), password.to_string());
    tokio::task::spawn_blocking(move || {
        login::attempt(
            &svc.users,
            &svc.limiter,
            &username,
            &password,
            addr.ip(),
            now,
        )
    })
    .await
    .unwrap_or_else(|e| {
        tracing::error!(cause = %e, "password check task failed");
        Err(LoginError::Invalid)
    })
}

fn login_error_text(e: &LoginError) -> String {
    match e {
        LoginError::BadHash(_) => "This account cannot sign in; ask the administrator.".into(),
        other => other.to_string(),
    }
}

/// The login form: the request's parameters, `username`, `password` and the `csrf`
/// value matching the `sigstack_csrf` cookie.
#[utoipa::path(post, path = "/auth", tag = "oidc",
    request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 415, description = "Not application/x-www-form-urlencoded"),
        (status = 422, description = "The form does not parse (a field repeated or of the wrong type)", content_type = "text/plain", body = String),
        (status = 200, description = "Consent page, or the out-of-band code", content_type = "text/html", body = String),
        (status = 303, description = "Redirect to the client with `code` and `state`"),
        (status = 400, description = "Unknown client or redirect URI not allowed", content_type = "text/html", body = String),
        (status = 401, description = "Wrong credentials or too many failures: the login page again", content_type = "text/html", body = String),
        (status = 403, description = "CSRF check failed", content_type = "text/html", body = String),
    ))]
async fn login_submit(
    State(svc): State<Arc<OidcService>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let target = match validate(&svc, &f.params) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    if !csrf_ok(&headers, &f.csrf) {
        return csrf_refused();
    }
    let now = unix_now();
    let user = sign_in(&svc, &f.username, &f.password, addr, now).await;
    let user = match user {
        Ok(u) => u,
        Err(e) => {
            // an operator searches these: the name tried (bounded), where from, and
            // whether the limiter refused it; never the password
            let tried: String = f.username.chars().take(64).collect();
            tracing::warn!(
                user = %tried,
                address = %addr.ip(),
                throttled = matches!(e, LoginError::Throttled(_)),
                "failed sign-in"
            );
            return login_page(
                &svc,
                &f.params,
                Some(&login_error_text(&e)),
                StatusCode::UNAUTHORIZED,
            );
        }
    };
    let grant = svc.local_grant(&user, &f.params.client_id, f.params.nonce.clone());
    complete(&svc, f.params, target, grant, now)
}

/// The person is known: ask for consent if the client wants it, else hand the client
/// its code.
fn complete(
    svc: &OidcService,
    params: AuthParams,
    target: redirect::Redirect,
    grant: sigstack_oidc::grants::Grant,
    now: i64,
) -> Response {
    if svc.client(&params.client_id).is_some_and(|c| c.consent) {
        let id = grants::handle(rand::random());
        let csrf = new_csrf();
        let html = pages::consent(
            CONSENT,
            &params.client_id,
            grant.email.as_deref().unwrap_or(&grant.subject),
            &[("consent_id", id.clone()), ("csrf", csrf.clone())],
        );
        // a consent prompt exists only after a sign-in: it counts against the user
        let owner = format!("user:{}", grant.subject);
        if lock(&svc.consents)
            .insert(
                id,
                ConsentPrompt { params, grant },
                now + PROMPT_TTL,
                now,
                &owner,
            )
            .is_err()
        {
            return busy();
        }
        return (
            StatusCode::OK,
            [(header::SET_COOKIE, csrf_cookie(&csrf))],
            Html(html),
        )
            .into_response();
    }
    issue_code(svc, &params, target, grant, now)
}

fn busy() -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Too many sign-ins in progress",
        "Try again in a minute.",
    )
}

fn issue_code(
    svc: &OidcService,
    params: &AuthParams,
    target: redirect::Redirect,
    grant: sigstack_oidc::grants::Grant,
    now: i64,
) -> Response {
    let code = grants::handle(rand::random());
    lock(&svc.codes).insert(
        code.clone(),
        grant,
        params.redirect_uri.clone(),
        params.code_challenge.clone(),
        now + CODE_TTL,
    );
    match target {
        redirect::Redirect::Uri(u) => {
            let mut q = vec![("code", code.as_str())];
            if let Some(s) = &params.state {
                q.push(("state", s));
            }
            HttpRedirect::to(&with_query(&u, &q)).into_response()
        }
        redirect::Redirect::OutOfBand => Html(pages::message(
            "Signed in",
            "Copy this code into the application that asked you to sign in.",
            Some(&code),
        ))
        .into_response(),
    }
}

/// Sends an authorization error back to the client (RFC 6749 §4.1.2.1).
fn error_to_client(
    params: &AuthParams,
    target: &redirect::Redirect,
    error: &str,
    description: &str,
) -> Response {
    match target {
        redirect::Redirect::Uri(u) => {
            let mut q = vec![("error", error), ("error_description", description)];
            if let Some(s) = &params.state {
                q.push(("state", s));
            }
            HttpRedirect::to(&with_query(u, &q)).into_response()
        }
        redirect::Redirect::OutOfBand => page(StatusCode::BAD_REQUEST, error, description),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
struct ConsentForm {
    #[serde(default)]
    consent_id: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
}

/// The consent page's answer (`action`: `approve` or `deny`).
#[utoipa::path(post, path = "/auth/consent", tag = "oidc",
    request_body(content = ConsentForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 415, description = "Not application/x-www-form-urlencoded"),
        (status = 422, description = "The form does not parse (a field repeated or of the wrong type)", content_type = "text/plain", body = String),
        (status = 303, description = "Redirect to the client with a code, or `error=access_denied`"),
        (status = 400, description = "Unknown, expired or answered consent", content_type = "text/html", body = String),
        (status = 403, description = "CSRF check failed", content_type = "text/html", body = String),
    ))]
async fn consent_submit(
    State(svc): State<Arc<OidcService>>,
    headers: HeaderMap,
    Form(f): Form<ConsentForm>,
) -> Response {
    if !csrf_ok(&headers, &f.csrf) {
        return csrf_refused();
    }
    let now = unix_now();
    let Some(prompt) = lock(&svc.consents).take(&f.consent_id, now) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Sign-in expired",
            "This consent request is unknown, expired or already answered; sign in again.",
        );
    };
    let target = match validate(&svc, &prompt.params) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    if f.action == "approve" {
        issue_code(&svc, &prompt.params, target, prompt.grant, now)
    } else {
        error_to_client(
            &prompt.params,
            &target,
            "access_denied",
            "the user did not allow the application",
        )
    }
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
