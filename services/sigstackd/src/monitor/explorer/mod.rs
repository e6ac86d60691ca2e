//! The log explorer: search by identity, digest (or a file), fingerprint, UUID or index;
//! an entry page that decodes the entry and proves it in the log as it is now; a page per
//! log (size, checkpoint history, alerts); the TUF repository's roles; and, for people
//! signed in with the stack's identity provider, every entry made in their name and an
//! e-mail alert on new ones. Served by `sigstackd monitor` from its index.

mod html;
mod inspect;
mod login;
mod pages;

use super::Monitor;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use html::{Viewer, html_response};
use std::sync::Arc;

pub use login::Explorer;

/// The largest file the search-by-file form takes.
pub const MAX_FILE: usize = 64 << 20;

pub fn router(m: &Arc<Monitor>) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/search", get(search))
        .route(
            "/search/file",
            post(search_file).layer(DefaultBodyLimit::max(MAX_FILE + (64 << 10))),
        )
        .route("/logs", get(logs))
        .route("/log/{name}", get(log_page))
        .route("/log/{name}/entry/{index}", get(entry_page))
        .route("/alerts", get(alerts))
        .route("/tuf", get(tuf))
        .route("/me", get(me))
        .route("/me/subscription", post(subscription))
        .route("/login", get(login::start))
        .route("/login/callback", get(login::callback))
        .route("/logout", post(login::logout))
        .route("/static/style.css", get(style))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .with_state(m.clone())
        .layer(axum::middleware::from_fn_with_state(
            m.http_metrics.clone(),
            sigstack_http::metrics::observe,
        ))
}

async fn not_found(State(m): State<Arc<Monitor>>, headers: HeaderMap) -> Response {
    error_page(
        &m,
        &headers,
        StatusCode::NOT_FOUND,
        "no page here: start from the search page or the list of logs",
    )
}

fn no_such_log(m: &Monitor, headers: &HeaderMap, name: &str) -> Response {
    let known: Vec<&str> = m.logs.iter().map(|l| l.name.as_str()).collect();
    error_page(
        m,
        headers,
        StatusCode::NOT_FOUND,
        &format!(
            "no log named {name} (this monitor follows: {})",
            known.join(", ")
        ),
    )
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        html::STYLE,
    )
        .into_response()
}

async fn metrics(State(m): State<Arc<Monitor>>) -> Response {
    sigstack_http::metrics::response(m.metrics().await)
}

async fn readyz(State(m): State<Arc<Monitor>>) -> Response {
    let down: Vec<String> = m
        .statuses
        .lock()
        .map(|s| {
            s.iter()
                .filter(|(_, l)| !l.up)
                .map(|(n, _)| n.clone())
                .collect()
        })
        .unwrap_or_default();
    if down.is_empty() {
        (StatusCode::OK, "ready").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not reading: {}", down.join(", ")),
        )
            .into_response()
    }
}

fn viewer<'a>(m: &Monitor, email: &'a Option<String>) -> Viewer<'a> {
    Viewer {
        email: email.as_deref(),
        sign_in: m.explorer.sign_in_enabled(),
    }
}

fn page(m: &Monitor, headers: &HeaderMap, status: StatusCode, title: &str, body: &str) -> Response {
    let email = m.explorer.session(headers);
    html_response(status, html::page(title, &viewer(m, &email), body))
}

fn error_page(m: &Monitor, headers: &HeaderMap, status: StatusCode, msg: &str) -> Response {
    let title = if status == StatusCode::NOT_FOUND {
        "Not found"
    } else if status.is_client_error() {
        "That cannot be done"
    } else {
        "Something went wrong"
    };
    page(
        m,
        headers,
        status,
        title,
        &format!("<p class=\"bad\" role=\"alert\">{}</p>", html::esc(msg)),
    )
}

async fn home(State(m): State<Arc<Monitor>>, headers: HeaderMap) -> Response {
    let body = pages::home(&m).await;
    page(
        &m,
        &headers,
        StatusCode::OK,
        "Search the transparency logs",
        &body,
    )
}

#[derive(serde::Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
}

async fn search(
    State(m): State<Arc<Monitor>>,
    headers: HeaderMap,
    Query(q): Query<SearchQuery>,
) -> Response {
    let q = q.q.trim().to_string();
    if q.len() > 1024 {
        return error_page(
            &m,
            &headers,
            StatusCode::BAD_REQUEST,
            "the search is longer than 1024 characters",
        );
    }
    match pages::search(&m, &q).await {
        Ok(body) => page(
            &m,
            &headers,
            StatusCode::OK,
            &format!("Results for “{q}”"),
            &body,
        ),
        Err(e) => error_page(
            &m,
            &headers,
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("{e:#}"),
        ),
    }
}

async fn search_file(
    State(m): State<Arc<Monitor>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Ok(_slot) = m.explorer.uploads.try_acquire() else {
        let mut r = error_page(
            &m,
            &headers,
            StatusCode::SERVICE_UNAVAILABLE,
            "other files are being searched for: try again in a moment",
        );
        r.headers_mut().insert(
            header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("1"),
        );
        return r;
    };
    match pages::file_part(ct, &body) {
        Some(data) => {
            let digest = hex::encode(sigstack_crypto::sha256(data));
            Redirect::to(&format!("/search?q=sha256:{digest}")).into_response()
        }
        None => error_page(
            &m,
            &headers,
            StatusCode::BAD_REQUEST,
            "send the file from the form (multipart/form-data with a field named file)",
        ),
    }
}

