//! Replicas of one log on one PostgreSQL database: one elected sequencer (see
//! `sigstack_storage::leader`), the others forwarding each submission to it and serving
//! reads themselves. Forwarding saves the followers the entry's verification and keeps
//! the tree row's lock uncontended. If the leader cannot be reached, a follower sequences
//! the entry itself (the row lock keeps the tree consistent), so writes continue through
//! a failover; the next election step (every 500 ms) names the new leader.

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use sigstack_storage::Store;
use sigstack_storage::leader::Role;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Marks a forwarded submission: its receiver sequences it, whatever it believes.
pub const FORWARDED: &str = "x-sigstack-forwarded";

/// How often the election runs.
const STEP: Duration = Duration::from_millis(500);

pub struct Replication {
    role: RwLock<Role>,
    client: reqwest::Client,
    pub forwarded: AtomicU64,
    pub forward_failures: AtomicU64,
}

impl Replication {
    /// Starts the election for `log` (this replica at `me`); `None` on SQLite.
    pub fn start(store: &Store, log: &str, me: &str) -> anyhow::Result<Option<Arc<Self>>> {
        let Some(mut election) = store.election(log, me) else {
            return Ok(None);
        };
        let r = Arc::new(Self {
            role: RwLock::new(Role::Unknown),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .connect_timeout(Duration::from_secs(2))
                .pool_max_idle_per_host(256)
                .build()?,
            forwarded: AtomicU64::new(0),
            forward_failures: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&r);
        tokio::spawn(async move {
            loop {
                let role = election.step().await;
                let Some(r) = weak.upgrade() else { return };
                if let Ok(mut g) = r.role.write() {
                    *g = role;
                }
                drop(r);
                tokio::time::sleep(STEP).await;
            }
        });
        Ok(Some(r))
    }

    pub fn role(&self) -> Role {
        self.role.read().map(|r| r.clone()).unwrap_or(Role::Unknown)
    }

    /// Sends a submission to the leader, if another replica leads; `None` means
    /// "sequence it here" (this replica leads, no leader is known, the request was
    /// forwarded already, or the leader did not answer).
    pub async fn forward(&self, parts: &Parts, body: &Bytes) -> Option<Response> {
        if parts.headers.contains_key(FORWARDED) {
            return None;
        }
        let Role::Follower(leader) = self.role() else {
            return None;
        };
        let mut req = self
            .client
            .post(format!(
                "{}{}",
                leader.trim_end_matches('/'),
                parts.uri.path()
            ))
            .header(FORWARDED, "1")
            .body(body.clone());
        if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let res = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                self.forward_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(leader = %leader, error = %e, "the sequencer did not answer; sequencing here");
                return None;
            }
        };
        let status = StatusCode::from_u16(res.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let mut out_headers = Vec::new();
        for name in [
            header::CONTENT_TYPE,
            header::LOCATION,
            header::ETAG,
            header::RETRY_AFTER,
        ] {
            if let Some(v) = res.headers().get(name.as_str())
                && let Ok(v) = HeaderValue::from_bytes(v.as_bytes())
            {
                out_headers.push((name, v));
            }
        }
        let bytes = match res.bytes().await {
            Ok(b) => b,
            Err(e) => {
                // the leader may have committed it: the client must retry (a duplicate
                // then answers 409 with the entry's location), not be told it failed
                self.forward_failures.fetch_add(1, Ordering::Relaxed);
                return Some(
                    sigstack_http::ApiError::unavailable(format!(
                        "the sequencer's answer was cut off: {e}"
                    ))
                    .into_response(),
                );
            }
        };
        self.forwarded.fetch_add(1, Ordering::Relaxed);
        let mut r = (status, bytes).into_response();
        for (k, v) in out_headers {
            r.headers_mut().insert(k, v);
        }
        Some(r)
    }
}
