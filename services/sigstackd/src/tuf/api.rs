//! The TUF service's HTTP API: repository files, mirrored repositories' files, health,
//! readiness and metrics.

use super::{Served, TufService, horizons, mirrors};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sigstack_tuf::metadata::{ROOT, SNAPSHOT, TARGETS, TIMESTAMP};
use std::sync::Arc;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "sigstack TUF repository",
        description = "TUF 1.0 repository served by `sigstackd tuf` with consistent snapshots: \
                       `N.root.json`, `timestamp.json`, `N.snapshot.json`, `N.targets.json` and \
                       `targets/<sha256>.<name>`. Versioned files are immutable; every file has a \
                       strong ETag and answers `If-None-Match` with 304.",
        license(name = "Apache-2.0")
    ),
    paths(file, mirror_file, healthz, readyz, metrics)
)]
pub struct TufApi;

pub fn document() -> String {
    <TufApi as utoipa::OpenApi>::openapi()
        .to_pretty_json()
        .unwrap_or_default()
        + "\n"
}

/// Liveness, with the repository's health: `ok`, `warning` (root or targets expire within
/// the alarm window) or `expired`, and each role's expiry horizon. Always 200 while the
/// process runs: expiring metadata or a database outage is not cured by a restart (see
/// `/readyz`, `/metrics` and `sigstackd doctor`).
#[utoipa::path(get, path = "/healthz", tag = "tuf",
    responses((status = 200, body = Object)))]
pub(super) async fn healthz(State(svc): State<Arc<TufService>>) -> Response {
    let (_, body) = svc.status(crate::sequencer::unix_now());
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// Readiness: the database answers and nothing has expired (503 with the reason).
#[utoipa::path(get, path = "/readyz", tag = "tuf",
    responses((status = 200, body = String), (status = 503, body = String)))]
pub(super) async fn readyz(State(svc): State<Arc<TufService>>) -> Response {
    if let Err(e) = svc.store.ping().await {
        tracing::warn!(cause = %e, "database unreachable");
        return sigstack_http::ApiError::not_ready("the database does not answer").into_response();
    }
    match svc.status(crate::sequencer::unix_now()).0 {
        "expired" => sigstack_http::ApiError::not_ready(
            "the repository's metadata has expired: publish new metadata",
        )
        .into_response(),
        _ => (StatusCode::OK, "ok").into_response(),
    }
}

/// Prometheus metrics: HTTP requests by route and status with latencies,
/// `sigstack_tuf_expires_in_seconds{role}`, `sigstack_tuf_version{role}`.
#[utoipa::path(get, path = "/metrics", tag = "tuf",
    responses((status = 200, content_type = "text/plain", body = String)))]
pub(super) async fn metrics(State(svc): State<Arc<TufService>>) -> Response {
    let repo = svc.current();
    let now = crate::sequencer::unix_now();
    let mut out = String::new();
    svc.http.render(&mut out);
    out.push_str(
        "# HELP sigstack_tuf_expires_in_seconds Seconds until each role's newest metadata expires.\n\
         # TYPE sigstack_tuf_expires_in_seconds gauge\n",
    );
    for (role, left) in horizons(&repo, now) {
        if let Some(l) = left {
            out.push_str(&format!(
                "sigstack_tuf_expires_in_seconds{{role=\"{role}\"}} {l}\n"
            ));
        }
    }
    out.push_str("# HELP sigstack_tuf_version Each role's newest metadata version.\n# TYPE sigstack_tuf_version gauge\n");
    let versions = [
        (ROOT, repo.root.as_ref().map(|l| l.version)),
        (TARGETS, repo.targets.as_ref().map(|l| l.version)),
        (SNAPSHOT, repo.snapshot.as_ref().map(|l| l.version)),
        (TIMESTAMP, repo.timestamp.as_ref().map(|l| l.version)),
    ];
    for (role, v) in versions {
        if let Some(v) = v {
            out.push_str(&format!("sigstack_tuf_version{{role=\"{role}\"}} {v}\n"));
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// A repository file: metadata (`1.root.json`, `timestamp.json`, `3.snapshot.json`,
/// `3.targets.json`, also `root.json` for the newest root) or a target
/// (`targets/<sha256>.trusted_root.json`).
#[utoipa::path(get, path = "/{path}", tag = "tuf",
    params(("path" = String, Path, description = "File path under the repository")),
    responses(
        (status = 200, content_type = "application/json", body = Object),
        (status = 304, description = "Not modified (If-None-Match matched the ETag)"),
        (status = 404, description = "No such file (ends a client's root rotation walk)"),
    ))]
pub(super) async fn file(
    State(svc): State<Arc<TufService>>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    let repo = svc.current();
    match repo.get(&path) {
        Some(f) => respond(f, &headers),
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

/// A file of another repository copied here (`mirrors_dir` in the configuration), byte
/// for byte: `/mirrors/NAME/timestamp.json`, `/mirrors/NAME/3.snapshot.json`,
/// `/mirrors/NAME/targets/<sha256>.<name>`. Clients verify it against that repository's
/// own root; this service signs none of it.
#[utoipa::path(get, path = "/mirrors/{path}", tag = "tuf",
    params(("path" = String, Path, description = "NAME/file path under the mirrored repository")),
    responses(
        (status = 200, content_type = "application/json", body = Object),
        (status = 304, description = "Not modified (If-None-Match matched the ETag)"),
        (status = 404, description = "No such file, or no mirrors are configured"),
    ))]
pub(super) async fn mirror_file(
    State(svc): State<Arc<TufService>>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(dir) = svc.cfg.mirrors_dir.clone() else {
        return (StatusCode::NOT_FOUND, "no mirrors are served here\n").into_response();
    };
    match tokio::task::spawn_blocking(move || mirrors::read(&dir, &path)).await {
        Ok(Some(f)) => respond(&f, &headers),
        _ => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

/// A served file with its ETag and cache policy; 304 when the client holds it.
fn respond(f: &Served, headers: &HeaderMap) -> Response {
    let cache = if f.immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == "*" || t.trim().as_bytes() == f.etag.as_bytes())
        });
    if matches {
        return (
            StatusCode::NOT_MODIFIED,
            [
                (header::ETAG, f.etag.clone()),
                (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            ],
        )
            .into_response();
    }
    (
        [
            (header::ETAG, f.etag.clone()),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
        ],
        f.body.clone(),
    )
        .into_response()
}
