//! Handlers for log entries: submit, fetch by index or ID, and bulk retrieval.

use super::{LogService, store_error};
use crate::sequencer::SequenceError;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sigstack_http::{ApiError, ApiJson};
use sigstack_log::ids::{EntryRef, entry_id, parse_entry_ref};
use sigstack_log::store::{LogStore, StoredEntry, TreeHead};
use sigstack_log::{EntryError, set};
use sigstack_merkle::Hash;
use sigstack_types::rekor::{
    InclusionProof, LogEntry, LogEntryAnon, ProposedEntry, SearchLogQuery, Verification,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Most items a retrieval request may name, in total (as Rekor).
const MAX_RETRIEVE: usize = 10;

pub(crate) fn entry_error(e: EntryError) -> ApiError {
    match e {
        EntryError::Invalid(_) | EntryError::Unsupported(_) => ApiError::bad_request(e.to_string()),
        EntryError::UnknownKind(_) | EntryError::Shape(_) => ApiError::unprocessable(e.to_string()),
        other => ApiError::bad_request(other.to_string()),
    }
}

/// Reads a ProposedEntry out of arbitrary JSON with Rekor's messages for missing parts.
pub(crate) fn proposed_entry(mut v: serde_json::Value) -> Result<ProposedEntry, ApiError> {
    let obj = v
        .as_object_mut()
        .ok_or_else(|| ApiError::unprocessable("proposedEntry in body must be a JSON object"))?;
    let field = |name: &str| -> Result<String, ApiError> {
        match obj.get(name) {
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(ApiError::unprocessable(format!(
                "{name} in body must be a string"
            ))),
            None => Err(ApiError::unprocessable(format!(
                "{name} in body is required"
            ))),
        }
    };
    let kind = field("kind")?;
    let api_version = field("apiVersion")?;
    let spec = obj
        .remove("spec")
        .ok_or_else(|| ApiError::unprocessable("spec in body is required"))?;
    Ok(ProposedEntry {
        kind,
        api_version,
        spec,
    })
}

impl LogService {
    /// The LogEntry JSON for a stored or just-integrated entry, with proof, checkpoint and
    /// a freshly signed SET.
    fn render(
        &self,
        e: &StoredEntry,
        head: &TreeHead,
        proof: &[Hash],
    ) -> Result<(String, LogEntryAnon), ApiError> {
        let (tree_id, index, integrated_time) = (e.tree_id, e.index, e.integrated_time);
        let offset = self
            .offset_of(tree_id)
            .ok_or_else(|| ApiError::internal(format!("entry in unknown tree {tree_id}")))?;
        let global = (offset + index) as i64;
        let body_b64 = STANDARD.encode(&e.body);
        let key = self.key_of(tree_id)?;
        let set = set::sign(
            key.signer.as_ref(),
            &body_b64,
            integrated_time,
            &key.log_id_hex,
            global,
        )
        // the key's signature is all that can fail: a token or KMS briefly away
        .map_err(ApiError::unavailable)?;
        Ok((
            entry_id(tree_id, &e.leaf_hash),
            LogEntryAnon {
                body: body_b64,
                integrated_time,
                log_id: key.log_id_hex.clone(),
                log_index: global,
                verification: Some(Verification {
                    inclusion_proof: Some(InclusionProof {
                        checkpoint: head.checkpoint.clone(),
                        hashes: proof.iter().map(|h| sigstack_log::ids::hex(h)).collect(),
                        log_index: index as i64,
                        root_hash: sigstack_log::ids::hex(&head.root),
                        tree_size: head.size as i64,
                    }),
                    signed_entry_timestamp: Some(STANDARD.encode(set)),
                }),
            },
        ))
    }

    async fn render_stored(&self, e: &StoredEntry) -> Result<(String, LogEntryAnon), ApiError> {
        let head = self.head_covering(e.tree_id, e.index).await?;
        let proof = self.prove(e.tree_id, e.index, &head).await?;
        self.render(e, &head, &proof)
    }

    async fn find(&self, r: EntryRef) -> Result<Option<StoredEntry>, ApiError> {
        let (tree, leaf) = match r {
            EntryRef::Uuid(leaf) => (None, leaf),
            EntryRef::InTree { tree_id, leaf_hash } => {
                if self.offset_of(tree_id).is_none() {
                    return Ok(None);
                }
                (Some(tree_id), leaf_hash)
            }
        };
        let found = self
            .store
            .entries_by_leaf(tree, &leaf)
            .await
            .map_err(store_error)?;
        // prefer the active shard, then newer frozen ones
        Ok(self
            .tree_ids()
            .find_map(|t| found.iter().find(|e| e.tree_id == t).cloned()))
    }

    async fn by_global_index(&self, global: u64) -> Result<Option<StoredEntry>, ApiError> {
        let (tree, index) = self.locate(global);
        self.store
            .entry_by_index(tree, index)
            .await
            .map_err(store_error)
    }

    /// An entry at a global index, rendered against the cached head: the entry and the
    /// proof nodes not in the node cache are read together.
    async fn render_at(&self, global: u64) -> Result<Option<(String, LogEntryAnon)>, ApiError> {
        let (tree, index) = self.locate(global);
        let head = self.head_covering(tree, index).await?;
        if index >= head.size {
            return Ok(None);
        }
        let mut path = self.path_from_cache(tree, index, &head)?;
        let (entry, fetched) = self
            .store
            .entry_and_nodes(tree, index, &path.missing)
            .await
            .map_err(store_error)?;
        let entry = entry.ok_or_else(|| {
            ApiError::internal(format!("entry {index} of tree {tree} is missing"))
        })?;
        self.remember(tree, &fetched);
        path.found.extend(fetched);
        let proof = path.assemble(tree, index)?;
        self.render(&entry, &head, &proof).map(Some)
    }
}

fn entry_location(id: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("/api/v1/log/entries/{id}"))
        .unwrap_or(HeaderValue::from_static("/"))
}

