//! `sigstackd ctlog`: an RFC 6962 certificate-transparency log on the same Merkle tree
//! storage and group-commit sequencer as the transparency log. An SCT is returned only
//! after its entry is durably in the tree, so every SCT is already an inclusion.

pub mod api;
pub mod config;

use crate::sequencer::{HeadCache, HeadSigner, SequenceError, Sequencer, SequencerConfig};
use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use config::CtLogConfig;
use sigstack_crypto::{Certificate, KeyMaterial, Signer, log_id};
use sigstack_http::ApiError;
use sigstack_log::Canonical;
use sigstack_log::ct::{self, DigitallySigned, Entry, Sct};
use sigstack_log::store::{LogStore, TreeHead};
use sigstack_merkle::{EMPTY_ROOT, Hash, NodeId, ProofPlan, leaf_hash};
use sigstack_storage::Store;
use sigstack_types::ct::{AddChainResponse, SignedTreeHead};
use std::collections::HashMap;
use std::sync::Arc;

pub struct CtLogService {
    store: Store,
    signer: Arc<dyn Signer>,
    log_id: [u8; 32],
    tree: i64,
    roots: Vec<Certificate>,
    sequencer: Sequencer,
    head_cache: HeadCache,
    /// Recently logged certificate identities and their timestamps.
    recent: std::sync::Mutex<HashMap<String, u64>>,
    http: Arc<sigstack_http::metrics::HttpMetrics>,
}

/// Bound on the memory of recent submissions (about 10 MiB).
const RECENT_MAX: usize = 100_000;

/// Signs RFC 6962 §3.5 tree heads; the stored head is the `get-sth` JSON.
struct SthSigner(Arc<dyn Signer>);

impl HeadSigner for SthSigner {
    fn sign_head(&self, size: u64, root: &Hash) -> Result<String, String> {
        sign_sth(self.0.as_ref(), size, root).map_err(|e| e.to_string())
    }
}

fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn sign_sth(signer: &dyn Signer, size: u64, root: &Hash) -> anyhow::Result<String> {
    let timestamp = unix_millis();
    let sig = DigitallySigned::sign(signer, &ct::sth_signature_input(timestamp, size, root))?;
    Ok(serde_json::to_string(&SignedTreeHead {
        tree_size: size,
        timestamp,
        sha256_root_hash: STANDARD.encode(root),
        tree_head_signature: STANDARD.encode(sig.to_bytes()?),
    })?)
}

/// Checks a stored STH against the key (so a swapped key file is caught at start).
fn verify_sth(text: &str, key: &sigstack_crypto::PublicKey) -> anyhow::Result<()> {
    let sth: SignedTreeHead = serde_json::from_str(text)?;
    let root: Hash = STANDARD
        .decode(&sth.sha256_root_hash)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("root hash is not 32 bytes"))?;
    let sig = DigitallySigned::from_bytes(&STANDARD.decode(&sth.tree_head_signature)?)?;
    sig.verify(
        key,
        &ct::sth_signature_input(sth.timestamp, sth.tree_size, &root),
    )?;
    Ok(())
}

/// Stored entry body: `u32 leaf length || MerkleTreeLeaf || extra_data`.
fn encode_body(leaf: &[u8], extra: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + leaf.len() + extra.len());
    out.extend_from_slice(&(leaf.len() as u32).to_be_bytes());
    out.extend_from_slice(leaf);
    out.extend_from_slice(extra);
    out
}

fn decode_body(body: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = u32::from_be_bytes(body.get(..4)?.try_into().ok()?) as usize;
    let rest = body.get(4..)?;
    (rest.len() >= n).then(|| rest.split_at(n))
}

