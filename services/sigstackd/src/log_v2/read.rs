//! The tlog-tiles read side: tiles and entry bundles computed from the stored Merkle
//! nodes and entries. Both are immutable once the tree holds them, so they are cached
//! (bounded) and served with long-lived cache headers; the checkpoint is not.

use super::LogV2Service;
use crate::log::store_error;
use axum::body::Bytes;
use sigstack_http::ApiError;
use sigstack_log::store::LogStore;
use sigstack_log::tiles::{TileRef, entry_bundle};
use sigstack_merkle::{Hash, NodeId, consistency_plan};
use std::collections::HashMap;

/// Cached tiles and bundles, dropped all at once past [`CACHE_BYTES`] (a simple bound
/// that keeps the hot, newest tiles coming back quickly).
#[derive(Default)]
pub(super) struct TileCache {
    inner: std::sync::RwLock<(HashMap<String, Bytes>, usize)>,
}

const CACHE_BYTES: usize = 64 << 20;

impl TileCache {
    fn get(&self, path: &str) -> Option<Bytes> {
        self.inner.read().ok()?.0.get(path).cloned()
    }

    fn put(&self, path: String, b: Bytes) {
        if let Ok(mut g) = self.inner.write() {
            if g.1 + b.len() > CACHE_BYTES {
                g.0.clear();
                g.1 = 0;
            }
            g.1 += b.len();
            g.0.insert(path, b);
        }
    }
}

impl LogV2Service {
    /// The bytes of a tile or entry bundle, or 404 when the tree does not (yet) hold it.
    pub(super) async fn tile(&self, t: TileRef) -> Result<Bytes, ApiError> {
        let path = t.path();
        if let Some(b) = self.tiles.get(&path) {
            return Ok(b);
        }
        let mut head = self.head().await?;
        if !t.exists_in(head.size) {
            head = self.fresh_head().await?;
            if !t.exists_in(head.size) {
                return Err(ApiError::not_found(format!(
                    "{path} is not in the tree (size {})",
                    head.size
                )));
            }
        }
        let start = t.index * sigstack_log::tiles::WIDTH;
        let width = t.width();
        let bytes = match t.level {
            None => {
                let entries = self
                    .store
                    .entries_range(self.tree_id, start, start + width)
                    .await
                    .map_err(store_error)?;
                if entries.len() as u64 != width {
                    return Err(ApiError::internal(format!(
                        "tree {} lacks entries for {path}",
                        self.tree_id
                    )));
                }
                entry_bundle(entries.iter().map(|e| e.body.as_slice()))
                    .ok_or_else(|| ApiError::internal("an entry is over 65535 bytes"))?
            }
            Some(_) => {
                let level = t.node_level();
                let ids: Vec<NodeId> = (start..start + width)
                    .map(|i| NodeId::new(level, i))
                    .collect();
                let found: HashMap<NodeId, _> = self
                    .store
                    .nodes(self.tree_id, &ids)
                    .await
                    .map_err(store_error)?
                    .into_iter()
                    .collect();
                let mut out = Vec::with_capacity(ids.len() * 32);
                for id in &ids {
                    let h = found.get(id).ok_or_else(|| {
                        ApiError::internal(format!(
                            "tree {} lacks node {id:?} for {path}",
                            self.tree_id
                        ))
                    })?;
                    out.extend_from_slice(h);
                }
                out
            }
        };
        let b = Bytes::from(bytes);
        self.tiles.put(path, b.clone());
        Ok(b)
    }

    /// A consistency proof from `old` to `new` (both within the tree).
    pub(super) async fn consistency(&self, old: u64, new: u64) -> Result<Vec<Hash>, ApiError> {
        let plan = consistency_plan(old, new).ok_or_else(|| {
            ApiError::internal(format!("no consistency proof from {old} to {new}"))
        })?;
        let ids = plan.nodes();
        let found: HashMap<NodeId, Hash> = self
            .store
            .nodes(self.tree_id, &ids)
            .await
            .map_err(store_error)?
            .into_iter()
            .collect();
        plan.assemble(|id| found.get(&id).copied())
            .ok_or_else(|| ApiError::internal("missing nodes for a consistency proof"))
    }
}