/// Adds an entry to the log. Answers once the entry is committed, with its inclusion
/// proof, the signed checkpoint and a signed entry timestamp.
#[utoipa::path(
    post, path = "/api/v1/log/entries", tag = "entries",
    request_body(content = ProposedEntry, description = "hashedrekord 0.0.1, dsse 0.0.1 or intoto 0.0.2"),
    responses(
        (status = 201, description = "Entry committed", body = BTreeMap<String, LogEntryAnon>,
         headers(("ETag" = String, description = "entry ID"), ("Location" = String, description = "URL of the entry"))),
        (status = 400, description = "Invalid entry (bad signature, key, digest...)", body = sigstack_types::rekor::Error),
        (status = 409, description = "The entry already exists", body = sigstack_types::rekor::Error,
         headers(("Location" = String, description = "URL of the existing entry"))),
        (status = 413, description = "Body too large", body = sigstack_types::rekor::Error),
        (status = 415, description = "Not application/json", body = sigstack_types::rekor::Error),
        (status = 422, description = "Not a ProposedEntry, or unknown kind", body = sigstack_types::rekor::Error),
        (status = 503, description = "Storage, or the log key's token or KMS, unavailable; retry", body = sigstack_types::rekor::Error),
    )
)]
pub async fn create_entry(
    State(svc): State<Arc<LogService>>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    let proposed = proposed_entry(body)?;
    let canonical = svc
        .canonicalize(proposed, sigstack_log::Check::Verify)
        .await?
        .map_err(entry_error)?;
    let leaf = canonical.leaf_hash;
    let body = canonical.body.clone();
    match svc.sequencer.submit(canonical).await {
        Ok(done) => {
            let stored = StoredEntry {
                tree_id: svc.active_tree,
                index: done.index,
                leaf_hash: leaf,
                body,
                integrated_time: done.integrated_time,
            };
            let (id, entry) = svc.render(&stored, &done.head, &done.proof)?;
            let mut headers = HeaderMap::new();
            headers.insert(header::LOCATION, entry_location(&id));
            if let Ok(v) = HeaderValue::from_str(&id) {
                headers.insert(header::ETAG, v);
            }
            let map: LogEntry = BTreeMap::from([(id, entry)]);
            Ok((StatusCode::CREATED, headers, axum::Json(map)).into_response())
        }
        Err(SequenceError::Duplicate) => {
            let id = entry_id(svc.active_tree, &leaf);
            Err(ApiError::conflict(format!(
                "an equivalent entry already exists in the transparency log with UUID {id}"
            ))
            .with_header(header::LOCATION, entry_location(&id)))
        }
        Err(SequenceError::Unavailable(m)) => Err(ApiError::unavailable(m)),
        Err(SequenceError::Internal(m)) => Err(ApiError::internal(m)),
    }
}

/// Fetches the entry at a global log index.
#[utoipa::path(
    get, path = "/api/v1/log/entries", tag = "entries",
    params(("logIndex" = i64, Query, description = "Global index (across shards), >= 0")),
    responses(
        (status = 200, description = "The entry with a proof against the current head", body = BTreeMap<String, LogEntryAnon>),
        (status = 404, description = "No entry at that index", body = sigstack_types::rekor::Error),
        (status = 422, description = "Missing or invalid logIndex", body = sigstack_types::rekor::Error),
        (status = 503, description = "The log key's token or KMS is unavailable; retry", body = sigstack_types::rekor::Error),
    )
)]
pub async fn get_entry_by_index(
    State(svc): State<Arc<LogService>>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<axum::Json<LogEntry>, ApiError> {
    let raw = q
        .get("logIndex")
        .ok_or_else(|| ApiError::unprocessable("logIndex in query is required"))?;
    let global: u64 = raw
        .parse::<i64>()
        .ok()
        .and_then(|i| u64::try_from(i).ok())
        .ok_or_else(|| {
            ApiError::unprocessable(
                "logIndex in query should be an integer greater than or equal to 0",
            )
        })?;
    let (id, e) = svc
        .render_at(global)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no entry at log index {global}")))?;
    Ok(axum::Json(BTreeMap::from([(id, e)])))
}

/// Fetches an entry by its UUID (64 hex, searched in every shard) or entry ID (80 hex).
#[utoipa::path(
    get, path = "/api/v1/log/entries/{entryUUID}", tag = "entries",
    params(("entryUUID" = String, Path, description = "64-hex UUID or 80-hex entry ID")),
    responses(
        (status = 200, description = "The entry", body = BTreeMap<String, LogEntryAnon>),
        (status = 404, description = "Not found", body = sigstack_types::rekor::Error),
        (status = 422, description = "Not a UUID or entry ID", body = sigstack_types::rekor::Error),
        (status = 503, description = "The log key's token or KMS is unavailable; retry", body = sigstack_types::rekor::Error),
    )
)]
pub async fn get_entry_by_uuid(
    State(svc): State<Arc<LogService>>,
    Path(id): Path<String>,
) -> Result<axum::Json<LogEntry>, ApiError> {
    let r = parse_entry_ref(&id).map_err(ApiError::unprocessable)?;
    let entry = svc
        .find(r)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no entry with ID {id}")))?;
    let (id, e) = svc.render_stored(&entry).await?;
    Ok(axum::Json(BTreeMap::from([(id, e)])))
}

