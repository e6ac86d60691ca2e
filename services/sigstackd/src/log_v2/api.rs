//! Routes of the v2 log and its OpenAPI document (`openapi/log-v2.json`).

use super::LogV2Service;
use crate::sequencer::SequenceError;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use sigstack_http::ApiError;
use sigstack_log::EntryError;
use sigstack_log::store::LogStore;
use sigstack_log::tiles::TileRef;
use std::sync::Arc;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "sigstack transparency log (Rekor v2)",
        description = "Rekor v2 write API and C2SP tlog-tiles read API served by `sigstackd log-v2`.",
        license(name = "Apache-2.0")
    ),
    paths(create_entry, checkpoint, tile, healthz, readyz, metrics)
)]
pub struct LogV2Api;

pub fn document() -> String {
    LogV2Api::openapi().to_pretty_json().unwrap_or_default() + "\n"
}

pub fn routes(_svc: &Arc<LogV2Service>) -> Router<Arc<LogV2Service>> {
    Router::new()
        .route("/api/v2/log/entries", post(create_entry))
        .route("/checkpoint", get(checkpoint))
        .route("/tile/{*rest}", get(tile))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

fn entry_error(e: EntryError) -> ApiError {
    match e {
        EntryError::Shape(m) => ApiError::bad_request(m),
        other => ApiError::bad_request(other.to_string()),
    }
}

/// Adds an entry. Answers once the entry is committed, with an inclusion proof and the
/// signed checkpoint that covers it (a `TransparencyLogEntry`, as rekor-tiles answers).
#[utoipa::path(
    post, path = "/api/v2/log/entries", tag = "entries",
    request_body(content = String, content_type = "application/json",
        description = "CreateEntryRequest: hashedRekordRequestV002 (or dsseRequestV002, which sigstore-js still sends)"),
    responses(
        (status = 201, description = "Entry committed: TransparencyLogEntry (protobuf JSON)"),
        (status = 400, description = "Invalid request, key, digest or signature"),
        (status = 405, description = "The log is frozen: sign with its successor"),
        (status = 409, description = "The entry already exists",
         headers(("x-log-index" = String, description = "index of the existing entry"))),
        (status = 413, description = "Body too large"),
        (status = 503, description = "Pushback or storage unavailable; retry after the Retry-After seconds"),
    )
)]
pub async fn create_entry(
    State(svc): State<Arc<LogV2Service>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    if svc.frozen {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "this log has been frozen: sign with the log your signing config lists now",
        ));
    }
    let Ok(_in_flight) = svc.outstanding.clone().try_acquire_owned() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the log is at capacity; retry shortly",
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("1")));
    };
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported media type {ct:?}, only application/json is allowed"),
        ));
    }
    let bytes = sigstack_http::serve::read_body(body, svc.max_request_bytes)
        .await
        .map_err(ApiError::from)?;
    let canonical = svc
        .verify
        .run(move || sigstack_log::v2::canonicalize(&bytes))
        .await?
        .map_err(entry_error)?;
    let (leaf, kind, body) = (canonical.leaf_hash, canonical.kind, canonical.body.clone());
    match svc.sequencer.submit(canonical).await {
        Ok(done) => {
            let index = done.index.to_string();
            let entry = json!({
                "logIndex": index,
                "logId": {"keyId": STANDARD.encode(svc.log_id)},
                "kindVersion": {"kind": kind, "version": "0.0.2"},
                "integratedTime": "0",
                "inclusionPromise": null,
                "inclusionProof": {
                    "logIndex": index,
                    "rootHash": STANDARD.encode(done.head.root),
                    "treeSize": done.head.size.to_string(),
                    "hashes": done.proof.iter().map(|h| STANDARD.encode(h)).collect::<Vec<_>>(),
                    "checkpoint": {"envelope": done.head.checkpoint},
                },
                "canonicalizedBody": STANDARD.encode(&body),
            });
            Ok((StatusCode::CREATED, axum::Json(entry)).into_response())
        }
        Err(SequenceError::Duplicate) => {
            let found = svc
                .store
                .entries_by_leaf(Some(svc.tree_id), &leaf)
                .await
                .map_err(crate::log::store_error)?;
            let mut e = ApiError::conflict("an equivalent entry already exists in the log");
            if let Some(i) = found
                .first()
                .and_then(|e| HeaderValue::from_str(&e.index.to_string()).ok())
            {
                e = e.with_header(header::HeaderName::from_static("x-log-index"), i);
            }
            Err(e)
        }
        Err(SequenceError::Unavailable(m)) => Err(ApiError::unavailable(m)),
        Err(SequenceError::Internal(m)) => Err(ApiError::internal(m)),
    }
}

