//! Sign-in through an upstream identity provider: the redirect to it and its callback.

use super::*;

/// The person chose an upstream identity provider: redirect to its authorization
/// endpoint (PKCE S256, fresh state and nonce).
#[utoipa::path(get, path = "/auth/connector/{id}", tag = "oidc",
    params(("id" = String, Path, description = "Connector id"), AuthParams),
    responses(
        (status = 400, description = "Unknown client or redirect URI not allowed", content_type = "text/html", body = String),
        (status = 303, description = "To the upstream, or `error=temporarily_unavailable` to the client"),
        (status = 404, description = "No such connector", content_type = "text/html", body = String),
    ))]
pub(super) async fn connector_start(
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
pub(super) struct CallbackQuery {
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
pub(super) async fn connector_callback(
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