/// Retrieves up to 10 entries named by entry IDs, log indexes or their content. Items
/// not found are left out.
#[utoipa::path(
    post, path = "/api/v1/log/entries/retrieve", tag = "entries",
    request_body = SearchLogQuery,
    responses(
        (status = 415, description = "Not application/json"),
        (status = 200, description = "Entries found, in request order", body = Vec<BTreeMap<String, LogEntryAnon>>),
        (status = 400, description = "Malformed query or entry", body = sigstack_types::rekor::Error),
        (status = 422, description = "More than 10 items", body = sigstack_types::rekor::Error),
        (status = 503, description = "The log key's token or KMS is unavailable; retry", body = sigstack_types::rekor::Error),
    )
)]
pub async fn search_log_query(
    State(svc): State<Arc<LogService>>,
    ApiJson(q): ApiJson<SearchLogQuery>,
) -> Result<axum::Json<Vec<LogEntry>>, ApiError> {
    let ids = q.entry_uuids.unwrap_or_default();
    let indexes = q.log_indexes.unwrap_or_default();
    let entries = q.entries.unwrap_or_default();
    for (name, n) in [
        ("entryUUIDs", ids.len()),
        ("logIndexes", indexes.len()),
        ("entries", entries.len()),
    ] {
        if n > MAX_RETRIEVE {
            return Err(ApiError::unprocessable(format!(
                "{name} in body should have at most {MAX_RETRIEVE} items"
            )));
        }
    }
    if ids.len() + indexes.len() + entries.len() > MAX_RETRIEVE {
        return Err(ApiError::unprocessable(format!(
            "more than max allowed {MAX_RETRIEVE} entries in request"
        )));
    }
    let mut found = Vec::new();
    for id in &ids {
        let r = parse_entry_ref(id).map_err(ApiError::bad_request)?;
        if let Some(e) = svc.find(r).await? {
            found.push(e);
        }
    }
    for proposed in &entries {
        // a kind or version this log does not store cannot be in it: left out, as an entry
        // that is not found (cosign asks for several kinds at once)
        // found by leaf hash: what was logged was verified then; no signature checks here
        let c = match svc
            .canonicalize(proposed.clone(), sigstack_log::Check::LookupOnly)
            .await?
        {
            Ok(c) => c,
            Err(EntryError::Unsupported(_) | EntryError::UnknownKind(_)) => continue,
            Err(e) => return Err(ApiError::bad_request(e.to_string())),
        };
        if let Some(e) = svc.find(EntryRef::Uuid(c.leaf_hash)).await? {
            found.push(e);
        }
    }
    for &i in &indexes {
        let Ok(global) = u64::try_from(i) else {
            return Err(ApiError::unprocessable(
                "logIndexes must be greater than or equal to 0",
            ));
        };
        if let Some(e) = svc.by_global_index(global).await? {
            found.push(e);
        }
    }
    let mut out = Vec::with_capacity(found.len());
    for e in &found {
        let (id, entry) = svc.render_stored(e).await?;
        out.push(BTreeMap::from([(id, entry)]));
    }
    Ok(axum::Json(out))
}

/// Admits a bounded number of entry submissions at once, so bursts cannot exhaust the
/// CPU verifying signatures; the rest wait their turn. The body is read first, under a
/// deadline and the size limit: a client that sends its body slowly (or never) holds no
/// submission slot, only its connection.
pub async fn admit_submission(
    State((svc, limit)): State<(Arc<LogService>, usize)>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match sigstack_http::serve::read_body(body, limit).await {
        Ok(b) => b,
        Err(e) => return ApiError::from(e).into_response(),
    };
    // another replica sequences: it verifies and answers
    if let Some(r) = &svc.replication
        && let Some(answer) = r.forward(&parts, &bytes).await
    {
        return answer;
    }
    match svc.validation.acquire().await {
        Ok(_permit) => {
            next.run(axum::extract::Request::from_parts(parts, bytes.into()))
                .await
        }
        Err(_) => ApiError::unavailable("shutting down").into_response(),
    }
}
