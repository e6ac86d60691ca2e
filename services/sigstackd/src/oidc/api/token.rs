//! The token endpoint: client authentication, the authorization code, device code and
//! client credentials grants, and OAuth error answers.

use super::*;

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct TokenForm {
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
pub(super) struct OAuthError<'a> {
    error: &'a str,
    error_description: &'a str,
}

/// A token endpoint answer: `id_token` (also as `access_token`, which sigstore-python
/// and cosign read).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct TokenAnswer {
    access_token: String,
    id_token: String,
    token_type: &'static str,
    expires_in: i64,
}

pub(super) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
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

pub(super) fn grant_error(e: GrantError) -> Response {
    let description = e.to_string();
    oauth_error(StatusCode::BAD_REQUEST, e.code(), &description)
}

pub(super) fn invalid_client(description: &str) -> Response {
    let mut r = oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", description);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Basic realm=\"sigstack\""),
    );
    r
}

/// The client id and secret from HTTP Basic authentication (RFC 6749 §2.3.1), if sent.
pub(super) fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, ()> {
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
pub(super) fn authenticate<'a>(
    svc: &'a OidcService,
    headers: &HeaderMap,
    form_id: &str,
    form_secret: Option<&str>,
) -> Result<&'a crate::oidc::Client, Box<Response>> {
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
        (status = 415, description = "Not application/x-www-form-urlencoded"),
        (status = 422, description = "The form does not parse (a field repeated or of the wrong type)", content_type = "text/plain", body = String),
        (status = 200, body = TokenAnswer),
        (status = 400, description = "invalid_grant, authorization_pending, slow_down, access_denied, expired_token, unsupported_grant_type, unauthorized_client, invalid_target, invalid_request", body = OAuthError),
        (status = 401, description = "invalid_client", body = OAuthError),
        (status = 503, description = "The signing key's token or KMS is unavailable; retry"),
    ))]
pub(super) async fn token(
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

pub(super) fn token_answer(svc: &OidcService, minted: Result<String, jwt::JwtError>) -> Response {
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
        // the key's token or KMS briefly away: the client retries
        Err(e @ jwt::JwtError::Signing(_)) => {
            sigstack_http::ApiError::unavailable(e).into_response()
        }
        Err(e) => sigstack_http::ApiError::internal(e).into_response(),
    }
}

/// The `client_credentials` grant (RFC 6749 §4.4) for machine clients: a workload
/// token naming the job, from the workload issuer.
pub(super) fn workload_token(
    svc: &OidcService,
    client: &crate::oidc::Client,
    audience: Option<&str>,
) -> Response {
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
