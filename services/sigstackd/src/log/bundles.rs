//! The log's entries in bulk: the active shard's tree as C2SP tlog-tiles entry bundles
//! (`/api/v1/log/tile/entries/<N>[.p/<W>]`, 256 canonical bodies each, length-prefixed).
//! Not part of Rekor's API: monitors and mirrors read a tree of millions of entries in
//! thousands of requests instead of one request per ten entries. The path names no
//! tree, so a bundle changes when a new shard starts: it is not marked cacheable. A few
//! are read at once; more wait.

use super::{LogService, store_error};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use sigstack_http::ApiError;
use sigstack_log::store::LogStore;
use sigstack_log::tiles::{TileRef, WIDTH, entry_bundle};
use std::sync::Arc;

/// An entry bundle of the active shard's tree.
#[utoipa::path(
    get, path = "/api/v1/log/tile/entries/{bundle}", tag = "tlog",
    params(("bundle" = String, Path, description = "The bundle's tlog-tiles path under `tile/entries/`: `<N>` (256 entries) or `<N>.p/<W>` (the first W), N in tlog-tiles' 3-digit groups")),
    responses(
        (status = 200, description = "The canonical bodies of the bundle's entries, each preceded by its length (2 bytes, big-endian)", content_type = "application/octet-stream"),
        (status = 404, description = "Not a bundle path, or the tree does not hold the bundle yet", body = sigstack_types::rekor::Error),
    )
)]
pub async fn entry_bundle_of(
    State(svc): State<Arc<LogService>>,
    Path(rest): Path<String>,
) -> Result<Response, ApiError> {
    let t = TileRef::parse(&format!("entries/{rest}"))
        .filter(|t| t.level.is_none())
        .ok_or_else(|| {
            ApiError::not_found(format!("tile/entries/{rest} is not an entry bundle path"))
        })?;
    let _slot = svc
        .bundle_reads
        .acquire()
        .await
        .map_err(|_| ApiError::unavailable("shutting down"))?;
    let tree = svc.active_tree();
    let mut head = svc.head(tree).await?;
    if !t.exists_in(head.size) {
        head = svc.fresh_head(tree).await?;
        if !t.exists_in(head.size) {
            return Err(ApiError::not_found(format!(
                "tile/entries/{rest} is not in the tree (size {})",
                head.size
            )));
        }
    }
    let start = t.index * WIDTH;
    let entries = svc
        .store()
        .entries_range(tree, start, start + t.width())
        .await
        .map_err(store_error)?;
    if entries.len() as u64 != t.width() {
        return Err(ApiError::internal(format!(
            "tree {tree} lacks entries for tile/entries/{rest}"
        )));
    }
    let bytes = entry_bundle(entries.iter().map(|e| e.body.as_slice()))
        .ok_or_else(|| ApiError::internal("an entry is over 65535 bytes"))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        bytes,
    )
        .into_response())
}
