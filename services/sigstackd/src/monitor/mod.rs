//! `sigstackd monitor`: follows the transparency logs (Rekor v1, the tiled log, the CT
//! log), audits each one (every checkpoint verified, the tree rebuilt from every entry
//! and required to match it, so a fork or a rollback is an alert with both tree heads as
//! evidence), matches every entry against a watch list in rekor-monitor's format, and
//! notifies by webhook and e-mail; serves the log explorer ([`explorer`]) and
//! `/metrics`. Its state is one SQLite file: a restart resumes where it stopped and
//! reports nothing twice.

pub mod config;
pub mod dev;
pub mod entry;
pub mod explorer;
pub mod follow;
pub mod notify;
pub mod sources;
pub mod watch;

use anyhow::Context;
use config::{LogConfig, MonitorConfig, SmtpConfig};
use serde_json::{Value, json};
use sigstack_storage::monitor::{Delivery, MatchRow, MonitorStore};
use sigstack_types::trust::TrustedRoot;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::Notify;

/// A delivery's ID: 128 random bits in hex, unique across monitors and databases.
fn delivery_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// How far each log's audit has come, for `/metrics` and the explorer.
#[derive(Clone, Debug, Default)]
pub struct LogStatus {
    pub up: bool,
    pub error: Option<String>,
    /// The size of the newest verified tree head the log serves.
    pub head: u64,
    /// Entries read and indexed.
    pub read: u64,
    /// The size the rebuilt tree was last proven equal to a signed head at.
    pub verified: u64,
    pub verified_at: i64,
    pub entries_read: u64,
    pub matches: u64,
}

pub struct Monitor {
    pub logs: Vec<LogConfig>,
    pub store: MonitorStore,
    pub root: TrustedRoot,
    pub watch: Arc<watch::Watch>,
    pub http: reqwest::Client,
    pub poll: Duration,
    pub batch: u64,
    pub public_url: Option<String>,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<Vec<u8>>,
    pub smtp: Option<SmtpConfig>,
    /// Lower-case e-mail addresses people subscribed with in the explorer.
    pub subscriptions: RwLock<HashSet<String>>,
    pub statuses: Mutex<BTreeMap<String, LogStatus>>,
    pub deliver: Notify,
    pub stop: Notify,
    delivered: AtomicU64,
    failed: AtomicU64,
    alerts_raised: AtomicU64,
    pub explorer: explorer::Explorer,
    pub http_metrics: Arc<sigstack_http::metrics::HttpMetrics>,
}

impl Monitor {
    pub async fn start(cfg: &MonitorConfig) -> anyhow::Result<Arc<Self>> {
        let root: TrustedRoot =
            serde_json::from_slice(&std::fs::read(&cfg.trusted_root).with_context(|| {
                format!("trusted_root: reading {}", cfg.trusted_root.display())
            })?)
            .with_context(|| {
                format!(
                    "trusted_root: {} is not a trusted root",
                    cfg.trusted_root.display()
                )
            })?;
        // a log the trusted root does not name could only ever raise unverified-head
        // alerts: a mistake in the configuration, said at start
        for l in &cfg.logs {
            let want = l.trusted_url().trim_end_matches('/');
            let listed = match l.kind {
                config::LogKind::Ct => &root.ctlogs,
                _ => &root.tlogs,
            };
            if !listed
                .iter()
                .any(|t| t.base_url.trim_end_matches('/') == want)
            {
                anyhow::bail!(
                    "log {}: the trusted root {} names no {} log at {want} (its URL as the trusted root has it; set trusted_url if the monitor reaches it at another one)",
                    l.name,
                    cfg.trusted_root.display(),
                    l.kind.label()
                );
            }
        }
        let watch = match &cfg.watch {
            Some(p) => watch::Watch::load(p)?,
            None => watch::Watch::default(),
        };
        let webhook_secret = match &cfg.webhook {
            Some(w) => {
                let s = std::fs::read(&w.secret_file).with_context(|| {
                    format!("[webhook] secret_file: reading {}", w.secret_file.display())
                })?;
                let s = s.trim_ascii().to_vec();
                anyhow::ensure!(
                    s.len() >= 16,
                    "{}: the webhook secret must be at least 16 bytes",
                    w.secret_file.display()
                );
                Some(s)
            }
            None => None,
        };
        if let Some(parent) = cfg.database.parent() {
            std::fs::create_dir_all(parent).ok();
        }
        let store = MonitorStore::open(&cfg.database)
            .await
            .with_context(|| format!("opening {}", cfg.database.display()))?;
        let subs: HashSet<String> = store.subscriptions().await?.into_iter().collect();
        let explorer = explorer::Explorer::new(&cfg.explorer).await?;
        let mut statuses = BTreeMap::new();
        for l in &cfg.logs {
            statuses.insert(l.name.clone(), LogStatus::default());
        }
        Ok(Arc::new(Monitor {
            logs: cfg.logs.clone(),
            store,
            root,
            watch: Arc::new(watch),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .user_agent("sigstack-monitor")
                .build()?,
            poll: Duration::from_millis(cfg.poll_ms),
            batch: cfg.batch,
            public_url: cfg
                .explorer
                .public_url
                .as_ref()
                .map(|u| u.trim_end_matches('/').to_string())
                .or_else(|| Some(format!("http://{}", cfg.listen))),
            webhook_url: cfg.webhook.as_ref().map(|w| w.url.clone()),
            webhook_secret,
            smtp: cfg.smtp.clone(),
            subscriptions: RwLock::new(subs),
            statuses: Mutex::new(statuses),
            deliver: Notify::new(),
            stop: Notify::new(),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            alerts_raised: AtomicU64::new(0),
            explorer,
            http_metrics: sigstack_http::metrics::HttpMetrics::new("monitor"),
        }))
    }

