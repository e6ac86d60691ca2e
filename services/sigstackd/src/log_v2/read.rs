//! The tlog-tiles read side: tiles and entry bundles computed from the stored Merkle
//! nodes and entries. Both are immutable once the tree holds them, so they are cached
//! (bounded) and served with long-lived cache headers; the checkpoint is not.

use super::LogV2Service;
use crate::log::store_error;
use axum::body::Bytes;
use axum::http::HeaderValue;
use sigstack_http::ApiError;
use sigstack_log::store::LogStore;
use sigstack_log::tiles::{TileRef, entry_bundle};
use sigstack_merkle::{Hash, NodeId, consistency_plan};
use std::collections::HashMap;

/// Cached tiles and bundles, by tile (level or entries, index): the widest read so far,
/// from which every narrower partial is sliced (a partial tile is a prefix of every wider
/// one), so asking for each width of a tile costs one database read, not 255. Dropped
/// all at once past [`CACHE_BYTES`], which keeps the hot, newest tiles coming back.
#[derive(Default)]
pub(super) struct TileCache {
    inner: std::sync::RwLock<Cached>,
}

/// Tiles by level (`None`: entry bundles) and index, each with the width read, and the
/// bytes held.
#[derive(Default)]
struct Cached(HashMap<(Option<u8>, u64), (u64, Tile)>, usize);

/// A tile's or bundle's bytes and their ETag.
#[derive(Clone)]
pub(super) struct Tile {
    pub bytes: Bytes,
    pub etag: HeaderValue,
}

impl Tile {
    fn new(bytes: Bytes) -> Tile {
        let tag = format!(
            "\"{}\"",
            hex::encode(&sigstack_crypto::sha256(&bytes)[..16])
        );
        let etag = HeaderValue::from_str(&tag).expect("hex in quotes is a header value");
        Tile { bytes, etag }
    }
}

const CACHE_BYTES: usize = 64 << 20;

/// Tile reads that go to the database at once; more wait.
pub(super) const DB_READS: usize = 8;

impl TileCache {
    /// The tile `t` cut from a cached one at least as wide (the ETag of a full-width
    /// hit, the common case of a tile the tree has finished, is kept with it).
    fn get(&self, t: &TileRef) -> Option<Tile> {
        let (width, tile) = self.inner.read().ok()?.0.get(&(t.level, t.index))?.clone();
        cut(t, width, tile)
    }

    fn put(&self, t: &TileRef, b: Tile) {
        if let Ok(mut g) = self.inner.write() {
            let key = (t.level, t.index);
            if g.0.get(&key).is_some_and(|(w, _)| *w >= t.width()) {
                return;
            }
            let len = b.bytes.len();
            if g.1 + len > CACHE_BYTES {
                g.0.clear();
                g.1 = 0;
            }
            g.1 += len;
            if let Some((_, old)) = g.0.insert(key, (t.width(), b)) {
                g.1 -= old.bytes.len().min(g.1);
            }
        }
    }
}

/// The tile `t` from a read of its first `width` hashes or entries: that read itself
/// when as wide, else its prefix with the ETag of the prefix.
fn cut(t: &TileRef, width: u64, read: Tile) -> Option<Tile> {
    match width.cmp(&t.width()) {
        std::cmp::Ordering::Less => None,
        std::cmp::Ordering::Equal => Some(read),
        std::cmp::Ordering::Greater => prefix(t, &read.bytes).map(Tile::new),
    }
}

/// The first `t.width()` hashes or entries of a tile's bytes.
fn prefix(t: &TileRef, bytes: &Bytes) -> Option<Bytes> {
    let w = t.width() as usize;
    match t.level {
        Some(_) => bytes.get(..w * 32).map(|_| bytes.slice(..w * 32)),
        None => {
            let mut at = 0usize;
            for _ in 0..w {
                let len = u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?) as usize;
                at += 2 + len;
            }
            (at <= bytes.len()).then(|| bytes.slice(..at))
        }
    }
}

impl LogV2Service {
    /// A tile or entry bundle, or 404 when the tree does not (yet) hold it.
    pub(super) async fn tile(&self, t: TileRef) -> Result<Tile, ApiError> {
        if let Some(b) = self.tiles.get(&t) {
            return Ok(b);
        }
        let _read = self
            .tile_reads
            .acquire()
            .await
            .map_err(|_| ApiError::unavailable("shutting down"))?;
        // another request may have read it meanwhile
        if let Some(b) = self.tiles.get(&t) {
            return Ok(b);
        }
        let path = t.path();
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
        // read the tile as wide as the tree has it now: narrower partials are its prefixes
        let want = t;
        let level_bits = u32::from(t.level.unwrap_or(0)) * 8;
        let available = (head.size >> level_bits) - t.index * sigstack_log::tiles::WIDTH;
        let t = TileRef {
            partial: (available < sigstack_log::tiles::WIDTH).then_some(available as u8),
            ..t
        };
        let path = t.path();
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
        let read = Tile::new(Bytes::from(bytes));
        self.tiles.put(&t, read.clone());
        cut(&want, width, read)
            .ok_or_else(|| ApiError::internal(format!("{path} is shorter than asked")))
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
