//! The device flow (RFC 8628): device codes, the page where a person approves one.

use super::*;

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct DeviceCodeForm {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: Option<String>,
}

/// A device authorization answer (RFC 8628 §3.2).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct DeviceAnswer {
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
        (status = 415, description = "Not application/x-www-form-urlencoded"),
        (status = 422, description = "The form does not parse (a field repeated or of the wrong type)", content_type = "text/plain", body = String),
        (status = 200, body = DeviceAnswer),
        (status = 401, description = "invalid_client", body = OAuthError),
        (status = 429, description = "Too many pending device authorizations from this address", body = OAuthError),
        (status = 503, description = "Too many pending device authorizations", body = OAuthError),
    ))]
pub(super) async fn device_code(
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
pub(super) struct DeviceQuery {
    #[serde(default)]
    user_code: String,
}

pub(super) fn device_login(user_code: &str, error: Option<&str>, status: StatusCode) -> Response {
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
pub(super) async fn device_page(Query(q): Query<DeviceQuery>) -> Response {
    device_login(
        &grants::normalize_user_code(&q.user_code),
        None,
        StatusCode::OK,
    )
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct DeviceForm {
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
        (status = 415, description = "Not application/x-www-form-urlencoded"),
        (status = 422, description = "The form does not parse (a field repeated or of the wrong type)", content_type = "text/plain", body = String),
        (status = 200, description = "Approved or denied", content_type = "text/html", body = String),
        (status = 400, description = "Unknown, expired or decided code", content_type = "text/html", body = String),
        (status = 401, description = "Wrong credentials", content_type = "text/html", body = String),
        (status = 403, description = "CSRF check failed", content_type = "text/html", body = String),
    ))]
pub(super) async fn device_submit(
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
