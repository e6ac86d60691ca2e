//! `sigstackd witness`: a C2SP tlog-witness. Logs submit checkpoints with a consistency
//! proof from the last one this witness cosigned (`POST /add-checkpoint`); it checks the
//! log's signature and the proof, records the new checkpoint durably and only then
//! answers with a timestamped Ed25519 cosignature (C2SP tlog-cosignature), so a log that
//! forks or rolls back cannot get it to sign both sides.

pub mod config;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use config::WitnessConfig;
use sigstack_crypto::{PublicKey, Signer};
use sigstack_log::witness::{AddCheckpoint, Refusal, Seen, check, cosign};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

/// The largest request: a checkpoint with many signatures and 63 proof lines.
const MAX_BODY: usize = 64 << 10;

pub struct WitnessService {
    name: String,
    signer: Arc<dyn Signer>,
    logs: HashMap<String, PublicKey>,
    state_file: PathBuf,
    /// Latest cosigned checkpoint per origin; the lock makes check-and-persist atomic.
    state: tokio::sync::Mutex<BTreeMap<String, Seen>>,
    http: Arc<sigstack_http::metrics::HttpMetrics>,
    cosigned: std::sync::atomic::AtomicU64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredSeen {
    size: u64,
    root: String,
}

fn read_state(path: &std::path::Path) -> anyhow::Result<BTreeMap<String, Seen>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        // a witness that lost its state would cosign a log's rollback: never silently
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "no witness state at {}: a witness that has lost what it cosigned can be rolled back. For a new witness, create it once with `sigstackd witness --config … init-state`",
            path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let stored: BTreeMap<String, StoredSeen> = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a witness state file", path.display()))?;
    stored
        .into_iter()
        .map(|(origin, s)| {
            let root = STANDARD
                .decode(&s.root)
                .ok()
                .and_then(|r| <[u8; 32]>::try_from(r.as_slice()).ok())
                .with_context(|| format!("{}: a bad root for {origin}", path.display()))?;
            Ok((origin, Seen { size: s.size, root }))
        })
        .collect()
}

