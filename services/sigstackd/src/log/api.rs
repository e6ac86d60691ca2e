//! Routes of the log service and its OpenAPI document (generated from the handlers'
//! annotations; committed as `openapi/log.json`).

use super::{LogService, entries, info};
use axum::Router;
use axum::routing::{get, post};
use std::sync::Arc;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "sigstack transparency log",
        description = "Rekor v1 compatible transparency log API served by `sigstackd log`.",
        license(name = "Apache-2.0")
    ),
    paths(
        entries::create_entry,
        entries::get_entry_by_index,
        entries::get_entry_by_uuid,
        entries::search_log_query,
        super::bundles::entry_bundle_of,
        info::get_log_info,
        info::get_log_proof,
        info::get_public_key,
        info::search_index,
        info::healthz,
        info::readyz,
        info::metrics,
    ),
    components(schemas(
        sigstack_types::rekor::ProposedEntry,
        sigstack_types::rekor::LogEntryAnon,
        sigstack_types::rekor::Verification,
        sigstack_types::rekor::InclusionProof,
        sigstack_types::rekor::LogInfo,
        sigstack_types::rekor::InactiveShardLogInfo,
        sigstack_types::rekor::ConsistencyProof,
        sigstack_types::rekor::SearchIndex,
        sigstack_types::rekor::SearchIndexPublicKey,
        sigstack_types::rekor::SearchLogQuery,
        sigstack_types::rekor::Error,
    ))
)]
pub struct LogApi;

pub fn routes(svc: &Arc<LogService>, max_request_bytes: usize) -> Router<Arc<LogService>> {
    let submit = post(entries::create_entry).layer(axum::middleware::from_fn_with_state(
        (svc.clone(), max_request_bytes),
        entries::admit_submission,
    ));
    Router::new()
        .route("/api/v1/log", get(info::get_log_info))
        .route("/api/v1/log/proof", get(info::get_log_proof))
        .route("/api/v1/log/publicKey", get(info::get_public_key))
        .route(
            "/api/v1/log/entries",
            get(entries::get_entry_by_index).merge(submit),
        )
        .route(
            "/api/v1/log/entries/retrieve",
            post(entries::search_log_query),
        )
        .route(
            "/api/v1/log/entries/retrieve/",
            post(entries::search_log_query),
        )
        .route(
            "/api/v1/log/entries/{entryUUID}",
            get(entries::get_entry_by_uuid),
        )
        .route(
            "/api/v1/log/tile/entries/{*bundle}",
            get(super::bundles::entry_bundle_of),
        )
        .route("/api/v1/index/retrieve", post(info::search_index))
        .route("/healthz", get(info::healthz))
        .route("/readyz", get(info::readyz))
        .route("/metrics", get(info::metrics))
}

pub fn document() -> String {
    LogApi::openapi().to_pretty_json().unwrap_or_default() + "\n"
}