async fn logs(State(m): State<Arc<Monitor>>, headers: HeaderMap) -> Response {
    let body = pages::logs(&m);
    page(&m, &headers, StatusCode::OK, "Logs", &body)
}

async fn log_page(
    State(m): State<Arc<Monitor>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let Some(log) = m.logs.iter().find(|l| l.name == name) else {
        return no_such_log(&m, &headers, &name);
    };
    match pages::log(&m, log).await {
        Ok(body) => page(&m, &headers, StatusCode::OK, &format!("Log {name}"), &body),
        Err(e) => error_page(
            &m,
            &headers,
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("{e:#}"),
        ),
    }
}

async fn entry_page(
    State(m): State<Arc<Monitor>>,
    headers: HeaderMap,
    Path((name, index)): Path<(String, String)>,
) -> Response {
    let Some(log) = m.logs.iter().find(|l| l.name == name) else {
        return no_such_log(&m, &headers, &name);
    };
    let Ok(index) = index.parse::<u64>() else {
        return error_page(
            &m,
            &headers,
            StatusCode::BAD_REQUEST,
            "a log index is a whole number",
        );
    };
    // each entry page asks the log for a proof: bounded, so pages cannot flood the log
    let Ok(_slot) = m.explorer.inspections.try_acquire() else {
        let mut r = error_page(
            &m,
            &headers,
            StatusCode::SERVICE_UNAVAILABLE,
            "too many entry pages are being proven right now: try again in a moment",
        );
        r.headers_mut().insert(
            header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("1"),
        );
        return r;
    };
    match inspect::entry(&m, log, index).await {
        Ok(Some(body)) => page(
            &m,
            &headers,
            StatusCode::OK,
            &format!("Entry {index} of {name}"),
            &body,
        ),
        Ok(None) => error_page(
            &m,
            &headers,
            StatusCode::NOT_FOUND,
            &format!("log {name} has no entry {index} the monitor has read"),
        ),
        Err(e) => error_page(&m, &headers, StatusCode::BAD_GATEWAY, &format!("{e:#}")),
    }
}

async fn alerts(State(m): State<Arc<Monitor>>, headers: HeaderMap) -> Response {
    match pages::alerts(&m).await {
        Ok(body) => page(&m, &headers, StatusCode::OK, "Alerts and matches", &body),
        Err(e) => error_page(
            &m,
            &headers,
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("{e:#}"),
        ),
    }
}

async fn tuf(State(m): State<Arc<Monitor>>, headers: HeaderMap) -> Response {
    let body = {
        let mut cached = m.explorer.tuf_page.lock().await;
        match cached.as_ref() {
            Some((at, page)) if at.elapsed() < std::time::Duration::from_secs(60) => page.clone(),
            _ => {
                let page = pages::tuf(&m).await;
                *cached = Some((std::time::Instant::now(), page.clone()));
                page
            }
        }
    };
    page(
        &m,
        &headers,
        StatusCode::OK,
        "Trust: the TUF repository",
        &body,
    )
}

async fn me(State(m): State<Arc<Monitor>>, headers: HeaderMap) -> Response {
    let Some(email) = m.explorer.session(&headers) else {
        if m.explorer.sign_in_enabled() {
            return Redirect::to("/login").into_response();
        }
        return error_page(
            &m,
            &headers,
            StatusCode::NOT_FOUND,
            "sign-in is not configured for this explorer",
        );
    };
    let csrf = m.explorer.csrf(&headers).unwrap_or_default();
    match pages::me(&m, &email, &csrf).await {
        Ok(body) => page(&m, &headers, StatusCode::OK, "Entries in your name", &body),
        Err(e) => error_page(
            &m,
            &headers,
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("{e:#}"),
        ),
    }
}

#[derive(serde::Deserialize)]
struct SubscriptionForm {
    csrf: String,
    action: String,
}

async fn subscription(
    State(m): State<Arc<Monitor>>,
    headers: HeaderMap,
    axum::Form(f): axum::Form<SubscriptionForm>,
) -> Response {
    let Some(email) = m.explorer.session(&headers) else {
        return error_page(&m, &headers, StatusCode::UNAUTHORIZED, "sign in first");
    };
    if !m.explorer.csrf_ok(&headers, &f.csrf) {
        return error_page(
            &m,
            &headers,
            StatusCode::FORBIDDEN,
            "the form has expired: reload the page and try again",
        );
    }
    let email = email.to_ascii_lowercase();
    let result = match f.action.as_str() {
        "subscribe" => m.store.subscribe(&email, super::now()).await,
        "unsubscribe" => m.store.unsubscribe(&email).await,
        _ => return error_page(&m, &headers, StatusCode::BAD_REQUEST, "unknown action"),
    };
    if let Err(e) = result {
        return error_page(
            &m,
            &headers,
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("{e}"),
        );
    }
    if let Ok(mut s) = m.subscriptions.write() {
        if f.action == "subscribe" {
            s.insert(email);
        } else {
            s.remove(&email);
        }
    }
    Redirect::to("/me").into_response()
}
