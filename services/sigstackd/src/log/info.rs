//! Handlers for the log as a whole: tree head, consistency proofs, public key, search
//! index, health.

use super::{LogService, store_error};
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sigstack_crypto::{KeyMaterial, sha256};
use sigstack_http::{ApiError, ApiJson};
use sigstack_log::ids::entry_id;
use sigstack_log::store::LogStore;
use sigstack_merkle::{consistency_plan, fold_subtree, range_nodes};
use sigstack_types::rekor::{ConsistencyProof, InactiveShardLogInfo, LogInfo, SearchIndex};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The active shard's signed head, and the frozen shards'.
#[utoipa::path(
    get, path = "/api/v1/log", tag = "tlog",
    responses((status = 200, description = "Current tree head", body = LogInfo))
)]
pub async fn get_log_info(
    State(svc): State<Arc<LogService>>,
) -> Result<axum::Json<LogInfo>, ApiError> {
    let head = svc.fresh_head(svc.active_tree).await?;
    let inactive: Vec<InactiveShardLogInfo> = svc
        .frozen
        .iter()
        .map(|s| InactiveShardLogInfo {
            root_hash: hex::encode(s.head.root),
            signed_tree_head: s.head.checkpoint.clone(),
            tree_id: s.tree_id.to_string(),
            tree_size: s.head.size as i64,
        })
        .collect();
    Ok(axum::Json(LogInfo {
        inactive_shards: (!inactive.is_empty()).then_some(inactive),
        root_hash: hex::encode(head.root),
        signed_tree_head: head.checkpoint.clone(),
        tree_id: svc.active_tree.to_string(),
        tree_size: head.size as i64,
    }))
}

fn tree_param(svc: &LogService, q: &BTreeMap<String, String>) -> Result<i64, ApiError> {
    match q.get("treeID") {
        None => Ok(svc.active_tree),
        Some(t) => {
            let id: i64 = t
                .parse()
                .map_err(|_| ApiError::bad_request(format!("treeID {t:?} is not a number")))?;
            svc.offset_of(id).map(|_| id).ok_or_else(|| {
                ApiError::bad_request(format!("treeID {id} is not a shard of this log"))
            })
        }
    }
}

fn size_param(
    q: &BTreeMap<String, String>,
    name: &str,
    default: Option<u64>,
) -> Result<u64, ApiError> {
    match (q.get(name), default) {
        (None, Some(d)) => Ok(d),
        (None, None) => Err(ApiError::unprocessable(format!(
            "{name} in query is required"
        ))),
        (Some(v), _) => v.parse::<u64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            ApiError::unprocessable(format!(
                "{name} in query should be an integer greater than or equal to 1"
            ))
        }),
    }
}

/// Proof that the tree at `firstSize` is a prefix of the tree at `lastSize`.
#[utoipa::path(
    get, path = "/api/v1/log/proof", tag = "tlog",
    params(
        ("firstSize" = Option<i64>, Query, description = "Older tree size (default 1)"),
        ("lastSize" = i64, Query, description = "Newer tree size, at most the current size"),
        ("treeID" = Option<String>, Query, description = "Shard (default: the active one)"),
    ),
    responses(
        (status = 200, description = "Hex hashes, and the root at lastSize", body = ConsistencyProof),
        (status = 400, description = "Sizes out of order or beyond the tree", body = sigstack_types::rekor::Error),
        (status = 422, description = "Missing or invalid size", body = sigstack_types::rekor::Error),
    )
)]
pub async fn get_log_proof(
    State(svc): State<Arc<LogService>>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<axum::Json<ConsistencyProof>, ApiError> {
    let tree = tree_param(&svc, &q)?;
    let first = size_param(&q, "firstSize", Some(1))?;
    let last = size_param(&q, "lastSize", None)?;
    if first > last {
        return Err(ApiError::bad_request(format!(
            "firstSize({first}) must be less than or equal to lastSize({last})"
        )));
    }
    let head = if tree == svc.active_tree {
        svc.fresh_head(tree).await?
    } else {
        svc.head(tree).await?
    };
    if last > head.size {
        return Err(ApiError::bad_request(format!(
            "the tree size requested({last}) was greater than what is currently observable({})",
            head.size
        )));
    }
    let plan = consistency_plan(first, last)
        .ok_or_else(|| ApiError::bad_request("sizes must satisfy 1 <= firstSize <= lastSize"))?;
    let root_ids = range_nodes(0, last);
    let mut ids = plan.nodes();
    ids.extend(root_ids.iter().copied());
    ids.sort_unstable();
    ids.dedup();
    let nodes: HashMap<_, _> = svc
        .store
        .nodes(tree, &ids)
        .await
        .map_err(store_error)?
        .into_iter()
        .collect();
    let hashes = plan
        .assemble(|id| nodes.get(&id).copied())
        .ok_or_else(|| ApiError::internal("missing nodes for a consistency proof"))?;
    let root_parts = root_ids
        .iter()
        .map(|id| nodes.get(id).copied())
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| ApiError::internal("missing nodes for a root"))?;
    let root = fold_subtree(&root_parts).ok_or_else(|| ApiError::internal("empty root"))?;
    Ok(axum::Json(ConsistencyProof {
        root_hash: hex::encode(root),
        hashes: hashes.iter().map(hex::encode).collect(),
    }))
}

