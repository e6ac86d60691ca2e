//! The sign-in page of the authorization code flow: request validation, the login form
//! with its CSRF cookie, throttled password checks, the consent step and the code sent
//! back to the client.

use super::*;

/// Validates a request. `Err` is the response: a page for a bad client or redirect URI
/// (never redirect to an unverified URI), else a redirect carrying the error.
pub(super) fn validate(
    svc: &OidcService,
    p: &AuthParams,
) -> Result<redirect::Redirect, Box<Response>> {
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

pub(super) const CSRF_COOKIE: &str = "sigstack_csrf";

pub(super) fn new_csrf() -> String {
    grants::handle(rand::random())
}

pub(super) fn csrf_cookie(value: &str) -> String {
    format!("{CSRF_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict")
}

/// Double-submit check: the form's `csrf` must equal the cookie set with the form.
pub(super) fn csrf_ok(headers: &HeaderMap, form_value: &str) -> bool {
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

pub(super) fn csrf_refused() -> Response {
    page(
        StatusCode::FORBIDDEN,
        "Session expired",
        "The sign-in form was not submitted from this page; reload it and try again.",
    )
}

pub(super) fn login_page(
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
pub(super) async fn authorize(
    State(svc): State<Arc<OidcService>>,
    Query(p): Query<AuthParams>,
) -> Response {
    match validate(&svc, &p) {
        Ok(_) => login_page(&svc, &p, None, StatusCode::OK),
        Err(r) => *r,
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct LoginForm {
    #[serde(flatten)]
    pub(super) params: AuthParams,
    #[serde(default)]
    pub(super) username: String,
    #[serde(default)]
    pub(super) password: String,
    #[serde(default)]
    pub(super) csrf: String,
}

/// Checks a password off the async runtime (argon2 takes tens of milliseconds), under the
/// failed-login limiter (per user and address, and per address).
pub(super) async fn sign_in(
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

pub(super) fn login_error_text(e: &LoginError) -> String {
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
pub(super) async fn login_submit(
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
pub(super) fn complete(
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

pub(super) fn busy() -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Too many sign-ins in progress",
        "Try again in a minute.",
    )
}

pub(super) fn issue_code(
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
pub(super) fn error_to_client(
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
pub(super) struct ConsentForm {
    #[serde(default)]
    pub(super) consent_id: String,
    #[serde(default)]
    pub(super) csrf: String,
    #[serde(default)]
    pub(super) action: String,
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
pub(super) async fn consent_submit(
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
