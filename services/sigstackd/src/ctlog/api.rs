//! RFC 6962 §4 endpoints (`/ct/v1/*`) and the CT log's OpenAPI document (committed as
//! `openapi/ctlog.json`).

use super::{CtLogService, decode_body};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sigstack_http::{ApiError, ApiJson};
use sigstack_log::store::LogStore;
use sigstack_merkle::{Hash, consistency_plan, inclusion_plan};
use sigstack_types::ct::{
    AddChainRequest, AddChainResponse, ConsistencyProof, Entries, InclusionProof, LeafEntry, Roots,
    SignedTreeHead,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::OpenApi;

/// Most entries one `get-entries` call returns.
const MAX_ENTRIES: u64 = 256;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "sigstack CT log",
        description = "RFC 6962 certificate-transparency log served by `sigstackd ctlog`; \
                       the CA submits precertificates here and embeds the returned SCT.",
        license(name = "Apache-2.0")
    ),
    paths(
        add_chain,
        add_pre_chain,
        get_sth,
        get_sth_consistency,
        get_proof_by_hash,
        get_entries,
        get_roots,
        get_public_key,
        healthz,
        readyz,
        metrics
    ),
    components(schemas(
        AddChainRequest,
        AddChainResponse,
        SignedTreeHead,
        ConsistencyProof,
        InclusionProof,
        Entries,
        LeafEntry,
        Roots
    ))
)]
pub struct CtLogApi;

pub fn routes() -> Router<Arc<CtLogService>> {
    Router::new()
        .route("/ct/v1/add-chain", post(add_chain))
        .route("/ct/v1/add-pre-chain", post(add_pre_chain))
        .route("/ct/v1/get-sth", get(get_sth))
        .route("/ct/v1/get-sth-consistency", get(get_sth_consistency))
        .route("/ct/v1/get-proof-by-hash", get(get_proof_by_hash))
        .route("/ct/v1/get-entries", get(get_entries))
        .route("/ct/v1/get-roots", get(get_roots))
        .route("/ct/v1/public-key", get(get_public_key))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

pub fn document() -> String {
    CtLogApi::openapi().to_pretty_json().unwrap_or_default() + "\n"
}

/// Logs a certificate whose chain leads to an accepted root; answers its SCT.
#[utoipa::path(post, path = "/ct/v1/add-chain", tag = "ct", request_body = AddChainRequest,
    responses((status = 200, body = AddChainResponse), (status = 400, description = "Malformed or untrusted chain"),
        (status = 415, description = "Not application/json"),
        (status = 503, description = "The log key's token or KMS is unavailable; retry")))]
pub async fn add_chain(
    State(svc): State<Arc<CtLogService>>,
    ApiJson(req): ApiJson<AddChainRequest>,
) -> Result<axum::Json<AddChainResponse>, ApiError> {
    svc.add(&req.chain, false).await.map(axum::Json)
}

/// Logs a precertificate (CT poison extension) followed by its issuer's chain.
#[utoipa::path(post, path = "/ct/v1/add-pre-chain", tag = "ct", request_body = AddChainRequest,
    responses((status = 200, body = AddChainResponse), (status = 400, description = "Malformed or untrusted chain, or not a precertificate"),
        (status = 415, description = "Not application/json"),
        (status = 503, description = "The log key's token or KMS is unavailable; retry")))]
pub async fn add_pre_chain(
    State(svc): State<Arc<CtLogService>>,
    ApiJson(req): ApiJson<AddChainRequest>,
) -> Result<axum::Json<AddChainResponse>, ApiError> {
    svc.add(&req.chain, true).await.map(axum::Json)
}

fn json_text(text: &str) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        text.to_string(),
    )
        .into_response()
}

/// The latest signed tree head.
#[utoipa::path(get, path = "/ct/v1/get-sth", tag = "ct", responses((status = 200, body = SignedTreeHead)))]
pub async fn get_sth(State(svc): State<Arc<CtLogService>>) -> Result<Response, ApiError> {
    Ok(json_text(&svc.head().await?.checkpoint))
}

fn number(q: &BTreeMap<String, String>, name: &str) -> Result<u64, ApiError> {
    q.get(name)
        .ok_or_else(|| ApiError::bad_request(format!("{name} is required")))?
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{name} must be a non-negative integer")))
}

fn b64s(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(|h| STANDARD.encode(h)).collect()
}

/// Proof that the tree at `first` is a prefix of the tree at `second`.
#[utoipa::path(get, path = "/ct/v1/get-sth-consistency", tag = "ct",
    params(("first" = u64, Query,), ("second" = u64, Query,)),
    responses((status = 200, body = ConsistencyProof), (status = 400, description = "Sizes out of order or beyond the tree")))]
pub async fn get_sth_consistency(
    State(svc): State<Arc<CtLogService>>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<axum::Json<ConsistencyProof>, ApiError> {
    let (first, second) = (number(&q, "first")?, number(&q, "second")?);
    let size = svc.head().await?.size;
    if first > second || second > size {
        return Err(ApiError::bad_request(format!(
            "need first <= second <= {size} (the current tree size)"
        )));
    }
    let hashes = match consistency_plan(first, second) {
        Some(plan) => svc.assemble(plan).await?,
        None => Vec::new(),
    };
    Ok(axum::Json(ConsistencyProof {
        consistency: b64s(&hashes),
    }))
}

/// Audit path of the leaf with this Merkle leaf hash in the tree of `tree_size`.
#[utoipa::path(get, path = "/ct/v1/get-proof-by-hash", tag = "ct",
    params(("hash" = String, Query, description = "Base64 leaf hash"), ("tree_size" = u64, Query,)),
    responses((status = 200, body = InclusionProof), (status = 400, description = "Bad hash or size"), (status = 404, description = "No such leaf in that tree")))]
