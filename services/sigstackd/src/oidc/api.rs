//! OIDC endpoints under the issuer URL (Dex's layout): discovery, keys, the authorization
//! page, the token endpoint, the device flow (RFC 8628) and userinfo. OAuth errors carry
//! the RFC 6749 §4.1.2.1 / §5.2 and RFC 8628 §3.5 codes.

use super::{CODE_TTL, DEVICE_INTERVAL, DEVICE_TTL, OidcService, pages, unix_now};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect as HttpRedirect, Response};
use axum::routing::get;
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::json;
use sigstack_oidc::grants::{self, GrantError};
use sigstack_oidc::login::{self, LoginError};
use sigstack_oidc::{discovery, pkce, redirect};
use std::net::SocketAddr;
use std::sync::Arc;

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
        .route("/healthz", get(|| async { "ok" }))
}

async fn discovery_doc(State(svc): State<Arc<OidcService>>) -> Json<serde_json::Value> {
    Json(discovery::document(&svc.issuer))
}

async fn keys(State(svc): State<Arc<OidcService>>) -> Json<serde_json::Value> {
    Json(svc.jwks_doc.clone())
}

/// An authorization request's parameters (RFC 6749 §4.1.1, RFC 7636 §4.3, OIDC nonce).
#[derive(Clone, Debug, Default, Deserialize)]
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

fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
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
    let Some(registered) = svc.client_redirects(&p.client_id) else {
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

fn login_page(p: &AuthParams, error: Option<&str>, status: StatusCode) -> Response {
    let csrf = new_csrf();
    let html = pages::login(
        discovery::AUTHORIZE,
        &format!("to continue to {}", p.client_id),
        &p.hidden(&csrf),
        error,
        false,
    );
    (
        status,
        [(header::SET_COOKIE, csrf_cookie(&csrf))],
        Html(html),
    )
        .into_response()
}

async fn authorize(State(svc): State<Arc<OidcService>>, Query(p): Query<AuthParams>) -> Response {
    match validate(&svc, &p) {
        Ok(_) => login_page(&p, None, StatusCode::OK),
        Err(r) => *r,
    }
}

#[derive(Deserialize)]
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
/// failed-login limiter.
async fn sign_in(
    svc: &Arc<OidcService>,
    username: &str,
    password: &str,
    addr: SocketAddr,
    now: i64,
) -> Result<sigstack_oidc::login::LocalUser, LoginError> {
    let (svc, username, password) = (svc.clone(), username.to_string(), password.to_string());
    tokio::task::spawn_blocking(move || {
        let mut limiter = svc.limiter.lock().unwrap_or_else(|e| e.into_inner());
        login::attempt(
            &svc.users,
            &mut limiter,
            &username,
            &password,
            &addr.ip().to_string(),
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
            tracing::info!(user = %f.username, %addr, "failed sign-in");
            return login_page(
                &f.params,
                Some(&login_error_text(&e)),
                StatusCode::UNAUTHORIZED,
            );
        }
    };
    let code = grants::handle(rand::random());
    let grant = svc.grant_for(&user, &f.params.client_id, f.params.nonce.clone());
    svc.codes.lock().unwrap_or_else(|e| e.into_inner()).insert(
        code.clone(),
        grant,
        f.params.redirect_uri.clone(),
        f.params.code_challenge.clone(),
        now + CODE_TTL,
    );
    match target {
        redirect::Redirect::Uri(u) => {
            let mut q = vec![("code", code.as_str())];
            if let Some(s) = &f.params.state {
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

#[derive(Deserialize)]
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
    code_verifier: String,
    #[serde(default)]
    device_code: String,
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn grant_error(e: GrantError) -> Response {
    let description = e.to_string();
    oauth_error(StatusCode::BAD_REQUEST, e.code(), &description)
}

async fn token(State(svc): State<Arc<OidcService>>, Form(f): Form<TokenForm>) -> Response {
    if svc.client_redirects(&f.client_id).is_none() {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client_id",
        );
    }
    let now = unix_now();
    let grant = match f.grant_type.as_str() {
        "authorization_code" => svc.codes.lock().unwrap_or_else(|e| e.into_inner()).redeem(
            &f.code,
            &f.client_id,
            &f.redirect_uri,
            &f.code_verifier,
            now,
        ),
        "urn:ietf:params:oauth:grant-type:device_code" => svc
            .devices
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .poll(&f.device_code, &f.client_id, now),
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
    match svc.id_token(&grant) {
        Ok(id_token) => (
            [(header::CACHE_CONTROL, "no-store")],
            Json(json!({
                "access_token": id_token,
                "id_token": id_token,
                "token_type": "Bearer",
                "expires_in": svc.token_ttl,
            })),
        )
            .into_response(),
        Err(e) => sigstack_http::ApiError::internal(e).into_response(),
    }
}

#[derive(Deserialize)]
struct DeviceCodeForm {
    #[serde(default)]
    client_id: String,
}

async fn device_code(
    State(svc): State<Arc<OidcService>>,
    Form(f): Form<DeviceCodeForm>,
) -> Response {
    if svc.client_redirects(&f.client_id).is_none() {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client_id",
        );
    }
    let device_code = grants::handle(rand::random());
    let user_code = grants::user_code(rand::random());
    svc.devices.lock().unwrap_or_else(|e| e.into_inner()).start(
        device_code.clone(),
        user_code.clone(),
        f.client_id.clone(),
        unix_now() + DEVICE_TTL,
        DEVICE_INTERVAL,
    );
    let verify = format!("{}{}", svc.issuer, discovery::DEVICE_VERIFY);
    Json(json!({
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": verify,
        "verification_uri_complete": with_query(&verify, &[("user_code", &user_code)]),
        "expires_in": DEVICE_TTL,
        "interval": DEVICE_INTERVAL,
    }))
    .into_response()
}

#[derive(Deserialize)]
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
    );
    (
        status,
        [(header::SET_COOKIE, csrf_cookie(&csrf))],
        Html(html),
    )
        .into_response()
}

async fn device_page(Query(q): Query<DeviceQuery>) -> Response {
    device_login(
        &grants::normalize_user_code(&q.user_code),
        None,
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
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
    let grant = (f.action != "deny").then(|| svc.grant_for(&user, "sigstore", None));
    let approved = grant.is_some();
    if !svc
        .devices
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .decide(&code, grant, now)
    {
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
            svc.client_redirects(&aud)?;
            sigstack_ca::token::verify(
                &parsed,
                &svc.verify_keys,
                &sigstack_ca::token::Expectations {
                    issuer: svc.issuer.clone(),
                    audience: aud,
                    now: unix_now(),
                    leeway: 0,
                    allowed_algs: vec!["ES256".into()],
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
