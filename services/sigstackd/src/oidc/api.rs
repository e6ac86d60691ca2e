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
        (status = 200, description = "Consent page, or the out-of-band code", content_type = "text/html", body = String),
        (status = 303, description = "Redirect to the client with `code` and `state`"),
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

/// The person chose an upstream identity provider: redirect to its authorization
/// endpoint (PKCE S256, fresh state and nonce).
#[utoipa::path(get, path = "/auth/connector/{id}", tag = "oidc",
    params(("id" = String, Path, description = "Connector id"), AuthParams),
    responses(
        (status = 303, description = "To the upstream, or `error=temporarily_unavailable` to the client"),
        (status = 404, description = "No such connector", content_type = "text/html", body = String),
    ))]
async fn connector_start(
    State(svc): State<Arc<OidcService>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    Query(p): Query<AuthParams>,
) -> Response {
    let target = match validate(&svc, &p) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let Some(idx) = svc.connectors.iter().position(|c| c.cfg.id == id) else {
        return page(
            StatusCode::NOT_FOUND,
            "Unknown sign-in option",
            "This identity provider is not configured here.",
        );
    };
    let state = grants::handle(rand::random());
    let nonce = grants::handle(rand::random());
    let verifier = grants::handle(rand::random());
    let url = match svc.connectors[idx]
        .authorize_url(&svc.http, &svc.callback_url(), &state, &nonce, &verifier)
        .await
    {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(connector = %id, cause = %e, "upstream identity provider unavailable");
            return error_to_client(
                &p,
                &target,
                "temporarily_unavailable",
                "the upstream identity provider cannot be reached",
            );
        }
    };
    let now = unix_now();
    let pending = UpstreamSignIn {
        connector: idx,
        params: p,
        verifier,
        nonce,
    };
    // unauthenticated: each address holds at most its share of sign-ins in flight
    let owner = sigstack_oidc::login::address_key(addr.ip());
    if lock(&svc.upstream)
        .insert(state, pending, now + PROMPT_TTL, now, &owner)
        .is_err()
    {
        return busy();
    }
    HttpRedirect::to(&url).into_response()
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct CallbackQuery {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    error: Option<String>,
}

/// The upstream sends the person back: its code is redeemed and its ID token verified
/// (issuer, audience, expiry, nonce, e-mail), then the client gets its own code.
#[utoipa::path(get, path = "/callback", tag = "oidc", params(CallbackQuery),
    responses(
        (status = 200, description = "Consent page", content_type = "text/html", body = String),
        (status = 303, description = "Redirect to the client with a code or `error=access_denied`"),
        (status = 400, description = "Unknown, expired or used state", content_type = "text/html", body = String),
    ))]
async fn connector_callback(
    State(svc): State<Arc<OidcService>>,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let now = unix_now();
    // the state is single use: a replayed or forged callback finds nothing
    let Some(pending) = lock(&svc.upstream).take(&q.state, now) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Sign-in expired",
            "This sign-in is unknown, expired or already completed; start again from the application.",
        );
    };
    let target = match validate(&svc, &pending.params) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let connector = &svc.connectors[pending.connector];
    if let Some(e) = &q.error {
        tracing::info!(connector = %connector.cfg.id, error = %e, "upstream sign-in refused");
        return error_to_client(
            &pending.params,
            &target,
            "access_denied",
            "the upstream identity provider did not sign the user in",
        );
    }
    let identity = match connector
        .redeem(
            &svc.http,
            &q.code,
            &svc.callback_url(),
            &pending.verifier,
            &pending.nonce,
            now,
        )
        .await
    {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(connector = %connector.cfg.id, cause = %e, "upstream sign-in failed");
            return error_to_client(
                &pending.params,
                &target,
                "access_denied",
                &format!("upstream sign-in failed: {e}"),
            );
        }
    };
    let grant = sigstack_oidc::grants::Grant {
        client_id: pending.params.client_id.clone(),
        subject: format!("{}:{}", connector.cfg.id, identity.subject),
        email: Some(identity.email),
        email_verified: identity.email_verified,
        name: identity.name,
        nonce: pending.params.nonce.clone(),
        connector_id: connector.cfg.issuer.clone(),
        user_id: identity.subject,
    };
    tracing::info!(connector = %connector.cfg.id, "upstream sign-in");
    complete(&svc, pending.params, target, grant, now)
}

#[derive(Deserialize, utoipa::ToSchema)]
struct TokenForm {
    #[serde(default)]
    grant_type: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    code_verifier: String,
    #[serde(default)]
    device_code: String,
    #[serde(default)]
    audience: Option<String>,
}

/// An OAuth error answer (RFC 6749 §5.2, RFC 8628 §3.5).
#[derive(serde::Serialize, utoipa::ToSchema)]
struct OAuthError<'a> {
    error: &'a str,
    error_description: &'a str,
}

/// A token endpoint answer: `id_token` (also as `access_token`, which sigstore-python
/// and cosign read).
#[derive(serde::Serialize, utoipa::ToSchema)]
struct TokenAnswer {
    access_token: String,
    id_token: String,
    token_type: &'static str,
    expires_in: i64,
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Json(OAuthError {
            error,
            error_description: description,
        }),
    )
        .into_response()
}

