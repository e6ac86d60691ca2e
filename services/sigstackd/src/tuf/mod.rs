//! `sigstackd tuf`: the TUF repository clients learn the stack's trust from. It serves
//! what the offline ceremony published (roots, targets and their target files, from the
//! database) plus snapshot and timestamp metadata it signs itself with the online key,
//! re-signing them before they expire. Root and targets expiry raise an alarm in the
//! logs, `/metrics` and `/healthz` well ahead of time.

mod bench;
pub mod ceremony;
pub mod config;
pub mod copy;
pub mod export;
pub mod mirror;
mod mirrors;
mod targets;

pub use bench::bench_resign;

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use config::TufConfig;
use sigstack_crypto::{FileSigner, Signer};
use sigstack_storage::{Store, TufFile};
use sigstack_tuf::metadata::*;
use sigstack_tuf::repo;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "sigstack TUF repository",
        description = "TUF 1.0 repository served by `sigstackd tuf` with consistent snapshots: \
                       `N.root.json`, `timestamp.json`, `N.snapshot.json`, `N.targets.json` and \
                       `targets/<sha256>.<name>`. Versioned files are immutable; every file has a \
                       strong ETag and answers `If-None-Match` with 304.",
        license(name = "Apache-2.0")
    ),
    paths(file, mirror_file, healthz, readyz, metrics)
)]
pub struct TufApi;

pub fn document() -> String {
    <TufApi as utoipa::OpenApi>::openapi()
        .to_pretty_json()
        .unwrap_or_default()
        + "\n"
}

/// A file as served: bytes, strong ETag, and whether it never changes.
#[derive(Clone)]
pub struct Served {
    body: Bytes,
    etag: HeaderValue,
    immutable: bool,
}

#[derive(Clone)]
pub struct Latest<T> {
    pub version: u64,
    pub body: Vec<u8>,
    pub parsed: T,
}

/// The repository as loaded from the database.
#[derive(Clone, Default)]
pub struct Repo {
    files: HashMap<String, Served>,
    last_seq: i64,
    pub root: Option<Latest<Root>>,
    pub targets: Option<Latest<Targets>>,
    pub snapshot: Option<Latest<MetaList>>,
    pub timestamp: Option<Latest<MetaList>>,
}

fn served(body: &[u8], immutable: bool) -> Served {
    let etag = format!("\"{}\"", hex::encode(sigstack_crypto::sha256(body)));
    Served {
        body: Bytes::copy_from_slice(body),
        etag: HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\"")),
        immutable,
    }
}

fn newer<T>(slot: &Option<Latest<T>>, version: u64) -> bool {
    slot.as_ref().is_none_or(|l| version > l.version)
}

impl Repo {
    /// Adds files read from the database (in publication order).
    pub fn apply(&mut self, files: Vec<TufFile>) -> anyhow::Result<()> {
        for f in files {
            self.last_seq = self.last_seq.max(f.seq);
            let version = u64::try_from(f.version).unwrap_or(0);
            let parse = || Envelope::parse(&f.body, &f.role);
            match f.role.as_str() {
                ROOT if newer(&self.root, version) => {
                    let parsed: Root = parse()?.role()?;
                    self.files
                        .insert("root.json".into(), served(&f.body, false));
                    self.root = Some(Latest {
                        version,
                        body: f.body.clone(),
                        parsed,
                    });
                }
                TARGETS if newer(&self.targets, version) => {
                    let parsed: Targets = parse()?.role()?;
                    self.targets = Some(Latest {
                        version,
                        body: f.body.clone(),
                        parsed,
                    });
                }
                SNAPSHOT if newer(&self.snapshot, version) => {
                    let parsed = parse()?.role::<SnapshotRole>()?.0;
                    self.snapshot = Some(Latest {
                        version,
                        body: f.body.clone(),
                        parsed,
                    });
                }
                TIMESTAMP if newer(&self.timestamp, version) => {
                    let parsed = parse()?.role::<TimestampRole>()?.0;
                    self.files
                        .insert("timestamp.json".into(), served(&f.body, false));
                    self.timestamp = Some(Latest {
                        version,
                        body: f.body.clone(),
                        parsed,
                    });
                }
                _ => {}
            }
            self.files.insert(f.path.clone(), served(&f.body, true));
        }
        Ok(())
    }

