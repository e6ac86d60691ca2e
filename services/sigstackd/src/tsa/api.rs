//! timestamp-authority's HTTP API (`/api/v1/timestamp`, `/api/v1/timestamp/certchain`)
//! and the TSA's OpenAPI document (committed as `openapi/tsa.json`).

use super::TsaService;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sigstack_http::ApiError;
use sigstack_tsa::Request;
use sigstack_tsa::response::IssueError;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "sigstack timestamp authority",
        description = "RFC 3161 timestamp authority served by `sigstackd tsa`, with \
                       timestamp-authority's API: Sigstore clients send the hash of an \
                       artifact signature and get a signed timestamp for their bundle.",
        license(name = "Apache-2.0")
    ),
    paths(timestamp, certchain, healthz, readyz, metrics)
)]
pub struct TsaApi;

pub fn routes() -> Router<Arc<TsaService>> {
    Router::new()
        .route("/api/v1/timestamp", post(timestamp))
        .route("/api/v1/timestamp/certchain", get(certchain))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

pub fn document() -> String {
    TsaApi::openapi().to_pretty_json().unwrap_or_default() + "\n"
}

/// A signed timestamp. The body is a DER `TimeStampReq` (`application/timestamp-query`)
/// or the JSON form (`application/json`: `artifactHash` base64, `hashAlgorithm` sha256,
/// sha384 or sha512, optional `nonce`, `certificates`, `tsaPolicyOID`). The answer is a
/// DER `TimeStampResp` with status granted.
#[utoipa::path(post, path = "/api/v1/timestamp", tag = "timestamp",
    request_body(content = Vec<u8>, content_type = "application/timestamp-query",
        description = "DER TimeStampReq, or the JSON request with Content-Type application/json"),
    responses(
        (status = 200, content_type = "application/timestamp-reply", body = Vec<u8>, description = "DER TimeStampResp"),
        (status = 400, description = "Malformed request, weak or unsupported hash, digest of the wrong length, unaccepted policy or extension"),
        (status = 413, description = "Request larger than 16 KiB"),
        (status = 415, description = "Content-Type is neither application/timestamp-query nor application/json"),
        (status = 503, description = "The TSA key's token or KMS is unavailable; retry")))]
pub async fn timestamp(
    State(svc): State<Arc<TsaService>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let refuse = |e: ApiError| {
        svc.refused.fetch_add(1, Ordering::Relaxed);
        e
    };
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ctype
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let parsed = match essence.as_str() {
        "application/timestamp-query" => Request::from_der(&body),
        "application/json" => Request::from_json(&body),
        _ => {
            return Err(refuse(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Content-Type {ctype:?}: send application/timestamp-query (DER) or application/json"
                ),
            )));
        }
    };
    let req = parsed.map_err(|e| refuse(ApiError::bad_request(e.to_string())))?;
    let der = svc
        .authority
        .respond(&req, std::time::SystemTime::now())
        .map_err(|e| match e {
            IssueError::Request(r) => refuse(ApiError::bad_request(r.to_string())),
            // the signature is what fails: the key's token or KMS briefly away
            IssueError::Internal(m) => ApiError::unavailable(m),
        })?;
    svc.issued.fetch_add(1, Ordering::Relaxed);
    Ok(([(header::CONTENT_TYPE, "application/timestamp-reply")], der).into_response())
}

/// The TSA's certificate chain (PEM, leaf first).
#[utoipa::path(get, path = "/api/v1/timestamp/certchain", tag = "timestamp",
    responses((status = 200, content_type = "application/pem-certificate-chain", body = String)))]
pub async fn certchain(State(svc): State<Arc<TsaService>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/pem-certificate-chain")],
        svc.authority.chain_pem(),
    )
        .into_response()
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "timestamp", responses((status = 200)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the key and chain loaded at start, so always ready once serving.
#[utoipa::path(get, path = "/readyz", tag = "timestamp", responses((status = 200)))]
pub async fn readyz() -> &'static str {
    "ok"
}

/// Prometheus metrics: HTTP requests by route and status with latencies, timestamps
/// issued and requests refused, and the TSA certificate's remaining validity.
#[utoipa::path(get, path = "/metrics", tag = "timestamp",
    responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn metrics(State(svc): State<Arc<TsaService>>) -> Response {
    let mut out = String::new();
    svc.http.render(&mut out);
    sigstack_http::metrics::gauge(
        &mut out,
        "sigstack_tsa_timestamps_issued_total",
        "counter",
        "Timestamps signed.",
        &[("", svc.issued.load(Ordering::Relaxed) as f64)],
    );
    sigstack_http::metrics::gauge(
        &mut out,
        "sigstack_tsa_requests_refused_total",
        "counter",
        "Timestamp requests refused as malformed or unacceptable.",
        &[("", svc.refused.load(Ordering::Relaxed) as f64)],
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (_, until) = svc.chain()[0].validity();
    sigstack_http::metrics::gauge(
        &mut out,
        "sigstack_tsa_certificate_expiry_seconds",
        "gauge",
        "Seconds until the TSA certificate expires.",
        &[("", until.saturating_sub(now) as f64)],
    );
    sigstack_http::metrics::response(out)
}