fn grant_error(e: GrantError) -> Response {
    let description = e.to_string();
    oauth_error(StatusCode::BAD_REQUEST, e.code(), &description)
}

fn invalid_client(description: &str) -> Response {
    let mut r = oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", description);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Basic realm=\"sigstack\""),
    );
    r
}

/// The client id and secret from HTTP Basic authentication (RFC 6749 §2.3.1), if sent.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, ()> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v.to_str().map_err(|_| ())?;
    let Some(b64) = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))
    else {
        return Ok(None);
    };
    let raw = STANDARD.decode(b64.trim()).map_err(|_| ())?;
    let raw = String::from_utf8(raw).map_err(|_| ())?;
    let (id, secret) = raw.split_once(':').ok_or(())?;
    Ok(Some((
        form_decode(id).ok_or(())?,
        form_decode(secret).ok_or(())?,
    )))
}

/// Authenticates the client of a token-endpoint or device-authorization request: HTTP
/// Basic, or `client_id` (and `client_secret`) in the form, not both kinds of secret.
fn authenticate<'a>(
    svc: &'a OidcService,
    headers: &HeaderMap,
    form_id: &str,
    form_secret: Option<&str>,
) -> Result<&'a super::Client, Box<Response>> {
    let basic = basic_credentials(headers)
        .map_err(|()| Box::new(invalid_client("malformed HTTP Basic credentials")))?;
    let (id, secret) = match (&basic, form_secret) {
        (Some(_), Some(s)) if !s.is_empty() => {
            return Err(Box::new(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "use one client authentication method",
            )));
        }
        (Some((id, _)), _) if !form_id.is_empty() && form_id != id => {
            return Err(Box::new(invalid_client(
                "client_id differs from the authenticated client",
            )));
        }
        (Some((id, secret)), _) => (id.as_str(), Some(secret.as_str())),
        (None, secret) => (form_id, secret),
    };
    let shown: String = id.chars().take(64).collect();
    let Some(client) = svc.client(id) else {
        tracing::warn!(client = %shown, reason = "unknown client", "client authentication failed");
        return Err(Box::new(invalid_client("unknown client_id")));
    };
    if !client.authenticates(secret) {
        tracing::warn!(client = %shown, reason = "wrong or missing secret", "client authentication failed");
        return Err(Box::new(invalid_client("client authentication failed")));
    }
    Ok(client)
}

/// The token endpoint. Clients authenticate with HTTP Basic or `client_id` (and
/// `client_secret`) in the form; public clients send no secret.
#[utoipa::path(post, path = "/token", tag = "oidc",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, body = TokenAnswer),
        (status = 400, description = "invalid_grant, authorization_pending, slow_down, access_denied, expired_token, unsupported_grant_type, unauthorized_client, invalid_target, invalid_request", body = OAuthError),
        (status = 401, description = "invalid_client", body = OAuthError),
    ))]
async fn token(
    State(svc): State<Arc<OidcService>>,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> Response {
    let client = match authenticate(&svc, &headers, &f.client_id, f.client_secret.as_deref()) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let now = unix_now();
    let grant = match f.grant_type.as_str() {
        "authorization_code" => {
            lock(&svc.codes).redeem(&f.code, &client.id, &f.redirect_uri, &f.code_verifier, now)
        }
        "urn:ietf:params:oauth:grant-type:device_code" => {
            lock(&svc.devices).poll(&f.device_code, &client.id, now)
        }
        "client_credentials" => return workload_token(&svc, client, f.audience.as_deref()),
        other => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("grant_type {other:?} is not supported"),
            );
        }
    };
    let grant = match grant {
        Ok(g) => g,
        Err(e) => return grant_error(e),
    };
    token_answer(&svc, svc.id_token(&grant))
}

fn token_answer(svc: &OidcService, minted: Result<String, jwt::JwtError>) -> Response {
    match minted {
        Ok(id_token) => (
            [(header::CACHE_CONTROL, "no-store")],
            Json(TokenAnswer {
                access_token: id_token.clone(),
                id_token,
                token_type: "Bearer",
                expires_in: svc.token_ttl,
            }),
        )
            .into_response(),
        Err(e) => sigstack_http::ApiError::internal(e).into_response(),
    }
}

/// The `client_credentials` grant (RFC 6749 §4.4) for machine clients: a workload
/// token naming the job, from the workload issuer.
fn workload_token(svc: &OidcService, client: &super::Client, audience: Option<&str>) -> Response {
    let Some(w) = &client.workload else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "this client may not use the client_credentials grant",
        );
    };
    let audience = match audience {
        None | Some("") => w.audiences[0].as_str(),
        Some(a) if w.audiences.iter().any(|x| x == a) => a,
        Some(a) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_target",
                &format!("audience {a:?} is not allowed for this client"),
            );
        }
    };
    tracing::info!(client = %client.id, subject = %w.subject, "workload token issued");
    token_answer(svc, svc.workload_token(w, audience, &client.id))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct DeviceCodeForm {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: Option<String>,
}