    pub fn get(&self, path: &str) -> Option<&Served> {
        self.files.get(path)
    }

    /// The bytes of target `name` as the newest targets metadata names it.
    pub fn target(&self, name: &str) -> Option<&[u8]> {
        let info = self.targets.as_ref()?.parsed.targets.get(name)?;
        let served = self
            .files
            .get(&format!("targets/{}.{name}", info.sha256()?))?;
        info.matches(&served.body).then_some(&served.body[..])
    }

    /// Every path served.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }
}

/// Expiry of each role's newest metadata, seconds from now (`None`: not published).
pub fn horizons(repo: &Repo, now: i64) -> [(&'static str, Option<i64>); 4] {
    [
        (
            ROOT,
            repo.root
                .as_ref()
                .map(|l| seconds_left(&l.parsed.expires, now)),
        ),
        (
            TARGETS,
            repo.targets
                .as_ref()
                .map(|l| seconds_left(&l.parsed.expires, now)),
        ),
        (
            SNAPSHOT,
            repo.snapshot
                .as_ref()
                .map(|l| seconds_left(&l.parsed.expires, now)),
        ),
        (
            TIMESTAMP,
            repo.timestamp
                .as_ref()
                .map(|l| seconds_left(&l.parsed.expires, now)),
        ),
    ]
}

pub struct TufService {
    http: Arc<sigstack_http::metrics::HttpMetrics>,
    store: Store,
    online: Arc<dyn Signer>,
    cfg: TufConfig,
    repo: RwLock<Arc<Repo>>,
    publish: tokio::sync::Mutex<()>,
}

/// The version of a new snapshot or timestamp: above the last one and at least the
/// current Unix time, so versions never go back — not even after the database is
/// restored from a backup older than what clients hold.
fn next_version(last: Option<u64>, now: i64) -> u64 {
    last.map_or(1, |v| v + 1)
        .max(u64::try_from(now).unwrap_or(0))
}

/// The snapshot and timestamp that pin `repo`'s newest targets, when the current ones do
/// not or are past half their lifetime (or always, with `force`: at start, when the
/// database may have been restored); `None` when nothing needs signing.
pub fn online_update(
    repo: &Repo,
    signer: &dyn Signer,
    (timestamp_ttl, snapshot_ttl): (i64, i64),
    now: i64,
    force: bool,
) -> anyhow::Result<Option<Vec<TufFile>>> {
    let (Some(root), Some(targets)) = (&repo.root, &repo.targets) else {
        return Ok(None);
    };
    let pins = |meta: &MetaList, name: &str, version: u64| {
        meta.meta.get(name).map(|m| m.version) == Some(version)
    };
    // signed by the newest root's keys (not so after an online key rotation)
    let trusted = |body: &[u8], role: &str| {
        Envelope::parse(body, role).is_ok_and(|e| e.verify_by(&root.parsed, role).is_ok())
    };
    let snapshot_fresh = !force
        && repo.snapshot.as_ref().is_some_and(|s| {
            pins(&s.parsed, "targets.json", targets.version)
                && seconds_left(&s.parsed.expires, now) > snapshot_ttl / 2
                && trusted(&s.body, SNAPSHOT)
        });
    let timestamp_fresh = snapshot_fresh
        && repo.timestamp.as_ref().is_some_and(|t| {
            repo.snapshot
                .as_ref()
                .is_some_and(|s| pins(&t.parsed, "snapshot.json", s.version))
                && seconds_left(&t.parsed.expires, now) > timestamp_ttl / 2
                && trusted(&t.body, TIMESTAMP)
        });
    if timestamp_fresh {
        return Ok(None);
    }
    let mut out = Vec::new();
    let (snap_version, snap_body) = if snapshot_fresh {
        let s = repo.snapshot.as_ref().context("snapshot")?;
        (s.version, s.body.clone())
    } else {
        let version = next_version(repo.snapshot.as_ref().map(|s| s.version), now);
        let mut env = Envelope::new(&repo::snapshot(
            version,
            now + snapshot_ttl,
            targets.version,
            &targets.body,
        ))?;
        env.sign(signer)?;
        let body = env.to_bytes();
        out.push(TufFile {
            seq: 0,
            path: format!("{version}.snapshot.json"),
            role: SNAPSHOT.into(),
            version: version as i64,
            body: body.clone(),
        });
        (version, body)
    };
    let version = next_version(repo.timestamp.as_ref().map(|t| t.version), now);
    let mut env = Envelope::new(&repo::timestamp(
        version,
        now + timestamp_ttl,
        snap_version,
        &snap_body,
    ))?;
    env.sign(signer)?;
    out.push(TufFile {
        seq: 0,
        path: format!("{version}.timestamp.json"),
        role: TIMESTAMP.into(),
        version: version as i64,
        body: env.to_bytes(),
    });
    Ok(Some(out))
}

impl TufService {
    pub async fn start(cfg: &TufConfig) -> anyhow::Result<Arc<Self>> {
        crate::settings::check_private(&cfg.online_key)?;
        let store = Store::open(&cfg.database_url)
            .await
            .with_context(|| format!("opening {}", sigstack_storage::redact(&cfg.database_url)))?;
        let online = FileSigner::load(&cfg.online_key)
            .with_context(|| format!("loading the online key {}", cfg.online_key.display()))?;
        let svc = Arc::new(Self {
            http: sigstack_http::metrics::HttpMetrics::new("tuf"),
            store,
            online: Arc::new(online),
            cfg: cfg.clone(),
            repo: RwLock::default(),
            publish: tokio::sync::Mutex::new(()),
        });
        svc.sync_with(true).await?;
        anyhow::ensure!(
            svc.current().root.is_some(),
            "the repository has no root yet: run `sigstackd tuf init` and `sigstackd tuf publish` first"
        );
        Ok(svc)
    }

    pub fn current(&self) -> Arc<Repo> {
        self.repo.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Loads what was published since the last sync, then signs a fresh snapshot and
    /// timestamp if they are due.
    pub async fn sync(&self) -> anyhow::Result<()> {
        self.sync_with(false).await
    }

    /// [`Self::sync`]; with `force`, new online metadata is signed even if the current
    /// is fresh (at start: after a restore, clients may hold newer versions).
    async fn sync_with(&self, force: bool) -> anyhow::Result<()> {
        let _guard = self.publish.lock().await;
        self.load().await?;
        let now = crate::sequencer::unix_now();
        let repo = self.current();
        if let Some(root) = &repo.root {
            let keyid = key_id_of(self.online.public_key())?;
            for role in [SNAPSHOT, TIMESTAMP] {
                anyhow::ensure!(
                    root.parsed
                        .roles
                        .get(role)
                        .is_some_and(|r| r.keyids.contains(&keyid)),
                    "the online key {} is not a {role} key of root version {}: configure the new online key and restart",
                    self.cfg.online_key.display(),
                    root.version
                );
            }
        }
        if let Some(files) = online_update(
            &repo,
            self.online.as_ref(),
            (self.cfg.timestamp_ttl_secs, self.cfg.snapshot_ttl_secs),
            now,
            force,
        )? {
            let names: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
            if self.store.tuf_publish(&files).await? {
                tracing::info!(files = ?names, "signed new online metadata");
            } else {
                tracing::info!("another replica published first");
            }
            self.load().await?;
        }
        Ok(())
    }

    async fn load(&self) -> anyhow::Result<()> {
        let after = self.current().last_seq;
        let files = self.store.tuf_files(after).await?;
        if files.is_empty() {
            return Ok(());
        }
        let mut next = (*self.current()).clone();
        next.apply(files)?;
        *self.repo.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
        Ok(())
    }

    /// Syncs every `poll_secs` until stopped; alarms on expiry horizons.
    pub async fn run_maintenance(self: Arc<Self>) {
        let mut last_alarm = 0i64;
        loop {
            if let Err(e) = self.sync().await {
                tracing::error!(cause = %format!("{e:#}"), "TUF repository maintenance failed");
            }
            let now = crate::sequencer::unix_now();
            if now - last_alarm >= 3600 {
                for (role, left) in horizons(&self.current(), now) {
                    match left {
                        Some(l) if l <= 0 => {
                            tracing::error!(
                                role,
                                "TUF {role} metadata has EXPIRED: clients refuse this repository"
                            );
                            last_alarm = now;
                        }
                        Some(l)
                            if (role == ROOT || role == TARGETS)
                                && l < self.cfg.expiry_alarm_secs =>
                        {
                            tracing::warn!(
                                role,
                                seconds_left = l,
                                "TUF {role} metadata expires soon: re-sign it offline"
                            );
                            last_alarm = now;
                        }
                        _ => {}
                    }
                }
            }
            tokio::time::sleep(std::time::Duration::from_secs(self.cfg.poll_secs)).await;
        }
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .route("/mirrors/{*path}", get(mirror_file))
            .route("/{*path}", get(file))
            .with_state(self.clone())
            .layer(axum::middleware::from_fn_with_state(
                self.http.clone(),
                sigstack_http::metrics::observe,
            ))
    }

    /// `ok`, `warning` (root or targets expire within the alarm window) or `expired`.
    pub fn status(&self, now: i64) -> (&'static str, serde_json::Value) {
        let repo = self.current();
        let mut status = "ok";
        let mut roles = serde_json::Map::new();
        for (role, left) in horizons(&repo, now) {
            match left {
                Some(l) if l <= 0 => status = "expired",
                Some(l)
                    if (role == ROOT || role == TARGETS)
                        && l < self.cfg.expiry_alarm_secs
                        && status == "ok" =>
                {
                    status = "warning"
                }
                None => status = "expired",
                _ => {}
            }
            roles.insert(
                role.to_string(),
                serde_json::json!({"expires_in_seconds": left}),
            );
        }
        (
            status,
            serde_json::json!({"status": status, "roles": roles}),
        )
    }
}

/// Liveness, with the repository's health: `ok`, `warning` (root or targets expire within
/// the alarm window) or `expired`, and each role's expiry horizon. Always 200 while the
/// process runs: expiring metadata or a database outage is not cured by a restart (see
/// `/readyz`, `/metrics` and `sigstackd doctor`).
#[utoipa::path(get, path = "/healthz", tag = "tuf",
    responses((status = 200, body = Object)))]