pub async fn get_proof_by_hash(
    State(svc): State<Arc<CtLogService>>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<axum::Json<InclusionProof>, ApiError> {
    let tree_size = number(&q, "tree_size")?;
    let hash: Hash = q
        .get("hash")
        .and_then(|h| STANDARD.decode(h).ok())
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| ApiError::bad_request("hash must be a base64 SHA-256 leaf hash"))?;
    if tree_size > svc.head().await?.size {
        return Err(ApiError::bad_request(
            "tree_size is beyond the current tree",
        ));
    }
    let found = svc
        .store
        .entries_by_leaf(Some(svc.tree), &hash)
        .await
        .map_err(crate::log::store_error)?;
    let index = found
        .iter()
        .map(|e| e.index)
        .find(|i| *i < tree_size)
        .ok_or_else(|| ApiError::not_found("no leaf with that hash in a tree of that size"))?;
    let plan = inclusion_plan(index, tree_size)
        .ok_or_else(|| ApiError::internal("index beyond tree size"))?;
    Ok(axum::Json(InclusionProof {
        leaf_index: index,
        audit_path: b64s(&svc.assemble(plan).await?),
    }))
}

/// Leaves `start..=end` (at most 256 per call; fewer near the end of the tree).
#[utoipa::path(get, path = "/ct/v1/get-entries", tag = "ct",
    params(("start" = u64, Query,), ("end" = u64, Query,)),
    responses((status = 200, body = Entries), (status = 400, description = "Bad range")))]
pub async fn get_entries(
    State(svc): State<Arc<CtLogService>>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<axum::Json<Entries>, ApiError> {
    let (start, end) = (number(&q, "start")?, number(&q, "end")?);
    let size = svc.head().await?.size;
    if start > end || start >= size {
        return Err(ApiError::bad_request(format!(
            "need start <= end and start < {size} (the current tree size)"
        )));
    }
    let end = end.min(size - 1).min(start + MAX_ENTRIES - 1);
    // one read for the whole range, not one per entry
    let stored = svc
        .store
        .entries_range(svc.tree, start, end + 1)
        .await
        .map_err(crate::log::store_error)?;
    if stored.len() as u64 != end - start + 1 {
        return Err(ApiError::internal(format!(
            "entries {start}..={end} are not all stored"
        )));
    }
    let mut entries = Vec::with_capacity(stored.len());
    for e in &stored {
        let (leaf, extra) =
            decode_body(&e.body).ok_or_else(|| ApiError::internal("corrupt CT entry"))?;
        entries.push(LeafEntry {
            leaf_input: STANDARD.encode(leaf),
            extra_data: STANDARD.encode(extra),
        });
    }
    Ok(axum::Json(Entries { entries }))
}

/// The roots this log accepts chains to.
#[utoipa::path(get, path = "/ct/v1/get-roots", tag = "ct", responses((status = 200, body = Roots)))]
pub async fn get_roots(State(svc): State<Arc<CtLogService>>) -> axum::Json<Roots> {
    axum::Json(Roots {
        certificates: svc.roots.iter().map(|c| STANDARD.encode(c.der())).collect(),
    })
}

/// The log's public key (PEM), which signs SCTs and tree heads. Not part of RFC 6962:
/// `sigstackd trust export` reads it to write the trusted root's `ctlogs`.
#[utoipa::path(get, path = "/ct/v1/public-key", tag = "ct",
    responses((status = 200, content_type = "application/x-pem-file", body = String)))]
pub async fn get_public_key(State(svc): State<Arc<CtLogService>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        svc.signer.public_key().to_pem(),
    )
        .into_response()
}

/// Liveness: the process is up (200 even while the database is down).
#[utoipa::path(get, path = "/healthz", tag = "ct", responses((status = 200)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database answers (503 with the reason otherwise).
#[utoipa::path(get, path = "/readyz", tag = "ct", responses((status = 200), (status = 503)))]
pub async fn readyz(State(svc): State<Arc<CtLogService>>) -> Result<&'static str, ApiError> {
    if let Err(e) = svc.store.ping().await {
        tracing::warn!(cause = %e, "database unreachable");
        return Err(ApiError::not_ready("the database does not answer"));
    }
    Ok("ok")
}

/// Prometheus metrics: HTTP requests by route and status with latencies, and the tree size.
#[utoipa::path(get, path = "/metrics", tag = "ct",
    responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn metrics(State(svc): State<Arc<CtLogService>>) -> Response {
    let mut out = String::new();
    svc.http.render(&mut out);
    if let Ok(h) = svc.head().await {
        sigstack_http::metrics::gauge(
            &mut out,
            "sigstack_ctlog_tree_size",
            "gauge",
            "Certificates and precertificates logged.",
            &[("", h.size as f64)],
        );
    }
    sigstack_http::metrics::response(out)
}