/// The public key (PEM) that signs a shard's checkpoints and SETs.
#[utoipa::path(
    get, path = "/api/v1/log/publicKey", tag = "pubkey",
    params(("treeID" = Option<String>, Query, description = "Shard (default: the active one)")),
    responses(
        (status = 200, description = "PEM public key", content_type = "application/x-pem-file", body = String),
        (status = 400, description = "Unknown shard", body = sigstack_types::rekor::Error),
    )
)]
pub async fn get_public_key(
    State(svc): State<Arc<LogService>>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    let tree = tree_param(&svc, &q)?;
    Ok((
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        svc.key_of(tree)?.signer.public_key().to_pem(),
    )
        .into_response())
}

/// Normalises a searched digest: `[alg:]hex`, algorithm inferred from the length.
fn normalise_hash(h: &str) -> Result<String, ApiError> {
    let (alg, hex_part) = match h.split_once(':') {
        Some((a, v)) => (Some(a.to_ascii_lowercase()), v),
        None => (None, h),
    };
    let by_len = match hex_part.len() {
        40 => "sha1",
        64 => "sha256",
        128 => "sha512",
        _ => "",
    };
    let ok = !by_len.is_empty()
        && hex_part.bytes().all(|b| b.is_ascii_hexdigit())
        && alg.as_deref().is_none_or(|a| a == by_len);
    if !ok {
        return Err(ApiError::unprocessable(format!(
            "hash {h:?} must be [sha256:]<64 hex>, [sha1:]<40 hex> or [sha512:]<128 hex>"
        )));
    }
    Ok(format!("{by_len}:{}", hex_part.to_ascii_lowercase()))
}

/// The header naming the next page of a search: `X-Sigstack-Next-Page: <tree>:<index>`,
/// given back as `?before=<tree>:<index>`.
pub const NEXT_PAGE: &str = "x-sigstack-next-page";

/// Finds entries by artifact digest, signer e-mail or subject, or public key. Returns
/// entry IDs, newest first; `operator: "and"` intersects the criteria before any limit.
/// At most `search_page_size` (10,000) IDs are answered; a full page names the next in
/// the `X-Sigstack-Next-Page` header, asked for with `?before=` (so thousands of entries
/// logged under someone's name cannot push theirs out of reach).
#[utoipa::path(
    post, path = "/api/v1/index/retrieve", tag = "index",
    request_body = SearchIndex,
    params(("before" = Option<String>, Query, description = "The page after this cursor (from X-Sigstack-Next-Page)")),
    responses(
        (status = 415, description = "Not application/json"),
        (status = 200, description = "Entry IDs (80 hex), newest first", body = Vec<String>,
            headers(("x-sigstack-next-page" = String, description = "Present when more may follow: the cursor of the next page"))),
        (status = 400, description = "Unsupported key format, unparseable key or cursor", body = sigstack_types::rekor::Error),
        (status = 422, description = "Invalid hash or operator", body = sigstack_types::rekor::Error),
    )
)]
pub async fn search_index(
    State(svc): State<Arc<LogService>>,
    Query(params): Query<BTreeMap<String, String>>,
    ApiJson(q): ApiJson<SearchIndex>,
) -> Result<Response, ApiError> {
    let mut criteria: Vec<String> = Vec::new();
    if let Some(h) = &q.hash {
        criteria.push(normalise_hash(h)?);
    }
    if let Some(pk) = &q.public_key {
        if pk.format != "x509" {
            return Err(ApiError::bad_request(format!(
                "the PKI format {:?} is not supported by this server (x509 only)",
                pk.format
            )));
        }
        let pem = STANDARD
            .decode(pk.content.as_deref().unwrap_or(""))
            .map_err(|_| ApiError::bad_request("publicKey.content must be base64"))?;
        let km = KeyMaterial::from_pem(&pem).map_err(|e| {
            ApiError::bad_request(format!("public key provided could not be parsed: {e}"))
        })?;
        criteria.push(hex::encode(sha256(km.canonical_pem().as_bytes())));
    }
    for s in [&q.email, &q.subject].into_iter().flatten() {
        criteria.push(s.to_lowercase());
    }
    let and = match q.operator.as_deref() {
        None | Some("or") => false,
        Some("and") => true,
        Some(other) => {
            return Err(ApiError::unprocessable(format!(
                "operator {other:?} must be \"and\" or \"or\""
            )));
        }
    };
    let before = match params.get("before") {
        None => None,
        Some(c) => Some(
            c.split_once(':')
                .and_then(|(t, i)| Some((t.parse::<i64>().ok()?, i.parse::<u64>().ok()?)))
                .ok_or_else(|| ApiError::bad_request("before must be a cursor <tree>:<index>"))?,
        ),
    };
    criteria.sort();
    criteria.dedup();
    if criteria.is_empty() {
        return Ok(axum::Json(Vec::<String>::new()).into_response());
    }
    let query = sigstack_log::store::SearchQuery {
        keys: criteria,
        all: and,
        trees: svc.tree_ids().collect(),
        before,
        limit: svc.search_page_size,
    };
    let hits = svc.store.search_page(&query).await.map_err(store_error)?;
    let ids: Vec<String> = hits
        .iter()
        .map(|(tree, _, leaf)| entry_id(*tree, leaf))
        .collect();
    let mut res = axum::Json(ids).into_response();
    if hits.len() == svc.search_page_size
        && let Some((tree, index, _)) = hits.last()
        && let Ok(v) = axum::http::HeaderValue::from_str(&format!("{tree}:{index}"))
    {
        res.headers_mut().insert(NEXT_PAGE, v);
    }
    Ok(res)
}

