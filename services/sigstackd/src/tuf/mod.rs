//! `sigstackd tuf`: the TUF repository clients learn the stack's trust from. It serves
//! what the offline ceremony published (roots, targets and their target files, from the
//! database) plus snapshot and timestamp metadata it signs itself with the online key,
//! re-signing them before they expire. Root and targets expiry raise an alarm in the
//! logs, `/metrics` and `/healthz` well ahead of time.

mod api;
mod bench;
pub mod ceremony;
pub mod config;
pub mod copy;
pub mod export;
pub mod mirror;
mod mirrors;
mod targets;

pub use api::document;
pub use bench::bench_resign;

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::http::HeaderValue;
use axum::routing::get;
use config::TufConfig;
use sigstack_crypto::{FileSigner, Signer};
use sigstack_storage::{Store, TufFile};
use sigstack_tuf::metadata::*;
use sigstack_tuf::repo;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

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
        let online = crate::keys::open(&cfg.online_key, "the online key")?;
        let store = Store::open(&cfg.database_url)
            .await
            .with_context(|| format!("opening {}", sigstack_storage::redact(&cfg.database_url)))?;
        let svc = Arc::new(Self {
            http: sigstack_http::metrics::HttpMetrics::new("tuf"),
            store,
            online,
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
            .route("/healthz", get(api::healthz))
            .route("/readyz", get(api::readyz))
            .route("/metrics", get(api::metrics))
            .route("/mirrors/{*path}", get(api::mirror_file))
            .route("/{*path}", get(api::file))
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

#[cfg(test)]
mod tests;