impl CtLogService {
    pub async fn start(cfg: &CtLogConfig) -> anyhow::Result<Arc<Self>> {
        let signer = crate::keys::open(&cfg.signing_key, "the CT log key")?;
        let store = Store::open(&cfg.database_url)
            .await
            .with_context(|| format!("opening {}", sigstack_storage::redact(&cfg.database_url)))?;
        if signer.public_key().key_details() != "PKIX_ECDSA_P256_SHA_256" {
            anyhow::bail!("the CT log key must be ECDSA P-256 (RFC 6962 §2.1.4)");
        }
        let pem = std::fs::read(&cfg.roots)
            .with_context(|| format!("reading CT roots {}", cfg.roots.display()))?;
        let roots = match KeyMaterial::from_pem(&pem)
            .with_context(|| format!("parsing CT roots {}", cfg.roots.display()))?
        {
            KeyMaterial::Certificates(c) => c,
            KeyMaterial::PublicKey(_) => anyhow::bail!("CT roots must be certificates"),
        };
        let mut shards = store.shards(&cfg.log_name).await?;
        if shards.is_empty() {
            let tree = (rand::random::<u64>() >> 1).max(1) as i64;
            let head = TreeHead {
                size: 0,
                root: EMPTY_ROOT,
                checkpoint: sign_sth(signer.as_ref(), 0, &EMPTY_ROOT)?,
            };
            store.create_shard(&cfg.log_name, 0, tree, &head).await?;
            shards = store.shards(&cfg.log_name).await?;
        }
        let active = shards
            .iter()
            .find(|s| s.active)
            .context("the CT log has no active tree")?;
        verify_sth(&active.head.checkpoint, signer.public_key()).with_context(|| {
            format!(
                "the CT log's tree head was not signed by {}; start with the key that signed it (a new key is a new CT log: give it a new log_name, README \"Keys and rotation\")",
                cfg.signing_key.display()
            )
        })?;
        let tree = active.tree_id;
        let head_cache = HeadCache::default();
        let sequencer = Sequencer::spawn(
            store.clone(),
            SequencerConfig {
                head_cache: head_cache.clone(),
                tree_id: tree,
                head_signer: Arc::new(SthSigner(signer.clone())),
                max_batch: cfg.max_batch,
            },
        );
        Ok(Arc::new(Self {
            store,
            log_id: log_id(signer.public_key().spki_der()),
            signer,
            tree,
            roots,
            sequencer,
            head_cache,
            recent: Default::default(),
            http: sigstack_http::metrics::HttpMetrics::new("ctlog"),
        }))
    }

    pub fn router(self: &Arc<Self>, max_request_bytes: usize) -> Router {
        api::routes()
            .with_state(self.clone())
            .layer(DefaultBodyLimit::max(max_request_bytes))
            .layer(axum::middleware::from_fn_with_state(
                self.http.clone(),
                sigstack_http::metrics::observe,
            ))
    }