/// The signed checkpoint (C2SP signed note): the newest tree head, or with witnesses
/// configured the newest one a quorum of them cosigned (their cosignatures appended).
#[utoipa::path(
    get, path = "/checkpoint", tag = "tiles",
    responses((status = 200, content_type = "text/plain; charset=utf-8", body = String))
)]
pub async fn checkpoint(State(svc): State<Arc<LogV2Service>>) -> Result<Response, ApiError> {
    let note = svc.served_checkpoint().await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=2"),
        ],
        note,
    )
        .into_response())
}

/// A Merkle tile (`tile/<L>/<N>[.p/<W>]`) or entry bundle (`tile/entries/<N>[.p/<W>]`),
/// as C2SP tlog-tiles specifies. Immutable: cached for a year, with an ETag.
#[utoipa::path(
    get, path = "/tile/{path}", tag = "tiles",
    params(("path" = String, Path, description = "<L>/<N>[.p/<W>] or entries/<N>[.p/<W>]")),
    responses(
        (status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 404, description = "Malformed path, or not in the tree yet"),
    )
)]
pub async fn tile(
    State(svc): State<Arc<LogV2Service>>,
    Path(rest): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let t = TileRef::parse(&rest)
        .ok_or_else(|| ApiError::not_found(format!("tile/{rest} is not a tlog-tiles path")))?;
    let tile = svc.tile(t).await?;
    let etag = tile.etag.as_bytes();
    let cache = (header::CACHE_CONTROL, "public, max-age=31536000, immutable");
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().as_bytes() == etag || t.trim() == "*")
        })
    {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [cache],
            [(header::ETAG, tile.etag)],
        )
            .into_response());
    }
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream"), cache],
        [(header::ETAG, tile.etag)],
        tile.bytes,
    )
        .into_response())
}

#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database answers.
#[utoipa::path(
    get, path = "/readyz", tag = "health",
    responses((status = 200, description = "Ready"), (status = 503, description = "Not ready, with the reason"))
)]
pub async fn readyz(State(svc): State<Arc<LogV2Service>>) -> Response {
    crate::log::info::database_ready(&svc.store).await
}

/// Prometheus metrics: HTTP requests by route and status with latencies, and the tree size.
#[utoipa::path(
    get, path = "/metrics", tag = "health",
    responses((status = 200, content_type = "text/plain", body = String))
)]
pub async fn metrics(State(svc): State<Arc<LogV2Service>>) -> Response {
    use sigstack_http::metrics::gauge;
    let mut out = String::new();
    svc.http.render(&mut out);
    let head = svc.fresh_head().await;
    gauge(
        &mut out,
        "sigstack_log_v2_up",
        "gauge",
        "1 when the database answered for this scrape.",
        &[("", if head.is_ok() { 1.0 } else { 0.0 })],
    );
    if let Some(c) = svc.cosigned_size() {
        gauge(
            &mut out,
            "sigstack_log_v2_cosigned_size",
            "gauge",
            "Size of the newest checkpoint a quorum of witnesses cosigned.",
            &[("", c as f64)],
        );
    }
    if let Ok(h) = head {
        gauge(
            &mut out,
            "sigstack_log_v2_tree_size",
            "gauge",
            "Entries in the log.",
            &[("", h.size as f64)],
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