async fn healthz(State(svc): State<Arc<TufService>>) -> Response {
    let (_, body) = svc.status(crate::sequencer::unix_now());
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// Readiness: the database answers and nothing has expired (503 with the reason).
#[utoipa::path(get, path = "/readyz", tag = "tuf",
    responses((status = 200, body = String), (status = 503, body = String)))]
async fn readyz(State(svc): State<Arc<TufService>>) -> Response {
    if let Err(e) = svc.store.ping().await {
        tracing::warn!(cause = %e, "database unreachable");
        return sigstack_http::ApiError::not_ready("the database does not answer").into_response();
    }
    match svc.status(crate::sequencer::unix_now()).0 {
        "expired" => sigstack_http::ApiError::not_ready(
            "the repository's metadata has expired: publish new metadata",
        )
        .into_response(),
        _ => (StatusCode::OK, "ok").into_response(),
    }
}

/// Prometheus metrics: HTTP requests by route and status with latencies,
/// `sigstack_tuf_expires_in_seconds{role}`, `sigstack_tuf_version{role}`.
#[utoipa::path(get, path = "/metrics", tag = "tuf",
    responses((status = 200, content_type = "text/plain", body = String)))]
async fn metrics(State(svc): State<Arc<TufService>>) -> Response {
    let repo = svc.current();
    let now = crate::sequencer::unix_now();
    let mut out = String::new();
    svc.http.render(&mut out);
    out.push_str(
        "# HELP sigstack_tuf_expires_in_seconds Seconds until each role's newest metadata expires.\n\
         # TYPE sigstack_tuf_expires_in_seconds gauge\n",
    );
    for (role, left) in horizons(&repo, now) {
        if let Some(l) = left {
            out.push_str(&format!(
                "sigstack_tuf_expires_in_seconds{{role=\"{role}\"}} {l}\n"
            ));
        }
    }
    out.push_str("# HELP sigstack_tuf_version Each role's newest metadata version.\n# TYPE sigstack_tuf_version gauge\n");
    let versions = [
        (ROOT, repo.root.as_ref().map(|l| l.version)),
        (TARGETS, repo.targets.as_ref().map(|l| l.version)),
        (SNAPSHOT, repo.snapshot.as_ref().map(|l| l.version)),
        (TIMESTAMP, repo.timestamp.as_ref().map(|l| l.version)),
    ];
    for (role, v) in versions {
        if let Some(v) = v {
            out.push_str(&format!("sigstack_tuf_version{{role=\"{role}\"}} {v}\n"));
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// A repository file: metadata (`1.root.json`, `timestamp.json`, `3.snapshot.json`,
/// `3.targets.json`, also `root.json` for the newest root) or a target
/// (`targets/<sha256>.trusted_root.json`).
#[utoipa::path(get, path = "/{path}", tag = "tuf",
    params(("path" = String, Path, description = "File path under the repository")),
    responses(
        (status = 200, content_type = "application/json", body = Object),
        (status = 304, description = "Not modified (If-None-Match matched the ETag)"),
        (status = 404, description = "No such file (ends a client's root rotation walk)"),
    ))]
async fn file(
    State(svc): State<Arc<TufService>>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    let repo = svc.current();
    match repo.get(&path) {
        Some(f) => respond(f, &headers),
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

/// A file of another repository copied here (`mirrors_dir` in the configuration), byte
/// for byte: `/mirrors/NAME/timestamp.json`, `/mirrors/NAME/3.snapshot.json`,
/// `/mirrors/NAME/targets/<sha256>.<name>`. Clients verify it against that repository's
/// own root; this service signs none of it.
#[utoipa::path(get, path = "/mirrors/{path}", tag = "tuf",
    params(("path" = String, Path, description = "NAME/file path under the mirrored repository")),
    responses(
        (status = 200, content_type = "application/json", body = Object),
        (status = 304, description = "Not modified (If-None-Match matched the ETag)"),
        (status = 404, description = "No such file, or no mirrors are configured"),
    ))]
async fn mirror_file(
    State(svc): State<Arc<TufService>>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(dir) = svc.cfg.mirrors_dir.clone() else {
        return (StatusCode::NOT_FOUND, "no mirrors are served here\n").into_response();
    };
    match tokio::task::spawn_blocking(move || mirrors::read(&dir, &path)).await {
        Ok(Some(f)) => respond(&f, &headers),
        _ => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

/// A served file with its ETag and cache policy; 304 when the client holds it.
fn respond(f: &Served, headers: &HeaderMap) -> Response {
    let cache = if f.immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == "*" || t.trim().as_bytes() == f.etag.as_bytes())
        });
    if matches {
        return (
            StatusCode::NOT_MODIFIED,
            [
                (header::ETAG, f.etag.clone()),
                (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            ],
        )
            .into_response();
    }
    (
        [
            (header::ETAG, f.etag.clone()),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
        ],
        f.body.clone(),
    )
        .into_response()
}

#[cfg(test)]
mod tests;