    /// Validates a submission, logs it durably and signs its SCT.
    async fn add(&self, chain: &[String], precert: bool) -> Result<AddChainResponse, ApiError> {
        if chain.is_empty() || chain.len() > 10 {
            return Err(ApiError::bad_request(
                "chain must hold between 1 and 10 certificates",
            ));
        }
        let certs = chain
            .iter()
            .enumerate()
            .map(|(i, b64)| {
                let der = STANDARD.decode(b64).map_err(|_| {
                    ApiError::bad_request(format!("chain[{i}] is not valid base64"))
                })?;
                Certificate::from_der(&der)
                    .map_err(|e| ApiError::bad_request(format!("chain[{i}]: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        ct::validate_chain(&certs, &self.roots)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        if certs[0].is_ca() {
            return Err(ApiError::bad_request(
                "this log takes end-entity certificates only, not CA certificates",
            ));
        }
        let poisoned = certs[0].extension(ct::POISON_OID).is_some();
        let entry = if precert {
            if !poisoned {
                return Err(ApiError::bad_request(
                    "add-pre-chain needs a precertificate (with the CT poison extension)",
                ));
            }
            let issuer = certs.get(1).ok_or_else(|| {
                ApiError::bad_request("a precertificate must be followed by its issuer")
            })?;
            if issuer
                .extended_key_usages()
                .iter()
                .any(|e| e == ct::PRECERT_SIGNING_EKU)
            {
                return Err(ApiError::bad_request(
                    "precertificate signing certificates are not supported",
                ));
            }
            ct::precert_entry(&certs[0], issuer)
                .map_err(|e| ApiError::bad_request(e.to_string()))?
        } else {
            if poisoned {
                return Err(ApiError::bad_request(
                    "add-chain does not take precertificates; use add-pre-chain",
                ));
            }
            Entry::X509(certs[0].der().to_vec())
        };
        // one entry per certificate: a resubmission gets an SCT for the logged timestamp
        let identity = format!(
            "ct:{}",
            hex::encode(sigstack_crypto::sha256(
                &ct::sct_signature_input(0, &entry, &[]).map_err(ApiError::internal)?
            ))
        );
        let timestamp = match self.known_timestamp(&identity, precert).await? {
            Some(t) => t,
            None => {
                let timestamp = unix_millis();
                self.append(timestamp, &entry, &certs, precert, identity.clone())
                    .await?;
                self.remember(identity, timestamp);
                timestamp
            }
        };
        // only the signature can fail here: a token or KMS briefly away
        let sct = Sct::sign(self.signer.as_ref(), self.log_id, timestamp, &entry)
            .map_err(ApiError::unavailable)?;
        Ok(AddChainResponse {
            sct_version: 0,
            id: STANDARD.encode(self.log_id),
            timestamp,
            extensions: String::new(),
            signature: STANDARD.encode(sct.signature.to_bytes().map_err(ApiError::internal)?),
        })
    }

    /// The timestamp under which this certificate is already logged, if it is: from the
    /// memory of recent submissions, else (for final certificates, which anyone can
    /// resubmit) from the database. Precertificates carry a fresh random serial from our
    /// CA, so only repeats of recent ones are looked for, keeping issuance at one write.
    async fn known_timestamp(
        &self,
        identity: &str,
        precert: bool,
    ) -> Result<Option<u64>, ApiError> {
        if let Ok(recent) = self.recent.lock()
            && let Some(t) = recent.get(identity)
        {
            return Ok(Some(*t));
        }
        if precert {
            return Ok(None);
        }
        self.logged_timestamp(identity).await
    }

    fn remember(&self, identity: String, timestamp: u64) {
        if let Ok(mut recent) = self.recent.lock() {
            if recent.len() >= RECENT_MAX {
                recent.clear();
            }
            recent.insert(identity, timestamp);
        }
    }

    /// The timestamp of the logged entry with this identity, if any.
    async fn logged_timestamp(&self, identity: &str) -> Result<Option<u64>, ApiError> {
        let hits = self
            .store
            .search(&[identity.to_string()])
            .await
            .map_err(crate::log::store_error)?;
        let Some(hit) = hits.iter().find(|h| h.tree_id == self.tree) else {
            return Ok(None);
        };
        let e = self
            .store
            .entry_by_index(self.tree, hit.index)
            .await
            .map_err(crate::log::store_error)?
            .ok_or_else(|| ApiError::internal("an indexed CT entry is missing"))?;
        let (leaf, _) =
            decode_body(&e.body).ok_or_else(|| ApiError::internal("corrupt CT entry"))?;
        let ts = leaf
            .get(2..10)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| ApiError::internal("corrupt CT leaf"))?;
        Ok(Some(ts))
    }

    /// Appends the entry durably.
    async fn append(
        &self,
        timestamp: u64,
        entry: &Entry,
        certs: &[Certificate],
        precert: bool,
        identity: String,
    ) -> Result<(), ApiError> {
        let leaf = ct::merkle_tree_leaf(timestamp, entry, &[]).map_err(ApiError::internal)?;
        let rest: Vec<Vec<u8>> = certs[1..].iter().map(|c| c.der().to_vec()).collect();
        let extra = if precert {
            ct::extra_data(Some(certs[0].der()), &rest)
        } else {
            ct::extra_data(None, &rest)
        }
        .map_err(ApiError::internal)?;
        let canonical = Canonical {
            kind: "ct",
            api_version: "v1",
            leaf_hash: leaf_hash(&leaf),
            body: encode_body(&leaf, &extra),
            index_keys: vec![identity],
        };
        match self.sequencer.submit(canonical).await {
            // the same leaf (same certificate, same millisecond) is already logged
            Ok(_) | Err(SequenceError::Duplicate) => Ok(()),
            Err(SequenceError::Unavailable(m)) => Err(ApiError::unavailable(m)),
            Err(SequenceError::Internal(m)) => Err(ApiError::internal(m)),
        }
    }

    async fn head(&self) -> Result<Arc<TreeHead>, ApiError> {
        if let Ok(c) = self.head_cache.read()
            && let Some((h, at)) = c.as_ref()
            && at.elapsed() < std::time::Duration::from_secs(1)
        {
            return Ok(h.clone());
        }
        let h = Arc::new(
            self.store
                .head(self.tree)
                .await
                .map_err(crate::log::store_error)?
                .ok_or_else(|| ApiError::internal("the CT tree vanished"))?,
        );
        if let Ok(mut c) = self.head_cache.write() {
            *c = Some((h.clone(), std::time::Instant::now()));
        }
        Ok(h)
    }

    async fn assemble(&self, plan: ProofPlan) -> Result<Vec<Hash>, ApiError> {
        let ids = plan.nodes();
        let found: HashMap<NodeId, Hash> = self
            .store
            .nodes(self.tree, &ids)
            .await
            .map_err(crate::log::store_error)?
            .into_iter()
            .collect();
        plan.assemble(|id| found.get(&id).copied())
            .ok_or_else(|| ApiError::internal("the CT tree is missing nodes for a proof"))
    }
}