/// Liveness: the process is up (200 even while the database is down: restarting the
/// process would not bring it back).
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "Alive")))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database answers.
#[utoipa::path(
    get, path = "/readyz", tag = "health",
    responses((status = 200, description = "Ready"), (status = 503, description = "Not ready, with the reason (JSON)"))
)]
pub async fn readyz(State(svc): State<Arc<LogService>>) -> Response {
    database_ready(&svc.store).await
}

/// 200 when the database answers, else 503 saying so: the readiness of the logs.
pub(crate) async fn database_ready(store: &sigstack_storage::Store) -> Response {
    match store.ping().await {
        Ok(()) => (StatusCode::OK, "ok").into_response(),
        Err(e) => {
            tracing::warn!(cause = %e, "database unreachable");
            ApiError::not_ready("the database does not answer").into_response()
        }
    }
}

/// Prometheus metrics: HTTP requests by route and status with latencies, the tree size,
/// entries across shards and the newest checkpoint's age.
#[utoipa::path(
    get, path = "/metrics", tag = "health",
    responses((status = 200, content_type = "text/plain", body = String))
)]
pub async fn metrics(State(svc): State<Arc<LogService>>) -> Response {
    use sigstack_http::metrics::gauge;
    let mut out = String::new();
    svc.http.render(&mut out);
    let now = crate::sequencer::unix_now();
    let head = svc.fresh_head(svc.active_tree).await;
    if let Some(r) = &svc.replication {
        use std::sync::atomic::Ordering;
        let leads = r.role() == sigstack_storage::leader::Role::Leader;
        gauge(
            &mut out,
            "sigstack_log_sequencer_leader",
            "gauge",
            "1 while this replica holds the sequencer election.",
            &[("", if leads { 1.0 } else { 0.0 })],
        );
        gauge(
            &mut out,
            "sigstack_log_forwarded_total",
            "counter",
            "Submissions forwarded to the elected sequencer, by outcome.",
            &[
                (
                    "outcome=\"answered\"",
                    r.forwarded.load(Ordering::Relaxed) as f64,
                ),
                (
                    "outcome=\"sequenced_here\"",
                    r.forward_failures.load(Ordering::Relaxed) as f64,
                ),
            ],
        );
    }
    gauge(
        &mut out,
        "sigstack_log_up",
        "gauge",
        "1 when the database answered for this scrape.",
        &[("", if head.is_ok() { 1.0 } else { 0.0 })],
    );
    if let Ok(h) = head {
        let age = match svc.seen_head.lock() {
            Ok(mut seen) => {
                if seen.0 != h.size {
                    *seen = (h.size, now);
                }
                now - seen.1
            }
            Err(_) => 0,
        };
        let frozen: u64 = svc.frozen.iter().map(|s| s.head.size).sum();
        let tree = format!("tree=\"{}\"", svc.active_tree);
        gauge(
            &mut out,
            "sigstack_log_tree_size",
            "gauge",
            "Entries in the active shard.",
            &[(&tree, h.size as f64)],
        );
        gauge(
            &mut out,
            "sigstack_log_entries",
            "gauge",
            "Entries in every shard (the next global log index).",
            &[("", (frozen + h.size) as f64)],
        );
        gauge(
            &mut out,
            "sigstack_log_checkpoint_age_seconds",
            "gauge",
            "Seconds since the active shard's checkpoint last changed (as seen by this process; checkpoints are signed when entries are committed).",
            &[("", age as f64)],
        );
    }
    sigstack_http::metrics::response(out)
}