    /// Starts a follower per log and the delivery loop.
    pub fn spawn(self: &Arc<Self>) {
        for l in &self.logs {
            tokio::spawn(follow::run(self.clone(), l.clone()));
        }
        tokio::spawn(notify::run(self.clone()));
    }

    pub fn status(&self, log: &str, f: impl FnOnce(&mut LogStatus)) {
        if let Ok(mut s) = self.statuses.lock() {
            f(s.entry(log.to_string()).or_default());
        }
    }

    pub fn counters(&self, log: &str, read: u64, matches: u64) {
        self.status(log, |s| {
            s.entries_read += read;
            s.matches += matches;
        });
    }

    pub fn delivery_outcome(&self, _channel: &str, ok: bool) {
        if ok {
            self.delivered.fetch_add(1, Ordering::Relaxed);
        } else {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether every log's entries have been read up to the head last seen, and that
    /// head verified.
    pub fn caught_up(&self) -> bool {
        self.statuses.lock().is_ok_and(|s| {
            s.values()
                .all(|l| l.up && l.error.is_none() && l.read == l.head && l.verified == l.head)
        })
    }

    pub fn entry_url(&self, log: &str, index: u64) -> Option<String> {
        self.public_url
            .as_ref()
            .map(|u| format!("{u}/log/{log}/entry/{index}"))
    }

    /// Where a match goes: the webhook and the configured mailboxes; a subscription's
    /// match to the subscriber alone.
    pub fn deliveries_for_match(&self, m: &MatchRow) -> Vec<Delivery> {
        let mut payload = serde_json::to_value(m).unwrap_or(Value::Null);
        payload["event"] = json!("match");
        payload["entryUrl"] = json!(self.entry_url(&m.log, m.index));
        let payload = payload.to_string();
        let mut out = Vec::new();
        if m.matched_type == "subscription" {
            if self.smtp.is_some() {
                out.push(Delivery {
                    uid: delivery_id(),
                    channel: "email".into(),
                    recipient: m.matched.clone(),
                    event: "match".into(),
                    payload,
                });
            }
            return out;
        }
        self.fan_out("match", &payload, &mut out);
        out
    }

    fn fan_out(&self, event: &str, payload: &str, out: &mut Vec<Delivery>) {
        if let Some(url) = &self.webhook_url {
            out.push(Delivery {
                uid: delivery_id(),
                channel: "webhook".into(),
                recipient: url.clone(),
                event: event.into(),
                payload: payload.to_string(),
            });
        }
        for to in self.smtp.iter().flat_map(|s| &s.to) {
            out.push(Delivery {
                uid: delivery_id(),
                channel: "email".into(),
                recipient: to.clone(),
                event: event.into(),
                payload: payload.to_string(),
            });
        }
    }

    /// Records an alert (once for the same evidence) and queues its notifications.
    /// One alert of a kind per `episode` (the tree size verified when it was raised):
    /// the same trouble seen again, in any variation, is not a new alert until the log
    /// has been verified further.
    pub async fn alert(
        &self,
        log: &LogConfig,
        kind: &str,
        message: &str,
        evidence: Value,
        episode: u64,
    ) -> anyhow::Result<()> {
        let evidence_text = evidence.to_string();
        let fingerprint = hex::encode(sigstack_crypto::sha256(
            format!("{}\n{kind}\n{episode}", log.name).as_bytes(),
        ));
        let payload = json!({
            "event": "alert", "kind": kind, "log": log.name, "url": log.url,
            "message": message, "evidence": evidence,
            "logUrl": self.public_url.as_ref().map(|u| format!("{u}/log/{}", log.name)),
        })
        .to_string();
        let mut deliveries = Vec::new();
        self.fan_out("alert", &payload, &mut deliveries);
        let new = self
            .store
            .alert(
                &log.name,
                kind,
                &fingerprint,
                message,
                &evidence_text,
                &deliveries,
                now(),
            )
            .await?;
        if new {
            self.alerts_raised.fetch_add(1, Ordering::Relaxed);
            tracing::error!(log = %log.name, kind, message, "transparency log alert");
            self.deliver.notify_one();
        }
        Ok(())
    }

    /// Prometheus text for `/metrics`.
    pub async fn metrics(&self) -> String {
        use sigstack_http::metrics::{escape, gauge};
        let mut out = String::new();
        let statuses = self.statuses.lock().map(|s| s.clone()).unwrap_or_default();
        let rows: Vec<(String, &LogStatus)> = statuses
            .iter()
            .map(|(n, s)| (format!("log=\"{}\"", escape(n)), s))
            .collect();
        let series = |f: &dyn Fn(&LogStatus) -> f64| -> Vec<(&str, f64)> {
            rows.iter().map(|(l, s)| (l.as_str(), f(s))).collect()
        };
        gauge(
            &mut out,
            "sigstack_monitor_log_up",
            "gauge",
            "1 when the log answered with a verified tree head at the last poll",
            &series(&|s| f64::from(u8::from(s.up && s.error.is_none()))),
        );
        gauge(
            &mut out,
            "sigstack_monitor_tree_size",
            "gauge",
            "Size of the newest verified tree head the log serves",
            &series(&|s| s.head as f64),
        );
        gauge(
            &mut out,
            "sigstack_monitor_entries_read",
            "gauge",
            "Entries read, indexed and matched",
            &series(&|s| s.read as f64),
        );
        gauge(
            &mut out,
            "sigstack_monitor_lag_entries",
            "gauge",
            "Entries the log has that the monitor has not read yet",
            &series(&|s| s.head.saturating_sub(s.read) as f64),
        );
        gauge(
            &mut out,
            "sigstack_monitor_verified_size",
            "gauge",
            "Tree size at which the rebuilt tree last matched a signed head",
            &series(&|s| s.verified as f64),
        );
        gauge(
            &mut out,
            "sigstack_monitor_verified_timestamp_seconds",
            "gauge",
            "When the rebuilt tree last matched a signed head",
            &series(&|s| s.verified_at as f64),
        );
        gauge(
            &mut out,
            "sigstack_monitor_entries_read_total",
            "counter",
            "Entries read since start",
            &series(&|s| s.entries_read as f64),
        );
        let (matches, alerts) = self.store.totals().await.unwrap_or((0, 0));
        let pending = self.store.pending().await.unwrap_or(0);
        gauge(
            &mut out,
            "sigstack_monitor_matches",
            "gauge",
            "Matches recorded (each entry, reason and value once)",
            &[("", matches as f64)],
        );
        gauge(
            &mut out,
            "sigstack_monitor_alerts",
            "gauge",
            "Fork, rollback and unverified-checkpoint alerts recorded",
            &[("", alerts as f64)],
        );
        gauge(
            &mut out,
            "sigstack_monitor_notifications_pending",
            "gauge",
            "Notifications not delivered yet",
            &[("", pending as f64)],
        );
        gauge(
            &mut out,
            "sigstack_monitor_notifications_total",
            "counter",
            "Delivery attempts by outcome",
            &[
                (
                    "outcome=\"delivered\"",
                    self.delivered.load(Ordering::Relaxed) as f64,
                ),
                (
                    "outcome=\"failed\"",
                    self.failed.load(Ordering::Relaxed) as f64,
                ),
            ],
        );
        self.http_metrics.render(&mut out);
        out
    }
}

/// `sigstackd monitor`: runs until a shutdown signal; with `until_caught_up`, exits once
/// every log is read and verified up to its head, printing how fast it read.
pub async fn run(cfg: MonitorConfig, until_caught_up: bool) -> anyhow::Result<()> {
    let m = Monitor::start(&cfg).await?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    tracing::info!(listen = %listener.local_addr()?, logs = m.logs.len(), watching = !m.watch.is_empty(), "monitor started");
    m.spawn();
    let app = explorer::router(&m);
    let server = tokio::spawn(sigstack_http::serve::serve(
        listener,
        app,
        sigstack_http::shutdown_signal(),
    ));
    if until_caught_up {
        let started = std::time::Instant::now();
        let before: u64 = m
            .statuses
            .lock()
            .map(|s| s.values().map(|l| l.entries_read).sum())
            .unwrap_or(0);
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if m.caught_up() {
                break;
            }
            if server.is_finished() {
                anyhow::bail!("the monitor's server stopped");
            }
        }
        let read: u64 = m
            .statuses
            .lock()
            .map(|s| s.values().map(|l| l.entries_read).sum())
            .unwrap_or(0)
            - before;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{}",
            json!({"entries": read, "seconds": secs, "entriesPerSecond": read as f64 / secs.max(1e-9)})
        );
        return Ok(());
    }
    server.await??;
    Ok(())
}