impl WitnessService {
    pub fn start(cfg: &WitnessConfig) -> anyhow::Result<Arc<Self>> {
        let signer = crate::keys::open(&cfg.signing_key, "the witness key")?;
        crate::keys::expect(
            signer.as_ref(),
            &["PKIX_ED25519"],
            &cfg.signing_key,
            "the witness key",
        )?;
        let mut logs = HashMap::new();
        for l in &cfg.logs {
            logs.insert(l.origin.clone(), l.key()?);
        }
        let state = read_state(&cfg.state_file)?;
        if let Some(v) = sigstack_log::note::vkey_of_type(
            &cfg.name,
            signer.public_key(),
            sigstack_log::note::SIG_COSIGNATURE_V1,
        ) {
            // what logs configure: the key as a cosigner (type 0x04)
            tracing::info!(name = cfg.name, key = %v, "witness key");
        }
        Ok(Arc::new(Self {
            name: cfg.name.clone(),
            signer,
            logs,
            state_file: cfg.state_file.clone(),
            state: tokio::sync::Mutex::new(state),
            http: sigstack_http::metrics::HttpMetrics::new("witness"),
            cosigned: Default::default(),
        }))
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/add-checkpoint", post(add_checkpoint))
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(|| async { "ok" }))
            .route("/metrics", get(metrics))
            .with_state(self.clone())
            .layer(axum::middleware::from_fn_with_state(
                self.http.clone(),
                sigstack_http::metrics::observe,
            ))
    }

    /// Writes the state through a synced temporary file and a rename.
    fn persist(&self, state: &BTreeMap<String, Seen>) -> anyhow::Result<()> {
        let stored: BTreeMap<&String, StoredSeen> = state
            .iter()
            .map(|(o, s)| {
                (
                    o,
                    StoredSeen {
                        size: s.size,
                        root: STANDARD.encode(s.root),
                    },
                )
            })
            .collect();
        crate::bootstrap::write_durable(&self.state_file, &serde_json::to_vec_pretty(&stored)?)
    }
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn add_checkpoint(
    State(svc): State<Arc<WitnessService>>,
    body: axum::body::Body,
) -> Response {
    let bytes = match sigstack_http::serve::read_body(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => return sigstack_http::ApiError::from(e).into_response(),
    };
    let Ok(body) = std::str::from_utf8(&bytes) else {
        return text(StatusCode::BAD_REQUEST, "the request is not UTF-8\n".into());
    };
    let req = match AddCheckpoint::parse(body) {
        Ok(r) => r,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    let origin = req.note.split('\n').next().unwrap_or("").to_string();
    let Some(key) = svc.logs.get(&origin) else {
        return text(StatusCode::NOT_FOUND, format!("unknown log {origin:?}\n"));
    };
    let mut state = svc.state.lock().await;
    let cp = match check(&req, &origin, key, state.get(&origin).copied()) {
        Ok(cp) => cp,
        Err(Refusal::Conflict(size)) => {
            return (
                StatusCode::CONFLICT,
                [(header::CONTENT_TYPE, "text/x.tlog.size")],
                format!("{size}\n"),
            )
                .into_response();
        }
        Err(Refusal::BadRequest(m)) => return text(StatusCode::BAD_REQUEST, format!("{m}\n")),
        Err(Refusal::Forbidden(m)) => return text(StatusCode::FORBIDDEN, format!("{m}\n")),
        Err(Refusal::UnknownLog(m)) => return text(StatusCode::NOT_FOUND, format!("{m}\n")),
        Err(Refusal::Inconsistent(m)) => {
            tracing::warn!(origin, reason = m, "refused an inconsistent checkpoint");
            return text(StatusCode::UNPROCESSABLE_ENTITY, format!("{m}\n"));
        }
    };
    let seen = Seen {
        size: cp.size,
        root: cp.root,
    };
    // durably recorded before the cosignature leaves (a checkpoint already recorded, as
    // anyone may replay the log's, costs no write)
    if state.get(&origin) != Some(&seen) {
        let mut next = state.clone();
        next.insert(origin.clone(), seen);
        let writer = svc.clone();
        let written = tokio::task::spawn_blocking(move || writer.persist(&next).map(|()| next))
            .await
            .map_err(|e| anyhow::anyhow!(e))
            .and_then(|r| r);
        match written {
            Ok(next) => *state = next,
            Err(e) => {
                tracing::error!(cause = %e, "cannot record the witness state");
                return text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "cannot record the checkpoint; retry later\n".into(),
                );
            }
        }
    }
    drop(state);
    let now = crate::sequencer::unix_now().max(1) as u64;
    match cosign(&svc.name, svc.signer.as_ref(), &cp, now) {
        Ok(line) => {
            svc.cosigned
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            text(StatusCode::OK, line)
        }
        Err(e) => sigstack_http::ApiError::internal(e).into_response(),
    }
}

async fn metrics(State(svc): State<Arc<WitnessService>>) -> Response {
    let mut out = String::new();
    svc.http.render(&mut out);
    sigstack_http::metrics::gauge(
        &mut out,
        "sigstack_witness_cosignatures_total",
        "counter",
        "Checkpoints cosigned since the start.",
        &[(
            "",
            svc.cosigned.load(std::sync::atomic::Ordering::Relaxed) as f64,
        )],
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// `sigstackd witness init-state`: an empty state file for a new witness (refused if
/// one exists: its record of what was cosigned must not be thrown away).
pub fn init_state(cfg: &WitnessConfig) -> anyhow::Result<()> {
    anyhow::ensure!(
        !cfg.state_file.exists(),
        "{} exists: a witness's state is never reset (that would let a log roll back)",
        cfg.state_file.display()
    );
    if let Some(d) = cfg
        .state_file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    crate::bootstrap::write_durable(&cfg.state_file, b"{}\n")
}