/// A device authorization answer (RFC 8628 §3.2).
#[derive(serde::Serialize, utoipa::ToSchema)]
struct DeviceAnswer {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: String,
    expires_in: i64,
    interval: i64,
}

/// Starts a device authorization (RFC 8628 §3.1).
#[utoipa::path(post, path = "/device/code", tag = "oidc",
    request_body(content = DeviceCodeForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, body = DeviceAnswer),
        (status = 401, description = "invalid_client", body = OAuthError),
        (status = 429, description = "Too many pending device authorizations from this address", body = OAuthError),
        (status = 503, description = "Too many pending device authorizations", body = OAuthError),
    ))]
async fn device_code(
    State(svc): State<Arc<OidcService>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<DeviceCodeForm>,
) -> Response {
    let client = match authenticate(&svc, &headers, &f.client_id, f.client_secret.as_deref()) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let device_code = grants::handle(rand::random());
    let user_code = grants::user_code(rand::random());
    let now = unix_now();
    // unauthenticated (the public client has no secret): each address holds at most its
    // share of pending authorizations, so one place cannot lock everyone out
    let owner = sigstack_oidc::login::address_key(addr.ip());
    match lock(&svc.devices).start(
        device_code.clone(),
        user_code.clone(),
        client.id.clone(),
        now + DEVICE_TTL,
        DEVICE_INTERVAL,
        now,
        &owner,
    ) {
        Ok(()) => {}
        Err(grants::Full::Owner) => {
            return oauth_error(
                StatusCode::TOO_MANY_REQUESTS,
                "slow_down",
                "too many device authorizations are pending from this address",
            );
        }
        Err(grants::Full::Everyone) => {
            return oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "too many device authorizations are pending",
            );
        }
    }
    let verify = format!("{}{}", svc.issuer, discovery::DEVICE_VERIFY);
    Json(DeviceAnswer {
        verification_uri_complete: with_query(&verify, &[("user_code", &user_code)]),
        device_code,
        user_code,
        verification_uri: verify,
        expires_in: DEVICE_TTL,
        interval: DEVICE_INTERVAL,
    })
    .into_response()
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct DeviceQuery {
    #[serde(default)]
    user_code: String,
}

fn device_login(user_code: &str, error: Option<&str>, status: StatusCode) -> Response {
    let csrf = new_csrf();
    let hidden = vec![("user_code", user_code.to_string()), ("csrf", csrf.clone())];
    let html = pages::login(
        discovery::DEVICE_VERIFY,
        &format!("to approve device code {user_code}"),
        &hidden,
        error,
        true,
        &[],
    );
    (
        status,
        [(header::SET_COOKIE, csrf_cookie(&csrf))],
        Html(html),
    )
        .into_response()
}

/// The device verification page (sign in, then approve or deny the code).
#[utoipa::path(get, path = "/device", tag = "oidc", params(DeviceQuery),
    responses((status = 200, content_type = "text/html", body = String)))]
async fn device_page(Query(q): Query<DeviceQuery>) -> Response {
    device_login(
        &grants::normalize_user_code(&q.user_code),
        None,
        StatusCode::OK,
    )
}

#[derive(Deserialize, utoipa::ToSchema)]
struct DeviceForm {
    #[serde(default)]
    user_code: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
}

/// The device page's form (`action`: `approve` or `deny`).
#[utoipa::path(post, path = "/device", tag = "oidc",
    request_body(content = DeviceForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Approved or denied", content_type = "text/html", body = String),
        (status = 400, description = "Unknown, expired or decided code", content_type = "text/html", body = String),
        (status = 401, description = "Wrong credentials", content_type = "text/html", body = String),
        (status = 403, description = "CSRF check failed", content_type = "text/html", body = String),
    ))]
async fn device_submit(
    State(svc): State<Arc<OidcService>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<DeviceForm>,
) -> Response {
    if !csrf_ok(&headers, &f.csrf) {
        return csrf_refused();
    }
    let now = unix_now();
    let code = grants::normalize_user_code(&f.user_code);
    let user = sign_in(&svc, &f.username, &f.password, addr, now).await;
    let user = match user {
        Ok(u) => u,
        Err(e) => {
            return device_login(&code, Some(&login_error_text(&e)), StatusCode::UNAUTHORIZED);
        }
    };
    let approved = f.action != "deny";
    let client_id = lock(&svc.devices).client_of(&code, now);
    let decided = client_id.is_some_and(|client_id| {
        let grant = approved.then(|| svc.local_grant(&user, &client_id, None));
        lock(&svc.devices).decide(&code, grant, now)
    });
    if !decided {
        return page(
            StatusCode::BAD_REQUEST,
            "Unknown code",
            "This device code is unknown, expired or already used.",
        );
    }
    if approved {
        page(
            StatusCode::OK,
            "Device approved",
            "You can close this page; the device is signed in.",
        )
    } else {
        page(
            StatusCode::OK,
            "Device denied",
            "The device was not signed in.",
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
